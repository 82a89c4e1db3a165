"""One MOUS through the system (its own coordinator, one ingest and one calibration worker, N findcont
and N imaging workers, as separate processes) and the record of what it did.

The record comes from the run's own coordinator database (SQLite, read once the MOUS is done): every
job's attempt times and the CASA task calls its worker reported (`casa_calls` of JobSucceeded, with full
parameters). How long each CASA step took, and how much of it was process start and CASA import, is only
in the workers' logs (the runner logs it per step), so those are read too.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from aperture_cli.client import ApertureClient
from aperture_contracts.enums import JobState, MousState
from aperture_contracts.events import CasaCall
from aperture_coordinator.models import Job
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session, selectinload

BIN = Path(sys.executable).parent
SINGLE_STAGES = ("ingest", "calibration")  # one job per MOUS: one worker each
FAN_OUT_STAGES = ("findcont", "imaging")  # jobs per target and spw: `workers` workers each
# Older runners said only this about a step; newer ones log its figures as fields (see StepTiming).
_STEP_MESSAGE = re.compile(r"^CASA step (?P<function>\S+) finished in (?P<seconds>[0-9.]+) s")


@dataclass
class StepTiming:
    """One CASA step as its worker's runner saw it."""

    function: str
    duration_s: float  # from handing the step to a CASA process until its result was read
    startup_s: float | None  # of that: process start and CASA import before the step function ran


@dataclass
class JobRecord:
    job_id: str
    stage: str
    kind: str
    started_at: datetime
    ended_at: datetime
    calls: list[CasaCall]
    steps: list[StepTiming] = field(default_factory=list)

    @property
    def wall_s(self) -> float:
        return (self.ended_at - self.started_at).total_seconds()

    @property
    def task_s(self) -> float:
        return sum(call.duration_s for call in self.calls)


@dataclass
class SystemRun:
    workers: int
    submitted_at: datetime
    jobs: list[JobRecord]
    scratch_root: Path  # APERTURE_CASA_SCRATCH_ROOT of this run: the prefix of the recorded paths

    @property
    def ended_at(self) -> datetime:
        return max(job.ended_at for job in self.jobs)

    @property
    def wall_s(self) -> float:
        """Submission (the package upload included) to the end of the last job."""
        return (self.ended_at - self.submitted_at).total_seconds()

    def calls_in_order(self) -> list[CasaCall]:
        """Every task call of the run, in the order they started (which respects the jobs' dependencies:
        a job starts only after the jobs it reads from have ended)."""
        return sorted((call for job in self.jobs for call in job.calls), key=lambda call: call.started_at)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_process(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def run_system(package: Path, workers: int, workdir: Path) -> SystemRun:
    """Submit `package` to a fresh stack (own database, bucket and scratch root; the shared RabbitMQ and
    S3 servers) and wait until every job that can run has run. Raises SystemExit if the MOUS fails."""
    port = free_port()
    run_dir = workdir / f"system-{workers}w-{port}"
    run_dir.mkdir(parents=True)
    database = run_dir / "coordinator.db"
    scratch_root = run_dir / "scratch"
    env = {
        **os.environ,
        "APERTURE_S3_BUCKET": f"bench-{uuid.uuid4().hex[:10]}",
        "APERTURE_DATABASE_URL": f"sqlite:///{database}",
        "APERTURE_API_PORT": str(port),
        "APERTURE_ENABLED_STAGES": "ingest,calibration,findcont,imaging",
        "APERTURE_RECONCILE_INTERVAL_S": "1",
        "APERTURE_CASA_SCRATCH_ROOT": str(scratch_root),
        # One thread per CASA process, so that N workers share N cores instead of contending for them.
        "APERTURE_CASA_THREADS": "1",
        "APERTURE_LOG_JSON": "true",
    }
    processes = [start_process([str(BIN / "aperture-coordinator"), "serve"], env, run_dir / "coordinator.log")]
    worker_logs = []
    for index, stage in enumerate([*SINGLE_STAGES, *[stage for stage in FAN_OUT_STAGES for _ in range(workers)]]):
        worker_env = {**env, "APERTURE_HTTP_PORT": str(free_port())}
        worker_logs.append(run_dir / f"{stage}-{index}.log")
        processes.append(start_process([str(BIN / f"aperture-{stage}")], worker_env, worker_logs[-1]))
    try:
        with ApertureClient(f"http://127.0.0.1:{port}") as client:
            wait_for_api(client)
            time.sleep(5)  # let the workers connect (and warm up) before the clock starts
            submitted_at = datetime.now(UTC)
            mous_id = client.submit(package).summary.mous_id
            while True:
                detail = client.get_mous(mous_id)
                if detail.state in (MousState.WAITING_FOR_SERVICE, MousState.FAILED, MousState.COMPLETED):
                    break
                time.sleep(1)
        if detail.state is MousState.FAILED:
            raise SystemExit(f"the MOUS failed with {workers} worker(s) per stage: {detail.reason}")
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            process.wait(60)
    jobs = _read_jobs(database, mous_id)
    steps = _read_steps(worker_logs)
    for job in jobs:
        job.steps = steps.get(job.job_id, [])
    return SystemRun(workers=workers, submitted_at=submitted_at, jobs=jobs, scratch_root=scratch_root)


def wait_for_api(client: ApertureClient) -> None:
    deadline = time.monotonic() + 120
    while True:
        try:
            client.list_mous()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _read_jobs(database: Path, mous_id: str) -> list[JobRecord]:
    """The succeeded jobs with their (last) attempt's times and the CASA calls the worker reported."""
    engine = create_engine(f"sqlite:///{database}")
    records: list[JobRecord] = []
    with Session(engine) as session:
        jobs = session.scalars(
            select(Job).where(Job.mous_id == mous_id).options(selectinload(Job.attempts))
        ).all()
        for job in jobs:
            if job.state is not JobState.SUCCEEDED or job.result is None:
                continue
            attempt = job.current_attempt()
            if attempt is None or attempt.started_at is None or attempt.ended_at is None:
                continue
            records.append(
                JobRecord(
                    job_id=job.job_id, stage=job.stage.value, kind=job.kind,
                    started_at=attempt.started_at, ended_at=attempt.ended_at,
                    calls=[CasaCall.model_validate(call) for call in job.result.get("casa_calls", [])],
                )
            )
    engine.dispose()
    return sorted(records, key=lambda record: record.started_at)


def _read_steps(worker_logs: list[Path]) -> dict[str, list[StepTiming]]:
    """job id -> its CASA steps, from the runner's "CASA step ... finished" log lines."""
    steps: dict[str, list[StepTiming]] = {}
    for path in worker_logs:
        for line in path.read_text(errors="replace").splitlines():
            if not line.startswith("{") or "CASA step" not in line:
                continue
            entry = json.loads(line)
            message = _STEP_MESSAGE.match(str(entry.get("message", "")))
            if message is None or "job_id" not in entry:
                continue
            startup = entry.get("startup_s")
            steps.setdefault(str(entry["job_id"]), []).append(
                StepTiming(
                    function=message["function"],
                    duration_s=float(entry.get("step_s", message["seconds"])),
                    startup_s=float(startup) if startup is not None else None,
                )
            )
    return steps
