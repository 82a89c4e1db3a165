"""Messaging against the real RabbitMQ: confirms, durable quorum queues, dead letters with a reason."""

import asyncio

import aio_pika
import pytest
from aperture_contracts import topology
from aperture_contracts.enums import Stage
from aperture_shared.messaging import DEAD_REASON_HEADER, Broker, Delivery, PoisonMessage

pytestmark = pytest.mark.integration


@pytest.fixture
async def broker(amqp_vhost_url):
    broker = Broker(amqp_vhost_url, "test")
    await broker.connect()
    await broker.declare_topology()
    yield broker
    await broker.close()


async def _get_one(url: str, queue: str, timeout: float = 10.0) -> aio_pika.abc.AbstractIncomingMessage:
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel()
        q = await channel.get_queue(queue, ensure=True)
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            message = await q.get(fail=False)
            if message is not None:
                await message.ack()
                return message
            assert asyncio.get_running_loop().time() < deadline, f"nothing arrived on {queue}"
            await asyncio.sleep(0.1)
    finally:
        await connection.close()


async def test_published_jobs_are_persistent_and_reach_their_stage_queue(broker, amqp_vhost_url):
    await broker.publish(topology.JOBS_EXCHANGE, Stage.INGEST.value, b'{"a": 1}', message_id="j:1")
    message = await _get_one(amqp_vhost_url, topology.job_queue(Stage.INGEST))
    assert message.body == b'{"a": 1}'
    assert message.message_id == "j:1"
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT


async def test_a_message_no_queue_would_take_is_refused_not_lost(broker):
    with pytest.raises(aio_pika.exceptions.DeliveryError):
        await broker.publish(topology.JOBS_EXCHANGE, "no-such-stage", b"{}", message_id="lost:1")


async def test_declaring_the_topology_twice_is_harmless(broker):
    await broker.declare_topology()


async def test_a_poison_message_is_dead_lettered_with_its_reason(broker, amqp_vhost_url):
    seen: list[Delivery] = []

    async def handler(delivery: Delivery) -> None:
        seen.append(delivery)
        raise PoisonMessage("not a valid ingest job message: missing job_id")

    await broker.consume(topology.job_queue(Stage.INGEST), handler)
    await broker.publish(topology.JOBS_EXCHANGE, Stage.INGEST.value, b"garbage", message_id="p:1")
    dead = await _get_one(amqp_vhost_url, topology.DEAD_LETTER_QUEUE)
    assert dead.body == b"garbage"
    assert "missing job_id" in dead.headers[DEAD_REASON_HEADER]
    assert len(seen) == 1


async def test_a_message_that_keeps_failing_stops_at_the_delivery_limit(broker, amqp_vhost_url):
    attempts = 0

    async def handler(delivery: Delivery) -> None:
        nonlocal attempts
        attempts += 1
        raise RuntimeError("the worker keeps failing on this one")

    await broker.consume(topology.job_queue(Stage.INGEST), handler)
    await broker.publish(topology.JOBS_EXCHANGE, Stage.INGEST.value, b"{}", message_id="k:1")
    dead = await _get_one(amqp_vhost_url, topology.DEAD_LETTER_QUEUE, timeout=30)
    assert dead.message_id == "k:1"
    assert dead.headers.get("x-first-death-reason") in ("delivery_limit", "rejected")
    assert attempts == topology.DELIVERY_LIMIT + 1


async def test_an_unacknowledged_message_is_redelivered_when_its_consumer_dies(broker, amqp_vhost_url):
    started = asyncio.Event()

    async def hangs(delivery: Delivery) -> None:
        started.set()
        await asyncio.sleep(3600)

    dying = Broker(amqp_vhost_url, "dying")
    await dying.connect()
    await dying.consume(topology.job_queue(Stage.INGEST), hangs)
    await broker.publish(topology.JOBS_EXCHANGE, Stage.INGEST.value, b"{}", message_id="r:1")
    await asyncio.wait_for(started.wait(), 10)
    await dying.close()  # the consumer goes away without acknowledging
    message = await _get_one(amqp_vhost_url, topology.job_queue(Stage.INGEST))
    assert message.message_id == "r:1"
    assert message.redelivered
