"""How an MOUS's state and reason follow from its jobs (pure; no database)."""

from aperture_contracts.enums import JobState, MousState, Stage
from aperture_coordinator.mous_status import JobStatus, derive_mous_state

INGEST = "r1.ingest"


def jobs(*states: tuple[str, Stage, JobState], reason: str = "") -> list[JobStatus]:
    return [JobStatus(job_id, stage, state, reason) for job_id, stage, state in states]


def graph(
    ingest: JobState, calibration: JobState | None = None, later: JobState = JobState.PLANNED
) -> list[JobStatus]:
    listed = [(INGEST, Stage.INGEST, ingest)]
    if calibration is not None:
        listed += [("r1.calibration", Stage.CALIBRATION, calibration), ("r1.export", Stage.EXPORT, later)]
    return jobs(*listed)


def test_an_mous_whose_ingest_is_queued_is_received() -> None:
    for state in (JobState.PLANNED, JobState.DISPATCHED):
        assert derive_mous_state(graph(state), cancelled=False) == (
            MousState.RECEIVED, "queued for the ingest service"
        )


def test_an_mous_whose_ingest_runs_or_waits_to_retry_is_ingesting() -> None:
    assert derive_mous_state(graph(JobState.RUNNING), cancelled=False)[0] == MousState.INGESTING
    why = "attempt 1 failed (storage: down)"
    retrying = [JobStatus(INGEST, Stage.INGEST, JobState.RETRY_WAIT, why)]
    assert derive_mous_state(retrying, cancelled=False) == (MousState.INGESTING, why)


def test_an_mous_whose_ingest_service_is_missing_waits_for_it() -> None:
    why = "the ingest service is not deployed yet"
    waiting = [JobStatus(INGEST, Stage.INGEST, JobState.WAITING_FOR_SERVICE, why)]
    assert derive_mous_state(waiting, cancelled=False) == (MousState.WAITING_FOR_SERVICE, why)


def test_after_ingest_an_mous_with_queued_or_running_jobs_is_processing() -> None:
    state, reason = derive_mous_state(graph(JobState.SUCCEEDED, JobState.RUNNING), cancelled=False)
    assert state == MousState.PROCESSING
    assert reason == "1 of 3 jobs done; 1 running"


def test_when_all_that_can_run_is_done_the_mous_waits_for_the_missing_service() -> None:
    listed = graph(JobState.SUCCEEDED, JobState.WAITING_FOR_SERVICE)
    state, reason = derive_mous_state(listed, cancelled=False)
    assert state == MousState.WAITING_FOR_SERVICE
    assert reason == (
        "everything that can run is done (1 of 3 jobs): the calibration service is not deployed yet "
        "(1 job waits for it, 1 more come after it)"
    )


def test_waiting_on_several_services_names_them_all() -> None:
    listed = jobs(
        (INGEST, Stage.INGEST, JobState.SUCCEEDED),
        ("a", Stage.CALIBRATION, JobState.WAITING_FOR_SERVICE),
        ("b", Stage.IMAGING, JobState.WAITING_FOR_SERVICE),
    )
    state, reason = derive_mous_state(listed, cancelled=False)
    assert state == MousState.WAITING_FOR_SERVICE
    assert "the calibration and imaging services are not deployed yet (2 jobs wait for them)" in reason


def test_an_mous_whose_jobs_all_succeeded_is_completed() -> None:
    done = graph(JobState.SUCCEEDED, JobState.SUCCEEDED, JobState.SUCCEEDED)
    assert derive_mous_state(done, cancelled=False) == (MousState.COMPLETED, "all 3 jobs succeeded")


def test_a_failed_job_fails_the_mous_with_its_sentence_even_while_others_run() -> None:
    listed = [
        JobStatus(INGEST, Stage.INGEST, JobState.SUCCEEDED),
        JobStatus("a", Stage.FINDCONT, JobState.FAILED, "Job a (findcont) failed: no channels."),
        JobStatus("b", Stage.FINDCONT, JobState.RUNNING),
        JobStatus("c", Stage.FINDCONT, JobState.FAILED, "Job c (findcont) failed: no channels."),
    ]
    state, reason = derive_mous_state(listed, cancelled=False)
    assert state == MousState.FAILED
    assert reason.startswith("Job a (findcont) failed: no channels.")
    assert "1 other job failed too" in reason
    assert "1 job that does not depend on it is still running or queued" in reason


def test_failure_takes_precedence_over_cancellation_and_cancellation_over_the_rest() -> None:
    failed = jobs((INGEST, Stage.INGEST, JobState.FAILED))
    assert derive_mous_state(failed, cancelled=True)[0] == MousState.FAILED
    cancelled = jobs((INGEST, Stage.INGEST, JobState.CANCELLED))
    state, reason = derive_mous_state(cancelled, cancelled=True)
    assert state == MousState.CANCELLED
    assert "rerun=true" in reason
