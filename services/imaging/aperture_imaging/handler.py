"""The imaging stage: continuum subtraction of a target (contsub), or one image of it (mfs of one spw,
cont over its spws, cube of one spw on the continuum-subtracted data), stored as FITS products.

The handler checks and plans from the job alone (pure: a wrong job fails before any download), fetches
the Measurement Sets, runs the CASA step, stores what it wrote, and scores QA from the step's figures.
"""

import asyncio
from dataclasses import asdict
from pathlib import Path

from aperture_contracts.enums import ImagingKind
from aperture_contracts.events import ImagingResult
from aperture_contracts.imaging import ImageProduct
from aperture_contracts.jobs import ImagingJob
from aperture_contracts.qa import QAScore
from aperture_contracts.storage import ObjectRef
from aperture_shared.errors import BadInput
from aperture_shared.worker import JobContext, JobOutcome

from aperture_imaging import imaging_qa
from aperture_imaging.continuum_selection import ImagingSelection, imaging_selection, plan_continuum_subtraction
from aperture_imaging.naming import IMAGE, MAIN_ROLES, PB, PBCOR, product_stem
from aperture_imaging.steps import ContsubStepResult, ImageStepResult

FITS_CONTENT_TYPE = "application/fits"
SINGLE_SPW_KINDS = (ImagingKind.MFS, ImagingKind.CUBE)
# tclean's deconvolvers that the heuristics can run with (single-scale, multi-scale, multi-term).
DECONVOLVERS = ("hogbom", "clark", "multiscale", "mtmfs")


async def image(job: ImagingJob, context: JobContext) -> JobOutcome:
    channels_by_spw = check_job(job)
    measurement_sets = await fetch_measurement_sets(job, context)
    if job.kind == ImagingKind.CONTSUB:
        return await _subtract_continuum(job, context, measurement_sets, channels_by_spw)
    return await _make_image(job, context, measurement_sets, channels_by_spw)


def check_job(job: ImagingJob) -> dict[int, int]:
    """BadInput unless the job's target, spws and kind agree with the MOUS; returns channels per spw."""
    channels_by_spw: dict[int, int] = {}
    fields: set[str] = set()
    for ms in job.metadata.measurement_sets:
        fields.update(field.name for field in ms.fields)
        for spw in ms.spectral_windows:
            channels_by_spw.setdefault(spw.spw_id, spw.num_channels)
    if job.target not in fields:
        raise BadInput(
            f"the job's target {job.target!r} is not a field of this MOUS (fields: {', '.join(sorted(fields))})"
        )
    unknown = [spw for spw in job.spw_ids if spw not in channels_by_spw]
    if unknown:
        raise BadInput(
            f"the job's spw(s) {unknown} are not spectral windows of this MOUS (it has {sorted(channels_by_spw)})"
        )
    if job.kind in SINGLE_SPW_KINDS and len(job.spw_ids) != 1:
        raise BadInput(
            f"a {job.kind.value} image is made of one spw, the job names {len(job.spw_ids)} ({job.spw_ids}); "
            "send one job per spw (the aggregate continuum is kind 'cont')"
        )
    if len(set(job.spw_ids)) != len(job.spw_ids):
        raise BadInput(f"the job names a spw more than once: {job.spw_ids}")
    overrides = job.overrides
    if overrides.deconvolver is not None and overrides.deconvolver not in DECONVOLVERS:
        raise BadInput(
            f"overrides.deconvolver {overrides.deconvolver!r} is not one of {', '.join(DECONVOLVERS)}"
        )
    if overrides.imsize is not None and min(overrides.imsize) < 2:
        raise BadInput(f"overrides.imsize {overrides.imsize} must be two pixel counts of at least 2 (nx, ny)")
    return channels_by_spw


async def fetch_measurement_sets(job: ImagingJob, context: JobContext) -> list[Path]:
    """Each MS tar object into its own folder (two MSs may share a name)."""
    paths: list[Path] = []
    for index, ref in enumerate(job.measurement_sets):
        folder = context.scratch / "input" / str(index)
        folder.mkdir(parents=True)
        paths.append(await asyncio.to_thread(context.store.get_directory, ref, folder))
    return paths


async def _subtract_continuum(
    job: ImagingJob, context: JobContext, measurement_sets: list[Path], channels_by_spw: dict[int, int]
) -> JobOutcome:
    plan = plan_continuum_subtraction(job.target, job.spw_ids, job.continuum, channels_by_spw)
    step = ContsubStepResult.model_validate(
        await context.casa(
            "aperture_imaging.steps:subtract_continuum",
            {
                "measurement_sets": [str(path) for path in measurement_sets],
                "target": job.target,
                "subtract": [asdict(entry) for entry in plan.subtract],
                "pass_through": plan.pass_through,
                "output_dir": str(context.scratch / "contsub"),
            },
        )
    )
    stored = [
        await context.put_directory(f"measurement_sets/{Path(ms.path).name}.tar", Path(ms.path))
        for ms in step.measurement_sets
    ]
    qa = [
        imaging_qa.continuum_subtraction_score(
            entry.spw_id, entry.fitorder, entry.continuum_channels, entry.nchan, f"{job.target} spw{entry.spw_id}"
        )
        for entry in plan.subtract
    ] + [
        imaging_qa.continuum_subtraction_score(spw, None, 0, channels_by_spw[spw], f"{job.target} spw{spw}")
        for spw in plan.pass_through
    ]
    return JobOutcome(
        result=ImagingResult(
            kind=job.kind, target=job.target, spw_ids=job.spw_ids, measurement_sets=stored
        ),
        outputs=stored,
        qa=qa,
    )


async def _make_image(
    job: ImagingJob, context: JobContext, measurement_sets: list[Path], channels_by_spw: dict[int, int]
) -> JobOutcome:
    selection = imaging_selection(job.kind, job.target, job.spw_ids, job.continuum, channels_by_spw)
    imaged_spws = [spw.spw_id for spw in selection.spws]
    stem = product_stem(job.mous_id, job.target, imaged_spws, job.kind)
    step = ImageStepResult.model_validate(
        await context.casa(
            "aperture_imaging.steps:make_image",
            {
                "measurement_sets": [str(path) for path in measurement_sets],
                "target": job.target,
                "kind": job.kind.value,
                "spw_channels": {str(spw.spw_id): spw.channels for spw in selection.spws},
                "overrides": job.overrides.model_dump(mode="json"),
                "size_limits": job.size_limits.model_dump(mode="json"),
                "work_dir": str(context.scratch / "imaging"),
                "fits_dir": str(context.scratch / "fits"),
                "product_stem": stem,
                "mous_id": job.mous_id,
            },
        )
    )
    stored: dict[str, ObjectRef] = {}
    for role, path in step.fits.items():
        stored[role] = await context.put_file(Path(path).name, Path(path), FITS_CONTENT_TYPE, product=True)
    qa = image_scores(job.kind, stem, step, selection, channels_by_spw)
    product = ImageProduct(
        kind=job.kind, target=job.target, spw_ids=imaged_spws,
        pbcor=stored[PBCOR], image=stored[IMAGE], pb=stored[PB],
        extra=[ref for role, ref in stored.items() if role not in MAIN_ROLES],
        beam=step.beam, cell_arcsec=step.cell_arcsec, imsize=step.imsize, num_channels=step.num_channels,
        frequency_min_hz=step.frequency_min_hz, frequency_max_hz=step.frequency_max_hz, rms_jy=step.rms_jy,
        peak_jy=step.peak_jy, theoretical_sensitivity_jy=step.theoretical_sensitivity_jy,
        threshold_jy=step.threshold_jy, mitigation=step.mitigation, qa=qa,
    )
    return JobOutcome(
        result=ImagingResult(kind=job.kind, target=job.target, spw_ids=job.spw_ids, images=[product]),
        outputs=list(stored.values()),
        qa=qa,
    )


def image_scores(
    kind: ImagingKind, applies_to: str, step: ImageStepResult, selection: ImagingSelection,
    channels_by_spw: dict[int, int],
) -> list[QAScore]:
    """The image's QA: noise against theory, beam against the uv coverage, clean's behaviour, and for
    continuum images which channels they are made of."""
    scores = [
        imaging_qa.sensitivity_score(step.rms_jy, step.theoretical_sensitivity_jy, applies_to),
        imaging_qa.beam_score(step.beam, step.expected_beam_arcsec, applies_to),
        imaging_qa.divergence_score(step.peak_residual_growth, step.stopcode, applies_to),
        imaging_qa.clean_completion_score(step.stopcode, step.stop_description, step.iterations, applies_to),
    ]
    if kind in (ImagingKind.MFS, ImagingKind.CONT):
        scores.append(
            imaging_qa.continuum_selection_score(
                sum(spw.used_channels for spw in selection.spws),
                sum(spw.nchan for spw in selection.spws) + sum(channels_by_spw[spw] for spw in selection.left_out),
                selection.fallback, selection.describe(), applies_to,
            )
        )
    return scores
