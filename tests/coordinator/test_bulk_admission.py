"""Campaign work is dispatched behind users' work, and every attempt's ledger figures are kept.

A campaign's ready jobs are held in the database while `bulk_queued_per_stage` of them already wait in a
stage's queue; a person's MOUS (and a request's jobs) go to the queue at once, so they wait behind at most
that many campaign jobs however large the campaign."""

import pytest
from aperture_contracts.enums import ErrorClass, JobState, Stage
from aperture_coordinator.db import Database
from aperture_coordinator.models import Attempt, Job
from aperture_coordinator.settings import CoordinatorSettings
from aperture_coordinator.state import Coordinator, Submission
from sqlalchemy import select

from .conftest import FakeClock, make_settings
from .factories import failed, grid_metadata, ingest_succeeded, object_ref, stage_succeeded, started

CAMPAIGN_MOUS = ["uid://A001/X10/X1", "uid://A001/X10/X2"]
USER_MOUS = "uid://A001/X20/X1"


@pytest.fixture
def settings(database_url: str) -> CoordinatorSettings:
    return make_settings(database_url, enabled_stages=list(Stage))


def submit(coordinator: Coordinator, mous_id: str, campaign_id: str | None) -> None:
    key = mous_id.replace("uid://", "uid___").replace("/", "_")
    package = object_ref(f"mous/{key}/input/{key}.ms.tar", key.encode())
    coordinator.submit(Submission(mous_id, package, f"{key}.ms.tar", campaign_id=campaign_id))


def to_findcont(coordinator: Coordinator, clock: FakeClock, mous_id: str) -> None:
    """Ingest (3 targets x 4 spws) and calibration succeed: 12 findcont jobs are ready."""
    coordinator.apply_event(started("r1.ingest", at=clock.advance(1), mous_id=mous_id))
    coordinator.apply_event(ingest_succeeded(at=clock.advance(1), metadata=grid_metadata(3, 4), mous_id=mous_id))
    coordinator.apply_event(started("r1.calibration", at=clock.advance(1), stage=Stage.CALIBRATION,
                                    worker="calibration:1", mous_id=mous_id))
    coordinator.apply_event(stage_succeeded("r1.calibration", Stage.CALIBRATION, at=clock.advance(1),
                                            mous_id=mous_id))


def dispatched_findcont(database: Database) -> dict[str, list[str]]:
    with database.transaction() as session:
        rows = session.execute(
            select(Job.mous_id, Job.job_id).where(Job.stage == Stage.FINDCONT, Job.state == JobState.DISPATCHED)
        ).all()
    found: dict[str, list[str]] = {}
    for mous_id, job_id in rows:
        found.setdefault(mous_id, []).append(job_id)
    return found


def test_a_campaigns_ready_jobs_wait_in_the_database_and_a_users_go_straight_to_the_queue(
    coordinator: Coordinator, database: Database, clock: FakeClock, settings: CoordinatorSettings
) -> None:
    assert settings.bulk_queued_per_stage == 2
    for mous_id in CAMPAIGN_MOUS:
        submit(coordinator, mous_id, "camp-0123456789ab")
        to_findcont(coordinator, clock, mous_id)
    queued = dispatched_findcont(database)
    # 24 findcont jobs are ready; 2 go to the queue, the rest wait saying why.
    assert sum(len(jobs) for jobs in queued.values()) == 2
    with database.transaction() as session:
        held = session.scalars(select(Job).where(Job.stage == Stage.FINDCONT, Job.state == JobState.PLANNED))
        reasons = {job.reason for job in held}
    assert reasons == {
        "behind users' work: 2 jobs of campaigns already wait in the findcont queue; dispatched when one of "
        "them starts"
    }

    submit(coordinator, USER_MOUS, None)
    to_findcont(coordinator, clock, USER_MOUS)
    assert len(dispatched_findcont(database)[USER_MOUS]) == 12, "a person's jobs are not held back"

    # A worker takes one campaign job: the next reconcile pass sends exactly one more.
    first_campaign_job = sorted(queued[CAMPAIGN_MOUS[0]])[0]
    coordinator.apply_event(started(first_campaign_job, at=clock.advance(1), stage=Stage.FINDCONT,
                                    worker="findcont:1", mous_id=CAMPAIGN_MOUS[0]))
    coordinator.reconcile()
    campaign_queued = sum(len(jobs) for mous_id, jobs in dispatched_findcont(database).items()
                          if mous_id in CAMPAIGN_MOUS)
    assert campaign_queued == 2


def test_every_attempt_keeps_its_peak_memory_software_version_and_log(
    coordinator: Coordinator, database: Database, clock: FakeClock
) -> None:
    submit(coordinator, USER_MOUS, None)
    coordinator.apply_event(started("r1.ingest", at=clock.advance(1), mous_id=USER_MOUS))
    event = failed("r1.ingest", ErrorClass.STORAGE, at=clock.advance(1), mous_id=USER_MOUS)
    log = object_ref("mous/uid___A001_X20_X1/work/r1.ingest/logs/attempt-1.casa.log", b"log", "text/plain")
    coordinator.apply_event(event.model_copy(update={
        "peak_memory_mb": 2048.5, "software_version": "aperture 0.1.0", "log": log,
    }))
    coordinator.reconcile()
    clock.advance(3600)
    coordinator.reconcile()
    coordinator.apply_event(started("r1.ingest", 2, at=clock.advance(1), mous_id=USER_MOUS))
    done = ingest_succeeded(attempt=2, at=clock.advance(1), metadata=grid_metadata(1, 1), mous_id=USER_MOUS)
    coordinator.apply_event(done.model_copy(update={"peak_memory_mb": 900.0, "software_version": "aperture 0.2.0"}))
    with database.transaction() as session:
        attempts = list(session.scalars(
            select(Attempt).join(Job).where(Job.job_id == "r1.ingest").order_by(Attempt.attempt)
        ))
        ledger = [(a.attempt, a.outcome, a.error_class, a.peak_memory_mb, a.software_version, a.log_key)
                  for a in attempts]
    assert ledger == [
        (1, JobState.FAILED, ErrorClass.STORAGE, 2048.5, "aperture 0.1.0", log.key),
        (2, JobState.SUCCEEDED, None, 900.0, "aperture 0.2.0", done.log.key if done.log else None),
    ]
