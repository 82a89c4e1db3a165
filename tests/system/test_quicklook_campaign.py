"""A campaign through the real system: the demonstration MOUS and a damaged package, fed by the
coordinator's campaign feeder with the quick-look recipe (continuum images only), with every stage its own
worker on real RabbitMQ, S3 and CASA. The good MOUS completes with continuum products and no cubes, the
damaged one fails with its class and message, the report counts both, and the ledger has every attempt
with its peak memory and software version."""

import time

import pytest
from aperture_cli.campaign_client import CampaignClient
from aperture_contracts.campaigns import CampaignCreate, CampaignState
from aperture_contracts.enums import ErrorClass, JobState, MousState, Recipe, Stage
from aperture_coordinator.db import Database
from aperture_coordinator.models import Attempt, Job
from sqlalchemy import select

pytestmark = [pytest.mark.integration, pytest.mark.casa, pytest.mark.slow]

GOOD = "uid://A001/X3a1/X7"
DAMAGED = "uid://A001/X3a1/X99"
STAGES = ["ingest", "calibration", "findcont", "imaging", "previews", "footprint", "export"]


def test_a_quicklook_campaign_completes_the_good_mous_and_classifies_the_damaged_one(
    system, generated_mous, tmp_path
):
    system.env["APERTURE_ENABLED_STAGES"] = ",".join(STAGES)
    system.start_coordinator()
    for stage in STAGES:
        if stage != "footprint":  # the quick-look recipe has no footprints
            system.start_worker(stage)
    store = system.store()
    store.ensure_bucket()
    good_key = "archive/cycle10/uid___A001_X3a1_X7.ms.tar.gz"
    store.put_file(good_key, generated_mous.package, "application/gzip")
    damaged = tmp_path / "uid___A001_X3a1_X99.ms.tar"
    damaged.write_bytes(b"\x1f\x8b this is no tar archive, it was cut short by a failed copy" * 20)
    damaged_key = "archive/cycle10/uid___A001_X3a1_X99.ms.tar"
    store.put_file(damaged_key, damaged)

    body = CampaignCreate(
        name="cycle10-quicklook", pipeline_version="2026.1", recipe=Recipe.QUICKLOOK, max_in_flight=2,
        members=[{"mous_id": GOOD, "object_key": good_key}, {"mous_id": DAMAGED, "object_key": damaged_key}],
    )
    started = time.monotonic()
    with CampaignClient(system.api_url, token="aperture-dev-token", timeout_s=30) as client:
        campaign = client.submit_campaign(body).campaign
        assert client.submit_campaign(body).campaign.total == 2, "submitting it again adds nothing"
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            view = client.get_campaign(campaign.campaign_id)
            if view.state is CampaignState.COMPLETED:
                break
            time.sleep(2)
        assert view.state is CampaignState.COMPLETED, view
        report = client.campaign_report(campaign.campaign_id)
        detail = client.get_mous(GOOD)
    seconds = time.monotonic() - started
    print(f"quick-look campaign of 2 MOUS: {seconds:.0f} s; {report.campaign.members}")

    assert detail.state is MousState.COMPLETED, detail.reason
    kinds = {job.kind for job in detail.jobs if job.stage is Stage.IMAGING}
    assert kinds == {"mfs", "cont"}, "continuum images only"
    assert not [job for job in detail.jobs if job.stage is Stage.FOOTPRINT]
    assert all(job.state is JobState.SUCCEEDED for job in detail.jobs)
    names = {product.object.key.rsplit("/", 1)[-1] for product in detail.products}
    assert any(name.endswith(".mfs.I.pbcor.fits") for name in names)
    assert any(name.endswith(".manifest.json") for name in names)
    assert not any(".cube." in name for name in names)

    (failure,) = report.failures
    assert failure.error_class is ErrorClass.CORRUPT_INPUT, failure
    assert failure.count == 1 and failure.examples[0].mous_id == DAMAGED
    print(f"the damaged package: {failure.error_class.value}: {failure.examples[0].message}")
    assert report.products == len(detail.products) and report.product_bytes > 0

    database = Database(system.env["APERTURE_DATABASE_URL"])
    try:
        with database.transaction() as session:
            ledger = session.execute(
                select(Job.job_id, Attempt.outcome, Attempt.peak_memory_mb, Attempt.software_version)
                .join(Job).where(Job.mous_id == GOOD)
            ).all()
    finally:
        database.dispose()
    assert len(ledger) == len(detail.jobs)
    casa_jobs = [row for row in ledger if not row.job_id.endswith(("previews.cont.simgalaxy", "export"))]
    assert all(row.software_version.startswith("aperture ") for row in ledger)
    assert max(row.peak_memory_mb or 0 for row in casa_jobs) > 100
