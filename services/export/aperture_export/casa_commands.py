"""casa_commands.log: every CASA call made for an MOUS, as lines of Python a person can paste into CASA.

As in ALMA deliveries, the file lets a person re-run (or study) each step by hand. Each call is one line,
`task(param=value, ...)`, with every parameter written as an exact Python literal (floats by `repr`, which
round-trips), so that the file as a whole is a valid Python module. Calls are grouped by job, in the
order the jobs first ran, under a comment that says which job and stage made them, when, and how long.
"""

import keyword
import math
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path

from aperture_contracts.enums import Stage
from aperture_contracts.events import CasaCall

CASA_COMMANDS_NAME = "casa_commands.log"

_PREAMBLE = """\
# casa_commands.log of MOUS {mous_id}: every CASA call Aperture made for it, in the order the jobs ran.
# Each line runs as it stands in CASA 6 (casashell, or Python after `from casatasks import *`). Tool calls
# (ia.*) need the tool first: `import casatools; ia = casatools.image()`. Paths are those of the worker's
# scratch folder at the time: change them to re-run elsewhere.
"""


def casa_commands_text(mous_id: str, calls: Iterable[tuple[str, Stage, CasaCall]]) -> str:
    """The text of casa_commands.log from (job id, stage, call) triples in run order."""
    blocks = [_PREAMBLE.format(mous_id=mous_id)]
    for job_id, (stage, job_calls) in _by_job(calls).items():
        blocks.append("\n".join([_job_header(job_id, stage, job_calls), *map(_call_lines, job_calls)]) + "\n")
    return "\n".join(blocks)


def write_casa_commands(path: Path, mous_id: str, calls: Iterable[tuple[str, Stage, CasaCall]]) -> None:
    path.write_text(casa_commands_text(mous_id, calls), encoding="utf-8")


def call_line(call: CasaCall) -> str:
    """`task(name=value, ...)`; parameters whose names are not Python identifiers go in a `**{...}`."""
    plain = {name: value for name, value in call.parameters.items() if _is_keyword_name(name)}
    other = {name: value for name, value in call.parameters.items() if not _is_keyword_name(name)}
    arguments = [f"{name}={python_literal(value)}" for name, value in plain.items()]
    if other:
        arguments.append("**" + python_literal(other))
    return f"{call.task}({', '.join(arguments)})"


def python_literal(value: object) -> str:
    """`value` as Python source that evaluates to an equal value. Parameters come as JSON values (numbers,
    strings, booleans, None, lists, dicts); anything else is a bug upstream and raises TypeError."""
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return repr(int(value))  # int() so that an IntEnum is written as its number
    if isinstance(value, float):
        # repr of a float round-trips exactly; nan and the infinities have no literal of their own.
        return repr(float(value)) if math.isfinite(value) else f"float({str(value)!r})"
    if isinstance(value, str):
        return repr(str(value))
    if isinstance(value, list):
        return "[" + ", ".join(map(python_literal, value)) + "]"
    if isinstance(value, tuple):
        items = ", ".join(map(python_literal, value))
        return f"({items},)" if len(value) == 1 else f"({items})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{python_literal(k)}: {python_literal(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"{type(value).__name__} {value!r} has no Python literal for casa_commands.log")


def _by_job(calls: Iterable[tuple[str, Stage, CasaCall]]) -> dict[str, tuple[Stage, list[CasaCall]]]:
    """Calls grouped by job, jobs in the order of their first call (jobs may run side by side)."""
    jobs: dict[str, tuple[Stage, list[CasaCall]]] = {}
    for job_id, stage, call in calls:
        jobs.setdefault(job_id, (stage, []))[1].append(call)
    return jobs


def _job_header(job_id: str, stage: Stage, calls: list[CasaCall]) -> str:
    started = min(call.started_at for call in calls)
    finished = max(call.started_at + timedelta(seconds=call.duration_s) for call in calls)
    span = (finished - started).total_seconds()
    return (
        f"# ---- job {job_id} | stage {stage.value} | started {started.isoformat()} | "
        f"{span:.3f} s over {len(calls)} CASA call{'s' if len(calls) != 1 else ''}"
    )


def _call_lines(call: CasaCall) -> str:
    return f"# {call.task}: started {call.started_at.isoformat()}, {call.duration_s:.3f} s\n{call_line(call)}"


def _is_keyword_name(name: str) -> bool:
    return name.isidentifier() and not keyword.iskeyword(name)
