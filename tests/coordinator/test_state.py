"""The state machine on a real database (SQLite and PostgreSQL): submit, dispatch, events, retries,
re-runs, cancellation, waiting for services, and the MOUS state that follows."""

import random
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import pytest
from aperture_contracts import topology
from aperture_contracts.enums import ErrorClass, JobState, MousState, Stage
from aperture_contracts.events import CancelJobs
from aperture_contracts.jobs import IngestJob, JobEnvelope
from aperture_contracts.storage import ObjectRef
from aperture_coordinator.db import Database
from aperture_coordinator.job_messages import MESSAGE_BUILDERS, products_prefix, work_prefix
from aperture_coordinator.models import Job, Mous, StoredObject
from aperture_coordinator.settings import CoordinatorSettings
from aperture_coordinator.state import (
    Coordinator,
    NothingToCancel,
    Submission,
    SubmitOutcome,
    UnknownJob,
    UnknownMous,
)

from .conftest import FakeClock
from .factories import (
    MOUS_ID,
    failed,
    grid_metadata,
    ingest_succeeded,
    job_states,
    load_job,
    load_mous,
    object_ref,
    outbox,
    run_wave,
    started,
)

PACKAGE = object_ref("mous/uid___A001_X2fa_X2dd/input/uid___A001_X2fa_X2dd.ms.tar", b"package bytes")
INGEST = "r1.ingest"


def submit(coordinator: Coordinator, *, rerun: bool = False, package: ObjectRef = PACKAGE) -> SubmitOutcome:
    return coordinator.submit(Submission(MOUS_ID, package, "uid___A001_X2fa_X2dd.ms.tar", rerun=rerun))


def ingest_job_message(body: str) -> IngestJob:
    return IngestJob.model_validate_json(body)


# -- submitting -------------------------------------------------------------------------------------------


def test_submitting_creates_the_mous_and_dispatches_its_ingest_job(
    coordinator: Coordinator, database: Database, clock: FakeClock
) -> None:
    outcome = submit(coordinator)

    assert outcome == SubmitOutcome(MOUS_ID, 1, created=True)
    mous = load_mous(database)
    assert (mous.state, mous.reason, mous.run) == (MousState.RECEIVED, "queued for the ingest service", 1)
    job = load_job(database, INGEST)
    assert (job.state, job.attempt, job.reason) == (
        JobState.DISPATCHED, 1, "queued for the ingest service (attempt 1 of 3)"
    )
    assert [(a.attempt, a.dispatched_at, a.deliveries, a.ended_at) for a in job.attempts] == [
        (1, clock.now, 0, None)
    ]
    [row] = outbox(database)
    assert (row.exchange, row.routing_key, row.message_id, row.published_at) == (
        topology.JOBS_EXCHANGE, "ingest", "uid___A001_X2fa_X2dd:r1.ingest:1", None
    )
    message = ingest_job_message(row.body)
    assert message.package == PACKAGE
    assert message.output_prefix == "mous/uid___A001_X2fa_X2dd/work/r1.ingest/"
    assert message.products_prefix == "mous/uid___A001_X2fa_X2dd/products/"
    assert (message.mous_id, message.job_id, message.attempt) == (MOUS_ID, INGEST, 1)
    assert message.time_limit_s == 3600
    with database.transaction() as session:
        stored = session.get(StoredObject, PACKAGE.key)
        assert stored is not None
        assert (stored.sha256, stored.size, stored.kind, stored.mous_id) == (
            PACKAGE.sha256, PACKAGE.size, "input", MOUS_ID
        )


def test_submitting_an_existing_mous_again_returns_it_unchanged(
    coordinator: Coordinator, database: Database
) -> None:
    submit(coordinator)
    again = submit(coordinator, package=object_ref(PACKAGE.key, b"other bytes"))
    assert again == SubmitOutcome(MOUS_ID, 1, created=False)
    assert len(outbox(database)) == 1
    assert list(job_states(database)) == [INGEST]
    assert load_mous(database).package_sha256 == PACKAGE.sha256


def test_concurrent_first_submissions_of_one_mous_create_it_once(
    coordinator: Coordinator, database: Database
) -> None:
    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(lambda _: submit(coordinator), range(4)))
    assert sorted(outcome.created for outcome in outcomes) == [False, False, False, True]
    assert list(job_states(database)) == [INGEST]
    assert len(outbox(database)) == 1


# -- events -----------------------------------------------------------------------------------------------


def test_a_started_event_marks_the_job_running_and_the_mous_ingesting(
    coordinator: Coordinator, database: Database, clock: FakeClock
) -> None:
    submit(coordinator)
    outcome = coordinator.apply_event(started(INGEST, at=clock.advance(2)))

    assert outcome.applied
    job = load_job(database, INGEST)
    assert job.state == JobState.RUNNING
    assert job.reason == "running on ingest-a:101 (attempt 1 of 3)"
    [attempt] = job.attempts
    assert (attempt.worker, attempt.started_at, attempt.deliveries) == ("ingest-a:101", clock.now, 1)
    mous = load_mous(database)
    assert (mous.state, mous.reason) == (MousState.INGESTING, "ingest is checking and describing the package")


def test_a_redelivered_job_counts_its_deliveries(
    coordinator: Coordinator, database: Database, clock: FakeClock
) -> None:
    submit(coordinator)
    coordinator.apply_event(started(INGEST, at=clock.advance(1), worker="ingest-a:101"))
    coordinator.apply_event(started(INGEST, at=clock.advance(60), worker="ingest-b:202"))

    job = load_job(database, INGEST)
    [attempt] = job.attempts
    assert (attempt.deliveries, attempt.worker, attempt.started_at) == (2, "ingest-b:202", clock.now)
    assert job.reason == "running on ingest-b:202 (attempt 1 of 3, delivery 2)"


def test_an_event_delivered_twice_changes_state_once(
    coordinator: Coordinator, database: Database, clock: FakeClock
) -> None:
    submit(coordinator)
    start = started(INGEST, at=clock.advance(1))
    assert coordinator.apply_event(start).applied
    repeated = coordinator.apply_event(start)
    assert (repeated.applied, repeated.detail) == (False, "seen before")
    assert load_job(database, INGEST).attempts[0].deliveries == 1

    success = ingest_succeeded(at=clock.advance(30), metadata=grid_metadata(1, 1))
    assert coordinator.apply_event(success).applied
    jobs_after_first = job_states(database)
    assert not coordinator.apply_event(success).applied
    assert job_states(database) == jobs_after_first


def test_concurrent_deliveries_of_one_event_apply_it_once(
    coordinator: Coordinator, database: Database, clock: FakeClock
) -> None:
    submit(coordinator)
    start = started(INGEST, at=clock.advance(1))
    with ThreadPoolExecutor(6) as pool:
        outcomes = list(pool.map(lambda _: coordinator.apply_event(start), range(6)))
    assert sorted(outcome.applied for outcome in outcomes) == [False] * 5 + [True]
    assert load_job(database, INGEST).attempts[0].deliveries == 1


def test_ingest_success_records_metadata_and_outputs_and_plans_the_rest(
    coordinator: Coordinator, database: Database, clock: FakeClock
) -> None:
    submit(coordinator)
    coordinator.apply_event(started(INGEST, at=clock.advance(1)))
    success = ingest_succeeded(at=clock.advance(12), metadata=grid_metadata(2, 2))
    assert coordinator.apply_event(success).applied

    states = job_states(database)
    assert len(states) == 3 + 7 * 2 * 2 + 4 * 2
    assert states[INGEST] == JobState.SUCCEEDED
    assert states["r1.calibration"] == JobState.WAITING_FOR_SERVICE
    assert {state for job_id, state in states.items() if job_id not in (INGEST, "r1.calibration")} == {
        JobState.PLANNED
    }
    assert load_job(database, "r1.calibration").reason == "the calibration service is not deployed yet"
    mous = load_mous(database)
    assert mous.state == MousState.WAITING_FOR_SERVICE
    assert mous.reason == (
        "everything that can run is done (1 of 39 jobs): the calibration service is not deployed yet "
        "(1 job waits for it, 37 more come after it)"
    )
    assert mous.observation == grid_metadata(2, 2).model_dump(mode="json")
    ingest = load_job(database, INGEST)
    assert ingest.result is not None
    assert ingest.result["qa"][0]["score"] == 0.95
    assert ingest.attempts[0].outcome == JobState.SUCCEEDED
    with database.transaction() as session:
        recorded = {row.key: (row.sha256, row.kind) for row in session.query(StoredObject)}
    for ref in [*success.outputs, success.log]:
        assert ref is not None
        assert recorded[ref.key][0] == ref.sha256
    assert recorded["mous/uid___A001_X2fa_X2dd/products/ingest-report.json"][1] == "product"
    assert recorded["mous/uid___A001_X2fa_X2dd/work/r1.ingest/logs/attempt-1.casa.log"][1] == "log"


def test_a_transient_failure_is_retried_as_a_new_attempt_after_a_backoff(
    coordinator: Coordinator, database: Database, clock: FakeClock
) -> None:
    submit(coordinator)
    coordinator.apply_event(started(INGEST, at=clock.advance(1)))
    failed_at = clock.advance(5)
    outcome = coordinator.apply_event(failed(INGEST, ErrorClass.STORAGE, at=failed_at))

    assert outcome.applied
    job = load_job(database, INGEST)
    assert job.state == JobState.RETRY_WAIT
    assert job.not_before is not None
    assert failed_at + timedelta(seconds=4) <= job.not_before <= failed_at + timedelta(seconds=6)
    assert job.reason.startswith("attempt 1 failed (storage: the object store is unreachable); attempt 2")
    mous = load_mous(database)
    assert (mous.state, mous.reason) == (MousState.INGESTING, job.reason)

    coordinator.reconcile()  # the backoff is not over
    assert len(outbox(database)) == 1
    clock.advance(6.1)
    assert coordinator.reconcile() == 1

    job = load_job(database, INGEST)
    assert (job.state, job.attempt) == (JobState.DISPATCHED, 2)
    first, second = job.attempts
    assert (first.outcome, first.error_class, first.error_message) == (
        JobState.FAILED, ErrorClass.STORAGE, "the object store is unreachable"
    )
    assert (second.attempt, second.ended_at, second.dispatched_at) == (2, None, clock.now)
    retry = outbox(database)[-1]
    assert retry.message_id == "uid___A001_X2fa_X2dd:r1.ingest:2"
    assert ingest_job_message(retry.body).attempt == 2
    assert load_mous(database).state == MousState.RECEIVED


def test_the_backoff_grows_with_each_attempt(
    coordinator: Coordinator, database: Database, clock: FakeClock
) -> None:
    submit(coordinator)
    coordinator.apply_event(failed(INGEST, ErrorClass.TIMEOUT, at=clock.advance(1)))
    clock.advance(10)
    coordinator.reconcile()
    second_failure = clock.advance(1)
    coordinator.apply_event(failed(INGEST, ErrorClass.TIMEOUT, attempt=2, at=second_failure))
    not_before = load_job(database, INGEST).not_before
    assert not_before is not None
    assert second_failure + timedelta(seconds=8) <= not_before <= second_failure + timedelta(seconds=12)


def test_events_of_a_stale_attempt_are_ignored(
    coordinator: Coordinator, database: Database, clock: FakeClock
) -> None:
    submit(coordinator)
    coordinator.apply_event(failed(INGEST, ErrorClass.CASA_CRASH, at=clock.advance(1)))
    clock.advance(10)
    coordinator.reconcile()

    late_start = coordinator.apply_event(started(INGEST, attempt=1, at=clock.advance(1), worker="slow:1"))
    late_success = coordinator.apply_event(
        ingest_succeeded(attempt=1, at=clock.advance(1), metadata=grid_metadata(1, 1))
    )
    assert not late_start.applied and not late_success.applied
    assert late_success.detail == "attempt 1 is stale: the job is on 2"
    job = load_job(database, INGEST)
    assert (job.state, job.attempt) == (JobState.DISPATCHED, 2)
    assert list(job_states(database)) == [INGEST]


def test_transient_failures_fail_the_job_after_the_last_attempt(
    coordinator: Coordinator, database: Database, clock: FakeClock
) -> None:
    submit(coordinator)
    for attempt in (1, 2, 3):
        coordinator.apply_event(failed(INGEST, ErrorClass.STORAGE, attempt=attempt, at=clock.advance(1)))
        clock.advance(60)
        coordinator.reconcile()

    job = load_job(database, INGEST)
    assert (job.state, job.attempt, len(job.attempts)) == (JobState.FAILED, 3, 3)
    assert len(outbox(database)) == 3
    mous = load_mous(database)
    assert mous.state == MousState.FAILED
    assert mous.reason == (
        "Job r1.ingest (ingest) failed 3 times (the last time with storage): the object store is "
        "unreachable. Once the cause is fixed, submit the MOUS again with rerun=true."
    )


def test_a_permanent_failure_fails_the_mous_at_once_saying_what_to_do(
    coordinator: Coordinator, database: Database, clock: FakeClock
) -> None:
    submit(coordinator)
    message = "the package is not a tar archive: package the MS with `tar cf` and submit it again"
    coordinator.apply_event(failed(INGEST, ErrorClass.BAD_INPUT, at=clock.advance(1), message=message))

    job = load_job(database, INGEST)
    assert (job.state, job.not_before) == (JobState.FAILED, None)
    mous = load_mous(database)
    assert mous.state == MousState.FAILED
    assert mous.reason == (
        "Job r1.ingest (ingest) failed on attempt 1 with bad_input (another attempt cannot help): "
        f"{message}. Once the cause is fixed, submit the MOUS again with rerun=true."
    )
    assert coordinator.reconcile() == 0
    assert len(outbox(database)) == 1


def test_events_for_a_finished_job_are_ignored(
    coordinator: Coordinator, database: Database, clock: FakeClock
) -> None:
    submit(coordinator)
    coordinator.apply_event(ingest_succeeded(at=clock.advance(1), metadata=grid_metadata(1, 1)))
    late = coordinator.apply_event(failed(INGEST, ErrorClass.STORAGE, at=clock.advance(1)))
    assert (late.applied, late.detail) == (False, "the job is already succeeded")
    assert load_job(database, INGEST).state == JobState.SUCCEEDED


def test_an_event_for_a_job_never_planned_is_refused(coordinator: Coordinator, clock: FakeClock) -> None:
    with pytest.raises(UnknownJob, match="never submitted"):
        coordinator.apply_event(started(INGEST, at=clock.now))
    submit(coordinator)
    with pytest.raises(UnknownJob, match="has no job r9.ingest"):
        coordinator.apply_event(started("r9.ingest", at=clock.now))


def test_a_running_job_whose_worker_went_silent_fails_its_attempt_as_a_timeout(
    coordinator: Coordinator, database: Database, clock: FakeClock
) -> None:
    submit(coordinator)
    coordinator.apply_event(started(INGEST, at=clock.advance(1)))
    clock.advance(3600 + 600 - 1)
    coordinator.reconcile()
    assert load_job(database, INGEST).state == JobState.RUNNING

    clock.advance(2)
    assert coordinator.reconcile() == 1
    job = load_job(database, INGEST)
    assert job.state == JobState.RETRY_WAIT
    assert job.attempts[0].error_class == ErrorClass.TIMEOUT
    assert "has not reported for 4200 s" in (job.attempts[0].error_message or "")


# -- re-runs and cancellation ------------------------------------------------------------------------------


def test_a_rerun_supersedes_the_old_run_and_plans_anew(
    coordinator: Coordinator, database: Database, clock: FakeClock
) -> None:
    submit(coordinator)
    coordinator.apply_event(started(INGEST, at=clock.advance(1)))
    new_package = object_ref(PACKAGE.key, b"fixed package")
    outcome = submit(coordinator, rerun=True, package=new_package)

    assert outcome == SubmitOutcome(MOUS_ID, 2, created=True)
    assert job_states(database) == {INGEST: JobState.SUPERSEDED, "r2.ingest": JobState.DISPATCHED}
    assert load_job(database, INGEST).reason == "superseded by run 2"
    cancel_row, job_row = outbox(database)[1:]
    assert (cancel_row.exchange, cancel_row.routing_key) == (topology.CONTROL_EXCHANGE, "")
    cancel = CancelJobs.model_validate_json(cancel_row.body)
    assert (cancel.mous_id, cancel.job_ids, cancel.reason) == (MOUS_ID, [INGEST], "superseded by run 2")
    message = ingest_job_message(job_row.body)
    assert (message.job_id, message.package) == ("r2.ingest", new_package)
    mous = load_mous(database)
    assert (mous.run, mous.state, mous.package_sha256) == (2, MousState.RECEIVED, new_package.sha256)

    late = coordinator.apply_event(ingest_succeeded(at=clock.advance(1), metadata=grid_metadata(1, 1)))
    assert (late.applied, late.detail) == (False, "the job belongs to run 1, superseded by run 2")
    assert load_mous(database).observation is None


def test_a_rerun_of_a_failed_mous_starts_it_over(
    coordinator: Coordinator, database: Database, clock: FakeClock
) -> None:
    submit(coordinator)
    coordinator.apply_event(failed(INGEST, ErrorClass.BAD_INPUT, at=clock.advance(1), message="not a tar"))
    assert load_mous(database).state == MousState.FAILED
    submit(coordinator, rerun=True)
    mous = load_mous(database)
    assert (mous.run, mous.state) == (2, MousState.RECEIVED)
    assert job_states(database, run=2) == {"r2.ingest": JobState.DISPATCHED}
    assert job_states(database, run=1) == {INGEST: JobState.FAILED}
    assert len(outbox(database)) == 2  # nothing was in flight: no cancel message


def test_cancel_stops_every_unfinished_job_and_tells_the_workers(
    coordinator: Coordinator, database: Database, clock: FakeClock
) -> None:
    submit(coordinator)
    coordinator.apply_event(started(INGEST, at=clock.advance(1)))
    assert coordinator.cancel(MOUS_ID, "cancelled by request")

    job = load_job(database, INGEST)
    assert (job.state, job.reason) == (JobState.CANCELLED, "cancelled by request")
    assert (job.attempts[0].outcome, job.attempts[0].ended_at) == (JobState.CANCELLED, clock.now)
    mous = load_mous(database)
    assert mous.state == MousState.CANCELLED
    assert "rerun=true" in mous.reason
    rows = outbox(database)
    assert (rows[-1].exchange, rows[-1].routing_key) == (topology.CONTROL_EXCHANGE, "")
    assert CancelJobs.model_validate_json(rows[-1].body).job_ids == [INGEST]

    assert not coordinator.cancel(MOUS_ID)  # cancelled before: nothing changes
    assert len(outbox(database)) == len(rows)
    late = ingest_succeeded(at=clock.advance(1), metadata=grid_metadata(1, 1))
    assert not coordinator.apply_event(late).applied
    assert load_mous(database).state == MousState.CANCELLED


def test_cancelling_an_unknown_or_finished_mous_is_refused(
    coordinator: Coordinator, clock: FakeClock
) -> None:
    with pytest.raises(UnknownMous, match="no MOUS uid://A001/X2fa/X2dd has been submitted"):
        coordinator.cancel(MOUS_ID)
    submit(coordinator)
    coordinator.apply_event(failed(INGEST, ErrorClass.BAD_INPUT, at=clock.advance(1)))
    with pytest.raises(NothingToCancel, match="is already failed"):
        coordinator.cancel(MOUS_ID)


# -- services that are not deployed ----------------------------------------------------------------------


def test_jobs_of_a_stage_not_deployed_wait_for_it_and_go_once_it_is(
    database: Database, settings: CoordinatorSettings, clock: FakeClock
) -> None:
    without_ingest = Coordinator(database, settings.model_copy(update={"enabled_stages": []}), clock=clock)
    submit(without_ingest)
    job = load_job(database, INGEST)
    assert (job.state, job.reason) == (JobState.WAITING_FOR_SERVICE, "the ingest service is not deployed yet")
    mous = load_mous(database)
    assert (mous.state, mous.reason) == (MousState.WAITING_FOR_SERVICE, job.reason)
    assert outbox(database) == []
    assert without_ingest.reconcile() == 0

    with_ingest = Coordinator(database, settings, clock=clock)
    assert with_ingest.reconcile() == 1
    assert load_job(database, INGEST).state == JobState.DISPATCHED
    assert len(outbox(database)) == 1


def test_reconcile_with_nothing_to_do_looks_at_no_mous(coordinator: Coordinator) -> None:
    submit(coordinator)
    assert coordinator.reconcile() == 0


# -- the whole graph, with every stage deployed ------------------------------------------------------------


def envelope_message(mous: Mous, job: Job, time_limit_s: float, now: datetime) -> JobEnvelope:
    """Stand-in job message for stages whose message type the contracts do not define yet."""
    return JobEnvelope(
        mous_id=mous.id, job_id=job.job_id, attempt=job.attempt, stage=job.stage,
        output_prefix=work_prefix(mous.id, job.job_id), products_prefix=products_prefix(mous.id),
        time_limit_s=time_limit_s, created_at=now,
    )


@pytest.fixture
def everything_deployed(database: Database, settings: CoordinatorSettings, clock: FakeClock) -> Coordinator:
    builders = {**{stage: envelope_message for stage in Stage}, **MESSAGE_BUILDERS}
    return Coordinator(
        database, settings.model_copy(update={"enabled_stages": list(Stage)}), clock=clock,
        rng=random.Random(1), message_builders=builders,
    )


def test_a_whole_graph_runs_to_completion_in_dependency_order(
    everything_deployed: Coordinator, database: Database, clock: FakeClock
) -> None:
    submit(everything_deployed)
    waves = []
    while wave := run_wave(everything_deployed, database, clock):
        for job_id in wave:
            dependencies = load_job(database, job_id).depends_on
            assert all(dep.state == JobState.SUCCEEDED for dep in dependencies), job_id
        waves.append(sorted(wave))

    # ingest; calibration; findcont NM; contsub N, mfs NM, cont N; cubes NM with previews and footprints
    # of mfs and cont images 2(NM + N); previews and footprints of cubes 2NM; export.
    assert [len(wave) for wave in waves] == [1, 1, 4, 8, 16, 8, 1]
    assert waves[1] == ["r1.calibration"]
    assert waves[-1] == ["r1.export"]
    mous = load_mous(database)
    assert (mous.state, mous.reason) == (MousState.COMPLETED, "all 39 jobs succeeded")


def test_a_failed_job_cancels_what_depends_on_it_and_the_rest_runs_on(
    everything_deployed: Coordinator, database: Database, clock: FakeClock
) -> None:
    submit(everything_deployed)
    run_wave(everything_deployed, database, clock)  # ingest
    run_wave(everything_deployed, database, clock)  # calibration
    broken = "r1.findcont.target_1.spw17"
    everything_deployed.apply_event(
        failed(broken, ErrorClass.BAD_INPUT, at=clock.advance(1), stage=Stage.FINDCONT, message="no channels")
    )

    states = job_states(database)
    cancelled = {job_id for job_id, state in states.items() if state == JobState.CANCELLED}
    images = ["mfs.target_1.spw17", "cont.target_1", "cube.target_1.spw17", "cube.target_1.spw19"]
    assert cancelled == {
        "r1.imaging.contsub.target_1",
        *(f"r1.imaging.{image}" for image in images),
        *(f"r1.{stage}.{image}" for stage in ("previews", "footprint") for image in images),
        "r1.export",
    }
    assert {load_job(database, job_id).reason for job_id in cancelled} == {f"depends on failed job {broken}"}
    mous = load_mous(database)
    assert mous.state == MousState.FAILED
    assert mous.reason.startswith(f"Job {broken} (findcont) failed on attempt 1 with bad_input")
    assert "3 jobs that do not depend on it are still running or queued." in mous.reason

    while run_wave(everything_deployed, database, clock):
        pass
    states = job_states(database)
    assert states["r1.previews.mfs.target_1.spw19"] == JobState.SUCCEEDED
    assert states["r1.footprint.cube.target_2.spw19"] == JobState.SUCCEEDED
    assert not [job_id for job_id, state in states.items() if not state.terminal]
    mous = load_mous(database)
    assert mous.state == MousState.FAILED
    assert "still running" not in mous.reason


def test_an_mous_that_cannot_be_dispatched_does_not_hold_back_the_others(
    database: Database, settings: CoordinatorSettings, clock: FakeClock
) -> None:
    waiting = Coordinator(database, settings.model_copy(update={"enabled_stages": []}), clock=clock)
    for number in (1, 2):
        package = object_ref(f"mous/uid___A001_X{number}_X1/input/p.tar", b"p")
        waiting.submit(Submission(f"uid://A001/X{number}/X1", package, "p.tar"))

    def broken_for_the_first(mous: Mous, job: Job, time_limit_s: float, now: datetime) -> JobEnvelope:
        if mous.id == "uid://A001/X1/X1":
            raise RuntimeError("cannot write this message")
        return MESSAGE_BUILDERS[Stage.INGEST](mous, job, time_limit_s, now)

    deployed = Coordinator(database, settings, clock=clock, message_builders={Stage.INGEST: broken_for_the_first})
    assert deployed.reconcile() == 2
    assert job_states(database, "uid://A001/X1/X1") == {INGEST: JobState.WAITING_FOR_SERVICE}
    assert job_states(database, "uid://A001/X2/X1") == {INGEST: JobState.DISPATCHED}
