"""Where a campaign's members come from: the list it was given, a manifest in the object store (JSON
lines), or the packages under a prefix of the store; and the MOUS id each package stands for.

This runs when a campaign is submitted, before anything is written, so that a manifest with a bad line
or a prefix with no package is refused (422 naming the field) instead of making a campaign of nothing.
A campaign that runs a sample of each category first needs each member's category before anything runs:
the size of a package whose size is not given is then read from the store here.
"""

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Protocol, runtime_checkable

from aperture_contracts.campaigns import PACKAGE_SUFFIXES, CampaignCreate, CampaignMember, MemberAttributes
from aperture_contracts.storage import ObjectRef
from aperture_shared.errors import JobError, StorageError
from pydantic import ValidationError

from aperture_coordinator.uploads import mous_id_from_name

# A manifest of 100,000 members is about 10 MB of JSON lines.
MAX_MANIFEST_BYTES = 32 * 1024 * 1024


class PackageLookup(Protocol):
    """What feeding a campaign needs of the object store (the API's store has it)."""

    def stat(self, key: str) -> ObjectRef: ...

    def exists(self, key: str) -> bool: ...


@runtime_checkable
class ObjectLister(Protocol):
    """A store that can list a prefix (needed by scan_prefix only)."""

    def list(self, prefix: str) -> Iterable[str]: ...


@runtime_checkable
class ObjectReader(Protocol):
    """A store that can read an object's bytes (needed by manifest_key only)."""

    def get_bytes(self, ref: ObjectRef | str) -> bytes: ...


class CampaignProblem(Exception):
    """Something wrong with a campaign call: the HTTP status, the field it concerns (None: the whole
    request) and a sentence saying what to do."""

    status = 422

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class StoreUnavailable(CampaignProblem):
    status = 503


@dataclass(frozen=True)
class ResolvedMember:
    mous_id: str
    object_key: str
    attributes: MemberAttributes = field(default_factory=MemberAttributes)


def is_package(key: str) -> bool:
    return key.lower().endswith(PACKAGE_SUFFIXES)


def member_mous_id(object_key: str) -> str:
    """The MOUS a package stands for when the campaign does not say: the archive uid in its file name (as
    uploads.py reads it), else a local id made from the key. Unlike an upload's random local id, this one
    is the same every time, so that scanning the same prefix again finds the same members."""
    from_name = mous_id_from_name(PurePosixPath(object_key).name)
    if from_name is not None:
        return from_name
    return f"aperture-{hashlib.sha256(object_key.encode()).hexdigest()[:12]}"


def resolve_members(body: CampaignCreate, store: PackageLookup) -> list[ResolvedMember]:
    """Every member the submission names, once each, in the order given (a scan: sorted by key)."""
    if body.members is not None:
        listed, field = body.members, "members"
    elif body.manifest_key is not None:
        listed, field = read_manifest(store, body.manifest_key), "manifest_key"
    else:
        assert body.scan_prefix is not None  # CampaignCreate checks that exactly one source is given
        listed, field = scan_prefix(store, body.scan_prefix), "scan_prefix"
    resolved: dict[str, ResolvedMember] = {}
    for member in listed:
        mous_id = member.mous_id or member_mous_id(member.object_key)
        earlier = resolved.get(mous_id)
        if earlier is not None and earlier.object_key != member.object_key:
            raise CampaignProblem(
                f"MOUS {mous_id} is given twice, as {earlier.object_key!r} and as {member.object_key!r}: "
                "a campaign processes one package per MOUS; keep one of them",
                field,
            )
        resolved[mous_id] = ResolvedMember(mous_id, member.object_key, member.attributes or MemberAttributes())
    members = list(resolved.values())
    return with_sizes(members, store) if body.sample_per_category is not None else members


def with_sizes(members: list[ResolvedMember], store: PackageLookup) -> list[ResolvedMember]:
    """The members, each package's size read from the store where it was not given (one look-up each). A
    package not there keeps an unknown size: the feeder fails it as missing when its turn comes."""
    sized = []
    for member in members:
        if member.attributes.size_bytes is None:
            try:
                size = store.stat(member.object_key).size if store.exists(member.object_key) else None
            except StorageError as error:
                raise StoreUnavailable(
                    f"reading the size of {member.object_key!r} failed: {error.message}; try again in a minute"
                ) from error
            except JobError:  # an object not written through Aperture: its turn will say so
                size = None
            attributes = member.attributes.model_copy(update={"size_bytes": size})
            member = ResolvedMember(member.mous_id, member.object_key, attributes)
        sized.append(member)
    return sized


def read_manifest(store: PackageLookup, key: str) -> list[CampaignMember]:
    """The members a manifest lists: JSON lines, one CampaignMember per line, blank lines skipped."""
    if not isinstance(store, ObjectReader):
        raise CampaignProblem("this coordinator's object store cannot read manifests: list the members", "manifest_key")
    try:
        if not store.exists(key):
            raise CampaignProblem(
                f"the object store has no object {key!r}: upload the manifest first", "manifest_key"
            )
        size = store.stat(key).size
        if size > MAX_MANIFEST_BYTES:
            raise CampaignProblem(
                f"the manifest {key!r} is {size / 1e6:.0f} MB; at most {MAX_MANIFEST_BYTES / 1e6:.0f} MB are read: "
                "split the campaign into several",
                "manifest_key",
            )
        raw = store.get_bytes(key)
    except StorageError as error:
        raise StoreUnavailable(f"reading the manifest failed: {error.message}; try again in a minute") from error
    except JobError as error:  # an integrity failure: the object was not written through Aperture
        raise CampaignProblem(f"the manifest cannot be read: {error.message}", "manifest_key") from error
    return parse_manifest(raw, key)


def parse_manifest(raw: bytes, key: str) -> list[CampaignMember]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise CampaignProblem(f"the manifest {key!r} is not UTF-8 text (JSON lines)", "manifest_key") from error
    members = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            members.append(CampaignMember.model_validate(json.loads(line)))
        except ValidationError as error:  # before ValueError: it is one
            first = error.errors(include_url=False)[0]
            where = ".".join(str(part) for part in first["loc"])
            raise _bad_line(key, number, f"{where}: {first['msg']}" if where else first["msg"]) from error
        except ValueError as error:
            raise _bad_line(key, number, f"not JSON: {error}") from error
    if not members:
        raise CampaignProblem(f"the manifest {key!r} lists no member", "manifest_key")
    return members


def _bad_line(key: str, number: int, what: str) -> CampaignProblem:
    return CampaignProblem(
        f"line {number} of the manifest {key!r} is not a member ({what}); each line is a JSON object such as "
        '{"mous_id": "uid://A001/X2fa/X2dd", "object_key": "archive/uid___A001_X2fa_X2dd.ms.tar"}',
        "manifest_key",
    )


def scan_prefix(store: PackageLookup, prefix: str) -> list[CampaignMember]:
    """One member per package (*.tar, *.tar.gz, *.tgz) under the prefix, sorted by key."""
    if not isinstance(store, ObjectLister):
        raise CampaignProblem("this coordinator's object store cannot list a prefix: list the members", "scan_prefix")
    try:
        keys = sorted(key for key in store.list(prefix) if is_package(key))
    except StorageError as error:
        raise StoreUnavailable(f"listing {prefix!r} failed: {error.message}; try again in a minute") from error
    if not keys:
        raise CampaignProblem(
            f"there is no package (*.tar, *.tar.gz, *.tgz) under {prefix!r} in the object store", "scan_prefix"
        )
    return [CampaignMember(object_key=key) for key in keys]
