"""The overlays (k8s/overlays/dev and k8s/overlays/prod), checked without a cluster: kubectl renders them;
their standard objects match the Kubernetes 1.30 API schemas strictly; their custom resources (KEDA,
Prometheus Operator) match the schemas of those projects' CRDs, closed to unknown fields; and the wiring
holds: KEDA reads the queues the workers consume and never stops a running job, each memory class the
coordinator uses has its workers sized for it, disruption budgets, network policies and monitors select
the pods they are about, dev runs its own servers with marked development credentials, prod runs none
and commits no credential.

Tools: `kubectl` and `kubernetes-validate` as for test_k8s.py; node with the npm packages of
tools/deploy (tools/deploy/crd-schemas.sh installs them) for the CRD schemas. A missing tool skips these
tests locally and fails them under CI=true.
"""

import base64
import copy
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from aperture_contracts import topology
from aperture_contracts.enums import MemoryClass, Stage
from aperture_coordinator.settings import CoordinatorSettings
from aperture_shared.settings import CasaSettings, CommonSettings
from jsonschema import Draft7Validator
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
    selects,
    validate_strictly,
)
from pydantic_settings import BaseSettings
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7
from settings_fields import STAGE_WORKER_SETTINGS, variable_is_read
from support.requirements import find_tool, require
from worker_memory_classes import (
    MEMORY_HEADROOM_BYTES,
    coordinator_memory_classes,
    deployed_worker,
    memory_class_problems,
)

pytestmark = pytest.mark.integration

K8S = ROOT / "k8s"
OVERLAYS = ("dev", "prod")
CRD_SCHEMA_TOOLS = ROOT / "tools" / "deploy"
CUSTOM_API_GROUPS = ("keda.sh/", "monitoring.coreos.com/")
POD_OWNERS = {"Deployment", "StatefulSet", "Job"}
MONITORING_NAMESPACE = "monitoring"
# RabbitMQ honours a queue's x-consumer-timeout from this version on (aperture_shared.messaging).
PER_QUEUE_CONSUMER_TIMEOUT_SINCE = (3, 12)
# The servers dev runs, by the Service name the services' URLs use.
DEV_SERVERS = {"postgres", "rabbitmq", "minio"}


@dataclass(frozen=True)
class PodTemplate:
    """A pod an object of the render runs: a workload's template, or the one of the Jobs a ScaledJob starts."""

    kind: str
    name: str
    template: dict[str, Any]

    @property
    def labels(self) -> dict[str, str]:
        labels: dict[str, str] = self.template["metadata"].get("labels", {})
        return labels

    @property
    def spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = self.template["spec"]
        return spec

    @property
    def container(self) -> dict[str, Any]:
        [container] = self.spec["containers"]
        return container

    @property
    def aperture_command(self) -> str | None:
        """The Aperture entry point the pod runs (aperture-coordinator, aperture-<stage>), if any."""
        command = self.container.get("command", [])
        return command[0] if command and command[0].startswith("aperture-") else None


# -- rendering and what the render holds ------------------------------------------------------------------


@pytest.fixture(scope="module")
def renders() -> dict[str, list[dict[str, Any]]]:
    return {overlay: documents(render_kustomization(K8S / "overlays" / overlay)) for overlay in OVERLAYS}


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def resources(renders: dict[str, list[dict[str, Any]]], overlay: str) -> list[dict[str, Any]]:
    return renders[overlay]


@pytest.fixture
def dev(renders: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return renders["dev"]


@pytest.fixture
def prod(renders: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return renders["prod"]


def of_kind(resources: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [resource for resource in resources if resource["kind"] == kind]


def is_custom(resource: dict[str, Any]) -> bool:
    return str(resource["apiVersion"]).startswith(CUSTOM_API_GROUPS)


def pod_templates(resources: list[dict[str, Any]]) -> list[PodTemplate]:
    templates = [
        PodTemplate(resource["kind"], resource["metadata"]["name"], resource["spec"]["template"])
        for resource in resources
        if resource["kind"] in POD_OWNERS
    ]
    templates += [
        PodTemplate("ScaledJob", resource["metadata"]["name"], resource["spec"]["jobTargetRef"]["template"])
        for resource in of_kind(resources, "ScaledJob")
    ]
    return templates


def pod_template(resources: list[dict[str, Any]], kind: str, name: str) -> PodTemplate:
    [found] = [pod for pod in pod_templates(resources) if (pod.kind, pod.name) == (kind, name)]
    return found


WorkerKey = tuple[Stage, MemoryClass]


def worker_pods(resources: list[dict[str, Any]]) -> dict[WorkerKey, PodTemplate]:
    """(stage, memory class) -> the pod that runs that worker (a Deployment's in dev, a ScaledJob's Jobs' in
    prod). Every stage has one; imaging has one per class."""
    workers: dict[WorkerKey, PodTemplate] = {}
    for pod in pod_templates(resources):
        if pod.aperture_command is None or pod.aperture_command == "aperture-coordinator":
            continue
        stage = Stage(pod.aperture_command.removeprefix("aperture-"))
        worker = deployed_worker(pod.name, stage, plain_environment(resources, pod.container), None)
        key = (stage, worker.memory_class)
        assert key not in workers, f"{pod.name} and {workers[key].name} both run the {key} worker"
        workers[key] = pod
    assert {stage for stage, _ in workers} == set(Stage)
    return workers


def settings_classes(pod: PodTemplate) -> tuple[type[BaseSettings], ...]:
    if pod.aperture_command == "aperture-coordinator":
        return (CoordinatorSettings,)
    assert pod.aperture_command is not None
    return (STAGE_WORKER_SETTINGS[pod.aperture_command.removeprefix("aperture-")], CasaSettings)


def secret_values(resources: list[dict[str, Any]], name: str) -> dict[str, str]:
    """The Secret's values where the overlay makes it (dev), else the stand-ins of a Secret made by hand."""
    generated = [
        secret for secret in of_kind(resources, "Secret") if secret["metadata"]["name"] == name
    ]
    if not generated:
        assert name == SECRET_NAME, f"the render names a Secret {name} that neither it nor k8s/README.md makes"
        return SECRET_TEST_VALUES
    [secret] = generated
    return {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}


def full_environment(resources: list[dict[str, Any]], pod: PodTemplate) -> dict[str, str]:
    """Every variable of the pod's container with its value, those from Secrets included."""
    environment = plain_environment(resources, pod.container)
    for variable, (secret, key) in secret_references(pod.container).items():
        values = secret_values(resources, secret)
        assert key in values, f"{pod.name}: the Secret {secret} has no key {key}"
        environment[variable] = values[key]
    return environment


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """No APERTURE_ variable of this process may leak into settings built by a test."""
    for name in list(os.environ):
        if name.startswith("APERTURE_"):
            monkeypatch.delenv(name)
    yield monkeypatch


# -- the CRD schemas --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CrdSchemas:
    """The JSON Schemas tools/deploy/crd-schemas.cjs prints: one per kind, and those they refer to."""

    kinds: dict[str, str]  # "apiVersion/kind" -> schema id
    registry: Registry[Any]

    def validator(self, api_version: str, kind: str) -> Draft7Validator:
        schema_id = self.kinds.get(f"{api_version}/{kind}")
        assert schema_id is not None, f"no CRD schema for {api_version} {kind}; known: {sorted(self.kinds)}"
        return Draft7Validator(self.registry.contents(schema_id), registry=self.registry)


def closed(schema: Any) -> Any:
    """The schema with every object that lists its properties closed to others (additionalProperties:
    false), as the API server's pruning and kubectl's strict field validation treat them. Objects that
    list none (free-form maps, and the CRDs' x-kubernetes-preserve-unknown-fields) stay open."""
    if isinstance(schema, list):
        return [closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {key: closed(value) for key, value in schema.items()}
    if result.get("properties") and "additionalProperties" not in result:
        result["additionalProperties"] = False
    return result


@pytest.fixture(scope="module")
def crd_schemas() -> CrdSchemas:
    node = find_tool("node", "tools/stack/install.sh --node")
    script = CRD_SCHEMA_TOOLS / "crd-schemas.cjs"
    require(
        (CRD_SCHEMA_TOOLS / "node_modules" / "@kubernetes-models").is_dir(),
        "the CRD schema packages (tools/deploy/crd-schemas.sh installs them)",
    )
    result = subprocess.run([node, str(script)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    exported = json.loads(result.stdout)
    registry: Registry[Any] = Registry().with_resources(
        (schema_id, Resource.from_contents(closed(schema), default_specification=DRAFT7))
        for schema_id, schema in exported["schemas"].items()
    )
    return CrdSchemas(kinds=exported["kinds"], registry=registry)


def with_defaults(schema: dict[str, Any], instance: Any) -> Any:
    """The object with the schema's defaults filled in, as the API server does before it validates a custom
    resource (a container port's protocol, for one, is required and defaults to TCP)."""
    if isinstance(instance, dict) and "properties" in schema:
        filled = dict(instance)
        for name, property_schema in schema["properties"].items():
            if name not in filled and "default" in property_schema:
                filled[name] = copy.deepcopy(property_schema["default"])
            if name in filled:
                filled[name] = with_defaults(property_schema, filled[name])
        return filled
    if isinstance(instance, list) and isinstance(schema.get("items"), dict):
        return [with_defaults(schema["items"], item) for item in instance]
    return instance


def schema_errors(crd_schemas: CrdSchemas, resource: dict[str, Any]) -> list[str]:
    validator = crd_schemas.validator(resource["apiVersion"], resource["kind"])
    defaulted = with_defaults(validator.schema, resource)
    return sorted(
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in validator.iter_errors(defaulted)
    )


# -- rendering and the schemas ----------------------------------------------------------------------------


def test_every_object_is_in_the_namespace_and_labelled_part_of_aperture(resources: list[dict[str, Any]]) -> None:
    label, value = PART_OF
    for resource in resources:
        metadata = resource["metadata"]
        assert metadata["labels"][label] == value, metadata["name"]
        if resource["kind"] != "Namespace":
            assert metadata["namespace"] == NAMESPACE, metadata["name"]
    for pod in pod_templates(resources):
        assert pod.labels[label] == value, pod.name


def test_the_standard_objects_match_the_kubernetes_api_schemas_strictly(
    resources: list[dict[str, Any]], tmp_path: Path
) -> None:
    standard = [resource for resource in resources if not is_custom(resource)]

    result = validate_strictly(standard, tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    # kubernetes-validate passes a kind it has no schema for with a warning: every one must be known.
    assert "Couldn't find schema" not in result.stdout + result.stderr


def test_the_jobs_keda_starts_match_the_kubernetes_job_schema_strictly(
    prod: list[dict[str, Any]], tmp_path: Path
) -> None:
    jobs = [
        {
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": scaled_job["metadata"]["name"], "namespace": NAMESPACE},
            "spec": scaled_job["spec"]["jobTargetRef"],
        }
        for scaled_job in of_kind(prod, "ScaledJob")
    ]
    assert len(jobs) == len(worker_pods(prod))

    result = validate_strictly(jobs, tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr


def test_every_custom_resource_matches_its_crd_schema(
    resources: list[dict[str, Any]], overlay: str, crd_schemas: CrdSchemas
) -> None:
    custom = [resource for resource in resources if is_custom(resource)]

    errors = {f"{r['kind']}/{r['metadata']['name']}": schema_errors(crd_schemas, r) for r in custom}

    assert {name: problems for name, problems in errors.items() if problems} == {}
    # dev needs neither KEDA nor the Prometheus Operator in its cluster; prod uses both.
    kinds = {resource["kind"] for resource in custom}
    expected = set() if overlay == "dev" else {"ScaledJob", "TriggerAuthentication", "ServiceMonitor", "PodMonitor"}
    assert kinds == expected


@pytest.mark.parametrize(
    ("kind", "path", "field"),
    [
        ("ScaledJob", ("spec",), "maxReplicas"),
        ("ScaledJob", ("spec", "triggers", 0), "authRef"),
        ("ScaledJob", ("spec", "jobTargetRef", "template", "spec", "containers", 0), "commands"),
        ("ServiceMonitor", ("spec", "endpoints", 0), "portName"),
        ("PodMonitor", ("spec",), "podSelector"),
        ("TriggerAuthentication", ("spec", "secretTargetRef", 0), "secret"),
    ],
)
def test_the_crd_schemas_reject_an_unknown_field(
    prod: list[dict[str, Any]], crd_schemas: CrdSchemas, kind: str, path: tuple[str | int, ...], field: str
) -> None:
    """What makes the check above strict: a misspelt field is an error, not silently dropped."""
    resource = copy.deepcopy(of_kind(prod, kind)[0])
    target: Any = resource
    for step in path:
        target = target[step]
    target[field] = "x"

    errors = schema_errors(crd_schemas, resource)

    assert any(field in error for error in errors), errors


# -- settings and credentials -----------------------------------------------------------------------------


def test_every_aperture_variable_is_a_setting_the_service_reads(resources: list[dict[str, Any]]) -> None:
    """pydantic-settings ignores unknown variables, so a misspelt one would silently do nothing."""
    unread = {
        pod.name: sorted(
            variable
            for variable in set(plain_environment(resources, pod.container)) | set(secret_references(pod.container))
            if variable.startswith("APERTURE_") and not variable_is_read(variable, *settings_classes(pod))
        )
        for pod in pod_templates(resources)
        if pod.aperture_command is not None
    }

    assert {name: variables for name, variables in unread.items() if variables} == {}


def test_the_settings_accept_every_value_in_production_mode(
    resources: list[dict[str, Any]], clean_environment: pytest.MonkeyPatch
) -> None:
    for pod in pod_templates(resources):
        if pod.aperture_command is None:
            continue
        for name in [name for name in os.environ if name.startswith("APERTURE_")]:
            clean_environment.delenv(name)
        for variable, value in full_environment(resources, pod).items():
            clean_environment.setenv(variable, value)

        built = [settings() for settings in settings_classes(pod)]

        [common] = [settings for settings in built if isinstance(settings, CommonSettings)]
        assert common.production is True, pod.name
        if pod.container.get("ports"):
            # What `serve` and the workers do at start (migrate touches the database only): exit when a
            # credential is still the development default.
            common.check_secrets()


def test_credentials_come_only_from_the_secret(resources: list[dict[str, Any]], overlay: str) -> None:
    for pod in pod_templates(resources):
        environment = plain_environment(resources, pod.container)
        looks_secret = [name for name in environment if re.search(r"PASSWORD|SECRET|TOKEN|_URL$", name)]
        assert looks_secret == [], f"{pod.name} sets credentials in plain text: {looks_secret}"
        for secret, _ in secret_references(pod.container).values():
            assert secret.startswith(SECRET_NAME), pod.name
    used = {key for pod in pod_templates(resources) for _, key in secret_references(pod.container).values()}
    if overlay == "prod":
        # Made by hand: exactly the keys k8s/README.md's command gives.
        assert used == documented_secret_keys()
    else:
        assert used == set(secret_values(resources, generated_secret_name(resources)))


def generated_secret_name(resources: list[dict[str, Any]]) -> str:
    [secret] = of_kind(resources, "Secret")
    name: str = secret["metadata"]["name"]
    return name


def test_prod_commits_no_credential(prod: list[dict[str, Any]]) -> None:
    kustomization = yaml.safe_load((K8S / "overlays" / "prod" / "kustomization.yaml").read_text())

    assert of_kind(prod, "Secret") == []
    assert "secretGenerator" not in kustomization
    # No URL with a password anywhere: environment, settings, trigger metadata.
    text = yaml.safe_dump_all(prod)
    assert re.findall(r"\w+://[^/\s:@]+:[^/\s@]+@", text) == []
    for scaled_job in of_kind(prod, "ScaledJob"):
        for trigger in scaled_job["spec"]["triggers"]:
            assert not {"host", "password", "username"} & set(trigger["metadata"]), scaled_job["metadata"]["name"]


def test_dev_credentials_are_marked_development_only_and_agree_with_each_other(dev: list[dict[str, Any]]) -> None:
    values = secret_values(dev, generated_secret_name(dev))
    amqp = urlsplit(values["amqp-url"])
    database = urlsplit(values["database-url"])
    passwords = {
        "rabbitmq-password": values["rabbitmq-password"], "postgres-password": values["postgres-password"],
        "s3-secret-key": values["s3-secret-key"], "in amqp-url": amqp.password, "in database-url": database.password,
    }

    assert {key: value for key, value in passwords.items() if "dev-only" not in str(value)} == {}
    assert "DEVELOPMENT-ONLY CREDENTIALS" in (K8S / "overlays" / "dev" / "kustomization.yaml").read_text()
    # The servers are set up with the passwords the services connect with.
    assert amqp.password == values["rabbitmq-password"]
    assert database.password == values["postgres-password"]
    minio = full_environment(dev, pod_template(dev, "StatefulSet", "minio"))
    assert minio["MINIO_ROOT_USER"] == values["s3-access-key"]
    assert minio["MINIO_ROOT_PASSWORD"] == values["s3-secret-key"]
    rabbitmq = full_environment(dev, pod_template(dev, "StatefulSet", "rabbitmq"))
    assert (rabbitmq["RABBITMQ_DEFAULT_USER"], rabbitmq["RABBITMQ_DEFAULT_PASS"]) == (amqp.username, amqp.password)
    postgres = full_environment(dev, pod_template(dev, "StatefulSet", "postgres"))
    assert (postgres["POSTGRES_USER"], postgres["POSTGRES_DB"]) == (database.username, database.path.lstrip("/"))


# -- the servers ------------------------------------------------------------------------------------------


def server_addresses(resources: list[dict[str, Any]], pod: PodTemplate) -> set[tuple[str, int]]:
    """(host, port) of the servers the Aperture service in this pod connects to."""
    environment = full_environment(resources, pod)
    addresses = set()
    for variable in ("APERTURE_DATABASE_URL", "APERTURE_AMQP_URL"):
        if variable in environment:
            url = urlsplit(environment[variable])
            assert url.hostname is not None and url.port is not None, f"{variable} names no host:port"
            addresses.add((url.hostname, url.port))
    if "APERTURE_S3_ACCESS_KEY" in environment:
        host, port = environment["APERTURE_S3_ENDPOINT"].rsplit(":", 1)
        addresses.add((host, int(port)))
    return addresses


def served_by(resources: list[dict[str, Any]], host: str, port: int) -> tuple[PodTemplate, int]:
    """The pod behind a Service of this name and the container port its `port` leads to."""
    service = find(resources, "Service", host)
    [service_port] = [entry for entry in service["spec"]["ports"] if entry["port"] == port]
    selector = {"matchLabels": service["spec"]["selector"]}
    [pod] = [pod for pod in pod_templates(resources) if selects(selector, pod.labels)]
    return pod, container_port(pod.container, service_port.get("targetPort", port))


def test_dev_runs_the_three_servers_as_stateful_sets_and_prod_none(
    dev: list[dict[str, Any]], prod: list[dict[str, Any]]
) -> None:
    stateful_sets = {resource["metadata"]["name"]: resource for resource in of_kind(dev, "StatefulSet")}

    assert set(stateful_sets) == DEV_SERVERS
    assert of_kind(prod, "StatefulSet") == []
    for name, stateful_set in stateful_sets.items():
        spec = stateful_set["spec"]
        assert spec["replicas"] == 1
        mounted = {mount["name"] for mount in pod_template(dev, "StatefulSet", name).container["volumeMounts"]}
        claims = {claim["metadata"]["name"] for claim in spec["volumeClaimTemplates"]}
        assert claims and claims <= mounted, f"{name} keeps its data on a claim"
        # The governing Service is headless and selects the set's pods.
        service = find(dev, "Service", spec["serviceName"])
        assert service["spec"]["clusterIP"] == "None"
        assert selects({"matchLabels": service["spec"]["selector"]}, spec["template"]["metadata"]["labels"])


def test_dev_servers_listen_where_the_services_connect(dev: list[dict[str, Any]]) -> None:
    clients = [pod for pod in pod_templates(dev) if pod.aperture_command is not None]
    used = {address for pod in clients for address in server_addresses(dev, pod)}

    assert {host for host, _ in used} == DEV_SERVERS
    for host, port in used:
        pod, target = served_by(dev, host, port)
        assert pod.kind == "StatefulSet" and pod.name == host
        assert target == port


def test_dev_rabbitmq_honours_the_queues_own_consumer_timeout(dev: list[dict[str, Any]]) -> None:
    """Jobs are acknowledged only when done; before 3.12 the broker would cut them off after 30 minutes."""
    image = pod_template(dev, "StatefulSet", "rabbitmq").container["image"]
    match = re.fullmatch(r"rabbitmq:(\d+)\.(\d+)[\w.-]*", image)

    assert match, f"unexpected RabbitMQ image {image}"
    assert (int(match.group(1)), int(match.group(2))) >= PER_QUEUE_CONSUMER_TIMEOUT_SINCE
    assert "x-consumer-timeout" in (K8S / "overlays" / "dev" / "rabbitmq.yaml").read_text()


# -- autoscaling ------------------------------------------------------------------------------------------


def test_keda_reads_the_queues_the_workers_consume(prod: list[dict[str, Any]]) -> None:
    scaled_jobs = {resource["metadata"]["name"]: resource for resource in of_kind(prod, "ScaledJob")}
    queues = set()
    workers = worker_pods(prod)
    for (stage, memory_class), pod in workers.items():
        assert pod.kind == "ScaledJob"
        [trigger] = scaled_jobs[pod.name]["spec"]["triggers"]
        assert trigger["type"] == "rabbitmq"
        metadata = dict(trigger["metadata"])
        queue = metadata.pop("queueName")
        # The queue the worker consumes: its stage's, for its class (APERTURE_MEMORY_CLASS).
        assert queue == topology.job_queue(stage, memory_class)
        # The job messages waiting (not those running Jobs hold), one Job per message.
        assert metadata == {"protocol": "amqp", "mode": "QueueLength", "value": "1"}
        queues.add(queue)
        # KEDA connects with the URL the worker itself uses.
        authentication = find(prod, "TriggerAuthentication", trigger["authenticationRef"]["name"])
        assert authentication["spec"]["secretTargetRef"] == [
            {"parameter": "host", "name": SECRET_NAME, "key": secret_references(pod.container)["APERTURE_AMQP_URL"][1]}
        ]

    assert queues == {topology.job_queue(stage, memory_class) for stage, memory_class in workers}
    assert {topology.job_queue(stage) for stage in Stage} <= queues


def test_the_large_imaging_jobs_have_a_scaled_job_of_their_own(prod: list[dict[str, Any]]) -> None:
    """The coordinator sends imaging jobs that need more memory to their own queue; KEDA must start large
    pods for exactly those."""
    workers = worker_pods(prod)
    standard, large = workers[(Stage.IMAGING, MemoryClass.STANDARD)], workers[(Stage.IMAGING, MemoryClass.LARGE)]
    [trigger] = find(prod, "ScaledJob", large.name)["spec"]["triggers"]
    memory = {
        pod.name: quantity_bytes(pod.container["resources"]["limits"]["memory"]) for pod in (standard, large)
    }

    assert large.name != standard.name
    assert trigger["metadata"]["queueName"] == topology.job_queue(Stage.IMAGING, MemoryClass.LARGE)
    assert memory[large.name] > memory[standard.name]


def test_no_scale_down_can_stop_a_running_job(resources: list[dict[str, Any]], overlay: str) -> None:
    """A stopped worker gives its job back and hours of CASA are re-run: only whole Jobs may scale."""
    assert of_kind(resources, "HorizontalPodAutoscaler") == []
    assert of_kind(resources, "ScaledObject") == []
    if overlay == "dev":
        assert {pod.kind for pod in worker_pods(resources).values()} == {"Deployment"}  # fixed replicas
        return
    for pod in worker_pods(resources).values():
        assert pod.kind == "ScaledJob", f"{pod.name} is scaled some other way"
        spec = find(resources, "ScaledJob", pod.name)["spec"]
        job = spec["jobTargetRef"]
        # An update of the ScaledJob leaves its running Jobs alone (the default rollout deletes them).
        assert spec["rollout"]["strategy"] == "gradual"
        # Nothing ends a Job but its worker: no deadline, one pod, no retry of the pod.
        assert "activeDeadlineSeconds" not in job
        assert (job["parallelism"], job["completions"], job["backoffLimit"]) == (1, 1, 0)
        assert pod.spec["restartPolicy"] == "Never"
        # Node autoscalers leave the node of a running worker alone.
        annotations = pod.template["metadata"]["annotations"]
        assert annotations["cluster-autoscaler.kubernetes.io/safe-to-evict"] == "false"
        assert annotations["karpenter.sh/do-not-disrupt"] == "true"
        # Waiting messages (not running ones) make Jobs, less those whose worker is not consuming yet.
        assert spec["scalingStrategy"]["strategy"] == "accurate"
        assert spec["scalingStrategy"]["pendingPodConditions"] == ["Ready"]
        assert pod.container["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_a_jobs_worker_takes_one_message_and_exits_when_done(prod: list[dict[str, Any]]) -> None:
    """Else a Job's worker would consume forever, and the Job never end."""
    for (stage, _), pod in worker_pods(prod).items():
        environment = plain_environment(prod, pod.container)
        assert environment["APERTURE_EXIT_AFTER_JOBS"] == "1"
        assert int(environment["APERTURE_EXIT_AFTER_IDLE_S"]) > 0
        assert int(environment.get("APERTURE_PREFETCH", "1")) == 1
        for variable in ("APERTURE_EXIT_AFTER_JOBS", "APERTURE_EXIT_AFTER_IDLE_S"):
            assert variable_is_read(variable, STAGE_WORKER_SETTINGS[stage]), (
                f"the {stage} worker does not read {variable}: it has no one-job mode yet "
                "(aperture_shared.settings.WorkerSettings)"
            )


def test_the_scaled_jobs_are_generated_from_the_base_workers(
    dev: list[dict[str, Any]], prod: list[dict[str, Any]]
) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "deploy" / "worker_scaled_jobs.py"), "--check"],
        capture_output=True, text=True, timeout=60, check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    # The Job's pod is the base's worker pod (dev runs the base's Deployments).
    base_pods = worker_pods(dev)
    assert set(worker_pods(prod)) == set(base_pods)
    for stage, job_pod in worker_pods(prod).items():
        base_pod = base_pods[stage]
        for field in ("command", "ports", "volumeMounts", "startupProbe", "livenessProbe", "readinessProbe"):
            assert job_pod.container[field] == base_pod.container[field], (stage, field)
        assert job_pod.container["securityContext"] == base_pod.container["securityContext"], stage
        for field in ("volumes", "securityContext", "terminationGracePeriodSeconds", "enableServiceLinks"):
            assert job_pod.spec[field] == base_pod.spec[field], (stage, field)
        assert job_pod.container["image"].split("/")[-1].split(":")[0] == base_pod.container["image"].split(":")[0]


def test_every_memory_class_of_the_coordinator_has_workers_sized_for_it(resources: list[dict[str, Any]]) -> None:
    """In prod the coordinator's figures must follow the sizes tools/deploy/worker_scaled_jobs.py gives."""
    coordinator = pod_template(resources, "Deployment", "aperture-coordinator")
    classes = coordinator_memory_classes(plain_environment(resources, coordinator.container))
    workers = [
        deployed_worker(
            pod.name, stage, plain_environment(resources, pod.container),
            quantity_bytes(pod.container["resources"]["limits"]["memory"]),
        )
        for (stage, _), pod in worker_pods(resources).items()
    ]

    assert set(classes) == set(MemoryClass)
    assert memory_class_problems(classes, workers) == []


def test_the_casa_watchdog_fires_before_the_kernel_oom_killer(resources: list[dict[str, Any]], overlay: str) -> None:
    for stage, pod in worker_pods(resources).items():
        casa_limit_bytes = int(plain_environment(resources, pod.container)["APERTURE_CASA_MEMORY_LIMIT_MB"]) * 1024**2
        memory = {kind: quantity_bytes(amounts["memory"]) for kind, amounts in pod.container["resources"].items()}
        assert casa_limit_bytes + MEMORY_HEADROOM_BYTES <= memory["limits"], stage
        if overlay == "prod":
            # What one job may use is reserved for it; dev overcommits on purpose.
            assert memory["requests"] >= casa_limit_bytes, stage


# -- disruption budgets, network policies, monitors -------------------------------------------------------


def test_disruption_budgets_select_existing_pods_and_keep_the_one_coordinator(
    resources: list[dict[str, Any]], overlay: str
) -> None:
    budgets = of_kind(resources, "PodDisruptionBudget")
    for budget in budgets:
        selected = [pod for pod in pod_templates(resources) if selects(budget["spec"]["selector"], pod.labels)]
        assert selected, f"{budget['metadata']['name']} selects no pod"
        # maxUnavailable needs a controller with a scale: Deployments and StatefulSets, not Jobs.
        assert {pod.kind for pod in selected} <= {"Deployment", "StatefulSet"}
    if overlay == "dev":
        assert budgets == []  # a development cluster is drained freely
        return
    coordinator = pod_template(resources, "Deployment", "aperture-coordinator")
    [budget] = [b for b in budgets if selects(b["spec"]["selector"], coordinator.labels)]
    assert budget["spec"]["maxUnavailable"] == 0
    assert find(resources, "Deployment", "aperture-coordinator")["spec"]["replicas"] == 1


def ingress_allowed(
    resources: list[dict[str, Any]], pod: PodTemplate, port: int, *,
    from_pod: PodTemplate | None = None, from_namespace: str | None = None,
) -> bool:
    """Whether the network policies let a connection to this pod's port in: from a pod of the namespace,
    from any pod of another namespace, or (neither given) from anywhere."""
    for policy in of_kind(resources, "NetworkPolicy"):
        spec = policy["spec"]
        if "Ingress" not in spec["policyTypes"] or not selects(spec["podSelector"], pod.labels):
            continue
        for rule in spec.get("ingress", []):
            if "ports" in rule and port not in [entry["port"] for entry in rule["ports"]]:
                continue
            if "from" not in rule:
                return True
            for peer in rule["from"]:
                if from_pod is not None and set(peer) == {"podSelector"}:
                    if selects(peer["podSelector"], from_pod.labels):
                        return True
                if from_namespace is not None and set(peer) == {"namespaceSelector"}:
                    if selects(peer["namespaceSelector"], {"kubernetes.io/metadata.name": from_namespace}):
                        return True
    return False


def test_network_policies_select_existing_pods_and_deny_ingress_by_default(resources: list[dict[str, Any]]) -> None:
    pods = pod_templates(resources)
    for policy in of_kind(resources, "NetworkPolicy"):
        spec = policy["spec"]
        assert any(selects(spec["podSelector"], pod.labels) for pod in pods), f"{policy['metadata']['name']}"
        for rule in spec.get("ingress", []):
            for peer in rule.get("from", []):
                if "podSelector" in peer:
                    assert any(selects(peer["podSelector"], pod.labels) for pod in pods), policy["metadata"]["name"]
    deny_all = [
        p for p in of_kind(resources, "NetworkPolicy")
        if p["spec"]["policyTypes"] == ["Ingress"] and not p["spec"].get("ingress")
    ]
    for pod in pods:
        assert any(selects(policy["spec"]["podSelector"], pod.labels) for policy in deny_all), pod.name


def test_ingress_is_open_to_the_api_and_to_prometheus_only(resources: list[dict[str, Any]]) -> None:
    for pod in pod_templates(resources):
        annotations = pod.template["metadata"].get("annotations", {})
        if pod.aperture_command is None or "prometheus.io/port" not in annotations:
            continue  # the servers (their policies: the test below) and the migration Job, which listens nowhere
        metrics_port = int(annotations["prometheus.io/port"])
        assert ingress_allowed(resources, pod, metrics_port, from_namespace=MONITORING_NAMESPACE), pod.name
        is_api = pod.aperture_command == "aperture-coordinator"
        # The API is the front door; a worker's operations port is nobody's but Prometheus's.
        assert ingress_allowed(resources, pod, metrics_port) is is_api, pod.name
        assert not ingress_allowed(resources, pod, metrics_port, from_namespace="default") or is_api, pod.name


def test_dev_servers_take_connections_from_their_clients_only(dev: list[dict[str, Any]]) -> None:
    clients: dict[str, set[str]] = {server: set() for server in DEV_SERVERS}
    for client in pod_templates(dev):
        if client.aperture_command is None:
            continue
        for host, port in server_addresses(dev, client):
            server, target = served_by(dev, host, port)
            assert ingress_allowed(dev, server, target, from_pod=client), f"{client.name} -> {host}:{port}"
            clients[host].add(client.name)
    for server_name, names in clients.items():
        server = pod_template(dev, "StatefulSet", server_name)
        for port in [entry["containerPort"] for entry in server.container["ports"]]:
            assert not ingress_allowed(dev, server, port), f"{server_name}:{port} is open to anyone"
        others = [pod for pod in pod_templates(dev) if pod.aperture_command and pod.name not in names]
        for other in others:
            ports = [entry["containerPort"] for entry in server.container["ports"]]
            assert not any(ingress_allowed(dev, server, port, from_pod=other) for port in ports), (
                f"{other.name} may reach {server_name}, which it does not use"
            )


def test_the_service_monitor_scrapes_the_coordinator_metrics(prod: list[dict[str, Any]]) -> None:
    [monitor] = of_kind(prod, "ServiceMonitor")
    spec = monitor["spec"]
    services = [s for s in of_kind(prod, "Service") if selects(spec["selector"], s["metadata"]["labels"])]
    coordinator = pod_template(prod, "Deployment", "aperture-coordinator")
    annotations = coordinator.template["metadata"]["annotations"]

    assert [service["metadata"]["name"] for service in services] == ["aperture-coordinator"]
    assert NAMESPACE in spec["namespaceSelector"]["matchNames"]
    [endpoint] = spec["endpoints"]
    [service_port] = [p for p in services[0]["spec"]["ports"] if p["name"] == endpoint["port"]]
    assert container_port(coordinator.container, service_port["targetPort"]) == int(annotations["prometheus.io/port"])
    assert endpoint["path"] == annotations["prometheus.io/path"] == "/metrics"


def test_the_pod_monitor_scrapes_every_worker(prod: list[dict[str, Any]]) -> None:
    [monitor] = of_kind(prod, "PodMonitor")
    spec = monitor["spec"]
    selected = {pod.name for pod in pod_templates(prod) if selects(spec["selector"], pod.labels)}

    assert selected == {pod.name for pod in worker_pods(prod).values()}
    assert NAMESPACE in spec["namespaceSelector"]["matchNames"]
    [endpoint] = spec["podMetricsEndpoints"]
    for pod in worker_pods(prod).values():
        annotations = pod.template["metadata"]["annotations"]
        assert container_port(pod.container, endpoint["port"]) == int(annotations["prometheus.io/port"])
        assert endpoint["path"] == annotations["prometheus.io/path"] == "/metrics"


# -- images and documentation -----------------------------------------------------------------------------


def test_prod_runs_one_release_from_a_registry(prod: list[dict[str, Any]]) -> None:
    images = {pod.container["image"] for pod in pod_templates(prod)}
    tags = set()
    for image in images:
        match = re.fullmatch(r"([\w.-]+\.[\w.-]+(?::\d+)?)/([\w./-]+):([\w.-]+)", image)
        assert match, f"{image} names no registry host and tag"
        tags.add(match.group(3))

    assert len(tags) == 1 and not tags & {"dev", "latest"}, tags


def test_the_readme_names_every_file_of_k8s() -> None:
    readme = README.read_text()
    files = [path for path in K8S.rglob("*") if path.is_file() and path != README]

    assert files
    assert sorted(str(p.relative_to(K8S)) for p in files if p.name not in readme) == []
