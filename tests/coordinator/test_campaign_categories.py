"""Campaign categories and sample first, on SQLite and PostgreSQL: a member's category from the attributes
given up front and from its MOUS's metadata once ingested, a sample of each category run before the rest,
the campaign awaiting validation, the release of all or some categories, the report's categories, an
idempotent re-submission, and the release endpoint's answers. The workers are played by completion events
(campaign_factories.play_workers), the metadata ingest would find by campaign_factories.observed."""

from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
import pytest
from alembic import command
from aperture_contracts.campaigns import (
    CampaignReleased,
    CampaignReport,
    CampaignState,
    CampaignSubmitted,
    CategoryCount,
    MemberAttributes,
    MemberState,
)
from aperture_contracts.enums import ErrorClass, Stage
from aperture_contracts.metadata import RepresentativeSpw
from aperture_coordinator import campaigns
from aperture_coordinator.api import CoordinatorServices, create_app
from aperture_coordinator.campaign_categories import (
    alma_band,
    attributes_from_metadata,
    category_key,
    completed,
)
from aperture_coordinator.campaign_sources import CampaignProblem
from aperture_coordinator.campaigns import CampaignConflict, CampaignFeeder
from aperture_coordinator.db import Database, alembic_config, create_database_engine, upgrade_database
from aperture_coordinator.settings import CoordinatorSettings
from aperture_coordinator.state import Coordinator
from sqlalchemy import inspect

from .campaign_factories import (
    ARCHIVE,
    ListingObjectStore,
    archive_mous_id,
    fill_archive,
    observed,
    play_workers,
)
from .conftest import make_settings
from .factories import FakeClock
from .test_campaigns import ALICE, CORRUPT, OPERATOR, TOKENS, create, members_of, report, view

CAMPAIGNS = "/api/v1/campaigns"
GB = 10**9
B6_SINGLE = {"array": "12m", "band": 6, "spws": 4, "max_channels": 1920, "fields": 1, "size_bytes": 2 * GB}
B3_MOSAIC = {"array": "12m", "band": 3, "spws": 4, "max_channels": 128, "fields": 7, "size_bytes": 300_000_000}
ACA_B7 = {"array": "7m", "band": 7, "spws": 2, "max_channels": 4000, "fields": 1, "size_bytes": 150 * GB}
KEY_B6 = "12m/B6/4spw/le4kch/single/1to10GB"
KEY_B3 = "12m/B3/4spw/le128ch/mosaic/lt1GB"
KEY_ACA = "7m/B7/2spw/le4kch/single/ge100GB"


@pytest.fixture
def settings(database_url: str) -> CoordinatorSettings:
    # One attempt per job: a failure fails the MOUS at once, as it would after its last retry.
    return make_settings(database_url, enabled_stages=list(Stage), max_attempts=1, api_tokens=TOKENS)


@pytest.fixture
def store() -> ListingObjectStore:
    return ListingObjectStore()


@pytest.fixture
def feeder(coordinator: Coordinator, store: ListingObjectStore) -> CampaignFeeder:
    return CampaignFeeder(coordinator, store)


def with_attributes(members: list[dict[str, str]], *attributes: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The members, the i-th given the i-th attributes."""
    return [member | {"attributes": dict(given)} for member, given in zip(members, attributes, strict=True)]


def three_categories(store: ListingObjectStore) -> list[dict[str, Any]]:
    """Five members of KEY_B6, three of KEY_B3 and one of KEY_ACA, interleaved as a manifest might list them."""
    kinds = [B6_SINGLE, B3_MOSAIC, B6_SINGLE, ACA_B7, B6_SINGLE, B3_MOSAIC, B6_SINGLE, B3_MOSAIC, B6_SINGLE]
    return with_attributes(fill_archive(store, len(kinds)), *kinds)


def by_category(found: CampaignReport) -> dict[str, CategoryCount]:
    return {category.category: category for category in found.categories}


def submitted_ids(database: Database) -> set[str]:
    return {mous_id for mous_id, member in members_of(database).items() if member.state is MemberState.SUBMITTED}


# -- the category of a member -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frequency_hz", "band"),
    [(43e9, 1), (75e9, 2), (100.2e9, 3), (145e9, 4), (183.3e9, 5), (230.538e9, 6), (345.796e9, 7), (460e9, 8),
     (691.473e9, 9), (870e9, 10), (120e9, None), (1.4e9, None), (1e12, None)],
)
def test_the_alma_band_of_a_frequency(frequency_hz: float, band: int | None) -> None:
    assert alma_band(frequency_hz) == band


@pytest.mark.parametrize(
    ("attributes", "key"),
    [
        (B6_SINGLE, KEY_B6),
        (B3_MOSAIC, KEY_B3),
        (ACA_B7, KEY_ACA),
        ({"array": "TP", "band": 6, "spws": 1, "max_channels": 129, "fields": 2, "size_bytes": GB - 1},
         "TP/B6/1spw/le1kch/mosaic/lt1GB"),
        ({"spws": 6, "max_channels": 4097, "size_bytes": 100 * GB - 1},
         "unknown/unknown/5to8spw/gt4kch/unknown/10to100GB"),
        ({"spws": 16, "max_channels": 1024, "size_bytes": GB}, "unknown/unknown/gt8spw/le1kch/unknown/1to10GB"),
        ({"size_bytes": 1000}, "unknown/unknown/unknown/unknown/unknown/lt1GB"),
        ({}, "unknown"),
    ],
)
def test_a_category_is_a_key_of_bucketed_attributes(attributes: dict[str, Any], key: str) -> None:
    assert category_key(MemberAttributes.model_validate(attributes)) == key


def test_the_metadata_of_an_ingested_mous_gives_the_attributes() -> None:
    mosaic = attributes_from_metadata(observed(pointings=7, channels=3840, spws=4))
    aca = attributes_from_metadata(observed(array="7m", frequency_hz=345e9, spws=2, channels=2048))
    total_power = attributes_from_metadata(observed(array="TP", frequency_hz=100e9, spws=1))
    vla = attributes_from_metadata(observed(observatory="VLA", frequency_hz=1.5e9, pointings=1))

    # The WVR spw (4 channels, 183 GHz) and the channel-average one are no science spws.
    assert mosaic == MemberAttributes(array="12m", band=6, spws=4, max_channels=3840, fields=7)
    assert aca == MemberAttributes(array="7m", band=7, spws=2, max_channels=2048, fields=1)
    assert total_power.array == "TP" and total_power.band == 3
    assert (vla.array, vla.band, vla.fields) == ("VLA", None, 1)


def test_the_band_is_the_representative_spws() -> None:
    metadata = observed(frequency_hz=90e9, spws=4)
    # spws from 90 GHz up by 2 GHz: the fourth (spw 23) lies at 96 GHz; say the representative is one at 250.
    window = metadata.measurement_sets[0].spectral_windows[-1]
    window.centre_frequency_hz = 250e9
    metadata.representative_spw = RepresentativeSpw(spw_id=window.spw_id, source="data")

    assert attributes_from_metadata(metadata).band == 6


def test_what_is_given_up_front_stays_and_only_the_unknown_is_filled() -> None:
    given = MemberAttributes(band=7, size_bytes=5)
    learned = MemberAttributes(array="12m", band=6, spws=4, max_channels=128, fields=1)

    assert completed(given, learned) == MemberAttributes(
        array="12m", band=7, spws=4, max_channels=128, fields=1, size_bytes=5
    )


# -- categories in a campaign -------------------------------------------------------------------------


def test_members_given_attributes_are_in_their_categories_from_the_start(
    database: Database, clock: FakeClock, store: ListingObjectStore,
) -> None:
    members = three_categories(store)
    members.append({"mous_id": "uid://A001/X999/X1", "object_key": f"{ARCHIVE}bare.ms.tar"})

    create(database, store, clock, members=members)

    recorded = members_of(database)
    assert recorded[archive_mous_id(0)].category == KEY_B6
    assert recorded[archive_mous_id(1)].category == KEY_B3
    assert recorded[archive_mous_id(3)].category == KEY_ACA
    assert recorded["uid://A001/X999/X1"].category == "unknown"  # no sample: nothing is looked up
    assert recorded[archive_mous_id(1)].attributes == B3_MOSAIC
    assert not any(member.held or member.sampled for member in recorded.values())
    found = by_category(report(database, clock))
    assert [(key, found[key].total) for key in (KEY_B6, KEY_B3, KEY_ACA, "unknown")] == [
        (KEY_B6, 5), (KEY_B3, 3), (KEY_ACA, 1), ("unknown", 1)
    ]
    assert [category.category for category in report(database, clock).categories][0] == KEY_B6, "most first"
    assert found[KEY_B3].members[MemberState.PENDING] == 3 and found[KEY_B3].sampled == 0


def test_the_metadata_of_ingested_members_makes_the_reports_categories_precise(
    coordinator: Coordinator, database: Database, clock: FakeClock, store: ListingObjectStore,
    feeder: CampaignFeeder,
) -> None:
    fill_archive(store, 4)
    create(database, store, clock, scan_prefix=ARCHIVE, max_in_flight=4)  # a scan knows nothing up front
    before = by_category(report(database, clock))
    metadata = {
        archive_mous_id(0): observed(pointings=3, channels=960),
        archive_mous_id(1): observed(pointings=3, channels=960),
        archive_mous_id(2): observed(array="7m", frequency_hz=100e9, spws=2, channels=4096),
        archive_mous_id(3): observed(array="7m", frequency_hz=100e9, spws=2, channels=4096),
    }

    feeder.feed()
    play_workers(coordinator, database, clock, metadata=metadata, failures={
        archive_mous_id(3): (ErrorClass.BAD_INPUT, CORRUPT),  # it fails in ingest: only its size is learned
    })
    feeder.feed()
    after = by_category(report(database, clock))

    assert list(before) == ["unknown"] and before["unknown"].total == 4
    assert set(after) == {
        "12m/B6/4spw/le1kch/mosaic/lt1GB", "7m/B3/2spw/le4kch/single/lt1GB",
        "unknown/unknown/unknown/unknown/unknown/lt1GB",
    }
    assert after["12m/B6/4spw/le1kch/mosaic/lt1GB"].members[MemberState.COMPLETED] == 2
    assert after["unknown/unknown/unknown/unknown/unknown/lt1GB"].members[MemberState.FAILED] == 1
    assert members_of(database)[archive_mous_id(2)].attributes == {
        "array": "7m", "band": 3, "spws": 2, "max_channels": 4096, "fields": 1, "size_bytes": 1002,
    }
    assert members_of(database)[archive_mous_id(2)].category == "unknown", "the category it was added in stays"


def test_attributes_given_up_front_are_not_overwritten_by_the_metadata(
    coordinator: Coordinator, database: Database, clock: FakeClock, store: ListingObjectStore,
    feeder: CampaignFeeder,
) -> None:
    members = with_attributes(fill_archive(store, 1), {"band": 7})
    create(database, store, clock, members=members)

    feeder.feed()
    play_workers(coordinator, database, clock, metadata={archive_mous_id(0): observed(frequency_hz=230e9)})
    feeder.feed()

    assert members_of(database)[archive_mous_id(0)].attributes["band"] == 7
    assert [category.category for category in report(database, clock).categories] == [
        "12m/B7/4spw/le4kch/single/lt1GB"
    ]


# -- sample first -------------------------------------------------------------------------------------


def test_a_sample_of_each_category_runs_first_and_the_campaign_then_waits_for_validation(
    coordinator: Coordinator, database: Database, clock: FakeClock, store: ListingObjectStore,
    feeder: CampaignFeeder,
) -> None:
    members = three_categories(store)
    created = create(database, store, clock, members=members, sample_per_category=2, max_in_flight=3)

    assert created.campaign.sample_per_category == 2 and created.campaign.held == 4
    assert feeder.feed() == 3, "max_in_flight still bounds the samples"
    assert feeder.feed() == 0
    play_workers(coordinator, database, clock)
    assert feeder.feed() == 2, "the other samples: five in all, two of each category and the one of the third"
    sampled = {mous_id for mous_id, member in members_of(database).items() if member.sampled}
    assert sampled == {archive_mous_id(index) for index in (0, 1, 2, 3, 5)}, "the first of each, as listed"
    play_workers(coordinator, database, clock, failures={archive_mous_id(5): (ErrorClass.BAD_INPUT, CORRUPT)})

    assert feeder.feed() == 0
    waiting = view(database)
    assert waiting.state is CampaignState.AWAITING_VALIDATION
    assert waiting.reason.startswith(
        "the samples of 3 categories have ended, 1 of 5 failed; 4 members of 2 categories held"
    )
    assert "aperture campaign release cycle10" in waiting.reason
    assert waiting.members[MemberState.PENDING] == 4 and waiting.held == 4
    assert feeder.feed() == 0 and submitted_ids(database) == set(), "nothing more runs until a release"
    with pytest.raises(CampaignConflict, match="awaits the validation of its samples"):
        campaigns.resume(database, "cycle10", "olga", clock())
    found = by_category(report(database, clock))
    assert (found[KEY_B3].sampled, found[KEY_B3].sample_failed, found[KEY_B3].held) == (2, 1, 1)
    assert found[KEY_B3].members[MemberState.FAILED] == 1 and found[KEY_B3].members[MemberState.COMPLETED] == 1
    assert (found[KEY_B6].sampled, found[KEY_B6].held, found[KEY_ACA].held) == (2, 3, 0)


def test_releasing_some_categories_runs_only_them_and_the_rest_stays_held(
    coordinator: Coordinator, database: Database, clock: FakeClock, store: ListingObjectStore,
    feeder: CampaignFeeder,
) -> None:
    create(database, store, clock, members=three_categories(store), sample_per_category=2, max_in_flight=10)
    feeder.feed()
    play_workers(coordinator, database, clock)
    feeder.feed()
    assert view(database).state is CampaignState.AWAITING_VALIDATION

    released_view, released = campaigns.release(database, "cycle10", [KEY_B6, KEY_ACA], "olga", clock())

    assert released == {KEY_B6: 3, KEY_ACA: 0}, "the one of KEY_ACA was its sample: none of it was held"
    assert released_view.state is CampaignState.ACTIVE and released_view.held == 1
    assert released_view.reason == "3 members of 1 category released by olga"
    assert feeder.feed() == 3
    assert submitted_ids(database) == {archive_mous_id(index) for index in (4, 6, 8)}
    play_workers(coordinator, database, clock)
    assert feeder.feed() == 0
    assert view(database).state is CampaignState.AWAITING_VALIDATION, "KEY_B3's last member is still held"
    assert members_of(database)[archive_mous_id(7)].state is MemberState.PENDING

    _view, everything = campaigns.release(database, "cycle10", None, "olga", clock())
    assert everything == {KEY_B3: 1}
    assert feeder.feed() == 1
    play_workers(coordinator, database, clock)
    feeder.feed()
    finished = view(database)
    assert finished.state is CampaignState.COMPLETED and finished.members[MemberState.COMPLETED] == 9
    assert campaigns.release(database, "cycle10", None, "olga", clock())[1] == {}, "nothing is left to release"
    assert campaigns.release(database, "cycle10", [KEY_B3], "olga", clock())[1] == {KEY_B3: 0}


def test_a_category_the_campaign_never_had_is_refused_naming_the_held_ones(
    database: Database, clock: FakeClock, store: ListingObjectStore, feeder: CampaignFeeder,
) -> None:
    create(database, store, clock, members=three_categories(store), sample_per_category=2)

    with pytest.raises(CampaignProblem, match="has no member of category '12m/B9'") as error:
        campaigns.release(database, "cycle10", ["12m/B9"], "olga", clock())

    assert error.value.field == "categories" and error.value.status == 422
    assert f"its held categories: {KEY_B3}, {KEY_B6}" in error.value.message
    assert view(database).held == 4, "nothing was released"


def test_releasing_a_campaign_without_a_sample_or_a_cancelled_one_is_a_conflict(
    coordinator: Coordinator, database: Database, clock: FakeClock, store: ListingObjectStore,
) -> None:
    create(database, store, clock, name="plain", members=fill_archive(store, 2))
    create(database, store, clock, name="stopped", members=three_categories(store), sample_per_category=1)
    campaigns.cancel(coordinator, "stopped", "olga")

    with pytest.raises(CampaignConflict, match="submitted without sample_per_category: none of its members is held"):
        campaigns.release(database, "plain", None, "olga", clock())
    with pytest.raises(CampaignConflict, match="was cancelled: there is nothing to release"):
        campaigns.release(database, "stopped", None, "olga", clock())


def test_a_sample_campaign_reads_the_sizes_it_was_not_given_from_the_store(
    coordinator: Coordinator, database: Database, clock: FakeClock, store: ListingObjectStore,
    feeder: CampaignFeeder,
) -> None:
    fill_archive(store, 5)
    create(database, store, clock, scan_prefix=ARCHIVE, sample_per_category=2)
    by_size = "unknown/unknown/unknown/unknown/unknown/lt1GB"

    recorded = members_of(database)
    assert {member.category for member in recorded.values()} == {by_size}
    assert recorded[archive_mous_id(4)].attributes == {"size_bytes": 1004}
    assert feeder.feed() == 2
    metadata = {archive_mous_id(index): observed() for index in range(5)}
    play_workers(coordinator, database, clock, metadata=metadata)
    feeder.feed()

    # The samples turned out 12m band 6; the members held are still known by their size alone.
    found = by_category(report(database, clock))
    assert (found["12m/B6/4spw/le4kch/single/lt1GB"].sampled, found["12m/B6/4spw/le4kch/single/lt1GB"].total) == (2, 2)
    assert (found[by_size].held, found[by_size].sampled, found[by_size].total) == (3, 0, 3)
    assert campaigns.release(database, "cycle10", [by_size], "olga", clock())[1] == {by_size: 3}


def test_a_package_missing_when_sampled_keeps_an_unknown_size_and_fails_at_its_turn(
    coordinator: Coordinator, database: Database, clock: FakeClock, store: ListingObjectStore,
    feeder: CampaignFeeder,
) -> None:
    members = with_attributes(fill_archive(store, 1), {"array": "12m", "band": 6})
    members.append({"mous_id": "uid://A001/X999/X1", "object_key": f"{ARCHIVE}gone.ms.tar",
                    "attributes": {"array": "12m", "band": 6}})
    create(database, store, clock, members=members, sample_per_category=1)

    recorded = members_of(database)
    assert recorded[archive_mous_id(0)].category == "12m/B6/unknown/unknown/unknown/lt1GB"
    assert recorded["uid://A001/X999/X1"].category == "12m/B6/unknown/unknown/unknown/unknown"
    assert feeder.feed() == 1, "each is its category's sample; the missing one fails as it is submitted"
    assert members_of(database)["uid://A001/X999/X1"].error_class is ErrorClass.BAD_INPUT


# -- submitting again ---------------------------------------------------------------------------------


def test_submitting_a_sampled_campaign_again_changes_nothing_and_new_members_follow_their_category(
    coordinator: Coordinator, database: Database, clock: FakeClock, store: ListingObjectStore,
    feeder: CampaignFeeder,
) -> None:
    members = three_categories(store)
    create(database, store, clock, members=members, sample_per_category=2)
    feeder.feed()
    play_workers(coordinator, database, clock)
    feeder.feed()
    campaigns.release(database, "cycle10", [KEY_B6], "olga", clock())
    placed = {mous_id: (member.sampled, member.held) for mous_id, member in members_of(database).items()}

    again = create(database, store, clock, members=members, sample_per_category=2)

    assert (again.created, again.members_added, again.members_known) == (False, 0, 9)
    assert {mous_id: (m.sampled, m.held) for mous_id, m in members_of(database).items()} == placed
    with pytest.raises(CampaignConflict, match="was submitted with sample_per_category 2 per category") as other:
        create(database, store, clock, members=members, sample_per_category=3)
    assert other.value.field == "sample_per_category"
    with pytest.raises(CampaignConflict, match="sample_per_category 2 per category"):
        create(database, store, clock, members=members)

    # New members: of the held category held, of the released one run at once, of a new one sampled.
    extra = fill_archive(store, 12)[9:]
    tp = {"array": "TP", "band": 6, "spws": 1, "max_channels": 4096, "fields": 1, "size_bytes": GB}
    more = create(database, store, clock, members=members + with_attributes(extra, B3_MOSAIC, B6_SINGLE, tp),
                  sample_per_category=2)

    recorded = members_of(database)
    assert more.members_added == 3 and more.campaign.state is CampaignState.ACTIVE
    assert (recorded[archive_mous_id(9)].held, recorded[archive_mous_id(9)].sampled) == (True, False)
    assert (recorded[archive_mous_id(10)].held, recorded[archive_mous_id(10)].sampled) == (False, False)
    assert (recorded[archive_mous_id(11)].held, recorded[archive_mous_id(11)].sampled) == (False, True)
    assert feeder.feed() == 5, "the three released before, the new one of their category, the new category's sample"
    assert submitted_ids(database) == {archive_mous_id(index) for index in (4, 6, 8, 10, 11)}


# -- the API ------------------------------------------------------------------------------------------


@pytest.fixture
async def client(
    settings: CoordinatorSettings, database: Database, coordinator: Coordinator, store: ListingObjectStore,
) -> AsyncIterator[httpx.AsyncClient]:
    services = CoordinatorServices(database=database, coordinator=coordinator, store=store)
    transport = httpx.ASGITransport(app=create_app(settings, services))
    async with httpx.AsyncClient(transport=transport, base_url="http://coordinator") as test_client:
        yield test_client


async def submit(client: httpx.AsyncClient, name: str, members: list[dict[str, Any]], **fields: Any) -> str:
    body = {"name": name, "pipeline_version": "2026.1", "members": members} | fields
    answer = await client.post(CAMPAIGNS, json=body, headers=OPERATOR)
    assert answer.status_code == 201, answer.text
    return CampaignSubmitted.model_validate(answer.json()).campaign.campaign_id


async def test_the_api_samples_first_and_releases_some_then_every_category(
    client: httpx.AsyncClient, coordinator: Coordinator, database: Database, clock: FakeClock,
    store: ListingObjectStore,
) -> None:
    campaign_id = await submit(client, "cycle10", three_categories(store), sample_per_category=2, max_in_flight=10)
    play_workers(coordinator, database, clock)
    CampaignFeeder(coordinator, store).feed()
    waiting = await client.get(f"{CAMPAIGNS}/{campaign_id}", headers=OPERATOR)
    assert waiting.json()["state"] == "awaiting_validation" and waiting.json()["held"] == 4

    some = await client.post(f"{CAMPAIGNS}/{campaign_id}/release", json={"categories": [KEY_B3]}, headers=OPERATOR)
    rest = await client.post(f"{CAMPAIGNS}/{campaign_id}/release", headers=OPERATOR)  # no body: every category
    got = await client.get(f"{CAMPAIGNS}/{campaign_id}/report", headers=OPERATOR)

    assert some.status_code == 200, some.text
    first = CampaignReleased.model_validate(some.json())
    assert first.released == {KEY_B3: 1} and first.members_released == 1
    assert first.campaign.state is CampaignState.ACTIVE
    assert first.campaign.members[MemberState.SUBMITTED] == 1, "feeding starts at once"
    second = CampaignReleased.model_validate(rest.json())
    assert second.released == {KEY_B6: 3} and second.campaign.held == 0
    found = by_category(CampaignReport.model_validate(got.json()))
    assert (found[KEY_B6].sampled, found[KEY_B6].members[MemberState.SUBMITTED]) == (2, 3)


@pytest.mark.parametrize(("token", "status"), [(None, 401), (ALICE, 403)])
async def test_release_is_for_operators_only(
    client: httpx.AsyncClient, store: ListingObjectStore, token: dict[str, str] | None, status: int,
) -> None:
    await submit(client, "cycle10", three_categories(store), sample_per_category=1)

    answer = await client.post(f"{CAMPAIGNS}/cycle10/release", json={"categories": [KEY_B6]}, headers=token)

    assert answer.status_code == status
    if status == 403:
        assert "alice's token is a user's" in answer.json()["detail"]
    assert (await client.get(f"{CAMPAIGNS}/cycle10", headers=OPERATOR)).json()["held"] == 6


async def test_release_names_what_is_wrong(
    client: httpx.AsyncClient, coordinator: Coordinator, store: ListingObjectStore,
) -> None:
    await submit(client, "plain", fill_archive(store, 1))
    await submit(client, "sampled", three_categories(store), sample_per_category=1)

    unknown = await client.post(f"{CAMPAIGNS}/camp-000000000000/release", headers=OPERATOR)
    not_sampled = await client.post(f"{CAMPAIGNS}/plain/release", headers=OPERATOR)
    stranger = await client.post(f"{CAMPAIGNS}/sampled/release", json={"categories": ["12m/B9"]}, headers=OPERATOR)
    empty_list = await client.post(f"{CAMPAIGNS}/sampled/release", json={"categories": []}, headers=OPERATOR)
    await client.post(f"{CAMPAIGNS}/sampled/cancel", headers=OPERATOR)
    cancelled = await client.post(f"{CAMPAIGNS}/sampled/release", headers=OPERATOR)

    assert unknown.status_code == 404 and unknown.json()["errors"][0]["field"] == "campaign_id"
    assert not_sampled.status_code == 409 and "without sample_per_category" in not_sampled.json()["detail"]
    assert stranger.status_code == 422 and stranger.json()["errors"][0]["field"] == "categories"
    assert empty_list.status_code == 422
    assert cancelled.status_code == 409 and "was cancelled" in cancelled.json()["detail"]


async def test_the_api_takes_attributes_and_answers_a_resubmission_with_200(
    client: httpx.AsyncClient, store: ListingObjectStore,
) -> None:
    members = three_categories(store)
    await submit(client, "cycle10", members, sample_per_category=2, max_in_flight=3)

    again = await client.post(
        CAMPAIGNS, json={"name": "cycle10", "pipeline_version": "2026.1", "members": members, "sample_per_category": 2,
                         "max_in_flight": 3},
        headers=OPERATOR,
    )
    other = await client.post(
        CAMPAIGNS, json={"name": "cycle10", "pipeline_version": "2026.1", "members": members, "max_in_flight": 3},
        headers=OPERATOR,
    )
    bad = await client.post(
        CAMPAIGNS, json={"name": "x", "pipeline_version": "1", "members": with_attributes(members[:1], {"band": 11})},
        headers=OPERATOR,
    )

    assert again.status_code == 200 and again.json()["members_added"] == 0
    assert again.json()["campaign"]["held"] == 4
    assert other.status_code == 409 and other.json()["errors"][0]["field"] == "sample_per_category"
    assert bad.status_code == 422 and "band" in bad.text


# -- the schema ---------------------------------------------------------------------------------------


def columns(database_url: str, table: str) -> set[str]:
    engine = create_database_engine(database_url)
    try:
        return {column["name"] for column in inspect(engine).get_columns(table)}
    finally:
        engine.dispose()


def test_the_migration_adds_the_columns_and_goes_back(database_url: str) -> None:
    added = {"attributes", "category", "sampled", "held"}
    upgrade_database(database_url, "0008")
    assert added <= columns(database_url, "campaign_members")
    assert "sample_per_category" in columns(database_url, "campaigns")

    command.downgrade(alembic_config(database_url), "0007")

    assert not added & columns(database_url, "campaign_members")
    assert "sample_per_category" not in columns(database_url, "campaigns")
    upgrade_database(database_url)
    assert added <= columns(database_url, "campaign_members")
