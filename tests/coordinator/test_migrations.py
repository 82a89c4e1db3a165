"""The schema: migrations create exactly what the models describe, on SQLite and PostgreSQL."""

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from aperture_coordinator.db import Database, create_database_engine, upgrade_database
from aperture_coordinator.main import cli
from aperture_coordinator.models import Base
from sqlalchemy import inspect
from typer.testing import CliRunner

TABLES = {"mous", "jobs", "job_dependencies", "attempts", "outbox", "objects", "processed_events",
          "imaging_requests", "request_versions", "notifications", "campaigns", "campaign_members"}


def test_migrations_create_every_table(database_url: str) -> None:
    upgrade_database(database_url)
    engine = create_database_engine(database_url)
    try:
        assert set(inspect(engine).get_table_names()) == TABLES | {"alembic_version"}
    finally:
        engine.dispose()


def test_migrations_match_the_models(database_url: str) -> None:
    upgrade_database(database_url)
    engine = create_database_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_upgrading_twice_changes_nothing(database_url: str) -> None:
    upgrade_database(database_url)
    upgrade_database(database_url)
    database = Database(database_url)
    try:
        database.ping()
    finally:
        database.dispose()


def test_the_migrate_command_brings_the_schema_up_to_date(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The command configures the process's logging; the test process keeps pytest's.
    monkeypatch.setattr("aperture_coordinator.main.configure_logging", lambda *args: None)
    result = CliRunner().invoke(cli, ["migrate"], env={"APERTURE_DATABASE_URL": database_url})
    assert result.exit_code == 0, result.output
    assert "database schema is up to date" in result.output
    engine = create_database_engine(database_url)
    try:
        assert TABLES <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_a_sqlite_database_gets_its_folder_made_and_runs_in_wal_mode(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/not/yet/there/aperture.db"
    upgrade_database(url)
    database = Database(url)
    try:
        with database.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        database.dispose()
    assert (tmp_path / "not/yet/there/aperture.db").is_file()


def test_a_database_url_of_another_kind_is_refused_with_what_to_use() -> None:
    with pytest.raises(ValueError, match="use sqlite:///path/to/file.db or postgresql"):
        create_database_engine("mysql://user:secret@host/db")
