"""Aperture's services as real processes for end-to-end tests: started, probed, killed like in production."""

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import urllib3

BIN = Path(__file__).resolve().parents[2] / ".venv" / "bin"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ServiceProcess:
    name: str
    argv: list[str]
    env: dict[str, str]
    health_url: str
    log_path: Path
    process: subprocess.Popen | None = field(default=None, repr=False)

    def start(self, wait: bool = True, timeout: float = 60.0) -> "ServiceProcess":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                self.argv, env={**os.environ, **self.env}, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        if wait:
            self.wait_healthy(timeout)
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise AssertionError(f"{self.name} exited while starting:\n{self.log_tail()}")
            try:
                if urllib3.request("GET", self.health_url, timeout=2, retries=False).status == 200:
                    return
            except urllib3.exceptions.HTTPError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"{self.name} not healthy at {self.health_url} after {timeout} s:\n{self.log_tail()}")

    def wait_exit(self, timeout: float = 60.0) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def kill(self) -> None:
        """SIGKILL, as the kernel's OOM killer or a node failure would."""
        if self.alive():
            assert self.process is not None
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.alive():
            assert self.process is not None
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for_log(self, text: str, timeout: float = 30.0) -> bool:
        """Whether `text` appears in the log within `timeout`: what a process does after the state a test
        polled for (a redelivered message handled after its first copy completed) lands there a little later."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log_text():
                return True
            time.sleep(0.2)
        return text in self.log_text()


def casa_step_processes(scratch: Path) -> list[psutil.Process]:
    """The CASA processes running a job's step under `scratch`. A step's process works in the job's
    directory there while the step runs; a worker's idle process waits outside it and is not listed."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if "aperture_shared.casa.child" not in " ".join(process.info["cmdline"] or []):
            continue
        try:
            if Path(process.cwd()).is_relative_to(scratch):
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def coordinator(env: dict[str, str], log_dir: Path, **extra_env: str) -> ServiceProcess:
    port = env["APERTURE_API_PORT"]
    return ServiceProcess(
        "coordinator", [str(BIN / "aperture-coordinator"), "serve"], {**env, **extra_env},
        f"http://127.0.0.1:{port}/readyz", log_dir / "coordinator.log",
    )


def stage_worker(stage: str, env: dict[str, str], log_dir: Path, index: int = 0, **extra_env: str) -> ServiceProcess:
    """The worker of a stage (`aperture-<stage>`), with its health endpoint on a free port."""
    port = free_port()
    return ServiceProcess(
        f"{stage}-{index}", [str(BIN / f"aperture-{stage}")],
        {**env, "APERTURE_HTTP_PORT": str(port), **extra_env},
        f"http://127.0.0.1:{port}/readyz", log_dir / f"{stage}-{index}.log",
    )
