"""HTTP bodies of the coordinator's API (`/api/v1`)."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from aperture_contracts.enums import ErrorClass, JobState, MousState, Stage
from aperture_contracts.ids import JobId, MousId
from aperture_contracts.metadata import MousMetadata
from aperture_contracts.qa import QAScore
from aperture_contracts.storage import ObjectRef


class SubmitFromStorage(BaseModel):
    """Submit an MS package that is already in the object store."""

    model_config = ConfigDict(extra="forbid")

    object_key: str = Field(min_length=1, examples=["incoming/uid___A001_X2fa_X2dd.ms.tar"])
    mous_uid: str | None = Field(None, description="archive uid; overrides what the package names")
    rerun: bool = Field(False, description="re-process an MOUS that was submitted before")


class AttemptView(BaseModel):
    attempt: int
    worker: str | None
    started_at: datetime | None
    ended_at: datetime | None
    deliveries: int = Field(description="how often the broker delivered this attempt (>1 after a worker died)")
    outcome: JobState | None
    error_class: ErrorClass | None
    error_message: str | None


class JobView(BaseModel):
    job_id: JobId
    stage: Stage
    kind: str = Field("", description="e.g. cube, mfs, cont, contsub for imaging jobs")
    target: str | None
    spw_id: int | None
    state: JobState
    reason: str = Field("", description="why it is in this state, for a person")
    depends_on: list[JobId]
    attempts: list[AttemptView]


class ProductView(BaseModel):
    name: str
    object: ObjectRef
    download_url: str | None = Field(None, description="time-limited link")


class MousSummary(BaseModel):
    mous_id: MousId
    state: MousState
    reason: str
    run: int = Field(description="1, plus one per re-run")
    submitted_at: datetime
    updated_at: datetime
    package_name: str


class MousDetail(MousSummary):
    metadata: MousMetadata | None
    jobs: list[JobView]
    errors: list[str] = Field(description="every failed attempt, newest first, as a sentence each")
    qa: list[QAScore]
    products: list[ProductView]


class MousList(BaseModel):
    items: list[MousSummary]
    total: int


class Health(BaseModel):
    status: str = Field(examples=["ok"])
    service: str
    checks: dict[str, str] = Field(default_factory=dict)


class Problem(BaseModel):
    """An error body: what is wrong and what to do."""

    detail: str
    errors: list[dict[str, object]] = Field(default_factory=list, description="per-field errors")
