"""Storing downloaded products so that only verified bytes ever carry a product's name.

Bytes go to `<name>.part` while their SHA-256 is computed; the file is renamed to its final name only
when size and checksum match what the coordinator recorded (an MOUS's ProductView.object, a request's
RequestProduct), and removed otherwise. A crash or a bad transfer therefore never leaves a file that looks
like a good product.
"""

import hashlib
from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath

from aperture_contracts.storage import ObjectRef, sha256_of_file

from aperture_cli.errors import MOUS_REMEDY, ChecksumMismatch, DownloadError, SizeMismatch

_READ_CHUNK = 1024 * 1024
PARTIAL_SUFFIX = ".part"


def product_destination(directory: Path, product_name: str) -> Path:
    """Where a product goes under `directory`; names with sub-folders are kept, escapes are refused."""
    relative = PurePosixPath(product_name)
    if not product_name or relative.is_absolute() or ".." in relative.parts or "\\" in product_name:
        raise DownloadError(
            f"the API named a product {product_name!r}, which is not a safe relative file name; "
            "not downloading it (report this: the coordinator should never do that)"
        )
    return directory.joinpath(*relative.parts)


def matches_stored_object(path: Path, expected: ObjectRef) -> bool:
    """Whether a file already on disk is the stored object (so it need not be fetched again).

    An unreadable file counts as absent: fetching it then says what is wrong with the place.
    """
    try:
        return (
            path.is_file()
            and path.stat().st_size == expected.size
            and sha256_of_file(path) == expected.sha256
        )
    except OSError:
        return False


def write_verified(
    chunks: Iterable[bytes],
    target: Path,
    expected: ObjectRef,
    product_name: str,
    on_bytes: Callable[[int], None] | None = None,
    remedy: str = MOUS_REMEDY,
) -> None:
    """Write the chunks to `target`, keeping the file only when it has `expected.size` bytes whose SHA-256
    is `expected.sha256`. `remedy` says what to do when the stored bytes themselves are damaged."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + PARTIAL_SUFFIX)
    digest = hashlib.sha256()
    received = 0
    try:
        with partial.open("wb") as stream:
            for chunk in chunks:
                received += len(chunk)
                if received > expected.size:
                    # Stop at once: a server sending something else must not fill the disk first.
                    raise SizeMismatch(product_name, expected.size, received, remedy)
                stream.write(chunk)
                digest.update(chunk)
                if on_bytes is not None:
                    on_bytes(len(chunk))
        if received != expected.size:
            raise SizeMismatch(product_name, expected.size, received, remedy)
        actual = digest.hexdigest()
        if actual != expected.sha256:
            raise ChecksumMismatch(product_name, expected.sha256, actual, remedy)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(target)
