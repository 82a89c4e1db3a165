"""An archive campaign of 30 generated MOUS, some broken on purpose, and a person's MOUS at the same time,
through the real system: real RabbitMQ, S3, the database and CASA, one worker per stage plus a large-memory
imaging worker.

The campaign (quick-look recipe, 4 MOUS in flight, size limits scaled to these tiny MOUS) holds:
- 25 good MOUS (three generated observations under 8-9 ids each): every one completes;
- a damaged archive (corrupt_input), an MS without visibilities (no_visibilities), a package that is not in
  the store (bad_input);
- an observation on long baselines whose continuum images need more memory than a standard imaging worker
  has: out of memory there, once more on the large worker, out of memory again (out_of_memory);
- an observation on the widest configuration whose images stay over the hard size limit after the size
  cascade (product_too_large).
A person submits a full MOUS while the campaign runs: none of its jobs waits behind more than
`bulk_queued_per_stage` campaign jobs (from the run ledger), and the waits are printed. The report counts
every member and class right; after the damaged package is replaced, `retry` of corrupt_input re-runs that
member only.
"""

import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from aperture_cli.campaign_client import CampaignClient
from aperture_contracts.campaigns import CampaignCreate, CampaignState
from aperture_contracts.enums import ErrorClass, MemoryClass, MousState, Recipe
from aperture_coordinator.db import Database
from aperture_coordinator.models import Attempt, Job, Mous
from sqlalchemy import select

pytestmark = [pytest.mark.integration, pytest.mark.casa, pytest.mark.slow, pytest.mark.timeout(1800)]

STAGES = ["ingest", "calibration", "findcont", "imaging", "previews", "footprint", "export"]
BULK_QUEUED_PER_STAGE = 2
# Imaging workers' CASA memory (MB). A tiny MOUS's imaging peaks near 330 MB (a CASA process at rest holds
# ~300 MB, under half of each limit: the pool replaces a process holding more than half its limit at rest);
# the long-baseline one's ~2600-pixel image needs some 700 MB (measured 712 and 733), more than either has.
STANDARD_MB, LARGE_MB = 640, 680
# Scaled to these MOUS as the ALMA pipeline's 40 / 60 GB are to real ones: the tiny image (~0.05 MB) fits,
# the long-baseline one (~36 MB) after the cascade shrinks its field; the widest's (~500 MB) stays over
# 30 MB after every step of the cascade.
SIZE_LIMITS = {"max_cube_bytes": 30_000_000, "max_cube_hard_bytes": 30_000_000, "max_mous_bytes": 10**9}

USER_MOUS = "uid://A001/X3a1/X7"
GOOD = [f"uid://A001/X3c0/X{index:x}" for index in range(1, 26)]
DAMAGED, EMPTY, MISSING = "uid://A001/X3c0/Xd1", "uid://A001/X3c0/Xe1", "uid://A001/X3c0/Xf1"
OUT_OF_MEMORY, TOO_LARGE = "uid://A001/X3c0/Xa1", "uid://A001/X3c0/Xb1"


@dataclass(frozen=True)
class Packages:
    good: list[Path]  # three generated observations (seeds 1-3)
    long_baselines: Path
    widest: Path
    empty: Path
    damaged: Path


def key_of(mous_id: str) -> str:
    return "archive/cycle12/" + mous_id.replace("uid://", "uid___").replace("/", "_") + ".ms.tar.gz"


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


@pytest.fixture(scope="module")
def packages(casa_tools, tmp_path_factory: pytest.TempPathFactory) -> Packages:
    from aperture_testdata.generator import generate_mous

    root = tmp_path_factory.mktemp("campaign-packages")

    def made(scenario: str, seed: int):
        return generate_mous(root / f"{scenario}-{seed}", seed=seed, scenario=scenario,
                             package=root / f"{scenario}-{seed}.ms.tar.gz")

    good = [made("campaign_tiny", seed) for seed in (1, 2, 3)]
    damaged = root / "damaged.ms.tar.gz"
    damaged.write_bytes(good[0].package.read_bytes()[:4000])  # an upload cut short
    return Packages(
        good=[mous.package for mous in good],
        long_baselines=made("campaign_long_baselines", 1).package,
        widest=made("campaign_widest", 1).package,
        empty=empty_ms_package(good[0].ms, root),
        damaged=damaged,
    )


def wait_until(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(2)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def ledger_rows(database_url: str):
    database = Database(database_url)
    try:
        with database.transaction() as session:
            return session.execute(
                select(Job.mous_id, Job.job_id, Job.stage, Attempt.attempt, Attempt.dispatched_at,
                       Attempt.started_at, Attempt.memory_class, Attempt.error_class, Attempt.peak_memory_mb,
                       Mous.campaign_id)
                .join(Attempt, Attempt.job_pk == Job.pk).join(Mous, Mous.id == Job.mous_id)
            ).all()
    finally:
        database.dispose()


def test_a_thirty_mous_campaign_classifies_its_failures_and_does_not_starve_a_person(
    system, packages: Packages, tmp_path
):
    system.env.update({
        "APERTURE_ENABLED_STAGES": ",".join(STAGES),
        "APERTURE_BULK_QUEUED_PER_STAGE": str(BULK_QUEUED_PER_STAGE),
        "APERTURE_MEMORY_CLASSES_MB": f'{{"standard": {STANDARD_MB}, "large": {LARGE_MB}}}',
        "APERTURE_RETRY_BACKOFF_BASE_S": "1",
    })
    system.start_coordinator()
    for stage in STAGES:
        limit = {"APERTURE_CASA_MEMORY_LIMIT_MB": str(STANDARD_MB)} if stage == "imaging" else {}
        system.start_worker(stage, **limit)
    system.start_worker("imaging", APERTURE_MEMORY_CLASS="large", APERTURE_CASA_MEMORY_LIMIT_MB=str(LARGE_MB))
    store = system.store()
    store.ensure_bucket()
    for index, mous_id in enumerate(GOOD):
        store.put_file(key_of(mous_id), packages.good[index % 3], "application/gzip")
    store.put_file(key_of(DAMAGED), packages.damaged)
    store.put_file(key_of(EMPTY), packages.empty)
    store.put_file(key_of(OUT_OF_MEMORY), packages.long_baselines, "application/gzip")
    store.put_file(key_of(TOO_LARGE), packages.widest, "application/gzip")

    broken = [DAMAGED, EMPTY, MISSING, OUT_OF_MEMORY, TOO_LARGE]
    assert len(GOOD) + len(broken) == 30
    # The broken ones spread through the list, as they would be in an archive.
    everyone = GOOD[:4] + [OUT_OF_MEMORY] + GOOD[4:9] + [DAMAGED, TOO_LARGE] + GOOD[9:15] + [EMPTY, MISSING] + GOOD[15:]
    members = [{"mous_id": mous_id, "object_key": key_of(mous_id)} for mous_id in everyone]
    body = CampaignCreate(name="cycle12-quicklook", pipeline_version="2026.2", recipe=Recipe.QUICKLOOK,
                          max_in_flight=4, members=members, parameters={"size_limits": SIZE_LIMITS})
    with CampaignClient(system.api_url, token="aperture-dev-token", timeout_s=60) as client:
        started = time.monotonic()
        campaign_id = client.submit_campaign(body).campaign.campaign_id
        assert client.submit_campaign(body).members_added == 0  # the same set again adds nothing
        wait_until(lambda: client.get_campaign(campaign_id).members["submitted"] >= 3, 120, "the campaign to start")
        client.submit(packages.good[1], mous_uid=USER_MOUS)
        user = wait_until(
            lambda: (d := client.get_mous(USER_MOUS)).state in (MousState.COMPLETED, MousState.FAILED) and d,
            1500, "the person's MOUS",
        )
        user_done = time.monotonic() - started
        campaign = wait_until(
            lambda: (v := client.get_campaign(campaign_id)).state is CampaignState.COMPLETED and v, 1800,
            "the campaign",
        )
        campaign_done = time.monotonic() - started
        report = client.campaign_report(campaign_id)
        print(f"\nperson's full MOUS completed after {user_done:.0f} s; campaign of {len(members)} after "
              f"{campaign_done:.0f} s ({report.throughput.overall_per_hour or 0:.0f} MOUS/h, quick-look)")
        assert user.state is MousState.COMPLETED, user.reason

        # -- every member where it should be, with its class and message --------------------------------------
        assert campaign.members["completed"] == len(GOOD), campaign.members
        assert campaign.members["failed"] == len(broken)
        by_class = {failure.error_class: failure for failure in report.failures}
        expected = {
            ErrorClass.CORRUPT_INPUT: (DAMAGED, "damaged or truncated archive"),
            ErrorClass.NO_VISIBILITIES: (EMPTY, "no visibilities"),
            ErrorClass.BAD_INPUT: (MISSING, "missing from the object store"),
            ErrorClass.OUT_OF_MEMORY: (OUT_OF_MEMORY, "memory limit"),
            ErrorClass.PRODUCT_TOO_LARGE: (TOO_LARGE, "max_cube_hard_bytes"),
        }
        for failure in report.failures:
            print(f"  {failure.error_class.value}: {failure.examples[0].mous_id}: {failure.examples[0].message[:120]}")
        assert set(by_class) == set(expected)
        for error_class, (mous_id, words) in expected.items():
            assert by_class[error_class].count == 1
            assert by_class[error_class].examples[0].mous_id == mous_id
            assert words in by_class[error_class].examples[0].message, by_class[error_class].examples[0].message

        # -- the out-of-memory job had one more attempt, on the large worker -------------------------------------
        rows = ledger_rows(system.env["APERTURE_DATABASE_URL"])
        oom = [row for row in rows if row.mous_id == OUT_OF_MEMORY and row.error_class is ErrorClass.OUT_OF_MEMORY]
        failed_job = next(row.job_id for row in oom)
        attempts = sorted((row.attempt, row.memory_class) for row in oom if row.job_id == failed_job)
        print(f"  {failed_job}: " + ", ".join(
            f"attempt {row.attempt} on {row.memory_class.value}: {row.peak_memory_mb or 0:.0f} MB"
            for row in sorted(oom, key=lambda row: row.attempt) if row.job_id == failed_job))
        assert attempts == [(1, MemoryClass.STANDARD), (2, MemoryClass.LARGE)]
        good_imaging = [row.peak_memory_mb for row in rows
                        if row.mous_id in GOOD and row.stage.value == "imaging" and row.peak_memory_mb]
        print(f"  good MOUS' imaging peaks: {min(good_imaging):.0f}-{max(good_imaging):.0f} MB (limit {STANDARD_MB})")

        # -- the person's jobs waited behind at most the bulk limit ----------------------------------------------
        started_rows = [row for row in rows if row.started_at is not None]
        campaign_starts = [(row.stage, row.started_at) for row in started_rows if row.campaign_id is not None]
        ahead, waits = [], []
        for row in started_rows:
            if row.mous_id != USER_MOUS:
                continue
            ahead.append(sum(1 for stage, at in campaign_starts
                             if stage == row.stage and row.dispatched_at < at < row.started_at))
            waits.append((row.started_at - row.dispatched_at).total_seconds())
        print(f"  person's {len(waits)} jobs: longest queue wait {max(waits):.1f} s, median "
              f"{sorted(waits)[len(waits) // 2]:.1f} s; campaign jobs started ahead of one: at most {max(ahead)}")
        assert max(ahead) <= BULK_QUEUED_PER_STAGE

        # -- fix the damaged package and retry only that class ----------------------------------------------------
        store.put_file(key_of(DAMAGED), packages.good[0], "application/gzip")
        runs_before = {mous_id: client.get_mous(mous_id).run for mous_id in [*GOOD, OUT_OF_MEMORY, TOO_LARGE]}
        assert client.retry_campaign(campaign_id, ErrorClass.CORRUPT_INPUT).members_requeued == 1
        retried = wait_until(
            lambda: (v := client.get_campaign(campaign_id)).state is CampaignState.COMPLETED and v, 600, "the retry"
        )
        assert retried.members["completed"] == len(GOOD) + 1 and retried.members["failed"] == len(broken) - 1
        assert {mous_id: client.get_mous(mous_id).run for mous_id in runs_before} == runs_before
        assert client.get_mous(DAMAGED).state is MousState.COMPLETED
