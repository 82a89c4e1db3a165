"""The CASA child process.

    python -m aperture_shared.casa.child SPEC.json     run one step now
    python -m aperture_shared.casa.child --prestart [MODULE]
        configure CASA and import it (and MODULE, the worker's last step module), then wait for the path
        of one spec on stdin, run that step and exit

Either way the process configures CASA for offline data before anything imports casatools, runs one
function `module:function(arguments: dict, calls: CasaCallLog) -> JSON-able | BaseModel`, and writes the
outcome to the spec's result file. The parent reads only that file: whatever CASA prints goes to the
job's log. A prestarted process has paid for the start and the import of casatools and casatasks
(seconds) before its step is known; it then moves into the step's working directory and sends its output
and its CASA log to the step's files, so that it is indistinguishable from one started for it.
"""

import importlib
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from pydantic import BaseModel


def _import_casa() -> Any:
    import casatasks  # type: ignore[import-untyped]
    import casatools  # type: ignore[import-untyped]  # noqa: F401

    return casatasks


def _into_step(spec: dict[str, Any], casatasks: Any) -> None:
    """Make a prestarted process the step's own: its directory, its output file, its CASA log."""
    os.chdir(spec["workdir"])
    sys.stdout.flush()
    sys.stderr.flush()
    with open(spec["output_log"], "ab") as output:
        os.dup2(output.fileno(), 1)
        os.dup2(output.fileno(), 2)
    casatasks.casalog.setlogfile(spec["casa_log"])


def run_step(spec: dict[str, Any], ready_at: float) -> int:
    from aperture_shared.casa.calls import CasaCallLog
    from aperture_shared.errors import JobError

    calls = CasaCallLog()
    outcome: dict[str, object]
    try:
        module_name, function_name = spec["function"].split(":")
        function = getattr(importlib.import_module(module_name), function_name)
        value = function(spec["arguments"], calls)
        if isinstance(value, BaseModel):
            value = value.model_dump(mode="json")
        outcome = {"ok": True, "value": value}
    except JobError as error:
        outcome = {
            "ok": False,
            "error_class": error.error_class.value,
            "message": error.message,
            "detail": error.detail,
        }
    except Exception as error:  # a bug or an unexpected CASA failure: the traceback goes to the event
        outcome = {
            "ok": False,
            "error_class": "internal",
            "message": f"CASA step {spec['function']} raised {type(error).__name__}: {error}",
            "detail": traceback.format_exc(),
        }
    outcome["calls"] = [call.model_dump(mode="json") for call in calls.calls]
    outcome["ready_at"] = ready_at  # wall clock: when CASA was imported and the step could begin
    Path(spec["result_path"]).write_text(json.dumps(outcome, default=str))
    return 0


def main(argv: list[str]) -> int:
    from aperture_shared.casa.config import configure_offline

    if argv[1] == "--prestart":
        # The CASA log until a step comes: nothing worth keeping is said while importing.
        configure_offline(Path(os.devnull))
        casatasks = _import_casa()
        for module_name in argv[2:]:
            try:
                importlib.import_module(module_name)
            except Exception:  # the step imports it again and reports there what is wrong
                pass
        line = sys.stdin.readline().strip()
        if not line:
            return 0  # the worker let it go (shutting down, or its settings changed)
        spec = json.loads(Path(line).read_text())
        _into_step(spec, casatasks)
        return run_step(spec, time.time())
    spec = json.loads(Path(argv[1]).read_text())
    configure_offline(Path(spec["casa_log"]))
    # Started for this step: CASA is imported by the step as it needs it (a step that needs no
    # casatasks does not pay for it), so the import counts in the step, not before it.
    return run_step(spec, time.time())


if __name__ == "__main__":
    sys.exit(main(sys.argv))
