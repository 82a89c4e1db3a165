"""Archive re-processing campaigns on SQLite and PostgreSQL: members from a list, a manifest or a prefix,
at most max_in_flight MOUS in flight, idempotent submission, pause/resume/cancel, failures recorded with
their class and message, retry of one class (a new run of each MOUS), the report, the metrics, and the
operator-only API. The workers are played by completion events (campaign_factories.play_workers)."""

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from aperture_contracts.campaigns import (
    CampaignCreate,
    CampaignReport,
    CampaignState,
    CampaignSubmitted,
    CampaignView,
    MemberState,
)
from aperture_contracts.enums import ErrorClass, MousState, Recipe, Stage
from aperture_coordinator import campaign_report, campaigns
from aperture_coordinator.api import CoordinatorServices, create_app
from aperture_coordinator.auth import ApiIdentity, Role
from aperture_coordinator.campaign_sources import CampaignProblem, member_mous_id
from aperture_coordinator.campaigns import CLAIM_GRACE, CampaignConflict, CampaignFeeder, UnknownCampaign
from aperture_coordinator.db import Database
from aperture_coordinator.metrics import DatabaseStateCollector
from aperture_coordinator.models import CampaignMember, Mous
from aperture_coordinator.settings import CoordinatorSettings
from aperture_coordinator.state import Coordinator, Submission
from sqlalchemy import select

from .campaign_factories import (
    ARCHIVE,
    ListingObjectStore,
    archive_key,
    archive_mous_id,
    fill_archive,
    play_workers,
)
from .conftest import make_settings
from .factories import FakeClock, load_mous

CAMPAIGNS = "/api/v1/campaigns"
TOKENS = {
    "alice-token": ApiIdentity(user="alice"),
    "operator-token": ApiIdentity(user="olga", role=Role.OPERATOR),
}
OPERATOR = {"Authorization": "Bearer operator-token"}
ALICE = {"Authorization": "Bearer alice-token"}
CORRUPT = "the package is not a tar archive (unexpected end of data): package the MS again"
SLOW = "CASA ran past the ingest time limit of 3600 s"


@pytest.fixture
def settings(database_url: str) -> CoordinatorSettings:
    # One attempt per job: a timeout fails the MOUS at once, as it would after its last retry.
    return make_settings(database_url, enabled_stages=list(Stage), max_attempts=1, api_tokens=TOKENS)


@pytest.fixture
def store() -> ListingObjectStore:
    return ListingObjectStore()


@pytest.fixture
def feeder(coordinator: Coordinator, store: ListingObjectStore) -> CampaignFeeder:
    return CampaignFeeder(coordinator, store)


def create(
    database: Database, store: ListingObjectStore, clock: FakeClock, *, name: str = "cycle10", **fields: Any
) -> CampaignSubmitted:
    body = CampaignCreate.model_validate({"name": name, "pipeline_version": "2026.1"} | fields)
    return campaigns.create_campaign(database, body, store, clock())


def members_of(database: Database, name: str = "cycle10") -> dict[str, CampaignMember]:
    with database.transaction() as session:
        campaign = campaigns.load_campaign(session, name)
        rows = session.scalars(select(CampaignMember).where(CampaignMember.campaign_id == campaign.id))
        return {member.mous_id: member for member in rows}


def states(database: Database, name: str = "cycle10") -> dict[MemberState, int]:
    with database.transaction() as session:
        return campaigns.view_of(session, campaigns.load_campaign(session, name)).members


def view(database: Database, name: str = "cycle10") -> CampaignView:
    with database.transaction() as session:
        return campaigns.view_of(session, campaigns.load_campaign(session, name))


def report(database: Database, clock: FakeClock, name: str = "cycle10") -> CampaignReport:
    with database.transaction() as session:
        return campaign_report.report(session, name, clock())


def in_flight_mous(database: Database) -> int:
    """MOUS whose run has not ended, whoever submitted them."""
    with database.transaction() as session:
        ended = (MousState.COMPLETED, MousState.FAILED, MousState.CANCELLED)
        return len(list(session.scalars(select(Mous.id).where(Mous.state.not_in(ended)))))


def run_to_the_end(
    feeder: CampaignFeeder, coordinator: Coordinator, database: Database, clock: FakeClock,
    failures: dict[str, tuple[ErrorClass, str]] | None = None, name: str = "cycle10",
) -> int:
    """Feed and play the workers until the campaign completes; returns the most MOUS seen in flight."""
    most = 0
    for _ in range(200):
        feeder.feed()
        if view(database, name).state is CampaignState.COMPLETED:
            return most
        most = max(most, in_flight_mous(database))
        play_workers(coordinator, database, clock, failures=failures)
    raise AssertionError("the campaign did not complete")


# -- feeding ------------------------------------------------------------------------------------------


def test_a_campaign_of_32_keeps_at_most_max_in_flight_and_completes_every_member(
    coordinator: Coordinator, database: Database, clock: FakeClock, store: ListingObjectStore,
    feeder: CampaignFeeder,
) -> None:
    members = fill_archive(store, 32)
    create(database, store, clock, members=members, max_in_flight=5)

    assert feeder.feed() == 5
    assert states(database)[MemberState.SUBMITTED] == 5
    assert feeder.feed() == 0, "a second pass with nothing finished submits nothing"
    # Finish two of the five: the next pass fills exactly their places.
    first_two = [member["mous_id"] for member in members[:2]]
    play_workers(coordinator, database, clock, only=first_two)
    assert feeder.feed() == 2
    assert states(database)[MemberState.COMPLETED] == 2
    assert in_flight_mous(database) == 5

    most = run_to_the_end(feeder, coordinator, database, clock)

    assert most == 5
    assert states(database)[MemberState.COMPLETED] == 32
    finished = view(database)
    assert finished.state is CampaignState.COMPLETED and finished.reason == "completed: 32 completed"
    for member in members:
        assert load_mous(database, member["mous_id"]).state is MousState.COMPLETED
    sizes = {m.mous_id: m.package_size for m in members_of(database).values()}
    assert sizes[archive_mous_id(31)] == 1031  # the package's size, from the store's stat


def test_failures_are_recorded_with_their_class_job_and_message(
    coordinator: Coordinator, database: Database, clock: FakeClock, store: ListingObjectStore,
    feeder: CampaignFeeder,
) -> None:
    members = fill_archive(store, 8)
    members.append({"mous_id": "uid://A001/X999/X1", "object_key": f"{ARCHIVE}gone.ms.tar"})  # never stored
    create(database, store, clock, members=members, max_in_flight=4)
    failures = {
        archive_mous_id(1): (ErrorClass.BAD_INPUT, CORRUPT),
        archive_mous_id(4): (ErrorClass.TIMEOUT, SLOW),
        archive_mous_id(6): (ErrorClass.TIMEOUT, SLOW),
    }

    run_to_the_end(feeder, coordinator, database, clock, failures)

    recorded = members_of(database)
    assert states(database)[MemberState.COMPLETED] == 5
    corrupt = recorded[archive_mous_id(1)]
    assert (corrupt.state, corrupt.error_class, corrupt.failed_job) == (
        MemberState.FAILED, ErrorClass.BAD_INPUT, "r1.ingest"
    )
    assert corrupt.message == CORRUPT
    assert recorded[archive_mous_id(4)].error_class is ErrorClass.TIMEOUT
    assert recorded[archive_mous_id(4)].message == SLOW
    missing = recorded["uid://A001/X999/X1"]
    assert (missing.state, missing.error_class, missing.run) == (MemberState.FAILED, ErrorClass.BAD_INPUT, None)
    assert "archive/cycle10/gone.ms.tar is missing from the object store" in missing.message
    with pytest.raises(AssertionError, match="no MOUS"):
        load_mous(database, "uid://A001/X999/X1")  # nothing was submitted for it


def test_retry_of_one_class_reruns_only_those_mous_each_in_a_new_run(
    coordinator: Coordinator, database: Database, clock: FakeClock, store: ListingObjectStore,
    feeder: CampaignFeeder,
) -> None:
    members = fill_archive(store, 10)
    create(database, store, clock, members=members, max_in_flight=3)
    failures = {
        archive_mous_id(2): (ErrorClass.TIMEOUT, SLOW),
        archive_mous_id(5): (ErrorClass.TIMEOUT, SLOW),
        archive_mous_id(7): (ErrorClass.BAD_INPUT, CORRUPT),
    }
    run_to_the_end(feeder, coordinator, database, clock, failures)
    assert view(database).state is CampaignState.COMPLETED

    retried, count = campaigns.retry(database, "cycle10", ErrorClass.TIMEOUT, "olga", clock())

    assert count == 2
    assert retried.state is CampaignState.ACTIVE
    assert retried.members[MemberState.PENDING] == 2 and retried.members[MemberState.FAILED] == 1
    assert feeder.feed() == 2
    assert load_mous(database, archive_mous_id(2)).run == 2
    assert load_mous(database, archive_mous_id(5)).run == 2
    run_to_the_end(feeder, coordinator, database, clock)  # the timeouts were transient: they complete now
    recorded = members_of(database)
    assert recorded[archive_mous_id(2)].state is MemberState.COMPLETED and recorded[archive_mous_id(2)].run == 2
    assert recorded[archive_mous_id(7)].state is MemberState.FAILED and recorded[archive_mous_id(7)].run == 1
    assert load_mous(database, archive_mous_id(7)).run == 1, "another class is not re-run"
    assert load_mous(database, archive_mous_id(0)).run == 1, "a completed member is not re-run"
    assert campaigns.retry(database, "cycle10", ErrorClass.TIMEOUT, "olga", clock())[1] == 0


def test_an_mous_submitted_before_is_reprocessed_as_a_new_run(
    coordinator: Coordinator, database: Database, clock: FakeClock, store: ListingObjectStore,
    feeder: CampaignFeeder,
) -> None:
    members = fill_archive(store, 2)
    package = store.stat(archive_key(0))
    coordinator.submit(Submission(archive_mous_id(0), package, "uid___A001_X64_X1.ms.tar"))
    play_workers(coordinator, database, clock)
    create(database, store, clock, members=members)

    run_to_the_end(feeder, coordinator, database, clock)

    assert load_mous(database, archive_mous_id(0)).run == 2
    assert members_of(database)[archive_mous_id(0)].run == 2
    assert load_mous(database, archive_mous_id(1)).run == 1


# -- submitting ---------------------------------------------------------------------------------------


def test_submitting_the_same_campaign_again_adds_nothing_and_a_longer_list_adds_only_the_new_members(
    database: Database, clock: FakeClock, store: ListingObjectStore, feeder: CampaignFeeder,
) -> None:
    members = fill_archive(store, 31)
    first = create(database, store, clock, members=members[:30], max_in_flight=4)
    feeder.feed()

    again = create(database, store, clock, members=members[:30], max_in_flight=4)
    more = create(database, store, clock, members=members, max_in_flight=6)

    assert (first.created, first.members_added, first.members_known) == (True, 30, 0)
    assert (again.created, again.members_added, again.members_known) == (False, 0, 30)
    assert again.campaign.campaign_id == first.campaign.campaign_id
    assert again.campaign.members[MemberState.SUBMITTED] == 4, "a resubmission does not reset members"
    assert (more.members_added, more.members_known) == (1, 30)
    assert more.campaign.total == 31 and more.campaign.max_in_flight == 6


def test_a_name_submitted_with_another_pipeline_version_or_parameters_is_a_conflict(
    database: Database, clock: FakeClock, store: ListingObjectStore,
) -> None:
    members = fill_archive(store, 2)
    limits = {"size_limits": {"max_cube_bytes": 10**9}}
    create(database, store, clock, members=members, parameters=limits)

    with pytest.raises(CampaignConflict, match="runs pipeline version 2026.1, not 2027.1") as version:
        create(database, store, clock, members=members, parameters=limits, pipeline_version="2027.1")
    with pytest.raises(CampaignConflict, match="other parameters") as parameters:
        create(database, store, clock, members=members, parameters={"size_limits": {"max_cube_bytes": 2 * 10**9}})

    assert (version.value.status, version.value.field) == (409, "pipeline_version")
    assert parameters.value.field == "parameters"


def test_a_prefix_scan_takes_every_package_under_it_and_scanning_again_adds_nothing(
    database: Database, clock: FakeClock, store: ListingObjectStore,
) -> None:
    fill_archive(store, 3)
    store.put_bytes(f"{ARCHIVE}local/observation-7.tgz", b"package")
    store.put_bytes(f"{ARCHIVE}README.txt", b"not a package")
    store.put_bytes("elsewhere/uid___A001_X1_X1.ms.tar", b"outside the prefix")

    first = create(database, store, clock, scan_prefix=ARCHIVE)
    again = create(database, store, clock, scan_prefix=ARCHIVE)

    assert first.members_added == 4 and again.members_added == 0
    local_id = member_mous_id(f"{ARCHIVE}local/observation-7.tgz")
    assert local_id.startswith("aperture-") and len(local_id) == len("aperture-") + 12
    assert set(members_of(database)) == {archive_mous_id(0), archive_mous_id(1), archive_mous_id(2), local_id}
    assert members_of(database)[archive_mous_id(1)].object_key == archive_key(1)


def test_an_empty_prefix_is_refused_naming_the_field(
    database: Database, clock: FakeClock, store: ListingObjectStore,
) -> None:
    with pytest.raises(CampaignProblem, match=r"no package \(\*.tar, \*.tar.gz, \*.tgz\) under 'nothing/'") as error:
        create(database, store, clock, scan_prefix="nothing/")
    assert error.value.field == "scan_prefix"


def test_a_manifest_of_json_lines_gives_the_members(
    database: Database, clock: FakeClock, store: ListingObjectStore,
) -> None:
    members = fill_archive(store, 3)
    lines = [json.dumps(members[0]), "", json.dumps({"object_key": archive_key(1)}), json.dumps(members[2])]
    store.put_bytes("manifests/cycle10.jsonl", "\n".join(lines).encode(), "application/x-ndjson")

    submitted = create(database, store, clock, manifest_key="manifests/cycle10.jsonl")

    assert submitted.members_added == 3
    assert set(members_of(database)) == {archive_mous_id(0), archive_mous_id(1), archive_mous_id(2)}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'{"object_key": "a.tar"}\nnot json\n', "line 2 of the manifest 'm.jsonl' is not a member (not JSON"),
        (b'{"mous_id": "uid://bad", "object_key": "a.tar"}\n', "line 1 of the manifest 'm.jsonl' is not a member "
         "(mous_id"),
        (b"\n\n", "the manifest 'm.jsonl' lists no member"),
    ],
)
def test_a_bad_manifest_is_refused_naming_the_line(
    database: Database, clock: FakeClock, store: ListingObjectStore, content: bytes, expected: str,
) -> None:
    store.put_bytes("m.jsonl", content)
    with pytest.raises(CampaignProblem) as error:
        create(database, store, clock, manifest_key="m.jsonl")
    assert expected in error.value.message and error.value.field == "manifest_key"


def test_one_mous_given_two_packages_is_refused(
    database: Database, clock: FakeClock, store: ListingObjectStore,
) -> None:
    members = [{"mous_id": archive_mous_id(0), "object_key": key} for key in ("a.tar", "b.tar")]
    with pytest.raises(CampaignProblem, match="is given twice, as 'a.tar' and as 'b.tar'"):
        create(database, store, clock, members=members)


# -- steering -----------------------------------------------------------------------------------------


def test_pausing_stops_feeding_and_resuming_goes_on(
    coordinator: Coordinator, database: Database, clock: FakeClock, store: ListingObjectStore,
    feeder: CampaignFeeder,
) -> None:
    create(database, store, clock, members=fill_archive(store, 6), max_in_flight=2)
    feeder.feed()

    paused = campaigns.pause(database, "cycle10", "olga", clock())
    play_workers(coordinator, database, clock)
    fed_while_paused = feeder.feed()

    assert paused.state is CampaignState.PAUSED and paused.reason.startswith("paused by olga")
    assert fed_while_paused == 0
    assert states(database)[MemberState.COMPLETED] == 2, "members in flight ran on and are followed"
    assert states(database)[MemberState.PENDING] == 4
    assert campaigns.pause(database, "cycle10", "olga", clock()).state is CampaignState.PAUSED  # again: no-op

    resumed = campaigns.resume(database, "cycle10", "olga", clock())
    assert resumed.state is CampaignState.ACTIVE
    assert feeder.feed() == 2
    run_to_the_end(feeder, coordinator, database, clock)
    assert states(database)[MemberState.COMPLETED] == 6
    with pytest.raises(CampaignConflict, match="is completed: there is nothing to pause"):
        campaigns.pause(database, "cycle10", "olga", clock())


def test_cancelling_cancels_pending_members_and_the_runs_in_flight(
    coordinator: Coordinator, database: Database, clock: FakeClock, store: ListingObjectStore,
    feeder: CampaignFeeder,
) -> None:
    members = fill_archive(store, 5)
    create(database, store, clock, members=members, max_in_flight=2)
    feeder.feed()
    play_workers(coordinator, database, clock, only=[members[0]["mous_id"]])

    cancelled = campaigns.cancel(coordinator, "cycle10", "olga")

    assert cancelled.state is CampaignState.CANCELLED
    assert cancelled.members[MemberState.CANCELLED] == 4  # three pending, one in flight
    assert cancelled.members[MemberState.COMPLETED] == 1  # it had ended: it stays completed
    assert load_mous(database, members[1]["mous_id"]).state is MousState.CANCELLED
    assert load_mous(database, members[0]["mous_id"]).state is MousState.COMPLETED
    assert feeder.feed() == 0
    assert in_flight_mous(database) == 0
    assert campaigns.cancel(coordinator, "cycle10", "olga").state is CampaignState.CANCELLED  # again: unchanged
    with pytest.raises(CampaignConflict, match="was cancelled"):
        create(database, store, clock, members=members)
    with pytest.raises(CampaignConflict, match="was cancelled"):
        campaigns.retry(database, "cycle10", ErrorClass.TIMEOUT, "olga", clock())


def test_a_claim_cut_off_by_a_crash_is_submitted_again_after_the_grace(
    coordinator: Coordinator, database: Database, clock: FakeClock, store: ListingObjectStore,
    feeder: CampaignFeeder,
) -> None:
    members = fill_archive(store, 1)
    created = create(database, store, clock, members=members)
    claims = feeder._follow_and_claim(created.campaign.campaign_id)  # the crash: claimed, never submitted
    assert [claim.mous_id for claim in claims] == [archive_mous_id(0)]

    assert feeder.feed() == 0, "within the grace the claim may still be on its way"
    clock.advance(CLAIM_GRACE.total_seconds())
    assert feeder.feed() == 1, "after it the member is back to pending, and submitted in the same pass"
    assert load_mous(database, archive_mous_id(0)).run == 1


def test_an_unknown_campaign_is_named(database: Database, clock: FakeClock) -> None:
    with pytest.raises(UnknownCampaign, match="no campaign 'nope'"):
        campaigns.pause(database, "nope", "olga", clock())


async def test_the_feeding_loop_submits_members_and_wakes_the_relay(
    database: Database, clock: FakeClock, store: ListingObjectStore, feeder: CampaignFeeder,
) -> None:
    create(database, store, clock, members=fill_archive(store, 3), max_in_flight=2)
    wakes: list[float] = []

    class Relay:
        def wake(self) -> None:
            wakes.append(time.monotonic())

    loop = asyncio.create_task(campaigns.feed_forever(feeder, 0.01, Relay()))
    try:
        deadline = time.monotonic() + 10
        while not wakes and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)  # some idle passes: nothing more to submit, nothing to wake for
    finally:
        loop.cancel()
        with pytest.raises(asyncio.CancelledError):
            await loop

    assert len(wakes) == 1, "woken once: the pass that submitted; idle passes wake nothing"
    assert states(database)[MemberState.SUBMITTED] == 2


# -- report and metrics -------------------------------------------------------------------------------


def test_the_report_counts_states_failures_throughput_times_and_products(
    coordinator: Coordinator, database: Database, clock: FakeClock, store: ListingObjectStore,
    feeder: CampaignFeeder,
) -> None:
    members = fill_archive(store, 12)
    store.put_bytes(archive_key(11), bytes(200_000_000))  # one package in the 100 MB - 1 GB bucket
    create(database, store, clock, members=members, max_in_flight=4)
    failures = {archive_mous_id(index): (ErrorClass.TIMEOUT, f"{SLOW} ({index})") for index in (1, 3, 5, 7)}
    failures[archive_mous_id(9)] = (ErrorClass.BAD_INPUT, CORRUPT)

    feeder.feed()
    play_workers(coordinator, database, clock, failures=failures)
    feeder.feed()
    midway = report(database, clock)
    run_to_the_end(feeder, coordinator, database, clock, failures)
    final = report(database, clock)

    assert midway.remaining == 8 and midway.expected_completion_at is not None
    assert midway.expected_completion_at > clock.now - timedelta(hours=1)
    assert final.campaign.members[MemberState.COMPLETED] == 7
    assert final.campaign.members[MemberState.FAILED] == 5
    assert [(failure.error_class, failure.count) for failure in final.failures] == [
        (ErrorClass.TIMEOUT, 4), (ErrorClass.BAD_INPUT, 1)
    ]
    timeouts = final.failures[0]
    assert len(timeouts.examples) == 3
    assert timeouts.examples[0].mous_id == archive_mous_id(1) and timeouts.examples[0].job_id == "r1.ingest"
    assert timeouts.examples[0].message == f"{SLOW} (1)"
    # Each completed run: ingest, calibration, export, 61 s each after its dispatch (play_workers' clock).
    assert final.time_per_mous.count == 7 and final.time_per_mous.median_s is not None
    assert final.time_per_mous.median_s >= 3 * 61
    assert [bucket.label for bucket in final.time_per_mous_by_size] == ["< 100 MB", "100 MB - 1 GB"]
    assert [bucket.count for bucket in final.time_per_mous_by_size] == [6, 1]
    assert final.throughput.last_hour == 7.0  # the whole campaign took less than an hour of the fake clock
    assert final.throughput.overall_per_hour is not None and final.throughput.overall_per_hour > 7.0
    assert final.remaining == 0 and final.expected_completion_at is None
    # Each completed run stored one product (the ingest report, factories.ingest_succeeded) of 12 bytes.
    assert (final.products, final.product_bytes) == (7, 7 * 12)


def test_the_metrics_show_the_members_of_active_campaigns_only(
    coordinator: Coordinator, database: Database, clock: FakeClock, store: ListingObjectStore,
    feeder: CampaignFeeder,
) -> None:
    create(database, store, clock, name="running", members=fill_archive(store, 3), max_in_flight=1)
    create(database, store, clock, name="stopped", members=fill_archive(store, 2))
    campaigns.pause(database, "stopped", "olga", clock())
    feeder.feed()

    samples = {
        (sample.labels["campaign"], sample.labels["state"]): sample.value
        for family in DatabaseStateCollector(database, clock=clock).collect()
        if family.name == "aperture_campaign_members"
        for sample in family.samples
    }

    assert samples == {
        ("running", "pending"): 2, ("running", "submitted"): 1, ("running", "completed"): 0,
        ("running", "failed"): 0, ("running", "cancelled"): 0,
    }


# -- the API ------------------------------------------------------------------------------------------


@pytest.fixture
async def client(
    settings: CoordinatorSettings, database: Database, coordinator: Coordinator, store: ListingObjectStore,
) -> AsyncIterator[httpx.AsyncClient]:
    services = CoordinatorServices(database=database, coordinator=coordinator, store=store)
    transport = httpx.ASGITransport(app=create_app(settings, services))
    async with httpx.AsyncClient(transport=transport, base_url="http://coordinator") as test_client:
        yield test_client


async def test_the_api_submits_feeds_and_answers_again_with_200_for_the_same_campaign(
    client: httpx.AsyncClient, store: ListingObjectStore,
) -> None:
    body = {"name": "cycle10", "pipeline_version": "2026.1", "scan_prefix": ARCHIVE, "max_in_flight": 3}
    fill_archive(store, 5)

    first = await client.post(CAMPAIGNS, json=body, headers=OPERATOR)
    again = await client.post(CAMPAIGNS, json=body, headers=OPERATOR)

    assert first.status_code == 201, first.text
    submitted = CampaignSubmitted.model_validate(first.json())
    assert first.headers["Location"] == f"{CAMPAIGNS}/{submitted.campaign.campaign_id}"
    assert submitted.members_added == 5
    assert submitted.campaign.members[MemberState.SUBMITTED] == 3, "feeding starts at once"
    assert again.status_code == 200 and again.json()["members_added"] == 0
    listed = await client.get(CAMPAIGNS, headers=OPERATOR)
    assert [item["name"] for item in listed.json()["campaigns"]] == ["cycle10"]
    by_name = await client.get(f"{CAMPAIGNS}/cycle10", headers=OPERATOR)
    assert by_name.json()["campaign_id"] == submitted.campaign.campaign_id


async def test_the_api_steers_and_reports(
    client: httpx.AsyncClient, store: ListingObjectStore, coordinator: Coordinator, database: Database,
    clock: FakeClock,
) -> None:
    members = fill_archive(store, 4)
    body = {"name": "cycle10", "pipeline_version": "2026.1", "members": members, "max_in_flight": 2}
    campaign_id = (await client.post(CAMPAIGNS, json=body, headers=OPERATOR)).json()["campaign"]["campaign_id"]
    play_workers(coordinator, database, clock, failures={archive_mous_id(0): (ErrorClass.TIMEOUT, SLOW)})

    paused = await client.post(f"{CAMPAIGNS}/{campaign_id}/pause", headers=OPERATOR)
    resumed = await client.post(f"{CAMPAIGNS}/{campaign_id}/resume", headers=OPERATOR)
    assert paused.json()["state"] == "paused"
    assert resumed.json()["state"] == "active"
    assert resumed.json()["members"] == {"pending": 0, "submitted": 2, "completed": 1, "failed": 1, "cancelled": 0}
    play_workers(coordinator, database, clock)
    retried = await client.post(f"{CAMPAIGNS}/{campaign_id}/retry", params={"error_class": "timeout"}, headers=OPERATOR)
    assert retried.status_code == 200, retried.text
    assert retried.json()["members_requeued"] == 1
    assert load_mous(database, archive_mous_id(0)).run == 2
    got = await client.get(f"{CAMPAIGNS}/{campaign_id}/report", headers=OPERATOR)
    assert got.status_code == 200
    shown = CampaignReport.model_validate(got.json())
    assert shown.campaign.members[MemberState.COMPLETED] == 3 and shown.failures == []
    cancelled = await client.post(f"{CAMPAIGNS}/{campaign_id}/cancel", headers=OPERATOR)
    assert cancelled.json()["state"] == "cancelled"
    assert load_mous(database, archive_mous_id(0)).state is MousState.CANCELLED


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", ""), ("GET", ""), ("GET", "/cycle10"), ("GET", "/cycle10/report"), ("POST", "/cycle10/pause"),
     ("POST", "/cycle10/resume"), ("POST", "/cycle10/cancel"), ("POST", "/cycle10/retry?error_class=timeout")],
)
async def test_every_endpoint_is_for_operators_only(client: httpx.AsyncClient, method: str, path: str) -> None:
    body = {"name": "cycle10", "pipeline_version": "2026.1", "scan_prefix": ARCHIVE}
    json_body = body if method == "POST" and path == "" else None

    anonymous = await client.request(method, CAMPAIGNS + path, json=json_body)
    user = await client.request(method, CAMPAIGNS + path, json=json_body, headers=ALICE)

    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"] == 'Bearer realm="aperture"'
    assert user.status_code == 403
    assert "alice's token is a user's" in user.json()["detail"]
    assert user.json()["errors"][0]["field"] == "Authorization"


async def test_the_api_names_what_is_wrong(client: httpx.AsyncClient, store: ListingObjectStore) -> None:
    fill_archive(store, 1)
    await client.post(CAMPAIGNS, json={"name": "cycle10", "pipeline_version": "1", "scan_prefix": ARCHIVE},
                      headers=OPERATOR)

    unknown_class = await client.post(f"{CAMPAIGNS}/cycle10/retry", params={"error_class": "gremlins"},
                                      headers=OPERATOR)
    unknown = await client.get(f"{CAMPAIGNS}/camp-000000000000", headers=OPERATOR)
    two_sources = await client.post(
        CAMPAIGNS, json={"name": "x", "pipeline_version": "1", "scan_prefix": ARCHIVE, "manifest_key": "m"},
        headers=OPERATOR,
    )
    empty = await client.post(CAMPAIGNS, json={"name": "y", "pipeline_version": "1", "scan_prefix": "none/"},
                              headers=OPERATOR)
    other_version = await client.post(
        CAMPAIGNS, json={"name": "cycle10", "pipeline_version": "2", "scan_prefix": ARCHIVE}, headers=OPERATOR
    )

    assert unknown_class.status_code == 422
    assert unknown_class.json()["errors"][0]["field"] == "error_class"
    assert unknown.status_code == 404 and unknown.json()["errors"][0]["field"] == "campaign_id"
    assert two_sources.status_code == 422
    assert "exactly one of members, manifest_key and scan_prefix" in two_sources.json()["detail"]
    assert empty.status_code == 422 and empty.json()["errors"][0]["field"] == "scan_prefix"
    assert other_version.status_code == 409 and other_version.json()["errors"][0]["field"] == "pipeline_version"


def test_a_package_missing_at_submission_time_is_a_bad_input_failure_not_a_crash(
    coordinator: Coordinator, database: Database, clock: FakeClock, store: ListingObjectStore,
    feeder: CampaignFeeder,
) -> None:
    members = fill_archive(store, 2)
    create(database, store, clock, members=members)
    del store.objects[archive_key(0)]

    run_to_the_end(feeder, coordinator, database, clock)

    recorded = members_of(database)
    assert recorded[archive_mous_id(0)].error_class is ErrorClass.BAD_INPUT
    assert recorded[archive_mous_id(1)].state is MemberState.COMPLETED
    # Put back, and the class retried: it runs.
    store.put_bytes(archive_key(0), b"package")
    assert campaigns.retry(database, "cycle10", ErrorClass.BAD_INPUT, "olga", clock())[1] == 1
    run_to_the_end(feeder, coordinator, database, clock)
    assert members_of(database)[archive_mous_id(0)].state is MemberState.COMPLETED


def test_a_campaigns_runs_are_its_recipe_and_its_bulk_work(
    coordinator: Coordinator, database: Database, clock: FakeClock, store: ListingObjectStore,
    feeder: CampaignFeeder,
) -> None:
    members = fill_archive(store, 2)
    submitted = create(database, store, clock, members=members, recipe="quicklook")
    assert view(database).recipe is Recipe.QUICKLOOK
    assert feeder.feed() == 2
    for member in members:
        mous = load_mous(database, member["mous_id"])
        assert (mous.recipe, mous.campaign_id) == (Recipe.QUICKLOOK, submitted.campaign.campaign_id)
    with pytest.raises(campaigns.CampaignConflict, match="runs the quicklook recipe, not full"):
        create(database, store, clock, members=members, recipe="full")
