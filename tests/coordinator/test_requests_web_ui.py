"""The requests page (/ui/requests) in a real headless Chromium against the real coordinator app (uvicorn
on a free port, SQLite holding an MOUS processed to the end): it loads clean (no console errors, no failed
or remote requests), estimates, places the API's field errors by the right input of the right cube row,
submits, lists, cancels, and says what a refused token means."""

from collections.abc import Iterator
from typing import Any

import pytest
from aperture_contracts.enums import Stage
from aperture_coordinator.api import CoordinatorServices, create_app
from aperture_coordinator.auth import ApiIdentity
from aperture_coordinator.db import Database, upgrade_database
from aperture_coordinator.settings import CoordinatorSettings
from aperture_coordinator.state import Coordinator
from support.asgi import serving
from support.browser import PageRecord, headless_browser, record_page

from .factories import MOUS_ID, InMemoryObjectStore, process_to_completion

TOKEN = "carol-token"
PAGE = "/ui/requests"
# spw 17 (factories): 128 channels of 15.6 MHz from 247 GHz, ~19 km/s each; spw 19 the same from 249 GHz.
GOOD_CUBE = {"spw": "17", "start": "-100", "width": "25", "nchan": "10", "rest": "248e9"}
SECOND_CUBE = {"spw": "19", "start": "-100", "width": "25", "nchan": "10", "rest": "250e9"}


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The coordinator, with the page mounted, over a database whose MOUS has been processed to the end."""
    folder = tmp_path_factory.mktemp("web-ui")
    settings = CoordinatorSettings(
        database_url=f"sqlite:///{folder / 'coordinator.db'}", enabled_stages=list(Stage),
        api_tokens={TOKEN: ApiIdentity(user="carol")}, upload_dir=folder / "uploads",
    )
    upgrade_database(settings.database_url)
    database = Database(settings.database_url)
    try:
        process_to_completion(database, settings)
        services = CoordinatorServices(database, Coordinator(database, settings), InMemoryObjectStore())
        app = create_app(settings, services)
        with serving(app) as url:
            yield url
    finally:
        database.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with headless_browser() as launched:
        yield launched


@pytest.fixture
def page(browser: Any, base_url: str) -> Iterator[tuple[Any, PageRecord]]:
    """A fresh page (its own session storage) on /ui/requests, and what it did while it ran."""
    context = browser.new_context()
    opened = context.new_page()
    opened.set_default_timeout(10_000)
    record = record_page(opened)
    opened.goto(base_url + PAGE)
    opened.wait_for_selector("body[data-ready=true]")
    try:
        yield opened, record
    finally:
        context.close()


def sign_in(page: Any, token: str) -> None:
    page.get_by_label("API token").fill(token)
    page.get_by_label("API token").dispatch_event("change")


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


def assert_clean(record: PageRecord, *expected_statuses: int) -> None:
    """Nothing went wrong but the API answers the test asked for (Chromium logs each 4xx as a console error)."""
    expected = tuple(f"the server responded with a status of {status}" for status in expected_statuses)
    unexpected = [error for error in record.console_errors if not any(
        reason in error for reason in expected)]
    assert unexpected == [], unexpected
    assert record.page_errors == [], record.page_errors
    assert record.failed_requests == [], record.failed_requests
    assert record.remote_requests == [], record.remote_requests


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
