"""The outbox relay: publishes the messages state changes wrote into the outbox, in order.

A row is marked published only after the broker confirmed it, in a transaction of its own. A crash
after the state change committed but before the publish leaves the row unpublished: the next relay
publishes it. A crash after the publish but before the mark publishes it again: consumers see a
duplicate with the same message id (workers skip an attempt they completed; the coordinator ignores
events it has seen), never a lost message. `fault_injection` kills the process at either point, once,
so end-to-end tests can prove both.
"""

import asyncio
import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import select, update

from aperture_coordinator.db import Database
from aperture_coordinator.metrics import OUTBOX_FAILURES, OUTBOX_PUBLISHED
from aperture_coordinator.models import OutboxMessage, utc_now
from aperture_coordinator.settings import FaultInjection

log = logging.getLogger(__name__)


class Publisher(Protocol):
    async def publish(self, exchange: str, routing_key: str, body: bytes, *, message_id: str) -> None:
        """Publish one persistent message; return only once the broker confirmed it (raise otherwise)."""
        ...


@dataclass(frozen=True)
class PendingMessage:
    id: int
    exchange: str
    routing_key: str
    message_id: str
    body: bytes


def kill_own_process() -> None:
    """What a crash looks like: no clean-up, no flush, no finally blocks."""
    os.kill(os.getpid(), signal.SIGKILL)


class OutboxRelay:
    def __init__(
        self,
        database: Database,
        publisher: Publisher,
        *,
        interval_s: float = 2.0,
        batch_size: int = 200,
        fault_injection: FaultInjection | None = None,
        crash: Callable[[], None] = kill_own_process,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.database = database
        self.publisher = publisher
        self.interval_s = interval_s
        self.batch_size = batch_size
        self.fault_injection = fault_injection
        self._crash = crash
        self._clock = clock
        self._fault_fired = False
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Call after a commit that wrote outbox rows (from the event loop's thread)."""
        self._wake.set()

    async def run(self) -> None:
        """Publish until cancelled: after every wake-up, and every `interval_s` in any case (a row
        committed by a request whose wake-up was lost, or one whose publish failed, is not forgotten)."""
        while True:
            try:
                published = await self.publish_pending()
            except asyncio.CancelledError:
                raise
            except Exception:
                OUTBOX_FAILURES.inc()
                log.exception("publishing the outbox failed; trying again in %.1f s", self.interval_s)
                published = 0
            if published >= self.batch_size:
                continue  # more may be waiting
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval_s)
            except TimeoutError:
                pass
            self._wake.clear()

    async def publish_pending(self) -> int:
        """Publish one batch of unpublished rows in order; returns how many were published."""
        pending = await asyncio.to_thread(self._load_pending)
        for message in pending:
            self._maybe_crash("crash_after_commit_before_publish")
            await self.publisher.publish(
                message.exchange, message.routing_key, message.body, message_id=message.message_id
            )
            self._maybe_crash("crash_after_publish_before_commit")
            await asyncio.to_thread(self._mark_published, message.id)
            OUTBOX_PUBLISHED.inc()
        return len(pending)

    def _load_pending(self) -> list[PendingMessage]:
        with self.database.transaction() as session:
            rows = session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.published_at.is_(None))
                .order_by(OutboxMessage.id)
                .limit(self.batch_size)
            )
            return [
                PendingMessage(row.id, row.exchange, row.routing_key, row.message_id, row.body.encode())
                for row in rows
            ]

    def _mark_published(self, outbox_id: int) -> None:
        with self.database.transaction() as session:
            session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == outbox_id, OutboxMessage.published_at.is_(None))
                .values(published_at=self._clock())
            )

    def _maybe_crash(self, point: FaultInjection) -> None:
        if self.fault_injection == point and not self._fault_fired:
            self._fault_fired = True
            log.warning("fault injection: killing the coordinator at %s", point)
            self._crash()
