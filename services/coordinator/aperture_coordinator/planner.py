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

Large cubes are imaged in channel chunks, so that several workers share one cube: a spw with more native
channels than `cube_chunk_channels` (0: never) gets K = ceil(channels / cube_chunk_channels) cube_chunk
jobs, each imaging a contiguous range of near-equal size, and its cube job joins their images instead of
imaging (cheap: a concatenation along the spectral axis):

    contsub(t) ─┬─> cube_chunk(t, s, 1 of K) ─┐
                ├─> ...                        ├─> cube(t, s)  ─> previews, footprint
                └─> cube_chunk(t, s, K of K) ─┘

Such a cube has K + 1 jobs instead of one, and 2K edges instead of one; everything after the cube job
is as for a cube imaged in one job.

The quick-look recipe (Recipe.QUICKLOOK: a campaign's first pass, or a test's) makes the continuum images
only: no contsub, no cubes and no footprints, i.e. M_t findcont, M_t mfs, 1 cont and M_t + 1 previews jobs
per target (3·M_t + 2), and 3 + Σ_t (3·M_t + 2) jobs in all.

Job ids are readable and deterministic: the run, the stage, the imaging kind, a slug of the target name
and the spw, e.g. `r1.imaging.cube.ngc_1068.spw25` or `r2.footprint.cont.ngc_1068`; chunks end in their
number, counted from 1: `r1.imaging.cube_chunk.ngc_1068.spw25.c1of4`.
"""

import hashlib
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from aperture_contracts.enums import ImagingKind, Recipe, Stage
from aperture_contracts.imaging import ChannelChunk
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
    """Jobs in an order where every job comes after the jobs it depends on. `external` names jobs planned
    before, outside the graph, that its jobs may depend on too (a request's images depend on the MOUS's
    continuum finding and continuum subtraction)."""

    jobs: tuple[PlannedJob, ...]
    external: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        seen: set[str] = set(self.external)
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


def spw_channels(metadata: MousMetadata) -> dict[int, int]:
    """Native channels per spw id (as the first MS that has the spw describes it)."""
    channels: dict[int, int] = {}
    for ms in metadata.measurement_sets:
        for spw in ms.spectral_windows:
            channels.setdefault(spw.spw_id, spw.num_channels)
    return channels


def channel_chunks(total_channels: int, chunk_channels: int) -> list[ChannelChunk]:
    """The chunks a cube of `total_channels` native channels is imaged in: none (one job images it all)
    when chunking is off (0) or the cube is not larger than one chunk; else ceil(total / chunk_channels)
    contiguous ranges whose sizes differ by at most one channel, covering every channel once, in order."""
    if chunk_channels < 0:
        raise ValueError(f"a chunk size is a channel count, 0 for no chunking; got {chunk_channels}")
    if chunk_channels == 0 or total_channels <= chunk_channels:
        return []
    count = math.ceil(total_channels / chunk_channels)
    edges = [index * total_channels // count for index in range(count + 1)]
    return [
        ChannelChunk(
            index=index, count=count, first_channel=first, num_channels=end - first, total_channels=total_channels
        )
        for index, (first, end) in enumerate(zip(edges, edges[1:], strict=False))
    ]


def plan_processing(
    mous_id: str, run: int, metadata: MousMetadata | None, *, cube_chunk_channels: int = 0,
    recipe: Recipe = Recipe.FULL,
) -> JobGraph:
    """The job graph of run `run` of an MOUS: ingest alone until `metadata` is known, then everything the
    recipe makes. cube_chunk_channels: cubes with more native channels than this are imaged in chunks (0:
    never)."""
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
    chunks = {spw: channel_chunks(channels, cube_chunk_channels) for spw, channels in spw_channels(metadata).items()}
    for target, spws in spws_of.items():
        if spws:
            jobs.extend(_target_jobs(prefix, target, slugs[target], spws, calibration.job_id, chunks, recipe))

    depended_on = {dep for job in jobs for dep in job.depends_on}
    leaves = tuple(job.job_id for job in jobs if job.job_id not in depended_on)
    jobs.append(PlannedJob(f"{prefix}.{Stage.EXPORT.value}", Stage.EXPORT, depends_on=leaves))
    return JobGraph(tuple(jobs))


def _target_jobs(
    prefix: str, target: str, slug: str, spws: list[int], calibration: str,
    chunks_of: Mapping[int, list[ChannelChunk]], recipe: Recipe = Recipe.FULL,
) -> list[PlannedJob]:
    """Continuum finding, continuum subtraction, images (cubes in chunks where `chunks_of` has some for the
    spw), previews and footprints of one target."""
    findcont = {
        spw: PlannedJob(
            f"{prefix}.findcont.{slug}.spw{spw}", Stage.FINDCONT, target=target, spw_id=spw,
            depends_on=(calibration,),
        )
        for spw in spws
    }
    every_findcont = tuple(job.job_id for job in findcont.values())
    target_params = {"spw_ids": list(spws)}

    def imaging(
        kind: ImagingKind, spw: int | None, depends_on: Iterable[str], chunk: ChannelChunk | None = None
    ) -> PlannedJob:
        suffix = f".spw{spw}" if spw is not None else ""
        params: Mapping[str, object] = {} if spw is not None else target_params
        if chunk is not None:
            suffix += f".c{chunk.index + 1}of{chunk.count}"
            params = {"chunk": chunk.model_dump(mode="json")}
        return PlannedJob(
            f"{prefix}.imaging.{kind.value}.{slug}{suffix}", Stage.IMAGING, kind=kind.value, target=target,
            spw_id=spw, depends_on=tuple(depends_on), params=params,
        )

    mfs = [imaging(ImagingKind.MFS, spw, (findcont[spw].job_id,)) for spw in spws]
    cont = imaging(ImagingKind.CONT, None, every_findcont)
    if recipe is Recipe.QUICKLOOK:
        previews = [_follow_up(prefix, Stage.PREVIEWS, image, target) for image in [*mfs, cont]]
        return [*findcont.values(), *mfs, cont, *previews]
    contsub = imaging(ImagingKind.CONTSUB, None, every_findcont)
    cube_chunks = {
        spw: [imaging(ImagingKind.CUBE_CHUNK, spw, (contsub.job_id,), chunk) for chunk in chunks_of.get(spw, [])]
        for spw in spws
    }
    # A cube in chunks is joined by its cube job; one without images the cube itself.
    cubes = [
        imaging(ImagingKind.CUBE, spw, [chunk.job_id for chunk in cube_chunks[spw]] or [contsub.job_id])
        for spw in spws
    ]

    image_jobs = [*mfs, cont, *cubes]
    follow_ups: list[PlannedJob] = []
    for stage in (Stage.PREVIEWS, Stage.FOOTPRINT):
        follow_ups += [_follow_up(prefix, stage, image, target) for image in image_jobs]
    every_chunk = [chunk for spw in spws for chunk in cube_chunks[spw]]
    return [*findcont.values(), contsub, *mfs, cont, *every_chunk, *cubes, *follow_ups]


def _follow_up(prefix: str, stage: Stage, image: PlannedJob, target: str) -> PlannedJob:
    """The previews or footprint job of an image job."""
    image_name = image.job_id.removeprefix(f"{prefix}.imaging.")
    return PlannedJob(
        f"{prefix}.{stage.value}.{image_name}", stage, kind=image.kind, target=target, spw_id=image.spw_id,
        depends_on=(image.job_id,), params={"image_job": image.job_id},
    )
