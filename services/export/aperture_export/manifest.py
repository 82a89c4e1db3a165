"""The product manifest: every file delivered for an MOUS with its size, SHA-256 and what it is.

The manifest sits in the product folder as `<mous>.manifest.json` and lists every other file there
(sub-folders such as the weblog included), so that whoever receives the folder can check it is complete
and unchanged (`verify_manifest`) and find the products of a target or spw without parsing names.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path, PurePosixPath

from aperture_contracts.enums import ImagingKind
from aperture_contracts.ids import mous_key
from aperture_contracts.imaging import ImageProduct
from aperture_contracts.manifest import FileDescription, FileKind, Manifest, ManifestFile
from aperture_contracts.qa import lowest_score
from aperture_contracts.storage import sha256_of_file

MANIFEST_SUFFIX = ".manifest.json"


class ProblemKind(StrEnum):
    MISSING = "missing"  # listed, but not in the folder
    UNLISTED = "unlisted"  # in the folder, but not listed
    SIZE_MISMATCH = "size_mismatch"
    CHECKSUM_MISMATCH = "checksum_mismatch"


@dataclass(frozen=True)
class ManifestProblem:
    kind: ProblemKind
    name: str
    detail: str


def manifest_name(mous_id: str) -> str:
    """`<mous>.manifest.json`: the manifest's own name, which it never lists."""
    return mous_key(mous_id) + MANIFEST_SUFFIX


def build_manifest(
    folder: Path,
    mous_id: str,
    pipeline_version: str,
    descriptions: Mapping[str, FileDescription] | None = None,
    created_at: datetime | None = None,
) -> Manifest:
    """The manifest of every file under `folder`. A file without a description in `descriptions` (keyed
    by its name in the manifest) is described from its name (`describe_from_name`)."""
    descriptions = descriptions or {}
    names = _files_in(folder, exclude=manifest_name(mous_id))
    stray = sorted(set(descriptions) - set(names))
    if stray:
        raise ValueError(f"described but not in {folder}: {', '.join(stray)}")
    files = [
        _manifest_file(folder, name, descriptions.get(name) or describe_from_name(name)) for name in names
    ]
    return Manifest(
        mous_id=mous_id, pipeline_version=pipeline_version, created_at=created_at or datetime.now(UTC), files=files
    )


def verify_manifest(folder: Path, manifest: Manifest) -> list[ManifestProblem]:
    """Everything in which `folder` differs from `manifest`; empty when the folder is as listed."""
    present = set(_files_in(folder, exclude=manifest_name(manifest.mous_id)))
    problems = [
        ManifestProblem(ProblemKind.UNLISTED, name, "in the folder but not in the manifest")
        for name in sorted(present - {file.name for file in manifest.files})
    ]
    for file in manifest.files:
        path = folder / file.name
        if file.name not in present:
            problems.append(ManifestProblem(ProblemKind.MISSING, file.name, "listed but not in the folder"))
        elif (size := path.stat().st_size) != file.size_bytes:
            # A size check first: it is free, and it names the usual fault (a truncated copy) plainly.
            problems.append(ManifestProblem(
                ProblemKind.SIZE_MISMATCH, file.name, f"{size} bytes, the manifest says {file.size_bytes}"
            ))
        elif (digest := sha256_of_file(path)) != file.sha256:
            problems.append(ManifestProblem(
                ProblemKind.CHECKSUM_MISMATCH, file.name, f"SHA-256 {digest}, the manifest says {file.sha256}"
            ))
    return problems


def write_manifest(folder: Path, manifest: Manifest) -> Path:
    path = folder / manifest_name(manifest.mous_id)
    path.write_text(manifest.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return path


def read_manifest(path: Path) -> Manifest:
    return Manifest.model_validate_json(path.read_text(encoding="utf-8"))


def describe_image_product(product: ImageProduct) -> dict[str, FileDescription]:
    """The descriptions of an image's FITS files (by file name), with the real target name and the image's
    lowest QA score, which its file names cannot tell."""
    qa = lowest_score(product.qa)
    descriptions = {}
    for ref in (product.pbcor, product.image, product.pb, *product.extra):
        name = PurePosixPath(ref.key).name
        descriptions[name] = describe_from_name(name).model_copy(update={
            "target": product.target, "spw_ids": product.spw_ids, "imaging_kind": product.kind,
            "qa_score": None if qa is None else qa.score,
        })
    return descriptions


# <mous>.<target>_sci.spw<ids>.<rest>, as aperture_imaging.naming writes them; the target is the
# file-name-safe form of the field name.
_PRODUCT_NAME = re.compile(r"^[^.]+\.(?P<target>.+?)_sci\.spw(?P<spws>\d+(?:_\d+)*)\.(?P<rest>.+)$")
_IMAGING_KINDS = {kind.value: kind for kind in ImagingKind}
_FITS_KIND_BY_ROLE = {"pb": FileKind.PB, "residual": FileKind.RESIDUAL, "mask": FileKind.MASK}


def describe_from_name(name: str) -> FileDescription:
    """What a file is, as far as its name and place tell (ALMA product names carry target, spws and kind)."""
    path = PurePosixPath(name)
    lower = path.name.lower()
    match = _PRODUCT_NAME.match(path.name)
    target = match["target"] if match else None
    spw_ids = [int(spw) for spw in match["spws"].split("_")] if match else []
    # Images are `<kind>.I.<...>.fits`; other names may start with a kind's word too (`cont.dat`).
    rest = match["rest"].split(".") if match else []
    imaging_kind = _IMAGING_KINDS.get(rest[0]) if len(rest) > 2 and rest[1] == "I" else None

    kind = FileKind.OTHER
    if path.parts[0] == "weblog":
        kind = FileKind.WEBLOG
    elif lower.endswith("casa_commands.log"):
        kind = FileKind.CASA_COMMANDS
    elif lower.endswith(".log"):
        kind = FileKind.LOG
    elif ".moc." in lower or lower.endswith(".moc"):
        kind = FileKind.MOC
    elif "obscore" in lower:
        kind = FileKind.OBSCORE
    elif lower.endswith(".cont.dat"):
        kind = FileKind.CONT_DAT
    elif lower.endswith((".png", ".jpg", ".jpeg")):
        kind = FileKind.PREVIEW
    elif lower.endswith(".json"):
        kind = FileKind.REPORT
    elif lower.endswith(".fits") and imaging_kind is not None:
        role = path.name.removesuffix(".fits").rsplit(".", 1)[-1]
        main_kind = FileKind.CUBE if imaging_kind is ImagingKind.CUBE else FileKind.IMAGE
        kind = main_kind if role in ("pbcor", "image") else _FITS_KIND_BY_ROLE.get(role, FileKind.AUXILIARY)
    return FileDescription(kind=kind, target=target, spw_ids=spw_ids, imaging_kind=imaging_kind)


def _files_in(folder: Path, exclude: str) -> list[str]:
    """Every regular file under `folder` as a '/'-separated relative name, sorted, without `exclude`."""
    names = (path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file())
    return sorted(name for name in names if name != exclude)


def _manifest_file(folder: Path, name: str, description: FileDescription) -> ManifestFile:
    path = folder / name
    return ManifestFile(
        name=name, size_bytes=path.stat().st_size, sha256=sha256_of_file(path), **description.model_dump()
    )
