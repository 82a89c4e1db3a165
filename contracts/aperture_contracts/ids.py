"""Typed identifiers and the one place that turns an archive uid into a name safe for keys and URLs."""

import re
from typing import Annotated

from pydantic import AfterValidator, StringConstraints

# ALMA archive uids look like uid://A001/X2fa/X2dd; the file-system form is uid___A001_X2fa_X2dd.
ARCHIVE_UID = re.compile(r"^uid://[A-Za-z0-9]+/[A-Za-z0-9]+/[A-Za-z0-9]+$")
ARCHIVE_UID_SAFE = re.compile(r"^uid___([A-Za-z0-9]+)_([A-Za-z0-9]+)_([A-Za-z0-9]+)$")
# Ids the coordinator makes when a package names no archive uid.
LOCAL_MOUS_ID = re.compile(r"^aperture-[0-9a-f]{12}$")


def _check_mous_id(value: str) -> str:
    value = canonical_mous_id(value)
    if not (ARCHIVE_UID.match(value) or LOCAL_MOUS_ID.match(value)):
        raise ValueError(
            f"{value!r} is not an MOUS id: use an archive uid such as uid://A001/X2fa/X2dd "
            "(or its file form uid___A001_X2fa_X2dd) or an id of the form aperture-<12 hex digits>"
        )
    return value


def canonical_mous_id(value: str) -> str:
    """The canonical form of an MOUS id: the file form of an archive uid becomes uid://A/B/C."""
    match = ARCHIVE_UID_SAFE.match(value)
    if match:
        return "uid://" + "/".join(match.groups())
    return value


def mous_key(mous_id: str) -> str:
    """The MOUS id as it appears in object keys, file names and URLs (uid://A/B/C -> uid___A_B_C)."""
    if mous_id.startswith("uid://"):
        return "uid___" + mous_id.removeprefix("uid://").replace("/", "_")
    return mous_id


MousId = Annotated[str, AfterValidator(_check_mous_id)]
JobId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,199}$")]
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
