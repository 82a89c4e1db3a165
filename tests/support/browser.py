"""A real headless browser for page tests: Debian's Chromium driven by Playwright for Python.

`tools/stack/install.sh --browser` installs Chromium (never `playwright install`, which downloads). The
flags keep Chromium from reaching out on its own (component updates, sync, background networking), so
that any request a page makes to another host is the page's doing and a test can fail on it.
"""

import functools
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from support.requirements import require

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost", ""}


@dataclass
class PageRecord:
    """What a page did while it loaded: console errors, failed requests, and requests to other hosts."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    remote_requests: list[str] = field(default_factory=list)
    bad_responses: list[str] = field(default_factory=list)  # status >= 400


def chromium_path() -> str:
    found = CHROMIUM if shutil.which(CHROMIUM) else shutil.which("chromium")
    require(found is not None, "Chromium (`tools/stack/install.sh --browser` installs it; `make test` does so)")
    assert found is not None
    return found


@contextmanager
def headless_browser() -> Iterator[Any]:
    """A Playwright Chromium browser; closed on exit."""
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


def record_page(page: Any) -> PageRecord:
    """Attach listeners to `page` (before it navigates) and return the record they fill."""
    record = PageRecord()

    def on_console(message: Any) -> None:
        if message.type == "error":
            record.console_errors.append(message.text)

    def on_request(request: Any) -> None:
        url = urlparse(request.url)
        if url.scheme in ("http", "https", "ws", "wss") and url.hostname not in LOCAL_HOSTS:
            record.remote_requests.append(request.url)

    def on_response(response: Any) -> None:
        if response.status >= 400:
            record.bad_responses.append(f"{response.status} {response.url}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: record.page_errors.append(str(error)))
    page.on("requestfailed", lambda request: record.failed_requests.append(f"{request.url} ({request.failure})"))
    page.on("request", on_request)
    page.on("response", on_response)
    return record


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class names it so)
        pass


@contextmanager
def serve_folder(folder: Path) -> Iterator[str]:
    """`folder` on a local HTTP server (a thread, a free port) as its base URL (no trailing '/'). Pages with
    ES modules or WASM need http: browsers refuse those from file://."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def sign_in(page: Any, token: str) -> None:
    """Type the API token into one of the coordinator's pages (they keep it for the session)."""
    page.get_by_label("API token").fill(token)
    page.get_by_label("API token").dispatch_event("change")


def assert_clean(record: PageRecord, *expected_statuses: int) -> None:
    """Nothing went wrong but the API answers the test asked for (Chromium logs each 4xx as a console error)."""
    expected = tuple(f"the server responded with a status of {status}" for status in expected_statuses)
    unexpected = [error for error in record.console_errors if not any(
        reason in error for reason in expected)]
    assert unexpected == [], unexpected
    assert record.page_errors == [], record.page_errors
    assert record.failed_requests == [], record.failed_requests
    assert record.remote_requests == [], record.remote_requests


def open_coordinator_page(page: Any, url: str) -> PageRecord:
    """Load one of the coordinator's pages, recording what happens on it, once its script says it is ready;
    every such page is served with its content security policy."""
    record = record_page(page)
    response = page.goto(url)
    assert response is not None and "default-src 'self'" in response.headers["content-security-policy"]
    page.wait_for_selector("body[data-ready=true]")
    return record
