"""The CASA runner: limits end in clear, classified failures, and no CASA process outlives its worker."""

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
from aperture_shared.casa.runner import run_casa_step
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


async def test_a_crashing_step_is_a_casa_crash_naming_the_signal(tmp_path):
    with pytest.raises(CasaCrashed, match="SIGSEGV"):
        await run_casa_step("support.casa_steps:crash", {}, workdir=tmp_path, time_limit_s=60, memory_limit_mb=4096)


async def test_a_step_refusing_its_input_keeps_its_error_class_and_message(tmp_path):
    with pytest.raises(JobError, match="not a Measurement Set") as caught:
        await run_casa_step("support.casa_steps:refuse", {}, workdir=tmp_path, time_limit_s=60, memory_limit_mb=4096)
    assert caught.value.error_class is ErrorClass.BAD_INPUT


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
    env = {**os.environ, "PYTHONPATH": str(SUPPORT.parent)}
    worker = subprocess.Popen([sys.executable, "-c", parent], env=env)
    try:
        deadline = time.monotonic() + 60
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert pid_file.exists(), "the CASA child never started"
        child = psutil.Process(int(pid_file.read_text()))
        assert child.ppid() == worker.pid
        assert os.getpgid(child.pid) == os.getpgid(worker.pid), "the child must stay in the worker's group"
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        child.wait(10)  # raises TimeoutExpired if the child outlives its worker
        assert not child.is_running()
    finally:
        worker.kill()


async def test_the_casa_process_gets_the_thread_count_it_is_given(tmp_path):
    run = await run_casa_step(
        "support.casa_steps:environment", {"names": ["OMP_NUM_THREADS"]}, workdir=tmp_path,
        time_limit_s=60, memory_limit_mb=4096, threads=1,
    )
    assert run.value == {"OMP_NUM_THREADS": "1"}
