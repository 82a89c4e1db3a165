"""Completion events from the broker: decoded, applied, then acknowledged; poison is dead-lettered."""

import pytest
from aperture_coordinator.events import EventHandler
from aperture_coordinator.state import Coordinator, Submission
from aperture_shared.messaging import Delivery, PoisonMessage

from .conftest import FakeClock
from .factories import MOUS_ID, object_ref, started


@pytest.fixture
def wake_ups() -> list[str]:
    return []


@pytest.fixture
def handler(coordinator: Coordinator, wake_ups: list[str]) -> EventHandler:
    return EventHandler(coordinator, after_commit=lambda: wake_ups.append("wake"))


def submit(coordinator: Coordinator) -> None:
    package = object_ref("mous/uid___A001_X2fa_X2dd/input/p.tar", b"p")
    coordinator.submit(Submission(MOUS_ID, package, "p.tar"))


@pytest.mark.parametrize(
    ("body", "names"),
    [
        (b"\x00\xff not json", "body"),
        (b"[]", "body"),
        (b'{"event_type": "job.exploded"}', "event_type"),
        (b'{"event_type": "job.started", "mous_id": "uid://A001/X2fa/X2dd"}', "job_id"),
    ],
)
async def test_an_undecodable_event_is_poison_naming_what_is_wrong(
    handler: EventHandler, body: bytes, names: str
) -> None:
    with pytest.raises(PoisonMessage, match=names):
        await handler.handle_event_message(body)


async def test_an_event_for_an_unknown_mous_is_poison(handler: EventHandler, clock: FakeClock) -> None:
    body = started("r1.ingest", at=clock.now).model_dump_json().encode()
    with pytest.raises(PoisonMessage, match="never submitted"):
        await handler.handle_event_message(body)


async def test_an_event_is_applied_and_wakes_the_relay_once(
    handler: EventHandler, coordinator: Coordinator, clock: FakeClock, wake_ups: list[str]
) -> None:
    submit(coordinator)
    body = started("r1.ingest", at=clock.advance(1)).model_dump_json().encode()
    delivery = Delivery(body=body, message_id="r1.ingest:1:job.started", redelivered=False)

    await handler(delivery)
    await handler(delivery)  # the broker delivered it again

    assert wake_ups == ["wake"]
    assert not (await handler.handle_event_message(body)).applied
