"""Running request versions over a real database: planning on the MOUS's processed data, the job messages
(spectral axis, weighting, taper, field, the version's folder), state and progress from the jobs' events,
result QA, products with links, cancel (running work told to stop, nothing listed, outputs removed), and
the version that passed QA."""

# The requests API's fixtures (settings with tokens, a completed MOUS, the client) are imported from its
# tests, so pytest sees them here too, and test arguments of the same names are those fixtures.
# ruff: noqa: F811

import math
from datetime import timedelta
from typing import Any

import httpx
import pytest
from aperture_contracts import topology
from aperture_contracts.enums import ErrorClass, ImagingKind, JobState, MousState, Stage
from aperture_contracts.events import CancelJobs
from aperture_contracts.jobs import ImagingJob, PreviewsJob
from aperture_contracts.requests import ProductList, RequestState, RequestView
from aperture_coordinator.db import Database
from aperture_coordinator.models import Mous, Notification, RequestVersion, StoredObject
from aperture_coordinator.request_cleanup import remove_cancelled_outputs
from aperture_coordinator.state import Coordinator
from sqlalchemy import select

from .conftest import FakeClock
from .factories import (
    MOUS_ID,
    InMemoryObjectStore,
    failed,
    load_mous,
    outbox,
    request_job_succeeded,
    request_jobs,
    run_request_wave,
    started,
)
from .test_requests_api import (  # noqa: F401 (fixtures)
    ALICE,
    BOB,
    REQUESTS,
    client,
    completed,
    create,
    cube,
    settings,
)

# grid_metadata(2, 2): two targets, each in spws 17 and 19; the run's images have a 1.9 x 1.5 arcsec beam.
RUN_BEAM = math.sqrt(1.9 * 1.5)


def messages(database: Database, request_id: str) -> dict[str, Any]:
    """The job messages the version's dispatches wrote, by job id."""
    found: dict[str, Any] = {}
    for row in outbox(database):
        if row.exchange == topology.JOBS_EXCHANGE and row.message_id.split(":")[1].startswith(request_id):
            decoder = ImagingJob if row.routing_key == Stage.IMAGING.value else PreviewsJob
            message = decoder.model_validate_json(row.body)
            found[message.job_id] = message
    return found


async def read(client: httpx.AsyncClient, request_id: str, headers: dict[str, str] = ALICE) -> RequestView:
    response = await client.get(f"{REQUESTS}/{request_id}", headers=headers)
    assert response.status_code == 200, response.text
    return RequestView.model_validate(response.json())


def run_to_the_end(coordinator: Coordinator, database: Database, clock: FakeClock, request_id: str,
                   version: int = 1, **kwargs: float) -> None:
    while run_request_wave(coordinator, database, clock, request_id, version, **kwargs):
        pass


async def test_a_version_images_the_runs_data_on_the_asked_axis_with_its_weighting_taper_and_field(
    client: httpx.AsyncClient, completed: str, database: Database
) -> None:
    request = await create(
        client, ALICE, robust=-0.5, target_resolution_arcsec=3.0, field_size_arcsec=40.0,
        webhook_url="https://example.org/hook",
    )
    version = request.versions[0]
    # Per target: mfs of spws 17 and 19, the aggregate continuum and the cube of spw 17, each with previews.
    assert version.progress.total == 2 * 8
    assert version.state is RequestState.QUEUED and version.reason == "waiting for workers"
    sent = messages(database, request.request_id)
    imaging = [m for m in sent.values() if isinstance(m, ImagingJob)]
    assert sorted(m.kind.value for m in imaging) == ["cont", "cont", "cube", "cube", "mfs", "mfs", "mfs", "mfs"]
    prefix = f"mous/uid___A001_X2fa_X2dd/requests/{request.request_id}/v1/"
    for message in imaging:
        assert message.products_prefix == prefix
        assert message.overrides.robust == -0.5 and message.overrides.field_size_arcsec == 40.0
        assert message.overrides.uvtaper_arcsec == pytest.approx(math.sqrt(3.0**2 - RUN_BEAM**2), abs=1e-3)
        assert message.continuum, "the run's continuum ranges go with every image"
    cubes = [m for m in imaging if m.kind is ImagingKind.CUBE]
    assert {m.spw_ids[0] for m in cubes} == {17}
    for message in cubes:
        assert message.spectral_axis == version.parameters.cubes[0].spectral_axis
        assert [ms.key.rsplit("/", 1)[-1] for ms in message.measurement_sets] == ["uid___A002_X1_X2.contsub.ms.tar"]
    # The previews wait for their images; the MOUS itself is still completed.
    assert not [m for m in sent.values() if isinstance(m, PreviewsJob)]
    assert load_mous(database).state is MousState.COMPLETED


async def test_a_version_runs_to_success_passes_qa_and_lists_its_files_with_time_limited_links(
    client: httpx.AsyncClient, completed: str, database: Database, coordinator: Coordinator, clock: FakeClock
) -> None:
    request = await create(client, ALICE, webhook_url="https://example.org/hook")
    first = request_jobs(database, request.request_id)[0]
    coordinator.apply_event(started(first.job_id, at=clock.advance(1), stage=first.stage, worker="imaging:1"))
    running = (await read(client, request.request_id)).versions[0]
    assert running.state is RequestState.RUNNING and running.progress.running == 1 and running.started_at

    early = await client.get(f"{REQUESTS}/{request.request_id}/versions/1/products", headers=ALICE)
    assert early.status_code == 409 and "once it has ended" in early.json()["errors"][0]["message"]

    coordinator.apply_event(request_job_succeeded(first, at=clock.advance(1)))
    run_to_the_end(coordinator, database, clock, request.request_id)
    done = (await read(client, request.request_id)).versions[0]
    assert done.state is RequestState.SUCCEEDED, done.reason
    assert done.passed_qa is True and done.reason == "8 images made; every image passed QA"
    assert done.progress.fraction == 1.0 and done.ended_at is not None
    assert len(done.qa) == 8 and all(check.passed and check.rms_ratio == pytest.approx(1.05) for check in done.qa)

    response = await client.get(f"{REQUESTS}/{request.request_id}/versions/1/products", headers=ALICE)
    assert response.status_code == 200, response.text
    listing = ProductList.model_validate(response.json())
    kinds = sorted({product.kind for product in listing.products})
    assert kinds == ["image", "pb", "pbcor", "quicklook"]
    assert len(listing.products) == 8 * 3 + 8
    for product in listing.products:
        assert not product.name.startswith("mous/") and "/requests/" in product.url
        assert product.url.endswith("?expires=3600")
    assert listing.links_expire_at == clock.now + timedelta(seconds=3600)
    with database.transaction() as session:
        notes = list(session.scalars(select(Notification)))
    assert [(n.channel, n.address) for n in notes] == [("webhook", "https://example.org/hook")]
    assert RequestView.model_validate_json(notes[0].body).versions[0].state is RequestState.SUCCEEDED


async def test_an_image_noisier_than_the_limit_fails_qa_and_the_version_says_which_and_why(
    client: httpx.AsyncClient, completed: str, database: Database, coordinator: Coordinator, clock: FakeClock
) -> None:
    request = await create(client, ALICE)
    run_to_the_end(coordinator, database, clock, request.request_id, rms_ratio=3.0)
    done = (await read(client, request.request_id)).versions[0]
    assert done.state is RequestState.SUCCEEDED and done.passed_qa is False
    assert "QA not passed" in done.reason and "3.00 x the expected" in done.reason
    assert "above the limit of 2 x" in done.reason
    assert not any(check.passed for check in done.qa)


async def test_a_failed_image_fails_the_version_cancels_its_previews_and_lets_the_others_finish(
    client: httpx.AsyncClient, completed: str, database: Database, coordinator: Coordinator, clock: FakeClock
) -> None:
    request = await create(client, ALICE)
    cube_job = next(job for job in request_jobs(database, request.request_id) if job.kind == "cube")
    coordinator.apply_event(started(cube_job.job_id, at=clock.advance(1), stage=Stage.IMAGING, worker="imaging:1"))
    coordinator.apply_event(failed(
        cube_job.job_id, ErrorClass.BAD_INPUT, at=clock.advance(1), stage=Stage.IMAGING,
        message="no visibilities selected in spw 17",
    ))
    run_to_the_end(coordinator, database, clock, request.request_id)
    done = (await read(client, request.request_id)).versions[0]
    assert done.state is RequestState.FAILED and done.passed_qa is False
    assert "no visibilities selected in spw 17" in done.reason and "Run the request again" in done.reason
    states = {job.job_id: job.state for job in done.jobs}
    previews_of_cube = cube_job.job_id.replace(".imaging.", ".previews.")
    assert states[cube_job.job_id] is JobState.FAILED and states[previews_of_cube] is JobState.CANCELLED
    assert sum(state is JobState.SUCCEEDED for state in states.values()) == 16 - 2
    listing = ProductList.model_validate(
        (await client.get(f"{REQUESTS}/{request.request_id}/versions/1/products", headers=ALICE)).json()
    )
    assert listing.state is RequestState.FAILED and listing.products
    assert not [p for p in listing.products if p.image_kind is ImagingKind.CUBE and p.target == cube_job.target]


async def test_cancel_tells_running_work_to_stop_lists_nothing_and_removes_what_was_stored(
    client: httpx.AsyncClient, completed: str, database: Database, coordinator: Coordinator, clock: FakeClock,
    store: InMemoryObjectStore,
) -> None:
    request = await create(client, ALICE)
    jobs = request_jobs(database, request.request_id)
    running, finished = jobs[0], jobs[1]
    for job in (running, finished):
        coordinator.apply_event(started(job.job_id, at=clock.advance(1), stage=job.stage, worker="imaging:1"))
    done_event = request_job_succeeded(finished, at=clock.advance(1))
    coordinator.apply_event(done_event)
    for ref in done_event.outputs:
        store.put_bytes(ref.key, b"fits")
    in_flight = [job.job_id for job in request_jobs(database, request.request_id)
                 if job.state in (JobState.DISPATCHED, JobState.RUNNING)]
    assert running.job_id in in_flight and finished.job_id not in in_flight

    response = await client.post(f"{REQUESTS}/{request.request_id}/cancel", headers=ALICE)
    assert response.status_code == 200
    version = RequestView.model_validate(response.json()).versions[0]
    assert version.state is RequestState.CANCELLED and version.passed_qa is False
    assert all(job.state in (JobState.CANCELLED, JobState.SUCCEEDED) for job in version.jobs)
    stop = [CancelJobs.model_validate_json(row.body) for row in outbox(database)
            if row.exchange == topology.CONTROL_EXCHANGE]
    # The jobs a worker was running or had queued are told to stop; planned ones were never sent.
    assert [message.job_ids for message in stop] == [in_flight]
    listing = await client.get(f"{REQUESTS}/{request.request_id}/versions/1/products", headers=ALICE)
    assert listing.status_code == 409 and "cancelled" in listing.json()["errors"][0]["message"]

    # The stopped worker reports, and had stored one more file while it was being stopped.
    late = request_job_succeeded(running, at=clock.advance(1))
    store.put_bytes(late.outputs[0].key, b"half a cube")
    assert coordinator.apply_event(late).applied is False
    grace = timedelta(seconds=30)
    assert remove_cancelled_outputs(database, store, grace, clock.advance(10)) == 0, "not before the grace"
    assert remove_cancelled_outputs(database, store, grace, clock.advance(30)) == 1
    assert not [key for key in store.objects if f"/requests/{request.request_id}/" in key]
    with database.transaction() as session:
        assert not list(session.scalars(select(StoredObject.key).where(StoredObject.kind == "request")))
        assert session.scalars(select(RequestVersion.outputs_removed_at)).one() is not None
    assert remove_cancelled_outputs(database, store, grace, clock.advance(60)) == 0, "cleaned once"


async def test_only_the_latest_version_that_passed_qa_counts_as_passed(
    client: httpx.AsyncClient, completed: str, database: Database, coordinator: Coordinator, clock: FakeClock
) -> None:
    request = await create(client, ALICE)
    run_to_the_end(coordinator, database, clock, request.request_id, 1)
    again = await client.post(f"{REQUESTS}/{request.request_id}/versions", headers=ALICE)
    assert again.status_code == 201, again.text
    run_to_the_end(coordinator, database, clock, request.request_id, 2)
    first, second = (await read(client, request.request_id)).versions
    assert (first.passed_qa, second.passed_qa) == (False, True)
    assert first.state is RequestState.SUCCEEDED and "superseded: version 2 passed QA" in first.reason
    # The first version's products are kept: a delivered version is never overwritten.
    listing = await client.get(f"{REQUESTS}/{request.request_id}/versions/1/products", headers=ALICE)
    assert listing.status_code == 200 and "/v1/" in listing.json()["products"][0]["url"]


async def test_another_users_products_are_as_unknown_as_a_missing_request(
    client: httpx.AsyncClient, completed: str, database: Database, coordinator: Coordinator, clock: FakeClock
) -> None:
    theirs = await create(client, BOB)
    run_to_the_end(coordinator, database, clock, theirs.request_id)
    assert (await client.get(f"{REQUESTS}/{theirs.request_id}/versions/1/products", headers=BOB)).status_code == 200
    mine = await client.get(f"{REQUESTS}/{theirs.request_id}/versions/1/products", headers=ALICE)
    assert mine.status_code == 404 and "url" not in mine.text
    unknown = await client.get(f"{REQUESTS}/{theirs.request_id}/versions/7/products", headers=BOB)
    assert unknown.status_code == 404 and "versions 1 to 1" in unknown.json()["errors"][0]["message"]


async def test_a_resolution_finer_than_the_data_is_refused_with_the_finest_it_can_have(
    client: httpx.AsyncClient, completed: str
) -> None:
    response = await client.post(
        REQUESTS, headers=ALICE, json={"mous_id": MOUS_ID, "cubes": [cube()], "target_resolution_arcsec": 0.5}
    )
    assert response.status_code == 422
    error = response.json()["errors"][0]
    assert error["field"] == "target_resolution_arcsec" and f"{RUN_BEAM:.3g} arcsec or more" in error["message"]


async def test_the_estimate_says_what_the_size_cascade_would_change_for_a_cube_over_the_limit(
    client: httpx.AsyncClient, completed: str, database: Database
) -> None:
    from aperture_contracts.imaging import ProductSizeLimits
    from aperture_contracts.requests import RequestCreate
    from aperture_coordinator.imaging_requests import estimate

    body = RequestCreate.model_validate({"mous_id": MOUS_ID, "cubes": [cube()]})
    # The run's cube: 150 x 150 pixels; 10 channels asked: 900 kB for one image.
    tight = ProductSizeLimits(max_cube_bytes=500_000, max_cube_hard_bytes=800_000)
    with database.transaction() as session:
        mous = session.get(Mous, MOUS_ID)
        assert estimate(session, mous, body, 10**12).mitigation == []
        (note,) = estimate(session, mous, body, 10**12, tight).mitigation
        fixed = body.model_copy(update={"field_size_arcsec": 45.0})
        (fixed_note,) = estimate(session, mous, fixed, 10**12, tight).mitigation
    assert note.startswith("spw 17: the cube would be 0.0 GB") and "field would be shrunk" in note
    assert "over the hard limit" in note and "fewer channels" in note
    assert "fixed by field_size_arcsec" in fixed_note


async def test_whoami_names_the_tokens_user_and_role(client: httpx.AsyncClient) -> None:
    from .test_requests_api import OPERATOR

    assert (await client.get(f"{REQUESTS}/whoami", headers=ALICE)).json() == {"user": "alice", "role": "user"}
    assert (await client.get(f"{REQUESTS}/whoami", headers=OPERATOR)).json()["role"] == "operator"
    assert (await client.get(f"{REQUESTS}/whoami")).status_code == 401


async def test_a_quicklook_mous_takes_continuum_requests_and_refuses_cubes_saying_why(
    client: httpx.AsyncClient, coordinator: Coordinator, database: Database, clock: FakeClock
) -> None:
    from aperture_contracts.enums import Recipe
    from aperture_coordinator.state import Submission

    from .factories import object_ref, run_wave

    package = object_ref("mous/uid___A001_X2fa_X2dd/input/uid___A001_X2fa_X2dd.ms.tar", b"package")
    coordinator.submit(Submission(MOUS_ID, package, "uid___A001_X2fa_X2dd.ms.tar", recipe=Recipe.QUICKLOOK))
    while run_wave(coordinator, database, clock):
        pass
    assert load_mous(database).state is MousState.COMPLETED
    refused = await client.post(REQUESTS, headers=ALICE, json={"mous_id": MOUS_ID, "cubes": [cube()]})
    assert refused.status_code == 409 and "quick-look recipe" in refused.json()["errors"][0]["message"]
    accepted = await create(client, ALICE, cubes=[], robust=1.0)
    version = accepted.versions[0]
    kinds = sorted(job.kind for job in version.jobs if job.stage is Stage.IMAGING)
    assert kinds == ["cont", "cont", "mfs", "mfs", "mfs", "mfs"] and version.state is RequestState.QUEUED
