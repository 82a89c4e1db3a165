"""Completion events from the broker into the state machine.

The handler returns only after the transaction that applied the event committed, so the broker's
acknowledgement always follows the commit: a coordinator that dies in between gets the event again,
and the state machine ignores what it has already applied.
"""

import asyncio
import logging
from collections.abc import Callable

from aperture_contracts.events import JobEvent
from aperture_shared.logs import log_context
from aperture_shared.messaging import Delivery, PoisonMessage
from pydantic import TypeAdapter, ValidationError

from aperture_coordinator.state import Coordinator, EventOutcome, UnknownJob

log = logging.getLogger(__name__)

_EVENT = TypeAdapter(JobEvent)


def decode_event(body: bytes) -> JobEvent:
    """The event in a message body; PoisonMessage (dead letters, with the reason) when it is none."""
    try:
        return _EVENT.validate_json(body)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc']) or 'body'}: {problem['msg']}"
            for problem in error.errors(include_url=False)[:5]
        )
        raise PoisonMessage(f"not a job event: {problems}") from error


class EventHandler:
    """Decodes, applies and then lets the broker acknowledge. `after_commit` runs once the event's
    transaction committed (it wakes the outbox relay for the jobs the event made ready)."""

    def __init__(self, coordinator: Coordinator, after_commit: Callable[[], None] = lambda: None) -> None:
        self.coordinator = coordinator
        self.after_commit = after_commit

    async def handle_event_message(self, body: bytes) -> EventOutcome:
        event = decode_event(body)
        with log_context(mous_id=event.mous_id, job_id=event.job_id, attempt=event.attempt):
            try:
                outcome = await asyncio.to_thread(self.coordinator.apply_event, event)
            except UnknownJob as error:
                raise PoisonMessage(str(error)) from error
        if outcome.applied:
            self.after_commit()
        return outcome

    async def __call__(self, delivery: Delivery) -> None:
        """The broker's handler (aperture_shared.messaging.Handler)."""
        await self.handle_event_message(delivery.body)
