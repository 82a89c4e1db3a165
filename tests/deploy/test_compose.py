"""The Docker Compose stack, checked without a Docker engine: docker-compose renders it when the secrets
are set and refuses it, naming the secret, when one is not; the file matches the Compose specification;
the workers agree with the coordinator's worker memory classes.

Tools: Debian's `docker-compose` (`apt-get install -y --no-install-recommends docker-compose`; the
--no-install-recommends keeps the engine out) and `check-jsonschema` (PyPI). Missing tools skip these
tests locally and fail them under CI=true.
"""

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from aperture_contracts.enums import MemoryClass, Stage
from aperture_shared.settings import CasaSettings
from settings_fields import STAGE_WORKER_SETTINGS, variable_is_read
from support.requirements import find_tool
from worker_memory_classes import (
    DeployedWorker,
    compose_memory_bytes,
    coordinator_memory_classes,
    deployed_worker,
    memory_class_problems,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
SECRETS = {
    "MINIO_ROOT_PASSWORD": "minio-test-secret",
    "RABBITMQ_PASSWORD": "rabbit-test-secret",
    "POSTGRES_PASSWORD": "postgres-test-secret",
    "GRAFANA_ADMIN_PASSWORD": "grafana-test-secret",
    "APERTURE_API_TOKENS": '{"compose-test-token": {"user": "alice", "role": "user"}}',
}
APERTURE_SERVICES = ("coordinator", "ingest")
INFRASTRUCTURE = ("minio", "rabbitmq", "postgres")
MONITORING = ("prometheus", "grafana")
STAGE_WORKERS = ("ingest", "calibration", "findcont", "imaging", "previews", "footprint", "export")
SCRATCH_ROOT = "/var/lib/aperture/scratch"


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


@pytest.mark.parametrize("service", INFRASTRUCTURE + MONITORING)
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


# -- worker memory classes --------------------------------------------------------------------------------


def worker_stage(service: dict[str, Any]) -> Stage | None:
    """The stage a service's image works (aperture-<stage>:<tag>), or None for any other service."""
    match = re.fullmatch(r"aperture-([a-z]+):.+", str(service.get("image", "")))
    stages = {stage.value: stage for stage in Stage}
    return stages.get(match.group(1)) if match else None


def compose_workers(services: dict[str, Any]) -> list[DeployedWorker]:
    workers = []
    for name, service in services.items():
        stage = worker_stage(service)
        if stage is not None:
            limit = compose_memory_bytes(service["mem_limit"]) if "mem_limit" in service else None
            workers.append(deployed_worker(name, stage, service["environment"], limit))
    return workers


def test_every_worker_service_sets_only_settings_its_stage_reads(rendered: dict[str, Any]) -> None:
    """The large imaging worker too, which test_dockerfiles.py (one service per Dockerfile) does not see."""
    services = rendered["services"]
    unread = {
        name: sorted(
            variable
            for variable in service["environment"]
            if variable.startswith("APERTURE_")
            and not variable_is_read(variable, STAGE_WORKER_SETTINGS[stage], CasaSettings)
        )
        for name, service in services.items()
        if (stage := worker_stage(service)) is not None
    }

    assert set(STAGE_WORKERS) | {"imaging-large"} <= set(unread)
    assert {name: variables for name, variables in unread.items() if variables} == {}


def test_every_memory_class_of_the_coordinator_has_workers_sized_for_it(rendered: dict[str, Any]) -> None:
    services = rendered["services"]
    classes = coordinator_memory_classes(services["coordinator"]["environment"])
    workers = compose_workers(services)

    assert set(classes) == set(MemoryClass)  # the stack runs the large class
    assert memory_class_problems(classes, workers) == []
    # Only imaging runs in more than one class: the stage whose memory grows with its product.
    assert {worker.stage for worker in workers if worker.memory_class != MemoryClass.STANDARD} == {Stage.IMAGING}


def test_the_large_imaging_worker_is_the_imaging_worker_with_more_memory(rendered: dict[str, Any]) -> None:
    services = rendered["services"]
    standard, large = services["imaging"], services["imaging-large"]
    standard_environment, large_environment = dict(standard["environment"]), dict(large["environment"])
    differing = {"APERTURE_MEMORY_CLASS", "APERTURE_CASA_MEMORY_LIMIT_MB"}

    for key in ("image", "build", "depends_on", "stop_grace_period", "platform", "restart"):
        assert large.get(key) == standard.get(key), key
    assert {k: v for k, v in large_environment.items() if k not in differing} == {
        k: v for k, v in standard_environment.items() if k not in differing
    }
    assert large_environment["APERTURE_MEMORY_CLASS"] == MemoryClass.LARGE
    assert int(large_environment["APERTURE_CASA_MEMORY_LIMIT_MB"]) > int(
        standard_environment["APERTURE_CASA_MEMORY_LIMIT_MB"]
    )
    for service in (standard, large):
        # No swap beyond the limit: swapped-out pages would hide from the watchdog, which reads resident memory.
        assert compose_memory_bytes(service["memswap_limit"]) == compose_memory_bytes(service["mem_limit"])


def test_the_large_imaging_worker_has_a_scratch_volume_of_its_own(rendered: dict[str, Any]) -> None:
    """At start a worker removes the scratch folders of processes that no longer run, by pid
    (aperture_shared.scratch); pids are per container, so on a shared volume one worker could take the
    other's running job for an orphan and delete its folder."""
    services = rendered["services"]
    scratch = {}
    for name in ("imaging", "imaging-large"):
        environment = services[name]["environment"]
        root = environment.get("APERTURE_CASA_SCRATCH_ROOT", SCRATCH_ROOT)
        [volume] = [
            str(volume).split(":")[0] for volume in services[name]["volumes"] if str(volume).split(":")[1] == root
        ]
        scratch[name] = volume

    assert scratch["imaging"] != scratch["imaging-large"]
    assert set(scratch.values()) <= set(rendered["volumes"])


# -- monitoring (ops/) -------------------------------------------------------------------------------------


def mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> host path of a service's bind mounts."""
    found = {}
    for volume in service["volumes"]:
        if isinstance(volume, dict):
            if volume["type"] == "bind":
                found[volume["target"]] = Path(volume["source"])
        elif str(volume).startswith(("/", ".")):
            source, target = str(volume).split(":")[:2]
            found[target] = Path(source)
    return found


def test_prometheus_gets_its_configuration_and_the_alerting_rules(rendered: dict[str, Any]) -> None:
    prometheus = rendered["services"]["prometheus"]
    mounted = mounts(prometheus)
    config = yaml.safe_load((ROOT / "ops" / "prometheus" / "prometheus.yml").read_text())

    assert mounted["/etc/prometheus/prometheus.yml"] == ROOT / "ops" / "prometheus" / "prometheus.yml"
    assert mounted["/etc/prometheus/rules"] == ROOT / "ops" / "prometheus" / "rules"
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]


def test_prometheus_scrapes_every_aperture_service_and_rabbitmq_where_they_listen(rendered: dict[str, Any]) -> None:
    services = rendered["services"]
    config = yaml.safe_load((ROOT / "ops" / "prometheus" / "prometheus.yml").read_text())
    targets = {
        job["job_name"]: {
            target: static.get("labels", {}) for static in job["static_configs"] for target in static["targets"]
        }
        for job in config["scrape_configs"]
    }

    port = services["coordinator"]["environment"]["APERTURE_API_PORT"]
    assert set(targets["aperture-coordinator"]) == {f"coordinator:{port}"}
    workers = {
        f"{stage}:{services[stage]['environment']['APERTURE_HTTP_PORT']}": {"stage": stage} for stage in STAGE_WORKERS
    }
    large_port = services["imaging-large"]["environment"]["APERTURE_HTTP_PORT"]
    workers[f"imaging-large:{large_port}"] = {"stage": "imaging"}  # a larger class of the same stage
    assert targets["aperture-worker"] == workers
    assert set(targets["rabbitmq"]) == {"rabbitmq:15692"}  # the official image enables rabbitmq_prometheus


def test_grafana_is_provisioned_from_ops_and_needs_its_admin_password(rendered: dict[str, Any]) -> None:
    grafana = rendered["services"]["grafana"]
    mounted = mounts(grafana)
    provider = yaml.safe_load(
        (ROOT / "ops" / "grafana" / "provisioning" / "dashboards" / "aperture.yml").read_text()
    )["providers"][0]

    assert mounted["/etc/grafana/provisioning"] == ROOT / "ops" / "grafana" / "provisioning"
    assert mounted[provider["options"]["path"]] == ROOT / "ops" / "grafana" / "dashboards"
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == "grafana-test-secret"
    assert grafana["depends_on"]["prometheus"]["condition"] == "service_healthy"
    home = Path(grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"])
    assert (ROOT / "ops" / "grafana" / "dashboards" / home.name).is_file()
    assert home.parent == Path(provider["options"]["path"])
