"""The job message a dispatched job sends to its stage's work queue.

Each stage that has a worker has a message type in the contracts (aperture_contracts.jobs) and a
builder here; a stage without one cannot be enabled (the settings refuse it). Intermediate outputs go
under a prefix that is the same for every attempt of a job, so a retry replaces what a failed attempt
left; products go under the MOUS's products prefix.
"""

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TypeVar

from aperture_contracts.enums import ImagingKind, Stage
from aperture_contracts.events import CalibrationResult, FindcontResult, ImagingResult, IngestResult, StageResult
from aperture_contracts.ids import mous_key
from aperture_contracts.imaging import ChannelChunk, ImageProduct, ImagingOverrides, ProductSizeLimits, SpectralAxis
from aperture_contracts.jobs import (
    CalibrationJob,
    ExportJob,
    FindcontJob,
    FootprintJob,
    ImagingJob,
    IngestJob,
    JobEnvelope,
    JobRecord,
    PreviewsJob,
)
from aperture_contracts.metadata import MousMetadata
from aperture_contracts.run_parameters import RunParameters
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


def ancestor_results(job: Job, stage: Stage, result_type: type[R]) -> list[R]:
    """The results of every job of `stage` that `job` depends on, directly or through other jobs, in the
    order first reached (a cube reaches its calibrated data through contsub and findcont)."""
    found: list[R] = []
    seen: set[str] = set()
    frontier = list(job.depends_on)
    while frontier:
        ancestor = frontier.pop(0)
        if ancestor.job_id in seen:
            continue
        seen.add(ancestor.job_id)
        if ancestor.stage == stage and ancestor.result is not None:
            result = _STAGE_RESULT.validate_python(ancestor.result["result"])
            if isinstance(result, result_type):
                found.append(result)
                continue
        frontier.extend(ancestor.depends_on)
    return found


def dependency_result(job: Job, stage: Stage, result_type: type[R]) -> R:
    """The one result of `stage` that `job` depends on, directly or through other jobs."""
    results = ancestor_results(job, stage, result_type)
    if not results:
        raise MissingInput(
            f"job {job.job_id} has no succeeded {stage.value} job with a {result_type.__name__}"
        )
    return results[0]


def _envelope(mous: Mous, job: Job, time_limit_s: float, now: datetime) -> dict[str, object]:
    """The fields every job message has. A request's jobs store their products under the request
    version's folder (their `products_prefix` parameter), the run's under the MOUS's products prefix."""
    return {
        "mous_id": mous.id, "job_id": job.job_id, "attempt": job.attempt,
        "output_prefix": work_prefix(mous.id, job.job_id),
        "products_prefix": str(job.params.get("products_prefix") or products_prefix(mous.id)),
        "time_limit_s": time_limit_s, "created_at": now,
    }


def _calibration_message(mous: Mous, job: Job, time_limit_s: float, now: datetime) -> CalibrationJob:
    ingested = dependency_result(job, Stage.INGEST, IngestResult)
    return CalibrationJob(
        **_envelope(mous, job, time_limit_s, now),  # type: ignore[arg-type]
        measurement_sets=ingested.measurement_sets, metadata=ingested.metadata, flux_models=ingested.flux_models,
    )


def _findcont_message(mous: Mous, job: Job, time_limit_s: float, now: datetime) -> FindcontJob:
    calibrated = dependency_result(job, Stage.CALIBRATION, CalibrationResult)
    if job.target is None or job.spw_id is None:
        raise MissingInput(f"findcont job {job.job_id} names no target or spw")
    return FindcontJob(
        **_envelope(mous, job, time_limit_s, now),  # type: ignore[arg-type]
        target=job.target, spw_id=job.spw_id, measurement_sets=calibrated.measurement_sets,
        metadata=MousMetadata.model_validate(mous.observation),
        operator_cont_dat=dependency_result(job, Stage.INGEST, IngestResult).operator_cont_dat,
    )


def _imaging_message(mous: Mous, job: Job, time_limit_s: float, now: datetime) -> ImagingJob:
    """Continuum subtraction and the images read the calibrated data; cubes and cube chunks read the
    continuum-subtracted data that their target's contsub job made; the cube job of a cube planned in
    chunks reads no data but the chunks' images. All carry the continuum ranges findcont found."""
    kind = ImagingKind(job.kind)
    if job.target is None:
        raise MissingInput(f"imaging job {job.job_id} names no target")
    continuum = sorted(
        (found.continuum for found in ancestor_results(job, Stage.FINDCONT, FindcontResult)
         if found.continuum.target == job.target and (job.spw_id is None or found.continuum.spw_id == job.spw_id)),
        key=lambda ranges: ranges.spw_id,
    )
    if not continuum:
        raise MissingInput(f"imaging job {job.job_id} has no continuum ranges from findcont")
    chunk = ChannelChunk.model_validate(job.params["chunk"]) if kind == ImagingKind.CUBE_CHUNK else None
    chunk_images = [
        image
        for result in ancestor_results(job, Stage.IMAGING, ImagingResult)
        if result.kind == ImagingKind.CUBE_CHUNK
        for image in result.images
    ]
    if kind == ImagingKind.CUBE and chunk_images:
        measurement_sets: list[ObjectRef] = []
    elif kind in (ImagingKind.CUBE, ImagingKind.CUBE_CHUNK):
        measurement_sets = dependency_result(job, Stage.IMAGING, ImagingResult).measurement_sets
    else:
        measurement_sets = dependency_result(job, Stage.CALIBRATION, CalibrationResult).measurement_sets
    return ImagingJob(
        **_envelope(mous, job, time_limit_s, now),  # type: ignore[arg-type]
        kind=kind, target=job.target, spw_ids=[ranges.spw_id for ranges in continuum],
        measurement_sets=measurement_sets, continuum=continuum,
        metadata=MousMetadata.model_validate(mous.observation), chunk=chunk,
        chunks=sorted(chunk_images, key=lambda image: image.chunk.chunk.index if image.chunk else -1),
        # A user's request sets these (request_planner.py); the run's own jobs leave them to the heuristics.
        overrides=ImagingOverrides.model_validate(job.params.get("overrides") or {}),
        spectral_axis=SpectralAxis.model_validate(job.params["spectral_axis"])
        if job.params.get("spectral_axis") else None,
        size_limits=RunParameters.model_validate(mous.parameters or {}).size_limits or ProductSizeLimits(),
    )


def _image_of(job: Job) -> ImageProduct:
    """The image a previews or footprint job is about: the one its imaging job made."""
    images = dependency_result(job, Stage.IMAGING, ImagingResult).images
    if len(images) != 1:
        raise MissingInput(f"job {job.job_id} depends on an imaging job with {len(images)} images, not one")
    return images[0]


def _previews_message(mous: Mous, job: Job, time_limit_s: float, now: datetime) -> PreviewsJob:
    image = _image_of(job)
    continuum = sorted(
        (found.continuum for found in ancestor_results(job, Stage.FINDCONT, FindcontResult)
         if found.continuum.target == image.target and found.continuum.spw_id in image.spw_ids),
        key=lambda ranges: ranges.spw_id,
    )
    return PreviewsJob(
        **_envelope(mous, job, time_limit_s, now),  # type: ignore[arg-type]
        image=image, continuum=continuum, mous_title=f"{mous.id} {image.target}",
    )


def _footprint_message(mous: Mous, job: Job, time_limit_s: float, now: datetime) -> FootprintJob:
    return FootprintJob(
        **_envelope(mous, job, time_limit_s, now),  # type: ignore[arg-type]
        image=_image_of(job), metadata=MousMetadata.model_validate(mous.observation),
    )


def job_record(job: Job) -> JobRecord:
    """What the export knows of a job: its state, its current attempt's times and its result."""
    attempt = job.current_attempt()
    done = job.result or {}
    return JobRecord(
        job_id=job.job_id, stage=job.stage, kind=job.kind, target=job.target, spw_id=job.spw_id, state=job.state,
        reason=job.reason, attempts=job.attempt, worker=attempt.worker if attempt else None,
        started_at=attempt.started_at if attempt else None, ended_at=attempt.ended_at if attempt else None,
        duration_s=done.get("duration_s"), qa=done.get("qa", []),
        result=_STAGE_RESULT.validate_python(done["result"]) if done.get("result") else None,
        casa_calls=done.get("casa_calls", []), log=done.get("log"), outputs=done.get("outputs", []),
        params=dict(job.params),
    )


def _export_message(mous: Mous, job: Job, time_limit_s: float, now: datetime) -> ExportJob:
    run_jobs = [other for other in mous.jobs if other.run == job.run and other.pk != job.pk]
    return ExportJob(
        **_envelope(mous, job, time_limit_s, now),  # type: ignore[arg-type]
        metadata=MousMetadata.model_validate(mous.observation), run=job.run, submitted_at=mous.submitted_at,
        jobs=[job_record(other) for other in run_jobs],
    )


MessageBuilder = Callable[[Mous, Job, float, datetime], JobEnvelope]
"""Makes the message of a job's current attempt from the MOUS, the job, its time limit and the time."""

MESSAGE_BUILDERS: Mapping[Stage, MessageBuilder] = {
    Stage.INGEST: _ingest_message,
    Stage.CALIBRATION: _calibration_message,
    Stage.FINDCONT: _findcont_message,
    Stage.IMAGING: _imaging_message,
    Stage.PREVIEWS: _previews_message,
    Stage.FOOTPRINT: _footprint_message,
    Stage.EXPORT: _export_message,
}
STAGES_WITH_MESSAGES = frozenset(MESSAGE_BUILDERS)
