"""The jobs of one version of a user's imaging request (a pure function of its inputs).

A request images data the MOUS's own run has already prepared: its images read the calibrated data and the
continuum ranges of the run's findcont jobs, its cubes the run's continuum-subtracted data. So a version's
jobs depend on those jobs of the run (which have succeeded: a request is accepted for a completed MOUS
only), never on jobs of their own stage before them:

    run's findcont(t, s) ──> mfs(t, s) ──> previews
    run's findcont(t, *) ──> cont(t)   ──> previews
    run's contsub(t)     ──> cube(t, s) [spws asked for] ──> previews

Continuum images (per spw and aggregate) are always made, with the request's weighting, taper and field;
cubes only for the spws asked for, on the spectral axis asked for, each in one job. There is no export:
the version's products are its images and previews, listed with download links by the API.

Job ids start with the request and version (`req-1a2b3c.v2.imaging.cube.ngc_1068.spw25`), so they are
unique within the MOUS, and its products go under the version's own folder (`request_products_prefix`).
"""

from collections.abc import Callable

from aperture_contracts.enums import ImagingKind, Recipe, Stage
from aperture_contracts.ids import mous_key
from aperture_contracts.imaging import ImagingOverrides
from aperture_contracts.metadata import MousMetadata
from aperture_contracts.requests import RequestCreate

from aperture_coordinator.planner import JobGraph, PlannedJob, plan_processing, target_slugs, target_spws

OverridesFor = Callable[[ImagingKind, int | None], ImagingOverrides]
"""The imaging overrides of one image of the request: by kind and spw (None for the aggregate continuum)."""


def request_products_prefix(mous_id: str, request_id: str, version: int) -> str:
    return f"mous/{mous_key(mous_id)}/requests/{request_id}/v{version}/"


def requests_prefix(mous_id: str) -> str:
    return f"mous/{mous_key(mous_id)}/requests/"


def version_job_prefix(request_id: str, version: int) -> str:
    return f"{request_id}.v{version}"


def plan_request_version(
    mous_id: str,
    run: int,
    metadata: MousMetadata,
    request_id: str,
    version: int,
    parameters: RequestCreate,
    overrides_for: OverridesFor,
    recipe: Recipe = Recipe.FULL,
) -> JobGraph:
    """The version's images and their previews, depending on run `run`'s continuum finding and subtraction
    (a run of the quick-look recipe has none: it takes requests for continuum images only)."""
    pipeline = plan_processing(mous_id, run, metadata, recipe=recipe)
    prefix = version_job_prefix(request_id, version)
    products_prefix = request_products_prefix(mous_id, request_id, version)
    cube_axes = {cube.spw_id: cube.spectral_axis for cube in parameters.cubes}
    spws_of = {target: spws for target, spws in target_spws(metadata).items() if spws}
    slugs = target_slugs(list(target_spws(metadata)))

    def pipeline_job(stage: Stage, kind: str, target: str, spw: int | None) -> str:
        for job in pipeline.by_stage(stage, kind):
            if job.target == target and job.spw_id == spw:
                return job.job_id
        raise LookupError(f"run {run} of {mous_id} has no {stage.value} {kind} job of {target} spw {spw}")

    def image(kind: ImagingKind, target: str, spw: int | None, depends_on: tuple[str, ...]) -> PlannedJob:
        params: dict[str, object] = {
            "products_prefix": products_prefix,
            "overrides": overrides_for(kind, spw).model_dump(mode="json", exclude_none=True),
        }
        if spw is None:
            params["spw_ids"] = list(spws_of[target])
        if kind == ImagingKind.CUBE and spw is not None:
            params["spectral_axis"] = cube_axes[spw].model_dump(mode="json")
        suffix = f".spw{spw}" if spw is not None else ""
        return PlannedJob(
            f"{prefix}.imaging.{kind.value}.{slugs[target]}{suffix}", Stage.IMAGING, kind=kind.value, target=target,
            spw_id=spw, depends_on=depends_on, params=params,
        )

    jobs: list[PlannedJob] = []
    for target, spws in spws_of.items():
        findcont = {spw: pipeline_job(Stage.FINDCONT, "", target, spw) for spw in spws}
        images = [image(ImagingKind.MFS, target, spw, (findcont[spw],)) for spw in spws]
        images.append(image(ImagingKind.CONT, target, None, tuple(findcont.values())))
        cube_spws = [spw for spw in spws if spw in cube_axes]
        if cube_spws:
            contsub = pipeline_job(Stage.IMAGING, ImagingKind.CONTSUB.value, target, None)
            images += [image(ImagingKind.CUBE, target, spw, (contsub,)) for spw in cube_spws]
        jobs += images
        jobs += [
            PlannedJob(
                f"{prefix}.{Stage.PREVIEWS.value}.{job.job_id.removeprefix(f'{prefix}.imaging.')}", Stage.PREVIEWS,
                kind=job.kind, target=target, spw_id=job.spw_id, depends_on=(job.job_id,),
                params={"image_job": job.job_id, "products_prefix": products_prefix},
            )
            for job in images
        ]
    return JobGraph(tuple(jobs), external=frozenset(pipeline.job_ids))
