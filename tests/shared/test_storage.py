"""Object storage against the real S3 server: checksums are the writer's and are verified on read."""

import hashlib
from datetime import timedelta

import pytest
import urllib3
from aperture_contracts.enums import ErrorClass
from aperture_shared.errors import IntegrityError, StorageError
from aperture_shared.settings import CommonSettings
from aperture_shared.storage import ObjectStore

pytestmark = pytest.mark.integration


@pytest.fixture
def store(storage_settings) -> ObjectStore:
    store = ObjectStore(storage_settings)
    store.ensure_bucket()
    yield store
    store.delete_prefix("")


def test_a_file_round_trips_with_the_writers_sha256(store, tmp_path):
    source = tmp_path / "image.fits"
    source.write_bytes(b"SIMPLE  =                    T" * 1000)
    ref = store.put_file("mous/x/products/image.fits", source, "application/fits")
    assert ref.sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
    assert store.stat(ref.key) == ref
    dest = tmp_path / "copy.fits"
    store.get_file(ref, dest)
    assert dest.read_bytes() == source.read_bytes()


def test_a_multipart_object_keeps_a_content_hash_not_the_etag(store, tmp_path):
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * (70 * 1024 * 1024 // 256))  # > one 64 MiB part
    ref = store.put_file("big.bin", big)
    assert store.stat("big.bin").sha256 == ref.sha256 == hashlib.sha256(big.read_bytes()).hexdigest()


def test_a_directory_moves_as_one_archive_object(store, tmp_path):
    ms = tmp_path / "obs.ms"
    (ms / "ANTENNA").mkdir(parents=True)
    (ms / "table.dat").write_bytes(b"main")
    (ms / "ANTENNA" / "table.dat").write_bytes(b"antennas")
    ref = store.put_directory("mous/x/work/ingest/obs.ms.tar", ms, tmp_path)
    assert list(store.list("mous/x/work/")) == [ref.key]
    into = tmp_path / "restored"
    into.mkdir()
    restored = store.get_directory(ref, into)
    assert restored == into / "obs.ms"
    assert (restored / "ANTENNA" / "table.dat").read_bytes() == b"antennas"


def test_an_object_changed_behind_our_back_is_an_integrity_error(store, tmp_path):
    ref = store.put_bytes("k", b"original")
    store.put_bytes("k", b"tampered")  # a new writer records a new checksum ...
    with pytest.raises(IntegrityError, match="has changed since it was recorded"):
        store.get_file(ref, tmp_path / "out")  # ... which no longer matches what the reader expects
    assert not (tmp_path / "out").exists()


def test_content_that_does_not_match_its_recorded_checksum_is_an_integrity_error(store, tmp_path):
    from io import BytesIO

    # Write around the storage layer, recording a checksum that the content does not have.
    store._client.put_object(store.bucket, "corrupt", BytesIO(b"bytes"), 5, metadata={"sha256": "0" * 64})
    with pytest.raises(IntegrityError, match="is corrupt") as caught:
        store.get_file("corrupt", tmp_path / "out")
    assert caught.value.error_class is ErrorClass.INTEGRITY


def test_a_missing_object_is_a_storage_error(store, tmp_path):
    assert not store.exists("nope")
    with pytest.raises(StorageError, match="does not exist"):
        store.get_file("nope", tmp_path / "out")


def test_presigned_links_download_without_credentials_until_they_expire(store):
    store.put_bytes("report.json", b"{}", "application/json")
    url = store.presigned_get("report.json", timedelta(minutes=5))
    response = urllib3.request("GET", url)
    assert response.status == 200 and response.data == b"{}"
    tampered = url.replace("X-Amz-Expires=300", "X-Amz-Expires=30000")
    assert urllib3.request("GET", tampered).status == 403


def test_wrong_credentials_are_refused(storage_settings):
    wrong = CommonSettings(s3_bucket=storage_settings.s3_bucket, s3_secret_key="not-the-secret")
    with pytest.raises(StorageError):
        ObjectStore(wrong).ensure_bucket()


def test_an_unreachable_store_is_a_transient_storage_error():
    down = CommonSettings(s3_endpoint="127.0.0.1:1", s3_bucket="unreachable")
    with pytest.raises(StorageError, match="unreachable") as caught:
        ObjectStore(down).ping()
    assert caught.value.error_class is ErrorClass.STORAGE


def test_download_links_are_signed_for_the_public_endpoint_when_one_is_set(storage_settings):
    settings = storage_settings.model_copy(update={"s3_public_endpoint": "archive.example.org:9443",
                                                   "s3_public_secure": True})
    url = ObjectStore(settings).presigned_get("mous/x/products/report.json", timedelta(minutes=5))
    assert url.startswith(f"https://archive.example.org:9443/{settings.s3_bucket}/mous/x/products/report.json?")
    assert "X-Amz-Signature=" in url
