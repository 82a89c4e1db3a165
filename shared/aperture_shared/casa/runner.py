"""Run a CASA step out of the worker's process, with a time limit, a memory limit and its own log.

Why a subprocess: a hung or crashing CASA task must not take the worker down, and must be stoppable.
Why a resident-memory watch and not an address-space limit: CASA under RLIMIT_AS hangs instead of failing
(CASA-NOTES); here the process tree's RSS is sampled and the tree killed when it goes over, which ends in
a clear OUT_OF_MEMORY failure.
Why PR_SET_PDEATHSIG: the child stays in the worker's process group (an orchestrator's group kill takes
it too) and the kernel kills it when the worker dies, even by SIGKILL, so no orphan keeps table locks.
Why a prestarted process (PrestartedCasa): starting Python and importing CASA takes seconds per step,
which on small jobs is much of their time. A worker keeps one CASA process started and imported ahead of
its next step; the step still gets a process of its own, never used before and gone after it, started by
the worker with the same limits, so nothing above changes: only when the import is paid.
"""

import asyncio
import ctypes
import json
import logging
import os
import signal
import sys
import time
from asyncio.subprocess import Process
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
    startup_s: float  # of duration_s: until the step function began (~0 when prestarted and imported)


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


async def _start_child(arguments: list[str], workdir: Path, environment: dict[str, str], **streams: Any) -> Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aperture_shared.casa.child", *arguments,
        cwd=workdir, preexec_fn=_die_with_parent, env=environment, **streams,
    )


class PrestartedCasa:
    """One CASA process kept started and imported for a worker's next step (see the module's docstring).

    `take` hands it over, and the runner starts the next one at once, so that it imports while the step
    runs; a process that died, or was started with another environment (thread count), is not used: the
    step then starts its own as before. Idle, it waits on stdin and holds only the imported modules (~0.3 GB).
    """

    def __init__(self) -> None:
        self._process: Process | None = None
        self._environment: dict[str, str] = {}
        self._preload: list[str] = []  # the module of the last step: the next one is likely the same

    async def warm_up(self, threads: int | None) -> None:
        """Start the first one (at worker start, so that even the first step finds CASA imported)."""
        await self.replenish(_child_environment(threads))

    async def replenish(self, environment: dict[str, str], step_function: str | None = None) -> None:
        """Start a process for the next step unless one with this environment is waiting; it imports
        the module of `step_function` (the step just handed over) too."""
        if step_function is not None:
            self._preload = [step_function.split(":")[0]]
        if self._process is not None and self._process.returncode is None and self._environment == environment:
            return
        await self.close()
        self._process = await _start_child(
            ["--prestart", *self._preload], Path.cwd(), environment, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )
        self._environment = environment

    async def take(self, environment: dict[str, str]) -> Process | None:
        process, self._process = self._process, None
        if process is None:
            return None
        if process.returncode is not None or self._environment != environment:
            await _stop(process)
            return None
        return process

    async def close(self) -> None:
        """Let the waiting process go (the worker is stopping)."""
        process, self._process = self._process, None
        if process is not None:
            await _stop(process)


async def _stop(process: Process) -> None:
    if process.returncode is None:
        try:
            process.kill()
        except ProcessLookupError:
            pass
    await process.wait()


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
    prestarted: PrestartedCasa | None = None,
) -> CasaRun:
    """Run `module:function(arguments, calls)` in a fresh CASA process whose cwd is `workdir`.

    Raises CasaTimeout, CasaOutOfMemory, CasaCrashed, or the JobError the step raised. Cancelling the
    awaiting task kills the process tree. threads: the OpenMP threads CASA may use (None: its own choice,
    all cores); one per worker lets N workers share N cores without contending. prestarted: the worker's
    prestarted process to run the step in, if one is ready (and the next is started).
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
                "result_path": str(result_path.resolve()),
                "casa_log": str(casa_log.resolve()),
                "workdir": str(workdir.resolve()),
                "output_log": str(output_log.resolve()),
            }
        )
    )
    environment = _child_environment(threads)
    started = time.monotonic()
    handed_at = time.time()
    process = await prestarted.take(environment) if prestarted is not None else None
    if process is not None:
        assert process.stdin is not None
        process.stdin.write(f"{spec_path.resolve()}\n".encode())
        process.stdin.close()
    else:
        with output_log.open("wb") as output:
            process = await _start_child(
                [str(spec_path)], workdir, environment,
                stdin=asyncio.subprocess.DEVNULL, stdout=output, stderr=output,
            )
    watched = psutil.Process(process.pid)
    limit_bytes = memory_limit_mb * 1024 * 1024
    peak = 0
    failure: JobError | None = None
    try:
        if prestarted is not None:
            await prestarted.replenish(environment, function)  # it imports CASA while this step runs
        # Sampled before each wait, not after: a prestarted process can finish a small step within one
        # interval, and its memory (CASA imported) must still be measured.
        while process.returncode is None:
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
            try:
                await asyncio.wait_for(process.wait(), timeout=_SAMPLE_INTERVAL_S)
            except TimeoutError:
                pass
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
    startup = min(duration, max(0.0, float(outcome.get("ready_at", handed_at)) - handed_at))
    log.info(
        "CASA step %s finished in %.1f s (%.1f s of it before the step began), peak RSS %.0f MB",
        function, duration, startup, peak / 2**20,
        extra={"fields": {
            "casa_calls": len(calls), "step_s": round(duration, 3), "startup_s": round(startup, 3),
            "task_s": round(sum(call.duration_s for call in calls), 3),
        }},
    )
    return CasaRun(
        value=outcome["value"], calls=calls, log_path=casa_log, peak_rss_mb=peak / 2**20, duration_s=duration,
        startup_s=startup,
    )
