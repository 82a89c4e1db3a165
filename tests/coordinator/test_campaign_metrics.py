"""The campaign series of the coordinator's metrics (DatabaseStateCollector, read from the database at each
scrape), as Prometheus reads them: the members of each active campaign that completed, a counter that only
grows (the dashboards' throughput is its rate), and its failed members by error class, gone once retried."""

import pytest
from aperture_contracts.campaigns import CampaignCreate, CampaignState, MemberState
from aperture_contracts.enums import ErrorClass, Stage
from aperture_coordinator import campaigns
from aperture_coordinator.campaigns import CampaignFeeder
from aperture_coordinator.db import Database
from aperture_coordinator.metrics import DatabaseStateCollector
from aperture_coordinator.models import CampaignMember
from aperture_coordinator.settings import CoordinatorSettings
from aperture_coordinator.state import Coordinator
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from .campaign_factories import ListingObjectStore, archive_mous_id, fill_archive, play_workers
from .conftest import make_settings
from .factories import FakeClock

SLOW = "CASA ran past the ingest time limit of 3600 s"
CORRUPT = "the package is not a tar archive: package the MS again"
CAMPAIGN_SERIES = ("aperture_campaign_members_completed_total", "aperture_campaign_failed_members")


@pytest.fixture
def settings(database_url: str) -> CoordinatorSettings:
    # One attempt per job: a timeout fails its MOUS at once, as it would after its last retry.
    return make_settings(database_url, enabled_stages=list(Stage), max_attempts=1)


def scrape(database: Database, clock: FakeClock) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The campaign completed and failure series as a scrape's text gives them: (name, labels) -> value."""
    registry = CollectorRegistry()
    registry.register(DatabaseStateCollector(database, clock=clock))
    text = generate_latest(registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name in CAMPAIGN_SERIES
    }


def completed(name: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return ("aperture_campaign_members_completed_total", (("campaign", name),))


def failed(name: str, error_class: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return ("aperture_campaign_failed_members", (("campaign", name), ("error_class", error_class)))


def test_completed_members_count_up_across_a_retry_and_failures_show_by_class_until_retried(
    coordinator: Coordinator, database: Database, clock: FakeClock,
) -> None:
    store = ListingObjectStore()
    members = fill_archive(store, 6)
    body = CampaignCreate.model_validate(
        {"name": "cycle10", "pipeline_version": "2026.1", "members": members, "max_in_flight": 2}
    )
    campaigns.create_campaign(database, body, store, clock())
    feeder = CampaignFeeder(coordinator, store)

    def wave(failures: dict[str, tuple[ErrorClass, str]] | None = None) -> None:
        play_workers(coordinator, database, clock, failures=failures)
        feeder.feed()

    assert scrape(database, clock) == {completed("cycle10"): 0}, "a counter from the campaign's start"
    feeder.feed()
    wave({archive_mous_id(0): (ErrorClass.BAD_INPUT, CORRUPT), archive_mous_id(1): (ErrorClass.TIMEOUT, SLOW)})
    assert scrape(database, clock) == {
        completed("cycle10"): 0, failed("cycle10", "bad_input"): 1, failed("cycle10", "timeout"): 1,
    }

    campaigns.retry(database, "cycle10", ErrorClass.TIMEOUT, "olga", clock())
    assert scrape(database, clock) == {completed("cycle10"): 0, failed("cycle10", "bad_input"): 1}
    wave()  # the two in flight complete; the retried member and the next are submitted
    assert scrape(database, clock) == {completed("cycle10"): 2, failed("cycle10", "bad_input"): 1}

    campaigns.pause(database, "cycle10", "olga", clock())
    assert scrape(database, clock) == {}, "a paused campaign has no series"
    campaigns.resume(database, "cycle10", "olga", clock())
    wave()
    assert scrape(database, clock) == {completed("cycle10"): 4, failed("cycle10", "bad_input"): 1}
    wave()  # the last one completes: the campaign has ended, and its series with it
    with database.transaction() as session:
        view = campaigns.view_of(session, campaigns.load_campaign(session, "cycle10"))
    assert (view.state, view.members[MemberState.COMPLETED]) == (CampaignState.COMPLETED, 5)
    assert scrape(database, clock) == {}


def test_a_failure_recorded_without_a_class_counts_as_internal_with_those_of_that_class(
    coordinator: Coordinator, database: Database, clock: FakeClock,
) -> None:
    store = ListingObjectStore()
    members = fill_archive(store, 3)
    body = CampaignCreate.model_validate(
        {"name": "cycle10", "pipeline_version": "2026.1", "members": members, "max_in_flight": 1}
    )
    campaigns.create_campaign(database, body, store, clock())
    with database.transaction() as session:
        session.execute(
            update(CampaignMember)
            .where(CampaignMember.mous_id.in_([archive_mous_id(0), archive_mous_id(1)]))
            .values(state=MemberState.FAILED, error_class=None, message="lost")
        )
        session.execute(
            update(CampaignMember).where(CampaignMember.mous_id == archive_mous_id(2))
            .values(state=MemberState.FAILED, error_class=ErrorClass.INTERNAL, message="a bug")
        )

    assert scrape(database, clock) == {completed("cycle10"): 0, failed("cycle10", "internal"): 3}
