"""Object storage through the `minio` client: files as objects, directories (Measurement Sets) as one
tar archive each.

Integrity: the writer computes the SHA-256 and stores it in the object's metadata (never the ETag:
multipart ETags are not content hashes); readers verify it while downloading, and against the checksum
the caller expected when it has one. A mismatch is an IntegrityError, never silently accepted.
All methods are synchronous (the client is); async code calls them through asyncio.to_thread.
"""

import hashlib
import io
import json
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import urllib3
from aperture_contracts.storage import ObjectRef, sha256_of_file
from minio import Minio
from minio.error import MinioException, S3Error
from pydantic import BaseModel

from aperture_shared.errors import BadInput, IntegrityError, StorageError
from aperture_shared.metrics import STORAGE_BYTES
from aperture_shared.settings import CommonSettings

SHA256_META = "sha256"
_CHUNK = 8 * 1024 * 1024
# Multipart uploads in parts of this size (S3 allows up to 10,000 parts: 5 TB objects).
_PART_SIZE = 64 * 1024 * 1024


def tar_directory(directory: Path, archive: Path) -> None:
    """A plain (uncompressed) tar with the directory at its root: MS data barely compress, and plain
    tar streams at disk speed."""
    with tarfile.open(archive, "w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(directory, arcname=directory.name)


class ObjectStore:
    """One bucket of an S3 server."""

    def __init__(self, settings: CommonSettings) -> None:
        self.bucket = settings.s3_bucket
        # Short timeouts and a few retries: a store that is down is a transient StorageError, and the
        # coordinator's retry policy decides what happens next; a worker must not hang on it.
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=5, read=120),
            retries=urllib3.Retry(total=3, backoff_factor=0.3, status_forcelist=(500, 502, 503, 504)),
        )
        self._client = Minio(
            settings.s3_endpoint,
            access_key=settings.s3_access_key.get_secret_value(),
            secret_key=settings.s3_secret_key.get_secret_value(),
            secure=settings.s3_secure,
            region=settings.s3_region,
            http_client=http,
        )
        # Links are signed offline (the region is given), so the public host need not be reachable from here.
        self._signer = self._client
        if settings.s3_public_endpoint:
            self._signer = Minio(
                settings.s3_public_endpoint,
                access_key=settings.s3_access_key.get_secret_value(),
                secret_key=settings.s3_secret_key.get_secret_value(),
                secure=settings.s3_secure if settings.s3_public_secure is None else settings.s3_public_secure,
                region=settings.s3_region,
            )

    def ensure_bucket(self) -> None:
        with _storage_errors("creating the bucket"):
            if not self._client.bucket_exists(self.bucket):
                self._client.make_bucket(self.bucket)

    def ping(self) -> None:
        with _storage_errors("reaching the object store"):
            self._client.bucket_exists(self.bucket)

    # -- writing -------------------------------------------------------------------------------------

    def put_file(self, key: str, path: Path, content_type: str = "application/octet-stream") -> ObjectRef:
        sha = sha256_of_file(path)
        size = path.stat().st_size
        with _storage_errors(f"uploading {key}"):
            self._client.fput_object(
                self.bucket, key, str(path), content_type=content_type,
                metadata={SHA256_META: sha}, part_size=_PART_SIZE,
            )
        STORAGE_BYTES.labels("upload").inc(size)
        return ObjectRef(key=key, sha256=sha, size=size, content_type=content_type)

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> ObjectRef:
        sha = hashlib.sha256(data).hexdigest()
        with _storage_errors(f"uploading {key}"):
            self._client.put_object(
                self.bucket, key, io.BytesIO(data), len(data), content_type=content_type,
                metadata={SHA256_META: sha},
            )
        STORAGE_BYTES.labels("upload").inc(len(data))
        return ObjectRef(key=key, sha256=sha, size=len(data), content_type=content_type)

    def put_json(self, key: str, model: BaseModel) -> ObjectRef:
        return self.put_bytes(key, model.model_dump_json(indent=2).encode(), "application/json")

    def put_directory(self, key: str, directory: Path, scratch: Path) -> ObjectRef:
        """Store a directory (a Measurement Set) as one tar object."""
        with tempfile.TemporaryDirectory(dir=scratch) as tmp:
            archive = Path(tmp) / (directory.name + ".tar")
            tar_directory(directory, archive)
            return self.put_file(key, archive, "application/x-tar")

    # -- reading -------------------------------------------------------------------------------------

    def stat(self, key: str) -> ObjectRef:
        with _storage_errors(f"looking up {key}"):
            info = self._client.stat_object(self.bucket, key)
        sha = (info.metadata or {}).get(f"x-amz-meta-{SHA256_META}")
        if not sha:
            raise IntegrityError(
                f"object {key} carries no SHA-256: it was not written by Aperture's storage layer; "
                "store it again through the API or the CLI"
            )
        return ObjectRef(
            key=key, sha256=sha, size=info.size or 0,
            content_type=info.content_type or "application/octet-stream",
        )

    def exists(self, key: str) -> bool:
        try:
            self._client.stat_object(self.bucket, key)
        except S3Error as error:
            if error.code in ("NoSuchKey", "NoSuchObject", "NotFound"):
                return False
            raise StorageError(f"looking up {key} failed: {error.code}", str(error)) from error
        except (MinioException, urllib3.exceptions.HTTPError) as error:
            raise StorageError(f"the object store is unreachable while looking up {key}", str(error)) from error
        return True

    def get_file(self, ref: ObjectRef | str, dest: Path) -> ObjectRef:
        """Download to `dest`, verifying the SHA-256 (against `ref` and the object's own metadata)."""
        stored = self.stat(ref if isinstance(ref, str) else ref.key)
        expected = stored.sha256 if isinstance(ref, str) else ref.sha256
        if expected != stored.sha256:
            raise IntegrityError(
                f"object {stored.key} has changed since it was recorded (SHA-256 {stored.sha256[:12]}..., "
                f"expected {expected[:12]}...): re-submit the MOUS or restore the object"
            )
        partial = dest.with_name(dest.name + ".part")
        digest = hashlib.sha256()
        with _storage_errors(f"downloading {stored.key}"):
            response = self._client.get_object(self.bucket, stored.key)
            try:
                with partial.open("wb") as out:
                    for chunk in response.stream(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
            finally:
                response.close()
                response.release_conn()
        if digest.hexdigest() != expected:
            partial.unlink(missing_ok=True)
            raise IntegrityError(
                f"object {stored.key} is corrupt: its content's SHA-256 is {digest.hexdigest()[:12]}..., "
                f"the writer recorded {expected[:12]}...; restore it from its source"
            )
        partial.rename(dest)
        STORAGE_BYTES.labels("download").inc(stored.size)
        return stored

    def get_bytes(self, ref: ObjectRef | str) -> bytes:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "object"
            self.get_file(ref, path)
            return path.read_bytes()

    def get_json(self, ref: ObjectRef | str) -> object:
        return json.loads(self.get_bytes(ref))

    def get_directory(self, ref: ObjectRef | str, into: Path) -> Path:
        """Fetch a directory stored by put_directory; returns its path under `into`."""
        archive = into / ".download.tar"
        self.get_file(ref, archive)
        try:
            with tarfile.open(archive) as tar:
                names = {member.name.split("/", 1)[0] for member in tar.getmembers()}
                if len(names) != 1:
                    raise BadInput(f"archive {archive.name} should hold one directory, holds {sorted(names)}")
                tar.extractall(into, filter="data")
        finally:
            archive.unlink(missing_ok=True)
        return into / names.pop()

    def list(self, prefix: str) -> Iterator[str]:
        with _storage_errors(f"listing {prefix}"):
            for item in self._client.list_objects(self.bucket, prefix=prefix, recursive=True):
                if item.object_name:
                    yield item.object_name

    def presigned_get(self, key: str, expires: timedelta) -> str:
        with _storage_errors(f"signing a link to {key}"):
            return self._signer.presigned_get_object(self.bucket, key, expires=expires)

    def delete_prefix(self, prefix: str) -> int:
        """Remove every object under a prefix; returns how many."""
        from minio.deleteobjects import DeleteObject

        keys = list(self.list(prefix))
        with _storage_errors(f"deleting {prefix}"):
            errors = list(self._client.remove_objects(self.bucket, [DeleteObject(k) for k in keys]))
        if errors:
            raise StorageError(f"could not delete {len(errors)} objects under {prefix}", str(errors[0]))
        return len(keys)


@contextmanager
def _storage_errors(doing: str) -> Iterator[None]:
    """Turn client and network failures into StorageError (transient), naming what was being done."""
    try:
        yield
    except S3Error as error:
        if error.code in ("NoSuchKey", "NoSuchObject"):
            raise StorageError(f"{doing} failed: the object does not exist", str(error)) from error
        raise StorageError(f"{doing} failed: {error.code}: {error.message}", str(error)) from error
    except (MinioException, urllib3.exceptions.HTTPError, ConnectionError, TimeoutError) as error:
        raise StorageError(
            f"{doing} failed: the object store is unreachable ({type(error).__name__})", str(error)
        ) from error
