"""The Kubernetes base (k8s/base), checked without a cluster: kubectl renders it, the render matches the
Kubernetes 1.30 API schemas strictly (unknown fields too), and its wiring agrees with the code it runs:
every APERTURE_ variable is a setting the service reads and accepts, probes and scrape annotations hit
the port the service listens on, credentials come only from the documented Secret, images and commands
are the ones docker-compose builds and runs, what the containers write lies on writable volumes, and the
workers of each memory class the coordinator uses are there and sized for it.

Tools: `kubectl` (Debian 12: `apt-get install -y kubernetes-client`, kubectl 1.20, whose built-in
Kustomize renders this base) and `kubernetes-validate` (PyPI). A missing tool skips these tests locally
and fails them under CI=true.
"""

import copy
import os
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml
from aperture_contracts.enums import MemoryClass, Stage
from aperture_coordinator.main import cli as coordinator_cli
from aperture_coordinator.settings import CoordinatorSettings
from aperture_shared.settings import CasaSettings, CommonSettings
from k8s_manifests import (
    NAMESPACE,
    PART_OF,
    README,
    ROOT,
    SECRET_NAME,
    SECRET_TEST_VALUES,
    container_port,
    documented_secret_keys,
    documents,
    find,
    plain_environment,
    quantity_bytes,
    render_kustomization,
    secret_references,
    validate_strictly,
)
from pydantic_settings import BaseSettings
from settings_fields import STAGE_WORKER_SETTINGS, variable_is_read
from worker_memory_classes import (
    MEMORY_HEADROOM_BYTES,
    coordinator_memory_classes,
    deployed_worker,
    memory_class_problems,
)

pytestmark = pytest.mark.integration

BASE = ROOT / "k8s" / "base"
CASA_LIMIT = "APERTURE_CASA_MEMORY_LIMIT_MB"


@dataclass(frozen=True)
class Workload:
    """One workload of the base and what the code says about it."""

    kind: str
    name: str
    compose_service: str  # the docker-compose service that runs the same image and command
    package: str  # services/<package>: the pyproject that declares its entry point
    settings: tuple[type[BaseSettings], ...]
    credentials: frozenset[str]  # the variables that must come from the Secret
    listen: tuple[str, str] | None  # (host, port) settings of its HTTP endpoints


SERVICE_CREDENTIALS = frozenset({"APERTURE_AMQP_URL", "APERTURE_S3_ACCESS_KEY", "APERTURE_S3_SECRET_KEY"})
WORKLOADS = {
    workload.name: workload
    for workload in (
        Workload(
            kind="Deployment", name="aperture-coordinator", compose_service="coordinator", package="coordinator",
            settings=(CoordinatorSettings,),
            credentials=SERVICE_CREDENTIALS | {"APERTURE_DATABASE_URL", "APERTURE_API_TOKENS"},
            listen=("APERTURE_API_HOST", "APERTURE_API_PORT"),
        ),
        Workload(
            kind="Job", name="aperture-migrate", compose_service="migrate", package="coordinator",
            settings=(CoordinatorSettings,), credentials=frozenset({"APERTURE_DATABASE_URL"}), listen=None,
        ),
        *(
            Workload(
                kind="Deployment", name=f"aperture-{stage}", compose_service=stage, package=stage,
                settings=(settings, CasaSettings), credentials=SERVICE_CREDENTIALS,
                listen=("APERTURE_HTTP_HOST", "APERTURE_HTTP_PORT"),
            )
            for stage, settings in STAGE_WORKER_SETTINGS.items()
        ),
        # The large-memory imaging worker: imaging's image and command, its own compose service.
        Workload(
            kind="Deployment", name="aperture-imaging-large", compose_service="imaging-large", package="imaging",
            settings=(STAGE_WORKER_SETTINGS[Stage.IMAGING], CasaSettings), credentials=SERVICE_CREDENTIALS,
            listen=("APERTURE_HTTP_HOST", "APERTURE_HTTP_PORT"),
        ),
    )
}
WORKERS = [*(f"aperture-{stage}" for stage in STAGE_WORKER_SETTINGS), "aperture-imaging-large"]
SERVICES = [name for name, workload in WORKLOADS.items() if workload.listen is not None]



@pytest.fixture(scope="module")
def resources() -> list[dict[str, Any]]:
    return documents(render_kustomization(BASE))


def pod_spec(resources: list[dict[str, Any]], workload: Workload) -> dict[str, Any]:
    spec: dict[str, Any] = find(resources, workload.kind, workload.name)["spec"]["template"]["spec"]
    return spec


def only_container(resources: list[dict[str, Any]], workload: Workload) -> dict[str, Any]:
    [container] = pod_spec(resources, workload)["containers"]
    return container


def duration_s(duration: str) -> int:
    """A compose duration such as 2m, 90s or 1m30s, in seconds."""
    parts = re.findall(r"(\d+)([hms])", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, f"unsupported duration {duration!r}"
    return sum(int(number) * {"h": 3600, "m": 60, "s": 1}[unit] for number, unit in parts)


def compose_services() -> dict[str, Any]:
    services: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    return services


def image_user_id() -> int:
    match = re.search(r"useradd [^\n]*--uid (\d+)", (ROOT / "docker" / "base.Dockerfile").read_text())
    assert match, "docker/base.Dockerfile no longer creates its user with --uid"
    return int(match.group(1))


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """No APERTURE_ variable of this process may leak into settings built by a test."""
    for name in list(os.environ):
        if name.startswith("APERTURE_"):
            monkeypatch.delenv(name)
    yield monkeypatch


# -- the render and the schemas ---------------------------------------------------------------------------


def test_the_base_renders_the_services_the_migration_and_no_secret(resources: list[dict[str, Any]]) -> None:
    kinds = sorted((r["kind"], r["metadata"]["name"]) for r in resources if r["kind"] != "ConfigMap")

    assert kinds == sorted([
        ("Deployment", "aperture-coordinator"),
        *(("Deployment", worker) for worker in WORKERS),
        ("Job", "aperture-migrate"),
        ("Namespace", NAMESPACE),
        ("NetworkPolicy", "aperture-coordinator-api"),
        ("NetworkPolicy", "aperture-default-deny-ingress"),
        ("NetworkPolicy", "aperture-metrics-scrape"),
        ("Service", "aperture-coordinator"),
    ])
    # The Secret is created by hand (k8s/README.md); its values must never be in the repository.
    assert not [r for r in resources if r["kind"] == "Secret"]


def test_the_render_matches_the_kubernetes_api_schemas_strictly(
    resources: list[dict[str, Any]], tmp_path: Path
) -> None:
    result = validate_strictly(resources, tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "Couldn't find schema" not in result.stdout + result.stderr


def test_every_object_is_in_the_namespace_and_labelled_part_of_aperture(resources: list[dict[str, Any]]) -> None:
    label, value = PART_OF
    for resource in resources:
        metadata = resource["metadata"]
        assert metadata["labels"][label] == value, metadata["name"]
        if resource["kind"] != "Namespace":
            assert metadata["namespace"] == NAMESPACE, metadata["name"]
    for workload in WORKLOADS.values():
        template = find(resources, workload.kind, workload.name)["spec"]["template"]
        assert template["metadata"]["labels"][label] == value, workload.name


# -- settings and credentials -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_every_aperture_variable_of_a_workload_is_a_setting_it_reads(
    resources: list[dict[str, Any]], name: str
) -> None:
    """pydantic-settings ignores unknown variables, so a misspelt one would silently do nothing."""
    workload = WORKLOADS[name]
    container = only_container(resources, workload)
    variables = set(plain_environment(resources, container)) | set(secret_references(container))
    aperture_variables = {variable for variable in variables if variable.startswith("APERTURE_")}

    assert aperture_variables
    assert sorted(v for v in aperture_variables if not variable_is_read(v, *workload.settings)) == []


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_the_settings_accept_every_value_and_run_in_production_mode(
    resources: list[dict[str, Any]], name: str, clean_environment: pytest.MonkeyPatch
) -> None:
    workload = WORKLOADS[name]
    container = only_container(resources, workload)
    for variable, value in plain_environment(resources, container).items():
        clean_environment.setenv(variable, value)
    for variable, (_, key) in secret_references(container).items():
        assert key in SECRET_TEST_VALUES, f"Secret key {key!r} has no stand-in value in SECRET_TEST_VALUES"
        clean_environment.setenv(variable, SECRET_TEST_VALUES[key])

    built = [settings() for settings in workload.settings]

    [common] = [settings for settings in built if isinstance(settings, CommonSettings)]
    assert common.production is True
    if name in SERVICES:
        # What `serve` and the worker do at start (migrate touches the database only): exit when a
        # credential is still the development default.
        common.check_secrets()


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_credentials_come_only_from_the_uncommitted_secret(resources: list[dict[str, Any]], name: str) -> None:
    workload = WORKLOADS[name]
    container = only_container(resources, workload)
    references = secret_references(container)

    assert set(references) == workload.credentials
    assert {secret for secret, _ in references.values()} == {SECRET_NAME}
    assert not set(plain_environment(resources, container)) & (SERVICE_CREDENTIALS | {"APERTURE_DATABASE_URL"})


def test_the_readme_documents_exactly_the_secret_keys_the_workloads_use(resources: list[dict[str, Any]]) -> None:
    used = {
        key
        for workload in WORKLOADS.values()
        for _, key in secret_references(only_container(resources, workload)).values()
    }

    assert used == documented_secret_keys()
    assert f"create secret generic {SECRET_NAME}" in README.read_text()


# -- ports, probes, scraping ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SERVICES)
def test_probes_reach_the_port_the_service_listens_on_from_outside_the_pod(
    resources: list[dict[str, Any]], name: str
) -> None:
    workload = WORKLOADS[name]
    assert workload.listen is not None
    host_variable, port_variable = workload.listen
    container = only_container(resources, workload)
    environment = plain_environment(resources, container)
    probes = {kind: container[kind]["httpGet"] for kind in ("startupProbe", "livenessProbe", "readinessProbe")}

    # kubelet probes the pod's IP: a service bound to 127.0.0.1 would fail every probe.
    assert environment[host_variable] == "0.0.0.0"
    assert {kind: probe["path"] for kind, probe in probes.items()} == {
        "startupProbe": "/healthz", "livenessProbe": "/healthz", "readinessProbe": "/readyz",
    }
    for probe in probes.values():
        assert container_port(container, probe["port"]) == int(environment[port_variable])


@pytest.mark.parametrize("name", SERVICES)
def test_prometheus_is_told_to_scrape_the_metrics_port(resources: list[dict[str, Any]], name: str) -> None:
    workload = WORKLOADS[name]
    assert workload.listen is not None
    template = find(resources, workload.kind, workload.name)["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    port = plain_environment(resources, only_container(resources, workload))[workload.listen[1]]

    assert annotations == {"prometheus.io/scrape": "true", "prometheus.io/port": port, "prometheus.io/path": "/metrics"}


def test_the_service_routes_port_8000_to_the_coordinator_api_only(resources: list[dict[str, Any]]) -> None:
    service = find(resources, "Service", "aperture-coordinator")["spec"]
    [port] = service["ports"]
    selector = service["selector"].items()
    selected = [
        workload.name
        for workload in WORKLOADS.values()
        if selector <= find(resources, workload.kind, workload.name)["spec"]["template"]["metadata"]["labels"].items()
    ]

    assert service["type"] == "ClusterIP"
    assert selected == ["aperture-coordinator"]
    assert port["port"] == 8000
    assert container_port(only_container(resources, WORKLOADS["aperture-coordinator"]), port["targetPort"]) == 8000


# -- images and commands ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_images_are_the_ones_docker_compose_builds(resources: list[dict[str, Any]], name: str) -> None:
    workload = WORKLOADS[name]
    compose_image = compose_services()[workload.compose_service]["image"]
    match = re.fullmatch(r"([\w.-]+):\$\{APERTURE_IMAGE_TAG:-([\w.-]+)\}", compose_image)
    assert match, f"compose names {workload.compose_service}'s image in an unexpected form: {compose_image}"

    assert only_container(resources, workload)["image"] == f"{match.group(1)}:{match.group(2)}"


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_commands_are_entry_points_the_service_declares(resources: list[dict[str, Any]], name: str) -> None:
    workload = WORKLOADS[name]
    command = only_container(resources, workload)["command"]
    scripts = tomllib.loads((ROOT / "services" / workload.package / "pyproject.toml").read_text())["project"][
        "scripts"
    ]

    assert command[0] in scripts
    if workload.package == "coordinator":
        subcommands = {
            info.name or info.callback.__name__.replace("_", "-")
            for info in coordinator_cli.registered_commands
            if info.callback is not None
        }
        assert command[1:] and command[1] in subcommands
    compose_command = compose_services()[workload.compose_service].get("command")
    if compose_command is not None:
        assert command == compose_command


# -- how the pods run -------------------------------------------------------------------------------------


def test_the_coordinator_is_one_replica_replaced_never_run_twice(resources: list[dict[str, Any]]) -> None:
    spec = find(resources, "Deployment", "aperture-coordinator")["spec"]

    assert spec["replicas"] == 1
    # A rolling update would run the old and the new coordinator side by side: two writers.
    assert spec["strategy"] == {"type": "Recreate"}


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_pods_run_as_the_image_user_on_a_read_only_root_without_service_links_or_token(
    resources: list[dict[str, Any]], name: str
) -> None:
    workload = WORKLOADS[name]
    spec = pod_spec(resources, workload)
    container = only_container(resources, workload)

    assert spec["securityContext"]["runAsUser"] == image_user_id()
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    # Service links would add APERTURE_<SERVICE>_PORT=tcp://... variables, which the settings read.
    assert spec["enableServiceLinks"] is False
    assert spec["automountServiceAccountToken"] is False


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_everywhere_a_container_writes_is_a_size_limited_empty_dir(
    resources: list[dict[str, Any]], name: str
) -> None:
    workload = WORKLOADS[name]
    spec = pod_spec(resources, workload)
    container = only_container(resources, workload)
    environment = plain_environment(resources, container)
    empty_dirs = {volume["name"]: volume["emptyDir"] for volume in spec["volumes"] if "emptyDir" in volume}
    writable = {PurePosixPath(m["mountPath"]) for m in container["volumeMounts"] if m["name"] in empty_dirs}
    written = {PurePosixPath("/tmp")} | {
        PurePosixPath(environment[variable])
        for variable in ("APERTURE_UPLOAD_DIR", "APERTURE_CASA_SCRATCH_ROOT", "MPLCONFIGDIR")
        if variable in environment
    }

    assert all(empty_dir.get("sizeLimit") for empty_dir in empty_dirs.values())
    outside = [str(path) for path in written if not any(path.is_relative_to(mount) for mount in writable)]
    assert outside == []


@pytest.mark.parametrize("worker", WORKERS)
def test_a_workers_scratch_root_is_a_volume_of_its_own(resources: list[dict[str, Any]], worker: str) -> None:
    """Not a folder of /tmp: its size limit is the one sized for the MSs of a job."""
    container = only_container(resources, WORKLOADS[worker])
    scratch_root = plain_environment(resources, container)["APERTURE_CASA_SCRATCH_ROOT"]

    assert scratch_root in {mount["mountPath"] for mount in container["volumeMounts"]}


@pytest.mark.parametrize("worker", WORKERS)
def test_the_casa_watchdog_fires_before_the_kernel_oom_killer(resources: list[dict[str, Any]], worker: str) -> None:
    container = only_container(resources, WORKLOADS[worker])
    casa_limit_bytes = int(plain_environment(resources, container)["APERTURE_CASA_MEMORY_LIMIT_MB"]) * 1024**2
    memory = {kind: quantity_bytes(amounts["memory"]) for kind, amounts in container["resources"].items()}

    assert casa_limit_bytes + MEMORY_HEADROOM_BYTES <= memory["limits"]
    # What one job may use is reserved for it when the pod is scheduled.
    assert memory["requests"] >= casa_limit_bytes


def test_every_memory_class_of_the_coordinator_has_workers_sized_for_it(resources: list[dict[str, Any]]) -> None:
    coordinator = only_container(resources, WORKLOADS["aperture-coordinator"])
    classes = coordinator_memory_classes(plain_environment(resources, coordinator))
    workers = []
    for name in WORKERS:
        container = only_container(resources, WORKLOADS[name])
        stage = Stage(container["command"][0].removeprefix("aperture-"))
        limit = quantity_bytes(container["resources"]["limits"]["memory"])
        workers.append(deployed_worker(name, stage, plain_environment(resources, container), limit))

    assert set(classes) == set(MemoryClass)
    assert memory_class_problems(classes, workers) == []


def test_the_large_imaging_worker_is_the_imaging_pod_with_more_memory(resources: list[dict[str, Any]]) -> None:
    """The two files are kept by hand: everything but names, class, memory and scratch room must agree."""

    def shape(name: str) -> dict[str, Any]:
        deployment = copy.deepcopy(find(resources, "Deployment", name))
        for labels in (
            deployment["metadata"]["labels"],
            deployment["spec"]["selector"]["matchLabels"],
            deployment["spec"]["template"]["metadata"]["labels"],
        ):
            labels.pop("app.kubernetes.io/name")
        del deployment["metadata"]["name"]
        spec = deployment["spec"]["template"]["spec"]
        [container] = spec["containers"]
        container["env"] = [v for v in container["env"] if v["name"] not in {"APERTURE_MEMORY_CLASS", CASA_LIMIT}]
        del container["resources"]
        [scratch] = [volume for volume in spec["volumes"] if volume["name"] == "scratch"]
        del scratch["emptyDir"]["sizeLimit"]
        return deployment

    standard = only_container(resources, WORKLOADS["aperture-imaging"])
    large = only_container(resources, WORKLOADS["aperture-imaging-large"])
    memory = {
        name: {kind: quantity_bytes(amounts["memory"]) for kind, amounts in container["resources"].items()}
        for name, container in (("standard", standard), ("large", large))
    }

    assert shape("aperture-imaging-large") == shape("aperture-imaging")
    assert plain_environment(resources, large)["APERTURE_MEMORY_CLASS"] == MemoryClass.LARGE
    assert "APERTURE_MEMORY_CLASS" not in plain_environment(resources, standard)  # standard, the default
    assert memory["large"]["limits"] > memory["standard"]["limits"]
    assert memory["large"]["requests"] > memory["standard"]["requests"]


@pytest.mark.parametrize("worker", WORKERS)
def test_a_stopped_worker_has_at_least_the_grace_compose_gives_it(resources: list[dict[str, Any]], worker: str) -> None:
    grace_s = pod_spec(resources, WORKLOADS[worker])["terminationGracePeriodSeconds"]

    assert grace_s >= duration_s(compose_services()[WORKLOADS[worker].compose_service]["stop_grace_period"])


def test_the_migration_job_retries_and_cleans_up_after_itself(resources: list[dict[str, Any]]) -> None:
    job = find(resources, "Job", "aperture-migrate")["spec"]

    assert job["template"]["spec"]["restartPolicy"] in {"Never", "OnFailure"}
    assert job["backoffLimit"] >= 1
    assert job["ttlSecondsAfterFinished"] > 0
