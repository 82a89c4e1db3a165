"""The job graph of one run of an MOUS, planned from what ingest learned (a pure function of its inputs).

Before ingest has described the data the graph is the ingest job alone. Afterwards it fans out over
science targets and spectral windows, the way the ALMA imaging recipe works through them:

    ingest ─> calibration ─> findcont(t, s) ──┬─> mfs(t, s)                       ─┐
                                              ├─> cont(t)     [all findcont of t]  ├─> previews(img)
                                              └─> contsub(t)  [all findcont of t]  │   footprint(img)
                                                    └─> cube(t, s)                ─┘        │
                                                                     export <─ every leaf ──┘

For a target t observed in M_t science spws that is M_t findcont jobs, 1 contsub, M_t mfs, 1 cont and
M_t cube jobs; each of the 2·M_t + 1 image jobs (mfs, cont, cube) has one previews and one footprint job:
7·M_t + 4 jobs per target. With ingest, calibration and export the graph holds

    3 + Σ_t (7·M_t + 4) jobs,  i.e.  3 + 7·N·M + 4·N  when each of N targets is observed in all M spws.

A target observed in none of the science spws gets no jobs (there is nothing to image). Export depends
directly on every job nothing else depends on, hence on every job of the run.

Job ids are readable and deterministic: the run, the stage, the imaging kind, a slug of the target name
and the spw, e.g. `r1.imaging.cube.ngc_1068.spw25` or `r2.footprint.cont.ngc_1068`.
"""

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from aperture_contracts.enums import ImagingKind, Stage
from aperture_contracts.metadata import MousMetadata

_SLUG_UNSAFE = re.compile(r"[^a-z0-9-]+")
# Long enough to read, short enough that the longest job id stays far below JobId's 200 characters.
_SLUG_MAX = 48


@dataclass(frozen=True)
class PlannedJob:
    job_id: str
    stage: Stage
    kind: str = ""
    target: str | None = None
    spw_id: int | None = None
    depends_on: tuple[str, ...] = ()
    params: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class JobGraph:
    """Jobs in an order where every job comes after the jobs it depends on."""

    jobs: tuple[PlannedJob, ...]

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for job in self.jobs:
            if job.job_id in seen:
                raise ValueError(f"job id {job.job_id} is planned twice")
            unknown = [dep for dep in job.depends_on if dep not in seen]
            if unknown:
                raise ValueError(f"job {job.job_id} depends on {unknown}, which are not planned before it")
            seen.add(job.job_id)

    def __len__(self) -> int:
        return len(self.jobs)

    def job(self, job_id: str) -> PlannedJob:
        for job in self.jobs:
            if job.job_id == job_id:
                return job
        raise KeyError(job_id)

    @property
    def job_ids(self) -> list[str]:
        return [job.job_id for job in self.jobs]

    def edges(self) -> set[tuple[str, str]]:
        """(job, job it depends on) pairs."""
        return {(job.job_id, dep) for job in self.jobs for dep in job.depends_on}

    def by_stage(self, stage: Stage, kind: str | None = None) -> list[PlannedJob]:
        return [j for j in self.jobs if j.stage == stage and (kind is None or j.kind == kind)]


def ingest_job_id(run: int) -> str:
    return f"r{run}.{Stage.INGEST.value}"


def target_slugs(targets: Sequence[str]) -> dict[str, str]:
    """A slug per target name that is safe in a job id, unique among the targets and stable: a name that
    had to be shortened, or that reads like another target once lowercased, gets a short hash of itself."""
    plain = {name: _SLUG_UNSAFE.sub("_", name.lower()).strip("_-") or "target" for name in targets}
    counts: dict[str, int] = {}
    for slug in plain.values():
        counts[slug] = counts.get(slug, 0) + 1
    slugs: dict[str, str] = {}
    for name, slug in plain.items():
        if len(slug) > _SLUG_MAX or counts[slug] > 1:
            digest = hashlib.sha256(name.encode()).hexdigest()[:8]
            slug = f"{slug[: _SLUG_MAX - 9].rstrip('_-')}-{digest}"
        slugs[name] = slug
    return slugs


def target_spws(metadata: MousMetadata) -> dict[str, list[int]]:
    """The science spws each science target was observed in, targets in the order metadata lists them.

    A field that lists no spws (a description that does not say) is taken to cover every science spw.
    """
    science = set(metadata.science_spw_ids)
    observed: dict[str, set[int]] = {name: set() for name in metadata.science_targets}
    for ms in metadata.measurement_sets:
        for field_info in ms.fields:
            if field_info.name not in observed:
                continue
            spws = field_info.spw_ids or metadata.science_spw_ids
            observed[field_info.name].update(spw for spw in spws if spw in science)
    ordered = list(dict.fromkeys(metadata.science_spw_ids))
    return {name: [spw for spw in ordered if spw in spws] for name, spws in observed.items()}


def plan_processing(mous_id: str, run: int, metadata: MousMetadata | None) -> JobGraph:
    """The job graph of run `run` of an MOUS: ingest alone until `metadata` is known, then everything."""
    if run < 1:
        raise ValueError(f"run numbers start at 1, got {run}")
    prefix = f"r{run}"
    ingest = PlannedJob(ingest_job_id(run), Stage.INGEST)
    if metadata is None:
        return JobGraph((ingest,))

    calibration = PlannedJob(
        f"{prefix}.{Stage.CALIBRATION.value}", Stage.CALIBRATION, depends_on=(ingest.job_id,)
    )
    jobs: list[PlannedJob] = [ingest, calibration]
    spws_of = target_spws(metadata)
    slugs = target_slugs(list(spws_of))
    for target, spws in spws_of.items():
        if spws:
            jobs.extend(_target_jobs(prefix, target, slugs[target], spws, calibration.job_id))

    depended_on = {dep for job in jobs for dep in job.depends_on}
    leaves = tuple(job.job_id for job in jobs if job.job_id not in depended_on)
    jobs.append(PlannedJob(f"{prefix}.{Stage.EXPORT.value}", Stage.EXPORT, depends_on=leaves))
    return JobGraph(tuple(jobs))


def _target_jobs(prefix: str, target: str, slug: str, spws: list[int], calibration: str) -> list[PlannedJob]:
    """Continuum finding, continuum subtraction, images, previews and footprints of one target."""
    findcont = {
        spw: PlannedJob(
            f"{prefix}.findcont.{slug}.spw{spw}", Stage.FINDCONT, target=target, spw_id=spw,
            depends_on=(calibration,),
        )
        for spw in spws
    }
    every_findcont = tuple(job.job_id for job in findcont.values())
    target_params = {"spw_ids": list(spws)}

    def imaging(kind: ImagingKind, spw: int | None, depends_on: Iterable[str]) -> PlannedJob:
        suffix = f".spw{spw}" if spw is not None else ""
        return PlannedJob(
            f"{prefix}.imaging.{kind.value}.{slug}{suffix}", Stage.IMAGING, kind=kind.value, target=target,
            spw_id=spw, depends_on=tuple(depends_on), params={} if spw is not None else target_params,
        )

    contsub = imaging(ImagingKind.CONTSUB, None, every_findcont)
    mfs = [imaging(ImagingKind.MFS, spw, (findcont[spw].job_id,)) for spw in spws]
    cont = imaging(ImagingKind.CONT, None, every_findcont)
    cubes = [imaging(ImagingKind.CUBE, spw, (contsub.job_id,)) for spw in spws]

    image_jobs = [*mfs, cont, *cubes]
    follow_ups: list[PlannedJob] = []
    for stage in (Stage.PREVIEWS, Stage.FOOTPRINT):
        for image in image_jobs:
            image_name = image.job_id.removeprefix(f"{prefix}.imaging.")
            follow_ups.append(
                PlannedJob(
                    f"{prefix}.{stage.value}.{image_name}", stage, kind=image.kind, target=target,
                    spw_id=image.spw_id, depends_on=(image.job_id,), params={"image_job": image.job_id},
                )
            )
    return [*findcont.values(), contsub, *mfs, cont, *cubes, *follow_ups]
