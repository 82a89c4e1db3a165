"""The CASA child process.

    python -m aperture_shared.casa.child [MODULE ...]

It configures CASA for offline data, imports casatools and casatasks (and the MODULEs, the steps the
worker expects), then serves steps: it reads the path of one step spec per line on stdin, runs that step,
and answers `done` on its stdout; it exits when stdin closes. A step is one function
`module:function(arguments: dict, calls: CasaCallLog) -> JSON-able | BaseModel`; its outcome goes to the
spec's result file, which is all the parent reads. Whatever CASA prints during a step goes to the step's
output file and its CASA log to the step's log file; between steps both go to /dev/null and the process
waits in the directory it was started in, so an idle process is never taken for one working on a job.

The parent (runner.py) decides how many steps one process serves: one, or many in a row for a worker,
which then pays for the start and the CASA import (seconds) once instead of for every step.
"""

import importlib
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any, TextIO

from pydantic import BaseModel

DONE = "done"


def _import_casa() -> Any:
    import casatasks  # type: ignore[import-untyped]
    import casatools  # type: ignore[import-untyped]  # noqa: F401

    return casatasks


def _redirect(stdout: int, stderr: int) -> None:
    """Point this process's stdout and stderr (file descriptors, so CASA's C++ output follows) elsewhere."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(stdout, 1)
    os.dup2(stderr, 2)


def _into_step(spec: dict[str, Any], casatasks: Any) -> None:
    """Make the process the step's own: its directory, its output file, its CASA log."""
    os.chdir(spec["workdir"])
    with open(spec["output_log"], "ab") as output:
        _redirect(output.fileno(), output.fileno())
    casatasks.casalog.setlogfile(spec["casa_log"])


def _out_of_step(home: str, casatasks: Any, idle_stdout: int, idle_stderr: int) -> None:
    """Leave the step's directory and files, so that the job can remove them and the next step starts clean."""
    casatasks.casalog.setlogfile(os.devnull)
    _redirect(idle_stdout, idle_stderr)
    os.chdir(home)


def run_step(spec: dict[str, Any], ready_at: float) -> None:
    from aperture_shared.casa.calls import CasaCallLog
    from aperture_shared.errors import JobError, classify_unexpected

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
    except Exception as error:  # not caught by name: classified here, once (errors.FAILURE_RULES)
        classified = classify_unexpected(error, f"CASA step {spec['function']}")
        outcome = {
            "ok": False,
            "error_class": classified.error_class.value,
            "message": classified.message,
            "detail": traceback.format_exc(),
        }
    outcome["calls"] = [call.model_dump(mode="json") for call in calls.calls]
    outcome["ready_at"] = ready_at  # wall clock: when CASA was imported and the step could begin
    Path(spec["result_path"]).write_text(json.dumps(outcome, default=str))


def serve(preload: list[str], requests: TextIO, answers: TextIO) -> int:
    from aperture_shared.casa.config import configure_offline

    home = os.getcwd()
    # Between steps: stdout to /dev/null (the answers have their own descriptor), stderr where the
    # parent pointed it (so that a failing import is seen there).
    idle_stdout, idle_stderr = os.open(os.devnull, os.O_WRONLY), os.dup(2)
    _redirect(idle_stdout, idle_stderr)
    # The CASA log between steps: nothing worth keeping is said while importing or waiting.
    configure_offline(Path(os.devnull))
    casatasks = _import_casa()
    for module_name in preload:
        try:
            importlib.import_module(module_name)
        except Exception:  # the step imports it again and reports there what is wrong
            pass
    while line := requests.readline().strip():
        spec = json.loads(Path(line).read_text())
        _into_step(spec, casatasks)
        try:
            run_step(spec, time.time())
        finally:
            _out_of_step(home, casatasks, idle_stdout, idle_stderr)
        answers.write(f"{DONE}\n")
        answers.flush()
    return 0  # stdin closed: the worker let this process go


def main(argv: list[str]) -> int:
    # The answers keep the pipe the parent reads; everything else this process prints goes elsewhere.
    answers = os.fdopen(os.dup(1), "w")
    return serve(argv[1:], sys.stdin, answers)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
