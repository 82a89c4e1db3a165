import hashlib
import io
import socket
import tarfile
from pathlib import Path

import httpx
import pytest
from aperture_cli.client import ApertureClient
from aperture_cli.errors import (
    ApertureClientError,
    ApiError,
    ApiUnreachable,
    ChecksumMismatch,
    DownloadError,
    UnexpectedResponse,
    WaitTimeout,
)
from aperture_contracts.enums import JobState, MousState, Stage
from cli_fakes import (
    MOUS_ID,
    MOUS_KEY,
    FakeCoordinator,
    make_detail,
    make_job,
    make_measurement_set,
    make_product,
)


def closed_port() -> int:
    """A local port with nothing listening (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class FakeClock:
    """Time that moves only when the client sleeps, so waits take no real time."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


# Submitting


def test_submit_of_a_directory_uploads_a_tar_with_the_ms_at_its_root(
    tmp_path: Path, coordinator: FakeCoordinator
) -> None:
    ms = make_measurement_set(tmp_path)
    coordinator.details = [make_detail()]

    with coordinator.client() as client:
        submission = client.submit(ms, mous_uid="uid://A001/X2fa/X2dd", rerun=True)

    assert submission.created
    assert submission.summary.mous_id == MOUS_ID
    [upload] = coordinator.uploads
    package = upload.form["package"]
    assert package.filename == "uid___A002_X1_X2.ms.tar"
    assert package.headers["content-type"] == "application/x-tar"
    assert upload.form["mous_uid"].content == b"uid://A001/X2fa/X2dd"
    assert upload.form["rerun"].content == b"true"
    with tarfile.open(fileobj=io.BytesIO(package.content)) as tar:
        names = tar.getnames()
        table = tar.extractfile("uid___A002_X1_X2.ms/table.f0")
        assert table is not None and table.read() == (ms / "table.f0").read_bytes()
    assert {name.split("/")[0] for name in names} == {"uid___A002_X1_X2.ms"}


def test_upload_streams_the_archive_from_disk_in_pieces(tmp_path: Path, coordinator: FakeCoordinator) -> None:
    ms = make_measurement_set(tmp_path)
    (ms / "table.f1").write_bytes(bytes(range(256)) * 4096)  # 1 MiB
    coordinator.details = [make_detail()]
    sent: list[int] = []

    with coordinator.client() as client:
        client.submit(ms, on_bytes=sent.append)

    [upload] = coordinator.uploads
    assert upload.body_size > 1024 * 1024
    # Sent with a length (not chunked) and in pieces no larger than httpx's 64 KiB file chunks.
    assert upload.content_length == str(upload.body_size)
    assert upload.largest_chunk <= 64 * 1024
    assert sum(sent) == len(upload.form["package"].content)


def test_submit_of_an_archive_sends_its_bytes_unchanged_and_rerun_false(
    tmp_path: Path, coordinator: FakeCoordinator
) -> None:
    archive = tmp_path / "mous.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(make_measurement_set(tmp_path), arcname="uid___A002_X1_X2.ms")
    coordinator.details = [make_detail()]

    with coordinator.client() as client:
        client.submit(archive)

    [upload] = coordinator.uploads
    assert upload.form["package"].content == archive.read_bytes()
    assert upload.form["package"].filename == "mous.tar.gz"
    assert upload.form["package"].headers["content-type"] == "application/gzip"
    assert upload.form["rerun"].content == b"false"
    assert "mous_uid" not in upload.form


def test_submit_of_a_known_mous_says_nothing_new_was_created(
    tmp_path: Path, coordinator: FakeCoordinator
) -> None:
    coordinator.details = [make_detail(MousState.COMPLETED)]
    coordinator.submit_status = 200

    with coordinator.client() as client:
        submission = client.submit(make_measurement_set(tmp_path))

    assert not submission.created
    assert submission.summary.state is MousState.COMPLETED


# Reading


@pytest.mark.parametrize("typed", [MOUS_ID, MOUS_KEY, f" {MOUS_KEY} "])
def test_mous_id_goes_into_the_url_in_its_file_form(coordinator: FakeCoordinator, typed: str) -> None:
    coordinator.details = [make_detail(MousState.PROCESSING)]

    with coordinator.client() as client:
        detail = client.get_mous(typed)

    assert detail.state is MousState.PROCESSING
    assert coordinator.requests[-1].url.path == f"/api/v1/mous/{MOUS_KEY}"


def test_list_sends_limit_and_offset(coordinator: FakeCoordinator) -> None:
    coordinator.details = [make_detail()]

    with coordinator.client() as client:
        listing = client.list_mous(limit=5, offset=0)

    assert listing.total == 1
    assert coordinator.requests[-1].url.params["limit"] == "5"


def test_cancel_returns_the_new_summary(coordinator: FakeCoordinator) -> None:
    coordinator.details = [make_detail(MousState.PROCESSING)]

    with coordinator.client() as client:
        summary = client.cancel_mous(MOUS_ID)

    assert summary.state is MousState.CANCELLED
    assert coordinator.requests[-1].method == "POST"


# Failures


def test_error_body_becomes_an_api_error_with_its_detail_and_field_errors(
    coordinator: FakeCoordinator,
) -> None:
    coordinator.failure = (
        422,
        {
            "detail": "the package is not a Measurement Set archive",
            "errors": [{"loc": ["body", "package"], "msg": "no table.dat under uid___A002_X1_X2.ms"}],
        },
    )

    with coordinator.client() as client, pytest.raises(ApiError) as caught:
        client.get_mous(MOUS_ID)

    assert caught.value.status_code == 422
    assert caught.value.detail == "the package is not a Measurement Set archive"
    assert caught.value.field_errors == [
        {"loc": ["body", "package"], "msg": "no table.dat under uid___A002_X1_X2.ms"}
    ]


def test_fastapi_validation_body_is_read_as_field_errors(coordinator: FakeCoordinator) -> None:
    coordinator.failure = (422, {"detail": [{"loc": ["query", "limit"], "msg": "must be >= 1", "type": "x"}]})

    with coordinator.client() as client, pytest.raises(ApiError) as caught:
        client.list_mous(limit=0)

    assert caught.value.detail == "the request was not valid"
    assert caught.value.field_errors[0]["msg"] == "must be >= 1"


def test_an_error_page_that_is_not_json_is_reported_with_its_text(coordinator: FakeCoordinator) -> None:
    coordinator.failure = (502, "<html><body>Bad Gateway</body></html>")

    with coordinator.client() as client, pytest.raises(ApiError) as caught:
        client.get_mous(MOUS_ID)

    assert caught.value.status_code == 502
    assert "Bad Gateway" in caught.value.detail


def test_a_body_that_breaks_the_contract_is_an_unexpected_response(coordinator: FakeCoordinator) -> None:
    coordinator.failure = (200, {"items": "not a list"})

    with (
        coordinator.client() as client,
        pytest.raises(UnexpectedResponse, match="not a MousList.*same version"),
    ):
        client.list_mous()


def test_unreachable_api_says_where_it_looked_and_how_to_start_it() -> None:
    api = f"http://127.0.0.1:{closed_port()}"

    with ApertureClient(api) as client, pytest.raises(ApiUnreachable) as caught:
        client.list_mous()

    assert f"cannot reach the Aperture API at {api}: is it running? `make up` starts it" in str(caught.value)


def test_api_url_without_a_scheme_is_refused() -> None:
    with pytest.raises(ApertureClientError, match="must start with http:// or https://"):
        ApertureClient("127.0.0.1:8000")


# Waiting


def test_wait_polls_until_the_mous_reaches_an_end_state(coordinator: FakeCoordinator) -> None:
    coordinator.details = [
        make_detail(MousState.RECEIVED),
        make_detail(MousState.PROCESSING, jobs=[make_job("ingest-1", Stage.INGEST, JobState.SUCCEEDED)]),
        make_detail(MousState.COMPLETED),
        make_detail(MousState.PROCESSING),  # never reached: the wait stops at the end state
    ]
    clock = FakeClock()
    seen: list[MousState] = []

    with coordinator.client() as client:
        detail = client.wait(
            MOUS_ID,
            poll_interval_s=2.0,
            on_update=lambda update: seen.append(update.state),
            sleep=clock.sleep,
            clock=clock,
        )

    assert detail.state is MousState.COMPLETED
    assert seen == [MousState.RECEIVED, MousState.PROCESSING, MousState.COMPLETED]
    assert clock.sleeps == [2.0, 2.0]


def test_wait_stops_at_waiting_for_service(coordinator: FakeCoordinator) -> None:
    coordinator.details = [make_detail(MousState.INGESTING), make_detail(MousState.WAITING_FOR_SERVICE)]
    clock = FakeClock()

    with coordinator.client() as client:
        detail = client.wait(MOUS_ID, sleep=clock.sleep, clock=clock)

    assert detail.state is MousState.WAITING_FOR_SERVICE


def test_wait_gives_up_after_its_timeout_with_the_last_state(coordinator: FakeCoordinator) -> None:
    coordinator.details = [make_detail(MousState.PROCESSING)]
    clock = FakeClock()

    with (
        coordinator.client() as client,
        pytest.raises(WaitTimeout, match="still processing after 5 s") as caught,
    ):
        client.wait(MOUS_ID, timeout_s=5.0, poll_interval_s=2.0, sleep=clock.sleep, clock=clock)

    assert caught.value.detail.state is MousState.PROCESSING
    assert clock.sleeps == [2.0, 2.0, 1.0]


def test_wait_rides_out_a_short_api_outage(coordinator: FakeCoordinator) -> None:
    coordinator.details = [make_detail(MousState.PROCESSING), make_detail(MousState.COMPLETED)]
    outage = {"left": 3}

    def flaky(request: httpx.Request) -> httpx.Response:
        if coordinator.detail_polls == 1 and outage["left"]:
            outage["left"] -= 1
            raise httpx.ConnectError("connection refused", request=request)
        return coordinator.handle(request)

    clock = FakeClock()
    with ApertureClient("http://aperture.test", transport=httpx.MockTransport(flaky)) as client:
        detail = client.wait(MOUS_ID, sleep=clock.sleep, clock=clock)

    assert detail.state is MousState.COMPLETED
    assert outage["left"] == 0


def test_wait_fails_at_once_when_the_api_was_never_reached() -> None:
    with ApertureClient(f"http://127.0.0.1:{closed_port()}") as client, pytest.raises(ApiUnreachable):
        client.wait(MOUS_ID, sleep=lambda _: pytest.fail("must not wait for an API it never reached"))


# Downloading


def completed_with_products(
    coordinator: FakeCoordinator, contents: dict[str, bytes], **overrides: str
) -> None:
    products = []
    for name, content in contents.items():
        product, path = make_product(name, content, sha256=overrides.get(name))
        products.append(product)
        coordinator.stored_objects[path] = content
    coordinator.details = [make_detail(MousState.COMPLETED, products=products)]


def test_download_fetches_every_product_and_verifies_its_checksum(
    tmp_path: Path, coordinator: FakeCoordinator
) -> None:
    contents = {"cube_spw0.fits": b"SIMPLE" + bytes(5000), "qa/weblog.html": b"<html>ok</html>"}
    completed_with_products(coordinator, contents)

    with coordinator.client() as client:
        results = client.download_products(MOUS_ID, tmp_path / "out")

    assert (tmp_path / "out" / "cube_spw0.fits").read_bytes() == contents["cube_spw0.fits"]
    assert (tmp_path / "out" / "qa" / "weblog.html").read_bytes() == contents["qa/weblog.html"]
    assert [result.already_present for result in results] == [False, False]
    assert not list((tmp_path / "out").rglob("*.part"))


def test_download_with_a_checksum_mismatch_fails_and_keeps_no_file(
    tmp_path: Path, coordinator: FakeCoordinator
) -> None:
    wrong = hashlib.sha256(b"other bytes").hexdigest()
    completed_with_products(coordinator, {"mfs_spw0.fits": b"SIMPLE damaged"}, **{"mfs_spw0.fits": wrong})

    with coordinator.client() as client, pytest.raises(ChecksumMismatch) as caught:
        client.download_products(MOUS_ID, tmp_path)

    assert caught.value.expected_sha256 == wrong
    assert caught.value.actual_sha256 == hashlib.sha256(b"SIMPLE damaged").hexdigest()
    assert list(tmp_path.iterdir()) == []


def test_download_keeps_a_verified_copy_that_is_already_there(
    tmp_path: Path, coordinator: FakeCoordinator
) -> None:
    completed_with_products(coordinator, {"cont.fits": b"SIMPLE cont"})
    (tmp_path / "cont.fits").write_bytes(b"SIMPLE cont")

    with coordinator.client() as client:
        [result] = client.download_products(MOUS_ID, tmp_path)

    assert result.already_present
    assert not [request for request in coordinator.requests if request.url.host == "storage.test"]


def test_download_replaces_a_stale_copy(tmp_path: Path, coordinator: FakeCoordinator) -> None:
    completed_with_products(coordinator, {"cont.fits": b"SIMPLE new"})
    (tmp_path / "cont.fits").write_bytes(b"SIMPLE old!")

    with coordinator.client() as client:
        [result] = client.download_products(MOUS_ID, tmp_path)

    assert not result.already_present
    assert (tmp_path / "cont.fits").read_bytes() == b"SIMPLE new"


def test_an_expired_link_is_asked_for_again_once(tmp_path: Path, coordinator: FakeCoordinator) -> None:
    completed_with_products(coordinator, {"cube.fits": b"SIMPLE cube"})
    coordinator.expired_links = set(coordinator.stored_objects)

    with coordinator.client() as client:
        client.download_products(MOUS_ID, tmp_path)

    assert (tmp_path / "cube.fits").read_bytes() == b"SIMPLE cube"
    assert coordinator.detail_polls == 2


def test_a_missing_object_is_a_download_error_naming_the_product(
    tmp_path: Path, coordinator: FakeCoordinator
) -> None:
    completed_with_products(coordinator, {"cube.fits": b"SIMPLE cube"})
    coordinator.stored_objects.clear()

    with (
        coordinator.client() as client,
        pytest.raises(DownloadError, match="cube.fits: the download answered HTTP 404"),
    ):
        client.download_products(MOUS_ID, tmp_path)


@pytest.mark.parametrize("name", ["../escape.fits", "/etc/passwd", ""])
def test_a_product_name_that_would_leave_the_folder_is_refused(
    tmp_path: Path, coordinator: FakeCoordinator, name: str
) -> None:
    product, _ = make_product("x.fits", b"x")
    product["name"] = name
    coordinator.details = [make_detail(MousState.COMPLETED, products=[product])]

    with coordinator.client() as client, pytest.raises(DownloadError, match="not a safe relative file name"):
        client.download_products(MOUS_ID, tmp_path / "out")

    assert not (tmp_path / "escape.fits").exists()
