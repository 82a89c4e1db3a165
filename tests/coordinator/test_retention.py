"""Pruning the outbox and the processed-event keys: old history goes, the backlog and recent keys stay."""

from datetime import timedelta

from aperture_coordinator.db import Database
from aperture_coordinator.models import OutboxMessage, ProcessedEvent
from aperture_coordinator.retention import prune_history
from aperture_coordinator.state import Coordinator, Submission
from sqlalchemy import func, select, update

from .conftest import FakeClock
from .factories import MOUS_ID, ingest_succeeded, metadata_for, object_ref, outbox, started

PACKAGE = object_ref("mous/uid___A001_X2fa_X2dd/input/p.tar", b"package")
OTHER_PACKAGE = object_ref("mous/uid___A001_X2fa_X2de/input/q.tar", b"another package")
WEEK = timedelta(days=7)


def event_keys(database: Database) -> int:
    with database.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(ProcessedEvent)) or 0)


def mark_all_published(database: Database, clock: FakeClock) -> None:
    with database.transaction() as session:
        session.execute(update(OutboxMessage).values(published_at=clock.now))


def test_published_rows_and_event_keys_older_than_the_retention_go_and_the_backlog_stays(
    coordinator: Coordinator, database: Database, clock: FakeClock
) -> None:
    coordinator.submit(Submission(MOUS_ID, PACKAGE, "p.tar"))
    coordinator.apply_event(started("r1.ingest", at=clock.advance(1)))
    coordinator.apply_event(ingest_succeeded(at=clock.advance(1), metadata=metadata_for({"NGC 1068": [25]})))
    mark_all_published(database, clock)  # the ingest job went out
    published = len(outbox(database))
    assert published >= 1 and event_keys(database) == 2

    # Within the retention nothing goes.
    assert prune_history(database, clock.advance(3600), WEEK).outbox_rows == 0
    assert len(outbox(database)) == published

    # A new, unpublished row (another MOUS's ingest job) is the relay's backlog: kept however old it gets.
    coordinator.submit(Submission("uid://A001/X2fa/X2de", OTHER_PACKAGE, "q.tar"))
    pruned = prune_history(database, clock.advance(8 * 24 * 3600), WEEK)

    assert (pruned.outbox_rows, pruned.event_keys) == (published, 2)
    (backlog,) = outbox(database)
    assert backlog.published_at is None and backlog.routing_key == "ingest"
    assert event_keys(database) == 0
