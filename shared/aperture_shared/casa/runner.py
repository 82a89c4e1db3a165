"""Run a CASA step out of the worker's process, with a time limit, a memory limit and its own log.

Why a subprocess: a hung or crashing CASA task must not take the worker down, and must be stoppable.
Why a resident-memory watch and not an address-space limit: CASA under RLIMIT_AS hangs instead of failing
(CASA-NOTES); here the process tree's RSS is sampled and the tree killed when it goes over, which ends in
a clear OUT_OF_MEMORY failure.
Why PR_SET_PDEATHSIG: the child stays in the worker's process group (an orchestrator's group kill takes
it too) and the kernel kills it when the worker dies, even by SIGKILL, so no orphan keeps table locks.
Why a pool of reused processes (CasaProcessPool): starting Python and importing CASA takes seconds, and
the first call of a task in a process pays again for what it loads (tclean's first call is ~0.5 s
slower). On small jobs that was much of their time, and a process imported ahead in parallel took CPU
from the steps running beside it. A worker's process therefore serves step after step, like a script
of the same calls would, within the same limits: a step over its time or memory limit, or cancelled,
kills the process (and its pool starts a fresh one), and a process is retired after any failed step.
"""

import asyncio
import contextlib
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

from aperture_shared.casa.child import DONE
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
    startup_s: float  # of duration_s: until the step function began (~0 in a pool's process, imported ahead)


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


async def _start_child(
    preload: list[str], workdir: Path, environment: dict[str, str], stderr: Any = asyncio.subprocess.DEVNULL
) -> Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aperture_shared.casa.child", *preload,
        cwd=workdir, preexec_fn=_die_with_parent, env=environment,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=stderr,
    )


@dataclass
class _Served:
    process: Process
    environment: dict[str, str]
    steps: int = 0


class CasaProcessPool:
    """A worker's CASA processes, started and imported ahead and reused step after step (see the module's
    docstring).

    `acquire` hands out an idle process started with the step's environment (thread count), or starts one;
    `release` takes it back after its step. A process is let go, and a fresh one started in its place at
    once (it imports while the worker does other things), after `steps_per_process` steps, after any step
    that did not succeed (a failed step may leave CASA tools open or in a bad state), or when it holds half
    its memory limit at rest (the next step would start with only half the room). Idle, a process waits on
    stdin and holds the imported modules (~0.3 GB).
    """

    def __init__(self, steps_per_process: int = 50) -> None:
        if steps_per_process < 1:
            raise ValueError(f"a CASA process serves at least one step; got {steps_per_process}")
        self.steps_per_process = steps_per_process
        self._idle: list[_Served] = []
        self._preload: list[str] = []  # the module of the last step: the next one is likely the same

    async def warm_up(self, threads: int | None) -> None:
        """Start the first one (at worker start, so that even the first step finds CASA imported)."""
        await self._start(_child_environment(threads))

    async def acquire(self, environment: dict[str, str], step_function: str) -> _Served:
        self._preload = [step_function.split(":")[0]]
        while self._idle:
            served = self._idle.pop()
            if served.process.returncode is None and served.environment == environment:
                return served
            await _stop(served.process)
        await self._start(environment)
        return self._idle.pop()

    async def release(self, served: _Served, *, succeeded: bool, rss_bytes: int, memory_limit_bytes: int) -> None:
        served.steps += 1
        worn = served.steps >= self.steps_per_process or rss_bytes > memory_limit_bytes / 2
        if succeeded and not worn and served.process.returncode is None:
            self._idle.append(served)
            return
        await _stop(served.process)
        await self._start(served.environment)

    async def _start(self, environment: dict[str, str]) -> None:
        process = await _start_child(self._preload, Path.cwd(), environment)
        self._idle.append(_Served(process, environment))

    async def close(self) -> None:
        """Let the idle processes go (the worker is stopping)."""
        idle, self._idle = self._idle, []
        for served in idle:
            await _stop(served.process)

    @property
    def idle_pids(self) -> list[int]:
        return [served.process.pid for served in self._idle]


async def _stop(process: Process) -> None:
    """Close its stdin (it exits when idle) and make sure it is gone."""
    if process.stdin is not None and not process.stdin.is_closing():
        process.stdin.close()
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
    pool: CasaProcessPool | None = None,
) -> CasaRun:
    """Run `module:function(arguments, calls)` in a CASA process whose cwd is `workdir` while it runs.

    Raises CasaTimeout, CasaOutOfMemory, CasaCrashed, or the JobError the step raised. Cancelling the
    awaiting task kills the process tree. threads: the OpenMP threads CASA may use (None: its own choice,
    all cores); one per worker lets N workers share N cores without contending. pool: the worker's CASA
    processes to run the step in (one of them, imported ahead); without one the step gets a process of its
    own that exits after it.
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
    if pool is not None:
        served = await pool.acquire(environment, function)
    else:
        with output_log.open("ab") as output:  # what it prints while importing CASA lands there too
            served = _Served(await _start_child([], workdir, environment, stderr=output), environment)
    process = served.process
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(f"{spec_path.resolve()}\n".encode())
    if pool is None:
        process.stdin.close()  # one step, then it exits
    answer = asyncio.ensure_future(process.stdout.readline())
    watched = psutil.Process(process.pid)
    limit_bytes = memory_limit_mb * 1024 * 1024
    peak = rss = 0
    failure: JobError | None = None
    try:
        # Sampled before each wait, not after: an imported process can finish a small step within one
        # interval, and its memory (CASA imported) must still be measured.
        while not answer.done():
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
                break
            await asyncio.wait({answer}, timeout=_SAMPLE_INTERVAL_S)
    except asyncio.CancelledError:
        _kill_tree(watched)
        answer.cancel()
        await _after_step(pool, served, succeeded=False, rss_bytes=0, limit_bytes=limit_bytes)
        raise
    answered = answer.done() and not answer.cancelled() and answer.result().strip() == DONE.encode()
    answer.cancel()
    duration = time.monotonic() - started
    outcome = json.loads(result_path.read_text()) if answered and result_path.exists() else None
    succeeded = failure is None and outcome is not None and outcome["ok"]
    if answered:
        rss = _tree_rss_bytes(watched)  # at rest, after the step
    await _after_step(pool, served, succeeded=succeeded, rss_bytes=rss, limit_bytes=limit_bytes)
    tail = _log_tail(output_log) + "\n" + _log_tail(casa_log)
    if failure is None and outcome is None:
        # Its output closed because it died; it may not be reaped yet, and the signal is in its exit status.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), timeout=5)
        code = process.returncode or 0
        how = f"was killed by signal {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
        failure = CasaCrashed(f"the CASA process for {function} {how} before it finished", tail)
    elif failure is None and outcome is not None and not outcome["ok"]:
        failure = JobError(outcome["message"], outcome.get("detail", ""))
        failure.error_class = ErrorClass(outcome["error_class"])
    if failure is not None:
        failure.detail = failure.detail or tail
        failure.peak_memory_mb = round(peak / 2**20, 1)
        raise failure
    assert outcome is not None
    calls = [CasaCall.model_validate(call) for call in outcome.get("calls", [])]
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


async def _after_step(
    pool: CasaProcessPool | None, served: _Served, *, succeeded: bool, rss_bytes: int, limit_bytes: int
) -> None:
    """Give the process back to the pool, or, when it had no pool (or was killed), see it gone."""
    if pool is not None:
        await pool.release(served, succeeded=succeeded, rss_bytes=rss_bytes, memory_limit_bytes=limit_bytes)
    else:
        await _stop(served.process)
