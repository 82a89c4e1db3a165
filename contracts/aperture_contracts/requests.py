"""SRDP-style user-defined imaging requests: what an astronomer asks for, what it will cost, and what
became of each version (the HTTP bodies of /api/v1/requests)."""

from datetime import datetime
from enum import StrEnum

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, field_validator

from aperture_contracts.ids import MousId
from aperture_contracts.imaging import SpectralAxis


class RequestState(StrEnum):
    """A request version's life. Terminal: succeeded, failed, cancelled."""

    QUEUED = "queued"  # accepted; its jobs wait for workers
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (RequestState.SUCCEEDED, RequestState.FAILED, RequestState.CANCELLED)


class CubeRequest(BaseModel):
    """One line cube: the spw it comes from and its spectral axis (see aperture_contracts.imaging)."""

    model_config = ConfigDict(extra="forbid")

    spw_id: int = Field(ge=0)
    spectral_axis: SpectralAxis


class RequestCreate(BaseModel):
    """What an astronomer asks for. Continuum images (per spw and aggregate) are always made too."""

    model_config = ConfigDict(extra="forbid")

    mous_id: MousId = Field(description="an MOUS the archive has processed (its state is completed)")
    cubes: list[CubeRequest] = Field(default_factory=list, max_length=32)
    robust: float | None = Field(None, ge=-2, le=2, description="Briggs robust; default the pipeline's 0.5")
    target_resolution_arcsec: float | None = Field(
        None, gt=0, le=3600, description="a uv taper to about this beam; default: the data's own resolution"
    )
    field_size_arcsec: float | None = Field(
        None, gt=0, le=36000, description="image side; default: the primary beam down to the imaging limit"
    )
    webhook_url: AnyHttpUrl | None = Field(None, description="POSTed a RequestView when a version ends")
    notify_email: str | None = Field(
        None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
        description="mailed when a version ends (if SMTP is configured)",
    )

    @field_validator("cubes")
    @classmethod
    def _distinct_cubes(cls, cubes: list[CubeRequest]) -> list[CubeRequest]:
        spws = [cube.spw_id for cube in cubes]
        if len(set(spws)) != len(spws):
            raise ValueError("each spw may be asked for once; put the lines of one spw in one cube")
        return cubes


class RequestEstimate(BaseModel):
    """What a request will cost, before it runs (`dry_run`, and stored with every version)."""

    product_bytes: int = Field(ge=0, description="all FITS products, uncorrected and corrected images and PBs")
    largest_cube_bytes: int = Field(ge=0)
    images: int = Field(ge=0)
    run_time_s: float = Field(ge=0, description="from the measured history of similar jobs on this system")
    run_time_basis: str = Field(description="what the run time was estimated from")
    mitigation: list[str] = Field(default_factory=list, description="what the size limits would change")
    within_quota: bool


class VersionView(BaseModel):
    version: int
    state: RequestState
    reason: str
    parameters: RequestCreate
    estimate: RequestEstimate
    passed_qa: bool | None = Field(None, description="None until the version has ended")
    created_at: datetime
    updated_at: datetime


class RequestView(BaseModel):
    request_id: str
    owner: str
    mous_id: MousId
    created_at: datetime
    versions: list[VersionView]


class RequestList(BaseModel):
    requests: list[RequestView]
    total: int
    offset: int
    limit: int


class DryRun(BaseModel):
    """What POST /requests?dry_run=true answers: the request as it would run, and its estimate."""

    parameters: RequestCreate
    estimate: RequestEstimate
