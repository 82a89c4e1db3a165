"""The coordinator's metrics: the gauges read from the database at scrape time (MOUS by state, the backlog
per stage queue, MOUS without progress, the in-flight MOUS of the drill-down) on SQLite and PostgreSQL,
and the API's request metrics (method, route template, status class)."""

from collections.abc import Iterator

import httpx
import pytest
from aperture_contracts.enums import ErrorClass, JobState, MousState, Stage
from aperture_coordinator import metrics as coordinator_metrics
from aperture_coordinator.api import CoordinatorServices, create_app
from aperture_coordinator.api_metrics import RequestMetricsMiddleware, install_request_metrics
from aperture_coordinator.db import Database
from aperture_coordinator.main import build_app
from aperture_coordinator.metrics import DatabaseStateCollector
from aperture_coordinator.settings import CoordinatorSettings
from aperture_coordinator.state import Coordinator, Submission
from fastapi import FastAPI, HTTPException
from prometheus_client import REGISTRY

from .conftest import FakeClock
from .factories import MOUS_ID, InMemoryObjectStore, failed, grid_metadata, ingest_succeeded, object_ref, started

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(collector: DatabaseStateCollector) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in collector.collect()
        for sample in family.samples
    }


def at(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def series_of(samples: Samples, name: str) -> list[dict[str, str]]:
    return [dict(labels) for (sample_name, labels) in samples if sample_name == name]


@pytest.fixture
def coordinator(database: Database, settings: CoordinatorSettings, clock: FakeClock) -> Coordinator:
    """Every stage deployed, so that an MOUS goes on to processing after its ingest."""
    return Coordinator(database, settings.model_copy(update={"enabled_stages": list(Stage)}), clock=clock)


@pytest.fixture
def collector(database: Database, clock: FakeClock) -> DatabaseStateCollector:
    return DatabaseStateCollector(database, clock=clock)


def submit(coordinator: Coordinator, mous_id: str = MOUS_ID) -> None:
    key = mous_id.replace("uid://", "uid___").replace("/", "_")
    package = object_ref(f"mous/{key}/input/{key}.ms.tar", b"package bytes")
    coordinator.submit(Submission(mous_id, package, f"{key}.ms.tar"))


def test_every_bounded_series_is_reported_at_zero_on_an_empty_database(collector: DatabaseStateCollector) -> None:
    samples = scrape(collector)

    for mous_state in MousState:
        assert at(samples, "aperture_coordinator_mous", state=mous_state.value) == 0
    for stage in Stage:
        assert at(samples, "aperture_queue_jobs", stage=stage.value) == 0
        assert at(samples, "aperture_queue_oldest_job_age_seconds", stage=stage.value) == 0
        assert at(samples, "aperture_running_job_oldest_age_seconds", stage=stage.value) == 0
        for job_state in JobState:
            assert at(samples, "aperture_coordinator_jobs", stage=stage.value, state=job_state.value) == 0
    for mous_state in ("received", "ingesting", "processing"):
        assert at(samples, "aperture_mous_seconds_since_progress", state=mous_state) == 0
    assert at(samples, "aperture_inflight_mous_total") == 0
    assert series_of(samples, "aperture_inflight_mous_age_seconds") == []


def test_a_dispatched_job_waits_in_its_stage_queue_until_a_worker_starts_it(
    coordinator: Coordinator, collector: DatabaseStateCollector, clock: FakeClock
) -> None:
    submit(coordinator)
    clock.advance(90)

    waiting = scrape(collector)

    assert at(waiting, "aperture_queue_jobs", stage="ingest") == 1
    assert at(waiting, "aperture_queue_oldest_job_age_seconds", stage="ingest") == 90
    assert at(waiting, "aperture_queue_jobs", stage="calibration") == 0
    assert at(waiting, "aperture_running_job_oldest_age_seconds", stage="ingest") == 0
    assert at(waiting, "aperture_coordinator_mous", state="received") == 1

    coordinator.apply_event(started("r1.ingest", at=clock.now))
    clock.advance(30)
    running = scrape(collector)

    assert at(running, "aperture_queue_jobs", stage="ingest") == 0
    assert at(running, "aperture_queue_oldest_job_age_seconds", stage="ingest") == 0
    assert at(running, "aperture_running_job_oldest_age_seconds", stage="ingest") == 30
    assert at(running, "aperture_coordinator_mous", state="ingesting") == 1
    assert at(running, "aperture_coordinator_jobs", stage="ingest", state="running") == 1


def test_an_mous_without_progress_is_measured_from_its_last_finished_or_planned_job(
    coordinator: Coordinator, collector: DatabaseStateCollector, clock: FakeClock
) -> None:
    submit(coordinator)
    clock.advance(100)
    coordinator.apply_event(started("r1.ingest", at=clock.now))
    clock.advance(200)

    ingesting = scrape(collector)

    # Starting is not progress: nothing of it finished in 300 s.
    assert at(ingesting, "aperture_mous_seconds_since_progress", state="ingesting") == 300
    assert at(ingesting, "aperture_mous_seconds_since_progress", state="processing") == 0
    assert at(ingesting, "aperture_inflight_mous_seconds_since_progress", mous=MOUS_ID) == 300

    coordinator.apply_event(ingest_succeeded(at=clock.now, metadata=grid_metadata(1, 1)))
    clock.advance(45)
    processing = scrape(collector)

    assert at(processing, "aperture_coordinator_mous", state="processing") == 1
    assert at(processing, "aperture_mous_seconds_since_progress", state="processing") == 45
    assert at(processing, "aperture_mous_seconds_since_progress", state="ingesting") == 0
    assert at(processing, "aperture_inflight_mous_age_seconds", mous=MOUS_ID, state="processing") == 345
    assert at(processing, "aperture_queue_jobs", stage="calibration") == 1


def test_the_drill_down_shows_each_in_flight_mous_with_its_jobs_by_stage_and_state(
    coordinator: Coordinator, collector: DatabaseStateCollector, clock: FakeClock
) -> None:
    submit(coordinator)
    coordinator.apply_event(started("r1.ingest", at=clock.now))
    coordinator.apply_event(ingest_succeeded(at=clock.now, metadata=grid_metadata(1, 1)))

    samples = scrape(collector)

    jobs = {
        (labels["stage"], labels["state"]): at(samples, "aperture_inflight_mous_jobs", **labels)
        for labels in series_of(samples, "aperture_inflight_mous_jobs")
    }
    assert {labels["mous"] for labels in series_of(samples, "aperture_inflight_mous_jobs")} == {MOUS_ID}
    assert jobs[("ingest", "succeeded")] == 1
    assert jobs[("calibration", "dispatched")] == 1
    assert sum(count or 0 for count in jobs.values()) >= 3  # the planned jobs after calibration too
    assert at(samples, "aperture_inflight_mous_total") == 1


def test_only_the_oldest_in_flight_mous_get_series_and_finished_ones_none(
    coordinator: Coordinator, collector: DatabaseStateCollector, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(coordinator_metrics, "IN_FLIGHT_MOUS_SHOWN", 2)
    ids = [f"uid://A001/X1/X{number}" for number in range(1, 5)]
    for mous_id in ids:
        submit(coordinator, mous_id)
        clock.advance(10)
    # The oldest fails (bad input): it is no longer in flight, so the next two oldest are shown.
    coordinator.apply_event(started("r1.ingest", at=clock.now, mous_id=ids[0]))
    coordinator.apply_event(failed("r1.ingest", ErrorClass.BAD_INPUT, at=clock.now, mous_id=ids[0]))

    samples = scrape(collector)

    assert at(samples, "aperture_coordinator_mous", state="failed") == 1
    shown = {labels["mous"] for labels in series_of(samples, "aperture_inflight_mous_age_seconds")}
    assert shown == {ids[1], ids[2]}
    assert {labels["mous"] for labels in series_of(samples, "aperture_inflight_mous_jobs")} == shown
    assert at(samples, "aperture_inflight_mous_total") == 3
    assert at(samples, "aperture_inflight_mous_age_seconds", mous=ids[1], state="received") == 30


async def test_the_metrics_endpoint_serves_the_new_gauges(
    settings: CoordinatorSettings, database: Database, coordinator: Coordinator
) -> None:
    services = CoordinatorServices(database=database, coordinator=coordinator, store=InMemoryObjectStore())
    submit(coordinator)
    transport = httpx.ASGITransport(app=create_app(settings, services))
    async with httpx.AsyncClient(transport=transport, base_url="http://coordinator") as client:
        text = (await client.get("/metrics")).text

    assert 'aperture_queue_jobs{stage="ingest"} 1.0' in text
    assert 'aperture_coordinator_mous{state="completed"} 0.0' in text
    assert f'aperture_inflight_mous_jobs{{mous="{MOUS_ID}",stage="ingest",state="dispatched"}} 1.0' in text


# -- the API's request metrics ------------------------------------------------------------------------------


def requests(method: str, route: str, status_class: str) -> float:
    labels = {"method": method, "route": route, "status_class": status_class}
    return REGISTRY.get_sample_value("aperture_api_requests_total", labels) or 0.0


def timed(method: str, route: str) -> float:
    labels = {"method": method, "route": route}
    return REGISTRY.get_sample_value("aperture_api_request_duration_seconds_count", labels) or 0.0


@pytest.fixture
def small_app() -> Iterator[FastAPI]:
    app = FastAPI()

    @app.get("/things/{thing_id}")
    async def thing(thing_id: str) -> dict[str, str]:
        if thing_id == "missing":
            raise HTTPException(404, "no such thing")
        return {"id": thing_id}

    @app.post("/explode")
    async def explode() -> None:
        raise RuntimeError("a bug")

    install_request_metrics(app)
    yield app


async def test_requests_are_counted_by_route_template_and_status_class(small_app: FastAPI) -> None:
    before = {
        "ok": requests("GET", "/things/{thing_id}", "2xx"),
        "missing": requests("GET", "/things/{thing_id}", "4xx"),
        "unmatched": requests("GET", "unmatched", "4xx"),
        "bug": requests("POST", "/explode", "5xx"),
        "timed": timed("GET", "/things/{thing_id}"),
    }
    transport = httpx.ASGITransport(app=small_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        for thing_id in ("a", "b", "uid___A001_X1_X2"):
            assert (await client.get(f"/things/{thing_id}")).status_code == 200
        assert (await client.get("/things/missing")).status_code == 404
        assert (await client.get("/no/such/path/at/all")).status_code == 404
        assert (await client.post("/explode")).status_code == 500

    assert requests("GET", "/things/{thing_id}", "2xx") == before["ok"] + 3
    assert requests("GET", "/things/{thing_id}", "4xx") == before["missing"] + 1
    assert requests("GET", "unmatched", "4xx") == before["unmatched"] + 1
    assert requests("POST", "/explode", "5xx") == before["bug"] + 1
    assert timed("GET", "/things/{thing_id}") == before["timed"] + 4
    # No series carries a concrete path.
    routes = {
        sample.labels["route"]
        for family in REGISTRY.collect() if family.name == "aperture_api_requests"
        for sample in family.samples
    }
    assert not any("uid___" in route or route.startswith("/no/") for route in routes)


def test_the_service_app_has_the_request_metrics_installed(settings: CoordinatorSettings) -> None:
    app = build_app(settings, store=InMemoryObjectStore())

    assert any(middleware.cls is RequestMetricsMiddleware for middleware in app.user_middleware)
