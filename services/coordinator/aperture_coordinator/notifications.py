"""Telling a user that a version of their imaging request has ended: a webhook POST of the request's JSON
and/or an e-mail summary.

The rows (`Notification`) are written in the transaction that ends the version, so a crash cannot end a
version without its messages. The `Notifier` sends them afterwards, never inside a transaction: a slow or
dead receiver must not hold database locks. Each send first claims its row by moving `next_attempt_at`
past a lease, so a second notifier skips it and a notifier that dies mid-send leaves it due again once the
lease is over: a message may arrive twice, never not at all. A failed send is retried with an exponential
backoff until `notification_max_attempts`, then given up (and logged as an error).
"""

import asyncio
import functools
import logging
import smtplib
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from enum import StrEnum
from http.client import HTTPMessage
from typing import IO
from urllib.parse import urlsplit

from aperture_contracts.requests import ImageCheck, RequestState, RequestView, VersionView
from sqlalchemy import select, update

from aperture_coordinator.db import Database
from aperture_coordinator.models import Notification, RequestVersion, utc_now
from aperture_coordinator.settings import CoordinatorSettings

log = logging.getLogger(__name__)

USER_AGENT = "aperture-coordinator"
BATCH_SIZE = 50
FIRST_RETRY_DELAY_S = 5.0
LONGEST_RETRY_DELAY_S = 3600.0
REPLY_EXCERPT_CHARS = 200


class Channel(StrEnum):
    WEBHOOK = "webhook"
    EMAIL = "email"


class DeliveryFailed(Exception):
    """A send that did not reach its receiver; the message is the one-line reason kept in `last_error`."""


WebhookSender = Callable[[str, str], None]
"""POST (url, JSON body); return when a 2xx came back, raise otherwise."""
EmailSender = Callable[[str, str, str], None]
"""Mail (to, subject, text); return when the SMTP server accepted the message, raise otherwise."""


# -- the rows written when a version ends -----------------------------------------------------------------


def notifications_for(
    request: RequestView, version: int, settings: CoordinatorSettings, now: datetime, *, version_pk: int
) -> list[Notification]:
    """The messages the ended `version` of `request` asked for (none when it asked for none). An e-mail
    is left out, with a warning, while no SMTP server is configured."""
    ended = _find_version(request, version)
    if not ended.state.terminal:
        raise ValueError(f"{request.request_id} version {version} is {ended.state.value}, not ended")
    subject = f"Aperture request {request.request_id} version {version} {ended.state.value}"
    rows: list[Notification] = []
    if ended.parameters.webhook_url is not None:
        rows.append(_row(version_pk, Channel.WEBHOOK, str(ended.parameters.webhook_url), subject,
                         request.model_dump_json(), now))
    if ended.parameters.notify_email is not None:
        if settings.smtp_host is None:
            log.warning(
                "%s version %d asked for an e-mail to %s, but e-mail is not configured (APERTURE_SMTP_HOST "
                "is not set): none is sent", request.request_id, version, ended.parameters.notify_email,
            )
        else:
            rows.append(_row(version_pk, Channel.EMAIL, ended.parameters.notify_email, subject,
                             email_text(request, ended), now))
    return rows


def _find_version(request: RequestView, version: int) -> VersionView:
    for candidate in request.versions:
        if candidate.version == version:
            return candidate
    known = ", ".join(str(candidate.version) for candidate in request.versions)
    raise LookupError(f"{request.request_id} has no version {version} (it has {known or 'none'})")


def _row(version_pk: int, channel: Channel, address: str, subject: str, body: str, now: datetime) -> Notification:
    return Notification(
        version_pk=version_pk, channel=channel.value, address=address, subject=subject, body=body,
        created_at=now, attempts=0, next_attempt_at=now,
    )


QA_VERDICTS = {True: "passed", False: "did not pass", None: "not assessed"}


def email_text(request: RequestView, version: VersionView) -> str:
    """The e-mail's plain text: what ended and how, each image's QA, and how to fetch the products."""
    number, request_id = version.version, request.request_id
    lines = [
        f"Version {number} of your Aperture imaging request {request_id} has {version.state.value}.",
        "",
        f"Request:  {request_id}",
        f"MOUS:     {request.mous_id}",
        f"Version:  {number}",
        f"State:    {version.state.value}",
    ]
    if version.reason:
        lines.append(f"Reason:   {version.reason}")
    if version.ended_at is not None:
        lines.append(f"Ended:    {version.ended_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC")
    lines += [f"QA:       {QA_VERDICTS[version.passed_qa]}", ""]
    if version.qa:
        lines.append("Image QA (measured against what the data should give):")
        lines += [f"  {_qa_line(check)}" for check in version.qa]
    else:
        lines.append("Image QA: no image was assessed.")
    lines.append("")
    if version.state is RequestState.CANCELLED:
        lines.append("A cancelled version delivers no products: its outputs are deleted.")
    else:
        lines += [
            "To fetch the products:",
            f"  aperture request download {request_id} --version {number}",
            f"or GET /api/v1/requests/{request_id}/versions/{number}/products with your API token "
            "(it lists each file with a download link).",
        ]
    return "\n".join(lines) + "\n"


def _qa_line(check: ImageCheck) -> str:
    beam = "beam ratio not measured" if check.beam_ratio is None else f"beam ratio {check.beam_ratio:.2f}"
    verdict = "passed" if check.passed else "did not pass"
    return f"{check.image}: rms ratio {check.rms_ratio:.2f}, {beam}: {verdict}"


# -- sending --------------------------------------------------------------------------------------------


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is the receiver's misconfiguration to report, not a reason to POST the request elsewhere."""

    def redirect_request(
        self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str, headers: HTTPMessage, newurl: str
    ) -> None:
        return None


def post_webhook(url: str, body: str, *, timeout_s: float) -> None:
    """POST the JSON body; any 2xx is a delivery, anything else raises DeliveryFailed."""
    request = urllib.request.Request(
        url, data=body.encode(), method="POST",
        headers={"Content-Type": "application/json", "User-Agent": USER_AGENT},
    )
    opener = urllib.request.build_opener(_NoRedirects)
    try:
        with opener.open(request, timeout=timeout_s):
            return
    except urllib.error.HTTPError as error:
        with error:
            reply = _one_line(error.read(4 * REPLY_EXCERPT_CHARS).decode("utf-8", "replace"))
        excerpt = f": {reply[:REPLY_EXCERPT_CHARS]}" if reply else ""
        raise DeliveryFailed(f"the webhook answered HTTP {error.code} {error.reason}{excerpt}") from error
    except urllib.error.URLError as error:
        raise DeliveryFailed(f"could not reach {_origin(url)}: {_os_reason(error.reason, timeout_s)}") from error
    except OSError as error:  # a timeout or a reset while reading the reply
        raise DeliveryFailed(f"posting to {_origin(url)} failed: {_os_reason(error, timeout_s)}") from error


def send_smtp_email(settings: CoordinatorSettings, to: str, subject: str, text: str) -> None:
    """Mail the text through the configured SMTP server (STARTTLS and login as the settings say)."""
    if settings.smtp_host is None:
        raise DeliveryFailed("e-mail is not configured (APERTURE_SMTP_HOST is not set)")
    message = EmailMessage()
    message["From"] = settings.smtp_sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=settings.smtp_sender.rpartition("@")[2] or None)
    message.set_content(text)
    server = f"{settings.smtp_host}:{settings.smtp_port}"
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.notification_timeout_s) as smtp:
            if settings.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_username:
                password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
                smtp.login(settings.smtp_username, password)
            smtp.send_message(message)
    except smtplib.SMTPRecipientsRefused as error:
        code, reply = next(iter(error.recipients.values()))
        raise DeliveryFailed(f"{server} refused the recipient {to}: {code} {_smtp_text(reply)}") from error
    except smtplib.SMTPResponseException as error:
        raise DeliveryFailed(f"{server} answered {error.smtp_code} {_smtp_text(error.smtp_error)}") from error
    except smtplib.SMTPException as error:
        raise DeliveryFailed(f"mailing through {server} failed: {_one_line(str(error))}") from error
    except OSError as error:
        raise DeliveryFailed(
            f"could not talk to {server}: {_os_reason(error, settings.notification_timeout_s)}"
        ) from error


def _origin(url: str) -> str:
    """scheme://host[:port] of a URL: its path and query may hold the receiver's secret token, so logs and
    errors name only where it points."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


def _os_reason(reason: object, timeout_s: float) -> str:
    if isinstance(reason, TimeoutError):
        return f"no answer within {timeout_s:g} s"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return _one_line(str(reason)) or type(reason).__name__


def _smtp_text(reply: bytes | str) -> str:
    return _one_line(reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def retry_delay(failed_attempts: int) -> timedelta:
    """The wait after the n-th failed send: 5 s, 10 s, 20 s, ... at most an hour. No jitter: the rows of
    one receiver that was down are few, and a fixed schedule is easier to explain to its owner."""
    return timedelta(seconds=min(LONGEST_RETRY_DELAY_S, FIRST_RETRY_DELAY_S * 2 ** (failed_attempts - 1)))


@dataclass(frozen=True)
class _Due:
    """A row to send, read out of its transaction, with what the logs name it by."""

    pk: int
    channel: str
    address: str
    subject: str
    body: str
    attempts: int
    request_id: str
    version: int

    def describe(self) -> str:
        where = _origin(self.address) if self.channel == Channel.WEBHOOK else self.address
        return f"{self.channel} of {self.request_id} version {self.version} to {where}"


class Notifier:
    """Sends the notifications that are due (synchronous: the service runs it in a thread)."""

    def __init__(
        self,
        database: Database,
        settings: CoordinatorSettings,
        *,
        clock: Callable[[], datetime] = utc_now,
        send_webhook: WebhookSender | None = None,
        send_email: EmailSender | None = None,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        self.database = database
        self.max_attempts = settings.notification_max_attempts
        self.batch_size = batch_size
        # A send that is claimed but never finished (the process died) is due again after this; an SMTP
        # conversation is several round trips, each with the timeout, hence the margin.
        self.claim_lease = timedelta(seconds=max(60.0, 10 * settings.notification_timeout_s))
        self._clock = clock
        self._senders: dict[str, Callable[[_Due], None]] = {
            Channel.WEBHOOK: _webhook_via(
                send_webhook or functools.partial(post_webhook, timeout_s=settings.notification_timeout_s)
            ),
            Channel.EMAIL: _email_via(send_email or functools.partial(send_smtp_email, settings)),
        }

    def send_due(self) -> int:
        """Send each due row (oldest first, one batch); returns how many were delivered."""
        delivered = 0
        for due in self._due_rows():
            if not self._claim(due):
                continue  # another notifier took it between the read and the claim
            error = self._send(due)
            self._record(due, error)
            delivered += error is None
        return delivered

    def _due_rows(self) -> list[_Due]:
        with self.database.transaction() as session:
            rows = session.execute(
                select(Notification, RequestVersion.request_id, RequestVersion.version)
                .join(RequestVersion, RequestVersion.pk == Notification.version_pk)
                .where(
                    Notification.sent_at.is_(None), Notification.gave_up_at.is_(None),
                    Notification.next_attempt_at <= self._clock(),
                )
                .order_by(Notification.next_attempt_at, Notification.pk)
                .limit(self.batch_size)
            )
            return [
                _Due(row.pk, row.channel, row.address, row.subject, row.body, row.attempts, request_id, version)
                for row, request_id, version in rows
            ]

    def _claim(self, due: _Due) -> bool:
        """Move the row's next attempt past the lease, if it is still due and unchanged."""
        now = self._clock()
        with self.database.transaction() as session:
            claimed = session.execute(
                update(Notification)
                .where(
                    Notification.pk == due.pk, Notification.attempts == due.attempts,
                    Notification.sent_at.is_(None), Notification.gave_up_at.is_(None),
                    Notification.next_attempt_at <= now,
                )
                .values(next_attempt_at=now + self.claim_lease)
                .execution_options(synchronize_session=False)
            )
            return bool(getattr(claimed, "rowcount", 0) == 1)

    def _send(self, due: _Due) -> str | None:
        """None when delivered, else the one-line reason."""
        send = self._senders.get(due.channel)
        if send is None:
            return f"unknown channel {due.channel!r}"
        try:
            send(due)
        except DeliveryFailed as error:
            return str(error)
        except Exception as error:  # an unexpected failure of a sender still counts as one failed send
            log.exception("sending the %s raised", due.describe())
            return f"{type(error).__name__}: {_one_line(str(error))}"
        return None

    def _record(self, due: _Due, error: str | None) -> None:
        now = self._clock()
        attempts = due.attempts + 1
        with self.database.transaction() as session:
            row = session.get(Notification, due.pk)
            if row is None:  # its request was deleted meanwhile
                return
            row.attempts = attempts
            if error is None:
                row.sent_at = now
            else:
                row.last_error = error
                if attempts >= self.max_attempts:
                    row.gave_up_at = now
                else:
                    row.next_attempt_at = now + retry_delay(attempts)
        if error is None:
            log.info("sent the %s (attempt %d)", due.describe(), attempts)
        elif attempts >= self.max_attempts:
            log.error("gave up on the %s after %d attempts; the last error: %s", due.describe(), attempts, error)
        else:
            log.warning("sending the %s failed (attempt %d of %d): %s; trying again in %g s", due.describe(),
                        attempts, self.max_attempts, error, retry_delay(attempts).total_seconds())


def _webhook_via(send: WebhookSender) -> Callable[[_Due], None]:
    return lambda due: send(due.address, due.body)


def _email_via(send: EmailSender) -> Callable[[_Due], None]:
    return lambda due: send(due.address, due.subject, due.body)


async def notify_forever(notifier: Notifier, interval_s: float) -> None:
    """Send due notifications every `interval_s`, in a thread (sends block on the network)."""
    while True:
        try:
            await asyncio.to_thread(notifier.send_due)
        except Exception:  # the database may be restarting: the next pass tries again
            log.exception("sending notifications failed")
        await asyncio.sleep(interval_s)
