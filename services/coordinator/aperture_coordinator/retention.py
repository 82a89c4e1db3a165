"""Forgetting what is no longer needed: published outbox rows and old processed-event keys.

Both tables grow with every job and are only ever read near their newest rows: the relay reads the
unpublished outbox rows, and an event key guards against a redelivered event, which arrives within
minutes of the first copy (a lost acknowledgement, a worker re-sending a stored event after a
re-published job). After `retention` neither can matter, and at archive scale (thousands of MOUS, tens
of jobs each, several events per job) keeping them forever is what slows every other query down. The
job, attempt and object tables are the durable record and are never pruned here.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import CursorResult, Result, delete

from aperture_coordinator.db import Database
from aperture_coordinator.models import OutboxMessage, ProcessedEvent

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pruned:
    outbox_rows: int
    event_keys: int


def prune_history(database: Database, now: datetime, retention: timedelta) -> Pruned:
    """Delete outbox rows published, and event keys recorded, longer than `retention` before `now`.
    Unpublished outbox rows are never deleted, however old: they are the relay's backlog."""
    cutoff = now - retention
    with database.transaction() as session:
        outbox = _deleted(
            session.execute(
                delete(OutboxMessage).where(
                    OutboxMessage.published_at.is_not(None), OutboxMessage.published_at < cutoff
                )
            )
        )
        events = _deleted(session.execute(delete(ProcessedEvent).where(ProcessedEvent.processed_at < cutoff)))
    if outbox or events:
        log.info("pruned %d published outbox rows and %d processed-event keys older than %s", outbox, events, cutoff)
    return Pruned(outbox_rows=outbox, event_keys=events)


def _deleted(result: Result[tuple[()]] | CursorResult[tuple[()]]) -> int:
    """Rows a DELETE removed (a DML statement's result is a CursorResult; the static type does not say so)."""
    return result.rowcount if isinstance(result, CursorResult) else 0
