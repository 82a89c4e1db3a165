"""Receiving a submitted package: the multipart upload streamed to a file, and the MOUS id it stands for.

MS packages run to many gigabytes, so the upload is parsed as it arrives and written straight to one
temporary file (never held in memory, never copied twice) before it goes to the object store.

The MOUS id, in order of precedence: the `mous_uid` the client gave; the `mous_uid` of the package's
`aperture-restore.json`; an archive uid in the package's file name (uid___A001_X2fa_X2dd.ms.tar);
else a new local id, aperture-<12 hex digits>.
"""

import asyncio
import json
import re
import secrets
import tarfile
import tempfile
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

from aperture_contracts.ids import ARCHIVE_UID_SAFE, MousId, canonical_mous_id
from aperture_contracts.packaging import RESTORE_MANIFEST_NAME, RestoreManifest
from pydantic import TypeAdapter, ValidationError
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

PACKAGE_FIELD = "package"
TEXT_FIELDS = frozenset({"mous_uid", "rerun"})
MAX_TEXT_FIELD_BYTES = 4096
MAX_MANIFEST_BYTES = 1024 * 1024

_UID_IN_NAME = re.compile(r"uid___[A-Za-z0-9]+_[A-Za-z0-9]+_[A-Za-z0-9]+")
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._+-]+")
_MOUS_ID = TypeAdapter(MousId)
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off", ""})


class SubmissionProblem(Exception):
    """Bad input in a submission: the HTTP status, the field it concerns and what to do about it."""

    def __init__(self, field: str, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.status = status


@dataclass
class ReceivedUpload:
    """A package spooled to `path` (the caller removes it) and the form's text fields."""

    path: Path
    filename: str
    content_type: str
    size: int
    fields: dict[str, str] = field(default_factory=dict)


def safe_package_name(filename: str) -> str:
    """The last path component with anything unusual replaced: it becomes part of an object key."""
    name = PurePosixPath(filename.replace("\\", "/")).name
    name = _UNSAFE_NAME.sub("_", name).strip("._") or "package"
    return name[:200]


def parse_rerun(value: str) -> bool:
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise SubmissionProblem("rerun", f"rerun must be true or false, not {value[:40]!r}")


def validate_mous_uid(value: str, *, field_name: str = "mous_uid") -> str:
    """The canonical form of a uid the client (or a manifest) gave."""
    try:
        return _MOUS_ID.validate_python(value.strip())
    except ValidationError as error:
        message = error.errors(include_url=False)[0]["msg"].removeprefix("Value error, ")
        raise SubmissionProblem(field_name, message) from error


def mous_id_from_name(name: str) -> str | None:
    match = _UID_IN_NAME.search(name)
    if match is None or not ARCHIVE_UID_SAFE.match(match.group(0)):
        return None
    return canonical_mous_id(match.group(0))


def new_local_mous_id() -> str:
    return f"aperture-{secrets.token_hex(6)}"


def _is_root_manifest(member_name: str) -> bool:
    """aperture-restore.json at the package's root, or in its one top folder."""
    parts = [part for part in PurePosixPath(member_name).parts if part not in (".", "/")]
    return bool(parts) and parts[-1] == RESTORE_MANIFEST_NAME and len(parts) <= 2


def mous_id_from_package(path: Path) -> str | None:
    """The mous_uid of the package's restore manifest, None when it has none (or is not a tar archive:
    ingest judges the package; here it is only looked into)."""
    try:
        with tarfile.open(path, "r:*") as archive:
            while (member := archive.next()) is not None:
                if not (member.isfile() and _is_root_manifest(member.name)):
                    continue
                if member.size > MAX_MANIFEST_BYTES:
                    raise SubmissionProblem(
                        PACKAGE_FIELD, f"{RESTORE_MANIFEST_NAME} in the package is {member.size} bytes; "
                        "a restore manifest is a small JSON file: check the package"
                    )
                stream = archive.extractfile(member)
                if stream is None:
                    return None
                raw = stream.read()
                break
            else:
                return None
    except (tarfile.TarError, EOFError, OSError, zlib.error):
        return None
    try:
        manifest = RestoreManifest.model_validate(json.loads(raw))
    except (ValueError, ValidationError) as error:
        raise SubmissionProblem(
            PACKAGE_FIELD, f"{RESTORE_MANIFEST_NAME} in the package is not a valid restore manifest "
            f"({str(error).splitlines()[0]}); fix it (see the package documentation) and upload again"
        ) from error
    if manifest.mous_uid is None:
        return None
    try:
        return validate_mous_uid(manifest.mous_uid, field_name=PACKAGE_FIELD)
    except SubmissionProblem as problem:
        raise SubmissionProblem(
            PACKAGE_FIELD, f"{RESTORE_MANIFEST_NAME} in the package names mous_uid {manifest.mous_uid!r}: "
            f"{problem.message}"
        ) from problem


def resolve_mous_id(explicit: str | None, package: Path | None, filename: str) -> str:
    """The MOUS id, by the precedence in the module docstring (the package is read, so call it in a
    worker thread)."""
    if explicit:
        return validate_mous_uid(explicit)
    if package is not None:
        from_manifest = mous_id_from_package(package)
        if from_manifest is not None:
            return from_manifest
    return mous_id_from_name(filename) or new_local_mous_id()


class _MultipartReceiver:
    """Callbacks for python-multipart's streaming parser: one file part, a few small text fields."""

    def __init__(self, spool_dir: Path | None) -> None:
        self.spool_dir = spool_dir
        self.fields: dict[str, str] = {}
        self.upload: ReceivedUpload | None = None
        self.finished = False
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._headers: dict[str, bytes] = {}
        self._name = ""
        self._text = bytearray()
        self._file: IO[bytes] | None = None

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda data, start, end: self._header_name.extend(data[start:end]),
            "on_header_value": lambda data, start, end: self._header_value.extend(data[start:end]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
            "on_end": self._end,
        }

    def _part_begin(self) -> None:
        self._headers = {}
        self._name = ""
        self._text = bytearray()

    def _header_end(self) -> None:
        self._headers[self._header_name.decode("latin-1").strip().lower()] = bytes(self._header_value).strip()
        self._header_name.clear()
        self._header_value.clear()

    def _headers_finished(self) -> None:
        disposition, options = parse_options_header(self._headers.get("content-disposition", b""))
        if disposition != b"form-data" or b"name" not in options:
            raise SubmissionProblem("body", "every part of the form needs a Content-Disposition with a name")
        self._name = options[b"name"].decode("utf-8", "replace")
        if self._name == PACKAGE_FIELD:
            if self.upload is not None:
                raise SubmissionProblem(PACKAGE_FIELD, "send one package per submission")
            filename = options.get(b"filename")
            if filename is None:
                raise SubmissionProblem(PACKAGE_FIELD, "send the package as a file (with a file name)")
            content_type = self._headers.get("content-type", b"application/octet-stream").decode("latin-1")
            handle = tempfile.NamedTemporaryFile(prefix="aperture-upload-", dir=self.spool_dir, delete=False)
            self._file = handle
            self.upload = ReceivedUpload(
                path=Path(handle.name), filename=filename.decode("utf-8", "replace"),
                content_type=content_type or "application/octet-stream", size=0,
            )
        elif self._name not in TEXT_FIELDS:
            raise SubmissionProblem(
                self._name, f"unknown form field {self._name!r}; the form takes package, mous_uid and rerun"
            )
        elif self._name in self.fields:
            raise SubmissionProblem(self._name, f"the form gives {self._name} more than once")

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._file is not None:
            self._file.write(data[start:end])
            assert self.upload is not None
            self.upload.size += end - start
            return
        self._text.extend(data[start:end])
        if len(self._text) > MAX_TEXT_FIELD_BYTES:
            raise SubmissionProblem(self._name, f"{self._name} is longer than {MAX_TEXT_FIELD_BYTES} bytes")

    def _part_end(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        elif self._name:
            try:
                self.fields[self._name] = self._text.decode("utf-8")
            except UnicodeDecodeError as error:
                raise SubmissionProblem(self._name, f"{self._name} is not UTF-8 text") from error

    def _end(self) -> None:
        self.finished = True

    def discard(self) -> None:
        if self._file is not None:
            self._file.close()
        if self.upload is not None:
            self.upload.path.unlink(missing_ok=True)


async def receive_multipart(
    content_type: str, body: AsyncIterator[bytes], *, spool_dir: Path | None = None, max_bytes: int | None = None
) -> ReceivedUpload:
    """Parse a multipart/form-data body as it streams in; the package part goes to a temporary file.

    A body larger than `max_bytes` is refused (413) as soon as it passes the limit, before the spool disk
    fills: the limit protects the coordinator's disk, and packages above it belong in the object store.
    """
    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise SubmissionProblem(
            "Content-Type", "a multipart/form-data body needs a boundary in its Content-Type"
        )
    receiver = _MultipartReceiver(spool_dir)
    try:
        parser = MultipartParser(boundary, receiver.callbacks())  # type: ignore[arg-type]
        received = 0
        async for chunk in body:
            received += len(chunk)
            if max_bytes is not None and received > max_bytes:
                raise SubmissionProblem(
                    PACKAGE_FIELD,
                    f"the upload is larger than this coordinator accepts ({max_bytes / 1e9:g} GB, "
                    "APERTURE_MAX_UPLOAD_BYTES): put the package in the object store and submit it by "
                    "reference (object_key)",
                    status=413,
                )
            if chunk:
                # Parsing calls back into file writes: keep them off the event loop.
                await asyncio.to_thread(parser.write, chunk)
        parser.finalize()
        if not receiver.finished:
            raise SubmissionProblem(
                "body", "the multipart body ended before its closing boundary: send it again"
            )
        if receiver.upload is None:
            raise SubmissionProblem(PACKAGE_FIELD, "the form has no package: add the MS package as the file "
                                    "field 'package'")
        if receiver.upload.size == 0:
            raise SubmissionProblem(PACKAGE_FIELD, f"the package {receiver.upload.filename!r} is empty")
    except FormParserError as error:
        receiver.discard()
        message = f"the multipart body cannot be parsed ({error}); send it again"
        raise SubmissionProblem("body", message) from error
    except OSError as error:  # the spool disk is full or gone
        receiver.discard()
        message = (
            f"the coordinator cannot keep the upload ({error.strerror or error}); try again later, or put "
            "the package in the object store and submit it by reference (object_key)"
        )
        raise SubmissionProblem(PACKAGE_FIELD, message, status=507) from error
    except BaseException:
        receiver.discard()
        raise
    receiver.upload.fields = receiver.fields
    return receiver.upload
