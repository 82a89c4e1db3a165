"""Notifications when a request version ends, sent to real receivers: an HTTP server that records the
webhook POSTs and a small SMTP server (support/smtp_server.py). The rows live in the real database (SQLite
and PostgreSQL), and time is a fake clock so that the retry schedule is exact."""

import asyncio
import contextlib
import logging
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aperture_contracts.enums import ImagingKind, MousState
from aperture_contracts.requests import (
    ImageCheck,
    Progress,
    RequestCreate,
    RequestEstimate,
    RequestState,
    RequestView,
    VersionView,
)
from aperture_coordinator.db import Database
from aperture_coordinator.models import ImagingRequest, Mous, Notification, RequestVersion
from aperture_coordinator.notifications import Notifier, email_text, notifications_for, notify_forever
from aperture_coordinator.settings import CoordinatorSettings
from sqlalchemy import select
from support.smtp_server import SmtpServer

from .conftest import FakeClock, make_settings
from .factories import MOUS_ID

REQUEST_ID = "req-0123456789ab"
VERSION = 2
IMAGE = "member.uid___A001_X2fa_X2dd.NGC_1068_sci.spw17.cube.I.pbcor.fits"


# -- a webhook receiver ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceivedPost:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class WebhookReceiver:
    """A real HTTP server on 127.0.0.1 that records each POST and answers with the next scripted reply
    (status, body, extra headers); 204 once the script is used up."""

    port: int
    replies: list[tuple[int, bytes, dict[str, str]]] = field(default_factory=list)
    posts: list[ReceivedPost] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/aperture?token=s3cret"


@contextlib.contextmanager
def webhook_receiver() -> Iterator[WebhookReceiver]:
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock:
                receiver.posts.append(ReceivedPost(self.path, dict(self.headers.items()), body))
                status, reply, headers = receiver.replies.pop(0) if receiver.replies else (204, b"", {})
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            if status != 204:
                self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            if status != 204:
                self.wfile.write(reply)

        def log_message(self, format: str, *args: object) -> None:
            return None  # keep the test output to what fails

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver = WebhookReceiver(port=server.server_address[1])
    # A short poll interval: shutdown() waits for the next poll.
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="test-webhook", daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- a request version that ended -----------------------------------------------------------------------


def request_view(
    *, webhook_url: str | None = None, notify_email: str | None = None, state: RequestState = RequestState.SUCCEEDED,
    passed_qa: bool | None = True, reason: str = "all 3 images made and checked",
) -> RequestView:
    at = datetime(2025, 11, 21, 11, 0, tzinfo=UTC)
    parameters = RequestCreate.model_validate(
        {"mous_id": MOUS_ID, "robust": 0.5, "webhook_url": webhook_url, "notify_email": notify_email}
    )
    checks = [
        ImageCheck(
            image=IMAGE, kind=ImagingKind.CUBE, target="NGC_1068", spw_ids=[17], rms_jy=1.1e-3,
            expected_rms_jy=1.0e-3, rms_ratio=1.1, beam_major_arcsec=1.9, beam_minor_arcsec=1.5, beam_ratio=1.04,
            lowest_score=0.9, passed=True, notes=["rms within 2x the theoretical"],
        ),
        ImageCheck(
            image="member.uid___A001_X2fa_X2dd.NGC_1068_sci.spw19.mfs.I.pbcor.fits", kind=ImagingKind.MFS,
            target="NGC_1068", spw_ids=[19], rms_jy=3e-4, expected_rms_jy=1e-4, rms_ratio=3.0,
            beam_major_arcsec=2.0, beam_minor_arcsec=1.6, beam_ratio=None, passed=False,
        ),
    ]
    version = VersionView(
        version=VERSION, state=state, reason=reason, parameters=parameters,
        estimate=RequestEstimate(
            product_bytes=10**8, largest_cube_bytes=9 * 10**7, images=3, run_time_s=120.0,
            run_time_basis="spw 17: its pipeline cube (128 channels, 60 s)", within_quota=True,
        ),
        passed_qa=passed_qa,
        progress=Progress(total=3, succeeded=3, running=0, failed=0, cancelled=0, fraction=1.0),
        qa=checks, created_at=at, updated_at=at + timedelta(minutes=5), started_at=at + timedelta(minutes=1),
        ended_at=at + timedelta(minutes=5),
    )
    return RequestView(request_id=REQUEST_ID, owner="alice", mous_id=MOUS_ID, created_at=at, versions=[version])


def insert_version(database: Database, view: RequestView) -> int:
    """The MOUS, request and version rows the notifications refer to; returns the version's pk."""
    ended = view.versions[0]
    with database.transaction() as session:
        session.add(Mous(
            id=MOUS_ID, run=1, state=MousState.COMPLETED, package_key="mous/p.tar", package_sha256="0" * 64,
            package_size=1, package_content_type="application/x-tar", package_name="p.tar",
            submitted_at=view.created_at, updated_at=view.created_at,
        ))
        session.flush()  # no relationship orders these inserts: the foreign keys need them in turn
        session.add(ImagingRequest(id=view.request_id, owner=view.owner, mous_id=MOUS_ID, created_at=view.created_at))
        session.flush()
        row = RequestVersion(
            request_id=view.request_id, version=ended.version, parameters=ended.parameters.model_dump(mode="json"),
            estimate=ended.estimate.model_dump(mode="json"), state=ended.state, reason=ended.reason,
            passed_qa=ended.passed_qa, qa=[check.model_dump(mode="json") for check in ended.qa],
            created_at=ended.created_at, updated_at=ended.updated_at, ended_at=ended.ended_at,
        )
        session.add(row)
        session.flush()
        return row.pk


def write_notifications(database: Database, view: RequestView, settings: CoordinatorSettings, now: datetime) -> None:
    """What the request runner does when the version ends: the rows, in a transaction."""
    version_pk = insert_version(database, view)
    with database.transaction() as session:
        session.add_all(notifications_for(view, VERSION, settings, now, version_pk=version_pk))


def notifications(database: Database) -> list[Notification]:
    with database.transaction() as session:
        return list(session.scalars(select(Notification).order_by(Notification.pk)))


def notify_settings(database: Database, **overrides: object) -> CoordinatorSettings:
    values: dict[str, object] = {"notification_max_attempts": 3, "notification_timeout_s": 2.0} | overrides
    return make_settings(database.url, **values)


# -- webhooks -------------------------------------------------------------------------------------------


def test_a_webhook_receives_the_exact_request_view_json(database: Database, clock: FakeClock) -> None:
    settings = notify_settings(database)
    with webhook_receiver() as receiver:
        view = request_view(webhook_url=receiver.url)
        write_notifications(database, view, settings, clock.now)
        assert Notifier(database, settings, clock=clock).send_due() == 1

    [post] = receiver.posts
    assert post.path == "/hooks/aperture?token=s3cret"
    assert post.body == view.model_dump_json().encode()
    assert RequestView.model_validate_json(post.body) == view
    assert post.headers["Content-Type"] == "application/json"
    assert post.headers["User-Agent"] == "aperture-coordinator"
    [row] = notifications(database)
    assert (row.channel, row.address) == ("webhook", receiver.url)
    assert row.subject == f"Aperture request {REQUEST_ID} version 2 succeeded"
    assert (row.sent_at, row.attempts, row.last_error, row.gave_up_at) == (clock.now, 1, None, None)


def test_a_sent_notification_is_not_sent_again(database: Database, clock: FakeClock) -> None:
    settings = notify_settings(database)
    with webhook_receiver() as receiver:
        write_notifications(database, request_view(webhook_url=receiver.url), settings, clock.now)
        notifier = Notifier(database, settings, clock=clock)
        assert notifier.send_due() == 1
        clock.advance(24 * 3600)
        assert notifier.send_due() == 0
        assert Notifier(database, settings, clock=clock).send_due() == 0
    assert len(receiver.posts) == 1
    assert notifications(database)[0].attempts == 1


def test_a_500_is_retried_after_a_backoff_and_the_attempts_counted(database: Database, clock: FakeClock) -> None:
    settings = notify_settings(database)
    with webhook_receiver() as receiver:
        receiver.replies.append((500, b"<html>\n  <p>database   down</p>\n</html>" + b"x" * 500, {}))
        write_notifications(database, request_view(webhook_url=receiver.url), settings, clock.now)
        notifier = Notifier(database, settings, clock=clock)

        assert notifier.send_due() == 0
        [row] = notifications(database)
        assert row.attempts == 1 and row.sent_at is None and row.gave_up_at is None
        assert row.next_attempt_at == clock.now + timedelta(seconds=5)
        assert row.last_error is not None
        assert row.last_error.startswith("the webhook answered HTTP 500 Internal Server Error: <html> <p>database down")
        assert "\n" not in row.last_error and row.last_error.endswith("x" * 20)
        assert len(row.last_error) < 300  # the reply's first 200 characters, not all of it

        clock.advance(4)
        assert notifier.send_due() == 0  # the backoff is not over
        assert len(receiver.posts) == 1
        clock.advance(1)
        assert notifier.send_due() == 1
    assert len(receiver.posts) == 2
    [row] = notifications(database)
    assert (row.attempts, row.sent_at, row.gave_up_at) == (2, clock.now, None)


def test_a_receiver_that_is_down_is_given_up_after_the_last_attempt_with_a_readable_reason(
    database: Database, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    settings = notify_settings(database, notification_max_attempts=4)
    port = closed_port()
    write_notifications(database, request_view(webhook_url=f"http://127.0.0.1:{port}/hook"), settings, clock.now)
    notifier = Notifier(database, settings, clock=clock)

    waits = []
    for _ in range(3):
        assert notifier.send_due() == 0
        [row] = notifications(database)
        assert row.gave_up_at is None
        waits.append((row.next_attempt_at - clock.now).total_seconds())
        clock.now = row.next_attempt_at
    assert waits == [5.0, 10.0, 20.0]  # exponential from 5 s
    assert notifier.send_due() == 0
    [row] = notifications(database)
    assert row.attempts == 4 and row.sent_at is None
    assert row.gave_up_at == clock.now
    assert row.last_error == f"could not reach http://127.0.0.1:{port}: Connection refused"

    clock.advance(7 * 24 * 3600)
    assert notifier.send_due() == 0
    assert notifications(database)[0].attempts == 4
    [gave_up] = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert REQUEST_ID in gave_up.getMessage() and "webhook" in gave_up.getMessage()
    assert "Connection refused" in gave_up.getMessage()
    assert "s3cret" not in caplog.text


def test_a_redirect_is_a_failure_and_is_not_followed(database: Database, clock: FakeClock) -> None:
    settings = notify_settings(database)
    with webhook_receiver() as receiver:
        receiver.replies.append((302, b"moved", {"Location": f"http://127.0.0.1:{receiver.port}/elsewhere"}))
        write_notifications(database, request_view(webhook_url=receiver.url), settings, clock.now)
        assert Notifier(database, settings, clock=clock).send_due() == 0
    assert [post.path for post in receiver.posts] == ["/hooks/aperture?token=s3cret"]
    assert notifications(database)[0].last_error == "the webhook answered HTTP 302 Found: moved"


def test_a_row_being_sent_is_not_sent_by_a_second_notifier(database: Database, clock: FakeClock) -> None:
    settings = notify_settings(database)
    write_notifications(database, request_view(webhook_url="http://receiver.invalid/hook"), settings, clock.now)
    second_sends: list[str] = []
    second = Notifier(database, settings, clock=clock, send_webhook=lambda url, body: second_sends.append(url))
    seen_by_second: list[int] = []

    def slow_send(url: str, body: str) -> None:
        seen_by_second.append(second.send_due())  # runs while the first one is sending

    assert Notifier(database, settings, clock=clock, send_webhook=slow_send).send_due() == 1
    assert seen_by_second == [0] and second_sends == []
    assert notifications(database)[0].sent_at == clock.now


# -- e-mail ---------------------------------------------------------------------------------------------


def test_an_email_names_the_state_the_qa_and_how_to_download(database: Database, clock: FakeClock) -> None:
    with SmtpServer() as smtp:
        settings = notify_settings(
            database, smtp_host="127.0.0.1", smtp_port=smtp.port, smtp_starttls=False,
            smtp_sender="archive@aperture.test",
        )
        write_notifications(database, request_view(notify_email="alice@example.org"), settings, clock.now)
        assert Notifier(database, settings, clock=clock).send_due() == 1

    [mail] = smtp.messages
    assert (mail.mail_from, mail.recipients) == ("archive@aperture.test", ["alice@example.org"])
    message = mail.message
    assert message["To"] == "alice@example.org"
    assert message["From"] == "archive@aperture.test"
    assert message["Subject"] == f"Aperture request {REQUEST_ID} version 2 succeeded"
    text = message.get_content()
    for expected in [
        f"Request:  {REQUEST_ID}", f"MOUS:     {MOUS_ID}", "Version:  2", "State:    succeeded",
        "Reason:   all 3 images made and checked", "QA:       passed", "Ended:    2025-11-21 11:05:00 UTC",
        f"{IMAGE}: rms ratio 1.10, beam ratio 1.04: passed",
        "spw19.mfs.I.pbcor.fits: rms ratio 3.00, beam ratio not measured: did not pass",
        f"aperture request download {REQUEST_ID} --version 2",
        f"/api/v1/requests/{REQUEST_ID}/versions/2/products",
    ]:
        assert expected in text, f"{expected!r} missing from:\n{text}"
    [row] = notifications(database)
    assert (row.channel, row.address, row.sent_at, row.attempts) == ("email", "alice@example.org", clock.now, 1)


def test_an_smtp_server_without_starttls_is_a_readable_failure_when_starttls_is_required(
    database: Database, clock: FakeClock
) -> None:
    with SmtpServer(advertise_starttls=False) as smtp:
        settings = notify_settings(database, smtp_host="127.0.0.1", smtp_port=smtp.port, smtp_starttls=True)
        write_notifications(database, request_view(notify_email="alice@example.org"), settings, clock.now)
        assert Notifier(database, settings, clock=clock).send_due() == 0
    assert smtp.messages == [] and "MAIL" not in smtp.commands
    [row] = notifications(database)
    assert row.attempts == 1 and row.next_attempt_at == clock.now + timedelta(seconds=5)
    assert row.last_error == (
        f"mailing through 127.0.0.1:{smtp.port} failed: STARTTLS extension not supported by server."
    )


def test_no_email_row_is_written_while_smtp_is_not_configured(caplog: pytest.LogCaptureFixture) -> None:
    settings = make_settings("sqlite://", smtp_host=None)
    view = request_view(webhook_url="https://example.org/hook", notify_email="alice@example.org")
    now = datetime(2025, 11, 21, 12, tzinfo=UTC)
    rows = notifications_for(view, VERSION, settings, now, version_pk=7)
    assert [(row.channel, row.version_pk, row.attempts, row.next_attempt_at) for row in rows] == [
        ("webhook", 7, 0, now)
    ]
    [warning] = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert "e-mail is not configured" in warning.getMessage() and REQUEST_ID in warning.getMessage()


def test_a_version_that_asked_for_nothing_gets_no_notification() -> None:
    settings = make_settings("sqlite://", smtp_host="smtp.example.org")
    assert notifications_for(request_view(), VERSION, settings, datetime.now(UTC), version_pk=1) == []


def test_notifications_are_only_for_a_known_version_that_ended() -> None:
    settings = make_settings("sqlite://")
    with pytest.raises(LookupError, match="has no version 3"):
        notifications_for(request_view(), 3, settings, datetime.now(UTC), version_pk=1)
    with pytest.raises(ValueError, match="is running, not ended"):
        notifications_for(request_view(state=RequestState.RUNNING), VERSION, settings, datetime.now(UTC), version_pk=1)


@pytest.mark.parametrize(("state", "passed_qa", "verdict", "download"), [
    (RequestState.FAILED, False, "QA:       did not pass", True),
    (RequestState.CANCELLED, None, "QA:       not assessed", False),
])
def test_the_email_of_a_version_that_did_not_succeed_says_why(
    state: RequestState, passed_qa: bool | None, verdict: str, download: bool
) -> None:
    view = request_view(state=state, passed_qa=passed_qa, reason="imaging spw 17 ran out of memory")
    text = email_text(view, view.versions[0])
    assert f"has {state.value}." in text and f"State:    {state.value}" in text
    assert "Reason:   imaging spw 17 ran out of memory" in text and verdict in text
    assert ("aperture request download" in text) is download
    assert ("delivers no products" in text) is not download


async def test_notify_forever_sends_in_the_background(database: Database) -> None:
    settings = notify_settings(database)
    with webhook_receiver() as receiver:
        write_notifications(database, request_view(webhook_url=receiver.url), settings, datetime.now(UTC))
        task = asyncio.create_task(notify_forever(Notifier(database, settings), interval_s=0.05))
        try:
            for _ in range(100):
                if receiver.posts:
                    break
                await asyncio.sleep(0.05)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    assert len(receiver.posts) == 1
    assert notifications(database)[0].sent_at is not None
