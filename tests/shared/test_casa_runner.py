"""The CASA runner: limits end in clear, classified failures, and no CASA process outlives its worker."""

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest
from aperture_contracts.enums import ErrorClass
from aperture_shared.casa.runner import CasaProcessPool, run_casa_step
from aperture_shared.errors import CasaCrashed, CasaOutOfMemory, CasaTimeout, JobError

SUPPORT = Path(__file__).resolve().parents[1] / "support"
pytestmark = pytest.mark.casa


@pytest.fixture(autouse=True)
def _steps_importable(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(SUPPORT.parent))


async def test_a_step_runs_real_casa_in_a_child_and_returns_its_value(tmp_path):
    run = await run_casa_step(
        "support.casa_steps:version", {"x": 1}, workdir=tmp_path, time_limit_s=120, memory_limit_mb=4096
    )
    assert run.value["casatools"].startswith("6.7")
    assert run.value["echo"] == {"x": 1}
    assert run.log_path.parent == tmp_path
    assert run.peak_rss_mb > 0


async def test_a_step_past_its_time_limit_is_stopped_with_a_timeout(tmp_path):
    started = time.monotonic()
    with pytest.raises(CasaTimeout, match="time limit of 3 s"):
        await run_casa_step(
            "support.casa_steps:sleep", {"seconds": 60, "pid_file": str(tmp_path / "pid")},
            workdir=tmp_path, time_limit_s=3, memory_limit_mb=4096,
        )
    assert time.monotonic() - started < 20
    assert not psutil.pid_exists(int((tmp_path / "pid").read_text())) or psutil.Process(
        int((tmp_path / "pid").read_text())).status() == psutil.STATUS_ZOMBIE


async def test_a_casa_process_past_its_memory_limit_is_stopped_as_out_of_memory(tmp_path):
    started = time.monotonic()
    with pytest.raises(CasaOutOfMemory, match="memory limit") as caught:
        await run_casa_step(
            "support.casa_steps:allocate", {"mb": 2500}, workdir=tmp_path, time_limit_s=120, memory_limit_mb=1500
        )
    assert time.monotonic() - started < 60, "it must be stopped when it goes over, not at the time limit"
    assert caught.value.error_class is ErrorClass.OUT_OF_MEMORY
    # The ledger's figure: how far it got, which says how much a retry needs.
    assert caught.value.peak_memory_mb is not None and caught.value.peak_memory_mb > 1500


# Once casatools is imported its own SIGSEGV handler prints a stack trace and exits 255; before, the signal
# kills the process. Which one a step sees depends on how far the process's import got (seen under load).
SEGFAULT = "killed by signal SIGSEGV|exited with code 255"


async def test_a_crashing_step_is_a_casa_crash_naming_the_signal(tmp_path):
    with pytest.raises(CasaCrashed, match=SEGFAULT):
        await run_casa_step("support.casa_steps:crash", {}, workdir=tmp_path, time_limit_s=60, memory_limit_mb=4096)


async def test_a_step_refusing_its_input_keeps_its_error_class_and_message(tmp_path):
    with pytest.raises(JobError, match="not a Measurement Set") as caught:
        await run_casa_step("support.casa_steps:refuse", {}, workdir=tmp_path, time_limit_s=60, memory_limit_mb=4096)
    assert caught.value.error_class is ErrorClass.BAD_INPUT
    assert caught.value.peak_memory_mb is not None and caught.value.peak_memory_mb > 0


def kill_the_worker_and_see_its_casa_child_die(parent: str, pid_file: Path, never_started: str) -> None:
    """Run `parent` (a small worker) until its CASA child writes its pid to `pid_file`, SIGKILL the worker,
    and check that the child, which stays in the worker's process group, dies with it."""
    env = {**os.environ, "PYTHONPATH": str(SUPPORT.parent)}
    worker = subprocess.Popen([sys.executable, "-c", parent], env=env)
    try:
        deadline = time.monotonic() + 60
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert pid_file.exists(), never_started
        child = psutil.Process(int(pid_file.read_text()))
        assert child.ppid() == worker.pid
        assert os.getpgid(child.pid) == os.getpgid(worker.pid), "the child must stay in the worker's group"
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        child.wait(10)  # raises TimeoutExpired if the child outlives its worker
        assert not child.is_running()
    finally:
        worker.kill()


def test_a_worker_killed_with_sigkill_leaves_no_casa_process(tmp_path):
    """The worker (here a small parent process) dies by SIGKILL mid-step; its CASA child must die too."""
    pid_file = tmp_path / "child.pid"
    parent = textwrap.dedent(f"""
        import asyncio
        from pathlib import Path
        from aperture_shared.casa.runner import run_casa_step
        asyncio.run(run_casa_step("support.casa_steps:sleep",
            {{"seconds": 300, "pid_file": "{pid_file}"}}, workdir=Path("{tmp_path / 'work'}"),
            time_limit_s=600, memory_limit_mb=4096))
    """)
    kill_the_worker_and_see_its_casa_child_die(parent, pid_file, "the CASA child never started")


async def test_the_casa_process_gets_the_thread_count_it_is_given(tmp_path):
    run = await run_casa_step(
        "support.casa_steps:environment", {"names": ["OMP_NUM_THREADS"]}, workdir=tmp_path,
        time_limit_s=60, memory_limit_mb=4096, threads=1,
    )
    assert run.value == {"OMP_NUM_THREADS": "1"}


# -- a pool of CASA processes (imported ahead, reused step after step) ----------------------------------


def _idle_pid(pool: CasaProcessPool) -> int:
    pids = pool.idle_pids
    assert len(pids) == 1, f"expected one idle CASA process, found {pids}"
    return pids[0]


def _gone(pid: int) -> bool:
    return not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


async def _until_idle(pid: int, timeout_s: float = 120) -> None:
    """Wait until the process stops using CPU (done importing, blocked on its stdin)."""
    process = psutil.Process(pid)
    deadline = time.monotonic() + timeout_s
    used = sum(process.cpu_times()[:2])
    while time.monotonic() < deadline:
        await asyncio.sleep(1.0)
        now = sum(process.cpu_times()[:2])
        if now - used < 0.02:
            return
        used = now
    raise AssertionError(f"the CASA process {pid} was still busy after {timeout_s} s")


async def test_a_pooled_process_serves_step_after_step_each_in_its_own_directory_and_logs(tmp_path):
    pool = CasaProcessPool(steps_per_process=2)
    await pool.warm_up(None)
    try:
        first_pid = _idle_pid(pool)
        await _until_idle(first_pid)  # it has imported CASA and waits: the step starts at once
        arguments = {"log_line": "step one was here", "print_line": "printed by step one"}
        run = await run_casa_step(
            "support.casa_steps:describe_process", arguments, workdir=tmp_path / "one",
            time_limit_s=120, memory_limit_mb=4096, pool=pool,
        )
        assert run.value["pid"] == first_pid
        assert run.startup_s < 1.0
        assert Path(run.value["cwd"]) == (tmp_path / "one").resolve()
        assert "step one was here" in (tmp_path / "one" / "casa.log").read_text()
        assert "printed by step one" in (tmp_path / "one" / "casa-output.log").read_text()
        # Idle again, it has left the step's directory: it is not taken for a process working on a job.
        assert _idle_pid(pool) == first_pid
        assert not Path(psutil.Process(first_pid).cwd()).is_relative_to(tmp_path)

        run = await run_casa_step(
            "support.casa_steps:describe_process", {"log_line": "two", "print_line": "two"},
            workdir=tmp_path / "two", time_limit_s=120, memory_limit_mb=4096, pool=pool,
        )
        assert run.value["pid"] == first_pid, "the same process serves the next step"
        assert "step one was here" not in (tmp_path / "two" / "casa.log").read_text()
        assert "printed by step one" not in (tmp_path / "two" / "casa-output.log").read_text()
        assert "two" in (tmp_path / "two" / "casa-output.log").read_text()

        # Two steps served: it is retired, and a fresh one waits in its place.
        assert _gone(first_pid)
        assert _idle_pid(pool) != first_pid
    finally:
        await pool.close()


async def test_a_pooled_process_is_replaced_after_a_failed_step(tmp_path):
    pool = CasaProcessPool()
    await pool.warm_up(None)
    try:
        first_pid = _idle_pid(pool)
        with pytest.raises(JobError, match="not a Measurement Set"):
            await run_casa_step(
                "support.casa_steps:refuse", {}, workdir=tmp_path / "refused", time_limit_s=60,
                memory_limit_mb=4096, pool=pool,
            )
        assert _gone(first_pid), "a process whose step failed may hold CASA tools open: it is let go"
        second_pid = _idle_pid(pool)
        with pytest.raises(CasaCrashed, match=SEGFAULT):
            await run_casa_step(
                "support.casa_steps:crash", {}, workdir=tmp_path / "crashed", time_limit_s=60,
                memory_limit_mb=4096, pool=pool,
            )
        assert _gone(second_pid)
        run = await run_casa_step(
            "support.casa_steps:version", {"x": 2}, workdir=tmp_path / "after", time_limit_s=120,
            memory_limit_mb=4096, pool=pool,
        )
        assert run.value["echo"] == {"x": 2}
    finally:
        await pool.close()


async def test_a_pooled_process_with_other_threads_is_not_used(tmp_path):
    pool = CasaProcessPool()
    await pool.warm_up(None)
    try:
        unthreaded_pid = _idle_pid(pool)
        run = await run_casa_step(
            "support.casa_steps:describe_process", {"log_line": "x", "print_line": "x"}, workdir=tmp_path,
            time_limit_s=120, memory_limit_mb=4096, threads=1, pool=pool,
        )
        assert run.value["pid"] != unthreaded_pid
        assert run.value["omp"] == "1"
        assert _gone(unthreaded_pid)
    finally:
        await pool.close()


async def test_a_pooled_step_past_its_time_limit_or_cancelled_is_killed(tmp_path):
    pool = CasaProcessPool()
    await pool.warm_up(None)
    try:
        await _until_idle(_idle_pid(pool))
        with pytest.raises(CasaTimeout, match="time limit of 20 s"):
            await run_casa_step(
                "support.casa_steps:sleep", {"seconds": 120, "pid_file": str(tmp_path / "timed.pid")},
                workdir=tmp_path / "timed", time_limit_s=20, memory_limit_mb=4096, pool=pool,
            )
        assert _gone(int((tmp_path / "timed.pid").read_text()))

        pid_file = tmp_path / "cancelled.pid"
        await _until_idle(_idle_pid(pool))
        step = asyncio.create_task(run_casa_step(
            "support.casa_steps:sleep", {"seconds": 120, "pid_file": str(pid_file)},
            workdir=tmp_path / "cancelled", time_limit_s=600, memory_limit_mb=4096, pool=pool,
        ))
        deadline = time.monotonic() + 60
        while not pid_file.exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        step.cancel()
        with pytest.raises(asyncio.CancelledError):
            await step
        cancelled = int(pid_file.read_text())
        assert _gone(cancelled)
        assert _idle_pid(pool) != cancelled, "a fresh process replaces the killed one"
    finally:
        await pool.close()


def test_a_worker_killed_with_sigkill_leaves_no_pooled_casa_process(tmp_path):
    pid_file = tmp_path / "pooled.pid"
    parent = textwrap.dedent(f"""
        import asyncio
        from pathlib import Path
        from aperture_shared.casa.runner import CasaProcessPool
        async def main():
            pool = CasaProcessPool()
            await pool.warm_up(None)
            Path("{pid_file}").write_text(str(pool.idle_pids[0]))
            await asyncio.sleep(300)
        asyncio.run(main())
    """)
    kill_the_worker_and_see_its_casa_child_die(parent, pid_file, "no process was started")
