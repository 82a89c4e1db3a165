"""Reading what the workers publish, as the coordinator would, for tests that run workers without it."""

import asyncio
import time

import aio_pika
from aperture_contracts import topology
from aperture_contracts.events import JobEvent
from pydantic import TypeAdapter

_EVENT = TypeAdapter(JobEvent)


class EventCollector:
    """Consumes the events queue of a (test) virtual host and keeps every event in arrival order."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.events: list = []
        self._connection: aio_pika.abc.AbstractRobustConnection | None = None

    async def start(self) -> "EventCollector":
        self._connection = await aio_pika.connect_robust(self.url)
        channel = await self._connection.channel()
        queue = await channel.get_queue(topology.EVENTS_QUEUE, ensure=True)

        async def keep(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            async with message.process():
                self.events.append(_EVENT.validate_json(message.body))

        await queue.consume(keep)
        return self

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()

    async def wait_for(self, predicate, timeout: float = 120.0, what: str = "an event"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events:
                if predicate(event):
                    return event
            await asyncio.sleep(0.2)
        raise AssertionError(f"no {what} within {timeout} s; events so far: {[_brief(e) for e in self.events]}")

    def of_type(self, event_type: str, job_id: str | None = None) -> list:
        return [e for e in self.events if e.event_type == event_type and (job_id is None or e.job_id == job_id)]


def _brief(event) -> str:
    extra = f" {event.error_class}: {event.message}" if event.event_type == "job.failed" else ""
    return f"{event.job_id}#{event.attempt} {event.event_type}{extra}"
