"""The coordinator's pages in a real headless Chromium against the real coordinator app (uvicorn on a free
port, SQLite holding an MOUS processed to the end, the Coordinator planning and dispatching request jobs,
the test playing the workers' events).

/ui/requests loads clean (no console errors, no failed or remote requests), estimates, places the API's
field errors by the right input of the right cube row, submits, lists, cancels, says what a refused token
means; follows a running version (progress, jobs), shows an ended one's QA verdict and per-image QA, lists
its products with their download links, offers none for a cancelled one, runs a request again, and keeps
what the reader opened across its refreshes. /ui/operations lists every MOUS and every user's requests
for an operator, and tells a user's token that it is for operators."""

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from aperture_contracts.enums import JobState, Stage
from aperture_contracts.requests import ProductList, RequestView
from aperture_coordinator.api import CoordinatorServices, create_app
from aperture_coordinator.auth import ApiIdentity, Role
from aperture_coordinator.db import Database, upgrade_database
from aperture_coordinator.settings import CoordinatorSettings
from aperture_coordinator.state import Coordinator
from support.asgi import serving
from support.browser import PageRecord, assert_clean, headless_browser, open_coordinator_page, sign_in

from .factories import (
    MOUS_ID,
    FakeClock,
    InMemoryObjectStore,
    process_to_completion,
    request_job_succeeded,
    request_jobs,
    run_request_wave,
    started,
)

TOKEN = "carol-token"
DAVE_TOKEN = "dave-token"
OPERATOR_TOKEN = "olga-token"
PAGE = "/ui/requests"
OPERATIONS = "/ui/operations"
REQUESTS_API = "/api/v1/requests"
# spw 17 (factories): 128 channels of 15.6 MHz from 247 GHz, ~19 km/s each; spw 19 the same from 249 GHz.
GOOD_CUBE = {"spw": "17", "start": "-100", "width": "25", "nchan": "10", "rest": "248e9"}
SECOND_CUBE = {"spw": "19", "start": "-100", "width": "25", "nchan": "10", "rest": "250e9"}
CUBE_BODY = {
    "spw_id": 17, "spectral_axis": {
        "mode": "velocity", "start": -100.0, "width": 25.0, "nchan": 10, "rest_frequency_hz": 248e9,
        "velocity_convention": "radio", "frame": "LSRK",
    },
}


@dataclass(frozen=True)
class Served:
    """The running app and what drives it: the test plays the workers through `coordinator`."""

    url: str
    database: Database
    coordinator: Coordinator
    clock: FakeClock

    def api(self, method: str, path: str, token: str = TOKEN, **kwargs: Any) -> httpx.Response:
        return httpx.request(
            method, self.url + path, headers={"Authorization": f"Bearer {token}"}, timeout=30, **kwargs
        )

    def create_request(self, token: str = TOKEN) -> str:
        response = self.api("POST", REQUESTS_API, token, json={"mous_id": MOUS_ID, "cubes": [CUBE_BODY]})
        assert response.status_code == 201, response.text
        return str(response.json()["request_id"])

    def read_request(self, request_id: str, token: str = TOKEN) -> RequestView:
        response = self.api("GET", f"{REQUESTS_API}/{request_id}", token)
        assert response.status_code == 200, response.text
        return RequestView.model_validate(response.json())

    def run_to_the_end(self, request_id: str, version: int = 1, rms_ratio: float = 1.05) -> None:
        while run_request_wave(
            self.coordinator, self.database, self.clock, request_id, version, rms_ratio=rms_ratio
        ):
            pass

    def start_jobs(self, request_id: str, count: int) -> list[Any]:
        """Start `count` of the version's dispatched jobs (as workers would); returns them."""
        dispatched = [job for job in request_jobs(self.database, request_id) if job.state == JobState.DISPATCHED]
        assert len(dispatched) >= count, dispatched
        for job in dispatched[:count]:
            self.coordinator.apply_event(started(
                job.job_id, job.attempt, at=self.clock.advance(1), stage=job.stage, worker=f"{job.stage.value}:1",
                mous_id=job.mous_id,
            ))
        return dispatched[:count]

    def succeed(self, job: Any) -> None:
        assert self.coordinator.apply_event(request_job_succeeded(job, at=self.clock.advance(1))).applied


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The coordinator, with the pages mounted, over a database whose MOUS has been processed to the end;
    request versions are planned and dispatched by its Coordinator, on a clock the test moves."""
    folder = tmp_path_factory.mktemp("web-ui")
    settings = CoordinatorSettings(
        database_url=f"sqlite:///{folder / 'coordinator.db'}", enabled_stages=list(Stage),
        api_tokens={
            TOKEN: ApiIdentity(user="carol"), DAVE_TOKEN: ApiIdentity(user="dave"),
            OPERATOR_TOKEN: ApiIdentity(user="olga", role=Role.OPERATOR),
        },
        upload_dir=folder / "uploads",
        # The tests make many requests within a minute of the clock, which only they move.
        request_rate_per_minute=1000, max_active_requests_per_user=100,
    )
    upgrade_database(settings.database_url)
    database = Database(settings.database_url)
    try:
        process_to_completion(database, settings)
        clock = FakeClock()
        clock.now = datetime.now(UTC).replace(microsecond=0)
        coordinator = Coordinator(database, settings, clock=clock, rng=random.Random(7))
        services = CoordinatorServices(database, coordinator, InMemoryObjectStore())
        with serving(create_app(settings, services)) as url:
            yield Served(url, database, coordinator, clock)
    finally:
        database.dispose()


@pytest.fixture(scope="module")
def base_url(served: Served) -> str:
    return served.url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with headless_browser() as launched:
        yield launched


OpenPage = Callable[[str], tuple[Any, PageRecord]]


@pytest.fixture
def open_page(browser: Any, base_url: str) -> Iterator[OpenPage]:
    """Opens a page (a fresh context: its own session storage) at a path; what it did while it ran."""
    contexts: list[Any] = []

    def open_at(path: str) -> tuple[Any, PageRecord]:
        context = browser.new_context()
        contexts.append(context)
        opened = context.new_page()
        opened.set_default_timeout(10_000)
        return opened, open_coordinator_page(opened, base_url + path)

    try:
        yield open_at
    finally:
        for context in contexts:
            context.close()


@pytest.fixture
def page(open_page: OpenPage) -> tuple[Any, PageRecord]:
    """A fresh page on /ui/requests, and what it did while it ran."""
    return open_page(PAGE)


def fill_cube(row: Any, values: dict[str, str]) -> None:
    row.get_by_label("Spw").fill(values["spw"])
    row.get_by_label("Mode").select_option("velocity")
    row.get_by_label("Start").fill(values["start"])
    row.get_by_label("Width").fill(values["width"])
    row.get_by_label("Channels").fill(values["nchan"])
    row.get_by_label("Rest frequency (Hz)").fill(values["rest"])


def fill_request(page: Any, *cubes: dict[str, str]) -> None:
    page.get_by_label("MOUS id").fill(MOUS_ID)
    for index, values in enumerate(cubes):
        if index >= page.locator("#cubes > li").count():
            page.get_by_role("button", name="Add a cube").click()
        fill_cube(page.locator("#cubes > li").nth(index), values)


def version_section(page: Any, request_id: str, version: int) -> Any:
    """The block of one version of a request, in the row under the request's."""
    return page.locator(f'tr[data-detail-for="{request_id}"] section.version[data-version="{version}"]')


def kept(page: Any, key: str) -> Any:
    """A <details> the page keeps open or closed across refreshes, by its key."""
    return page.locator(f'details[data-key="{key}"]')


def test_page_loads_clean_with_labels_and_a_content_security_policy(page: tuple[Any, PageRecord]) -> None:
    opened, record = page
    assert "default-src 'self'" in opened.locator('meta[http-equiv="Content-Security-Policy"]').get_attribute("content")
    for label in ("API token", "MOUS id", "Spw", "Width", "Rest frequency (Hz)", "Frame", "Field size (arcsec)"):
        assert opened.get_by_label(label).count() == 1, label
    assert opened.locator("[onclick], [onchange], [onsubmit]").count() == 0
    assert_clean(record)
    assert record.bad_responses == [], record.bad_responses


def test_estimate_shows_the_size_and_run_time(page: tuple[Any, PageRecord]) -> None:
    opened, record = page
    sign_in(opened, TOKEN)
    fill_request(opened, GOOD_CUBE)
    opened.get_by_role("button", name="Estimate").click()
    opened.wait_for_selector("#estimate-result:not([hidden])")
    assert opened.locator("#estimate-size").inner_text().endswith(("B", "kB", "MB", "GB", "TB"))
    assert opened.locator("#estimate-time").inner_text().startswith("about ")
    assert_clean(record)
    assert record.bad_responses == [], record.bad_responses


def test_a_bad_width_is_shown_next_to_that_rows_width(page: tuple[Any, PageRecord]) -> None:
    opened, record = page
    sign_in(opened, TOKEN)
    fill_request(opened, GOOD_CUBE, SECOND_CUBE | {"width": "5"})  # finer than spw 19's ~19 km/s channels
    opened.get_by_role("button", name="Estimate").click()
    second_width = opened.locator("#cubes > li").nth(1).get_by_label("Width")
    error = opened.locator("#" + second_width.get_attribute("aria-describedby"))
    error.filter(has_text="finer than the data's channels").wait_for()
    assert second_width.get_attribute("aria-invalid") == "true"
    first_row = opened.locator("#cubes > li").nth(0)
    assert first_row.locator(".error:not(:empty)").count() == 0
    assert opened.locator("#estimate-result").is_hidden()
    assert_clean(record, 422)
    assert any(response.startswith("422 ") for response in record.bad_responses), record.bad_responses


def test_submit_lists_the_request_queued_and_cancel_cancels_it(page: tuple[Any, PageRecord]) -> None:
    opened, record = page
    sign_in(opened, TOKEN)
    fill_request(opened, GOOD_CUBE)
    opened.get_by_role("button", name="Submit").click()
    opened.get_by_role("status").filter(has_text="accepted").wait_for()
    request_id = opened.get_by_role("status").inner_text().split()[1]
    row = opened.locator(f'#requests tr[data-request-id="{request_id}"]')
    row.locator(".state", has_text="queued").wait_for()
    assert row.locator(".reason").inner_text().strip() != ""
    row.get_by_role("button", name=f"Cancel {request_id}").click()
    row.locator(".state", has_text="cancelled").wait_for()
    assert row.get_by_role("button", name=f"Cancel {request_id}").is_disabled()
    assert_clean(record)
    assert record.bad_responses == [], record.bad_responses


def test_a_wrong_token_says_it_was_not_accepted(page: tuple[Any, PageRecord]) -> None:
    opened, record = page
    sign_in(opened, "not-a-token")
    opened.get_by_role("status").filter(has_text="not accepted (401)").wait_for()
    fill_request(opened, GOOD_CUBE)
    with opened.expect_response(lambda response: "dry_run=true" in response.url) as answer:
        opened.get_by_role("button", name="Estimate").click()
    assert answer.value.status == 401
    assert opened.locator("#estimate-result").is_hidden()
    assert opened.get_by_role("status").inner_text().startswith("Your token was not accepted (401)")
    assert_clean(record, 401)
    assert record.bad_responses and all(response.startswith("401 ") for response in record.bad_responses)


# -- following a version -----------------------------------------------------------------------------------


def test_a_running_version_shows_its_progress_and_an_opened_job_list_stays_open_across_refreshes(
    page: tuple[Any, PageRecord], served: Served
) -> None:
    opened, record = page
    request_id = served.create_request()
    total = len(request_jobs(served.database, request_id))
    first, second, third = served.start_jobs(request_id, 3)
    served.succeed(first)
    sign_in(opened, TOKEN)
    version = version_section(opened, request_id, 1)
    version.locator(".progress-text", has_text=f"1 of {total} jobs done, 2 running").wait_for()
    bar = version.locator("progress")
    assert (bar.evaluate("bar => [bar.value, bar.max]")) == [1, total]
    assert "2 running" in (bar.get_attribute("aria-label") or "")
    assert version.locator("h3 .badge").inner_text() == "running"
    assert version.locator(".version-reason").inner_text() == f"1 of {total} jobs done"
    assert version.locator(".verdict").count() == 0, "no verdict before the version has ended"
    assert version.get_by_role("button", name="Products").count() == 0, "no products while it runs"

    jobs = kept(opened, f"jobs:{request_id}/v1")
    assert jobs.get_attribute("open") is None
    jobs.locator("summary").click()
    assert jobs.locator("tbody tr").count() == total
    assert jobs.locator(f'tr[data-job-id="{second.job_id}"] .job-state').inner_text() == "running"
    assert jobs.locator(f'tr[data-job-id="{first.job_id}"] .job-state').inner_text() == "succeeded"

    renders = int(opened.locator("body").get_attribute("data-renders"))
    served.succeed(second)
    version.locator(".progress-text", has_text=f"2 of {total} jobs done, 1 running").wait_for()
    assert int(opened.locator("body").get_attribute("data-renders")) > renders, "the list was built anew"
    assert jobs.get_attribute("open") is not None, "the job list the reader opened stayed open"
    assert jobs.locator(f'tr[data-job-id="{second.job_id}"] .job-state').inner_text() == "succeeded"
    assert jobs.locator(f'tr[data-job-id="{third.job_id}"] .job-state').inner_text() == "running"
    assert_clean(record)
    assert record.bad_responses == [], record.bad_responses


def test_an_ended_version_shows_its_qa_and_lists_its_products_with_their_links_across_refreshes(
    page: tuple[Any, PageRecord], served: Served
) -> None:
    opened, record = page
    request_id = served.create_request()
    served.run_to_the_end(request_id)
    done = served.read_request(request_id).versions[0]
    assert done.passed_qa is True
    sign_in(opened, TOKEN)
    version = version_section(opened, request_id, 1)
    version.locator(".verdict").wait_for()
    assert version.locator(".verdict-word").inner_text() == "passed"
    total = done.progress.total
    assert version.locator(".progress-text").inner_text() == f"{total} of {total} jobs done"
    assert version.locator("h3 .badge").inner_text() == "succeeded"
    assert version.locator("time").count() == 3  # asked, started, ended

    qa = kept(opened, f"qa:{request_id}/v1")
    assert qa.get_attribute("open") is None, "all passed: the QA table waits folded"
    qa.locator("summary").click()
    rows = qa.locator("tbody tr")
    assert rows.count() == len(done.qa) == 8
    for index, check in enumerate(done.qa):
        cells = rows.nth(index).locator("td").all_inner_texts()
        assert cells[:6] == [check.image, check.kind.value, ", ".join(map(str, check.spw_ids)), "1.05 ×",
                             f"{check.beam_ratio:.2f} ×", "passed"], cells

    version.get_by_role("button", name=f"Products of {request_id} version 1").click()
    products = version.locator("table.products")
    products.wait_for()
    response = served.api("GET", f"{REQUESTS_API}/{request_id}/versions/1/products")
    listing = ProductList.model_validate(response.json())
    links = products.locator("tbody a")
    assert links.count() == len(listing.products) > 0
    shown = {links.nth(index).inner_text(): links.nth(index).get_attribute("href") for index in range(links.count())}
    assert shown == {product.name: product.url for product in listing.products}
    kinds = products.locator("tbody tr td:nth-child(2)").all_inner_texts()
    assert sorted(kinds) == sorted(product.kind for product in listing.products)
    expiry = version.locator(".links-expire time").get_attribute("datetime")
    assert datetime.fromisoformat(expiry or "") == listing.links_expire_at
    hide = version.get_by_role("button", name=f"Hide products of {request_id} version 1")
    assert hide.get_attribute("aria-expanded") == "true"

    # Another request changes the list: it is built anew, and what the reader opened stays open.
    renders = int(opened.locator("body").get_attribute("data-renders"))
    other = served.create_request()
    opened.locator(f'tr[data-request-id="{other}"]').wait_for()
    assert int(opened.locator("body").get_attribute("data-renders")) > renders
    assert products.is_visible() and links.count() == len(listing.products)
    assert qa.get_attribute("open") is not None

    hide.click()
    assert products.count() == 0
    assert version.get_by_role("button", name=f"Products of {request_id} version 1").is_visible()
    # On a phone the long reasons are cut short and the tables scroll sideways: the page keeps its width.
    opened.set_viewport_size({"width": 400, "height": 800})
    assert opened.evaluate("document.documentElement.scrollWidth") <= 400
    assert_clean(record)
    assert record.bad_responses == [], record.bad_responses


def test_a_version_noisier_than_expected_says_qa_not_passed_and_shows_why(
    page: tuple[Any, PageRecord], served: Served
) -> None:
    opened, record = page
    request_id = served.create_request()
    served.run_to_the_end(request_id, rms_ratio=3.0)
    sign_in(opened, TOKEN)
    version = version_section(opened, request_id, 1)
    version.locator(".verdict").wait_for()
    assert version.locator(".verdict-word").inner_text() == "not passed"
    assert "QA not passed" in version.locator(".version-reason").inner_text()
    qa = kept(opened, f"qa:{request_id}/v1")
    assert qa.get_attribute("open") is not None, "a failed QA is shown unfolded"
    assert "8 not passed" in qa.locator("summary").inner_text()
    assert set(qa.locator("tbody td:nth-child(4)").all_inner_texts()) == {"3.00 ×"}
    assert set(qa.locator("tbody td:nth-child(6)").all_inner_texts()) == {"not passed"}
    assert "above the limit of 2 x" in qa.locator("tbody td.notes").first.inner_text()
    # A version that ended with QA not passed still delivered its images: they can be looked at.
    assert version.get_by_role("button", name=f"Products of {request_id} version 1").is_visible()
    # On a phone the long reasons are cut short and the tables scroll sideways: the page keeps its width.
    opened.set_viewport_size({"width": 400, "height": 800})
    assert opened.evaluate("document.documentElement.scrollWidth") <= 400
    assert_clean(record)
    assert record.bad_responses == [], record.bad_responses


def test_a_cancelled_version_offers_no_products_and_run_again_adds_a_version(
    page: tuple[Any, PageRecord], served: Served
) -> None:
    opened, record = page
    request_id = served.create_request()
    served.start_jobs(request_id, 1)
    sign_in(opened, TOKEN)
    row = opened.locator(f'tr[data-request-id="{request_id}"]')
    row.locator(".state", has_text="running").wait_for()
    assert row.get_by_role("button", name=f"Run again {request_id}").is_disabled()
    row.get_by_role("button", name=f"Cancel {request_id}").click()
    row.locator(".state", has_text="cancelled").wait_for()
    first = version_section(opened, request_id, 1)
    first.locator(".no-products").wait_for()
    assert first.get_by_role("button").count() == 0, "a cancelled version offers no products"
    assert "run the request again" in first.locator(".no-products").inner_text().lower()

    row.get_by_role("button", name=f"Run again {request_id}").click()
    opened.get_by_role("status").filter(has_text=f"Request {request_id}: version 2").wait_for()
    second = version_section(opened, request_id, 2)
    second.locator("h3 .badge", has_text="queued").wait_for()
    assert row.locator("td").nth(2).inner_text() == "2"
    earlier = kept(opened, f"earlier:{request_id}")
    assert earlier.get_attribute("open") is None and "Earlier versions (1)" in earlier.inner_text()
    assert [version.state.value for version in served.read_request(request_id).versions] == ["cancelled", "queued"]
    assert row.get_by_role("button", name=f"Cancel {request_id}").is_enabled()
    assert_clean(record)
    assert record.bad_responses == [], record.bad_responses


# -- the operations page -----------------------------------------------------------------------------------


def test_the_operations_page_lists_every_mous_and_every_users_requests_for_an_operator(
    open_page: OpenPage, served: Served
) -> None:
    carols, daves = served.create_request(TOKEN), served.create_request(DAVE_TOKEN)
    served.run_to_the_end(daves)
    opened, record = open_page(OPERATIONS)
    mous = opened.locator(f'#mous tr[data-mous-id="{MOUS_ID}"]')
    mous.wait_for()  # the MOUS list needs no token
    assert mous.locator(".state").inner_text() == "completed"
    assert mous.locator("time").count() == 2

    sign_in(opened, OPERATOR_TOKEN)
    carol_row = opened.locator(f'#all-requests tr[data-request-id="{carols}"]')
    dave_row = opened.locator(f'#all-requests tr[data-request-id="{daves}"]')
    dave_row.wait_for()
    assert carol_row.locator(".owner").inner_text() == "carol"
    assert dave_row.locator(".owner").inner_text() == "dave"
    assert carol_row.locator(".state").inner_text() == "queued"
    done = served.read_request(daves, DAVE_TOKEN).versions[0]
    assert dave_row.locator(".state").inner_text() == "succeeded"
    total = done.progress.total
    assert dave_row.locator(".progress-text").inner_text() == f"{total} of {total} jobs done"
    assert dave_row.locator(".qa").inner_text() == "passed" and carol_row.locator(".qa").inner_text() == "—"
    assert opened.locator("#role-message").is_hidden()
    listed = served.api("GET", f"{REQUESTS_API}?limit=500", OPERATOR_TOKEN).json()
    assert opened.locator("#all-requests tbody tr").count() == listed["total"]
    assert "carol, dave" in opened.locator("#requests-message").inner_text()

    opened.get_by_label("State").select_option("failed")
    opened.locator("#mous-message", has_text="No failed MOUS.").wait_for()
    assert opened.locator("#mous tbody tr").count() == 0
    opened.get_by_label("State").select_option("completed")
    mous.wait_for()
    assert opened.locator("#mous-message").inner_text() == "1 completed MOUS."
    assert_clean(record)
    assert record.bad_responses == [], record.bad_responses


def test_the_operations_page_tells_a_users_token_that_it_is_for_operators(
    open_page: OpenPage, served: Served
) -> None:
    served.create_request(DAVE_TOKEN)
    mine = served.create_request(TOKEN)
    opened, record = open_page(OPERATIONS)
    sign_in(opened, TOKEN)
    message = opened.locator("#role-message")
    message.wait_for()
    assert "This view is for operators" in message.inner_text() and "carol's (role user)" in message.inner_text()
    opened.locator(f'#all-requests tr[data-request-id="{mine}"]').wait_for()
    assert set(opened.locator("#all-requests .owner").all_inner_texts()) == {"carol"}
    assert_clean(record)
    assert record.bad_responses == [], record.bad_responses


def test_the_pages_link_to_each_other(page: tuple[Any, PageRecord]) -> None:
    opened, record = page
    opened.get_by_role("navigation", name="Pages").get_by_role("link", name="Operations").click()
    opened.wait_for_selector("body[data-ready=true]")
    assert opened.url.endswith(OPERATIONS)
    assert opened.get_by_role("heading", level=1).inner_text() == "Operations"
    assert_clean(record)
