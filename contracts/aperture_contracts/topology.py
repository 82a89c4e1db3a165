"""Names of the RabbitMQ exchanges and queues: the AsyncAPI document is generated from these."""

from typing import Final

from aperture_contracts.enums import MemoryClass, Stage

JOBS_EXCHANGE: Final = "aperture.jobs"  # direct; routing key = stage
EVENTS_EXCHANGE: Final = "aperture.events"  # direct; routing key = "job"
EVENTS_QUEUE: Final = "aperture.events.coordinator"
EVENTS_ROUTING_KEY: Final = "job"
CONTROL_EXCHANGE: Final = "aperture.control"  # fanout; every worker binds an exclusive queue
DEAD_LETTER_EXCHANGE: Final = "aperture.dead"  # fanout
DEAD_LETTER_QUEUE: Final = "aperture.dead-letters"

# How often the broker may deliver one message before it is dead-lettered as poison (a message that
# keeps killing its worker). Retries of failed jobs are the coordinator's and do not count here.
DELIVERY_LIMIT: Final = 5


def job_routing_key(stage: Stage, memory_class: MemoryClass = MemoryClass.STANDARD) -> str:
    """The standard class keeps the plain stage name, so a deployment without memory classes is unchanged."""
    if memory_class is MemoryClass.STANDARD:
        return stage.value
    return f"{stage.value}.{memory_class.value}"


def job_queue(stage: Stage, memory_class: MemoryClass = MemoryClass.STANDARD) -> str:
    return f"aperture.jobs.{job_routing_key(stage, memory_class)}"
