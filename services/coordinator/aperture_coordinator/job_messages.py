"""The job message a dispatched job sends to its stage's work queue.

Each stage that has a worker has a message type in the contracts (aperture_contracts.jobs) and a
builder here; a stage without one cannot be enabled (the settings refuse it). Intermediate outputs go
under a prefix that is the same for every attempt of a job, so a retry replaces what a failed attempt
left; products go under the MOUS's products prefix.
"""

from collections.abc import Callable, Mapping
from datetime import datetime

from aperture_contracts.enums import Stage
from aperture_contracts.ids import mous_key
from aperture_contracts.jobs import IngestJob, JobEnvelope
from aperture_contracts.storage import ObjectRef

from aperture_coordinator.models import Job, Mous


def work_prefix(mous_id: str, job_id: str) -> str:
    return f"mous/{mous_key(mous_id)}/work/{job_id}/"


def input_prefix(mous_id: str) -> str:
    return f"mous/{mous_key(mous_id)}/input/"


def products_prefix(mous_id: str) -> str:
    return f"mous/{mous_key(mous_id)}/products/"


def package_ref(mous: Mous) -> ObjectRef:
    return ObjectRef(
        key=mous.package_key, sha256=mous.package_sha256, size=mous.package_size,
        content_type=mous.package_content_type,
    )


def _ingest_message(mous: Mous, job: Job, time_limit_s: float, now: datetime) -> IngestJob:
    return IngestJob(
        mous_id=mous.id, job_id=job.job_id, attempt=job.attempt,
        output_prefix=work_prefix(mous.id, job.job_id), products_prefix=products_prefix(mous.id),
        time_limit_s=time_limit_s, created_at=now,
        package=package_ref(mous), package_name=mous.package_name,
    )


MessageBuilder = Callable[[Mous, Job, float, datetime], JobEnvelope]
"""Makes the message of a job's current attempt from the MOUS, the job, its time limit and the time."""

MESSAGE_BUILDERS: Mapping[Stage, MessageBuilder] = {Stage.INGEST: _ingest_message}
STAGES_WITH_MESSAGES = frozenset(MESSAGE_BUILDERS)
