"""Reading rendered Kustomize output, for the tests of k8s/ (test_k8s.py: the base; test_k8s_overlays.py:
the overlays): rendering with kubectl, strict validation against the Kubernetes API schemas, finding
objects, what a container's environment holds, and which pods a label selector picks."""

import re
import subprocess
from pathlib import Path
from typing import Any

import yaml
from support.requirements import find_tool

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "k8s" / "README.md"
KUBERNETES_VERSION = "1.30.0"
NAMESPACE = "aperture"
PART_OF = ("app.kubernetes.io/part-of", "aperture")
SECRET_NAME = "aperture-secrets"
# Stand-ins for the Secret's values: real-looking and not the development defaults, which production
# mode refuses.
SECRET_TEST_VALUES = {
    "amqp-url": "amqp://aperture:rabbit-test-secret@rabbitmq:5672/",
    "s3-access-key": "aperture",
    "s3-secret-key": "minio-test-secret",
    "api-tokens": '{"test-token": {"user": "alice", "role": "user"}}',
    "database-url": "postgresql+psycopg://aperture:postgres-test-secret@postgres:5432/aperture",
}
MEMORY_UNITS = {"": 1, "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4, "k": 1000, "M": 1000**2, "G": 1000**3}


def render_kustomization(directory: Path) -> str:
    """`kubectl kustomize` of a directory (Debian's kubectl 1.20 or a newer one: both must render it)."""
    kubectl = find_tool("kubectl", "apt-get install -y kubernetes-client")
    result = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def documents(text: str) -> list[dict[str, Any]]:
    return [document for document in yaml.safe_load_all(text) if document]


def validate_strictly(resources: list[dict[str, Any]], directory: Path) -> subprocess.CompletedProcess[str]:
    """kubernetes-validate --strict (unknown fields are errors too) on these objects."""
    validator = find_tool("kubernetes-validate", "pip install kubernetes-validate (the dev group)")
    manifest = directory / "objects.yaml"
    manifest.write_text(yaml.safe_dump_all(resources))
    return subprocess.run(
        [validator, "--strict", "--kubernetes-version", KUBERNETES_VERSION, str(manifest)],
        capture_output=True, text=True, timeout=120, check=False,
    )


def find(resources: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [r for r in resources if r["kind"] == kind and r["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]


def plain_environment(resources: list[dict[str, Any]], container: dict[str, Any]) -> dict[str, str]:
    """The variables with values in the manifests: the ConfigMaps the container takes whole (each must
    be in the render) and its own `value` entries, which win as they do in a pod."""
    environment: dict[str, str] = {}
    for source in container.get("envFrom", []):
        assert set(source) == {"configMapRef"}, f"unexpected envFrom source {source}"
        environment.update(find(resources, "ConfigMap", source["configMapRef"]["name"])["data"])
    for variable in container.get("env", []):
        if "value" in variable:
            environment[variable["name"]] = variable["value"]
    return environment


def secret_references(container: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Variable -> (Secret name, key) for every variable taken from a Secret."""
    return {
        variable["name"]: (variable["valueFrom"]["secretKeyRef"]["name"], variable["valueFrom"]["secretKeyRef"]["key"])
        for variable in container.get("env", [])
        if "secretKeyRef" in variable.get("valueFrom", {})
    }


def container_port(container: dict[str, Any], port: int | str) -> int:
    """The containerPort a probe or Service names (by number or by name); fails if none is declared."""
    declared = {entry.get("name"): entry["containerPort"] for entry in container.get("ports", [])}
    if isinstance(port, int):
        assert port in declared.values(), f"port {port} is not declared by {container['name']}: {declared}"
        return port
    assert port in declared, f"no port named {port!r} in {container['name']}: {declared}"
    return declared[port]


def quantity_bytes(quantity: str) -> int:
    match = re.fullmatch(r"(\d+)([KMGT]i|[kMG])?", quantity)
    assert match, f"unsupported quantity {quantity!r}"
    return int(match.group(1)) * MEMORY_UNITS[match.group(2) or ""]


def documented_secret_keys() -> set[str]:
    """The keys k8s/README.md's `kubectl create secret` command gives."""
    return set(re.findall(r"--from-literal=([a-z0-9-]+)=", README.read_text()))


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a Kubernetes label selector (matchLabels and matchExpressions) picks these labels; the empty
    selector picks everything."""
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True
