"""The job message a dispatched job sends to its stage's work queue.

Each stage that has a worker has a message type in the contracts (aperture_contracts.jobs) and a
builder here; a stage without one cannot be enabled (the settings refuse it). Intermediate outputs go
under a prefix that is the same for every attempt of a job, so a retry replaces what a failed attempt
left; products go under the MOUS's products prefix.
"""

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TypeVar

from aperture_contracts.enums import Stage
from aperture_contracts.events import CalibrationResult, IngestResult, StageResult
from aperture_contracts.ids import mous_key
from aperture_contracts.jobs import CalibrationJob, FindcontJob, IngestJob, JobEnvelope
from aperture_contracts.metadata import MousMetadata
from aperture_contracts.storage import ObjectRef
from pydantic import TypeAdapter

from aperture_coordinator.models import Job, Mous


def work_prefix(mous_id: str, job_id: str) -> str:
    return f"mous/{mous_key(mous_id)}/work/{job_id}/"


def input_prefix(mous_id: str) -> str:
    return f"mous/{mous_key(mous_id)}/input/"


def products_prefix(mous_id: str) -> str:
    return f"mous/{mous_key(mous_id)}/products/"


def package_ref(mous: Mous) -> ObjectRef:
    return ObjectRef(
        key=mous.package_key, sha256=mous.package_sha256, size=mous.package_size,
        content_type=mous.package_content_type,
    )


def _ingest_message(mous: Mous, job: Job, time_limit_s: float, now: datetime) -> IngestJob:
    return IngestJob(
        mous_id=mous.id, job_id=job.job_id, attempt=job.attempt,
        output_prefix=work_prefix(mous.id, job.job_id), products_prefix=products_prefix(mous.id),
        time_limit_s=time_limit_s, created_at=now,
        package=package_ref(mous), package_name=mous.package_name,
    )


R = TypeVar("R")
_STAGE_RESULT: TypeAdapter[StageResult] = TypeAdapter(StageResult)


class MissingInput(RuntimeError):
    """A job is dispatched without the result of a job it depends on: a planner or state bug."""


def dependency_result(job: Job, stage: Stage, result_type: type[R]) -> R:
    """The result of the job of `stage` that `job` depends on (the planner gives it exactly one)."""
    for dependency in job.depends_on:
        if dependency.stage == stage and dependency.result is not None:
            result = _STAGE_RESULT.validate_python(dependency.result["result"])
            if isinstance(result, result_type):
                return result
    raise MissingInput(f"job {job.job_id} has no succeeded {stage.value} job with a {result_type.__name__}")


def _envelope(mous: Mous, job: Job, time_limit_s: float, now: datetime) -> dict[str, object]:
    return {
        "mous_id": mous.id, "job_id": job.job_id, "attempt": job.attempt,
        "output_prefix": work_prefix(mous.id, job.job_id), "products_prefix": products_prefix(mous.id),
        "time_limit_s": time_limit_s, "created_at": now,
    }


def _calibration_message(mous: Mous, job: Job, time_limit_s: float, now: datetime) -> CalibrationJob:
    ingested = dependency_result(job, Stage.INGEST, IngestResult)
    return CalibrationJob(
        **_envelope(mous, job, time_limit_s, now),  # type: ignore[arg-type]
        measurement_sets=ingested.measurement_sets, metadata=ingested.metadata,
    )


def _findcont_message(mous: Mous, job: Job, time_limit_s: float, now: datetime) -> FindcontJob:
    calibrated = dependency_result(job, Stage.CALIBRATION, CalibrationResult)
    if job.target is None or job.spw_id is None:
        raise MissingInput(f"findcont job {job.job_id} names no target or spw")
    return FindcontJob(
        **_envelope(mous, job, time_limit_s, now),  # type: ignore[arg-type]
        target=job.target, spw_id=job.spw_id, measurement_sets=calibrated.measurement_sets,
        metadata=MousMetadata.model_validate(mous.observation),
    )


MessageBuilder = Callable[[Mous, Job, float, datetime], JobEnvelope]
"""Makes the message of a job's current attempt from the MOUS, the job, its time limit and the time."""

MESSAGE_BUILDERS: Mapping[Stage, MessageBuilder] = {
    Stage.INGEST: _ingest_message,
    Stage.CALIBRATION: _calibration_message,
    Stage.FINDCONT: _findcont_message,
}
STAGES_WITH_MESSAGES = frozenset(MESSAGE_BUILDERS)
