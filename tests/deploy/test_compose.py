"""The Docker Compose stack, checked without a Docker engine: docker-compose renders it when the secrets
are set and refuses it, naming the secret, when one is not; the file matches the Compose specification.

Tools: Debian's `docker-compose` (`apt-get install -y --no-install-recommends docker-compose`; the
--no-install-recommends keeps the engine out) and `check-jsonschema` (PyPI). Missing tools skip these
tests locally and fail them under CI=true.
"""

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.requirements import find_tool

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
SECRETS = {
    "MINIO_ROOT_PASSWORD": "minio-test-secret",
    "RABBITMQ_PASSWORD": "rabbit-test-secret",
    "POSTGRES_PASSWORD": "postgres-test-secret",
}
APERTURE_SERVICES = ("coordinator", "ingest")
INFRASTRUCTURE = ("minio", "rabbitmq", "postgres")



@pytest.fixture(scope="module")
def docker_compose() -> str:
    return find_tool("docker-compose", "apt-get install -y --no-install-recommends docker-compose")


@pytest.fixture(scope="module")
def check_jsonschema() -> str:
    return find_tool("check-jsonschema", "pip install check-jsonschema (or add it to the dev group)")


def compose(
    docker_compose: str, tmp_path: Path, secrets: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    """docker-compose with only these variables: an empty env file, so that a developer's .env next to
    the compose file cannot stand in for a missing secret."""
    empty_env_file = tmp_path / "empty.env"
    empty_env_file.write_text("")
    environment = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), **secrets}
    return subprocess.run(
        [
            docker_compose,
            "-f",
            str(COMPOSE_FILE),
            "--project-directory",
            str(ROOT),
            "--env-file",
            str(empty_env_file),
            *args,
        ],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def rendered(docker_compose: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The stack as docker-compose resolves it, with the test secrets filled in."""
    result = compose(docker_compose, tmp_path_factory.mktemp("compose"), SECRETS, "config")
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_compose_file_is_valid_when_every_secret_is_set(docker_compose: str, tmp_path: Path) -> None:
    result = compose(docker_compose, tmp_path, SECRETS, "config", "-q")

    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("secret", sorted(SECRETS))
@pytest.mark.parametrize("given_as", ["unset", "empty"])
def test_a_missing_secret_stops_compose_and_names_it(
    docker_compose: str, tmp_path: Path, secret: str, given_as: str
) -> None:
    secrets = {name: value for name, value in SECRETS.items() if name != secret}
    if given_as == "empty":
        secrets[secret] = ""

    result = compose(docker_compose, tmp_path, secrets, "config", "-q")

    assert result.returncode != 0
    assert f"set {secret}" in result.stderr, result.stderr


def test_compose_file_matches_the_compose_specification(check_jsonschema: str) -> None:
    result = subprocess.run(
        [check_jsonschema, "--builtin-schema", "vendor.compose-spec", str(COMPOSE_FILE)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_the_stack_has_the_infrastructure_and_the_aperture_services(rendered: dict[str, Any]) -> None:
    services = rendered["services"]

    assert set(INFRASTRUCTURE + APERTURE_SERVICES) <= set(services)
    assert services["rabbitmq"]["image"].startswith("rabbitmq:3.13-management")
    assert services["postgres"]["image"].startswith("postgres:15")
    assert "minio/minio" in services["minio"]["image"]


@pytest.mark.parametrize("service", APERTURE_SERVICES)
def test_aperture_services_start_only_once_their_dependencies_are_healthy(
    rendered: dict[str, Any], service: str
) -> None:
    depends_on = rendered["services"][service]["depends_on"]
    running = {name: condition for name, condition in depends_on.items() if name != "migrate"}

    assert {"rabbitmq", "minio"} <= set(running)
    assert all(condition["condition"] == "service_healthy" for condition in running.values())


def test_the_worker_waits_for_the_coordinator_that_creates_bucket_and_queues(
    rendered: dict[str, Any],
) -> None:
    assert rendered["services"]["ingest"]["depends_on"]["coordinator"]["condition"] == "service_healthy"
    assert rendered["services"]["coordinator"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_the_coordinator_starts_after_the_schema_migration_succeeded(rendered: dict[str, Any]) -> None:
    services = rendered["services"]

    assert services["coordinator"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["command"] == ["aperture-coordinator", "migrate"]
    assert services["migrate"]["image"] == services["coordinator"]["image"]
    assert (
        services["migrate"]["environment"]["APERTURE_DATABASE_URL"]
        == (services["coordinator"]["environment"]["APERTURE_DATABASE_URL"])
    )
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"


@pytest.mark.parametrize("service", INFRASTRUCTURE)
def test_infrastructure_services_have_health_checks(rendered: dict[str, Any], service: str) -> None:
    assert rendered["services"][service]["healthcheck"]["test"]


@pytest.mark.parametrize("service", APERTURE_SERVICES)
def test_aperture_services_get_the_secrets_and_run_in_production_mode(
    rendered: dict[str, Any], service: str
) -> None:
    environment = rendered["services"][service]["environment"]

    assert environment["APERTURE_PRODUCTION"] == "true"
    assert environment["APERTURE_AMQP_URL"] == "amqp://aperture:rabbit-test-secret@rabbitmq:5672/"
    assert environment["APERTURE_S3_ENDPOINT"] == "minio:9000"
    assert environment["APERTURE_S3_SECRET_KEY"] == "minio-test-secret"
    assert environment["APERTURE_S3_BUCKET"]


def test_coordinator_reaches_postgres_and_serves_on_8000(rendered: dict[str, Any]) -> None:
    coordinator = rendered["services"]["coordinator"]

    assert coordinator["environment"]["APERTURE_DATABASE_URL"] == (
        "postgresql+psycopg://aperture:postgres-test-secret@postgres:5432/aperture"
    )
    assert coordinator["environment"]["APERTURE_API_PORT"] == "8000"
    assert "127.0.0.1:8000:8000/tcp" in [str(port) for port in coordinator["ports"]]


def test_ingest_worker_serves_health_and_metrics_on_9100(rendered: dict[str, Any]) -> None:
    assert rendered["services"]["ingest"]["environment"]["APERTURE_HTTP_PORT"] == "9100"


def test_rabbitmq_gets_the_long_consumer_timeout(rendered: dict[str, Any]) -> None:
    volumes = rendered["services"]["rabbitmq"]["volumes"]
    mounted = {str(volume).split(":")[1]: str(volume).split(":")[0] for volume in volumes}

    assert Path(mounted["/etc/rabbitmq/rabbitmq.conf"]) == ROOT / "docker" / "rabbitmq.conf"
    settings: dict[str, str] = {}
    for line in (ROOT / "docker" / "rabbitmq.conf").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            settings[key.strip()] = value.strip()
    assert settings["consumer_timeout"] == "28800000"


def test_published_ports_listen_on_the_loopback_only(rendered: dict[str, Any]) -> None:
    published = [str(port) for service in rendered["services"].values() for port in service.get("ports", [])]

    assert published
    assert all(port.startswith("127.0.0.1:") for port in published), published
