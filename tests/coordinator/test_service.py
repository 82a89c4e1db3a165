"""The coordinator as a service, with a real RabbitMQ (a fresh virtual host per test): job messages go
out through the outbox, worker events come back through the events queue, and a coordinator killed
between a commit and its publish (either way round) loses no message."""

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import aio_pika
import httpx
import pytest
import urllib3
from aperture_contracts import topology
from aperture_contracts.api import MousDetail
from aperture_contracts.enums import Stage
from aperture_contracts.jobs import IngestJob
from aperture_coordinator.db import Database, upgrade_database
from aperture_coordinator.main import build_app
from aperture_coordinator.state import Coordinator, Submission
from aperture_shared.errors import StorageError
from aperture_shared.messaging import DEAD_REASON_HEADER
from aperture_shared.settings import CommonSettings
from aperture_shared.storage import ObjectStore
from minio import Minio
from minio.error import MinioException

from .conftest import make_settings
from .factories import (
    MOUS_ID,
    grid_metadata,
    ingest_succeeded,
    object_ref,
    outbox,
    started,
    tar_package,
)

pytestmark = [
    pytest.mark.integration,
]

INGEST_QUEUE = topology.job_queue(Stage.INGEST)


async def drain(
    amqp_url: str, queue_name: str, *, wait_s: float = 0.0
) -> list[aio_pika.abc.AbstractIncomingMessage]:
    """Every message now in a queue (waiting up to `wait_s` for the first), acknowledged."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(queue_name, ensure=True)
        deadline = time.monotonic() + wait_s
        messages = []
        while True:
            message = await queue.get(no_ack=True, fail=False)
            if message is not None:
                messages.append(message)
            elif messages or time.monotonic() >= deadline:
                return messages
            else:
                await asyncio.sleep(0.1)


async def publish_event(amqp_url: str, body: bytes) -> None:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.get_exchange(topology.EVENTS_EXCHANGE)
        await exchange.publish(aio_pika.Message(body), routing_key=topology.EVENTS_ROUTING_KEY)


async def eventually(check: "object", timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        outcome = check()  # type: ignore[operator]
        if asyncio.iscoroutine(outcome):
            outcome = await outcome
        if outcome:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout_s} s")
        await asyncio.sleep(0.1)


def remove_bucket(settings: CommonSettings) -> None:
    """Leave the shared S3 server as it was: the test's objects and bucket go."""
    client = Minio(
        settings.s3_endpoint, access_key=settings.s3_access_key.get_secret_value(),
        secret_key=settings.s3_secret_key.get_secret_value(), secure=settings.s3_secure, region=settings.s3_region,
        http_client=urllib3.PoolManager(timeout=urllib3.Timeout(connect=5, read=30), retries=1),
    )
    if client.bucket_exists(settings.s3_bucket):
        ObjectStore(settings).delete_prefix("")
        client.remove_bucket(settings.s3_bucket)


@pytest.fixture
def bucket_settings(storage_settings: CommonSettings) -> Iterator[CommonSettings]:
    yield storage_settings
    remove_bucket(storage_settings)


async def test_jobs_go_out_through_the_broker_and_worker_events_come_back(
    database_url: str, amqp_vhost_url: str, bucket_settings: CommonSettings
) -> None:
    storage_settings = bucket_settings
    settings = make_settings(
        database_url, amqp_url=amqp_vhost_url, s3_bucket=storage_settings.s3_bucket, relay_interval_s=0.2,
        reconcile_interval_s=0.2,
    )
    store = ObjectStore(storage_settings)  # what a worker sees of the same bucket
    app = build_app(settings)
    package = tar_package({"x.ms/table.dat": b"visibilities"})
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://coordinator"
    ) as client:

        async def ready() -> bool:
            response = await client.get("/readyz")
            return response.status_code == 200

        await eventually(ready)
        files = {"package": ("uid___A001_X2fa_X2dd.ms.tar", package)}
        submitted = await client.post("/api/v1/mous", files=files)
        assert submitted.status_code == 201, submitted.text

        # A stand-in ingest worker: take the job, read the package, write a product, report back.
        [message] = await drain(amqp_vhost_url, INGEST_QUEUE, wait_s=10)
        assert message.message_id == "uid___A001_X2fa_X2dd:r1.ingest:1"
        job = IngestJob.model_validate_json(message.body)
        assert await asyncio.to_thread(store.get_bytes, job.package) == package
        report = await asyncio.to_thread(
            store.put_bytes, job.products_prefix + "ingest-report.json", b'{"ok": true}', "application/json"
        )
        await publish_event(amqp_vhost_url, started("r1.ingest", at=job.created_at).model_dump_json().encode())
        success = ingest_succeeded(at=job.created_at, metadata=grid_metadata(1, 2))
        success = success.model_copy(update={"outputs": [report], "log": None})
        await publish_event(amqp_vhost_url, success.model_dump_json().encode())

        async def planned() -> bool:
            detail = (await client.get("/api/v1/mous/uid___A001_X2fa_X2dd")).json()
            return detail["state"] == "waiting_for_service" and len(detail["jobs"]) == 3 + 14 + 4

        await eventually(planned)
        detail = MousDetail.model_validate((await client.get("/api/v1/mous/uid___A001_X2fa_X2dd")).json())
        [product] = [p for p in detail.products if p.name == "ingest-report.json"]
        assert product.download_url is not None
        async with httpx.AsyncClient(timeout=10) as outside:  # the link works without credentials
            assert (await outside.get(product.download_url)).content == b'{"ok": true}'

        await publish_event(amqp_vhost_url, b"this is not an event")
        [dead] = await drain(amqp_vhost_url, topology.DEAD_LETTER_QUEUE, wait_s=10)
        assert dead.body == b"this is not an event"
        assert str(dead.headers[DEAD_REASON_HEADER]).startswith("not a job event: body: Invalid JSON")


# -- a real coordinator process, killed between commit and publish ------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class CoordinatorProcess:
    """`aperture-coordinator serve` as a child process with its output in a file."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, fault_injection: str | None = None) -> None:
        env = dict(self.env)
        if fault_injection:
            env["APERTURE_FAULT_INJECTION"] = fault_injection
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "aperture_coordinator.main", "serve"], env=env, stdout=log,
                stderr=subprocess.STDOUT,
            )
        health = f"http://127.0.0.1:{env['APERTURE_API_PORT']}/healthz"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the coordinator exited while starting:\n{self.tail()}")
            try:
                if httpx.get(health, timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"the coordinator did not start within 60 s:\n{self.tail()}")

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def wait_for_exit(self, timeout_s: float = 20) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout_s)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def coordinator_process(
    database_url: str, amqp_vhost_url: str, tmp_path: Path
) -> Iterator[CoordinatorProcess]:
    env = {
        **os.environ,
        "APERTURE_DATABASE_URL": database_url,
        "APERTURE_AMQP_URL": amqp_vhost_url,
        "APERTURE_API_PORT": str(free_port()),
        "APERTURE_S3_BUCKET": f"test-{uuid.uuid4().hex[:12]}",
        "APERTURE_RELAY_INTERVAL_S": "0.2",
        "APERTURE_LOG_JSON": "false",
    }
    env.pop("APERTURE_FAULT_INJECTION", None)
    process = CoordinatorProcess(env, tmp_path / "coordinator.log")
    yield process
    process.stop()
    # The process made its bucket in the background; these tests do not need the store otherwise, so
    # removing the bucket is best effort.
    try:
        remove_bucket(CommonSettings(s3_bucket=env["APERTURE_S3_BUCKET"]))
    except (MinioException, StorageError, urllib3.exceptions.HTTPError) as error:
        logging.getLogger(__name__).warning("could not remove the test bucket: %s", error)


def submit_directly(database_url: str) -> None:
    """Submit through the state machine, as the API would, without needing the object store."""
    upgrade_database(database_url)
    database = Database(database_url)
    try:
        package = object_ref("mous/uid___A001_X2fa_X2dd/input/p.tar", b"package")
        Coordinator(database, make_settings(database_url)).submit(Submission(MOUS_ID, package, "p.tar"))
    finally:
        database.dispose()


def published_at(database_url: str) -> list[object]:
    database = Database(database_url)
    try:
        return [row.published_at for row in outbox(database)]
    finally:
        database.dispose()


@pytest.mark.slow
async def test_a_coordinator_killed_after_commit_before_publish_publishes_after_restart(
    coordinator_process: CoordinatorProcess, database_url: str, amqp_vhost_url: str
) -> None:
    await asyncio.to_thread(coordinator_process.start, "crash_after_commit_before_publish")
    await asyncio.to_thread(submit_directly, database_url)

    assert await asyncio.to_thread(coordinator_process.wait_for_exit) == -signal.SIGKILL
    assert published_at(database_url) == [None]
    assert await drain(amqp_vhost_url, INGEST_QUEUE) == []

    await asyncio.to_thread(coordinator_process.start)
    [message] = await drain(amqp_vhost_url, INGEST_QUEUE, wait_s=15)
    assert message.message_id == "uid___A001_X2fa_X2dd:r1.ingest:1"
    await eventually(lambda: published_at(database_url) != [None])


@pytest.mark.slow
async def test_a_coordinator_killed_after_publish_before_commit_publishes_again_after_restart(
    coordinator_process: CoordinatorProcess, database_url: str, amqp_vhost_url: str
) -> None:
    await asyncio.to_thread(coordinator_process.start, "crash_after_publish_before_commit")
    await asyncio.to_thread(submit_directly, database_url)

    assert await asyncio.to_thread(coordinator_process.wait_for_exit) == -signal.SIGKILL
    assert published_at(database_url) == [None]

    await asyncio.to_thread(coordinator_process.start)
    await eventually(lambda: published_at(database_url) != [None])
    messages = await drain(amqp_vhost_url, INGEST_QUEUE, wait_s=5)
    assert [message.message_id for message in messages] == ["uid___A001_X2fa_X2dd:r1.ingest:1"] * 2
    assert messages[0].body == messages[1].body
