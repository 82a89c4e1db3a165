"""What the user points at, turned into the one archive the coordinator accepts.

A Measurement Set directory is packed into a temporary plain tar with the MS directory at the archive's
root (the layout ingest unpacks). The tar is written member by member to disk and uploaded from there, so
a many-GB MS never sits in memory; plain rather than compressed because visibilities barely compress and
plain tar streams at disk speed. A directory holding several MSs (and perhaps calibration tables and an
`aperture-restore.json`) is packed the same way with its entries at the root. An archive file is
uploaded as it is.
"""

import tarfile
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from aperture_contracts.packaging import RESTORE_MANIFEST_NAME

from aperture_cli.errors import PackagingError

# Archive suffixes the coordinator unpacks, longest first so that ".tar.gz" wins over ".gz".
ARCHIVE_CONTENT_TYPES: dict[str, str] = {
    ".tar.gz": "application/gzip",
    ".tar.bz2": "application/x-bzip2",
    ".tar.xz": "application/x-xz",
    ".tgz": "application/gzip",
    ".tbz2": "application/x-bzip2",
    ".txz": "application/x-xz",
    ".tar": "application/x-tar",
}
# Every Measurement Set (a casacore table) has this file at its top.
MS_TABLE_MARKER = "table.dat"

# Called once per file or directory as it goes into the tar, with its size in bytes.
MemberCallback = Callable[[tarfile.TarInfo], None]


@dataclass(frozen=True)
class UploadPackage:
    """The file to send and how to name it in the upload."""

    archive: Path
    upload_name: str
    content_type: str
    size: int
    # The directory it was packed from; None when the user gave an archive.
    packed_from: Path | None


def archive_suffix(path: Path) -> str | None:
    """The known archive suffix of a file name (".tar.gz", ".tgz", ...), or None."""
    name = path.name.lower()
    return next((suffix for suffix in ARCHIVE_CONTENT_TYPES if name.endswith(suffix)), None)


def is_measurement_set(directory: Path) -> bool:
    return (directory / MS_TABLE_MARKER).is_file()


def package_roots(directory: Path) -> list[tuple[Path, str]]:
    """The (source, name in the archive) pairs that go at the archive's root for a directory.

    An MS directory goes in whole under its own name; a folder of MSs contributes its entries.
    """
    if is_measurement_set(directory):
        return [(directory, directory.name)]
    entries = sorted(directory.iterdir())
    if any(entry.is_dir() and is_measurement_set(entry) for entry in entries):
        return [(entry, entry.name) for entry in entries]
    raise PackagingError(
        f"{directory} is not a Measurement Set (it has no {MS_TABLE_MARKER}) and holds none: point at an "
        "MS directory (e.g. uid___A002_X1_X2.ms), at a folder of MSs (with calibration tables and "
        f"{RESTORE_MANIFEST_NAME} if you have them), or at a .tar / .tar.gz archive of one"
    )


def pack_directory(directory: Path, archive: Path, on_member: MemberCallback | None = None) -> None:
    """Write `directory` as a plain tar to `archive`, laid out as `package_roots` says.

    Symbolic links are followed (stored as the files they point to): a link into a folder outside the
    MS would point at nothing on the server.
    """

    def record(member: tarfile.TarInfo) -> tarfile.TarInfo:
        if on_member is not None:
            on_member(member)
        return member

    try:
        with tarfile.open(archive, "w", format=tarfile.PAX_FORMAT, dereference=True) as tar:
            for source, name in package_roots(directory):
                tar.add(source, arcname=name, recursive=True, filter=record)
    except OSError as error:
        raise PackagingError(
            f"could not pack {directory} into {archive}: {error} (the temporary tar needs about as much "
            "free space as the MS: choose its place with --scratch-dir or $TMPDIR)"
        ) from error


@contextmanager
def prepare_upload(
    path: Path,
    *,
    scratch_dir: Path | None = None,
    on_member: MemberCallback | None = None,
) -> Iterator[UploadPackage]:
    """The archive to upload for `path`; a temporary tar is removed when the block ends.

    scratch_dir: where a directory is packed (default: the system's temp directory, $TMPDIR); it needs
    about as much free space as the MS takes.
    """
    path = path.expanduser()
    if not path.exists():
        raise PackagingError(f"{path} does not exist: give the path of a Measurement Set or an archive of it")
    if path.is_dir():
        source = path.resolve()
        with tempfile.TemporaryDirectory(prefix="aperture-upload-", dir=scratch_dir) as scratch:
            archive = Path(scratch) / f"{source.name}.tar"
            pack_directory(source, archive, on_member)
            yield UploadPackage(
                archive=archive,
                upload_name=archive.name,
                content_type=ARCHIVE_CONTENT_TYPES[".tar"],
                size=archive.stat().st_size,
                packed_from=source,
            )
        return
    suffix = archive_suffix(path)
    if suffix is None:
        raise PackagingError(
            f"{path} is a file but not an archive this client knows ({', '.join(ARCHIVE_CONTENT_TYPES)}): "
            "give a Measurement Set directory, or a tar archive of it"
        )
    try:
        readable_tar = tarfile.is_tarfile(path)
    except OSError as error:
        raise PackagingError(f"cannot read {path}: {error}") from error
    if not readable_tar:
        raise PackagingError(f"{path} is named like a {suffix} archive but is not one (or is damaged)")
    yield UploadPackage(
        archive=path,
        upload_name=path.name,
        content_type=ARCHIVE_CONTENT_TYPES[suffix],
        size=path.stat().st_size,
        packed_from=None,
    )
