"""What a request version is while and after it runs: its state from its jobs, its progress, and its result
QA (each image's measured rms and beam against what the data should give).

A version is
- QUEUED until one of its jobs has started (or before its jobs are planned);
- RUNNING while any job is unfinished once one has started;
- SUCCEEDED when every job succeeded; it then passed QA when every image passed;
- FAILED when every job has ended and one failed for good (the first failure's sentence); jobs that did
  not depend on it ran on, so that the products that could be made are there to look at;
- CANCELLED when its owner (or an operator) cancelled it (state.py does that).
"""

import math
from collections.abc import Sequence
from datetime import datetime

from aperture_contracts.enums import ImagingKind, JobState, Stage
from aperture_contracts.events import ImagingResult
from aperture_contracts.imaging import ImageProduct, ImagingOverrides
from aperture_contracts.qa import lowest_score
from aperture_contracts.requests import ImageCheck, Progress, RequestCreate, RequestJobView, RequestState
from pydantic import TypeAdapter

from aperture_coordinator.models import Job, RequestVersion

_IMAGING_RESULT = TypeAdapter(ImagingResult)
# The product of a request is not refused for a beam a little off: weighting and flagging move it.
_BEAM_METRIC = "beam_over_expected"


def job_images(job: Job) -> list[ImageProduct]:
    """The images a succeeded imaging job made (none for other jobs)."""
    if job.stage != Stage.IMAGING or job.state != JobState.SUCCEEDED or not job.result:
        return []
    return list(_IMAGING_RESULT.validate_python(job.result["result"]).images)


def image_check(image: ImageProduct, max_rms_ratio: float, max_beam_ratio: float) -> ImageCheck:
    """Passed when the rms is within `max_rms_ratio` of the theoretical sensitivity and the beam within a
    factor `max_beam_ratio` of what the uv coverage (and the taper) should give."""
    rms_ratio = image.rms_jy / image.theoretical_sensitivity_jy if image.theoretical_sensitivity_jy > 0 else math.inf
    beam_ratio = next(
        (score.metric.value for score in image.qa if score.metric.name == _BEAM_METRIC and score.metric.value), None
    )
    notes = []
    rms_ok = rms_ratio <= max_rms_ratio
    notes.append(
        f"rms {image.rms_jy * 1e3:.3g} mJy/beam is {rms_ratio:.2f} x the expected "
        f"{image.theoretical_sensitivity_jy * 1e3:.3g} mJy/beam ({'within' if rms_ok else 'above'} the limit of "
        f"{max_rms_ratio:g} x)"
    )
    beam_ok = beam_ratio is None or 1 / max_beam_ratio <= beam_ratio <= max_beam_ratio
    if beam_ratio is None:
        notes.append("the beam was not compared with an expected one (no beam score)")
    else:
        notes.append(
            f"beam {image.beam.major_arcsec:.3g} x {image.beam.minor_arcsec:.3g} arcsec is {beam_ratio:.2f} x the "
            f"expected size ({'within' if beam_ok else 'outside'} a factor {max_beam_ratio:g})"
        )
    worst = lowest_score(image.qa)
    return ImageCheck(
        image=image.pbcor.key.rsplit("/", 1)[-1], kind=image.kind, target=image.target, spw_ids=image.spw_ids,
        rms_jy=image.rms_jy, expected_rms_jy=image.theoretical_sensitivity_jy, rms_ratio=round(rms_ratio, 4),
        beam_major_arcsec=image.beam.major_arcsec, beam_minor_arcsec=image.beam.minor_arcsec,
        beam_ratio=beam_ratio, lowest_score=worst.score if worst else None, passed=rms_ok and beam_ok, notes=notes,
    )


def progress(jobs: Sequence[Job]) -> Progress:
    counts = {state: sum(1 for job in jobs if job.state == state) for state in JobState}
    ended = sum(1 for job in jobs if job.state.terminal)
    return Progress(
        total=len(jobs), succeeded=counts[JobState.SUCCEEDED], running=counts[JobState.RUNNING],
        failed=counts[JobState.FAILED], cancelled=counts[JobState.CANCELLED] + counts[JobState.SUPERSEDED],
        fraction=round(ended / len(jobs), 4) if jobs else 0.0,
    )


def job_view(job: Job) -> RequestJobView:
    duration = (job.result or {}).get("duration_s")
    return RequestJobView(
        job_id=job.job_id, stage=job.stage, kind=job.kind, target=job.target, spw_id=job.spw_id, state=job.state,
        reason=job.reason, attempts=job.attempt, duration_s=duration,
    )


def derive_version(
    version: RequestVersion, jobs: Sequence[Job], max_rms_ratio: float, max_beam_ratio: float, now: datetime
) -> bool:
    """Bring the version's state, QA and times up to date with its jobs. True when it ended just now."""
    if version.state.terminal or not jobs:
        return False
    checks = [image_check(image, max_rms_ratio, max_beam_ratio) for job in jobs for image in job_images(job)]
    version.qa = [check.model_dump(mode="json") for check in checks]
    started = any(attempt.started_at is not None for job in jobs for attempt in job.attempts) or any(
        job.state.terminal for job in jobs
    )
    if started and version.started_at is None:
        version.started_at = now
    if not all(job.state.terminal for job in jobs):
        state = RequestState.RUNNING if started else RequestState.QUEUED
        done = sum(1 for job in jobs if job.state.terminal)
        reason = f"{done} of {len(jobs)} jobs done" if started else "waiting for workers"
        _set(version, state, reason, now)
        return False
    failed = next((job for job in jobs if job.state == JobState.FAILED), None)
    version.ended_at = now
    if failed is not None:
        version.passed_qa = False
        _set(version, RequestState.FAILED, failed.reason, now)
        return True
    passed = all(check.passed for check in checks)
    version.passed_qa = passed
    failing = [f"{check.image}: {check.notes[0] if check.rms_ratio > max_rms_ratio else check.notes[1]}"
               for check in checks if not check.passed]
    verdict = "every image passed QA" if passed else "QA not passed: " + "; ".join(failing)
    _set(version, RequestState.SUCCEEDED, f"{len(checks)} images made; {verdict}", now)
    return True


def _set(version: RequestVersion, state: RequestState, reason: str, now: datetime) -> None:
    if (version.state, version.reason) != (state, reason):
        version.state, version.reason, version.updated_at = state, reason, now


def uv_taper_arcsec(target_resolution_arcsec: float | None, beam_arcsec: float | None) -> float | None:
    """The Gaussian taper that widens a beam of `beam_arcsec` (geometric mean) to about the target: beams
    add in quadrature. None when no target is asked, or the data's beam is already that wide."""
    if target_resolution_arcsec is None or beam_arcsec is None or target_resolution_arcsec <= beam_arcsec:
        return None
    return round(math.sqrt(target_resolution_arcsec**2 - beam_arcsec**2), 4)


def beam_size_arcsec(image: ImageProduct) -> float:
    return math.sqrt(image.beam.major_arcsec * image.beam.minor_arcsec)


RunImages = dict[tuple[ImagingKind, int | None], ImageProduct]
"""The images of the MOUS's run by kind and spw (None: the aggregate continuum). With several targets the
last one's: the beam of one spw differs little from target to target."""


class OverridesFromRun:
    """The imaging overrides of a request's images: its robust and field size as asked, and a uv taper per
    image that reaches the asked resolution from the beam the MOUS's own image of that spw had."""

    def __init__(self, parameters: RequestCreate, run_images: RunImages) -> None:
        self.parameters = parameters
        self.run_images = run_images

    def __call__(self, kind: ImagingKind, spw: int | None) -> ImagingOverrides:
        reference = self.run_images.get((kind, spw)) or self.run_images.get((ImagingKind.MFS, spw))
        taper = uv_taper_arcsec(
            self.parameters.target_resolution_arcsec, beam_size_arcsec(reference) if reference else None
        )
        return ImagingOverrides(
            robust=self.parameters.robust, uvtaper_arcsec=taper, field_size_arcsec=self.parameters.field_size_arcsec
        )
