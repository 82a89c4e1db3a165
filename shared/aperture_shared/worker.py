"""The worker loop every stage service runs: a stage is one typed handler, the runtime does the rest.

    async def ingest(job: IngestJob, context: JobContext) -> JobOutcome

For each delivery the runtime decodes the job, skips it if this attempt already completed (a duplicate
delivery: the stored completion event is published again, nothing runs twice), announces the start,
gives the handler a fresh scratch directory, turns failures into classified JobFailed events, stores a
completion marker, publishes the completion event with a broker confirm, and only then acknowledges.
A worker killed mid-job never acknowledges, so the broker redelivers the job to another worker.
"""

import asyncio
import contextlib
import importlib.metadata
import json
import logging
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

from aperture_contracts import topology
from aperture_contracts.enums import ErrorClass, Stage
from aperture_contracts.events import (
    CancelJobs,
    CasaCall,
    JobEvent,
    JobFailed,
    JobStarted,
    JobSucceeded,
    StageResult,
)
from aperture_contracts.ids import mous_key
from aperture_contracts.jobs import JobEnvelope
from aperture_contracts.qa import QAScore
from aperture_contracts.storage import ObjectRef
from pydantic import TypeAdapter, ValidationError

from aperture_shared.casa.runner import CasaProcessPool, run_casa_step
from aperture_shared.errors import JobCancelled, JobError, classify_unexpected
from aperture_shared.http import serve_operations_endpoints
from aperture_shared.logs import configure_logging, log_context
from aperture_shared.messaging import Broker, Delivery, PoisonMessage
from aperture_shared.metrics import (
    JOB_DURATION,
    JOBS,
    count_job_start,
    initialise_stage_series,
    observe_casa_calls,
    observe_qa_scores,
)
from aperture_shared.scratch import job_scratch, remove_orphaned_scratch
from aperture_shared.settings import CasaSettings, WorkerSettings
from aperture_shared.storage import ObjectStore

log = logging.getLogger(__name__)

# Every event a worker sends says which Aperture it ran (the run ledger keeps it per attempt).
SOFTWARE_VERSION = f"aperture {importlib.metadata.version('aperture-shared')}"

J = TypeVar("J", bound=JobEnvelope)
_EVENT = TypeAdapter(JobEvent)


@dataclass
class JobOutcome:
    """What a handler returns: the stage's result, every object it stored, and its QA."""

    result: StageResult
    outputs: list[ObjectRef]
    qa: list[QAScore] = field(default_factory=list)


@dataclass
class JobContext:
    """What a handler may use: storage under the job's prefixes, scratch space and CASA."""

    job: JobEnvelope
    store: ObjectStore
    scratch: Path
    casa_settings: CasaSettings
    casa_calls: list[CasaCall] = field(default_factory=list)
    casa_logs: list[Path] = field(default_factory=list)
    deadline: float = 0.0
    casa_processes: CasaProcessPool | None = None  # the worker's CASA processes, imported and reused
    peak_memory_mb: float | None = None  # the largest resident memory of any of its CASA steps

    async def casa(self, function: str, arguments: dict[str, Any]) -> Any:
        """Run one CASA step (`module:function`) in its own process, within the job's time limit."""
        remaining = max(1.0, self.deadline - time.monotonic())
        workdir = self.scratch / f"casa-{len(self.casa_logs) + 1}"
        try:
            run = await run_casa_step(
                function, arguments, workdir=workdir,
                time_limit_s=remaining, memory_limit_mb=self.casa_settings.memory_limit_mb,
                threads=self.casa_settings.threads, pool=self.casa_processes,
            )
        except JobError as error:
            self._note_memory(error.peak_memory_mb)
            raise
        finally:
            self.casa_logs.append(workdir)
        self._note_memory(run.peak_rss_mb)
        self.casa_calls.extend(run.calls)
        observe_casa_calls(self.job.stage.value, run.calls)  # metrics: CASA task durations
        return run.value

    def _note_memory(self, peak_mb: float | None) -> None:
        if peak_mb is not None:
            self.peak_memory_mb = round(max(peak_mb, self.peak_memory_mb or 0.0), 1)

    async def put_file(self, name: str, path: Path, content_type: str = "application/octet-stream",
                       *, product: bool = False) -> ObjectRef:
        key = (self.job.products_prefix if product else self.job.output_prefix) + name
        return await asyncio.to_thread(self.store.put_file, key, path, content_type)

    async def put_directory(self, name: str, directory: Path) -> ObjectRef:
        return await asyncio.to_thread(
            self.store.put_directory, self.job.output_prefix + name, directory, self.scratch
        )

    async def get_file(self, ref: ObjectRef, dest: Path) -> ObjectRef:
        return await asyncio.to_thread(self.store.get_file, ref, dest)

    def collected_log(self) -> bytes:
        """Every CASA step's output and log, in order, as one text."""
        parts: list[str] = []
        for workdir in self.casa_logs:
            for name in ("casa-output.log", "casa.log"):
                path = workdir / name
                if path.exists():
                    parts.append(f"===== {workdir.name}/{name}\n{path.read_text(errors='replace')}")
        return "\n".join(parts).encode()


StageHandler = Callable[[J, JobContext], Awaitable[JobOutcome]]


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def completion_key(job: JobEnvelope) -> str:
    """Where the completion event of one dispatch of an attempt is kept: its presence means it is done.

    The key carries the message's creation time as well as the attempt: a copy of the same message (a
    redelivery, or the relay publishing its outbox row again) finds the marker, but a coordinator whose
    database was reset, dispatching attempt 1 again into a bucket that still holds an earlier run's
    objects, does not mistake that run's marker for its own and re-send a stale event."""
    dispatched = job.created_at.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return f"{job.output_prefix}_completion/attempt-{job.attempt}-{dispatched}.json"


class StageWorker(Generic[J]):
    def __init__(
        self,
        stage: Stage,
        job_model: type[J],
        handler: StageHandler[J],
        settings: WorkerSettings,
        casa_settings: CasaSettings,
    ) -> None:
        self.stage = stage
        self.handler = handler
        self.settings = settings
        self.casa_settings = casa_settings
        self._decode = TypeAdapter(job_model)
        self.broker = Broker(settings.amqp_url.get_secret_value(), f"aperture-{stage.value}-{worker_name()}")
        self.store = ObjectStore(settings)
        self.name = worker_name()
        # Keyed by (mous_id, job_id): job ids are unique only within an MOUS.
        self._running: dict[tuple[str, str], asyncio.Task[JobEvent]] = {}
        self._cancelled: set[tuple[str, str]] = set()
        self.casa_processes = CasaProcessPool(casa_settings.steps_per_process)
        self._stop_consuming: Callable[[], Awaitable[None]] | None = None
        self._delivered = self._settled = 0
        initialise_stage_series(stage.value)  # metrics: every series of the stage exists from the start

    # -- process life ----------------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve until SIGTERM/SIGINT; a job in progress on SIGTERM is left unacknowledged (redelivered)."""
        removed = remove_orphaned_scratch(self.casa_settings.scratch_root)
        if removed:
            log.info("removed %d scratch directories of dead workers", len(removed))
        await self.broker.connect()
        await self.broker.declare_topology([self.stage])
        await asyncio.to_thread(self.store.ensure_bucket)
        await self.casa_processes.warm_up(self.casa_settings.threads)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        http = asyncio.create_task(
            serve_operations_endpoints(
                f"{self.stage.value}-worker", self.settings.http_host, self.settings.http_port, self._checks
            )
        )
        await self.broker.consume_broadcast(topology.CONTROL_EXCHANGE, self._on_control)
        queue = topology.job_queue(self.stage, self.settings.memory_class)
        self._stop_consuming = await self.broker.consume(
            queue, self.handle, prefetch=self.settings.prefetch, on_settled=lambda: self._after_message(stop),
        )
        log.info("%s worker %s consuming %s", self.stage.value, self.name, queue)
        idle = self.settings.exit_after_idle_s
        if idle is not None:
            loop.call_later(idle, self._stop_if_idle, stop)
        await stop.wait()
        log.info("stopping")
        for task in self._running.values():
            task.cancel()
        await self.casa_processes.close()
        http.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await http
        await self.broker.close()

    # -- one-job mode (WorkerSettings.exit_after_jobs, exit_after_idle_s) ---------------------------------

    async def _after_message(self, stop: asyncio.Event) -> None:
        """Called once each message is settled: in one-job mode, stop after the Nth."""
        self._settled += 1
        limit = self.settings.exit_after_jobs
        if limit is not None and self._settled >= limit:
            log.info("handled %d message(s), as many as asked (exit_after_jobs): exiting", self._settled)
            stop.set()

    async def _count_delivery(self) -> None:
        """In one-job mode, take no further message once the Nth has come (prefetch may hold one more)."""
        self._delivered += 1
        limit = self.settings.exit_after_jobs
        if limit is not None and self._delivered >= limit and self._stop_consuming is not None:
            await self._stop_consuming()

    def _stop_if_idle(self, stop: asyncio.Event) -> None:
        if self._delivered == 0:
            log.info("no message within %.0f s (exit_after_idle_s): exiting", self.settings.exit_after_idle_s)
            stop.set()

    def _checks(self) -> dict[str, str]:
        return {"broker": "ok" if self.broker.connected else "disconnected"}

    async def _on_control(self, delivery: Delivery) -> None:
        try:
            message = CancelJobs.model_validate_json(delivery.body)
        except ValidationError as error:
            raise PoisonMessage(f"undecodable control message: {error}") from error
        for job_id in message.job_ids:
            key = (message.mous_id, job_id)
            task = self._running.get(key)
            if task is not None:
                log.info("cancelling job %s of %s: %s", job_id, message.mous_id, message.reason)
                self._cancelled.add(key)
                task.cancel()

    # -- one delivery ----------------------------------------------------------------------------------

    async def handle(self, delivery: Delivery) -> None:
        await self._count_delivery()
        try:
            job = self._decode.validate_json(delivery.body)
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in problem['loc']) or 'message'}: {problem['msg']}"
                for problem in error.errors(include_url=False)[:5]
            )
            reason = f"not a valid {self.stage.value} job message ({problems})"
            await self._report_poison(delivery.body, reason)
            raise PoisonMessage(reason) from error
        await self._handle_job(job, delivery)

    async def _handle_job(self, job: J, delivery: Delivery) -> None:
        with log_context(mous_id=job.mous_id, job_id=job.job_id, attempt=job.attempt, stage=self.stage.value):
            done = await asyncio.to_thread(self._stored_completion, job)
            if done is not None:
                log.info("attempt already completed (duplicate delivery); re-publishing its event")
                await self._publish_event(done)
                return
            await self._publish_event(
                JobStarted(**self._envelope(job), redelivered=delivery.redelivered or delivery.delivery_count > 0)
            )
            key = (job.mous_id, job.job_id)
            task = asyncio.create_task(self._execute(job))
            count_job_start(self.stage.value, task)  # metrics: started, and in progress until the task ends
            self._running[key] = task
            try:
                event = await task
            except asyncio.CancelledError:
                if key not in self._cancelled:
                    raise  # the worker is shutting down: leave the delivery for another worker
                self._cancelled.discard(key)
                event = self._failed(job, JobCancelled("the job was cancelled"), 0.0)
                JOBS.labels(self.stage.value, "failed", event.error_class.value).inc()  # metrics (no duration)
            finally:
                self._running.pop(key, None)
            await asyncio.to_thread(
                self.store.put_bytes, completion_key(job), event.model_dump_json().encode(), "application/json"
            )
            await self._publish_event(event)

    async def _execute(self, job: J) -> JobEvent:
        started = time.monotonic()
        with job_scratch(self.casa_settings.scratch_root, job.job_id) as scratch:
            context = JobContext(
                job=job, store=self.store, scratch=scratch, casa_settings=self.casa_settings,
                deadline=started + job.time_limit_s, casa_processes=self.casa_processes,
            )
            try:
                outcome = await self.handler(job, context)
            except JobError as error:
                duration = time.monotonic() - started
                log.warning("job failed (%s): %s", error.error_class.value, error.message)
                event: JobEvent = self._failed(
                    job, error, duration, await self._store_log(context), context.peak_memory_mb
                )
                self._count(event, duration)
                return event
            except Exception as error:
                duration = time.monotonic() - started
                log.exception("job failed with an unexpected error")
                failure = classify_unexpected(error, f"the {self.stage.value} handler")
                failure.detail = _traceback(error)
                event = self._failed(
                    job, failure, duration, await self._store_log(context), context.peak_memory_mb
                )
                self._count(event, duration)
                return event
            duration = time.monotonic() - started
            event = JobSucceeded(
                **self._envelope(job), duration_s=round(duration, 3), outputs=outcome.outputs,
                result=outcome.result, qa=outcome.qa, casa_calls=context.casa_calls,
                log=await self._store_log(context), peak_memory_mb=context.peak_memory_mb,
                software_version=SOFTWARE_VERSION,
            )
            self._count(event, duration)
            log.info("job succeeded in %.1f s with %d outputs", duration, len(outcome.outputs))
            return event

    # -- pieces ----------------------------------------------------------------------------------------

    async def _report_poison(self, body: bytes, reason: str) -> None:
        """When a broken message still names its job, tell the coordinator, so the MOUS is not stuck."""
        try:
            raw = json.loads(body)
            event = JobFailed(
                mous_id=raw["mous_id"], job_id=raw["job_id"], attempt=raw["attempt"], stage=self.stage,
                worker=self.name, at=datetime.now(UTC), duration_s=0.0, error_class=ErrorClass.POISON,
                message=f"the job message could not be processed and was dead-lettered: {reason}",
            )
        except (ValueError, KeyError, TypeError, ValidationError):
            return  # nothing names a job: the dead letter with its reason is all there is to say
        await self._publish_event(event)

    def _stored_completion(self, job: J) -> JobEvent | None:
        key = completion_key(job)
        if not self.store.exists(key):
            return None
        return _EVENT.validate_json(self.store.get_bytes(key))

    async def _store_log(self, context: JobContext) -> ObjectRef | None:
        text = context.collected_log()
        if not text:
            return None
        key = f"{context.job.output_prefix}logs/attempt-{context.job.attempt}.casa.log"
        try:
            return await asyncio.to_thread(self.store.put_bytes, key, text, "text/plain")
        except JobError as error:  # a log we cannot store must not turn a result into a failure
            log.warning("could not store the CASA log: %s", error.message)
            return None

    def _envelope(self, job: J) -> dict[str, Any]:
        return {
            "mous_id": job.mous_id, "job_id": job.job_id, "attempt": job.attempt, "stage": self.stage,
            "worker": self.name, "at": datetime.now(UTC),
        }

    def _failed(
        self, job: J, error: JobError, duration: float, log_ref: ObjectRef | None = None,
        peak_memory_mb: float | None = None,
    ) -> JobFailed:
        return JobFailed(
            **self._envelope(job), duration_s=round(duration, 3), error_class=error.error_class,
            message=error.message, detail=error.detail[-20000:], log=log_ref, peak_memory_mb=peak_memory_mb,
            software_version=SOFTWARE_VERSION,
        )

    def _count(self, event: JobEvent, duration: float) -> None:
        outcome = "succeeded" if isinstance(event, JobSucceeded) else "failed"
        error_class = event.error_class.value if isinstance(event, JobFailed) else ""
        JOBS.labels(self.stage.value, outcome, error_class).inc()
        JOB_DURATION.labels(self.stage.value, outcome).observe(duration)
        if isinstance(event, JobSucceeded):  # metrics: the QA scores' distribution
            observe_qa_scores(self.stage.value, event.qa)

    async def _publish_event(self, event: JobEvent) -> None:
        await self.broker.publish(
            topology.EVENTS_EXCHANGE, topology.EVENTS_ROUTING_KEY, event.model_dump_json().encode(),
            message_id=f"{mous_key(event.mous_id)}:{event.job_id}:{event.attempt}:{event.event_type}",
        )


def _traceback(error: BaseException) -> str:
    import traceback

    return "".join(traceback.format_exception(error))


def run_stage_worker(
    stage: Stage, job_model: type[J], handler: StageHandler[J],
    settings: WorkerSettings | None = None, casa_settings: CasaSettings | None = None,
) -> None:
    """The entry point of every stage service."""
    settings = settings or WorkerSettings(service_name=f"{stage.value}-worker")
    settings.check_secrets()
    configure_logging(f"{stage.value}-worker", settings.log_level, settings.log_json)
    worker = StageWorker(stage, job_model, handler, settings, casa_settings or CasaSettings())
    asyncio.run(worker.run())
