"""The imaging stage: continuum subtraction of a target (contsub), or one image of it (mfs of one spw,
cont over its spws, cube of one spw on the continuum-subtracted data), stored as FITS products. A cube
planned in channel chunks is imaged by cube_chunk jobs, whose CASA images are intermediates, and joined
by its cube job, which makes the cube's products and QA as a cube made in one job would have them.

The handler checks and plans from the job alone (pure: a wrong job fails before any download), fetches
the Measurement Sets (or the chunks' images), runs the CASA step, stores what it wrote, and scores QA
from the step's figures.
"""

import asyncio
from dataclasses import asdict
from pathlib import Path

from aperture_contracts.enums import ImagingKind
from aperture_contracts.events import ImagingResult
from aperture_contracts.imaging import CubeChunkImage, ImageProduct
from aperture_contracts.jobs import ImagingJob
from aperture_contracts.qa import QAScore
from aperture_contracts.storage import ObjectRef
from aperture_shared.errors import BadInput
from aperture_shared.worker import JobContext, JobOutcome

from aperture_imaging import heuristics, imaging_qa
from aperture_imaging.continuum_selection import ImagingSelection, imaging_selection, plan_continuum_subtraction
from aperture_imaging.cube_chunks import check_chunk_images, joined_clean
from aperture_imaging.naming import IMAGE, MAIN_ROLES, PB, PBCOR, chunk_image_name, chunk_image_role, product_stem
from aperture_imaging.spectral_axis import check_spectral_axis
from aperture_imaging.steps import ContsubStepResult, ImageStepResult, JoinStepResult

FITS_CONTENT_TYPE = "application/fits"
SINGLE_SPW_KINDS = (ImagingKind.MFS, ImagingKind.CUBE, ImagingKind.CUBE_CHUNK)
# tclean's deconvolvers that the heuristics can run with (single-scale, multi-scale, multi-term).
DECONVOLVERS = ("hogbom", "clark", "multiscale", "mtmfs")


async def image(job: ImagingJob, context: JobContext) -> JobOutcome:
    channels_by_spw = check_job(job)
    if job.chunks:
        return await _join_cube(job, context, channels_by_spw)
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
    _check_chunking(job, channels_by_spw)
    overrides = job.overrides
    if overrides.deconvolver is not None and overrides.deconvolver not in DECONVOLVERS:
        raise BadInput(
            f"overrides.deconvolver {overrides.deconvolver!r} is not one of {', '.join(DECONVOLVERS)}"
        )
    if overrides.imsize is not None and min(overrides.imsize) < 2:
        raise BadInput(f"overrides.imsize {overrides.imsize} must be two pixel counts of at least 2 (nx, ny)")
    if job.spectral_axis is not None:
        # The API refuses such requests already; a job that slips through fails here, before any download.
        spw = next(
            spw for ms in job.metadata.measurement_sets for spw in ms.spectral_windows if spw.spw_id == job.spw_ids[0]
        )
        problems = check_spectral_axis(job.spectral_axis, spw)
        if problems:
            raise BadInput(f"the cube of spw {spw.spw_id} cannot be made as asked: {'; '.join(problems)}")
    return channels_by_spw


def _check_chunking(job: ImagingJob, channels_by_spw: dict[int, int]) -> None:
    """A cube_chunk job names its chunk of the spw's channels; a cube job that joins carries chunk images
    of its own target and spw; every other job reads Measurement Sets."""
    if (job.kind == ImagingKind.CUBE_CHUNK) != (job.chunk is not None):
        raise BadInput(
            f"a {job.kind.value} job {'must name' if job.chunk is None else 'cannot have'} a channel chunk: "
            "chunks are imaged by cube_chunk jobs only"
        )
    if job.chunk is not None and job.chunk.total_channels != channels_by_spw[job.spw_ids[0]]:
        raise BadInput(
            f"the job's {job.chunk.describe()} does not fit spw {job.spw_ids[0]}, which has "
            f"{channels_by_spw[job.spw_ids[0]]} channels"
        )
    if job.chunks:
        if job.kind != ImagingKind.CUBE:
            raise BadInput(f"only a cube job joins chunk images; this is a {job.kind.value} job")
        strangers = [
            f"{image.kind.value} of {image.target!r} spw {image.spw_ids}"
            for image in job.chunks
            if image.kind != ImagingKind.CUBE_CHUNK or image.target != job.target or image.spw_ids != job.spw_ids
        ]
        if strangers:
            raise BadInput(
                f"the cube of {job.target!r} spw {job.spw_ids} can only join its own chunks, not {', '.join(strangers)}"
            )
    elif not job.measurement_sets:
        raise BadInput(f"the {job.kind.value} job names no Measurement Set to work on")


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
    # A chunk is a cube restricted to some channels: selected, planned and named as its whole cube.
    kind = ImagingKind.CUBE if job.kind == ImagingKind.CUBE_CHUNK else job.kind
    selection = imaging_selection(kind, job.target, job.spw_ids, job.continuum, channels_by_spw)
    imaged_spws = [spw.spw_id for spw in selection.spws]
    stem = product_stem(job.mous_id, job.target, imaged_spws, kind)
    step = ImageStepResult.model_validate(
        await context.casa(
            "aperture_imaging.steps:make_image",
            {
                "measurement_sets": [str(path) for path in measurement_sets],
                "target": job.target,
                "kind": kind.value,
                "spw_channels": {str(spw.spw_id): spw.channels for spw in selection.spws},
                "overrides": job.overrides.model_dump(mode="json"),
                "size_limits": job.size_limits.model_dump(mode="json"),
                "work_dir": str(context.scratch / "imaging"),
                "fits_dir": str(context.scratch / "fits"),
                "product_stem": stem,
                "mous_id": job.mous_id,
                "chunk": job.chunk.model_dump(mode="json") if job.chunk else None,
                "spectral_axis": job.spectral_axis.model_dump(mode="json") if job.spectral_axis else None,
            },
        )
    )
    if job.chunk is not None:
        return await _store_chunk(job, context, stem, step, imaged_spws)
    stored: dict[str, ObjectRef] = {}
    for role, path in step.fits.items():
        stored[role] = await context.put_file(Path(path).name, Path(path), FITS_CONTENT_TYPE, product=True)
    qa = image_scores(job.kind, stem, step, selection, channels_by_spw)
    return _image_outcome(job, imaged_spws, stored, step, qa)


def _image_outcome(
    job: ImagingJob, imaged_spws: list[int], stored: dict[str, ObjectRef], step: ImageStepResult,
    qa: list[QAScore], *, imaged_in_chunks: int = 1, chunk: CubeChunkImage | None = None,
) -> JobOutcome:
    product = ImageProduct(
        kind=job.kind, target=job.target, spw_ids=imaged_spws,
        pbcor=stored[PBCOR], image=stored[IMAGE], pb=stored[PB],
        extra=[ref for role, ref in stored.items() if role not in MAIN_ROLES],
        beam=step.beam, cell_arcsec=step.cell_arcsec, imsize=step.imsize, num_channels=step.num_channels,
        frequency_min_hz=step.frequency_min_hz, frequency_max_hz=step.frequency_max_hz, rms_jy=step.rms_jy,
        peak_jy=step.peak_jy, theoretical_sensitivity_jy=step.theoretical_sensitivity_jy,
        threshold_jy=step.threshold_jy, mitigation=step.mitigation, qa=qa, imaged_in_chunks=imaged_in_chunks,
        chunk=chunk,
    )
    return JobOutcome(
        result=ImagingResult(kind=job.kind, target=job.target, spw_ids=job.spw_ids, images=[product]),
        outputs=list(stored.values()),
        qa=qa,
    )


async def _store_chunk(
    job: ImagingJob, context: JobContext, stem: str, step: ImageStepResult, imaged_spws: list[int]
) -> JobOutcome:
    """A chunk's CASA images go to its work prefix (intermediates, not products); its figures go with its
    result to the cube job, which scores QA once, on the joined cube."""
    assert job.chunk is not None
    stored = {
        role: await context.put_directory(chunk_image_name(stem, role, job.chunk.index, job.chunk.count), Path(path))
        for role, path in step.casa_images.items()
    }
    record = CubeChunkImage(
        chunk=job.chunk, first_output_channel=step.first_channel, cube_channels=step.cube_channels,
        channel_binning=step.channel_binning, deconvolver=step.deconvolver, pb_level=step.pb_level,
        expected_beam_arcsec=step.expected_beam_arcsec, dirty_peak_jy=step.dirty_peak_jy, niter=step.niter,
        iterations=step.iterations, stopcode=step.stopcode, stop_description=step.stop_description,
        peak_residual_growth=step.peak_residual_growth,
    )
    return _image_outcome(job, imaged_spws, stored, step, [], chunk=record)


async def _join_cube(job: ImagingJob, context: JobContext, channels_by_spw: dict[int, int]) -> JobOutcome:
    """The cube of a spw imaged in chunks: the chunks' images joined along the spectral axis and exported
    under the cube's names, its figures measured on the joined cube (or, for clean, combined from the
    chunks'), its QA scored as for a cube made in one job."""
    stem = product_stem(job.mous_id, job.target, job.spw_ids, ImagingKind.CUBE)
    records = check_chunk_images(f"the cube {stem}", job.chunks)
    chunk_paths: list[dict[str, str]] = []
    for image, record in zip(job.chunks, records, strict=True):
        folder = context.scratch / "chunks" / str(record.chunk.index)
        paths: dict[str, str] = {}
        for ref in [image.pbcor, image.image, image.pb, *image.extra]:
            role = chunk_image_role(ref.key)
            (folder / role).mkdir(parents=True)
            paths[role] = str(await asyncio.to_thread(context.store.get_directory, ref, folder / role))
        chunk_paths.append(paths)
    joined = JoinStepResult.model_validate(
        await context.casa(
            "aperture_imaging.steps:join_cube",
            {
                "chunks": chunk_paths, "cube": f"the cube {stem}", "pblimit": records[0].pb_level,
                "work_dir": str(context.scratch / "joined"), "fits_dir": str(context.scratch / "fits"),
                "product_stem": stem, "mous_id": job.mous_id, "spw_ids": job.spw_ids,
            },
        )
    )
    stored: dict[str, ObjectRef] = {}
    for role, path in joined.fits.items():
        stored[role] = await context.put_file(Path(path).name, Path(path), FITS_CONTENT_TYPE, product=True)
    first, clean = job.chunks[0], joined_clean(job.chunks, records)
    step = ImageStepResult(
        fits=joined.fits, deconvolver=records[0].deconvolver, nterms=1, beam=joined.beam,
        expected_beam_arcsec=records[0].expected_beam_arcsec, cell_arcsec=first.cell_arcsec, imsize=first.imsize,
        num_channels=joined.num_channels, cube_channels=joined.num_channels,
        channel_binning=records[0].channel_binning, pb_level=records[0].pb_level,
        frequency_min_hz=joined.frequency_min_hz, frequency_max_hz=joined.frequency_max_hz, rms_jy=joined.rms_jy,
        peak_jy=joined.peak_jy, theoretical_sensitivity_jy=first.theoretical_sensitivity_jy,
        threshold_jy=clean.threshold_jy, dirty_peak_jy=clean.dirty_peak_jy,
        dynamic_range_correction=heuristics.dynamic_range_correction(
            clean.dirty_peak_jy, first.theoretical_sensitivity_jy
        ),
        niter=clean.niter, iterations=clean.iterations, stopcode=clean.stopcode,
        stop_description=clean.stop_description, peak_residual_growth=clean.peak_residual_growth,
        mitigation=first.mitigation,
    )
    selection = imaging_selection(ImagingKind.CUBE, job.target, job.spw_ids, job.continuum, channels_by_spw)
    qa = image_scores(ImagingKind.CUBE, stem, step, selection, channels_by_spw)
    return _image_outcome(job, job.spw_ids, stored, step, qa, imaged_in_chunks=len(records))


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
