"""The whole system as separate processes: coordinator/API and ingest workers on real RabbitMQ (a fresh
virtual host per test), the real S3 server (a fresh bucket) and SQLite or PostgreSQL (a fresh database)."""

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aperture_cli.client import ApertureClient
from aperture_shared.settings import CommonSettings
from aperture_shared.storage import ObjectStore
from support.processes import ServiceProcess, coordinator, free_port, stage_worker


@dataclass
class System:
    env: dict[str, str]
    logs: Path
    storage_settings: CommonSettings
    processes: list[ServiceProcess] = field(default_factory=list)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.env['APERTURE_API_PORT']}"

    def start_coordinator(self, wait: bool = True, **extra_env: str) -> ServiceProcess:
        process = coordinator(self.env, self.logs, **extra_env).start(wait=wait)
        self.processes.append(process)
        return process

    def start_worker(self, stage: str = "ingest", **extra_env: str) -> ServiceProcess:
        process = stage_worker(stage, self.env, self.logs, index=len(self.processes), **extra_env).start()
        self.processes.append(process)
        return process

    def client(self) -> ApertureClient:
        return ApertureClient(self.api_url, timeout_s=30)

    def store(self) -> ObjectStore:
        return ObjectStore(self.storage_settings)

    def stop(self) -> None:
        for process in self.processes:
            process.stop()


def _fresh_postgres_database(postgres_url: str) -> Iterator[str]:
    import psycopg

    name = f"aperture_e2e_{uuid.uuid4().hex[:10]}"
    admin = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield postgres_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite"])
def database_url(request, tmp_path) -> Iterator[str]:
    """SQLite by default; tests parametrized with "postgresql" get a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'aperture.db'}"
    else:
        yield from _fresh_postgres_database(request.getfixturevalue("postgres_url"))


@pytest.fixture
def system(amqp_vhost_url, storage_settings, database_url, tmp_path) -> Iterator[System]:
    env = {
        "APERTURE_AMQP_URL": amqp_vhost_url,
        "APERTURE_S3_BUCKET": storage_settings.s3_bucket,
        "APERTURE_DATABASE_URL": database_url,
        "APERTURE_API_PORT": str(free_port()),
        "APERTURE_CASA_SCRATCH_ROOT": str(tmp_path / "scratch"),
        "APERTURE_LOG_JSON": "true",
        "APERTURE_RECONCILE_INTERVAL_S": "1",
        # Most system tests exercise the spine with the ingest worker alone; the science chain sets more.
        "APERTURE_ENABLED_STAGES": "ingest",
    }
    system = System(env=env, logs=tmp_path / "logs", storage_settings=storage_settings)
    yield system
    system.stop()
    ObjectStore(storage_settings).delete_prefix("")
