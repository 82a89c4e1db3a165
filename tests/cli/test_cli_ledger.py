"""`aperture ledger` and `aperture ledger summary` against the real coordinator app served by uvicorn on a
free port (SQLite). The attempts are the ledger scenario (coordinator.ledger_factories) played through the
test's own Coordinator on the same database, so the CLI goes through its real HTTP path (--api, --token,
query parameters, Problem bodies) with no fake between."""

import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aperture_cli.command_line import ExitCode
from aperture_cli.ledger_client import LedgerClient, LedgerQuery
from aperture_cli.ledger_views import MESSAGE_WIDTH, shortened
from aperture_contracts.enums import ErrorClass, Stage
from aperture_contracts.ledger import AttemptOutcome, LedgerPage, LedgerSummary
from aperture_coordinator.api import CoordinatorServices, create_app
from aperture_coordinator.auth import ApiIdentity, Role
from aperture_coordinator.db import Database, upgrade_database
from aperture_coordinator.settings import CoordinatorSettings
from aperture_coordinator.state import Coordinator
from coordinator.factories import FakeClock, InMemoryObjectStore
from coordinator.ledger_factories import (
    ALL_NEWEST_FIRST,
    CAMPAIGN_MOUS,
    CAMPAIGN_NAME,
    NO_MS,
    USER_MOUS,
    Played,
    play_ledger,
)
from support.asgi import serving
from support.cli import CliResult, run_aperture

OPERATOR, ALICE = "operator-token", "alice-token"
TOKENS = {OPERATOR: ApiIdentity(user="olga", role=Role.OPERATOR), ALICE: ApiIdentity(user="alice")}


@dataclass(frozen=True)
class Site:
    url: str
    played: Played


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    settings = CoordinatorSettings(
        database_url=f"sqlite:///{tmp_path / 'coordinator.db'}", enabled_stages=list(Stage), api_tokens=TOKENS,
        max_attempts=3, upload_dir=tmp_path / "uploads",
    )
    upgrade_database(settings.database_url)
    database = Database(settings.database_url)
    clock = FakeClock()
    coordinator = Coordinator(database, settings, clock=clock, rng=random.Random(7))
    played = play_ledger(coordinator, database, clock)
    services = CoordinatorServices(database=database, coordinator=coordinator, store=InMemoryObjectStore())
    try:
        with serving(create_app(settings, services)) as url:
            yield Site(url, played)
    finally:
        database.dispose()



def aperture(site: Site, *args: str, token: str | None = OPERATOR) -> CliResult:
    """Run `aperture ledger ARGS` in this process against the site, untouched by the test's environment."""
    return run_aperture(
        "ledger", *args, env={"APERTURE_API_TOKEN": token, "APERTURE_API_URL": site.url}, columns=250
    )


def table_rows(stdout: str) -> list[list[str]]:
    """The cells of a table's body rows (rich draws the header with other box characters)."""
    return [[cell.strip() for cell in line.split("│")[1:-1]] for line in stdout.splitlines() if line.startswith("│")]


def test_the_ledger_lists_every_attempt_newest_first_with_its_figures(site: Site) -> None:
    listed = aperture(site)

    assert listed.exit_code == 0, listed
    rows = table_rows(listed.stdout)
    assert [(row[1], row[2], row[3]) for row in rows] == [
        (mous, job, str(attempt)) for mous, job, attempt in ALL_NEWEST_FIRST
    ]
    assert rows[-1] == [
        "2025-11-21 12:00:00 UTC", USER_MOUS, "r1.ingest", "1", "ingest-a:101", "5s", "2,048", "failed: storage",
        "the object store is unreachable",
    ]
    assert rows[2][4:8] == ["ingest-b:7", "40s", "900", "succeeded"]
    assert rows[0][4:8] == ["-", "-", "-", "queued"]
    assert "1–5 of 5 attempts" in listed.stdout


def test_the_filters_narrow_and_json_is_the_apis_page(site: Site) -> None:
    failed = aperture(site, "--outcome", "failed", "--json")
    by_campaign = aperture(site, "--campaign", CAMPAIGN_NAME)
    by_class = aperture(site, "--class", "storage", "--mous", "uid___A001_X20_X1", "--stage", "ingest")
    first_page = aperture(site, "--limit", "2")
    before_retry = aperture(site, "--until", site.played.user_retried_ingest.isoformat(), "--json")

    assert failed.exit_code == 0, failed
    entries = LedgerPage.model_validate_json(failed.stdout).entries
    assert [(e.mous_id, e.error_class) for e in entries] == [
        (CAMPAIGN_MOUS, ErrorClass.BAD_INPUT), (USER_MOUS, ErrorClass.STORAGE)
    ]
    assert entries[0].campaign_id is not None and entries[0].message == NO_MS
    assert by_campaign.exit_code == 0, by_campaign
    assert [(row[1], row[7], row[8]) for row in table_rows(by_campaign.stdout)] == [
        (CAMPAIGN_MOUS, "failed: bad_input", NO_MS)
    ]
    assert [(row[1], row[3], row[7]) for row in table_rows(by_class.stdout)] == [(USER_MOUS, "1", "failed: storage")]
    assert "1–2 of 5 attempts; --offset 2 shows the next" in first_page.stdout
    assert LedgerPage.model_validate_json(before_retry.stdout).total == 2


def test_the_summary_counts_and_gives_memory_per_stage(site: Site) -> None:
    table = aperture(site, "summary")
    as_json = aperture(site, "summary", "--stage", "ingest", "--json")

    assert table.exit_code == 0, table
    assert "5 (1 queued or running)" in table.stdout
    assert "2 succeeded, 2 failed" in table.stdout
    assert "1 bad_input, 1 storage" in table.stdout
    assert table_rows(table.stdout) == [
        ["ingest", "3", "900", "1,934", "2,048"], ["calibration", "1", "3,000", "3,000", "3,000"]
    ]
    summary = LedgerSummary.model_validate_json(as_json.stdout)
    assert (summary.attempts, summary.by_outcome) == (3, {AttemptOutcome.SUCCEEDED: 1, AttemptOutcome.FAILED: 2})
    assert [stage.stage for stage in summary.peak_memory] == [Stage.INGEST]


def test_a_users_token_or_none_is_refused_and_wrong_options_are_usage_errors(site: Site) -> None:
    as_user = aperture(site, "summary", token=ALICE)
    without = aperture(site, token=None)
    unknown_stage = aperture(site, "--stage", "gremlins")
    naive_words = aperture(site, "--since", "yesterday")
    misplaced = aperture(site, "--stage", "ingest", "summary")

    assert as_user.exit_code == ExitCode.REQUEST_FAILED
    assert "(HTTP 403)" in as_user.stderr and "the run ledger is read by operators" in as_user.stderr
    assert without.exit_code == ExitCode.REQUEST_FAILED
    assert "(HTTP 401)" in without.stderr and "APERTURE_API_TOKEN" in without.stderr
    assert unknown_stage.exit_code == ExitCode.USAGE and "gremlins" in unknown_stage.stderr
    assert naive_words.exit_code == ExitCode.USAGE and "ISO 8601" in naive_words.stderr
    assert misplaced.exit_code == ExitCode.USAGE and "aperture ledger summary [OPTIONS]" in misplaced.stderr


def test_the_client_sends_the_query_as_the_apis_parameters(site: Site) -> None:
    query = LedgerQuery(mous_id=USER_MOUS, outcome=AttemptOutcome.SUCCEEDED, since=site.played.user_retried_ingest,
                        software_version="aperture 0.2.0")
    with LedgerClient(site.url, token=OPERATOR) as client:
        page = client.ledger(query)
        summary = client.ledger_summary(query)

    assert [(e.job_id, e.attempt) for e in page.entries] == [("r1.calibration", 1), ("r1.ingest", 2)]
    assert summary.by_outcome == {AttemptOutcome.SUCCEEDED: 2}
    assert query.params() == {
        "mous_id": USER_MOUS, "outcome": "succeeded", "since": site.played.user_retried_ingest.isoformat(),
        "software_version": "aperture 0.2.0",
    }


def test_a_long_message_is_shortened_on_one_line_and_an_empty_page_says_so(site: Site) -> None:
    assert shortened("the object store\nis unreachable") == "the object store is unreachable"
    cut = shortened("word " * 40)
    assert len(cut) == MESSAGE_WIDTH and cut.endswith("…")
    beyond = aperture(site, "--offset", "10")
    nothing = aperture(site, "--mous", "uid://A001/X99/X9")
    assert "nothing at offset 10 (there are 5)" in beyond.stdout
    assert "no attempt matches" in nothing.stdout
