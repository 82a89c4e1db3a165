"""The run-ledger scenario of the ledger tests (coordinator and CLI), played by the coordinator from fake
worker events: a user's MOUS whose ingest fails once (storage, 2048.5 MB) and succeeds on its retry (900 MB),
then calibrates (3000 MB), with a findcont job left queued; and a campaign's MOUS (campaign `cycle10`) whose
ingest fails for good (bad input, 500 MB). Five attempts in all."""

from dataclasses import dataclass
from datetime import datetime

from aperture_contracts.campaigns import CampaignState
from aperture_contracts.enums import ErrorClass, MousState, Stage
from aperture_contracts.ids import mous_key
from aperture_coordinator.db import Database
from aperture_coordinator.models import Campaign
from aperture_coordinator.state import Coordinator, Submission

from .factories import (
    FakeClock,
    failed,
    grid_metadata,
    ingest_succeeded,
    load_job,
    load_mous,
    object_ref,
    stage_succeeded,
    started,
)

USER_MOUS = "uid://A001/X20/X1"
CAMPAIGN_MOUS = "uid://A001/X10/X1"
CAMPAIGN_ID = "camp-0123456789ab"
CAMPAIGN_NAME = "cycle10"
NO_MS = "the package holds no Measurement Set: package the MS again"
FINDCONT = "r1.findcont.target_1.spw17"
# (MOUS, job, attempt) of every attempt, newest dispatch first.
ALL_NEWEST_FIRST = [
    (USER_MOUS, FINDCONT, 1),
    (USER_MOUS, "r1.calibration", 1),
    (USER_MOUS, "r1.ingest", 2),
    (CAMPAIGN_MOUS, "r1.ingest", 1),
    (USER_MOUS, "r1.ingest", 1),
]


@dataclass(frozen=True)
class Played:
    """When the scenario's attempts were dispatched, and the log of the failed first ingest."""

    user_first_ingest: datetime
    campaign_ingest: datetime
    user_retried_ingest: datetime
    log_key: str


def submit(coordinator: Coordinator, mous_id: str, campaign_id: str | None = None, *, rerun: bool = False) -> None:
    key = mous_key(mous_id)
    package = object_ref(f"mous/{key}/input/{key}.ms.tar", key.encode())
    coordinator.submit(Submission(mous_id, package, f"{key}.ms.tar", rerun=rerun, campaign_id=campaign_id))


def play_ledger(coordinator: Coordinator, database: Database, clock: FakeClock) -> Played:
    """The scenario of the module docstring, with a campaign row for the campaign's MOUS. Needs every stage
    enabled and at least 2 attempts per job."""
    with database.transaction() as session:
        session.add(Campaign(
            id=CAMPAIGN_ID, name=CAMPAIGN_NAME, pipeline_version="2026.1", parameters={},
            state=CampaignState.ACTIVE, reason="", max_in_flight=10, created_at=clock(), updated_at=clock(),
        ))
    user_first_ingest = clock()
    submit(coordinator, USER_MOUS)
    campaign_ingest = clock.advance(10)
    submit(coordinator, CAMPAIGN_MOUS, CAMPAIGN_ID)

    coordinator.apply_event(started("r1.ingest", at=clock.advance(10), mous_id=USER_MOUS))
    log = object_ref(f"mous/{mous_key(USER_MOUS)}/work/r1.ingest/logs/attempt-1.casa.log", b"log", "text/plain")
    storage = failed("r1.ingest", ErrorClass.STORAGE, at=clock.advance(5), mous_id=USER_MOUS)
    coordinator.apply_event(storage.model_copy(update={
        "peak_memory_mb": 2048.5, "software_version": "aperture 0.1.0", "log": log,
    }))
    coordinator.apply_event(started("r1.ingest", at=clock.advance(5), mous_id=CAMPAIGN_MOUS))
    bad = failed("r1.ingest", ErrorClass.BAD_INPUT, at=clock.advance(2), message=NO_MS, mous_id=CAMPAIGN_MOUS)
    coordinator.apply_event(bad.model_copy(update={"peak_memory_mb": 500.0, "software_version": "aperture 0.2.0"}))

    clock.advance(3600)
    user_retried_ingest = clock()
    coordinator.reconcile()
    coordinator.apply_event(started("r1.ingest", 2, at=clock.advance(1), worker="ingest-b:7", mous_id=USER_MOUS))
    done = ingest_succeeded(attempt=2, at=clock.advance(40), metadata=grid_metadata(1, 1), mous_id=USER_MOUS)
    coordinator.apply_event(done.model_copy(update={"peak_memory_mb": 900.0, "software_version": "aperture 0.2.0"}))
    coordinator.apply_event(started("r1.calibration", at=clock.advance(1), stage=Stage.CALIBRATION,
                                    worker="calibration:1", mous_id=USER_MOUS))
    calibrated = stage_succeeded("r1.calibration", Stage.CALIBRATION, at=clock.advance(30), mous_id=USER_MOUS)
    coordinator.apply_event(calibrated.model_copy(update={
        "peak_memory_mb": 3000.0, "software_version": "aperture 0.2.0",
    }))
    assert load_mous(database, CAMPAIGN_MOUS).state is MousState.FAILED
    assert load_job(database, FINDCONT, USER_MOUS).attempt == 1, "the findcont job is dispatched, not started"
    return Played(user_first_ingest, campaign_ingest, user_retried_ingest, log.key)
