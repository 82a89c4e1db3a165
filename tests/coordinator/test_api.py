"""The HTTP API over a real database (SQLite and PostgreSQL) and an in-memory object store."""

import re
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from aperture_contracts.api import MousDetail, MousList, MousSummary, Problem
from aperture_contracts.enums import ErrorClass, JobState, MousState
from aperture_coordinator.api import CoordinatorServices, create_app
from aperture_coordinator.db import Database
from aperture_coordinator.settings import CoordinatorSettings
from aperture_coordinator.state import Coordinator
from aperture_shared.errors import StorageError

from .conftest import FakeClock, make_settings
from .factories import (
    MOUS_ID,
    InMemoryObjectStore,
    failed,
    grid_metadata,
    ingest_succeeded,
    load_mous,
    outbox,
    restore_manifest,
    sha256_hex,
    started,
    tar_package,
)

API = "/api/v1/mous"
PACKAGE = tar_package({"uid___A002_X1_X2.ms/table.dat": b"measurement set bytes"})


@pytest.fixture
def notifications() -> list[str]:
    return []


@pytest.fixture
def services(
    database: Database, coordinator: Coordinator, store: InMemoryObjectStore, notifications: list[str]
) -> CoordinatorServices:
    return CoordinatorServices(
        database=database, coordinator=coordinator, store=store,
        notify_outbox=lambda: notifications.append("outbox"),
    )


def api_client(settings: CoordinatorSettings, services: CoordinatorServices) -> httpx.AsyncClient:
    """A client of the app in this process (Starlette's TestClient is deprecated with plain httpx)."""
    transport = httpx.ASGITransport(app=create_app(settings, services))
    return httpx.AsyncClient(transport=transport, base_url="http://coordinator")


@pytest.fixture
async def client(
    settings: CoordinatorSettings, services: CoordinatorServices
) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(settings, services) as test_client:
        yield test_client


async def upload(
    client: httpx.AsyncClient, name: str = "uid___A001_X2fa_X2dd.ms.tar", data: bytes = PACKAGE, **fields: str
) -> MousSummary:
    response = await client.post(API, files={"package": (name, data, "application/x-tar")}, data=fields)
    assert response.status_code in (200, 201), response.text
    return MousSummary.model_validate(response.json())


# -- submitting -------------------------------------------------------------------------------------------


async def test_uploading_a_package_named_after_its_uid_creates_that_mous(
    client: httpx.AsyncClient, store: InMemoryObjectStore, database: Database, notifications: list[str]
) -> None:
    files = {"package": ("uid___A001_X2fa_X2dd.ms.tar", PACKAGE, "application/x-tar")}
    response = await client.post(API, files=files)

    assert response.status_code == 201, response.text
    assert response.headers["location"] == f"{API}/uid___A001_X2fa_X2dd"
    summary = MousSummary.model_validate(response.json())
    assert (summary.mous_id, summary.state, summary.run, summary.package_name) == (
        MOUS_ID, MousState.RECEIVED, 1, "uid___A001_X2fa_X2dd.ms.tar"
    )
    key = "mous/uid___A001_X2fa_X2dd/input/uid___A001_X2fa_X2dd.ms.tar"
    assert store.objects[key] == (PACKAGE, "application/x-tar")
    mous = load_mous(database)
    assert (mous.package_key, mous.package_sha256) == (key, sha256_hex(PACKAGE))
    assert mous.package_size == len(PACKAGE)
    assert len(outbox(database)) == 1
    assert notifications == ["outbox"]


async def test_the_restore_manifest_names_the_mous_when_the_form_does_not(client: httpx.AsyncClient) -> None:
    manifest = restore_manifest("uid://A002/Xb/X1c")
    package = tar_package({"pkg/aperture-restore.json": manifest, "pkg/x.ms/t": b"1"})
    assert (await upload(client, "package.tar", package)).mous_id == "uid://A002/Xb/X1c"


async def test_the_uid_given_in_the_form_overrides_the_package(client: httpx.AsyncClient) -> None:
    package = tar_package({"aperture-restore.json": restore_manifest("uid://A002/Xb/X1c")})
    summary = await upload(client, "uid___A001_X2fa_X2dd.tar", package, mous_uid="uid___A003_X1_X2")
    assert summary.mous_id == "uid://A003/X1/X2"


async def test_a_package_that_names_no_uid_gets_a_local_id(client: httpx.AsyncClient) -> None:
    first = await upload(client, "observation.tar.gz", b"\x1f\x8b not really gzip")
    second = await upload(client, "observation.tar.gz", b"\x1f\x8b not really gzip")
    assert re.fullmatch(r"aperture-[0-9a-f]{12}", first.mous_id)
    assert first.mous_id != second.mous_id


async def test_resubmitting_returns_the_mous_unchanged_and_rerun_starts_a_new_run(
    client: httpx.AsyncClient, database: Database
) -> None:
    await upload(client)
    again = await client.post(API, files={"package": ("uid___A001_X2fa_X2dd.ms.tar", PACKAGE)})
    assert again.status_code == 200
    assert MousSummary.model_validate(again.json()).run == 1
    assert len(outbox(database)) == 1

    files = {"package": ("uid___A001_X2fa_X2dd.ms.tar", PACKAGE)}
    rerun = await client.post(API, files=files, data={"rerun": "true"})
    assert rerun.status_code == 201
    assert MousSummary.model_validate(rerun.json()).run == 2


async def test_a_package_already_in_the_store_is_submitted_by_reference(
    client: httpx.AsyncClient, store: InMemoryObjectStore, database: Database
) -> None:
    store.put_bytes("incoming/uid___A001_X2fa_X2dd.ms.tar", PACKAGE)
    response = await client.post(API, json={"object_key": "incoming/uid___A001_X2fa_X2dd.ms.tar"})

    assert response.status_code == 201, response.text
    assert response.json()["mous_id"] == MOUS_ID
    mous = load_mous(database)
    assert mous.package_key == "incoming/uid___A001_X2fa_X2dd.ms.tar"
    assert mous.package_sha256 == sha256_hex(PACKAGE)

    other = await client.post(API, json={"object_key": mous.package_key, "mous_uid": "uid://B/C/D"})
    assert other.status_code == 201
    assert other.json()["mous_id"] == "uid://B/C/D"


async def test_an_unreachable_object_store_is_a_503_saying_to_try_again(
    client: httpx.AsyncClient, store: InMemoryObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable(*_args: object) -> None:
        raise StorageError("uploading the package failed: the object store is unreachable (ConnectionError)")

    monkeypatch.setattr(store, "put_file", unreachable)
    response = await client.post(API, files={"package": ("uid___A001_X2fa_X2dd.ms.tar", PACKAGE)})
    assert response.status_code == 503
    assert Problem.model_validate(response.json()).detail.endswith("try again in a minute")


async def test_uploads_are_spooled_where_configured_and_removed_afterwards(
    database_url: str, services: CoordinatorServices, tmp_path: Path
) -> None:
    spool = tmp_path / "spool" / "uploads"
    settings = make_settings(database_url, upload_dir=spool)
    async with api_client(settings, services) as client:
        summary = await upload(client)
    assert summary.mous_id == MOUS_ID
    assert spool.is_dir()
    assert list(spool.iterdir()) == []


async def test_an_upload_over_the_size_limit_is_refused_and_nothing_is_kept(
    database_url: str, services: CoordinatorServices, store: InMemoryObjectStore, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    settings = make_settings(database_url, upload_dir=spool, max_upload_bytes=len(PACKAGE) // 2)
    async with api_client(settings, services) as client:
        response = await client.post(API, files={"package": ("uid___A001_X2fa_X2dd.ms.tar", PACKAGE)})
        listed = MousList.model_validate((await client.get(API)).json())
    assert response.status_code == 413, response.text
    problem = Problem.model_validate(response.json())
    assert "APERTURE_MAX_UPLOAD_BYTES" in problem.detail and "object_key" in problem.detail
    assert listed.total == 0
    assert list(spool.iterdir()) == []


# -- reading ----------------------------------------------------------------------------------------------


async def test_listing_pages_through_the_newest_first_and_filters_by_state(
    client: httpx.AsyncClient, clock: FakeClock, coordinator: Coordinator
) -> None:
    for number in range(3):
        clock.advance(60)
        await upload(client, f"uid___A001_X{number}_X1.ms.tar")
    coordinator.apply_event(failed("r1.ingest", ErrorClass.BAD_INPUT, at=clock.now, mous_id="uid://A001/X0/X1"))

    page = MousList.model_validate((await client.get(API, params={"limit": 2})).json())
    assert page.total == 3
    assert [item.mous_id for item in page.items] == ["uid://A001/X2/X1", "uid://A001/X1/X1"]
    rest = MousList.model_validate((await client.get(API, params={"limit": 2, "offset": 2})).json())
    assert [item.mous_id for item in rest.items] == ["uid://A001/X0/X1"]
    failed_only = MousList.model_validate((await client.get(API, params={"state": "failed"})).json())
    assert (failed_only.total, failed_only.items[0].state) == (1, MousState.FAILED)


async def test_the_detail_shows_jobs_attempts_errors_metadata_qa_and_signed_product_links(
    client: httpx.AsyncClient, coordinator: Coordinator, clock: FakeClock
) -> None:
    await upload(client)
    coordinator.apply_event(started("r1.ingest", at=clock.advance(1)))
    coordinator.apply_event(failed("r1.ingest", ErrorClass.STORAGE, at=clock.advance(1)))
    clock.advance(30)
    coordinator.reconcile()
    coordinator.apply_event(started("r1.ingest", attempt=2, at=clock.advance(1), worker="ingest-b:7"))
    coordinator.apply_event(ingest_succeeded(attempt=2, at=clock.advance(10), metadata=grid_metadata(1, 1)))

    by_file_form = await client.get(f"{API}/uid___A001_X2fa_X2dd")
    by_uid = await client.get(f"{API}/{quote(MOUS_ID, safe='')}")
    assert by_file_form.status_code == 200, by_file_form.text
    assert by_uid.json() == by_file_form.json()
    detail = MousDetail.model_validate(by_uid.json())
    assert detail.state == MousState.WAITING_FOR_SERVICE
    assert detail.metadata == grid_metadata(1, 1)
    assert len(detail.jobs) == 3 + 7 + 4
    ingest, calibration = detail.jobs[0], detail.jobs[1]
    assert (ingest.job_id, ingest.state, ingest.depends_on) == ("r1.ingest", JobState.SUCCEEDED, [])
    assert [(a.attempt, a.outcome, a.error_class, a.worker, a.deliveries) for a in ingest.attempts] == [
        (1, JobState.FAILED, ErrorClass.STORAGE, "ingest-a:101", 1),
        (2, JobState.SUCCEEDED, None, "ingest-b:7", 1),
    ]
    assert (calibration.job_id, calibration.depends_on) == ("r1.calibration", ["r1.ingest"])
    assert calibration.reason == "the calibration service is not deployed yet"
    [error] = detail.errors
    assert error.endswith("job r1.ingest attempt 1 failed (storage): the object store is unreachable")
    assert [score.score for score in detail.qa] == [0.95]
    [product] = detail.products
    assert product.name == "ingest-report.json"
    assert product.object.key == "mous/uid___A001_X2fa_X2dd/products/ingest-report.json"
    assert product.download_url == (
        "https://store.invalid/aperture/mous/uid___A001_X2fa_X2dd/products/ingest-report.json?expires=3600"
    )


async def test_an_unknown_mous_is_a_404_saying_what_to_do(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{API}/uid___A009_X1_X1")
    assert response.status_code == 404
    problem = Problem.model_validate(response.json())
    assert problem.detail == (
        "no MOUS uid://A009/X1/X1 has been submitted: check the id, or list the MOUS with GET /api/v1/mous"
    )
    assert problem.errors[0]["field"] == "mous_id"


# -- cancelling -------------------------------------------------------------------------------------------


async def test_cancelling_stops_the_mous_and_cancelling_again_changes_nothing(
    client: httpx.AsyncClient, database: Database, notifications: list[str]
) -> None:
    await upload(client)
    response = await client.post(f"{API}/uid___A001_X2fa_X2dd/cancel")
    assert response.status_code == 200, response.text
    assert MousSummary.model_validate(response.json()).state == MousState.CANCELLED
    rows = len(outbox(database))

    again = await client.post(f"{API}/{quote(MOUS_ID, safe='')}/cancel")
    assert (again.status_code, again.json()["state"]) == (200, "cancelled")
    assert len(outbox(database)) == rows
    assert notifications.count("outbox") == 3


async def test_cancelling_a_finished_mous_is_a_409_and_an_unknown_one_a_404(
    client: httpx.AsyncClient, coordinator: Coordinator, clock: FakeClock
) -> None:
    await upload(client)
    coordinator.apply_event(failed("r1.ingest", ErrorClass.BAD_INPUT, at=clock.advance(1)))
    finished = await client.post(f"{API}/uid___A001_X2fa_X2dd/cancel")
    assert finished.status_code == 409
    assert Problem.model_validate(finished.json()).detail == (
        "MOUS uid://A001/X2fa/X2dd is already failed: no job of it is left to cancel"
    )
    assert (await client.post(f"{API}/uid___A009_X1_X1/cancel")).status_code == 404


# -- malformed input: a 4xx naming the field, never a 500 --------------------------------------------------

BOUNDARY = "aperture-test-boundary"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


def form(*parts: tuple[str, str | None, bytes], close: bool = True) -> bytes:
    """A multipart body written by hand, so that it can be wrong in ways clients never are."""
    body = b""
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        body += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + data + b"\r\n"
    return body + (f"--{BOUNDARY}--\r\n".encode() if close else b"")


PACKAGE_PART = ("package", "uid___A001_X2fa_X2dd.ms.tar", PACKAGE)
J, M = "application/json", MULTIPART
BAD_MANIFEST = tar_package({"aperture-restore.json": b"{not json"})
BAD_UID_MANIFEST = tar_package({"aperture-restore.json": restore_manifest("uid://A/B")})

MALFORMED: list[tuple[str, str, str, str | None, bytes, int, str]] = [
    # (case, method, path, content type, body, status, the field the problem names)
    ("json that does not parse", "POST", API, J, b'{"object_key": ', 422, "body"),
    ("json that is a list", "POST", API, J, b"[]", 422, "body"),
    ("json null", "POST", API, J, b"null", 422, "body"),
    ("json that is not utf-8", "POST", API, J, b'{"object_key": "\xff"}', 422, "body"),
    ("no object_key", "POST", API, J, b'{"rerun": true}', 422, "object_key"),
    ("empty object_key", "POST", API, J, b'{"object_key": ""}', 422, "object_key"),
    ("object_key a number", "POST", API, J, b'{"object_key": 7}', 422, "object_key"),
    ("unknown field", "POST", API, J, b'{"object_key": "k", "colour": 1}', 422, "colour"),
    ("rerun not a boolean", "POST", API, J, b'{"object_key": "k", "rerun": "maybe"}', 422, "rerun"),
    ("mous_uid not an id", "POST", API, J, b'{"object_key": "k", "mous_uid": "uid://x"}', 422, "mous_uid"),
    ("object not in the store", "POST", API, J, b'{"object_key": "nowhere.tar"}', 422, "object_key"),
    ("json too large", "POST", API, J, b'{"object_key": "' + b"k" * 70000 + b'"}', 413, "body"),
    ("form without a package", "POST", API, M, form(("rerun", None, b"true")), 422, "package"),
    ("package sent as text", "POST", API, M, form(("package", None, b"abc")), 422, "package"),
    ("empty package", "POST", API, M, form(("package", "p.tar", b"")), 422, "package"),
    ("two packages", "POST", API, M, form(PACKAGE_PART, PACKAGE_PART), 422, "package"),
    ("form rerun not boolean", "POST", API, M, form(PACKAGE_PART, ("rerun", None, b"?")), 422, "rerun"),
    ("form mous_uid bad", "POST", API, M, form(PACKAGE_PART, ("mous_uid", None, b"x")), 422, "mous_uid"),
    ("unknown form field", "POST", API, M, form(PACKAGE_PART, ("colour", None, b"red")), 422, "colour"),
    ("form field too long", "POST", API, M, form(PACKAGE_PART, ("mous_uid", None, b"u" * 5000)), 422,
     "mous_uid"),
    ("truncated form", "POST", API, M, form(PACKAGE_PART, close=False), 422, "body"),
    ("garbage form", "POST", API, M, b"\x00\x01 this is no form", 422, "body"),
    ("form without boundary", "POST", API, "multipart/form-data", b"--x\r\n", 422, "Content-Type"),
    ("broken manifest", "POST", API, M, form(("package", "a.tar", BAD_MANIFEST)), 422, "package"),
    ("manifest uid bad", "POST", API, M, form(("package", "p.tar", BAD_UID_MANIFEST)), 422, "package"),
    ("plain text body", "POST", API, "text/plain", b"hello", 415, "Content-Type"),
    ("no content type", "POST", API, None, b"hello", 415, "Content-Type"),
    ("limit zero", "GET", f"{API}?limit=0", None, b"", 422, "limit"),
    ("limit not a number", "GET", f"{API}?limit=many", None, b"", 422, "limit"),
    ("negative offset", "GET", f"{API}?offset=-1", None, b"", 422, "offset"),
    ("unknown state", "GET", f"{API}?state=exploded", None, b"", 422, "state"),
    ("malformed id in a detail", "GET", f"{API}/not%20an%20id", None, b"", 422, "mous_id"),
    ("malformed id in a cancel", "POST", f"{API}/uid:%2F%2Fhalf/cancel", None, b"", 422, "mous_id"),
]


@pytest.mark.parametrize(
    ("method", "path", "content_type", "body", "status", "field"),
    [case[1:] for case in MALFORMED],
    ids=[case[0] for case in MALFORMED],
)
async def test_malformed_input_is_a_4xx_naming_the_field(
    client: httpx.AsyncClient, method: str, path: str, content_type: str | None, body: bytes, status: int,
    field: str,
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = await client.request(method, path, headers=headers, content=body or None)
    assert response.status_code == status, response.text
    problem = Problem.model_validate(response.json())
    assert field in [error["field"] for error in problem.errors], problem
    assert problem.detail


async def test_an_unknown_endpoint_is_a_404_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert "the API is described at /docs" in Problem.model_validate(response.json()).detail


# -- operations -------------------------------------------------------------------------------------------


async def test_health_readiness_and_metrics(client: httpx.AsyncClient) -> None:
    await upload(client)
    assert (await client.get("/healthz")).json() == {"status": "ok", "service": "coordinator", "checks": {}}
    ready = await client.get("/readyz")
    assert (ready.status_code, ready.json()["checks"]) == (200, {"database": "ok"})
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    assert 'aperture_coordinator_mous{state="received"} 1.0' in metrics.text
    assert 'aperture_coordinator_jobs{stage="ingest",state="dispatched"} 1.0' in metrics.text
    assert "aperture_coordinator_outbox_backlog 1.0" in metrics.text
    assert "aperture_coordinator_submissions_total" in metrics.text


async def test_readiness_is_a_503_naming_what_is_down(
    settings: CoordinatorSettings, services: CoordinatorServices, monkeypatch: pytest.MonkeyPatch
) -> None:
    def database_down() -> None:
        raise ConnectionRefusedError("no database")

    monkeypatch.setattr(services.database, "ping", database_down)
    services.readiness = lambda: {"broker": "disconnected"}
    async with api_client(settings, services) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {
        "broker": "disconnected", "database": "unreachable: ConnectionRefusedError"
    }


async def test_the_openapi_document_describes_both_ways_to_submit(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    submit = document["paths"][API]["post"]
    assert set(submit["requestBody"]["content"]) == {"multipart/form-data", "application/json"}
    assert {"201", "200", "422", "415"} <= set(submit["responses"])
    assert f"{API}/{{mous_id}}" in document["paths"]
    assert (await client.get("/docs")).status_code == 200
