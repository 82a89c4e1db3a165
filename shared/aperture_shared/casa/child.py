"""The CASA child process: `python -m aperture_shared.casa.child SPEC.json`.

Configures CASA for offline data before anything imports casatools, runs one function
`module:function(arguments: dict, calls: CasaCallLog) -> JSON-able | BaseModel`, and writes the outcome
to the spec's result file. The parent reads only that file: whatever CASA prints goes to the job's log.
"""

import importlib
import json
import sys
import traceback
from pathlib import Path

from pydantic import BaseModel


def main(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    result_path = Path(spec["result_path"])
    from aperture_shared.casa.config import configure_offline

    configure_offline(Path(spec["casa_log"]))
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
    result_path.write_text(json.dumps(outcome, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
