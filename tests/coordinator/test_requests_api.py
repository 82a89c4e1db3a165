"""/api/v1/requests over a real database: tokens, ownership, validation (every bad request a 422 naming its
field, never a 500), estimates from the MOUS's own measured jobs, versions, cancel and per-user limits."""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aperture_contracts.enums import MousState, Stage
from aperture_contracts.requests import DryRun, RequestList, RequestState, RequestView
from aperture_coordinator.api import CoordinatorServices, create_app
from aperture_coordinator.auth import ApiIdentity, Role
from aperture_coordinator.db import Database
from aperture_coordinator.settings import CoordinatorSettings
from aperture_coordinator.state import Coordinator

from .conftest import FakeClock, make_settings
from .factories import MOUS_ID, InMemoryObjectStore, load_mous, run_wave
from .test_state import submit

REQUESTS = "/api/v1/requests"
TOKENS = {
    "alice-token": ApiIdentity(user="alice"),
    "bob-token": ApiIdentity(user="bob"),
    "operator-token": ApiIdentity(user="olga", role=Role.OPERATOR),
}
ALICE = {"Authorization": "Bearer alice-token"}
BOB = {"Authorization": "Bearer bob-token"}
OPERATOR = {"Authorization": "Bearer operator-token"}
# grid_metadata: spws 17 and 19; spw 17 has 128 channels of 15.6 MHz from 247 to 248.875 GHz.
SPW = 17


@pytest.fixture
def settings(database_url: str) -> CoordinatorSettings:
    return make_settings(
        database_url, api_tokens=TOKENS, request_rate_per_minute=3, max_active_requests_per_user=2,
        enabled_stages=list(Stage),
    )


@pytest.fixture
def completed(coordinator: Coordinator, database: Database, clock: FakeClock) -> str:
    """An MOUS processed to the end (every job succeeded, with the results the factories give)."""
    submit(coordinator)
    while run_wave(coordinator, database, clock):
        pass
    assert load_mous(database).state is MousState.COMPLETED
    return MOUS_ID


@pytest.fixture
async def client(
    settings: CoordinatorSettings, database: Database, coordinator: Coordinator, store: InMemoryObjectStore,
) -> AsyncIterator[httpx.AsyncClient]:
    services = CoordinatorServices(database=database, coordinator=coordinator, store=store)
    transport = httpx.ASGITransport(app=create_app(settings, services))
    async with httpx.AsyncClient(transport=transport, base_url="http://coordinator") as test_client:
        yield test_client


def cube(spw: int = SPW, **axis: Any) -> dict[str, Any]:
    """A velocity cube around 248 GHz (inside spw 17) of 10 channels of 25 km/s (its channels: ~19 km/s)."""
    spectral_axis = {
        "mode": "velocity", "start": -100.0, "width": 25.0, "nchan": 10, "rest_frequency_hz": 248.0e9,
        "velocity_convention": "radio", "frame": "LSRK",
    } | axis
    return {"spw_id": spw, "spectral_axis": spectral_axis}


def body(**fields: Any) -> dict[str, Any]:
    return {"mous_id": MOUS_ID, "cubes": [cube()]} | fields


async def create(client: httpx.AsyncClient, headers: dict[str, str], **fields: Any) -> RequestView:
    response = await client.post(REQUESTS, json=body(**fields), headers=headers)
    assert response.status_code == 201, response.text
    return RequestView.model_validate(response.json())


# -- who is asking ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("authorization", [None, "Bearer", "Bearer nope", "Basic YWxpY2U6eA==", "alice-token"])
async def test_a_request_without_a_known_bearer_token_is_401_saying_what_to_send(
    client: httpx.AsyncClient, completed: str, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = await client.post(REQUESTS, json=body(), headers=headers)
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["errors"][0]["field"] == "Authorization"


async def test_a_user_sees_only_their_own_requests_and_an_operator_sees_all(
    client: httpx.AsyncClient, completed: str
) -> None:
    mine = await create(client, ALICE)
    theirs = await create(client, BOB)
    listed = RequestList.model_validate((await client.get(REQUESTS, headers=ALICE)).json())
    assert [r.request_id for r in listed.requests] == [mine.request_id]
    everyone = RequestList.model_validate((await client.get(REQUESTS, headers=OPERATOR)).json())
    assert {r.request_id for r in everyone.requests} == {mine.request_id, theirs.request_id}
    assert everyone.total == 2


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "{id}"), ("POST", "{id}/cancel"), ("POST", "{id}/versions"), ("GET", "{id}/versions/1/products"),
])
async def test_another_users_request_is_404_on_every_endpoint_and_unchanged(
    client: httpx.AsyncClient, completed: str, method: str, path: str
) -> None:
    theirs = await create(client, BOB)
    response = await client.request(method, f"{REQUESTS}/{path.format(id=theirs.request_id)}", headers=ALICE)
    assert response.status_code == 404, response.text
    missing = await client.request(method, f"{REQUESTS}/{path.format(id='req-000000000000')}", headers=ALICE)
    assert missing.status_code == 404 and missing.json()["detail"].startswith("no request")
    assert response.json()["detail"] == missing.json()["detail"].replace("req-000000000000", theirs.request_id)
    after = RequestView.model_validate((await client.get(f"{REQUESTS}/{theirs.request_id}", headers=BOB)).json())
    assert after == theirs


async def test_an_operator_may_cancel_any_request(client: httpx.AsyncClient, completed: str) -> None:
    theirs = await create(client, BOB)
    response = await client.post(f"{REQUESTS}/{theirs.request_id}/cancel", headers=OPERATOR)
    assert response.status_code == 200
    assert RequestView.model_validate(response.json()).versions[0].state is RequestState.CANCELLED


# -- what is asked ----------------------------------------------------------------------------------------

INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("mous_id", {"mous_id": "not an id"}, "mous_id"),
    ("mous_id missing", {"mous_id": None}, "mous_id"),
    ("robust too high", {"robust": 3}, "robust"),
    ("robust not a number", {"robust": "high"}, "robust"),
    ("resolution zero", {"target_resolution_arcsec": 0}, "target_resolution_arcsec"),
    ("field size negative", {"field_size_arcsec": -5}, "field_size_arcsec"),
    ("webhook not a URL", {"webhook_url": "not a url"}, "webhook_url"),
    ("e-mail without @", {"notify_email": "alice.example.org"}, "notify_email"),
    ("unknown field", {"colour": "blue"}, "colour"),
    ("cubes not a list", {"cubes": {"spw_id": SPW}}, "cubes"),
    ("negative spw", {"cubes": [cube(spw=-1)]}, "cubes.0.spw_id"),
    ("spw twice", {"cubes": [cube(), cube()]}, "cubes"),
    ("spw not in the MOUS", {"cubes": [cube(spw=5)]}, "cubes.0.spw_id"),
    ("no spectral axis", {"cubes": [{"spw_id": SPW}]}, "cubes.0.spectral_axis"),
    ("unknown mode", {"cubes": [cube(mode="wavelength")]}, "cubes.0.spectral_axis.mode"),
    ("no channels", {"cubes": [cube(nchan=0)]}, "cubes.0.spectral_axis.nchan"),
    ("zero width", {"cubes": [cube(width=0)]}, "cubes.0.spectral_axis.width"),
    ("unknown frame", {"cubes": [cube(frame="MARS")]}, "cubes.0.spectral_axis.frame"),
    ("unknown convention", {"cubes": [cube(velocity_convention="relativistic-ish")]},
     "cubes.0.spectral_axis.velocity_convention"),
    ("velocity without rest frequency", {"cubes": [cube(rest_frequency_hz=None)]}, "cubes.0.spectral_axis"),
    ("finer than the data", {"cubes": [cube(width=2.0)]}, "cubes.0.spectral_axis.width"),
    ("outside the spw", {"cubes": [cube(start=5000.0)]}, "cubes.0.spectral_axis"),
    ("beyond the spw's end", {"cubes": [cube(nchan=60)]}, "cubes.0.spectral_axis"),
]


@pytest.mark.parametrize(("case", "fields", "field"), INVALID, ids=[case for case, _, _ in INVALID])
async def test_every_invalid_request_is_a_422_naming_its_field(
    client: httpx.AsyncClient, completed: str, case: str, fields: dict[str, Any], field: str
) -> None:
    response = await client.post(REQUESTS, json=body(**fields), headers=ALICE)
    assert response.status_code == 422, (case, response.status_code, response.text)
    named = [error["field"] for error in response.json()["errors"]]
    assert any(name == field or name.startswith(field + ".") for name in named), (case, named)
    assert all(error["message"] for error in response.json()["errors"])
    assert (await client.get(REQUESTS, headers=ALICE)).json()["total"] == 0, "nothing is stored"


async def test_a_request_on_an_unknown_or_unfinished_mous_says_so(
    client: httpx.AsyncClient, coordinator: Coordinator
) -> None:
    unknown = await client.post(REQUESTS, json=body(), headers=ALICE)
    assert unknown.status_code == 404 and "submit it first" in unknown.json()["detail"]
    submit(coordinator)
    unfinished = await client.post(REQUESTS, json=body(), headers=ALICE)
    assert unfinished.status_code == 409 and "not completed" in unfinished.json()["detail"]


async def test_a_dry_run_estimates_from_the_mous_own_jobs_and_stores_nothing(
    client: httpx.AsyncClient, completed: str
) -> None:
    response = await client.post(REQUESTS, params={"dry_run": "true"}, json=body(), headers=ALICE)
    assert response.status_code == 200, response.text
    estimate = DryRun.model_validate(response.json()).estimate
    # The pipeline's cube of spw 17: 150 x 150 pixels (factories.image_product); 10 channels asked.
    assert estimate.largest_cube_bytes == 150 * 150 * 10 * 4 * 5
    assert estimate.run_time_s > 0 and "spw 17" in estimate.run_time_basis
    assert estimate.within_quota
    assert (await client.get(REQUESTS, headers=ALICE)).json()["total"] == 0


async def test_a_request_too_large_for_the_users_quota_is_refused_with_what_to_change(
    client: httpx.AsyncClient, completed: str, settings: CoordinatorSettings
) -> None:
    settings.max_request_product_bytes = 1000
    response = await client.post(REQUESTS, json=body(), headers=ALICE)
    assert response.status_code == 422
    assert "fewer channels" in response.json()["errors"][0]["message"]


# -- versions, cancel, limits -----------------------------------------------------------------------------


async def test_running_a_request_again_adds_a_version_and_keeps_the_first(
    client: httpx.AsyncClient, completed: str
) -> None:
    first = await create(client, ALICE)
    again = await client.post(f"{REQUESTS}/{first.request_id}/versions", headers=ALICE,
                              json=body(cubes=[cube(nchan=5)]))
    assert again.status_code == 201, again.text
    versions = RequestView.model_validate(again.json()).versions
    assert [v.version for v in versions] == [1, 2]
    assert versions[0] == first.versions[0]
    assert versions[1].parameters.cubes[0].spectral_axis.nchan == 5


async def test_cancel_ends_the_unfinished_versions(client: httpx.AsyncClient, completed: str) -> None:
    request = await create(client, ALICE)
    cancelled = RequestView.model_validate(
        (await client.post(f"{REQUESTS}/{request.request_id}/cancel", headers=ALICE)).json()
    )
    assert [v.state for v in cancelled.versions] == [RequestState.CANCELLED]


async def test_per_user_limits_answer_429_and_leave_other_users_alone(
    client: httpx.AsyncClient, completed: str, clock: FakeClock
) -> None:
    await create(client, ALICE)
    await create(client, ALICE)
    busy = await client.post(REQUESTS, json=body(), headers=ALICE)
    assert busy.status_code == 429 and "queued or running" in busy.json()["errors"][0]["message"]
    assert (await client.post(REQUESTS, json=body(), headers=BOB)).status_code == 201
