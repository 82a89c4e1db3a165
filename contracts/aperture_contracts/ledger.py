"""The run ledger (the HTTP bodies of /api/v1/ledger, an operator's business): every attempt of every job
of every MOUS, with who ran it, when, for how long, its peak memory, its inputs, the Aperture version, the
outcome and, for a failure, its error class, message and log.

An attempt is one dispatch of a job; a retried job has several. A worker that died mid-attempt makes the
broker deliver the same attempt again, which is still one entry (the latest delivery's worker and start).
"""

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field, JsonValue

from aperture_contracts.enums import ErrorClass, MemoryClass, Stage


class AttemptOutcome(StrEnum):
    """How an attempt ended (the end states of a job); an attempt still queued or running has none."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SUPERSEDED = "superseded"  # the MOUS was re-run before the attempt ended


class LedgerEntry(BaseModel):
    mous_id: str = Field(examples=["uid://A001/X2fa/X2dd"])
    run: int = Field(ge=1, description="the MOUS run the job belongs to")
    job_id: str = Field(examples=["r1.imaging.cube.ngc_1068.spw25"])
    stage: Stage
    kind: str = Field("", description="imaging kind (mfs, cont, cube, ...); for previews and footprint their image's")
    target: str | None = None
    spw_id: int | None = None
    attempt: int = Field(ge=1, description="1 for the first dispatch, +1 per retry")
    worker: str | None = Field(None, description="host:pid of the latest delivery; None before one started")
    dispatched_at: datetime
    started_at: datetime | None = None
    ended_at: datetime | None = None
    duration_s: float | None = Field(None, description="ended_at - started_at, when both are known")
    peak_memory_mb: float | None = Field(None, description="the largest resident memory of its CASA steps")
    software_version: str = Field("", description="the worker's Aperture version; empty before it reported")
    memory_class: MemoryClass = Field(MemoryClass.STANDARD, description="the size of worker it was sent to")
    outcome: AttemptOutcome | None = Field(None, description="None while the attempt is queued or running")
    error_class: ErrorClass | None = None
    message: str | None = Field(None, description="a failed attempt's sentence for a person")
    log_key: str | None = Field(None, description="the attempt's CASA log in the object store")
    campaign_id: str | None = Field(
        None, description="the campaign that started the MOUS's current run, when the job is of that run"
    )
    request: str | None = Field(None, description="the imaging request, when the job is one of its versions'")
    inputs: dict[str, JsonValue] = Field(
        default_factory=dict, description="the job's parameters beyond its target and spw"
    )


class LedgerPage(BaseModel):
    """Entries matching a filter, newest dispatch first."""

    entries: list[LedgerEntry]
    total: int = Field(ge=0, description="entries matching the filter, on every page")
    offset: int = Field(ge=0)
    limit: int = Field(ge=1)


class StageMemory(BaseModel):
    """Peak memory of one stage's attempts that reported it (those that ran CASA)."""

    stage: Stage
    attempts: int = Field(ge=1, description="attempts with a figure")
    p50_mb: float
    p95_mb: float
    max_mb: float


class LedgerSummary(BaseModel):
    """The attempts matching a filter, counted, and their memory per stage."""

    attempts: int = Field(ge=0)
    by_outcome: dict[AttemptOutcome, int] = Field(description="ended attempts by outcome (outcomes with none left out)")
    unfinished: int = Field(ge=0, description="attempts queued or running")
    by_error_class: dict[ErrorClass, int] = Field(description="failed attempts by class, most frequent first")
    peak_memory: list[StageMemory] = Field(description="per stage, in pipeline order; stages without figures left out")
    peak_memory_limit: int = Field(ge=1, description="the percentiles use at most this many figures, the newest")
    peak_memory_truncated: bool = Field(description="more attempts had a figure than the limit")
