"""The export stage: the run's products become one package under the MOUS's products prefix, with
casa_commands.log (every CASA call, runnable), the job parameters, the weblog and the manifest.

The products are already in storage, each with the SHA-256 its writer computed and every reader checked;
the manifest lists them from those records rather than downloading them again (cubes can be GBs). Only
what the weblog shows (the preview PNGs and the jobs' logs) is fetched. The manifest goes up last, so a
package with a manifest is complete.
"""

import asyncio
import importlib.metadata
import json
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from aperture_contracts.enums import ImagingKind, JobState
from aperture_contracts.events import ImagingResult
from aperture_contracts.jobs import ExportJob, JobRecord
from aperture_contracts.manifest import FileDescription, FileKind, Manifest, ManifestFile
from aperture_contracts.products import ExportResult, PreviewRole, PreviewsResult
from aperture_contracts.storage import ObjectRef, sha256_of_file
from aperture_shared.worker import JobContext, JobOutcome

from aperture_export.casa_commands import write_casa_commands
from aperture_export.manifest import describe_from_name, describe_image_product, manifest_name
from aperture_export.weblog import model as weblog
from aperture_export.weblog.render import render_weblog

PIPELINE_VERSION = importlib.metadata.version("aperture-export")
WEBLOG_FOLDER = "weblog"
# The previews an image page shows, in order (the first is the thumbnail the lists use).
FIGURES = (
    (PreviewRole.THUMBNAIL, "thumbnail"), (PreviewRole.QUICKLOOK, "quick-look"),
    (PreviewRole.MOMENT0_PNG, "moment 0 over the line channels"), (PreviewRole.PEAK_PNG, "peak over the line channels"),
    (PreviewRole.SPECTRUM_PNG, "spectrum at the peak, continuum ranges shaded"),
)
IMAGE_KINDS = (ImagingKind.MFS, ImagingKind.CONT, ImagingKind.CUBE)


def package_name(job: ExportJob, ref: ObjectRef) -> str | None:
    """A stored object's name in the package, or None when it is not a product (work files, logs)."""
    return ref.key.removeprefix(job.products_prefix) if ref.key.startswith(job.products_prefix) else None


def delivered_products(job: ExportJob) -> dict[str, ObjectRef]:
    """The products the run's succeeded jobs stored, by name in the package."""
    found: dict[str, ObjectRef] = {}
    for record in job.jobs:
        if record.state is JobState.SUCCEEDED:
            for ref in record.outputs:
                if (name := package_name(job, ref)) is not None:
                    found[name] = ref
    return found


def job_parameters(job: ExportJob) -> dict[str, object]:
    """What each job of the run was asked to do and how it went, for a person re-running a step: the
    planner's parameters, the target, spw and kind, the attempts and the worker (the CASA calls themselves,
    with every parameter, are in casa_commands.log)."""
    return {
        "mous_id": job.mous_id, "run": job.run, "pipeline_version": PIPELINE_VERSION,
        "submitted_at": job.submitted_at.isoformat(),
        "jobs": {
            record.job_id: {
                "stage": record.stage.value, "kind": record.kind, "target": record.target, "spw_id": record.spw_id,
                "params": record.params, "state": record.state.value, "attempts": record.attempts,
                "worker": record.worker, "duration_s": record.duration_s, "casa_calls": len(record.casa_calls),
            }
            for record in job.jobs
        },
    }


def _descriptions(job: ExportJob, products: dict[str, ObjectRef]) -> dict[str, FileDescription]:
    descriptions = {name: describe_from_name(name) for name in products}
    for record in job.jobs:
        if isinstance(record.result, ImagingResult):
            for image in record.result.images:
                descriptions |= {name: description for name, description in describe_image_product(image).items()
                                 if name in descriptions}
    return descriptions


async def _fetch(context: JobContext, ref: ObjectRef, into: Path) -> Path:
    into.parent.mkdir(parents=True, exist_ok=True)
    await context.get_file(ref, into)
    return into


ImageKey = tuple[str, str, tuple[int, ...]]  # (kind, target, spws): an image and its previews share it


async def _previews_of(job: ExportJob, context: JobContext) -> dict[ImageKey, list[weblog.Figure]]:
    """The figures of each image, fetched for the weblog."""
    figures: dict[ImageKey, list[weblog.Figure]] = {}
    for record in job.jobs:
        if record.state is not JobState.SUCCEEDED or not isinstance(record.result, PreviewsResult):
            continue
        result = record.result
        by_role = {preview.role: preview.file for preview in result.files}
        key = (result.kind, result.target, tuple(result.spw_ids))
        figures[key] = [
            weblog.Figure(caption=caption, path=await _fetch(
                context, by_role[role], context.scratch / "previews" / PurePosixPath(by_role[role].key).name))
            for role, caption in FIGURES if role in by_role
        ]
    return figures


def _weblog_job(record: JobRecord, log: Path | None) -> weblog.JobRecord:
    kind = ImagingKind(record.kind) if record.kind in {kind.value for kind in ImagingKind} else None
    messages = [record.reason] if record.reason and record.state is not JobState.SUCCEEDED else []
    if isinstance(record.result, PreviewsResult) and record.result.hips is not None:
        messages.append(f"HiPS of orders {record.result.hips.min_order}-{record.result.hips.max_order}, "
                        f"{record.result.hips.tiles} tiles")
    return weblog.JobRecord(
        job_id=record.job_id, stage=record.stage, target=record.target,
        spw_ids=[record.spw_id] if record.spw_id is not None else [], kind=kind, state=record.state,
        started_at=record.started_at, finished_at=record.ended_at, duration_s=record.duration_s,
        attempts=record.attempts, qa=record.qa, messages=messages, log=log,
        inputs={"worker": record.worker} if record.worker else {},
    )


async def _weblog_model(job: ExportJob, context: JobContext, links: dict[str, str]) -> weblog.WeblogModel:
    logs: dict[str, Path] = {}
    for record in job.jobs:
        if record.log is not None:
            logs[record.job_id] = await _fetch(context, record.log, context.scratch / "logs" / f"{record.job_id}.log")
    figures = await _previews_of(job, context)
    images = [
        weblog.ImageRecord.from_product(
            image, figures.get((image.kind.value, image.target, tuple(image.spw_ids)), []), record.job_id
        )
        for record in job.jobs
        if record.state is JobState.SUCCEEDED and isinstance(record.result, ImagingResult)
        for image in record.result.images if image.kind in IMAGE_KINDS
    ]
    return weblog.WeblogModel(
        observation=weblog.ObservationSummary.from_metadata(job.mous_id, job.metadata),
        pipeline_version=PIPELINE_VERSION, generated_at=datetime.now(UTC),
        jobs=[_weblog_job(record, logs.get(record.job_id)) for record in job.jobs],
        images=images, product_links=links,
    )


def _local_entry(folder: Path, name: str, kind: FileKind) -> ManifestFile:
    path = folder / name
    return ManifestFile(name=name, size_bytes=path.stat().st_size, sha256=sha256_of_file(path), kind=kind)


async def export_products(job: ExportJob, context: JobContext) -> JobOutcome:
    package = context.scratch / "package"
    package.mkdir()
    products = delivered_products(job)
    stem = manifest_name(job.mous_id).removesuffix(".manifest.json")
    commands_name, parameters_name = f"{stem}.casa_commands.log", f"{stem}.job_parameters.json"
    write_casa_commands(
        package / commands_name, job.mous_id,
        ((record.job_id, record.stage, call) for record in job.jobs for call in record.casa_calls),
    )
    (package / parameters_name).write_text(json.dumps(job_parameters(job), indent=2, default=str) + "\n")
    model = await _weblog_model(job, context, {
        "manifest": manifest_name(job.mous_id), "CASA commands": commands_name, "job parameters": parameters_name,
    })
    await asyncio.to_thread(render_weblog, model, package / WEBLOG_FOLDER)

    descriptions = _descriptions(job, products)
    local = [_local_entry(package, commands_name, FileKind.CASA_COMMANDS),
             _local_entry(package, parameters_name, FileKind.REPORT)]
    local += [_local_entry(package, path.relative_to(package).as_posix(), FileKind.WEBLOG)
              for path in sorted((package / WEBLOG_FOLDER).rglob("*")) if path.is_file()]
    stored = [
        ManifestFile(name=name, size_bytes=ref.size, sha256=ref.sha256, **descriptions[name].model_dump())
        for name, ref in sorted(products.items())
    ]
    manifest = Manifest(mous_id=job.mous_id, pipeline_version=PIPELINE_VERSION, created_at=datetime.now(UTC),
                        files=sorted([*stored, *local], key=lambda file: file.name))
    outputs = [
        await context.put_file(entry.name, package / entry.name, _content_type(entry.name), product=True)
        for entry in local
    ]
    manifest_path = package / manifest_name(job.mous_id)
    manifest_path.write_text(manifest.model_dump_json(indent=2) + "\n")
    manifest_ref = await context.put_file(manifest_path.name, manifest_path, "application/json", product=True)
    by_name = {entry.name: ref for entry, ref in zip(local, outputs, strict=True)}
    return JobOutcome(
        result=ExportResult(
            package_prefix=job.products_prefix, manifest=manifest_ref,
            weblog=by_name[f"{WEBLOG_FOLDER}/index.html"], casa_commands=by_name[commands_name],
            files=len(manifest.files) + 1, total_bytes=sum(f.size_bytes for f in manifest.files) + manifest_ref.size,
            created_at=manifest.created_at,
        ),
        outputs=[*outputs, manifest_ref],
    )


def _content_type(name: str) -> str:
    suffix = PurePosixPath(name).suffix
    return {".html": "text/html", ".css": "text/css", ".js": "text/javascript", ".json": "application/json",
            ".png": "image/png", ".log": "text/plain", ".txt": "text/plain"}.get(suffix, "application/octet-stream")
