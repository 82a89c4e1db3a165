"""RabbitMQ, written once: durable quorum queues, persistent messages, publisher confirms.

Acknowledgement rule: a handler returning normally acks its delivery; `PoisonMessage` dead-letters it
with the reason; any other exception requeues it (the queue's delivery limit then dead-letters a message
that keeps failing, and one whose consumer died mid-work is redelivered by the broker).

Compatibility: the queue arguments used here exist on RabbitMQ 3.10 (Debian) and 3.13/4.x. The
per-queue `x-consumer-timeout` is honoured from 3.12 on and ignored before; on 3.10 the broker's global
`consumer_timeout` is set as large by the stack's configuration (tools/stack, docker/rabbitmq.conf).
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractRobustConnection,
)
from aperture_contracts import topology
from aperture_contracts.enums import MemoryClass, Stage
from pydantic import BaseModel
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from aperture_shared.metrics import MESSAGES

log = logging.getLogger(__name__)

# Longer than any job may run: jobs are acknowledged only when done (see the module docstring).
CONSUMER_TIMEOUT_MS = 8 * 3600 * 1000
DEAD_REASON_HEADER = "x-aperture-dead-reason"
DEAD_SOURCE_HEADER = "x-aperture-dead-source"


class PoisonMessage(Exception):
    """A message that can never be processed (undecodable, wrong type); it goes to the dead letters."""


@dataclass(frozen=True)
class Delivery:
    """What a handler sees of a delivery."""

    body: bytes
    message_id: str | None
    redelivered: bool
    headers: dict[str, Any] = field(default_factory=dict)

    @property
    def delivery_count(self) -> int:
        """How many earlier deliveries of this message the broker counted (quorum queues)."""
        value = self.headers.get("x-delivery-count", 0)
        return int(value) if isinstance(value, int | str) and str(value).isdigit() else 0


Handler = Callable[[Delivery], Awaitable[None]]


def _work_queue_arguments() -> dict[str, Any]:
    return {
        "x-queue-type": "quorum",
        "x-delivery-limit": topology.DELIVERY_LIMIT,
        "x-dead-letter-exchange": topology.DEAD_LETTER_EXCHANGE,
        "x-consumer-timeout": CONSUMER_TIMEOUT_MS,
    }


class Broker:
    """One connection per process: a confirming channel for publishing, one channel per consumer."""

    def __init__(self, url: str, connection_name: str) -> None:
        self._url = url
        self._connection_name = connection_name
        self._connection: AbstractRobustConnection | None = None
        self._publish_channel: AbstractChannel | None = None
        self._exchanges: dict[str, AbstractExchange] = {}
        self._publish_lock = asyncio.Lock()

    async def connect(self, wait_s: float = 60.0) -> None:
        """Connect, waiting (bounded) for a broker that is still starting."""
        async for attempt in AsyncRetrying(
            stop=stop_after_delay(wait_s),
            wait=wait_exponential(multiplier=0.2, max=3),
            retry=retry_if_exception_type((ConnectionError, OSError, aio_pika.exceptions.AMQPConnectionError)),
            reraise=True,
        ):
            with attempt:
                self._connection = await aio_pika.connect_robust(
                    self._url, client_properties={"connection_name": self._connection_name}
                )
        assert self._connection is not None
        self._publish_channel = await self._connection.channel(publisher_confirms=True, on_return_raises=True)

    @property
    def connected(self) -> bool:
        return self._connection is not None and not self._connection.is_closed

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

    async def declare_topology(self, stages: Iterable[Stage] = tuple(Stage)) -> None:
        """Declare every exchange and queue (idempotent; every process does it at start)."""
        channel = self._channel()
        dead = await channel.declare_exchange(
            topology.DEAD_LETTER_EXCHANGE, aio_pika.ExchangeType.FANOUT, durable=True
        )
        dead_queue = await channel.declare_queue(
            topology.DEAD_LETTER_QUEUE, durable=True, arguments={"x-queue-type": "quorum"}
        )
        await dead_queue.bind(dead)
        jobs = await channel.declare_exchange(topology.JOBS_EXCHANGE, aio_pika.ExchangeType.DIRECT, durable=True)
        for stage in stages:
            for memory_class in MemoryClass:
                queue = await channel.declare_queue(
                    topology.job_queue(stage, memory_class), durable=True, arguments=_work_queue_arguments()
                )
                await queue.bind(jobs, routing_key=topology.job_routing_key(stage, memory_class))
        events = await channel.declare_exchange(
            topology.EVENTS_EXCHANGE, aio_pika.ExchangeType.DIRECT, durable=True
        )
        events_queue = await channel.declare_queue(
            topology.EVENTS_QUEUE, durable=True, arguments=_work_queue_arguments()
        )
        await events_queue.bind(events, routing_key=topology.EVENTS_ROUTING_KEY)
        await channel.declare_exchange(topology.CONTROL_EXCHANGE, aio_pika.ExchangeType.FANOUT, durable=True)

    async def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        *,
        message_id: str,
        headers: dict[str, Any] | None = None,
    ) -> None:
        """Publish a persistent message; returns once the broker confirmed it (raises otherwise).

        Unroutable messages are refused (mandatory): a job published to a queue nobody declared
        would otherwise vanish.
        """
        channel = self._channel()
        if exchange not in self._exchanges:
            self._exchanges[exchange] = await channel.get_exchange(exchange, ensure=True)
        message = aio_pika.Message(
            body,
            message_id=message_id,
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            headers=headers or {},
            timestamp=datetime.now(UTC),
        )
        async with self._publish_lock:
            await self._exchanges[exchange].publish(
                message, routing_key=routing_key, mandatory=exchange != topology.CONTROL_EXCHANGE
            )
        MESSAGES.labels(exchange, "published").inc()

    async def publish_model(self, exchange: str, routing_key: str, model: BaseModel, *, message_id: str) -> None:
        await self.publish(exchange, routing_key, model.model_dump_json().encode(), message_id=message_id)

    async def consume(
        self, queue_name: str, handler: Handler, *, prefetch: int = 1,
        on_settled: Callable[[], Awaitable[None]] | None = None,
    ) -> Callable[[], Awaitable[None]]:
        """Deliver messages of a declared queue to `handler` (see the module docstring for acks);
        `on_settled` runs after each message is acknowledged, requeued or dead-lettered. Returns a
        function that stops the consumer (messages not yet delivered stay on the queue)."""
        assert self._connection is not None, "connect() first"
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=prefetch)
        queue = await channel.get_queue(queue_name, ensure=True)

        async def on_message(message: AbstractIncomingMessage) -> None:
            await self._dispatch(queue_name, message, handler)
            if on_settled is not None:
                await on_settled()

        consumer_tag = await queue.consume(on_message)

        async def stop() -> None:
            await queue.cancel(consumer_tag)

        return stop

    async def consume_broadcast(self, exchange: str, handler: Handler) -> None:
        """A private, auto-deleted queue bound to a fanout exchange (control messages)."""
        assert self._connection is not None, "connect() first"
        channel = await self._connection.channel()
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(exchange)

        async def on_message(message: AbstractIncomingMessage) -> None:
            await self._dispatch(exchange, message, handler)

        await queue.consume(on_message)

    async def _dispatch(self, source: str, message: AbstractIncomingMessage, handler: Handler) -> None:
        delivery = Delivery(
            body=message.body,
            message_id=message.message_id,
            redelivered=bool(message.redelivered),
            headers=dict(message.headers or {}),
        )
        try:
            await handler(delivery)
        except PoisonMessage as poison:
            log.error("dead-lettering a message from %s: %s", source, poison)
            await self._dead_letter(source, message, str(poison))
            MESSAGES.labels(source, "dead_lettered").inc()
            return
        except asyncio.CancelledError:
            # Shutting down mid-message: leave it unacknowledged, the broker redelivers it.
            raise
        except Exception:
            log.exception("handling a message from %s failed; it goes back to the queue", source)
            await message.nack(requeue=True)
            MESSAGES.labels(source, "requeued").inc()
            return
        await message.ack()
        MESSAGES.labels(source, "acked").inc()

    async def _dead_letter(self, source: str, message: AbstractIncomingMessage, reason: str) -> None:
        """Copy the message to the dead letters with the reason, confirmed, then drop the original."""
        headers = dict(message.headers or {})
        headers[DEAD_REASON_HEADER] = reason[:4000]
        headers[DEAD_SOURCE_HEADER] = source
        await self.publish(
            topology.DEAD_LETTER_EXCHANGE,
            "",
            message.body,
            message_id=message.message_id or "unknown",
            headers=headers,
        )
        await message.ack()

    def _channel(self) -> AbstractChannel:
        if self._publish_channel is None:
            raise RuntimeError("the broker is not connected: call connect() first")
        return self._publish_channel
