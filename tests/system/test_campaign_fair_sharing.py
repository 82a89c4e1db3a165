"""A campaign and a person's MOUS at the same time, through the real system (one worker per stage, real
RabbitMQ, S3, PostgreSQL-or-SQLite and CASA).

The campaign (quick-look recipe, at most 3 MOUS in flight) has five good packages and three broken ones: a
damaged archive, an MS without visibilities and a package that is not in the store. Every good MOUS
completes, each broken one fails with its class and message, and the report counts them. A person submits
an MOUS while the campaign runs: none of its jobs waits behind more than `bulk_queued_per_stage` campaign
jobs (checked from the run ledger: the campaign jobs of its stage that started while it waited), and the
waits are printed. Then the damaged package is replaced and `retry` of corrupt_input re-runs that member
only."""

import tarfile
import time
from pathlib import Path

import pytest
from aperture_cli.campaign_client import CampaignClient
from aperture_contracts.campaigns import CampaignCreate, CampaignState
from aperture_contracts.enums import ErrorClass, MousState, Recipe
from aperture_coordinator.db import Database
from aperture_coordinator.models import Attempt, Job, Mous
from sqlalchemy import select

pytestmark = [pytest.mark.integration, pytest.mark.casa, pytest.mark.slow]

STAGES = ["ingest", "calibration", "findcont", "imaging", "previews", "footprint", "export"]
USER_MOUS = "uid://A001/X3a1/X7"
GOOD = [f"uid://A001/X3b0/X{index}" for index in range(1, 6)]
DAMAGED, EMPTY, MISSING = "uid://A001/X3b0/Xd1", "uid://A001/X3b0/Xe1", "uid://A001/X3b0/Xf1"
BULK_QUEUED_PER_STAGE = 2


def key_of(mous_id: str) -> str:
    return "archive/cycle11/" + mous_id.replace("uid://", "uid___").replace("/", "_") + ".ms.tar"


def empty_ms_package(ms: Path, workdir: Path) -> Path:
    """The MS with every row removed, packed: an observation with no visibilities."""
    import casatools

    empty = workdir / "empty.ms"
    table = casatools.table()
    table.open(str(ms))
    try:
        table.copy(str(empty), deep=True, norows=True)  # the same columns and sub-tables, no rows
    finally:
        table.close()
    package = workdir / "empty.ms.tar"
    with tarfile.open(package, "w") as tar:
        tar.add(empty, arcname="empty.ms")
    return package


def wait_until(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(2)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def test_a_persons_mous_is_not_starved_by_a_campaign_whose_failures_are_classified(
    system, generated_mous, tmp_path
):
    system.env["APERTURE_ENABLED_STAGES"] = ",".join(STAGES)
    system.env["APERTURE_BULK_QUEUED_PER_STAGE"] = str(BULK_QUEUED_PER_STAGE)
    system.start_coordinator()
    for stage in STAGES:
        system.start_worker(stage)
    store = system.store()
    store.ensure_bucket()
    for mous_id in GOOD:
        store.put_file(key_of(mous_id), generated_mous.package, "application/gzip")
    damaged = tmp_path / "damaged.ms.tar"
    damaged.write_bytes(generated_mous.package.read_bytes()[:4000])  # an upload cut short
    store.put_file(key_of(DAMAGED), damaged)
    store.put_file(key_of(EMPTY), empty_ms_package(generated_mous.ms, tmp_path))

    members = [{"mous_id": mous_id, "object_key": key_of(mous_id)} for mous_id in [*GOOD, DAMAGED, EMPTY, MISSING]]
    body = CampaignCreate(name="cycle11-quicklook", pipeline_version="2026.1", recipe=Recipe.QUICKLOOK,
                          max_in_flight=3, members=members)
    with CampaignClient(system.api_url, token="aperture-dev-token", timeout_s=60) as client:
        started = time.monotonic()
        campaign_id = client.submit_campaign(body).campaign.campaign_id
        wait_until(lambda: client.get_campaign(campaign_id).members["submitted"] >= 2, 120, "the campaign to start")
        client.submit(generated_mous.package, mous_uid=USER_MOUS)
        user = wait_until(
            lambda: (d := client.get_mous(USER_MOUS)).state in (MousState.COMPLETED, MousState.FAILED) and d,
            900, "the person's MOUS",
        )
        user_done = time.monotonic() - started
        campaign = wait_until(
            lambda: (v := client.get_campaign(campaign_id)).state is CampaignState.COMPLETED and v, 900, "the campaign"
        )
        campaign_done = time.monotonic() - started
        report = client.campaign_report(campaign_id)
        print(f"person's MOUS completed after {user_done:.0f} s; campaign of {len(members)} after {campaign_done:.0f} s"
              f" ({report.throughput.overall_per_hour or 0:.0f} MOUS/h)")
        assert user.state is MousState.COMPLETED, user.reason

        # -- every member where it should be, with its class ---------------------------------------------
        assert campaign.members["completed"] == len(GOOD) and campaign.members["failed"] == 3
        by_class = {failure.error_class: failure for failure in report.failures}
        assert set(by_class) == {ErrorClass.CORRUPT_INPUT, ErrorClass.NO_VISIBILITIES, ErrorClass.BAD_INPUT}
        assert by_class[ErrorClass.CORRUPT_INPUT].examples[0].mous_id == DAMAGED
        assert by_class[ErrorClass.NO_VISIBILITIES].examples[0].mous_id == EMPTY
        assert "no visibilities" in by_class[ErrorClass.NO_VISIBILITIES].examples[0].message
        assert by_class[ErrorClass.BAD_INPUT].examples[0].mous_id == MISSING
        assert "missing from the object store" in by_class[ErrorClass.BAD_INPUT].examples[0].message
        for failure in report.failures:
            print(f"  {failure.error_class.value}: {failure.examples[0].mous_id}: {failure.examples[0].message[:110]}")

        # -- the person's jobs waited behind at most the bulk limit ----------------------------------------
        database = Database(system.env["APERTURE_DATABASE_URL"])
        try:
            with database.transaction() as session:
                rows = session.execute(
                    select(Job.mous_id, Job.job_id, Job.stage, Attempt.dispatched_at, Attempt.started_at,
                           Mous.campaign_id)
                    .join(Attempt, Attempt.job_pk == Job.pk).join(Mous, Mous.id == Job.mous_id)
                    .where(Attempt.started_at.is_not(None))
                ).all()
        finally:
            database.dispose()
        campaign_starts = [(row.stage, row.started_at) for row in rows if row.mous_id in GOOD]
        ahead, waits = [], []
        for row in rows:
            if row.mous_id != USER_MOUS:
                continue
            overtaking = sum(1 for stage, at in campaign_starts
                             if stage == row.stage and row.dispatched_at < at < row.started_at)
            ahead.append(overtaking)
            waits.append((row.started_at - row.dispatched_at).total_seconds())
        print(f"person's {len(waits)} jobs: longest queue wait {max(waits):.1f} s, median "
              f"{sorted(waits)[len(waits) // 2]:.1f} s; campaign jobs started ahead of one: at most {max(ahead)}")
        assert max(ahead) <= BULK_QUEUED_PER_STAGE

        # -- fix the damaged package and retry only that class ----------------------------------------------
        store.put_file(key_of(DAMAGED), generated_mous.package, "application/gzip")
        runs_before = {mous_id: client.get_mous(mous_id).run for mous_id in GOOD}
        assert client.retry_campaign(campaign_id, ErrorClass.CORRUPT_INPUT).members_requeued == 1
        retried = wait_until(
            lambda: (v := client.get_campaign(campaign_id)).state is CampaignState.COMPLETED and v, 600, "the retry"
        )
        assert retried.members["completed"] == len(GOOD) + 1 and retried.members["failed"] == 2
        assert {mous_id: client.get_mous(mous_id).run for mous_id in GOOD} == runs_before
        assert client.get_mous(DAMAGED).state is MousState.COMPLETED
