"""SRDP-style user-defined imaging requests: what an astronomer asks for, what it will cost, and what
became of each version (the HTTP bodies of /api/v1/requests)."""

from datetime import datetime
from enum import StrEnum

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, field_validator

from aperture_contracts.enums import ImagingKind, JobState, Stage
from aperture_contracts.ids import JobId, MousId
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


class RequestJobView(BaseModel):
    """One job of a version, as it stands."""

    job_id: JobId
    stage: Stage
    kind: str = Field("", description="imaging: cube, mfs or cont; previews: the kind of its image")
    target: str | None = None
    spw_id: int | None = None
    state: JobState
    reason: str
    attempts: int = Field(ge=0)
    duration_s: float | None = Field(None, description="of the attempt that succeeded")


class Progress(BaseModel):
    """How far a version is: its jobs by state. `fraction` counts ended jobs (0 to 1)."""

    total: int = Field(ge=0)
    succeeded: int = Field(ge=0)
    running: int = Field(ge=0)
    failed: int = Field(ge=0)
    cancelled: int = Field(ge=0)
    fraction: float = Field(ge=0, le=1)


class ImageCheck(BaseModel):
    """The result QA of one image: its measured rms and beam against what the data should give."""

    image: str = Field(description="the primary-beam-corrected FITS file's name")
    kind: ImagingKind
    target: str
    spw_ids: list[int]
    rms_jy: float = Field(description="measured rms away from sources (Jy/beam)")
    expected_rms_jy: float = Field(description="the theoretical sensitivity of the data at this weighting")
    rms_ratio: float
    beam_major_arcsec: float
    beam_minor_arcsec: float
    beam_ratio: float | None = Field(None, description="beam over the beam the uv coverage (and taper) should give")
    lowest_score: float | None = Field(None, ge=0, le=1, description="the image's worst QA score (ALMA scale)")
    passed: bool
    notes: list[str] = Field(default_factory=list, description="why it passed or not, one sentence per check")


class VersionView(BaseModel):
    version: int
    state: RequestState
    reason: str
    parameters: RequestCreate
    estimate: RequestEstimate
    passed_qa: bool | None = Field(None, description="None until the version has ended")
    progress: Progress
    jobs: list[RequestJobView] = Field(default_factory=list)
    qa: list[ImageCheck] = Field(default_factory=list, description="per image, once its imaging job succeeded")
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    ended_at: datetime | None = None


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


class RequestProduct(BaseModel):
    """One file a version delivered, with a time-limited download link."""

    name: str = Field(
        description="the file's path under the version's folder",
        examples=["member.uid___A001_X1_X2.NGC_1068_sci.spw25.cube.I.pbcor.fits"],
    )
    kind: str = Field(description="pbcor, image, pb, residual, mask, preview, ...")
    image_kind: ImagingKind | None = Field(None, description="the imaging kind of the image it belongs to")
    target: str | None = None
    spw_ids: list[int] = Field(default_factory=list)
    size: int = Field(ge=0)
    sha256: str
    content_type: str
    url: str = Field(description="GET it until links_expire_at; no token needed")


class ProductList(BaseModel):
    """What GET /requests/{id}/versions/{n}/products answers."""

    request_id: str
    version: int
    state: RequestState
    passed_qa: bool | None
    products: list[RequestProduct]
    links_expire_at: datetime


class Identity(BaseModel):
    """Who a bearer token names (GET /api/v1/requests/whoami): an operator sees every request."""

    user: str
    role: str = Field(examples=["user", "operator"])
