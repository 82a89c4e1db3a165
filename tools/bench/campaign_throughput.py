"""Campaign benchmark: a campaign of generated MOUS through the whole system on this machine (its own
coordinator and one worker per stage, as separate processes, on the servers of `make infra`), and what it
cost: MOUS per hour, time per MOUS, and the coordinator's own CPU per job event, from which a campaign of
10,000 MOUS is estimated.

    .venv/bin/python tools/bench/campaign_throughput.py [--mous 12] [--recipe full|quicklook]
        [--scenario campaign_tiny] [--in-flight 4]

The coordinator's CPU is read from /proc for its process (API, event consumer, reconcile loop, relay and
feeder together) and divided by the job events it applied (started + ended, from its processed_events);
that includes its HTTP answers to this script's polling (one request every 2 s), a small share.
"""

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from aperture_cli.campaign_client import CampaignClient
from aperture_contracts.campaigns import CampaignCreate, CampaignState
from aperture_contracts.enums import Recipe
from aperture_coordinator.models import Attempt, Job, Mous, ProcessedEvent
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session
from system_run import BIN, free_port, start_process, wait_for_api

STAGES = ("ingest", "calibration", "findcont", "imaging", "previews", "footprint", "export")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
OPERATOR_TOKEN = "aperture-dev-token"  # the coordinator's development token when APERTURE_API_TOKENS is unset
TARGET_MOUS = 10_000


@dataclass(frozen=True)
class CampaignFigures:
    members: int
    completed: int
    wall_s: float
    coordinator_cpu_s: float
    events: int
    attempts: int
    mous_wall_s: list[float]  # submission to the last job's end, per completed MOUS

    @property
    def per_hour(self) -> float:
        return self.completed / self.wall_s * 3600

    @property
    def cpu_per_event_ms(self) -> float:
        return self.coordinator_cpu_s / max(1, self.events) * 1000


def cpu_seconds(pid: int) -> float:
    """User + system CPU of one process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime (fields 14 and 15 of stat)


def make_packages(scenario: str, count: int, root: Path) -> list[Path]:
    from aperture_testdata.generator import generate_mous

    return [
        generate_mous(root / f"{scenario}-{seed}", seed=seed, scenario=scenario,
                      package=root / f"{scenario}-{seed}.ms.tar.gz").package
        for seed in range(1, count + 1)
    ]


def run_campaign(packages: list[Path], members: int, recipe: Recipe, in_flight: int, workdir: Path) -> CampaignFigures:
    port = free_port()
    database = workdir / "coordinator.db"
    env = {
        **os.environ,
        "APERTURE_S3_BUCKET": f"bench-{uuid.uuid4().hex[:10]}",
        "APERTURE_DATABASE_URL": f"sqlite:///{database}",
        "APERTURE_API_PORT": str(port),
        "APERTURE_ENABLED_STAGES": ",".join(STAGES),
        "APERTURE_RECONCILE_INTERVAL_S": "1",
        "APERTURE_CASA_SCRATCH_ROOT": str(workdir / "scratch"),
        "APERTURE_LOG_JSON": "true",
    }
    coordinator = start_process([str(BIN / "aperture-coordinator"), "serve"], env, workdir / "coordinator.log")
    processes = [coordinator] + [
        start_process([str(BIN / f"aperture-{stage}")], {**env, "APERTURE_HTTP_PORT": str(free_port())},
                      workdir / f"{stage}.log")
        for stage in STAGES
    ]
    try:
        with CampaignClient(f"http://127.0.0.1:{port}", token=OPERATOR_TOKEN, timeout_s=60) as client:
            wait_for_api(client)
            time.sleep(5)  # let the workers connect and warm up their CASA processes
            from aperture_shared.settings import CommonSettings
            from aperture_shared.storage import ObjectStore

            store = ObjectStore(CommonSettings(s3_bucket=env["APERTURE_S3_BUCKET"]))
            store.ensure_bucket()
            rows = []
            for index in range(members):
                key = f"archive/bench/uid___A001_X9b0_X{index + 1:x}.ms.tar.gz"
                store.put_file(key, packages[index % len(packages)], "application/gzip")
                rows.append({"mous_id": f"uid://A001/X9b0/X{index + 1:x}", "object_key": key})
            cpu_before = cpu_seconds(coordinator.pid)
            started = time.monotonic()
            body = CampaignCreate(name="bench", pipeline_version="bench", recipe=recipe, max_in_flight=in_flight,
                                  members=rows)
            campaign_id = client.submit_campaign(body).campaign.campaign_id
            while (view := client.get_campaign(campaign_id)).state is not CampaignState.COMPLETED:
                time.sleep(2)
            wall = time.monotonic() - started
            cpu = cpu_seconds(coordinator.pid) - cpu_before
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            process.wait(60)
    engine = create_engine(f"sqlite:///{database}")
    with Session(engine) as session:
        events = session.scalar(select(func.count()).select_from(ProcessedEvent)) or 0
        attempts = session.scalar(select(func.count()).select_from(Attempt)) or 0
        spans = session.execute(
            select(Mous.id, Mous.submitted_at, func.max(Attempt.ended_at))
            .join(Job, Job.mous_id == Mous.id).join(Attempt, Attempt.job_pk == Job.pk)
            .group_by(Mous.id, Mous.submitted_at)
        ).all()
    engine.dispose()
    return CampaignFigures(
        members=members, completed=view.members["completed"], wall_s=wall, coordinator_cpu_s=cpu, events=events,
        attempts=attempts, mous_wall_s=[(ended - created).total_seconds() for _, created, ended in spans if ended],
    )


def report(figures: CampaignFigures, recipe: Recipe, scenario: str) -> None:
    events_per_mous = figures.events / max(1, figures.members)
    print(f"campaign of {figures.members} {scenario} MOUS, {recipe.value} recipe, one worker per stage:")
    print(f"  completed {figures.completed} in {figures.wall_s:.0f} s: {figures.per_hour:.0f} MOUS/h")
    if figures.mous_wall_s:
        print(f"  time per MOUS (submission to last job): median {statistics.median(figures.mous_wall_s):.0f} s, "
              f"max {max(figures.mous_wall_s):.0f} s")
    print(f"  coordinator CPU: {figures.coordinator_cpu_s:.1f} s for {figures.events} job events "
          f"({figures.attempts} attempts): {figures.cpu_per_event_ms:.1f} ms per event, "
          f"{figures.coordinator_cpu_s / max(1, figures.members):.2f} s per MOUS")
    hours = TARGET_MOUS / figures.per_hour
    cpu_hours = figures.cpu_per_event_ms / 1000 * events_per_mous * TARGET_MOUS / 3600
    print(f"  {TARGET_MOUS:,} MOUS at this rate: {hours:,.0f} h on this machine; {events_per_mous * TARGET_MOUS:,.0f} "
          f"job events costing the coordinator {cpu_hours:.1f} CPU-hours")
    # The coordinator keeps up while events arrive slower than it applies them on one core.
    sustainable = 1000 / figures.cpu_per_event_ms
    needed = figures.events / figures.wall_s
    print(f"  coordinator could apply {sustainable:.0f} events/s on one core; this run needed {needed:.2f}/s "
          f"(headroom x{sustainable / max(needed, 1e-9):.0f}: that many such machines' workers per coordinator)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mous", type=int, default=12)
    parser.add_argument("--recipe", choices=[recipe.value for recipe in Recipe], default=Recipe.FULL.value)
    parser.add_argument("--scenario", default="campaign_tiny")
    parser.add_argument("--in-flight", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aperture-campaign-bench-") as tmp:
        workdir = Path(tmp)
        packages = make_packages(args.scenario, min(3, args.mous), workdir / "packages")
        figures = run_campaign(packages, args.mous, Recipe(args.recipe), args.in_flight, workdir)
        report(figures, Recipe(args.recipe), args.scenario)
    if figures.completed != figures.members:
        sys.exit(f"{figures.members - figures.completed} MOUS did not complete")


if __name__ == "__main__":
    main()
