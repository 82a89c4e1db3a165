"""The run ledger read back, on SQLite and PostgreSQL: every attempt as an entry with its job, MOUS, campaign
and request; each filter narrowing to the right attempts; pages and totals; the summary's counts and memory
percentiles; one query plus a count per page; and /api/v1/ledger for operators only.

The attempts are made by the coordinator from fake worker events (ledger_factories.play_ledger: a user's MOUS
whose ingest fails once and succeeds on its retry, then calibrates, with a findcont job left queued; and a
campaign's MOUS whose ingest fails for good)."""

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from aperture_contracts.enums import ErrorClass, MemoryClass, Stage
from aperture_contracts.ids import mous_key
from aperture_contracts.ledger import AttemptOutcome, LedgerEntry, LedgerPage, LedgerSummary, StageMemory
from aperture_contracts.requests import RequestView
from aperture_coordinator.api import CoordinatorServices, create_app
from aperture_coordinator.auth import ApiIdentity, Role
from aperture_coordinator.db import Database
from aperture_coordinator.ledger import LedgerFilter, ledger_page, ledger_summary, percentile, stage_memory
from aperture_coordinator.settings import CoordinatorSettings
from aperture_coordinator.state import Coordinator
from sqlalchemy import event

from .conftest import FakeClock, make_settings
from .factories import MOUS_ID, InMemoryObjectStore, load_job, run_wave
from .ledger_factories import (
    ALL_NEWEST_FIRST,
    CAMPAIGN_ID,
    CAMPAIGN_MOUS,
    FINDCONT,
    NO_MS,
    USER_MOUS,
    Played,
    play_ledger,
    submit,
)
from .test_requests_api import body as request_body

LEDGER = "/api/v1/ledger"
TOKENS = {
    "alice-token": ApiIdentity(user="alice"),
    "operator-token": ApiIdentity(user="olga", role=Role.OPERATOR),
}
OPERATOR = {"Authorization": "Bearer operator-token"}
ALICE = {"Authorization": "Bearer alice-token"}


@pytest.fixture
def settings(database_url: str) -> CoordinatorSettings:
    return make_settings(database_url, enabled_stages=list(Stage), max_attempts=3, api_tokens=TOKENS)


@pytest.fixture
def played(coordinator: Coordinator, database: Database, clock: FakeClock) -> Played:
    return play_ledger(coordinator, database, clock)


EVERYTHING = LedgerFilter()


def page(database: Database, where: LedgerFilter = EVERYTHING, *, offset: int = 0, limit: int = 50) -> LedgerPage:
    with database.transaction() as session:
        return ledger_page(session, where, offset=offset, limit=limit)


def summary(database: Database, where: LedgerFilter = EVERYTHING, **limit: int) -> LedgerSummary:
    with database.transaction() as session:
        return ledger_summary(session, where, **limit)


def keys(entries: list[LedgerEntry]) -> list[tuple[str, str, int]]:
    return [(entry.mous_id, entry.job_id, entry.attempt) for entry in entries]


# -- entries ------------------------------------------------------------------------------------------------


def test_every_attempt_is_an_entry_newest_dispatch_first_with_its_figures(
    played: Played, database: Database
) -> None:
    ledger = page(database)

    assert ledger.total == 5
    assert keys(ledger.entries) == ALL_NEWEST_FIRST
    by_key = {(e.mous_id, e.job_id, e.attempt): e for e in ledger.entries}
    first = by_key[(USER_MOUS, "r1.ingest", 1)]
    assert first.model_dump(exclude={"started_at", "ended_at", "inputs"}) == {
        "mous_id": USER_MOUS, "run": 1, "job_id": "r1.ingest", "stage": Stage.INGEST, "kind": "", "target": None,
        "spw_id": None, "attempt": 1, "worker": "ingest-a:101", "dispatched_at": played.user_first_ingest,
        "duration_s": 5.0, "peak_memory_mb": 2048.5, "software_version": "aperture 0.1.0",
        "memory_class": MemoryClass.STANDARD,
        "outcome": AttemptOutcome.FAILED, "error_class": ErrorClass.STORAGE,
        "message": "the object store is unreachable", "log_key": played.log_key, "campaign_id": None,
        "request": None,
    }
    retried = by_key[(USER_MOUS, "r1.ingest", 2)]
    assert (retried.worker, retried.duration_s, retried.outcome, retried.error_class, retried.peak_memory_mb) == (
        "ingest-b:7", 40.0, AttemptOutcome.SUCCEEDED, None, 900.0
    )
    assert retried.dispatched_at == played.user_retried_ingest
    assert retried.log_key == f"mous/{mous_key(USER_MOUS)}/work/r1.ingest/logs/attempt-2.casa.log"
    queued = by_key[(USER_MOUS, FINDCONT, 1)]
    assert (queued.worker, queued.started_at, queued.outcome, queued.duration_s) == (None, None, None, None)
    assert (queued.stage, queued.target, queued.spw_id) == (Stage.FINDCONT, "Target 1", 17)
    assert queued.inputs == load_job(database, FINDCONT, USER_MOUS).params
    bulk = by_key[(CAMPAIGN_MOUS, "r1.ingest", 1)]
    assert (bulk.campaign_id, bulk.error_class, bulk.message) == (CAMPAIGN_ID, ErrorClass.BAD_INPUT, NO_MS)


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        (LedgerFilter(mous_id=USER_MOUS), [k for k in ALL_NEWEST_FIRST if k[0] == USER_MOUS]),
        (LedgerFilter(campaign=CAMPAIGN_ID), [(CAMPAIGN_MOUS, "r1.ingest", 1)]),
        (LedgerFilter(campaign="cycle10"), [(CAMPAIGN_MOUS, "r1.ingest", 1)]),
        (LedgerFilter(campaign="camp-ffffffffffff"), []),
        (LedgerFilter(stage=Stage.CALIBRATION), [(USER_MOUS, "r1.calibration", 1)]),
        (LedgerFilter(outcome=AttemptOutcome.FAILED), [(CAMPAIGN_MOUS, "r1.ingest", 1), (USER_MOUS, "r1.ingest", 1)]),
        (LedgerFilter(outcome=AttemptOutcome.SUCCEEDED), [(USER_MOUS, "r1.calibration", 1),
                                                          (USER_MOUS, "r1.ingest", 2)]),
        (LedgerFilter(error_class=ErrorClass.STORAGE), [(USER_MOUS, "r1.ingest", 1)]),
        (LedgerFilter(worker="ingest-b:7"), [(USER_MOUS, "r1.ingest", 2)]),
        (LedgerFilter(software_version="aperture 0.2.0"), [(USER_MOUS, "r1.calibration", 1),
                                                           (USER_MOUS, "r1.ingest", 2),
                                                           (CAMPAIGN_MOUS, "r1.ingest", 1)]),
        (LedgerFilter(mous_id=USER_MOUS, outcome=AttemptOutcome.FAILED), [(USER_MOUS, "r1.ingest", 1)]),
    ],
)
def test_each_filter_narrows_to_its_attempts(
    played: Played, database: Database, where: LedgerFilter, expected: list[tuple[str, str, int]]
) -> None:
    ledger = page(database, where)
    assert keys(ledger.entries) == expected
    assert ledger.total == len(expected)


def test_since_and_until_bound_the_dispatch_time(played: Played, database: Database) -> None:
    since = page(database, LedgerFilter(since=played.user_retried_ingest))
    until = page(database, LedgerFilter(until=played.user_retried_ingest))
    between = page(database, LedgerFilter(since=played.campaign_ingest, until=played.user_retried_ingest))

    assert keys(since.entries) == ALL_NEWEST_FIRST[:3]
    assert keys(until.entries) == ALL_NEWEST_FIRST[3:]
    assert keys(between.entries) == [(CAMPAIGN_MOUS, "r1.ingest", 1)]


def test_pages_cover_the_ledger_once_and_each_says_the_total(played: Played, database: Database) -> None:
    pages = [page(database, offset=offset, limit=2) for offset in (0, 2, 4, 6)]

    assert [len(p.entries) for p in pages] == [2, 2, 1, 0]
    assert {p.total for p in pages} == {5}
    assert [k for p in pages for k in keys(p.entries)] == ALL_NEWEST_FIRST
    assert (pages[1].offset, pages[1].limit) == (2, 2)


def test_a_campaign_is_named_only_on_the_jobs_of_the_run_it_started(
    played: Played, coordinator: Coordinator, database: Database, clock: FakeClock
) -> None:
    # The campaign re-runs the user's MOUS: run 2 is the campaign's, run 1 stays the user's.
    clock.advance(60)
    submit(coordinator, USER_MOUS, CAMPAIGN_ID, rerun=True)

    entries = page(database, LedgerFilter(mous_id=USER_MOUS)).entries
    of_campaign = page(database, LedgerFilter(campaign="cycle10"))

    assert [(e.job_id, e.attempt, e.campaign_id, e.outcome) for e in entries] == [
        ("r2.ingest", 1, CAMPAIGN_ID, None),
        (FINDCONT, 1, None, AttemptOutcome.SUPERSEDED),
        ("r1.calibration", 1, None, AttemptOutcome.SUCCEEDED),
        ("r1.ingest", 2, None, AttemptOutcome.SUCCEEDED),
        ("r1.ingest", 1, None, AttemptOutcome.FAILED),
    ]
    assert keys(of_campaign.entries) == [(USER_MOUS, "r2.ingest", 1), (CAMPAIGN_MOUS, "r1.ingest", 1)]
    assert of_campaign.total == 2


def test_a_page_is_one_query_and_a_count_however_many_entries(played: Played, database: Database) -> None:
    with counted_selects(database) as statements:
        ledger = page(database)
    assert len(ledger.entries) == 5
    assert len(statements) == 2, statements


@contextmanager
def counted_selects(database: Database) -> Iterator[list[str]]:
    """The SELECT statements run in the block (a transaction's BEGIN is no query)."""
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    event.listen(database.engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(database.engine, "before_cursor_execute", record)


# -- summary ------------------------------------------------------------------------------------------------


def test_the_summary_counts_outcomes_and_classes_and_gives_memory_percentiles_per_stage(
    played: Played, database: Database
) -> None:
    everything = summary(database)

    assert everything.attempts == 5
    assert everything.unfinished == 1
    assert everything.by_outcome == {AttemptOutcome.SUCCEEDED: 2, AttemptOutcome.FAILED: 2}
    assert list(everything.by_error_class.items()) == [(ErrorClass.BAD_INPUT, 1), (ErrorClass.STORAGE, 1)]
    # Ingest: 500, 900 and 2048.5 MB; p95 lies 0.9 of the way from 900 to 2048.5.
    assert [(m.stage, m.attempts, m.p50_mb, m.p95_mb, m.max_mb) for m in everything.peak_memory] == [
        (Stage.INGEST, 3, 900.0, pytest.approx(1933.65), 2048.5),
        (Stage.CALIBRATION, 1, 3000.0, 3000.0, 3000.0),
    ]
    assert everything.peak_memory_truncated is False

    users = summary(database, LedgerFilter(mous_id=USER_MOUS, stage=Stage.INGEST))
    assert (users.attempts, users.unfinished, users.by_error_class) == (2, 0, {ErrorClass.STORAGE: 1})
    assert [(m.stage, m.attempts, m.p50_mb, m.max_mb) for m in users.peak_memory] == [
        (Stage.INGEST, 2, pytest.approx(1474.25), 2048.5)
    ]


def test_the_memory_percentiles_use_the_newest_figures_up_to_the_limit(played: Played, database: Database) -> None:
    limited = summary(database, memory_limit=2)

    # The two newest attempts with a figure: calibration (3000 MB) and the retried ingest (900 MB).
    assert [(m.stage, m.attempts, m.max_mb) for m in limited.peak_memory] == [
        (Stage.INGEST, 1, 900.0), (Stage.CALIBRATION, 1, 3000.0)
    ]
    assert limited.peak_memory_truncated is True
    assert limited.attempts == 5, "the counts are over every matching attempt"


def test_percentiles_interpolate_between_neighbours() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.95) == pytest.approx(3.85)
    assert percentile([7.0], 0.95) == 7.0
    assert stage_memory([(Stage.IMAGING, 10.0), (Stage.INGEST, 4.0), (Stage.IMAGING, 30.0)]) == [
        StageMemory(stage=Stage.INGEST, attempts=1, p50_mb=4.0, p95_mb=4.0, max_mb=4.0),
        StageMemory(stage=Stage.IMAGING, attempts=2, p50_mb=20.0, p95_mb=29.0, max_mb=30.0),
    ]


# -- the API --------------------------------------------------------------------------------------------


@pytest.fixture
async def client(
    settings: CoordinatorSettings, database: Database, coordinator: Coordinator
) -> AsyncIterator[httpx.AsyncClient]:
    services = CoordinatorServices(database=database, coordinator=coordinator, store=InMemoryObjectStore())
    transport = httpx.ASGITransport(app=create_app(settings, services))
    async with httpx.AsyncClient(transport=transport, base_url="http://coordinator") as test_client:
        yield test_client


async def test_the_api_serves_the_ledger_and_its_summary_with_the_filters_as_parameters(
    played: Played, database: Database, client: httpx.AsyncClient
) -> None:
    everything = await client.get(LEDGER, headers=OPERATOR)
    narrowed = await client.get(LEDGER, headers=OPERATOR, params={
        "mous_id": mous_key(USER_MOUS), "outcome": "failed", "error_class": "storage", "stage": "ingest",
        "worker": "ingest-a:101", "software_version": "aperture 0.1.0",
        "since": played.user_first_ingest.isoformat(), "until": played.user_retried_ingest.isoformat(),
    })
    second_page = await client.get(LEDGER, headers=OPERATOR, params={"offset": 1, "limit": 1})
    by_campaign = await client.get(f"{LEDGER}/summary", headers=OPERATOR, params={"campaign_id": "cycle10"})

    assert everything.status_code == 200, everything.text
    assert LedgerPage.model_validate(everything.json()) == page(database)
    assert narrowed.status_code == 200, narrowed.text
    assert keys(LedgerPage.model_validate(narrowed.json()).entries) == [(USER_MOUS, "r1.ingest", 1)]
    assert keys(LedgerPage.model_validate(second_page.json()).entries) == ALL_NEWEST_FIRST[1:2]
    assert by_campaign.status_code == 200, by_campaign.text
    assert LedgerSummary.model_validate(by_campaign.json()) == summary(database, LedgerFilter(campaign="cycle10"))
    assert by_campaign.json()["by_error_class"] == {"bad_input": 1}


@pytest.mark.parametrize(
    ("parameter", "value"),
    [("stage", "gremlins"), ("outcome", "planned"), ("error_class", "gremlins"), ("since", "2025-11-21T12:00:00"),
     ("limit", "0")],
)
async def test_a_wrong_parameter_is_a_422_naming_it(
    client: httpx.AsyncClient, database: Database, parameter: str, value: str
) -> None:
    for path in (LEDGER, f"{LEDGER}/summary"):
        if parameter == "limit" and path != LEDGER:
            continue
        response = await client.get(path, headers=OPERATOR, params={parameter: value})
        assert response.status_code == 422, response.text
        assert [error["field"] for error in response.json()["errors"]] == [parameter]


@pytest.mark.parametrize("path", [LEDGER, f"{LEDGER}/summary"])
async def test_the_ledger_is_for_operators_only(client: httpx.AsyncClient, database: Database, path: str) -> None:
    anonymous = await client.get(path)
    user = await client.get(path, headers=ALICE)

    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"] == 'Bearer realm="aperture"'
    assert user.status_code == 403
    assert user.json()["detail"] == (
        "the run ledger is read by operators, and alice's token is a user's: ask an operator"
    )
    assert user.json()["errors"][0]["field"] == "Authorization"


async def test_a_request_versions_jobs_name_their_request(
    coordinator: Coordinator, database: Database, clock: FakeClock, client: httpx.AsyncClient
) -> None:
    submit(coordinator, MOUS_ID)
    while run_wave(coordinator, database, clock):
        pass
    created = await client.post("/api/v1/requests", json=request_body(), headers=ALICE)
    assert created.status_code == 201, created.text
    request_id = RequestView.model_validate(created.json()).request_id

    entries = page(database, LedgerFilter(mous_id=MOUS_ID), limit=500).entries

    of_request = [entry for entry in entries if entry.request is not None]
    assert of_request, "the request's first jobs are dispatched"
    assert {entry.request for entry in of_request} == {request_id}
    assert all(entry.job_id.startswith(request_id) and entry.campaign_id is None for entry in of_request)
    assert all(entry.request is None for entry in entries if entry.job_id.startswith("r1."))
