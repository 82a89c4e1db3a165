"""The workers' metrics (aperture_shared.metrics) and the worker loop's hooks that feed them: jobs
started, in progress and finished, CASA task durations and the QA score distribution.

Metrics live in the process-wide registry, so each test reads differences, or uses a stage name of its own.
"""

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aperture_contracts.enums import ErrorClass, Stage
from aperture_contracts.events import CasaCall
from aperture_contracts.jobs import JobEnvelope
from aperture_contracts.products import PreviewsResult
from aperture_contracts.qa import QAMetric, QAScore
from aperture_shared import worker as worker_module
from aperture_shared.casa.runner import CasaRun
from aperture_shared.errors import BadInput
from aperture_shared.metrics import (
    count_job_start,
    initialise_stage_series,
    observe_casa_calls,
    observe_qa_scores,
)
from aperture_shared.settings import CasaSettings, WorkerSettings
from aperture_shared.worker import JobContext, JobOutcome, StageWorker
from prometheus_client import REGISTRY


def sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def value(name: str, **labels: str) -> float:
    return sample(name, **labels) or 0.0


def fresh_stage() -> str:
    return f"stage-{uuid.uuid4().hex[:8]}"


def qa(score: float) -> QAScore:
    return QAScore(score=score, message="test", metric=QAMetric(name="m", value=score))


def casa_call(task: str, duration_s: float) -> CasaCall:
    return CasaCall(task=task, parameters={}, started_at=datetime.now(UTC), duration_s=duration_s)


def test_a_stage_has_every_series_at_zero_before_its_first_job() -> None:
    stage = fresh_stage()

    initialise_stage_series(stage)

    assert sample("aperture_jobs_started_total", stage=stage) == 0.0
    assert sample("aperture_jobs_in_progress", stage=stage) == 0.0
    assert sample("aperture_jobs_total", stage=stage, outcome="succeeded", error_class="") == 0.0
    for error_class in ErrorClass:
        assert sample("aperture_jobs_total", stage=stage, outcome="failed", error_class=error_class.value) == 0.0
    for outcome in ("succeeded", "failed"):
        assert sample("aperture_job_duration_seconds_count", stage=stage, outcome=outcome) == 0.0
    assert sample("aperture_qa_score_count", stage=stage) == 0.0


async def test_a_started_job_is_in_progress_until_its_task_ends_even_when_cancelled() -> None:
    stage = fresh_stage()
    release = asyncio.Event()
    finishing = asyncio.create_task(release.wait())
    hanging = asyncio.create_task(asyncio.sleep(3600))

    count_job_start(stage, finishing)
    count_job_start(stage, hanging)

    assert value("aperture_jobs_started_total", stage=stage) == 2
    assert value("aperture_jobs_in_progress", stage=stage) == 2
    release.set()
    await finishing
    assert value("aperture_jobs_in_progress", stage=stage) == 1
    hanging.cancel()
    with pytest.raises(asyncio.CancelledError):
        await hanging
    assert value("aperture_jobs_in_progress", stage=stage) == 0
    assert value("aperture_jobs_started_total", stage=stage) == 2


def test_casa_calls_are_timed_per_stage_and_task() -> None:
    stage = fresh_stage()

    observe_casa_calls(stage, [casa_call("tclean", 12.0), casa_call("tclean", 40.0), casa_call("ia.open", 0.01)])

    assert value("aperture_casa_task_duration_seconds_count", stage=stage, task="tclean") == 2
    assert value("aperture_casa_task_duration_seconds_sum", stage=stage, task="tclean") == pytest.approx(52.0)
    assert value("aperture_casa_task_duration_seconds_bucket", stage=stage, task="tclean", le="30.0") == 1
    assert value("aperture_casa_task_duration_seconds_count", stage=stage, task="ia.open") == 1


def test_qa_score_buckets_are_the_alma_colour_bands() -> None:
    stage = fresh_stage()

    # red (<= 0.33, the boundary included as band_for has it), yellow, blue, green
    observe_qa_scores(stage, [qa(0.1), qa(0.33), qa(0.5), qa(0.8), qa(0.95), qa(1.0)])

    cumulative = {
        bound: value("aperture_qa_score_bucket", stage=stage, le=bound) for bound in ("0.33", "0.66", "0.9", "1.0")
    }
    assert cumulative == {"0.33": 2, "0.66": 3, "0.9": 4, "1.0": 6}
    assert value("aperture_qa_score_count", stage=stage) == 6


# -- the worker loop's hooks -------------------------------------------------------------------------------


class SomeJob(JobEnvelope):
    pass


def some_job() -> SomeJob:
    return SomeJob(
        mous_id="uid://A001/X1/X2", job_id=f"r1.previews.{uuid.uuid4().hex[:6]}", attempt=1, stage=Stage.PREVIEWS,
        output_prefix="mous/uid___A001_X1_X2/work/r1.previews/", products_prefix="mous/uid___A001_X1_X2/products/",
        time_limit_s=60, created_at=datetime.now(UTC),
    )


def previews_worker(handler, tmp_path: Path) -> StageWorker[SomeJob]:
    """A worker that is never started: _execute runs a handler without a broker or a store."""
    return StageWorker(
        Stage.PREVIEWS, SomeJob, handler, WorkerSettings(service_name="previews-worker"),
        CasaSettings(scratch_root=tmp_path / "scratch"),
    )


async def test_the_worker_counts_a_succeeded_job_its_qa_and_its_casa_calls(tmp_path: Path, monkeypatch) -> None:
    async def fake_casa_step(function, arguments, **_options) -> CasaRun:
        return CasaRun(value=None, calls=[casa_call("exportfits", 2.0)], log_path=tmp_path / "casa.log",
                       peak_rss_mb=1.0, duration_s=2.0, startup_s=0.0)

    async def handler(job: SomeJob, context: JobContext) -> JobOutcome:
        await context.casa("some.module:step", {})
        result = PreviewsResult(kind="mfs", target="T", spw_ids=[0], files=[])
        return JobOutcome(result=result, outputs=[], qa=[qa(0.2), qa(0.95)])

    monkeypatch.setattr(worker_module, "run_casa_step", fake_casa_step)
    worker = previews_worker(handler, tmp_path)
    succeeded = {"stage": "previews", "outcome": "succeeded"}
    before = {
        "succeeded": value("aperture_jobs_total", **succeeded, error_class=""),
        "red": value("aperture_qa_score_bucket", stage="previews", le="0.33"),
        "qa": value("aperture_qa_score_count", stage="previews"),
        "exportfits": value("aperture_casa_task_duration_seconds_count", stage="previews", task="exportfits"),
        "durations": value("aperture_job_duration_seconds_count", **succeeded),
    }

    await worker._execute(some_job())

    assert value("aperture_jobs_total", **succeeded, error_class="") == before["succeeded"] + 1
    assert value("aperture_qa_score_bucket", stage="previews", le="0.33") == before["red"] + 1
    assert value("aperture_qa_score_count", stage="previews") == before["qa"] + 2
    assert (
        value("aperture_casa_task_duration_seconds_count", stage="previews", task="exportfits")
        == before["exportfits"] + 1
    )
    assert value("aperture_job_duration_seconds_count", **succeeded) == before["durations"] + 1
    # Series a stage has before its first failure exist from the worker's construction.
    assert sample("aperture_jobs_total", stage="previews", outcome="failed", error_class="timeout") is not None


async def test_the_worker_counts_a_failed_job_by_error_class_and_records_no_qa(tmp_path: Path) -> None:
    async def handler(job: SomeJob, context: JobContext) -> JobOutcome:
        raise BadInput("not an image")

    worker = previews_worker(handler, tmp_path)
    failed = {"stage": "previews", "outcome": "failed", "error_class": "bad_input"}
    before = (value("aperture_jobs_total", **failed), value("aperture_qa_score_count", stage="previews"))

    await worker._execute(some_job())

    assert value("aperture_jobs_total", **failed) == before[0] + 1
    assert value("aperture_qa_score_count", stage="previews") == before[1]
