"""Run a CASA step out of the worker's process, with a time limit, a memory limit and its own log.

Why a subprocess: a hung or crashing CASA task must not take the worker down, and must be stoppable.
Why a resident-memory watch and not an address-space limit: CASA under RLIMIT_AS hangs instead of failing
(CASA-NOTES); here the process tree's RSS is sampled and the tree killed when it goes over, which ends in
a clear OUT_OF_MEMORY failure.
Why PR_SET_PDEATHSIG: the child stays in the worker's process group (an orchestrator's group kill takes
it too) and the kernel kills it when the worker dies, even by SIGKILL, so no orphan keeps table locks.
"""

import asyncio
import ctypes
import json
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from aperture_contracts.enums import ErrorClass
from aperture_contracts.events import CasaCall

from aperture_shared.errors import CasaCrashed, CasaOutOfMemory, CasaTimeout, JobError

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
_SAMPLE_INTERVAL_S = 0.5


@dataclass
class CasaRun:
    """What one CASA step produced; `value` is what the step function returned."""

    value: Any
    calls: list[CasaCall]
    log_path: Path
    peak_rss_mb: float
    duration_s: float


def _die_with_parent() -> None:
    """Runs in the child between fork and exec."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    # The parent may have died between fork and prctl; then nobody would send the signal.
    if os.getppid() == 1:
        os._exit(1)


def _kill_tree(process: psutil.Process) -> None:
    try:
        children = process.children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    for victim in [process, *children]:
        try:
            victim.kill()
        except psutil.NoSuchProcess:
            pass


def _tree_rss_bytes(process: psutil.Process) -> int:
    total = 0
    try:
        for member in [process, *process.children(recursive=True)]:
            try:
                total += member.memory_info().rss
            except psutil.NoSuchProcess:
                continue
    except psutil.NoSuchProcess:
        return 0
    return total


def _child_environment(threads: int | None) -> dict[str, str]:
    environment = dict(os.environ)
    if threads is not None:
        environment["OMP_NUM_THREADS"] = str(threads)
        environment["OPENBLAS_NUM_THREADS"] = str(threads)
    return environment


def _log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


async def run_casa_step(
    function: str,
    arguments: dict[str, Any],
    *,
    workdir: Path,
    time_limit_s: float,
    memory_limit_mb: int,
    threads: int | None = None,
) -> CasaRun:
    """Run `module:function(arguments, calls)` in a fresh CASA process whose cwd is `workdir`.

    Raises CasaTimeout, CasaOutOfMemory, CasaCrashed, or the JobError the step raised. Cancelling the
    awaiting task kills the process tree. threads: the OpenMP threads CASA may use (None: its own choice,
    all cores); one per worker lets N workers share N cores without contending.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    spec_path = workdir / "casa-step.json"
    result_path = workdir / "casa-result.json"
    casa_log = workdir / "casa.log"
    output_log = workdir / "casa-output.log"
    spec_path.write_text(
        json.dumps(
            {
                "function": function,
                "arguments": arguments,
                "result_path": str(result_path),
                "casa_log": str(casa_log),
            }
        )
    )
    started = time.monotonic()
    with output_log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "aperture_shared.casa.child", str(spec_path),
            cwd=workdir, stdin=asyncio.subprocess.DEVNULL, stdout=output, stderr=output,
            preexec_fn=_die_with_parent, env=_child_environment(threads),
        )
    watched = psutil.Process(process.pid)
    limit_bytes = memory_limit_mb * 1024 * 1024
    peak = 0
    failure: JobError | None = None
    try:
        while process.returncode is None:
            try:
                await asyncio.wait_for(process.wait(), timeout=_SAMPLE_INTERVAL_S)
                break
            except TimeoutError:
                pass
            rss = _tree_rss_bytes(watched)
            peak = max(peak, rss)
            elapsed = time.monotonic() - started
            if rss > limit_bytes:
                failure = CasaOutOfMemory(
                    f"CASA step {function} went past its memory limit ({rss / 2**20:.0f} MB > "
                    f"{memory_limit_mb} MB) and was stopped; raise APERTURE_CASA_MEMORY_LIMIT_MB or "
                    "reduce the product size",
                )
            elif elapsed > time_limit_s:
                failure = CasaTimeout(
                    f"CASA step {function} ran past its time limit of {time_limit_s:.0f} s and was stopped",
                )
            if failure is not None:
                _kill_tree(watched)
                await process.wait()
                break
    except asyncio.CancelledError:
        _kill_tree(watched)
        await process.wait()
        raise
    duration = time.monotonic() - started
    tail = _log_tail(output_log) + "\n" + _log_tail(casa_log)
    if failure is not None:
        failure.detail = tail
        raise failure
    if process.returncode != 0 or not result_path.exists():
        code = process.returncode or 0
        how = f"was killed by signal {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
        raise CasaCrashed(f"the CASA process for {function} {how} before it finished", tail)
    outcome = json.loads(result_path.read_text())
    calls = [CasaCall.model_validate(call) for call in outcome.get("calls", [])]
    if not outcome["ok"]:
        error = JobError(outcome["message"], outcome.get("detail", ""))
        error.error_class = ErrorClass(outcome["error_class"])
        raise error
    log.info(
        "CASA step %s finished in %.1f s, peak RSS %.0f MB", function, duration, peak / 2**20,
        extra={"fields": {"casa_calls": len(calls)}},
    )
    return CasaRun(
        value=outcome["value"], calls=calls, log_path=casa_log, peak_rss_mb=peak / 2**20, duration_s=duration
    )
