"""Worker memory classes: which class a job goes to, and an out-of-memory job retried once on a larger
class (on SQLite and PostgreSQL through the real state machine; the class rules alone without a database)."""

import random

import pytest
from aperture_contracts import topology
from aperture_contracts.enums import ErrorClass, JobState, MemoryClass, MousState, Stage
from aperture_coordinator.db import Database
from aperture_coordinator.memory_classes import MemoryClasses, job_identity
from aperture_coordinator.retries import RetryPolicy
from aperture_coordinator.state import Coordinator, Submission

from .conftest import FakeClock, make_settings
from .factories import MOUS_ID, failed, load_job, load_mous, object_ref, outbox, started

PACKAGE = object_ref("mous/uid___A001_X2fa_X2dd/input/uid___A001_X2fa_X2dd.ms.tar", b"package bytes")
INGEST = "r1.ingest"
TWO_CLASSES = {MemoryClass.STANDARD: 4096, MemoryClass.LARGE: 16384}


# -- the rules alone --------------------------------------------------------------------------------------


def test_a_job_goes_to_the_smallest_class_that_fits_its_estimate_with_a_margin() -> None:
    classes = MemoryClasses(TWO_CLASSES)
    assert classes.for_estimate(Stage.IMAGING, None) is MemoryClass.STANDARD  # nothing measured yet
    assert classes.for_estimate(Stage.IMAGING, 3000) is MemoryClass.STANDARD  # 3000 x 1.2 = 3600 <= 4096
    assert classes.for_estimate(Stage.IMAGING, 3500) is MemoryClass.LARGE  # 4200 > 4096
    assert classes.for_estimate(Stage.IMAGING, 50_000) is MemoryClass.LARGE  # fits none: the largest there is
    # A stage without large workers keeps its jobs on the standard class, whatever they measured.
    assert classes.for_estimate(Stage.CALIBRATION, 50_000) is MemoryClass.STANDARD


def test_only_a_deployed_class_with_more_memory_is_a_next_class() -> None:
    two = MemoryClasses(TWO_CLASSES)
    assert two.after_out_of_memory(Stage.IMAGING, MemoryClass.STANDARD) is MemoryClass.LARGE
    assert two.after_out_of_memory(Stage.IMAGING, MemoryClass.LARGE) is None
    assert two.after_out_of_memory(Stage.CALIBRATION, MemoryClass.STANDARD) is None  # no large calibration workers
    one = MemoryClasses({MemoryClass.STANDARD: 8192})
    assert one.after_out_of_memory(Stage.IMAGING, MemoryClass.STANDARD) is None
    # A "large" class configured no larger than the standard one is no way out.
    same = MemoryClasses({MemoryClass.STANDARD: 8192, MemoryClass.LARGE: 8192})
    assert same.after_out_of_memory(Stage.IMAGING, MemoryClass.STANDARD) is None
    with pytest.raises(ValueError, match="the standard memory class"):
        MemoryClasses({MemoryClass.LARGE: 8192})


def test_out_of_memory_is_retried_only_towards_a_larger_class() -> None:
    policy = RetryPolicy(max_attempts=3, backoff_base_s=5.0, backoff_cap_s=600.0)
    rng = random.Random(1)
    onto_large = policy.decide(ErrorClass.OUT_OF_MEMORY, 1, rng, larger_class="large")
    assert onto_large.retry and "large" in onto_large.why
    # Even after the attempts a transient failure may have, a larger class is worth one more.
    assert policy.decide(ErrorClass.OUT_OF_MEMORY, 3, rng, larger_class="large").retry
    final = policy.decide(ErrorClass.OUT_OF_MEMORY, 1, rng, larger_class=None)
    assert not final.retry and "largest" in final.why


def test_a_job_is_the_same_job_from_run_to_run() -> None:
    assert job_identity("r12.imaging.mfs.simgalaxy.spw0") == "imaging.mfs.simgalaxy.spw0"
    assert job_identity("r1.ingest") == job_identity("r2.ingest") == "ingest"


def test_the_worker_setting_picks_the_queue_of_its_class() -> None:
    assert topology.job_queue(Stage.IMAGING) == "aperture.jobs.imaging"  # unchanged without classes
    assert topology.job_queue(Stage.IMAGING, MemoryClass.LARGE) == "aperture.jobs.imaging.large"
    assert topology.job_routing_key(Stage.IMAGING, MemoryClass.LARGE) == "imaging.large"


# -- through the state machine ----------------------------------------------------------------------------


@pytest.fixture
def two_class_coordinator(database_url: str, database: Database, clock: FakeClock) -> Coordinator:
    # Ingest stands for any stage here: these tests drive the ingest job, the first of every run.
    settings = make_settings(database_url, memory_classes_mb=TWO_CLASSES, memory_class_stages=[Stage.INGEST])
    return Coordinator(database, settings, clock=clock, rng=random.Random(7))


def submit(coordinator: Coordinator, *, rerun: bool = False) -> None:
    coordinator.submit(Submission(MOUS_ID, PACKAGE, "uid___A001_X2fa_X2dd.ms.tar", rerun=rerun))


def out_of_memory(job_id: str, attempt: int, clock: FakeClock, peak_mb: float | None):
    event = failed(job_id, ErrorClass.OUT_OF_MEMORY, attempt, at=clock.advance(3),
                   message="CASA step importuvfits went past its memory limit")
    return event.model_copy(update={"peak_memory_mb": peak_mb})


def test_out_of_memory_moves_the_job_to_a_large_worker_once_then_fails_it(
    two_class_coordinator: Coordinator, database: Database, clock: FakeClock
) -> None:
    coordinator = two_class_coordinator
    submit(coordinator)
    [first] = outbox(database)
    assert first.routing_key == "ingest"  # nothing measured: the standard class

    coordinator.apply_event(started(INGEST, at=clock.advance(1)))
    coordinator.apply_event(out_of_memory(INGEST, 1, clock, peak_mb=4100.0))
    job = load_job(database, INGEST)
    assert job.state is JobState.RETRY_WAIT
    assert (job.memory_class, job.estimated_memory_mb) == (MemoryClass.LARGE, 4100.0)
    assert "attempt 2 on a large worker (16384 MB)" in job.reason

    clock.advance(10)
    assert coordinator.reconcile() == 1
    retry = outbox(database)[-1]
    assert (retry.routing_key, retry.message_id) == ("ingest.large", "uid___A001_X2fa_X2dd:r1.ingest:2")
    job = load_job(database, INGEST)
    assert [a.memory_class for a in job.attempts] == [MemoryClass.STANDARD, MemoryClass.LARGE]
    assert job.reason == "queued for the ingest service (attempt 2 of 3, large workers)"

    coordinator.apply_event(started(INGEST, 2, at=clock.advance(1)))
    coordinator.apply_event(out_of_memory(INGEST, 2, clock, peak_mb=16400.0))
    job = load_job(database, INGEST)
    assert job.state is JobState.FAILED
    assert "out_of_memory" in job.reason
    assert load_mous(database).state is MousState.FAILED
    clock.advance(60)
    coordinator.reconcile()
    assert len(outbox(database)) == 2  # no third attempt


@pytest.mark.parametrize("classes", [{MemoryClass.STANDARD: 8192}, TWO_CLASSES], ids=["one class", "no large ingest"])
def test_out_of_memory_is_final_with_one_class_deployed_or_on_a_stage_without_large_workers(
    classes: dict[MemoryClass, int], database_url: str, database: Database, clock: FakeClock
) -> None:
    settings = make_settings(database_url, memory_classes_mb=classes)  # large workers for imaging only
    coordinator = Coordinator(database, settings, clock=clock, rng=random.Random(7))
    submit(coordinator)
    coordinator.apply_event(started(INGEST, at=clock.advance(1)))
    coordinator.apply_event(out_of_memory(INGEST, 1, clock, peak_mb=8300.0))
    job = load_job(database, INGEST)
    assert (job.state, job.memory_class) == (JobState.FAILED, MemoryClass.STANDARD)
    assert "another attempt cannot help" in job.reason
    assert [row.routing_key for row in outbox(database)] == ["ingest"]


def test_a_rerun_sends_a_job_that_ran_out_of_memory_before_straight_to_the_larger_class(
    two_class_coordinator: Coordinator, database: Database, clock: FakeClock
) -> None:
    """What a campaign's `retry --class out_of_memory` relies on: the new run remembers the old one."""
    coordinator = two_class_coordinator
    submit(coordinator)
    coordinator.apply_event(started(INGEST, at=clock.advance(1)))
    coordinator.apply_event(out_of_memory(INGEST, 1, clock, peak_mb=None))  # killed before a sample
    clock.advance(10)
    coordinator.reconcile()
    coordinator.apply_event(started(INGEST, 2, at=clock.advance(1)))
    coordinator.apply_event(out_of_memory(INGEST, 2, clock, peak_mb=16500.0))
    assert load_mous(database).state is MousState.FAILED

    submit(coordinator, rerun=True)
    job = load_job(database, "r2.ingest")
    assert job.estimated_memory_mb is not None and job.estimated_memory_mb > 16384  # over the class it failed on
    assert job.memory_class is MemoryClass.LARGE
    assert outbox(database)[-1].routing_key == "ingest.large"


def test_a_rerun_of_a_job_that_fit_stays_on_the_standard_class(
    two_class_coordinator: Coordinator, database: Database, clock: FakeClock
) -> None:
    coordinator = two_class_coordinator
    submit(coordinator)
    coordinator.apply_event(started(INGEST, at=clock.advance(1)))
    coordinator.apply_event(
        failed(INGEST, ErrorClass.BAD_INPUT, at=clock.advance(3), message="not an MS").model_copy(
            update={"peak_memory_mb": 900.0}
        )
    )
    submit(coordinator, rerun=True)
    job = load_job(database, "r2.ingest")
    assert (job.estimated_memory_mb, job.memory_class) == (900.0, MemoryClass.STANDARD)
