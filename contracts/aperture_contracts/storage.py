"""References to objects in S3 storage, as carried by messages, and how their checksum is computed."""

import hashlib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from aperture_contracts.ids import Sha256


class ObjectRef(BaseModel):
    """An object in storage with the SHA-256 its writer computed; readers verify it."""

    model_config = ConfigDict(frozen=True)

    key: str = Field(min_length=1, examples=["mous/uid___A001_X2fa_X2dd/input/package.tar"])
    sha256: Sha256
    size: int = Field(ge=0, description="bytes")
    content_type: str = "application/octet-stream"


_CHUNK = 8 * 1024 * 1024


def sha256_of_file(path: Path) -> str:
    """The SHA-256 of a file, hex: what ObjectRef.sha256 holds (computed by writers, checked by readers)."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
