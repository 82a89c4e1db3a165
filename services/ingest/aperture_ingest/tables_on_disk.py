"""What a path on disk holds, judged from its files alone (no CASA): a casacore table, a Measurement Set,
a calibration table, or some other kind of file.

Package unpacking and manifest checks run before (and without) CASA, and error messages must say what a
wrong input actually is ("a FITS file", "a gzip-compressed file") rather than only that CASA could not
open it.
"""

import tarfile
import zipfile
from pathlib import Path

TABLE_DESCRIPTION_FILE = "table.dat"
TABLE_INFO_FILE = "table.info"

_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_GZIP_MAGIC = b"\x1f\x8b"
_BZIP2_MAGIC = b"BZh"
_XZ_MAGIC = b"\xfd7zXZ\x00"


def is_casa_table(path: Path) -> bool:
    """A casacore table is a directory with a table.dat (its description) in it."""
    return path.is_dir() and (path / TABLE_DESCRIPTION_FILE).is_file()


def table_type(path: Path) -> str:
    """The `Type` line of a table's table.info ("Measurement Set", "Calibration", "Image", ...) or ''."""
    try:
        text = (path / TABLE_INFO_FILE).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "Type":
            return value.strip()
    return ""


def looks_like_measurement_set(path: Path) -> bool:
    """A table that says it is a Measurement Set, or (for writers that leave table.info empty) one that
    has the ANTENNA and SPECTRAL_WINDOW sub-tables every MS carries."""
    if not is_casa_table(path):
        return False
    kind = table_type(path)
    if kind == "Measurement Set":
        return True
    return kind == "" and all(is_casa_table(path / sub) for sub in ("ANTENNA", "SPECTRAL_WINDOW"))


def is_calibration_table(path: Path) -> bool:
    """CASA calibration tables (gaincal, bandpass, ... output) say `Type = Calibration`."""
    return is_casa_table(path) and table_type(path) == "Calibration"


def describe_table_kind(path: Path) -> str:
    """A short phrase for what kind of casacore table this is, for error messages."""
    kind = table_type(path)
    return f"a CASA table of type {kind!r}" if kind else "a CASA table of unknown type"


def describe_file(path: Path) -> str:
    """A short phrase for what a (non-directory) file is, from its first bytes: for error messages."""
    try:
        with path.open("rb") as stream:
            head = stream.read(512)
    except OSError as error:
        return f"an unreadable file ({error.strerror})"
    if not head:
        return "an empty file"
    if head.startswith(b"SIMPLE  ="):
        return "a FITS file (UVFITS or an image), not a Measurement Set"
    if head.startswith(_GZIP_MAGIC):
        return "a gzip-compressed file"
    if head.startswith(_BZIP2_MAGIC):
        return "a bzip2-compressed file"
    if head.startswith(_XZ_MAGIC):
        return "an xz-compressed file"
    if head.startswith(_ZSTD_MAGIC):
        return "a zstd-compressed file"
    if head.startswith(b"\x89HDF"):
        return "an HDF5 file (e.g. UVH5), not a Measurement Set"
    if zipfile.is_zipfile(path):
        return "a zip archive"
    if _is_tar(path):
        return "a tar archive"
    if _is_text(head):
        return "a text file"
    return "a binary file of unknown format"


def is_zstd_file(path: Path) -> bool:
    try:
        with path.open("rb") as stream:
            return stream.read(4) == _ZSTD_MAGIC
    except OSError:
        return False


def _is_tar(path: Path) -> bool:
    try:
        return tarfile.is_tarfile(path)
    except OSError:
        return False


def _is_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return b"\x00" not in head
