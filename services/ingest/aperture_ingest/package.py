"""Unpacking an MS package: a tar archive (optionally gzip, bzip2 or xz compressed) of one or more
Measurement Sets, possibly inside one top-level folder, optionally with calibration tables and a restore
manifest (`aperture-restore.json`). A bare MS directory, or a folder of MSs, is accepted as well: the CLI
and tests hand those over before anything is tarred.

Archives come from users, so extraction is defensive: members with absolute paths, `..` components,
links that point outside the package, and device files or pipes are refused with an error naming the
member, before anything is written; the stdlib's 'data' extraction filter then guards the extraction
itself.
"""

import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from aperture_contracts.packaging import RESTORE_MANIFEST_NAME
from aperture_shared.errors import BadInput, CorruptInput

from aperture_ingest.tables_on_disk import (
    describe_file,
    is_casa_table,
    is_zstd_file,
    looks_like_measurement_set,
)

# How deep Measurement Sets may sit in a package: at the top, or inside one top-level folder.
MAX_MS_DEPTH = 2


@dataclass(frozen=True)
class UnpackedPackage:
    """A package laid out on disk.

    root: the folder the manifest's table paths are relative to (where the manifest is, else the folder
    that holds the MSs). measurement_sets: the MS directories, sorted by name. manifest: the restore
    manifest's path, or None when the package carries none.
    """

    root: Path
    measurement_sets: list[Path]
    manifest: Path | None


def unpack_package(archive: Path, into: Path) -> UnpackedPackage:
    """Lay the package out under `into` (which must be empty or absent) and find what it holds.

    `archive` is a tar file, or a directory (a bare MS or a folder of MSs), which is copied so that
    later steps (restore writes CORRECTED_DATA) never change the caller's data. Raises BadInput when the
    input is not a package or holds no Measurement Set.
    """
    if into.exists() and any(into.iterdir()):
        raise ValueError(f"unpack target {into} is not empty")
    into.mkdir(parents=True, exist_ok=True)
    if not archive.exists():
        raise FileNotFoundError(f"package {archive} does not exist")
    if archive.is_dir():
        _copy_directory(archive, into)
    else:
        _extract_archive(archive, into)
    return _find_contents(into, archive.name)


def _copy_directory(source: Path, into: Path) -> None:
    if looks_like_measurement_set(source):
        target = into / source.name
    elif is_casa_table(source):
        raise BadInput(f"{source.name} is a CASA table but not a Measurement Set; submit an MS or a package.")
    else:
        target = into
    _refuse_escaping_links(source)
    shutil.copytree(source, target, symlinks=True, dirs_exist_ok=True)


def _refuse_escaping_links(source: Path) -> None:
    root = source.resolve()
    for path in source.rglob("*"):
        if path.is_symlink() and not path.resolve().is_relative_to(root):
            raise BadInput(
                f"{source.name}: {path.relative_to(source)} is a link to {path.readlink()}, outside the "
                "package. Replace links with the files they point to."
            )


def _extract_archive(archive: Path, into: Path) -> None:
    if is_zstd_file(archive) and "zst" not in tarfile.TarFile.OPEN_METH:
        raise BadInput(
            f"{archive.name} is zstd-compressed, which this Python's tarfile cannot read. "
            "Send an uncompressed tar, or compress it with gzip, bzip2 or xz."
        )
    try:
        tar = tarfile.open(archive, mode="r:*")
    except tarfile.TarError:
        what = describe_file(archive)
        if what.endswith("-compressed file"):
            # Compressed data that do not decompress to a tar: cut short or damaged on the way, not a
            # wrong kind of file (a campaign report counts it as corrupt input; no retry can help).
            raise CorruptInput(
                f"{archive.name} is {what} that does not decompress to a tar archive: it is damaged or cut "
                "short (e.g. by an interrupted copy or upload). Upload it again.",
            ) from None
        raise BadInput(
            f"{archive.name} is {describe_file(archive)}, not a tar archive. Submit a Measurement Set "
            "packed with tar (optionally compressed with gzip, bzip2 or xz), e.g. "
            "`tar czf obs.ms.tar.gz obs.ms`."
        ) from None
    with tar:
        try:
            members = tar.getmembers()
        except (tarfile.TarError, EOFError, OSError) as error:
            raise CorruptInput(
                f"{archive.name} is a damaged or truncated archive ({error}). Upload it again.",
                detail=repr(error),
            ) from error
        if not members:
            raise BadInput(f"{archive.name} is an empty archive: it holds no files.")
        for member in members:
            _refuse_unsafe_member(archive.name, member)
        try:
            tar.extractall(into, filter="data")
        except tarfile.FilterError as error:
            raise BadInput(f"{archive.name}: refused to extract {error}.", detail=repr(error)) from error
        except (tarfile.TarError, EOFError) as error:
            raise CorruptInput(
                f"{archive.name} is damaged or truncated; extraction stopped ({error}). Upload it again.",
                detail=repr(error),
            ) from error


def _refuse_unsafe_member(archive_name: str, member: tarfile.TarInfo) -> None:
    name = PurePosixPath(member.name)
    if name.is_absolute() or member.name.startswith(("/", "\\")):
        raise BadInput(
            f"{archive_name}: member {member.name!r} has an absolute path. "
            "Pack the package with relative paths (run tar from the folder that holds the MS)."
        )
    if ".." in name.parts:
        raise BadInput(
            f"{archive_name}: member {member.name!r} points outside the package ('..' in its path); "
            "refusing to extract. Pack the package with plain relative paths."
        )
    if member.isdev() or member.isfifo():
        raise BadInput(
            f"{archive_name}: member {member.name!r} is a device file or pipe; refusing to extract."
        )
    if member.issym() or member.islnk():
        target = PurePosixPath(member.linkname)
        # symlink targets are relative to the link's folder, hard-link targets to the archive root
        resolved = (name.parent / target) if member.issym() else target
        if target.is_absolute() or _escapes(resolved):
            raise BadInput(
                f"{archive_name}: member {member.name!r} is a link to {member.linkname!r}, outside the "
                "package; refusing to extract. Replace links with the files they point to."
            )


def _escapes(path: PurePosixPath) -> bool:
    depth = 0
    for part in path.parts:
        if part == "..":
            depth -= 1
        elif part not in (".", ""):
            depth += 1
        if depth < 0:
            return True
    return False


def _find_contents(into: Path, package_name: str) -> UnpackedPackage:
    measurement_sets = _find_measurement_sets(into)
    if not measurement_sets:
        raise BadInput(
            f"{package_name} holds no Measurement Set (looked at the top level and one folder down; "
            f"found: {_listing(into)}). A package must contain at least one .ms directory."
        )
    names = [ms.name for ms in measurement_sets]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise BadInput(
            f"{package_name} holds several Measurement Sets named {', '.join(duplicates)}; "
            "give each MS a distinct name."
        )
    manifests = [
        p for p in (into / RESTORE_MANIFEST_NAME, *into.glob(f"*/{RESTORE_MANIFEST_NAME}")) if p.is_file()
    ]
    if len(manifests) > 1:
        raise BadInput(
            f"{package_name} holds {len(manifests)} {RESTORE_MANIFEST_NAME} files "
            f"({', '.join(str(m.relative_to(into)) for m in manifests)}); a package has one, at its root."
        )
    manifest = manifests[0] if manifests else None
    if manifest is not None:
        root = manifest.parent
    else:
        parents = {ms.parent for ms in measurement_sets}
        root = parents.pop() if len(parents) == 1 else into
    return UnpackedPackage(root=root, measurement_sets=measurement_sets, manifest=manifest)


def _find_measurement_sets(into: Path) -> list[Path]:
    found: list[Path] = []
    level = [into]
    for _ in range(MAX_MS_DEPTH):
        next_level: list[Path] = []
        for folder in level:
            for entry in sorted(folder.iterdir()):
                if entry.is_symlink() or not entry.is_dir():
                    continue
                if looks_like_measurement_set(entry):
                    found.append(entry)
                elif not is_casa_table(entry):  # never look inside other tables (cal tables, images)
                    next_level.append(entry)
        level = next_level
    return sorted(found, key=lambda path: (path.name, str(path)))


def _listing(into: Path) -> str:
    entries = sorted(str(p.relative_to(into)) + ("/" if p.is_dir() else "") for p in into.iterdir())
    if not entries:
        return "nothing"
    return ", ".join(entries[:10]) + (", ..." if len(entries) > 10 else "")
