"""Completion events: what a worker tells the coordinator about a job attempt."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from aperture_contracts.continuum import ContinuumRanges
from aperture_contracts.enums import ErrorClass, ImagingKind, Stage
from aperture_contracts.flux import FluxModel
from aperture_contracts.ids import JobId, MousId
from aperture_contracts.imaging import ImageProduct
from aperture_contracts.metadata import MousMetadata
from aperture_contracts.products import ExportResult, FootprintResult, PreviewsResult
from aperture_contracts.qa import QAScore
from aperture_contracts.selfcal import SelfCalibrationRecord
from aperture_contracts.storage import ObjectRef
from aperture_contracts.version import SchemaVersion


class EventEnvelope(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: SchemaVersion = "1.0"
    mous_id: MousId
    job_id: JobId
    attempt: int = Field(ge=1)
    stage: Stage
    worker: str = Field(description="host and pid of the worker", examples=["ingest-7f9c:4121"])
    at: datetime


class JobStarted(EventEnvelope):
    """A worker took the job. `delivery` counts redeliveries of the same attempt (after a worker died)."""

    event_type: Literal["job.started"] = "job.started"
    redelivered: bool = False


class CasaCall(BaseModel):
    """One CASA task or tool call with its full parameters, so a person can re-run it by hand."""

    task: str = Field(examples=["applycal"])
    parameters: dict[str, object]
    started_at: datetime
    duration_s: float


class IngestResult(BaseModel):
    result_type: Literal["ingest"] = "ingest"
    metadata: MousMetadata
    measurement_sets: list[ObjectRef] = Field(description="one archive object per (restored) MS")
    report: ObjectRef = Field(description="the ingest report (JSON), a product of the MOUS")
    restored_tables: list[str] = Field(default_factory=list)
    operator_cont_dat: ObjectRef | None = Field(
        None, description="a cont.dat the package carried at its root: an operator's edited continuum ranges, "
        "which take precedence over what findcont finds where they cover a target and spw"
    )
    operator_flux_csv: ObjectRef | None = Field(None, description="the flux.csv the package carried at its root")
    flux_models: list[FluxModel] = Field(
        default_factory=list,
        description="the flux calibrators' flux densities read from the package's flux.csv, for calibration",
    )


class CalibrationMode(StrEnum):
    RESTORED = "restored"  # calibrated at ingest from the package's tables: passed through
    CALIBRATED = "calibrated"  # calibrated here from the calibrators in the data
    ALREADY_CALIBRATED = "already_calibrated"  # delivered calibrated (no calibrator intents needed)
    UNCALIBRATED = "uncalibrated"  # cannot be calibrated (e.g. no calibrators): reported, never hidden


class CalibrationResult(BaseModel):
    result_type: Literal["calibration"] = "calibration"
    mode: CalibrationMode
    flux_scale_known: bool
    measurement_sets: list[ObjectRef] = Field(description="MSs whose DATA column holds the calibrated data")
    tables: list[ObjectRef] = Field(default_factory=list, description="calibration tables made here")
    summary: str = Field(description="what was done, or why not, for a person")
    self_calibration: list[SelfCalibrationRecord] = Field(
        default_factory=list,
        description="per MS and science target: whether self-calibration was attempted, each round and what "
        "was kept (its tables are among `tables`); empty when self-calibration is switched off",
    )


class FindcontResult(BaseModel):
    result_type: Literal["findcont"] = "findcont"
    continuum: ContinuumRanges
    cont_dat: ObjectRef = Field(description="cont.dat (ALMA format) for this target and spw")
    plot: ObjectRef | None = Field(None, description="PNG of the spectrum with the chosen ranges")


class ImagingResult(BaseModel):
    result_type: Literal["imaging"] = "imaging"
    kind: ImagingKind
    target: str
    spw_ids: list[int]
    images: list[ImageProduct] = Field(default_factory=list, description="empty for continuum subtraction")
    measurement_sets: list[ObjectRef] = Field(
        default_factory=list, description="continuum subtraction: the continuum-subtracted MSs"
    )


StageResult = Annotated[
    IngestResult | CalibrationResult | FindcontResult | ImagingResult | PreviewsResult | FootprintResult
    | ExportResult,
    Field(discriminator="result_type"),
]


# What the run ledger keeps of every attempt besides its times and outcome.
PEAK_MEMORY = "the largest resident memory (MB) of the job's CASA processes; None when it ran no CASA step"
SOFTWARE = "the worker's Aperture version (aperture-shared), so that a campaign can tell the pipelines apart"


class JobSucceeded(EventEnvelope):
    event_type: Literal["job.succeeded"] = "job.succeeded"
    duration_s: float
    outputs: list[ObjectRef]
    result: StageResult
    qa: list[QAScore] = Field(default_factory=list)
    casa_calls: list[CasaCall] = Field(default_factory=list)
    log: ObjectRef | None = Field(None, description="the job's captured CASA log")
    peak_memory_mb: float | None = Field(None, ge=0, description=PEAK_MEMORY)
    software_version: str = Field("", description=SOFTWARE)


class JobFailed(EventEnvelope):
    event_type: Literal["job.failed"] = "job.failed"
    duration_s: float
    error_class: ErrorClass
    message: str = Field(description="what is wrong and what to do, for a person")
    detail: str = Field("", description="technical detail: the exception, the tail of the CASA log")
    log: ObjectRef | None = None
    peak_memory_mb: float | None = Field(None, ge=0, description=PEAK_MEMORY)
    software_version: str = Field("", description=SOFTWARE)


JobEvent = Annotated[JobStarted | JobSucceeded | JobFailed, Field(discriminator="event_type")]


class CancelJobs(BaseModel):
    """Broadcast to every worker: stop these jobs if you are running them."""

    model_config = ConfigDict(extra="forbid")

    schema_version: SchemaVersion = "1.0"
    message_type: Literal["control.cancel"] = "control.cancel"
    mous_id: MousId
    job_ids: list[JobId]
    reason: str
