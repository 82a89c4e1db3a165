"""Prometheus metrics every service exports. Names are part of the operations contract: the dashboards
(ops/grafana/dashboards) and the alerting rules (ops/prometheus/rules) query them, and their tests fail
when a name they use goes away.

Labels stay bounded: stages, outcomes, error classes, CASA task names and directions, never MOUS or job
ids (those are in the logs and the coordinator's API).
"""

import asyncio
from collections.abc import Iterable

from aperture_contracts.enums import ErrorClass
from aperture_contracts.events import CasaCall
from aperture_contracts.qa import QAScore
from prometheus_client import Counter, Gauge, Histogram

JOBS = Counter(
    "aperture_jobs",
    "Jobs finished by a worker, by stage, outcome and error class",
    ["stage", "outcome", "error_class"],
)
JOBS_STARTED = Counter(
    "aperture_jobs_started",
    "Jobs a worker started, by stage (a duplicate delivery of a finished attempt starts none)",
    ["stage"],
)
JOBS_IN_PROGRESS = Gauge("aperture_jobs_in_progress", "Jobs a worker is running now, by stage", ["stage"])
JOB_DURATION = Histogram(
    "aperture_job_duration_seconds",
    "Wall-clock time of a job in a worker, by stage and outcome",
    ["stage", "outcome"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800),
)
CASA_TASK_DURATION = Histogram(
    "aperture_casa_task_duration_seconds",
    "Wall-clock time of one CASA task or image-tool call (as casa_commands.log records it), by stage and task",
    ["stage", "task"],
    buckets=(0.05, 0.25, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400),
)
# Bucket bounds at the ALMA pipeline's colour bands (aperture_contracts.qa.band_for: red <= 0.33, yellow
# <= 0.66, blue <= 0.90, green above): the share of red scores is bucket{le="0.33"} / count.
QA_SCORE = Histogram(
    "aperture_qa_score",
    "QA scores of succeeded jobs, by stage (buckets are the ALMA colour bands)",
    ["stage"],
    buckets=(0.33, 0.66, 0.9, 1.0),
)
STORAGE_BYTES = Counter(
    "aperture_storage_bytes",
    "Bytes moved to (upload) and from (download) object storage",
    ["direction"],
)
MESSAGES = Counter(
    "aperture_messages",
    "Messages published and consumed, by exchange/queue and what became of them",
    ["channel", "disposition"],
)

OUTCOMES = ("succeeded", "failed")


def initialise_stage_series(stage: str) -> None:
    """Create a stage's series at zero before its first job: a rate over a counter that appears only
    with its first failure misses that failure, and a dashboard shows "no data" where the answer is 0."""
    JOBS_STARTED.labels(stage)
    JOBS_IN_PROGRESS.labels(stage)
    JOBS.labels(stage, "succeeded", "")
    for error_class in ErrorClass:
        JOBS.labels(stage, "failed", error_class.value)
    for outcome in OUTCOMES:
        JOB_DURATION.labels(stage, outcome)
    QA_SCORE.labels(stage)
    for direction in ("upload", "download"):
        STORAGE_BYTES.labels(direction)


def count_job_start(stage: str, job: "asyncio.Task[object]") -> None:
    """Count a job as started and as in progress until its task ends, however it ends (cancelled too)."""
    JOBS_STARTED.labels(stage).inc()
    in_progress = JOBS_IN_PROGRESS.labels(stage)
    in_progress.inc()
    job.add_done_callback(lambda _task: in_progress.dec())


def observe_casa_calls(stage: str, calls: Iterable[CasaCall]) -> None:
    """The durations of the CASA calls one step made (the step records each with its duration)."""
    for call in calls:
        CASA_TASK_DURATION.labels(stage, call.task).observe(call.duration_s)


def observe_qa_scores(stage: str, scores: Iterable[QAScore]) -> None:
    for score in scores:
        QA_SCORE.labels(stage).observe(score.score)
