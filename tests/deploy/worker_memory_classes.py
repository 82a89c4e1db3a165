"""Whether a deployment's workers agree with the coordinator's worker memory classes, for the tests of
docker-compose.yml, k8s/base and the overlays.

The coordinator reads APERTURE_MEMORY_CLASSES_MB (class -> CASA memory, MiB): it sends a job to the
smallest class whose figure fits the job's measured memory, and an out-of-memory job once more to the next
larger class. That only works when each class it names has workers that consume the class's queue
(APERTURE_MEMORY_CLASS) and whose CASA watchdog (APERTURE_CASA_MEMORY_LIMIT_MB) stops at that figure, under
the container's own memory limit. The figures are those of the stages deployed in more than one class
(imaging): the other stages run one standard worker each, sized for their own work.
"""

import json
import re
from dataclasses import dataclass

from aperture_contracts.enums import MemoryClass, Stage
from aperture_coordinator.settings import CoordinatorSettings
from aperture_shared.settings import CasaSettings, WorkerSettings
from pydantic import TypeAdapter

# Between CASA's memory limit (the worker's watchdog) and the container's: the worker process itself,
# page cache, and what CASA allocates between two samples of the watchdog (as in test_k8s.py).
MEMORY_HEADROOM_BYTES = 1024**3
COMPOSE_MEMORY_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


@dataclass(frozen=True)
class DeployedWorker:
    """A stage worker as a deployment runs it: a compose service, a Deployment, a ScaledJob's Jobs."""

    name: str
    stage: Stage
    memory_class: MemoryClass
    casa_memory_limit_mb: int
    container_memory_limit_bytes: int | None  # None: the container may use what the host has


def deployed_worker(
    name: str, stage: Stage, environment: dict[str, str], memory_limit_bytes: int | None
) -> DeployedWorker:
    """The worker's class and CASA limit as it reads them from its environment (the settings' defaults where
    a variable is unset)."""
    memory_class = environment.get("APERTURE_MEMORY_CLASS")
    casa_limit = environment.get("APERTURE_CASA_MEMORY_LIMIT_MB")
    return DeployedWorker(
        name=name,
        stage=stage,
        memory_class=MemoryClass(memory_class) if memory_class else WorkerSettings.model_fields["memory_class"].default,
        casa_memory_limit_mb=int(casa_limit) if casa_limit else CasaSettings.model_fields["memory_limit_mb"].default,
        container_memory_limit_bytes=memory_limit_bytes,
    )


def coordinator_memory_classes(environment: dict[str, str]) -> dict[MemoryClass, int]:
    """APERTURE_MEMORY_CLASSES_MB as the coordinator reads it: its setting's type, from the JSON value, or
    the setting's default when the variable is unset."""
    field = CoordinatorSettings.model_fields["memory_classes_mb"]
    value = environment.get("APERTURE_MEMORY_CLASSES_MB")
    adapter: TypeAdapter[dict[MemoryClass, int]] = TypeAdapter(field.annotation)
    if value is None:
        return adapter.validate_python(field.get_default(call_default_factory=True))
    return adapter.validate_python(json.loads(value))


def compose_memory_bytes(value: int | str) -> int:
    """A compose memory amount (mem_limit): bytes, or a number with b, k, m or g (docker-compose 1 keeps
    the text, 2 renders bytes)."""
    match = re.fullmatch(r"(\d+)([bkmg]?)b?", str(value).strip().lower())
    assert match, f"unsupported compose memory amount {value!r}"
    return int(match.group(1)) * COMPOSE_MEMORY_UNITS[match.group(2)]


def memory_class_problems(classes: dict[MemoryClass, int], workers: list[DeployedWorker]) -> list[str]:
    """What is wrong between the coordinator's classes and the workers deployed (empty: nothing)."""
    problems = []
    figures = [classes[memory_class] for memory_class in MemoryClass if memory_class in classes]
    if figures != sorted(set(figures)):
        problems.append(f"the classes' memory must grow with the class ({classes}): else no class is larger")
    for memory_class in classes:
        if not any(worker.memory_class == memory_class for worker in workers):
            problems.append(f"no worker takes the {memory_class.value} class's jobs: they would wait for ever")
    classed_stages = {
        stage for stage in Stage if len({w.memory_class for w in workers if w.stage == stage}) > 1
    } | {worker.stage for worker in workers if worker.memory_class != MemoryClass.STANDARD}
    for worker in workers:
        if worker.memory_class not in classes:
            problems.append(f"{worker.name} takes {worker.memory_class.value} jobs, a class the coordinator never uses")
            continue
        if worker.stage not in classed_stages:
            continue
        if worker.casa_memory_limit_mb != classes[worker.memory_class]:
            problems.append(
                f"{worker.name}: CASA limit {worker.casa_memory_limit_mb} MiB, but the coordinator counts "
                f"{classes[worker.memory_class]} MiB for the {worker.memory_class.value} class"
            )
        limit = worker.container_memory_limit_bytes
        if limit is None or worker.casa_memory_limit_mb * 1024**2 + MEMORY_HEADROOM_BYTES > limit:
            problems.append(
                f"{worker.name}: CASA limit {worker.casa_memory_limit_mb} MiB is not at least "
                f"{MEMORY_HEADROOM_BYTES // 1024**2} MiB under the container's memory limit ({limit} bytes)"
            )
    return problems
