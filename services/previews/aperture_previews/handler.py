"""The previews stage: fetch one image's PB-corrected FITS, make its quick-looks (for a cube its moment
maps and peak spectrum; for a target's aggregate continuum a HiPS with an offline viewer page), and store
them as products beside the image."""

import mimetypes
from pathlib import Path

from aperture_contracts.enums import ImagingKind
from aperture_contracts.jobs import PreviewsJob
from aperture_contracts.products import HipsProduct, PreviewFile, PreviewsResult
from aperture_contracts.storage import ObjectRef
from aperture_shared.worker import JobContext, JobOutcome

from aperture_previews.steps import PreviewsStepResult


def _content_type(path: Path) -> str:
    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"


async def _put_tree(context: JobContext, root: Path) -> dict[Path, ObjectRef]:
    """Every file under `root` as a product under `<root's name>/...`, keyed by its local path."""
    stored: dict[Path, ObjectRef] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        name = f"{root.name}/{path.relative_to(root).as_posix()}"
        stored[path] = await context.put_file(name, path, _content_type(path), product=True)
    return stored


async def make_previews(job: PreviewsJob, context: JobContext, *, aladin_lite_dir: Path) -> JobOutcome:
    image = job.image
    image_path = context.scratch / "input" / Path(image.pbcor.key).name
    image_path.parent.mkdir(parents=True)
    await context.get_file(image.pbcor, image_path)
    step = PreviewsStepResult.model_validate(
        await context.casa(
            "aperture_previews.steps:make_previews",
            {
                "image": str(image_path), "kind": image.kind.value, "spw_ids": image.spw_ids,
                "output_dir": str(context.scratch / "previews"), "mous_id": job.mous_id,
                "continuum_ranges_hz": [[r.low_hz, r.high_hz] for c in job.continuum for r in c.ranges],
                "continuum_cases": [c.case.value for c in job.continuum],
                "hips": image.kind == ImagingKind.CONT, "aladin_lite_dir": str(aladin_lite_dir),
            },
        )
    )
    files = [
        PreviewFile(role=role, file=await context.put_file(Path(path).name, Path(path), _content_type(Path(path)),
                                                           product=True))
        for role, path in step.files.items()
    ]
    outputs = [preview.file for preview in files]
    hips = None
    if step.hips_root is not None and step.hips_viewer_page is not None:
        root = Path(step.hips_root)
        stored = await _put_tree(context, root)
        outputs += list(stored.values())
        hips = HipsProduct(
            prefix=job.products_prefix + root.name + "/", properties=stored[root / "properties"],
            viewer_page=stored[Path(step.hips_viewer_page)], max_order=step.hips_max_order or 0,
            min_order=step.hips_min_order or 0, tiles=step.hips_tiles or 0, files=list(stored.values()),
        )
    return JobOutcome(
        result=PreviewsResult(kind=image.kind.value, target=image.target, spw_ids=image.spw_ids, files=files,
                              hips=hips),
        outputs=outputs,
    )
