"""Fixtures of the coordinator's tests. Every test that touches the database runs twice: on SQLite and on
PostgreSQL, each time on an empty, freshly migrated schema.

PostgreSQL comes from APERTURE_TEST_POSTGRES_URL (default: the local test server). When it cannot be
reached those runs are skipped, except under CI=true, where they fail.
"""

import os
import random
import uuid
from collections.abc import Iterator
from functools import cache

import psycopg
import pytest
from aperture_coordinator.db import Database, upgrade_database
from aperture_coordinator.settings import CoordinatorSettings
from aperture_coordinator.state import Coordinator
from sqlalchemy.engine import make_url
from support.requirements import require

from .factories import FakeClock, InMemoryObjectStore

POSTGRES_URL_ENV = "APERTURE_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql+psycopg://aperture:aperture@127.0.0.1:5432/aperture_test"


def postgres_url() -> str:
    return os.environ.get(POSTGRES_URL_ENV, DEFAULT_POSTGRES_URL)


def _libpq_url(url: str) -> str:
    """The SQLAlchemy URL as psycopg takes it (no +driver)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@cache
def _postgres_unreachable() -> str | None:
    try:
        with psycopg.connect(_libpq_url(postgres_url()), connect_timeout=3) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error as error:
        return f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}"
    return None


def require_postgres() -> None:
    problem = _postgres_unreachable()
    if problem is None:
        return
    require(
        False,
        f"PostgreSQL at {make_url(postgres_url()).render_as_string()} ({problem}; "
        f"set {POSTGRES_URL_ENV} to run these tests on another server)",
    )


# The PostgreSQL runs need a server: they are integration tests (`make test-fast` leaves them out).
@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An empty database: a new SQLite file, or a new PostgreSQL schema dropped after the test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db')}/coordinator.db"
        return
    require_postgres()
    schema = f"test_{uuid.uuid4().hex[:12]}"
    admin = _libpq_url(postgres_url())
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    try:
        url = make_url(postgres_url()).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


def make_settings(database_url: str, **overrides: object) -> CoordinatorSettings:
    values: dict[str, object] = {
        "database_url": database_url,
        "enabled_stages": ["ingest"],
        "max_attempts": 3,
        "retry_backoff_base_s": 5.0,
        "retry_backoff_cap_s": 600.0,
        "retry_jitter_fraction": 0.2,
        "lost_job_grace_s": 600.0,
        "fault_injection": None,
    }
    values.update(overrides)
    return CoordinatorSettings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(database_url: str) -> CoordinatorSettings:
    return make_settings(database_url)


@pytest.fixture
def database(settings: CoordinatorSettings) -> Iterator[Database]:
    upgrade_database(settings.database_url)
    database = Database(settings.database_url)
    yield database
    database.dispose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def coordinator(database: Database, settings: CoordinatorSettings, clock: FakeClock) -> Coordinator:
    return Coordinator(database, settings, clock=clock, rng=random.Random(20251121))


@pytest.fixture
def store() -> InMemoryObjectStore:
    return InMemoryObjectStore()
