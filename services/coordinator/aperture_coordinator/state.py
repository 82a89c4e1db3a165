"""The coordinator's state machine: the only code that changes MOUS and job state.

Every operation is one database transaction that first locks the MOUS row it changes, so operations on
one MOUS never interleave, and re-running any of them after a crash is safe:

- `submit` creates an MOUS with its ingest job (or, with rerun, starts a new run of an existing one);
- `reconcile` dispatches every job whose dependencies all succeeded, re-dispatches retries whose backoff
  is over, and fails attempts whose worker went silent;
- `apply_event` applies a worker's completion event; an event seen before, for an attempt that is not
  the job's current one, or for a job already finished changes nothing;
- `cancel` stops an MOUS;
- `cancel_request` stops the unfinished versions of a user's imaging request.

A user's imaging request runs as jobs of the MOUS too (request_planner.py), each tied to its request
version: they are dispatched, retried and reported like the run's jobs, under the same MOUS lock, but the
MOUS's state is derived from its run's jobs only and the version's from its own (request_execution.py).

A dispatch writes the job message into the outbox in the same transaction as the job's new state; the
relay publishes it afterwards. A crash between the two publishes the message late, never loses it.

Failure policy: a job that fails for good cancels every job that depends on it ("depends on failed job
X") and fails the MOUS with a sentence saying what went wrong and what to do; jobs that do not depend on
it run on, so that one run reports every problem of the data (mous_status has the precedence rules).
"""

import hashlib
import logging
import random
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from aperture_contracts import topology
from aperture_contracts.enums import ErrorClass, JobState, MousState, Recipe, Stage
from aperture_contracts.events import CancelJobs, IngestResult, JobEvent, JobFailed, JobStarted, JobSucceeded
from aperture_contracts.ids import mous_key
from aperture_contracts.metadata import MousMetadata
from aperture_contracts.requests import RequestCreate, RequestState
from aperture_contracts.run_parameters import RunParameters
from aperture_contracts.storage import ObjectRef
from sqlalchemy import CompoundSelect, and_, exists, func, or_, select, union
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased, selectinload

from aperture_coordinator.db import Database
from aperture_coordinator.imaging_requests import ACTIVE_STATES as ACTIVE_REQUEST_STATES
from aperture_coordinator.imaging_requests import WITH_VERSIONS, UnknownRequest, run_images, view
from aperture_coordinator.job_messages import MESSAGE_BUILDERS, MessageBuilder, products_prefix
from aperture_coordinator.memory_classes import MemoryClasses, assign_memory_classes
from aperture_coordinator.metrics import DISPATCHES, EVENTS
from aperture_coordinator.models import (
    Attempt,
    ImagingRequest,
    Job,
    Mous,
    OutboxMessage,
    ProcessedEvent,
    RequestVersion,
    StoredObject,
    job_dependencies,
    utc_now,
)
from aperture_coordinator.mous_status import JobStatus, derive_mous_state
from aperture_coordinator.notifications import notifications_for
from aperture_coordinator.planner import JobGraph, plan_processing
from aperture_coordinator.request_execution import OverridesFromRun, derive_version
from aperture_coordinator.request_planner import plan_request_version, requests_prefix
from aperture_coordinator.retries import RetryPolicy
from aperture_coordinator.settings import CoordinatorSettings

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
IN_FLIGHT = (JobState.DISPATCHED, JobState.RUNNING)


class UnknownMous(LookupError):
    def __init__(self, mous_id: str) -> None:
        super().__init__(
            f"no MOUS {mous_id} has been submitted: check the id, or list the MOUS with GET /api/v1/mous"
        )
        self.mous_id = mous_id


class UnknownJob(LookupError):
    pass


class NothingToCancel(Exception):
    """The MOUS has finished: there is nothing left to stop."""

    def __init__(self, mous_id: str, state: MousState) -> None:
        super().__init__(f"MOUS {mous_id} is already {state.value}: no job of it is left to cancel")
        self.state = state


@dataclass(frozen=True)
class Submission:
    """A request to process a package: `mous_id` canonical, `package` already in the object store."""

    mous_id: str
    package: ObjectRef
    package_name: str
    rerun: bool = False
    campaign_id: str | None = None  # a campaign's run is bulk work, dispatched behind users' work
    recipe: Recipe = Recipe.FULL
    parameters: RunParameters = field(default_factory=RunParameters)  # a campaign's, for every job of the run


@dataclass(frozen=True)
class SubmitOutcome:
    mous_id: str
    run: int
    created: bool  # False when an existing MOUS was returned unchanged


@dataclass(frozen=True)
class EventOutcome:
    applied: bool
    detail: str


def job_message_id(mous_id: str, job_id: str, attempt: int) -> str:
    """Unique over all MOUS (job ids are unique within one): the broker-level id of one attempt's message."""
    return f"{mous_key(mous_id)}:{job_id}:{attempt}"


def event_key(event: JobEvent) -> str:
    """What makes an event the same event when the broker delivers it twice.

    A job has one start per delivery of its message (a worker died, the broker delivered the attempt
    again), told apart by worker and time; it ends once per attempt.
    """
    key = f"{event.mous_id}|{event.job_id}|{event.attempt}|{event.event_type}"
    if isinstance(event, JobStarted):
        delivery = hashlib.sha256(f"{event.worker}|{event.at.isoformat()}".encode()).hexdigest()[:16]
        key += f"|{delivery}"
    return key


def object_kind(mous_id: str, key: str) -> str:
    if key.startswith(products_prefix(mous_id)):
        return "product"
    if key.startswith(requests_prefix(mous_id)):
        return "request"
    if "/logs/" in key or key.endswith(".log"):
        return "log"
    if key.startswith(f"mous/{mous_key(mous_id)}/input/"):
        return "input"
    if key.startswith(f"mous/{mous_key(mous_id)}/work/"):
        return "work"
    return "other"


class _BulkAdmission:
    """How many more campaign jobs each stage's queue may take in this transaction.

    Quorum queues have no message priorities before RabbitMQ 4.0, so priority is kept at the source: the
    coordinator holds a campaign's ready jobs back while `limit` of them already wait (dispatched, not
    started) in their stage's queue. A user's job (a run a person submitted, a request's) is dispatched at
    once and waits behind at most `limit` campaign jobs per stage, however large the campaign. Two MOUS
    advanced at the same moment in separate transactions can overshoot the limit by a little; it is a
    bound on waiting, not an exact count.
    """

    def __init__(self, session: Session, limit: int) -> None:
        self.session = session
        self.limit = limit
        self._queued: dict[Stage, int] | None = None

    def admit(self, stage: Stage) -> bool:
        if self._queued is None:
            rows = self.session.execute(
                select(Job.stage, func.count())
                .join(Mous, Mous.id == Job.mous_id)
                .where(Job.state == JobState.DISPATCHED, Mous.campaign_id.is_not(None))
                .where(Job.request_version_pk.is_(None))
                .group_by(Job.stage)
            )
            self._queued = {stage_: count for stage_, count in rows}
        queued = self._queued.get(stage, 0)
        if queued >= self.limit:
            return False
        self._queued[stage] = queued + 1
        return True


class Coordinator:
    """The state machine over one database. Thread-safe: each call is its own transaction."""

    def __init__(
        self,
        database: Database,
        settings: CoordinatorSettings,
        *,
        clock: Clock = utc_now,
        rng: random.Random | None = None,
        message_builders: Mapping[Stage, MessageBuilder] = MESSAGE_BUILDERS,
    ) -> None:
        self.database = database
        self.settings = settings
        self.clock = clock
        self.rng = rng or random.Random()
        self.message_builders = message_builders
        self.retry_policy = RetryPolicy(
            max_attempts=settings.max_attempts,
            backoff_base_s=settings.retry_backoff_base_s,
            backoff_cap_s=settings.retry_backoff_cap_s,
            jitter_fraction=settings.retry_jitter_fraction,
        )
        self.memory_classes = MemoryClasses(settings.memory_classes_mb, frozenset(settings.memory_class_stages))

    # -- submitting and cancelling ---------------------------------------------------------------------

    def mous_run(self, mous_id: str) -> int | None:
        """The current run of an MOUS, None when it was never submitted."""
        with self.database.transaction() as session:
            return session.scalar(select(Mous.run).where(Mous.id == mous_id))

    def submit(self, submission: Submission) -> SubmitOutcome:
        """Create the MOUS (idempotent: an existing one is returned as it is unless `rerun`)."""
        try:
            return self._submit(submission)
        except IntegrityError:
            # Two first submissions of one MOUS raced and the other committed first: it exists now.
            log.info("MOUS %s was created concurrently; submitting again", submission.mous_id)
            return self._submit(submission)

    def _submit(self, submission: Submission) -> SubmitOutcome:
        now = self.clock()
        with self.database.transaction() as session:
            mous = self._lock_mous(session, submission.mous_id)
            if mous is not None and not submission.rerun:
                return SubmitOutcome(mous.id, mous.run, created=False)
            if mous is None:
                mous = Mous(
                    id=submission.mous_id, run=1, state=MousState.RECEIVED, reason="", submitted_at=now,
                    updated_at=now,
                )
                session.add(mous)
            else:
                self._supersede_run(session, mous, now)
            mous.package_key = submission.package.key
            mous.package_sha256 = submission.package.sha256
            mous.package_size = submission.package.size
            mous.package_content_type = submission.package.content_type
            mous.package_name = submission.package_name
            mous.observation = None
            mous.cancelled_at = None
            mous.campaign_id = submission.campaign_id
            mous.recipe = submission.recipe
            mous.parameters = submission.parameters.model_dump(mode="json", exclude_none=True)
            session.flush()
            self._record_objects(session, mous.id, None, [submission.package], now)
            jobs = self._add_planned_jobs(session, mous, plan_processing(mous.id, mous.run, None), [], now)
            self._advance(session, mous, jobs, now)
            log.info("MOUS %s submitted (run %d): %s", mous.id, mous.run, mous.reason)
            return SubmitOutcome(mous.id, mous.run, created=True)

    def _supersede_run(self, session: Session, mous: Mous, now: datetime) -> None:
        """Retire the current run's unfinished jobs before a re-run starts: their results will be ignored."""
        jobs = self._current_jobs(session, mous)
        next_run = mous.run + 1
        in_flight = [job.job_id for job in jobs if job.state in IN_FLIGHT]
        for job in jobs:
            if not job.state.terminal:
                self._end_open_attempt(job, JobState.SUPERSEDED, now)
                self._set_job_state(job, JobState.SUPERSEDED, f"superseded by run {next_run}", now)
        if in_flight:
            self._enqueue_cancel(session, mous, in_flight, f"superseded by run {next_run}", now)
        mous.run = next_run

    def cancel(self, mous_id: str, reason: str = "cancelled by request") -> bool:
        """Cancel every unfinished job; False when the MOUS was cancelled before (nothing changes)."""
        now = self.clock()
        with self.database.transaction() as session:
            mous = self._lock_mous(session, mous_id)
            if mous is None:
                raise UnknownMous(mous_id)
            if mous.cancelled_at is not None:
                return False
            jobs = self._current_jobs(session, mous)
            live = [job for job in jobs if not job.state.terminal]
            if not live:
                raise NothingToCancel(mous_id, mous.state)
            in_flight = [job.job_id for job in live if job.state in IN_FLIGHT]
            for job in live:
                self._end_open_attempt(job, JobState.CANCELLED, now)
                self._set_job_state(job, JobState.CANCELLED, reason, now)
            mous.cancelled_at = now
            if in_flight:
                self._enqueue_cancel(session, mous, in_flight, reason, now)
            self._derive(mous, jobs, now)
            log.info("MOUS %s cancelled: %d jobs stopped", mous_id, len(live))
            return True

    # -- reconciling -----------------------------------------------------------------------------------

    def reconcile(self) -> int:
        """Advance every MOUS that has a job to dispatch, a retry that is due or a job gone silent.
        Returns how many MOUS were looked at."""
        now = self.clock()
        with self.database.transaction() as session:
            mous_ids = list(session.scalars(self._needs_attention(now)))
        for mous_id in mous_ids:
            try:
                self.reconcile_mous(mous_id)
            except Exception:  # one MOUS that cannot advance must not hold back the others
                log.exception("reconciling MOUS %s failed; the next pass tries again", mous_id)
        return len(mous_ids)

    def reconcile_mous(self, mous_id: str) -> None:
        now = self.clock()
        with self.database.transaction() as session:
            mous = self._lock_mous(session, mous_id)
            if mous is None:
                raise UnknownMous(mous_id)
            self._advance(session, mous, self._current_jobs(session, mous), now)
            self._advance_requests(session, mous, now)

    def _needs_attention(self, now: datetime) -> CompoundSelect:
        """A query of the ids of MOUS with work for `_advance` (so that an idle tick reads little).

        One select per kind of work, each on job states (the jobs' (state, stage) index): a single select
        with the kinds OR-ed together made the databases scan every job ever run, so that a pass grew with
        the campaign's history (tools/bench/campaign_coordinator.py measured it)."""
        dependency = aliased(Job)
        blocked = exists().where(
            job_dependencies.c.job_pk == Job.pk,
            job_dependencies.c.depends_on_pk == dependency.pk,
            dependency.state != JobState.SUCCEEDED,
        )
        planned = select(Job.mous_id).where(Job.state == JobState.PLANNED, ~blocked)
        service_back = select(Job.mous_id).where(
            Job.state == JobState.WAITING_FOR_SERVICE,
            Job.stage.in_([stage for stage in Stage if self._can_dispatch(stage)]),
            ~blocked,
        )
        retry_due = select(Job.mous_id).where(Job.state == JobState.RETRY_WAIT, Job.not_before <= now)
        silent = or_(
            *(
                and_(Job.stage == stage, Attempt.started_at <= now - self._silence_limit(stage))
                for stage in Stage
            )
        )
        lost = (
            select(Job.mous_id)
            .join(Attempt, and_(Attempt.job_pk == Job.pk, Attempt.attempt == Job.attempt))
            .where(Job.state == JobState.RUNNING, silent)
        )
        unplanned = (
            select(ImagingRequest.mous_id)
            .join(RequestVersion)
            .where(RequestVersion.state == RequestState.QUEUED)
            .where(~exists().where(Job.request_version_pk == RequestVersion.pk))
        )
        return union(planned, service_back, retry_due, lost, unplanned)

    def _silence_limit(self, stage: Stage) -> timedelta:
        return timedelta(seconds=self.settings.time_limit_s(stage) + self.settings.lost_job_grace_s)

    def _advance(self, session: Session, mous: Mous, jobs: list[Job], now: datetime) -> None:
        """Move every job of the run that can move, then derive the MOUS state."""
        self._move_jobs(session, mous, jobs, now)
        self._derive(mous, jobs, now)

    def _move_jobs(self, session: Session, mous: Mous, jobs: list[Job], now: datetime) -> None:
        """Dispatch what is ready or due, fail what went silent. Jobs come in planning order, so a job is
        looked at after the jobs it depends on. A campaign's jobs are dispatched only while few of them wait
        in their stage's queue (`_BulkAdmission`), so a user's job never queues behind a campaign's backlog."""
        admission = _BulkAdmission(session, self.settings.bulk_queued_per_stage) if mous.campaign_id else None
        for job in jobs:
            if job.state in (JobState.PLANNED, JobState.WAITING_FOR_SERVICE):
                if all(dependency.state == JobState.SUCCEEDED for dependency in job.depends_on):
                    if self._can_dispatch(job.stage):
                        self._dispatch_admitted(session, mous, job, admission, now)
                    elif job.state == JobState.PLANNED:
                        reason = f"the {job.stage.value} service is not deployed yet"
                        self._set_job_state(job, JobState.WAITING_FOR_SERVICE, reason, now)
            elif job.state == JobState.RETRY_WAIT and job.not_before is not None and job.not_before <= now:
                self._dispatch_admitted(session, mous, job, admission, now)
            elif job.state == JobState.RUNNING:
                attempt = job.current_attempt()
                limit = self._silence_limit(job.stage)
                started = attempt.started_at if attempt is not None else None
                if attempt is not None and started is not None and started + limit <= now:
                    message = (
                        f"worker {attempt.worker} started the job at {started:%Y-%m-%d %H:%M:%S} UTC and has "
                        f"not reported for {limit.total_seconds():.0f} s (the stage's time limit + grace): "
                        "the worker probably died and the broker gave up on the job message"
                    )
                    self._fail_attempt(session, mous, jobs, job, ErrorClass.TIMEOUT, message, "", now)

    def _dispatch_admitted(
        self, session: Session, mous: Mous, job: Job, admission: "_BulkAdmission | None", now: datetime
    ) -> None:
        if admission is None or job.request_version_pk is not None or admission.admit(job.stage):
            self._dispatch(session, mous, job, now)
            return
        reason = (
            f"behind users' work: {admission.limit} jobs of campaigns already wait in the {job.stage.value} queue; "
            "dispatched when one of them starts"
        )
        held = JobState.PLANNED if job.state == JobState.WAITING_FOR_SERVICE else job.state
        if (job.state, job.reason) != (held, reason):
            self._set_job_state(job, held, reason, now)

    def _can_dispatch(self, stage: Stage) -> bool:
        """The stage's service is deployed, and the coordinator knows how to write its job message."""
        return self.settings.stage_enabled(stage) and stage in self.message_builders

    def _dispatch(self, session: Session, mous: Mous, job: Job, now: datetime) -> None:
        job.attempt += 1
        job.not_before = None
        job.attempts.append(Attempt(attempt=job.attempt, dispatched_at=now, deliveries=0))
        job.attempts[-1].memory_class = job.memory_class
        of_max = f"{job.attempt} of {self.settings.max_attempts}"
        workers = "" if len(self.memory_classes.deployed(job.stage)) == 1 else f", {job.memory_class.value} workers"
        reason = f"queued for the {job.stage.value} service (attempt {of_max}{workers})"
        self._set_job_state(job, JobState.DISPATCHED, reason, now)
        message = self.message_builders[job.stage](mous, job, self.settings.time_limit_s(job.stage), now)
        session.add(
            OutboxMessage(
                exchange=topology.JOBS_EXCHANGE,
                routing_key=topology.job_routing_key(job.stage, job.memory_class),
                message_id=job_message_id(mous.id, job.job_id, job.attempt),
                body=message.model_dump_json(),
                created_at=now,
            )
        )
        DISPATCHES.labels(job.stage.value).inc()

    # -- events ----------------------------------------------------------------------------------------

    def apply_event(self, event: JobEvent) -> EventOutcome:
        """Apply one completion event (idempotent). Raises UnknownJob for a job that was never planned."""
        now = self.clock()
        if event.at.tzinfo is None:  # a worker that sent a time without a zone means UTC
            event = event.model_copy(update={"at": event.at.replace(tzinfo=UTC)})
        key = event_key(event)
        with self.database.transaction() as session:
            mous = self._lock_mous(session, event.mous_id)
            if mous is None:
                raise UnknownJob(
                    f"event for job {event.job_id} of MOUS {event.mous_id}, which was never submitted"
                )
            # Checked under the MOUS lock: a duplicate racing this one waits for it, then sees its key.
            if session.get(ProcessedEvent, key) is not None:
                outcome = EventOutcome(False, "seen before")
            else:
                outcome = self._apply_new_event(session, mous, event, now)
                session.add(
                    ProcessedEvent(event_key=key, mous_id=mous.id, outcome=outcome.detail, processed_at=now)
                )
        EVENTS.labels(event.event_type, "applied" if outcome.applied else "ignored").inc()
        log.log(
            logging.INFO if outcome.applied else logging.WARNING,
            "%s %s of %s attempt %d: %s",
            "applied" if outcome.applied else "ignored", event.event_type, event.job_id, event.attempt,
            outcome.detail,
        )
        return outcome

    def _apply_new_event(self, session: Session, mous: Mous, event: JobEvent, now: datetime) -> EventOutcome:
        jobs = self._current_jobs(session, mous)
        job = next((candidate for candidate in jobs if candidate.job_id == event.job_id), None)
        if job is None:
            earlier = session.scalar(select(Job).where(Job.mous_id == mous.id, Job.job_id == event.job_id))
            if earlier is None:
                raise UnknownJob(f"MOUS {mous.id} has no job {event.job_id}")
            if earlier.request_version_pk is not None:
                return self._apply_request_event(session, mous, earlier.request_version_pk, event, now)
            return EventOutcome(False, f"the job belongs to run {earlier.run}, superseded by run {mous.run}")
        outcome, jobs = self._apply_to_job(session, mous, jobs, job, event, now)
        if outcome.applied:
            self._advance(session, mous, jobs, now)
        return outcome

    def _apply_to_job(
        self, session: Session, mous: Mous, jobs: list[Job], job: Job, event: JobEvent, now: datetime
    ) -> tuple[EventOutcome, list[Job]]:
        """The event's effect on its job (of the run or of a request version), and the jobs beside it
        (more of them once ingest has described the data); the caller advances them."""
        ignored = self._stale(job, event)
        if ignored is not None:
            return EventOutcome(False, ignored), jobs
        attempt = job.current_attempt()
        assert attempt is not None  # _stale checked it

        if isinstance(event, JobStarted):
            attempt.deliveries += 1
            attempt.worker = event.worker
            attempt.started_at = event.at
            delivery = f", delivery {attempt.deliveries}" if attempt.deliveries > 1 else ""
            of_max = f"{job.attempt} of {self.settings.max_attempts}"
            reason = f"running on {event.worker} (attempt {of_max}{delivery})"
            self._set_job_state(job, JobState.RUNNING, reason, now)
            detail = f"running on {event.worker}"
        elif isinstance(event, JobSucceeded):
            jobs = self._succeed(session, mous, jobs, job, attempt, event, now)
            detail = "succeeded"
        elif isinstance(event, JobFailed):
            attempt.worker = attempt.worker or event.worker
            attempt.started_at = attempt.started_at or event.at - timedelta(seconds=event.duration_s)
            self._record_ledger(attempt, event)
            if event.log is not None:
                self._record_objects(session, mous.id, job.pk, [event.log], now)
            detail = self._fail_attempt(
                session, mous, jobs, job, event.error_class, event.message, event.detail, now,
                ended_at=event.at,
            )
        return EventOutcome(True, detail), jobs

    @staticmethod
    def _stale(job: Job, event: JobEvent) -> str | None:
        """Why the event cannot change the job, None when it can."""
        if job.state.terminal:
            return f"the job is already {job.state.value}"
        attempt = job.current_attempt()
        if attempt is None or event.attempt != job.attempt:
            return f"attempt {event.attempt} is stale: the job is on {job.attempt}"
        if attempt.ended_at is not None:
            return f"attempt {event.attempt} already ended ({attempt.outcome})"
        if event.stage != job.stage:
            return f"the event names stage {event.stage.value}; the job's is {job.stage}"
        return None

    def _succeed(
        self, session: Session, mous: Mous, jobs: list[Job], job: Job, attempt: Attempt, event: JobSucceeded,
        now: datetime,
    ) -> list[Job]:
        """Record the result and the outputs; returns the run's jobs (more of them after ingest)."""
        attempt.worker = attempt.worker or event.worker
        attempt.started_at = attempt.started_at or event.at - timedelta(seconds=event.duration_s)
        attempt.ended_at = event.at
        attempt.outcome = JobState.SUCCEEDED
        self._record_ledger(attempt, event)
        job.result = {
            "duration_s": event.duration_s,
            "result": event.result.model_dump(mode="json"),
            "qa": [score.model_dump(mode="json") for score in event.qa],
            "casa_calls": [call.model_dump(mode="json") for call in event.casa_calls],
            "log": event.log.model_dump(mode="json") if event.log else None,
            "outputs": [ref.model_dump(mode="json") for ref in event.outputs],
        }
        reason = f"succeeded in {event.duration_s:.1f} s on {event.worker}"
        self._set_job_state(job, JobState.SUCCEEDED, reason, now)
        objects = list(event.outputs) + ([event.log] if event.log else [])
        if isinstance(event.result, IngestResult):
            objects += [*event.result.measurement_sets, event.result.report]
        self._record_objects(session, mous.id, job.pk, objects, now)
        if job.stage == Stage.INGEST and isinstance(event.result, IngestResult):
            return self._expand(session, mous, jobs, event.result.metadata, now)
        return jobs

    def _expand(
        self, session: Session, mous: Mous, jobs: list[Job], metadata: MousMetadata, now: datetime
    ) -> list[Job]:
        """Ingest described the data: plan the rest of the run's jobs."""
        mous.observation = metadata.model_dump(mode="json")
        graph = plan_processing(
            mous.id, mous.run, metadata, cube_chunk_channels=self.settings.cube_chunk_channels, recipe=mous.recipe
        )
        expanded = self._add_planned_jobs(session, mous, graph, jobs, now)
        log.info("MOUS %s: planned %d jobs after ingest", mous.id, len(expanded) - len(jobs))
        return expanded

    def _fail_attempt(
        self,
        session: Session,
        mous: Mous,
        jobs: list[Job],
        job: Job,
        error_class: ErrorClass,
        message: str,
        detail: str,
        now: datetime,
        *,
        ended_at: datetime | None = None,
    ) -> str:
        """End the current attempt as failed and decide: retry after a backoff, or fail the job for good."""
        attempt = job.current_attempt()
        if attempt is not None:
            attempt.ended_at = ended_at or now
            attempt.outcome = JobState.FAILED
            attempt.error_class = error_class
            attempt.error_message = message
            attempt.detail = detail or attempt.detail
        larger = (
            self.memory_classes.after_out_of_memory(job.stage, job.memory_class)
            if error_class is ErrorClass.OUT_OF_MEMORY else None
        )
        decision = self.retry_policy.decide(
            error_class, job.attempt, self.rng, larger_class=larger.value if larger is not None else None
        )
        if decision.retry:
            job.not_before = now + decision.delay
            where = f" of {self.settings.max_attempts}"
            if larger is not None:
                ran_on = job.memory_class
                job.memory_class = larger
                job.estimated_memory_mb = max(
                    job.estimated_memory_mb or 0.0,
                    (attempt.peak_memory_mb if attempt is not None else None) or 0.0,
                    float(self.memory_classes.memory_mb.get(ran_on, 0)),
                )
                where = f" on a {larger.value} worker ({self.memory_classes.memory_mb[larger]} MB)"
            reason = (
                f"attempt {job.attempt} failed ({error_class.value}: {message}); attempt {job.attempt + 1}{where}"
                " is due at {job.not_before:%H:%M:%S} UTC"
            )
            self._set_job_state(job, JobState.RETRY_WAIT, reason, now)
            return f"{error_class.value}: retry in {decision.delay.total_seconds():.1f} s"
        if error_class in (ErrorClass.STORAGE, ErrorClass.TIMEOUT, ErrorClass.CASA_CRASH):
            how = f"failed {job.attempt} times (the last time with {error_class.value})"
        else:
            how = f"failed on attempt {job.attempt} with {error_class.value} (another attempt cannot help)"
        what_next = (
            "Once the cause is fixed, submit the MOUS again with rerun=true."
            if job.request_version_pk is None
            else "Run the request again (a new version) once the cause is fixed, or ask an operator."
        )
        reason = f"Job {job.job_id} ({job.stage.value}) {how}: {message.rstrip('.')}. {what_next}"
        self._set_job_state(job, JobState.FAILED, reason, now)
        self._cancel_dependents(jobs, job, now)
        return f"{error_class.value}: failed for good ({decision.why})"

    def _cancel_dependents(self, jobs: Sequence[Job], failed: Job, now: datetime) -> None:
        dependents: dict[int, list[Job]] = {}
        for job in jobs:
            for dependency in job.depends_on:
                dependents.setdefault(dependency.pk, []).append(job)
        queue = deque([failed])
        while queue:
            for dependent in dependents.get(queue.popleft().pk, []):
                if not dependent.state.terminal:
                    reason = f"depends on failed job {failed.job_id}"
                    self._set_job_state(dependent, JobState.CANCELLED, reason, now)
                    queue.append(dependent)

    # -- imaging requests ------------------------------------------------------------------------------

    def start_requests(self, mous_id: str) -> None:
        """Plan and dispatch the queued versions of the MOUS's requests (the API calls it after accepting
        one; the reconcile loop catches any it missed)."""
        self.reconcile_mous(mous_id)

    def cancel_request(self, request_id: str, reason: str) -> list[int]:
        """Cancel the request's unfinished versions: their jobs are cancelled, running ones told to stop.
        Returns the versions cancelled (none when every version had ended)."""
        now = self.clock()
        with self.database.transaction() as session:
            mous_id = session.scalar(select(ImagingRequest.mous_id).where(ImagingRequest.id == request_id))
            if mous_id is None:
                raise UnknownRequest(f"no request {request_id}")
            mous = self._lock_mous(session, mous_id)
            assert mous is not None  # a request's MOUS is deleted with it
            request = session.scalars(
                select(ImagingRequest).where(ImagingRequest.id == request_id).options(WITH_VERSIONS)
            ).one()
            cancelled = []
            for version in request.versions:
                if version.state.terminal:
                    continue
                jobs = self._version_jobs(session, version)
                live = [job for job in jobs if not job.state.terminal]
                in_flight = [job.job_id for job in live if job.state in IN_FLIGHT]
                for job in live:
                    self._end_open_attempt(job, JobState.CANCELLED, now)
                    self._set_job_state(job, JobState.CANCELLED, reason, now)
                if in_flight:
                    self._enqueue_cancel(session, mous, in_flight, reason, now)
                version.state, version.reason, version.updated_at = RequestState.CANCELLED, reason, now
                version.ended_at = now
                version.passed_qa = False
                cancelled.append(version.version)
                self._version_ended(session, request, version, now)
            log.info("request %s: versions %s cancelled", request_id, cancelled)
            return cancelled

    def _advance_requests(self, session: Session, mous: Mous, now: datetime) -> None:
        """Plan the MOUS's queued versions that have no jobs yet, then move every unfinished version's jobs."""
        requests = session.scalars(
            select(ImagingRequest)
            .where(ImagingRequest.mous_id == mous.id)
            .where(ImagingRequest.versions.any(RequestVersion.state.in_(ACTIVE_REQUEST_STATES)))
            .options(WITH_VERSIONS)
        )
        for request in requests:
            for version in request.versions:
                if version.state.terminal:
                    continue
                jobs = self._version_jobs(session, version)
                if not jobs and mous.state is not MousState.COMPLETED:
                    # Submitted again between the request's acceptance and its planning: the data it was
                    # checked against are being replaced.
                    version.state, version.passed_qa, version.ended_at = RequestState.FAILED, False, now
                    version.reason = (
                        f"MOUS {mous.id} was submitted again (run {mous.run}, {mous.state.value}) before this "
                        "version could start; run the request again once the MOUS has completed"
                    )
                    version.updated_at = now
                    self._version_ended(session, request, version, now)
                    continue
                if not jobs:
                    jobs = self._plan_version(session, mous, request, version, now)
                self._move_version(session, mous, request, version, jobs, now)

    def _plan_version(
        self, session: Session, mous: Mous, request: ImagingRequest, version: RequestVersion, now: datetime
    ) -> list[Job]:
        parameters = RequestCreate.model_validate(version.parameters)
        metadata = MousMetadata.model_validate(mous.observation)
        images, _durations = run_images(session, mous)
        graph = plan_request_version(
            mous.id, mous.run, metadata, request.id, version.version, parameters, OverridesFromRun(parameters, images),
            mous.recipe,
        )
        run_jobs = self._current_jobs(session, mous)
        jobs = self._add_planned_jobs(session, mous, graph, run_jobs, now, version)[len(run_jobs):]
        log.info("request %s version %d: planned %d jobs on run %d of %s",
                 request.id, version.version, len(jobs), mous.run, mous.id)
        return jobs

    def _move_version(
        self, session: Session, mous: Mous, request: ImagingRequest, version: RequestVersion, jobs: list[Job],
        now: datetime,
    ) -> None:
        self._move_jobs(session, mous, jobs, now)
        ended = derive_version(
            version, jobs, self.settings.request_qa_max_rms_ratio, self.settings.request_qa_max_beam_ratio, now
        )
        if ended:
            self._version_ended(session, request, version, now)

    def _version_ended(
        self, session: Session, request: ImagingRequest, version: RequestVersion, now: datetime
    ) -> None:
        """Only one version of a request passes QA: the latest that did. Then tell whoever asked."""
        if version.passed_qa:
            for other in request.versions:
                if other is not version and other.passed_qa:
                    other.passed_qa = False
                    other.reason += f" (superseded: version {version.version} passed QA)"
                    other.updated_at = now
        session.flush()
        session.add_all(notifications_for(view(request), version.version, self.settings, now, version_pk=version.pk))
        log.info("request %s version %d %s: %s", request.id, version.version, version.state.value, version.reason)

    def _apply_request_event(
        self, session: Session, mous: Mous, version_pk: int, event: JobEvent, now: datetime
    ) -> EventOutcome:
        version = session.get(RequestVersion, version_pk)
        assert version is not None  # the job's foreign key
        jobs = self._version_jobs(session, version)
        job = next(job for job in jobs if job.job_id == event.job_id)
        if version.state == RequestState.CANCELLED:
            # A worker reports after the cancel: what it stored since is removed on the next clean-up.
            version.outputs_removed_at = None
            version.updated_at = now
        outcome, jobs = self._apply_to_job(session, mous, jobs, job, event, now)
        if outcome.applied:
            self._move_version(session, mous, version.request, version, jobs, now)
        return outcome

    def _version_jobs(self, session: Session, version: RequestVersion) -> list[Job]:
        query = (
            select(Job)
            .where(Job.request_version_pk == version.pk)
            .order_by(Job.pk)
            .options(selectinload(Job.depends_on), selectinload(Job.attempts))
        )
        return list(session.scalars(query))

    # -- pieces ----------------------------------------------------------------------------------------

    def _lock_mous(self, session: Session, mous_id: str) -> Mous | None:
        return session.scalar(select(Mous).where(Mous.id == mous_id).with_for_update())

    def _current_jobs(self, session: Session, mous: Mous) -> list[Job]:
        """The jobs of the MOUS's current run, in planning order, with their edges and attempts."""
        query = (
            select(Job)
            .where(Job.mous_id == mous.id, Job.run == mous.run, Job.request_version_pk.is_(None))
            .order_by(Job.pk)
            .options(selectinload(Job.depends_on), selectinload(Job.attempts))
        )
        return list(session.scalars(query))

    def _add_planned_jobs(
        self, session: Session, mous: Mous, graph: JobGraph, existing: list[Job], now: datetime,
        version: RequestVersion | None = None,
    ) -> list[Job]:
        """Insert the graph's jobs that are not there yet; returns every job of the run in planning order."""
        by_id = {job.job_id: job for job in existing}
        jobs = list(existing)
        for planned in graph.jobs:
            if planned.job_id in by_id:
                continue
            job = Job(
                mous_id=mous.id, job_id=planned.job_id, run=mous.run, stage=planned.stage, kind=planned.kind,
                target=planned.target, spw_id=planned.spw_id, state=JobState.PLANNED,
                reason="waits for the jobs it depends on", attempt=0, params=dict(planned.params),
                request_version_pk=version.pk if version is not None else None, created_at=now, updated_at=now,
            )
            job.depends_on = [by_id[dependency] for dependency in planned.depends_on]
            job.attempts = []
            session.add(job)
            by_id[planned.job_id] = job
            jobs.append(job)
        assign_memory_classes(session, mous.id, mous.run, jobs[len(existing):], self.memory_classes)
        session.flush()
        return jobs

    def _record_objects(
        self, session: Session, mous_id: str, job_pk: int | None, refs: Sequence[ObjectRef], now: datetime
    ) -> None:
        """Remember objects with their checksums; a key written again (a retried job) is updated."""
        for ref in {ref.key: ref for ref in refs}.values():
            session.merge(
                StoredObject(
                    key=ref.key, sha256=ref.sha256, size=ref.size, content_type=ref.content_type,
                    kind=object_kind(mous_id, ref.key), mous_id=mous_id, job_pk=job_pk, recorded_at=now,
                )
            )

    def _enqueue_cancel(
        self, session: Session, mous: Mous, job_ids: list[str], reason: str, now: datetime
    ) -> None:
        message = CancelJobs(mous_id=mous.id, job_ids=job_ids, reason=reason)
        session.add(
            OutboxMessage(
                exchange=topology.CONTROL_EXCHANGE,
                routing_key="",
                message_id=f"{mous_key(mous.id)}:r{mous.run}:cancel:{now.isoformat()}",
                body=message.model_dump_json(),
                created_at=now,
            )
        )

    @staticmethod
    def _record_ledger(attempt: Attempt, event: JobSucceeded | JobFailed) -> None:
        attempt.peak_memory_mb = event.peak_memory_mb
        attempt.software_version = event.software_version[:64]
        attempt.log_key = event.log.key if event.log is not None else None

    @staticmethod
    def _end_open_attempt(job: Job, outcome: JobState, now: datetime) -> None:
        attempt = job.current_attempt()
        if attempt is not None and attempt.ended_at is None:
            attempt.ended_at = now
            attempt.outcome = outcome

    @staticmethod
    def _set_job_state(job: Job, state: JobState, reason: str, now: datetime) -> None:
        job.state = state
        job.reason = reason
        job.updated_at = now

    @staticmethod
    def _derive(mous: Mous, jobs: Sequence[Job], now: datetime) -> None:
        statuses = [JobStatus(job.job_id, job.stage, job.state, job.reason) for job in jobs]
        state, reason = derive_mous_state(statuses, cancelled=mous.cancelled_at is not None)
        if (state, reason) != (mous.state, mous.reason):
            mous.state = state
            mous.reason = reason
            mous.updated_at = now
