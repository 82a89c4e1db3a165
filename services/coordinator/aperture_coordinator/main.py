"""`aperture-coordinator serve` (the API with the relay, the event consumer and the reconcile loop) and
`aperture-coordinator migrate` (bring the database schema up to date and exit)."""

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Protocol

import typer
import uvicorn
from aperture_contracts import topology
from aperture_contracts.enums import Stage
from aperture_shared.errors import JobError
from aperture_shared.logs import configure_logging
from aperture_shared.messaging import Broker
from aperture_shared.storage import ObjectStore
from fastapi import FastAPI
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential

from aperture_coordinator.api import CoordinatorServices, PackageStore, create_app
from aperture_coordinator.api_metrics import install_request_metrics
from aperture_coordinator.campaigns import CampaignFeeder, feed_forever
from aperture_coordinator.db import Database, upgrade_database
from aperture_coordinator.events import EventHandler
from aperture_coordinator.notifications import Notifier, notify_forever
from aperture_coordinator.relay import OutboxRelay
from aperture_coordinator.request_cleanup import clean_requests_forever
from aperture_coordinator.retention import prune_history
from aperture_coordinator.settings import CoordinatorSettings
from aperture_coordinator.state import Coordinator

log = logging.getLogger(__name__)

cli = typer.Typer(help="The Aperture coordinator", no_args_is_help=True, add_completion=False)


async def reconcile_forever(coordinator: Coordinator, interval_s: float, after_change: OutboxRelay) -> None:
    """The periodic pass that catches what no event triggers: retries whose backoff is over, jobs of a
    stage enabled since they were planned, and jobs whose worker went silent."""
    while True:
        try:
            looked_at = await asyncio.to_thread(coordinator.reconcile)
            if looked_at:
                after_change.wake()
        except Exception:  # the database may be restarting: the next pass tries again
            log.exception("reconcile pass failed")
        await asyncio.sleep(interval_s)


async def prune_forever(coordinator: Coordinator, retention_days: float, interval_s: float) -> None:
    """Drop published outbox rows and old event keys now and then (retention.py says why that is safe)."""
    while True:
        try:
            await asyncio.to_thread(
                prune_history, coordinator.database, coordinator.clock(), timedelta(days=retention_days)
            )
        except Exception:  # the database may be restarting: the next pass tries again
            log.exception("pruning the outbox and event keys failed")
        await asyncio.sleep(interval_s)


class ServiceStore(PackageStore, Protocol):
    """The object store as the service uses it: the API's needs, making sure the bucket exists, and
    deleting what cancelled requests left."""

    def ensure_bucket(self) -> None: ...

    def delete_prefix(self, prefix: str) -> int: ...


class ObjectStoreCheck:
    """Makes sure the bucket exists, waiting (in the background) for a store that is not up yet: only
    uploads need it, so it must not hold back the dispatching of work already submitted."""

    def __init__(self, store: ServiceStore) -> None:
        self.store = store
        self.state = "connecting"

    async def run(self) -> None:
        async for attempt in AsyncRetrying(
            wait=wait_exponential(multiplier=0.5, max=30),
            retry=retry_if_exception_type(JobError),
            before_sleep=self._note_failure,
        ):
            with attempt:
                await asyncio.to_thread(self.store.ensure_bucket)
        self.state = "ok"

    def _note_failure(self, retry_state: RetryCallState) -> None:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        self.state = f"unavailable: {error}"
        log.warning("the object store is not ready (%s); trying again", error)


def build_app(settings: CoordinatorSettings, store: ServiceStore | None = None) -> FastAPI:
    """The service: the API, and a lifespan that migrates the database, connects to the broker and runs
    the relay, the event consumer and the reconcile loop. `store` replaces the S3 store (tests)."""
    database = Database(settings.database_url)
    coordinator = Coordinator(database, settings)
    store = store or ObjectStore(settings)
    services = CoordinatorServices(database=database, coordinator=coordinator, store=store)

    @asynccontextmanager
    async def background(_app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(upgrade_database, settings.database_url)
        bucket = ObjectStoreCheck(store)
        connection_name = f"aperture-coordinator-{socket.gethostname()}:{os.getpid()}"
        broker = Broker(settings.amqp_url.get_secret_value(), connection_name)
        await broker.connect()
        await broker.declare_topology(list(Stage))
        relay = OutboxRelay(
            database, broker, interval_s=settings.relay_interval_s, batch_size=settings.relay_batch_size,
            fault_injection=settings.fault_injection,
        )
        services.notify_outbox = relay.wake
        services.readiness = lambda: {
            "broker": "ok" if broker.connected else "disconnected",
            "object_store": bucket.state,
        }
        tasks = [
            asyncio.create_task(bucket.run(), name="object-store-check"),
            asyncio.create_task(relay.run(), name="outbox-relay"),
            asyncio.create_task(
                reconcile_forever(coordinator, settings.reconcile_interval_s, relay), name="reconcile"
            ),
            asyncio.create_task(
                prune_forever(coordinator, settings.history_retention_days, settings.prune_interval_s), name="prune"
            ),
            asyncio.create_task(
                feed_forever(CampaignFeeder(coordinator, store), settings.reconcile_interval_s, relay),
                name="campaign-feeder",
            ),
            asyncio.create_task(
                notify_forever(Notifier(database, settings), settings.notify_interval_s), name="notify"
            ),
            asyncio.create_task(
                clean_requests_forever(
                    database, store, settings.request_cleanup_grace_s, settings.reconcile_interval_s, coordinator.clock
                ),
                name="request-cleanup",
            ),
        ]
        handler = EventHandler(coordinator, after_commit=relay.wake)
        await broker.consume(topology.EVENTS_QUEUE, handler, prefetch=settings.events_prefetch)
        log.info(
            "coordinator serving on %s:%d; enabled stages: %s", settings.api_host, settings.api_port,
            ", ".join(stage.value for stage in settings.enabled_stages),
        )
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await broker.close()
            database.dispose()

    app = create_app(settings, services, lifespan=background)
    install_request_metrics(app)  # metrics: the API's request rate, latency and errors
    return app


@cli.command()
def serve() -> None:
    """Serve the API and run the coordinator until SIGTERM."""
    settings = CoordinatorSettings()
    settings.check_secrets()
    configure_logging(settings.service_name, settings.log_level, settings.log_json)
    app = build_app(settings)
    uvicorn.run(
        app, host=settings.api_host, port=settings.api_port, log_config=None, access_log=False,
        # A request stuck on an unreachable object store must not keep a stopping coordinator alive.
        timeout_graceful_shutdown=30,
    )


@cli.command()
def migrate() -> None:
    """Bring the database schema up to date, then exit."""
    settings = CoordinatorSettings()
    configure_logging(settings.service_name, settings.log_level, settings.log_json)
    upgrade_database(settings.database_url)
    typer.echo("database schema is up to date")


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
