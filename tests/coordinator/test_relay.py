"""The outbox relay: publishes in order, marks only what the broker confirmed, and survives a crash at
either side of a publish without losing a message."""

import asyncio

import pytest
from aperture_contracts import topology
from aperture_coordinator.db import Database
from aperture_coordinator.relay import OutboxRelay
from aperture_coordinator.state import Coordinator, Submission

from .conftest import FakeClock
from .factories import object_ref, outbox


class RecordingPublisher:
    """Confirms every publish (or fails the next `failures` ones) and remembers what it published."""

    def __init__(self, failures: int = 0) -> None:
        self.published: list[tuple[str, str, bytes, str]] = []
        self.failures = failures

    async def publish(self, exchange: str, routing_key: str, body: bytes, *, message_id: str) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("the broker went away")
        self.published.append((exchange, routing_key, body, message_id))


class SimulatedCrash(BaseException):
    """Stands in for SIGKILL: nothing after it runs (BaseException, so no `except Exception` stops it)."""


def crash() -> None:
    raise SimulatedCrash


def submit_mous(coordinator: Coordinator, number: int) -> str:
    mous_id = f"uid://A001/X{number}/X1"
    package = object_ref(f"mous/uid___A001_X{number}_X1/input/p.tar", str(number).encode())
    coordinator.submit(Submission(mous_id, package, "p.tar"))
    return mous_id


async def test_the_relay_publishes_unpublished_rows_in_order_and_marks_them(
    coordinator: Coordinator, database: Database, clock: FakeClock
) -> None:
    for number in range(3):
        submit_mous(coordinator, number)
    publisher = RecordingPublisher()
    relay = OutboxRelay(database, publisher, clock=clock)

    assert await relay.publish_pending() == 3
    rows = outbox(database)
    assert [message_id for *_, message_id in publisher.published] == [row.message_id for row in rows]
    routes = [(exchange, key) for exchange, key, *_ in publisher.published]
    assert routes == [(topology.JOBS_EXCHANGE, "ingest")] * 3
    assert publisher.published[0][2] == rows[0].body.encode()
    assert all(row.published_at == clock.now for row in rows)
    assert await relay.publish_pending() == 0
    assert len(publisher.published) == 3


async def test_a_failed_publish_leaves_the_row_for_the_next_pass(
    coordinator: Coordinator, database: Database
) -> None:
    submit_mous(coordinator, 1)
    relay = OutboxRelay(database, RecordingPublisher(failures=1))
    with pytest.raises(ConnectionError):
        await relay.publish_pending()
    assert outbox(database)[0].published_at is None
    assert await relay.publish_pending() == 1
    assert outbox(database)[0].published_at is not None


async def test_a_crash_after_the_commit_and_before_the_publish_publishes_after_restart(
    coordinator: Coordinator, database: Database
) -> None:
    submit_mous(coordinator, 1)
    publisher = RecordingPublisher()
    dying = OutboxRelay(database, publisher, fault_injection="crash_after_commit_before_publish", crash=crash)
    with pytest.raises(SimulatedCrash):
        await dying.publish_pending()
    assert publisher.published == []
    assert outbox(database)[0].published_at is None

    restarted = OutboxRelay(database, publisher)
    assert await restarted.publish_pending() == 1
    assert len(publisher.published) == 1


async def test_a_crash_after_the_publish_and_before_the_commit_publishes_again_with_the_same_id(
    coordinator: Coordinator, database: Database
) -> None:
    submit_mous(coordinator, 1)
    publisher = RecordingPublisher()
    dying = OutboxRelay(database, publisher, fault_injection="crash_after_publish_before_commit", crash=crash)
    with pytest.raises(SimulatedCrash):
        await dying.publish_pending()
    assert len(publisher.published) == 1
    assert outbox(database)[0].published_at is None

    restarted = OutboxRelay(database, publisher)
    assert await restarted.publish_pending() == 1
    first, second = publisher.published
    assert first == second  # a duplicate with the same message id: consumers drop it
    assert outbox(database)[0].published_at is not None


async def test_the_fault_fires_once_per_process(coordinator: Coordinator, database: Database) -> None:
    submit_mous(coordinator, 1)
    submit_mous(coordinator, 2)
    crashes: list[str] = []
    relay = OutboxRelay(
        database, RecordingPublisher(), fault_injection="crash_after_commit_before_publish",
        crash=lambda: crashes.append("crash"),
    )
    assert await relay.publish_pending() == 2
    assert crashes == ["crash"]


async def test_a_wake_up_publishes_at_once_without_waiting_for_the_tick(
    coordinator: Coordinator, database: Database
) -> None:
    publisher = RecordingPublisher()
    relay = OutboxRelay(database, publisher, interval_s=60)
    task = asyncio.create_task(relay.run())
    try:
        await asyncio.sleep(0.2)  # the first pass found nothing; the relay now waits
        await asyncio.to_thread(submit_mous, coordinator, 1)
        relay.wake()
        for _ in range(100):
            if publisher.published:
                break
            await asyncio.sleep(0.05)
        assert len(publisher.published) == 1
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_the_relay_keeps_going_after_a_failed_pass(
    coordinator: Coordinator, database: Database
) -> None:
    submit_mous(coordinator, 1)
    publisher = RecordingPublisher(failures=2)
    relay = OutboxRelay(database, publisher, interval_s=0.05)
    task = asyncio.create_task(relay.run())
    try:
        for _ in range(100):
            if publisher.published:
                break
            await asyncio.sleep(0.05)
        assert len(publisher.published) == 1
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
