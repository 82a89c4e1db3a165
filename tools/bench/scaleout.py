"""Scale-out benchmark: the same MOUS through the science chain with 1, then N imaging workers.

    .venv/bin/python tools/bench/scaleout.py [--workers 1 2] [--seed 7]

Needs the servers of `make infra` (RabbitMQ, S3). Each run gets its own coordinator (a fresh SQLite
database on a free port) and its own bucket, so runs never share state. Prints, per run: the wall time
from submission to the end of imaging, the imaging phase's wall time, and the sum of the imaging jobs'
own durations (the work a single worker would do one job after another).
"""

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from aperture_cli.client import ApertureClient
from aperture_contracts.enums import MousState, Stage
from aperture_testdata.generator import generate_mous

BIN = Path(sys.executable).parent
FIRST_STAGES = ("ingest", "calibration", "findcont")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def run_once(package: Path, imaging_workers: int, scratch: Path) -> dict[str, float]:
    port = free_port()
    env = {
        **os.environ,
        "APERTURE_S3_BUCKET": f"bench-{uuid.uuid4().hex[:10]}",
        "APERTURE_DATABASE_URL": f"sqlite:///{scratch / f'bench-{port}.db'}",
        "APERTURE_API_PORT": str(port),
        "APERTURE_ENABLED_STAGES": "ingest,calibration,findcont,imaging",
        "APERTURE_RECONCILE_INTERVAL_S": "1",
        "APERTURE_CASA_SCRATCH_ROOT": str(scratch / "work"),
        # One thread per CASA process, so that N workers share N cores instead of contending for them.
        "APERTURE_CASA_THREADS": "1",
    }
    processes = [start([str(BIN / "aperture-coordinator"), "serve"], env, scratch / f"coordinator-{port}.log")]
    stages = [*FIRST_STAGES, *["imaging"] * imaging_workers]
    for index, stage in enumerate(stages):
        worker_env = {**env, "APERTURE_HTTP_PORT": str(free_port())}
        processes.append(start([str(BIN / f"aperture-{stage}")], worker_env, scratch / f"{stage}-{index}-{port}.log"))
    try:
        with ApertureClient(f"http://127.0.0.1:{port}") as client:
            deadline = time.monotonic() + 120
            while True:
                try:
                    client.list_mous()
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)
            time.sleep(3)  # let the workers connect before the clock starts
            submitted = time.monotonic()
            mous_id = client.submit(package).summary.mous_id
            while True:
                detail = client.get_mous(mous_id)
                if detail.state in (MousState.WAITING_FOR_SERVICE, MousState.FAILED, MousState.COMPLETED):
                    break
                time.sleep(1)
            total = time.monotonic() - submitted
        if detail.state is not MousState.WAITING_FOR_SERVICE:
            raise SystemExit(f"the MOUS ended {detail.state}: {detail.errors}")
        imaging = [job for job in detail.jobs if job.stage is Stage.IMAGING]
        starts = [a.started_at for job in imaging for a in job.attempts if a.started_at]
        ends = [a.ended_at for job in imaging for a in job.attempts if a.ended_at]
        work = sum((a.ended_at - a.started_at).total_seconds() for job in imaging for a in job.attempts
                   if a.started_at and a.ended_at)
        return {
            "total_s": total,
            "imaging_wall_s": (max(ends) - min(starts)).total_seconds(),
            "imaging_work_s": work,
            "imaging_jobs": float(len(imaging)),
        }
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            process.wait(60)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aperture-bench-") as tmp:
        scratch = Path(tmp)
        mous = generate_mous(scratch / "mous", seed=args.seed, package=scratch / "package.tar")
        assert mous.package is not None
        print(f"{'imaging workers':>15} {'jobs':>5} {'MOUS wall s':>12} {'imaging wall s':>15} "
              f"{'imaging work s':>15} {'speed-up':>9}")
        baseline = None
        for workers in args.workers:
            figures = run_once(mous.package, workers, scratch)
            baseline = baseline or figures["imaging_wall_s"]
            print(f"{workers:>15} {figures['imaging_jobs']:>5.0f} {figures['total_s']:>12.1f} "
                  f"{figures['imaging_wall_s']:>15.1f} {figures['imaging_work_s']:>15.1f} "
                  f"{baseline / figures['imaging_wall_s']:>8.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
