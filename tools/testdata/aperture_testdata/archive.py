"""The MS package as submitted to Aperture: a tar with the MS, cal/ and aperture-restore.json at its root."""

import gzip
import tarfile
from pathlib import Path

from aperture_contracts.packaging import RESTORE_MANIFEST_NAME

PACKAGE_SUFFIXES = (".tar", ".tar.gz", ".tgz")


class PackageError(ValueError):
    pass


def is_gzipped(package: Path) -> bool:
    name = package.name
    if name.endswith((".tar.gz", ".tgz")):
        return True
    if name.endswith(".tar"):
        return False
    raise PackageError(f"{package}: a package must be named *.tar, *.tar.gz or *.tgz")


def write_package(package: Path, outdir: Path, members: list[str]) -> Path:
    """Write `members` (paths relative to outdir) into the tar, sorted, with fixed owners and times and a
    fixed gzip header, so that the archive adds no run-to-run differences of its own."""
    gzipped = is_gzipped(package)
    package.parent.mkdir(parents=True, exist_ok=True)
    partial = package.with_name(package.name + ".partial")

    def normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mtime = 0
        return info

    with open(partial, "wb") as raw:
        compressed = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) if gzipped else None
        try:
            with tarfile.open(fileobj=compressed or raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
                for member in sorted(members):
                    source = outdir / member
                    if not source.exists():
                        raise PackageError(f"{source} is missing; it should have been generated first")
                    _add_sorted(tar, source, member, normalise)
        finally:
            if compressed is not None:
                compressed.close()
    partial.replace(package)
    return package


def _add_sorted(tar: tarfile.TarFile, source: Path, arcname: str, normalise) -> None:
    tar.add(source, arcname=arcname, recursive=False, filter=normalise)
    if source.is_dir():
        for child in sorted(source.iterdir()):
            _add_sorted(tar, child, f"{arcname}/{child.name}", normalise)


def package_members(ms_name: str, with_calibration: bool) -> list[str]:
    members = [ms_name, RESTORE_MANIFEST_NAME]
    if with_calibration:
        members.append("cal")
    return members
