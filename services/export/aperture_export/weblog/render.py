"""Render a WeblogModel into a folder of static HTML pages (jinja2 templates, autoescaped).

    index.html              observation summary, overall QA, targets, spws, stages, images by target
    tasks.html              each stage with its QA band, job counts, timings and notable messages
    stages/<stage>.html     every job of a stage, grouped by target: state, timings, QA, inputs, log
    images/<image>.html     one image: previews, figures (rms, beam, threshold, sensitivity), QA, FITS links
    static/, previews/, logs/

All links are relative, and nothing is loaded from another host, so the folder works from a web server,
from disk and from inside a tarball's extraction alike. For MOUSes with many targets x spws the long
lists are grouped by target in <details> sections (closed unless there are few), thumbnails load lazily,
and a small script filters rows by target, spw, kind and QA band; without JavaScript every section is
still there to open by hand.
"""

import re
import shutil
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from importlib.resources import files
from pathlib import Path
from typing import Any

from aperture_contracts.enums import ImagingKind, JobState, Stage
from aperture_contracts.qa import QABand, QAScore, lowest_score
from jinja2 import Environment, PackageLoader, StrictUndefined

from aperture_export.weblog import formatting
from aperture_export.weblog.model import ImageRecord, JobRecord, WeblogModel

NO_BAND = "none"  # the filter's value for rows without any QA score
KIND_ORDER = [ImagingKind.CONT, ImagingKind.MFS, ImagingKind.CUBE, ImagingKind.CUBE_CHUNK, ImagingKind.CONTSUB]
MOUS_WIDE = "MOUS-wide"  # the group of jobs that concern no single target (ingest, calibration)
STATIC_FILES = ("weblog.css", "weblog.js")


@dataclass(frozen=True)
class ImageView:
    record: ImageRecord
    title: str
    page: str  # relative to the weblog's root
    previews: list[tuple[str, str]]  # (caption, href relative to the root)
    band: str


@dataclass(frozen=True)
class JobView:
    record: JobRecord
    log: str | None  # href relative to the root
    band: str


@dataclass
class Group:
    """The rows of one target (the unit that opens and closes, and that the filter hides when empty)."""

    anchor: str
    title: str
    rows: list[Any] = field(default_factory=list)
    open: bool = False

    @property
    def band(self) -> str:
        return _band(lowest_score(s for row in self.rows if (s := row.record.lowest_qa) is not None))

    @property
    def band_counts(self) -> dict[str, int]:
        """Rows per band, worst first (with many targets every lowest band tends to be red; counts tell more)."""
        counts = Counter(row.band for row in self.rows)
        return {band: counts[band] for band in [*(b.value for b in QABand), NO_BAND] if counts[band]}


@dataclass(frozen=True)
class StageView:
    stage: Stage
    page: str
    jobs: list[JobView]
    groups: list[Group]
    lowest: QAScore | None
    states: dict[str, int]
    attempts: int
    busy_s: float  # summed job durations
    started: datetime | None
    finished: datetime | None
    notes: list[str]  # the messages a reader should see first


def render_weblog(model: WeblogModel, out: Path, open_sections_up_to: int = 4) -> list[Path]:
    """Write the weblog into `out` and return its pages. Sections are open when a page has at most
    `open_sections_up_to` of them. `out` must be new or empty: pages of an earlier weblog left beside the
    new ones would be delivered (and listed in the manifest) as if they were current."""
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty; render the weblog into a new folder")
    out.mkdir(parents=True, exist_ok=True)
    _copy_static(out / "static")
    images = _image_views(model.images, model.observation.targets, out)
    jobs = _job_views(model.jobs, out)
    stages = _stage_views(jobs, open_sections_up_to)
    image_groups = _image_groups(images, model.observation.targets, open_sections_up_to)
    environment = _environment()
    job_pages = {job.record.job_id: f"{stage.page}#job-{job.record.job_id}" for stage in stages for job in stage.jobs}
    overall = model.overall_qa
    common = {
        "model": model, "obs": model.observation, "stages": stages, "overall": overall, "job_pages": job_pages,
        "overall_source": _source_of(overall, images, jobs, job_pages),
    }

    def write(page: str, template: str, title: str, **context: Any) -> Path:
        depth = page.count("/")
        root = "../" * depth
        path = out / page
        path.parent.mkdir(parents=True, exist_ok=True)
        html = environment.get_template(template).render(
            **common, **context, title=title, root=root, products=root + model.products_href.rstrip("/") + "/",
        )
        path.write_text(html, encoding="utf-8")
        return path

    pages = [
        write("index.html", "home.html", "Observation", groups=image_groups, filters=_filter_choices(images),
              target_rows=_target_rows(model.observation.targets, image_groups)),
        write("tasks.html", "tasks.html", "By task"),
    ]
    for stage in stages:
        pages.append(write(stage.page, "stage.html", f"Stage {stage.stage.value}", stage=stage,
                           filters=_filter_choices(stage.jobs)))
    group_of = {view.page: group for group in image_groups for view in group.rows}
    for index, image in enumerate(images):
        pages.append(write(
            image.page, "image.html", image.title, image=image,
            previous=images[index - 1] if index > 0 else None,
            next=images[index + 1] if index + 1 < len(images) else None,
            group=group_of[image.page],
        ))
    return pages


def _environment() -> Environment:
    environment = Environment(
        loader=PackageLoader("aperture_export.weblog", "templates"),
        autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    )
    environment.filters.update(
        frequency=formatting.frequency, flux=formatting.flux, duration=formatting.duration,
        timestamp=formatting.timestamp, spws=formatting.spw_list, number=formatting.number,
    )
    environment.globals.update(NO_BAND=NO_BAND)
    return environment


def _copy_static(into: Path) -> None:
    into.mkdir(parents=True, exist_ok=True)
    static = files("aperture_export.weblog").joinpath("static")
    for name in STATIC_FILES:
        (into / name).write_bytes(static.joinpath(name).read_bytes())


def _image_views(records: list[ImageRecord], targets: list[str], out: Path) -> list[ImageView]:
    """Images in reading order (target as observed, then kind, then spw), with their figures copied."""
    order = {target: index for index, target in enumerate(targets)}
    ordered = sorted(
        records, key=lambda r: (order.get(r.target, len(order)), r.target, KIND_ORDER.index(r.kind), r.spw_ids)
    )
    slugs = _Slugs()
    views = []
    for record in ordered:
        slug = slugs.new(f"{record.target}.spw{'_'.join(map(str, record.spw_ids))}.{record.kind.value}")
        previews = []
        for number, figure in enumerate(record.previews):
            href = f"previews/{slug}.{number}{figure.path.suffix.lower()}"
            (out / "previews").mkdir(exist_ok=True)
            shutil.copyfile(figure.path, out / href)
            previews.append((figure.caption, href))
        title = f"{record.target} spw {formatting.spw_list(record.spw_ids)} {record.kind.value}"
        views.append(ImageView(record, title, f"images/{slug}.html", previews, _band(record.lowest_qa)))
    return views


def _job_views(records: list[JobRecord], out: Path) -> list[JobView]:
    views = []
    for record in records:
        log = None
        if record.log is not None:
            log = f"logs/{record.job_id}.log"
            (out / "logs").mkdir(exist_ok=True)
            shutil.copyfile(record.log, out / log)
        views.append(JobView(record, log, _band(record.lowest_qa)))
    return views


def _image_groups(images: list[ImageView], targets: list[str], open_up_to: int) -> list[Group]:
    order = {target: index for index, target in enumerate(targets)}
    by_target = _grouped(images, lambda view: view.record.target, "target-")
    groups = sorted(by_target, key=lambda group: (order.get(group.title, len(order)), group.title))
    for group in groups:
        group.open = len(groups) <= open_up_to
    return groups


def _source_of(
    score: QAScore | None, images: list[ImageView], jobs: list[JobView], job_pages: dict[str, str]
) -> tuple[str, str] | None:
    """(label, href) of the image or job that a score belongs to (images first: they are what people use)."""
    for image in images:
        if any(s is score for s in image.record.qa):
            return image.title, image.page
    for job in jobs:
        if any(s is score for s in job.record.qa):
            return job.record.job_id, job_pages[job.record.job_id]
    return None


def _target_rows(targets: list[str], groups: list[Group]) -> list[tuple[str, Group | None]]:
    """Every target with its images' group: the observed targets first (None where nothing was imaged)."""
    by_title = {group.title: group for group in groups}
    return [(target, by_title.get(target)) for target in targets] + [
        (group.title, group) for group in groups if group.title not in targets
    ]


def _stage_views(jobs: list[JobView], open_up_to: int) -> list[StageView]:
    views = []
    for stage in Stage:
        stage_jobs = [job for job in jobs if job.record.stage is stage]
        if not stage_jobs:
            continue
        records = [job.record for job in stage_jobs]
        groups = _grouped(stage_jobs, lambda job: job.record.target or MOUS_WIDE, "jobs-")
        for group in groups:
            group.open = len(groups) <= open_up_to
        lowest = lowest_score(s for r in records for s in r.qa)
        views.append(StageView(
            stage=stage, page=f"stages/{stage.value}.html", jobs=stage_jobs, groups=groups,
            lowest=lowest,
            states=dict(Counter(r.state.value for r in records)), attempts=sum(r.attempts for r in records),
            busy_s=sum(r.duration_s or 0.0 for r in records),
            started=min((r.started_at for r in records if r.started_at), default=None),
            finished=max((r.finished_at for r in records if r.finished_at), default=None),
            notes=_notes(records),
        ))
    return views


def _notes(records: list[JobRecord], limit: int = 5) -> list[str]:
    """Failures first, then the lowest QA scores below green: what a reader of the stage must not miss."""
    failures = [f"{r.job_id}: {m}" for r in records if r.state is JobState.FAILED for m in r.messages]
    weak = sorted(
        ((s.score, f"{r.job_id}: {s.message} ({s.score:.2f})") for r in records for s in r.qa
         if s.band is not QABand.GOOD),
    )
    notes = failures + [text for _, text in weak]
    extra = len(notes) - limit
    return notes[:limit] + ([f"... and {extra} more on the stage's page"] if extra > 0 else [])


def _grouped(rows: list[Any], key: Any, anchor_prefix: str) -> list[Group]:
    """Rows grouped by key(row), groups in order of first appearance."""
    groups: dict[str, Group] = {}
    anchors = _Slugs()
    for row in rows:
        title = key(row)
        if title not in groups:
            groups[title] = Group(anchor=anchor_prefix + anchors.new(title), title=title)
        groups[title].rows.append(row)
    return list(groups.values())


def _filter_choices(rows: list[Any]) -> dict[str, list[str]]:
    """The values the filter's drop-downs offer: those present on the page."""
    spws = sorted({spw for row in rows for spw in row.record.spw_ids})
    kinds = {row.record.kind for row in rows if getattr(row.record, "kind", None) is not None}
    bands = [band.value for band in QABand] + [NO_BAND]
    return {
        "spw": [str(spw) for spw in spws],
        "kind": [kind.value for kind in KIND_ORDER if kind in kinds],
        "band": [band for band in bands if any(row.band == band for row in rows)],
    }


def _band(score: QAScore | None) -> str:
    return NO_BAND if score is None else score.band.value


class _Slugs:
    """File-name and anchor-safe names, unique even on case-insensitive file systems."""

    _UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")

    def __init__(self) -> None:
        self._taken: set[str] = set()

    def new(self, text: str) -> str:
        base = self._UNSAFE.sub("_", text).strip("._") or "x"
        slug, number = base, 1
        while slug.lower() in self._taken:
            number += 1
            slug = f"{base}-{number}"
        self._taken.add(slug.lower())
        return slug
