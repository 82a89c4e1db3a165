"""/ui/campaigns in a real headless Chromium against the real coordinator app (uvicorn on a free port,
SQLite, an in-memory archive of small packages). Campaigns are submitted through the API; the test plays
the workers of their MOUS (campaign_factories.play_workers) and follows them with a CampaignFeeder, as the
coordinator's feeding loop would.

The page lists each campaign with its state, members by state (a <progress>), throughput and expected
completion; opens a campaign's report (members by state, failures by class with their examples, time per
MOUS, products) and keeps it open across its refreshes; pauses, resumes, cancels (after a confirmation)
and retries one error class through the API; says in words what a 401, a 403 and a 409 mean; and loads
clean (no console errors, no failed or remote requests, a Content-Security-Policy header)."""

import itertools
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aperture_contracts.campaigns import CampaignReport, CampaignState, CampaignView, MemberState
from aperture_contracts.enums import ErrorClass, Stage
from aperture_coordinator.api import CoordinatorServices, create_app
from aperture_coordinator.auth import ApiIdentity, Role
from aperture_coordinator.campaigns import CampaignFeeder
from aperture_coordinator.db import Database, upgrade_database
from aperture_coordinator.state import Coordinator
from support.asgi import serving
from support.browser import PageRecord, assert_clean, headless_browser, open_coordinator_page, sign_in

from .campaign_factories import ListingObjectStore, archive_key, archive_mous_id, play_workers
from .conftest import make_settings
from .factories import FakeClock, load_mous

OPERATOR_TOKEN = "olga-token"
USER_TOKEN = "carol-token"
PAGE = "/ui/campaigns"
CAMPAIGNS = "/api/v1/campaigns"
SLOW = "CASA ran past the ingest time limit of 3600 s"
CORRUPT = "the package is not a tar archive (unexpected end of data): package the MS again"


@dataclass(frozen=True)
class Campaign:
    """A campaign the test submitted: its id, name, and its members' MOUS in the order given."""

    campaign_id: str
    name: str
    mous_ids: list[str]


@dataclass(frozen=True)
class Served:
    """The running app and what drives it: the test plays the workers and the feeder."""

    url: str
    database: Database
    coordinator: Coordinator
    clock: FakeClock
    store: ListingObjectStore
    feeder: CampaignFeeder
    packages: Iterator[int] = field(default_factory=itertools.count)  # each campaign its own MOUS

    def api(self, method: str, path: str, token: str = OPERATOR_TOKEN, **kwargs: Any) -> httpx.Response:
        return httpx.request(
            method, self.url + path, headers={"Authorization": f"Bearer {token}"}, timeout=30, **kwargs
        )

    def submit(self, name: str, members: int, max_in_flight: int) -> Campaign:
        """A campaign of `members` new packages; the API submits the first `max_in_flight` at once."""
        indices = [next(self.packages) for _ in range(members)]
        for index in indices:
            self.store.put_bytes(archive_key(index), bytes(1000 + index), "application/x-tar")
        body = {
            "name": name, "pipeline_version": "2026.1", "max_in_flight": max_in_flight,
            "members": [{"mous_id": archive_mous_id(index), "object_key": archive_key(index)} for index in indices],
        }
        response = self.api("POST", CAMPAIGNS, json=body)
        assert response.status_code == 201, response.text
        return Campaign(response.json()["campaign"]["campaign_id"], name, [archive_mous_id(i) for i in indices])

    def run_in_flight(self, campaign: Campaign, failures: dict[str, tuple[ErrorClass, str]] | None = None) -> None:
        """Run the campaign's MOUS in flight to their end (those in `failures` fail their ingest), then let
        the feeder follow them and submit the next members."""
        play_workers(self.coordinator, self.database, self.clock, only=campaign.mous_ids, failures=failures)
        self.feeder.feed_campaign(campaign.campaign_id)

    def view(self, campaign: Campaign) -> CampaignView:
        response = self.api("GET", f"{CAMPAIGNS}/{campaign.campaign_id}")
        assert response.status_code == 200, response.text
        return CampaignView.model_validate(response.json())

    def report(self, campaign: Campaign) -> CampaignReport:
        response = self.api("GET", f"{CAMPAIGNS}/{campaign.campaign_id}/report")
        assert response.status_code == 200, response.text
        return CampaignReport.model_validate(response.json())


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("campaigns-web-ui")
    settings = make_settings(
        f"sqlite:///{folder / 'coordinator.db'}", enabled_stages=list(Stage),
        # One attempt per job: a timeout fails its MOUS at once, as it would after its last retry.
        max_attempts=1,
        # The tests' campaigns share the app: none may hold back another's jobs behind the queues' limit.
        bulk_queued_per_stage=1000,
        api_tokens={
            USER_TOKEN: ApiIdentity(user="carol"), OPERATOR_TOKEN: ApiIdentity(user="olga", role=Role.OPERATOR),
        },
    )
    upgrade_database(settings.database_url)
    database = Database(settings.database_url)
    try:
        clock = FakeClock()
        clock.now = datetime.now(UTC).replace(microsecond=0)
        coordinator = Coordinator(database, settings, clock=clock, rng=random.Random(11))
        store = ListingObjectStore()
        with serving(create_app(settings, CoordinatorServices(database, coordinator, store))) as url:
            yield Served(url, database, coordinator, clock, store, CampaignFeeder(coordinator, store))
    finally:
        database.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with headless_browser() as launched:
        yield launched


OpenPage = Callable[..., tuple[Any, PageRecord]]


@pytest.fixture
def open_page(browser: Any, served: Served) -> Iterator[OpenPage]:
    """Opens a page (a fresh context: its own session storage) at a path; what it did while it ran. With
    `timers_stopped` the page's clock stands still: it refreshes only when its reader acts."""
    contexts: list[Any] = []

    def open_at(path: str = PAGE, *, timers_stopped: bool = False) -> tuple[Any, PageRecord]:
        context = browser.new_context()
        contexts.append(context)
        opened = context.new_page()
        opened.set_default_timeout(10_000)
        if timers_stopped:
            opened.clock.install()
            opened.clock.pause_at(datetime.now(UTC) + timedelta(minutes=1))
        return opened, open_coordinator_page(opened, served.url + path)

    try:
        yield open_at
    finally:
        for context in contexts:
            context.close()


def campaign_row(page: Any, campaign: Campaign) -> Any:
    return page.locator(f'#campaigns tr[data-campaign-id="{campaign.campaign_id}"]')


def report_of(page: Any, campaign: Campaign) -> Any:
    return page.locator(f'#campaigns tr[data-report-for="{campaign.campaign_id}"]')


def half_run(served: Served, name: str) -> Campaign:
    """A campaign of 6 with 2 in flight at a time, after its first two MOUS ended: the second failed with a
    timeout; 1 completed, 1 failed, 2 in flight, 2 pending."""
    campaign = served.submit(name, members=6, max_in_flight=2)
    served.run_in_flight(campaign, {campaign.mous_ids[1]: (ErrorClass.TIMEOUT, SLOW)})
    counts = served.view(campaign).members
    assert (counts[MemberState.COMPLETED], counts[MemberState.FAILED], counts[MemberState.SUBMITTED]) == (1, 1, 2)
    return campaign


def test_the_list_shows_each_campaign_with_its_members_throughput_and_expected_completion(
    open_page: OpenPage, served: Served
) -> None:
    campaign = half_run(served, "list-cycle10")
    report = served.report(campaign)
    opened, record = open_page()
    opened.locator("#list-message", has_text="Enter an operator's token").wait_for()
    assert opened.locator("#campaigns tbody tr").count() == 0

    sign_in(opened, OPERATOR_TOKEN)
    row = campaign_row(opened, campaign)
    row.wait_for()
    assert row.locator(".name").inner_text() == "list-cycle10"
    assert row.locator(".id").inner_text() == campaign.campaign_id
    assert row.locator(".state").inner_text() == "active"
    assert row.locator(".progress-text").inner_text() == "2 of 6 ended (1 completed, 1 failed), 2 in flight, 2 pending"
    bar = row.locator("progress")
    assert bar.evaluate("bar => [bar.value, bar.max]") == [2, 6]
    assert (bar.get_attribute("aria-label") or "").startswith("Members of list-cycle10: 2 of 6 ended")
    assert report.throughput.last_hour == 1.0 and report.throughput.overall_per_hour is not None
    assert row.locator(".throughput").inner_text().startswith("1.0 MOUS/h in the last hour, ")
    assert row.locator(".throughput").inner_text().endswith(" MOUS/h overall")
    expected = row.locator(".expected time").get_attribute("datetime")
    assert report.expected_completion_at is not None
    assert datetime.fromisoformat(expected or "") == report.expected_completion_at
    listed = served.api("GET", f"{CAMPAIGNS}?limit=100").json()
    assert opened.locator("#campaigns tbody tr").count() == len(listed["campaigns"])
    assert opened.locator("#list-message").inner_text() == f"{listed['total']} campaign(s)."
    assert row.get_by_role("button", name="Pause list-cycle10").is_enabled()
    assert row.get_by_role("button", name="Resume list-cycle10").is_disabled()
    assert_clean(record)
    assert record.bad_responses == [], record.bad_responses


def test_a_campaigns_report_shows_its_failure_classes_with_examples_and_stays_open_across_refreshes(
    open_page: OpenPage, served: Served
) -> None:
    campaign = half_run(served, "report-cycle10")
    failed_mous = campaign.mous_ids[1]
    opened, record = open_page()
    sign_in(opened, OPERATOR_TOKEN)
    row = campaign_row(opened, campaign)
    row.get_by_role("button", name="Report of report-cycle10").click()
    report = report_of(opened, campaign)
    report.locator("section.report").wait_for()
    assert row.get_by_role("button", name="Hide report of report-cycle10").get_attribute("aria-expanded") == "true"

    members = {state.value: report.locator(f".members-{state.value}").inner_text() for state in MemberState}
    assert members == {"pending": "2", "submitted": "2", "completed": "1", "failed": "1", "cancelled": "0"}
    assert report.locator(".members-total").inner_text() == "6"
    timeouts = report.locator('.failure-class[data-error-class="timeout"]')
    assert "timeout: 1 member(s) failed" in timeouts.locator("p").inner_text()
    assert report.locator(".failure-class").count() == 1
    example = timeouts.locator(f'tr[data-mous-id="{failed_mous}"]')
    assert example.locator("td").all_inner_texts() == [failed_mous, "r1.ingest", SLOW]
    api_report = served.report(campaign)
    assert api_report.products == 1  # the ingest report of the completed MOUS (factories.ingest_succeeded)
    assert report.locator('[data-fact="products"]').inner_text() == f"1 file(s), {api_report.product_bytes} B"
    assert report.locator('[data-fact="time-per-mous"]').inner_text().endswith("(1 completed MOUS)")
    assert report.locator('[data-fact="pipeline"]').inner_text() == "version 2026.1, full recipe"
    assert report.locator('[data-fact="remaining"]').inner_text() == "4 member(s) pending or in flight"
    assert report.locator("table.sizes tbody tr").count() == len(api_report.time_per_mous_by_size) == 1

    # The campaign goes on: the page's next refresh shows it, the report still open.
    renders = int(opened.locator("body").get_attribute("data-renders"))
    served.run_in_flight(campaign)
    row.locator(".progress-text", has_text="4 of 6 ended (3 completed, 1 failed), 2 in flight").wait_for()
    assert int(opened.locator("body").get_attribute("data-renders")) > renders, "the list was built anew"
    assert report.locator(".members-completed").inner_text() == "3"
    assert report.locator(f'.failure-class tr[data-mous-id="{failed_mous}"]').is_visible()

    # On a phone the tables scroll sideways: the page keeps its width.
    opened.set_viewport_size({"width": 400, "height": 800})
    assert opened.evaluate("document.documentElement.scrollWidth") <= 400
    row.get_by_role("button", name="Hide report of report-cycle10").click()
    assert report.count() == 0
    assert_clean(record)
    assert record.bad_responses == [], record.bad_responses


def test_pause_then_resume_changes_the_campaigns_state(open_page: OpenPage, served: Served) -> None:
    campaign = served.submit("steer-cycle10", members=4, max_in_flight=2)
    opened, record = open_page()
    sign_in(opened, OPERATOR_TOKEN)
    row = campaign_row(opened, campaign)
    row.locator(".state", has_text="active").wait_for()

    row.get_by_role("button", name="Pause steer-cycle10").click()
    row.locator(".state", has_text="paused").wait_for()
    assert served.view(campaign).state is CampaignState.PAUSED
    assert opened.get_by_role("status").inner_text().startswith("Campaign steer-cycle10 is paused: paused by olga")
    assert row.get_by_role("button", name="Pause steer-cycle10").is_disabled()
    assert row.locator(".expected").inner_text() == "none while it is paused"

    row.get_by_role("button", name="Resume steer-cycle10").click()
    row.locator(".state", has_text="active").wait_for()
    assert served.view(campaign).state is CampaignState.ACTIVE
    assert opened.get_by_role("status").inner_text() == "Campaign steer-cycle10 is active: resumed by olga."
    assert row.get_by_role("button", name="Resume steer-cycle10").is_disabled()
    assert_clean(record)
    assert record.bad_responses == [], record.bad_responses


def test_retrying_a_class_puts_only_its_members_back_and_gives_their_mous_a_new_run(
    open_page: OpenPage, served: Served
) -> None:
    campaign = served.submit("retry-cycle10", members=3, max_in_flight=3)
    timed_out, corrupt, _good = campaign.mous_ids
    served.run_in_flight(campaign, {timed_out: (ErrorClass.TIMEOUT, SLOW), corrupt: (ErrorClass.BAD_INPUT, CORRUPT)})
    assert served.view(campaign).state is CampaignState.COMPLETED
    opened, record = open_page()
    sign_in(opened, OPERATOR_TOKEN)
    row = campaign_row(opened, campaign)
    row.get_by_role("button", name="Report of retry-cycle10").click()
    report = report_of(opened, campaign)
    report.locator('.failure-class[data-error-class="bad_input"]').wait_for()
    assert row.locator(".expected").inner_text() == "completed"

    with opened.expect_response(lambda response: "/retry?" in response.url) as answer:
        report.get_by_role("button", name="Retry timeout failures of retry-cycle10 (1)").click()
    assert answer.value.status == 200 and answer.value.request.method == "POST"
    assert answer.value.url.endswith(f"{CAMPAIGNS}/{campaign.campaign_id}/retry?error_class=timeout")
    assert answer.value.json()["members_requeued"] == 1
    opened.get_by_role("status").filter(has_text="1 timeout failure(s) of retry-cycle10 put back").wait_for()
    report.locator('.failure-class[data-error-class="timeout"]').wait_for(state="detached")
    assert report.locator('.failure-class[data-error-class="bad_input"]').is_visible(), "another class stays"
    row.locator(".state", has_text="active").wait_for()
    # Back to pending, and fed at once: its MOUS runs again, in a new run; the other class is left alone.
    view = served.view(campaign)
    assert (view.members[MemberState.FAILED], view.members[MemberState.SUBMITTED]) == (1, 1)
    assert load_mous(served.database, timed_out).run == 2
    assert load_mous(served.database, corrupt).run == 1
    assert_clean(record)
    assert record.bad_responses == [], record.bad_responses


def test_cancel_asks_first_and_cancels_only_when_confirmed(open_page: OpenPage, served: Served) -> None:
    campaign = served.submit("cancel-cycle10", members=3, max_in_flight=1)
    opened, record = open_page()
    sign_in(opened, OPERATOR_TOKEN)
    row = campaign_row(opened, campaign)
    row.locator(".state", has_text="active").wait_for()
    questions: list[str] = []

    def dismiss(dialog: Any) -> None:
        questions.append(dialog.message)
        dialog.dismiss()

    opened.once("dialog", dismiss)
    row.get_by_role("button", name="Cancel cancel-cycle10").click()
    assert questions and questions[0].startswith("Cancel campaign cancel-cycle10? Its 2 pending member(s)")
    assert served.view(campaign).state is CampaignState.ACTIVE, "not confirmed: nothing was cancelled"

    opened.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Cancel cancel-cycle10").click()
    row.locator(".state", has_text="cancelled").wait_for()
    view = served.view(campaign)
    assert view.state is CampaignState.CANCELLED and view.members[MemberState.CANCELLED] == 3
    for action in ("Pause", "Resume", "Cancel"):
        assert row.get_by_role("button", name=f"{action} cancel-cycle10").is_disabled(), action
    assert_clean(record)
    assert record.bad_responses == [], record.bad_responses


@pytest.mark.parametrize(
    ("token", "status", "words"),
    [
        (USER_TOKEN, 403, "This page is for operators, and this token is not an operator's (403): campaigns are "
                          "run by operators, and carol's token is a user's: ask an operator"),
        ("not-a-token", 401, "Your token was not accepted (401): check it, or ask an operator for one."),
    ],
)
def test_a_token_that_may_not_see_campaigns_is_told_why(
    open_page: OpenPage, served: Served, token: str, status: int, words: str
) -> None:
    served.submit(f"refused-{status}", members=1, max_in_flight=1)
    opened, record = open_page()
    sign_in(opened, token)
    opened.get_by_role("status").filter(has_text=f"({status})").wait_for()
    assert opened.get_by_role("status").inner_text().startswith(words)
    assert opened.locator("#list-message").inner_text().startswith("The campaigns could not be read: ")
    assert opened.locator("#campaigns tbody tr").count() == 0
    assert_clean(record, status)
    assert record.bad_responses and all(response.startswith(f"{status} ") for response in record.bad_responses)


def test_an_action_the_campaigns_state_no_longer_allows_is_refused_in_words(
    open_page: OpenPage, served: Served
) -> None:
    campaign = served.submit("raced-cycle10", members=2, max_in_flight=1)
    opened, record = open_page(timers_stopped=True)  # no refresh comes between the cancel and the click
    sign_in(opened, OPERATOR_TOKEN)
    row = campaign_row(opened, campaign)
    row.locator(".state", has_text="active").wait_for()
    assert served.api("POST", f"{CAMPAIGNS}/{campaign.campaign_id}/cancel").status_code == 200  # someone else

    row.get_by_role("button", name="Pause raced-cycle10").click()

    opened.get_by_role("status").filter(has_text="(409)").wait_for()
    assert opened.get_by_role("status").inner_text() == (
        "Pausing raced-cycle10: The campaign's state does not allow it now (409): campaign raced-cycle10 is "
        "cancelled: there is nothing to pause"
    )
    row.locator(".state", has_text="cancelled").wait_for()  # and the page shows the state that refused it
    assert_clean(record, 409)
    assert [response.split()[0] for response in record.bad_responses] == ["409"]


def test_the_campaigns_and_operations_pages_link_to_each_other(open_page: OpenPage) -> None:
    opened, record = open_page("/ui/operations")
    opened.get_by_role("navigation", name="Pages").get_by_role("link", name="Campaigns").click()
    opened.wait_for_selector("body[data-ready=true]")
    assert opened.url.endswith(PAGE)
    assert opened.get_by_role("heading", level=1).inner_text() == "Campaigns"
    assert opened.locator('meta[http-equiv="Content-Security-Policy"]').count() == 1
    assert opened.locator("[onclick], [onchange], [onsubmit]").count() == 0
    opened.get_by_role("navigation", name="Pages").get_by_role("link", name="Operations").click()
    opened.wait_for_selector("body[data-ready=true]")
    assert opened.url.endswith("/ui/operations")
    assert_clean(record)
