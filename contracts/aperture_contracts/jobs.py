"""Job messages: what the coordinator asks a worker to do.

A job message names what to read and where to write; workers never touch the database.
"""

from datetime import datetime
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from aperture_contracts.continuum import ContinuumRanges
from aperture_contracts.enums import ImagingKind, JobState, Stage
from aperture_contracts.events import CasaCall, StageResult
from aperture_contracts.flux import FluxModel
from aperture_contracts.ids import JobId, MousId
from aperture_contracts.imaging import (
    ChannelChunk,
    ImageProduct,
    ImagingOverrides,
    ProductSizeLimits,
    SpectralAxis,
)
from aperture_contracts.metadata import MousMetadata
from aperture_contracts.qa import QAScore
from aperture_contracts.storage import ObjectRef
from aperture_contracts.version import SchemaVersion


class JobEnvelope(BaseModel):
    """Fields every job message carries."""

    model_config = ConfigDict(extra="forbid")

    schema_version: SchemaVersion = "1.0"
    mous_id: MousId
    job_id: JobId
    attempt: int = Field(ge=1, description="1 for the first dispatch; each retry adds one")
    stage: Stage
    output_prefix: str = Field(
        description="where the job writes its intermediate outputs; deterministic per job, so a re-run "
        "overwrites rather than duplicates",
        examples=["mous/uid___A001_X2fa_X2dd/work/r1.ingest/"],
    )
    products_prefix: str = Field(
        description="where the job writes products of the MOUS (what is exported and downloadable)",
        examples=["mous/uid___A001_X2fa_X2dd/products/"],
    )
    time_limit_s: float = Field(gt=0, description="wall-clock limit for the job's CASA work")
    created_at: datetime


class IngestJob(JobEnvelope):
    """Check, describe and (when it carries calibration tables) restore an MS package."""

    message_type: Literal["ingest.job"] = "ingest.job"
    stage: Literal[Stage.INGEST] = Stage.INGEST
    package: ObjectRef
    package_name: str = Field(description="the name it was submitted under", examples=["X2dd.ms.tar.gz"])


class CalibrationJob(JobEnvelope):
    """Calibrate the ingested MSs, or record that they arrived calibrated (the restore path)."""

    message_type: Literal["calibration.job"] = "calibration.job"
    stage: Literal[Stage.CALIBRATION] = Stage.CALIBRATION
    measurement_sets: list[ObjectRef] = Field(min_length=1, description="what ingest stored, one per MS")
    metadata: MousMetadata
    flux_models: list[FluxModel] = Field(
        default_factory=list,
        description="flux densities of flux calibrators that are neither solar-system objects nor in CASA's "
        "catalogues (e.g. from the ALMA calibrator catalogue); without one the flux scale is relative",
    )


class FindcontJob(JobEnvelope):
    """Find the continuum (line-free) frequency ranges of one target in one spw."""

    message_type: Literal["findcont.job"] = "findcont.job"
    stage: Literal[Stage.FINDCONT] = Stage.FINDCONT
    target: str
    spw_id: int = Field(ge=0)
    measurement_sets: list[ObjectRef] = Field(min_length=1, description="calibrated MSs (DATA is calibrated)")
    metadata: MousMetadata
    operator_cont_dat: ObjectRef | None = Field(
        None, description="an edited cont.dat supplied for the MOUS; it takes precedence where it covers "
        "this target and spw"
    )


class ImagingJob(JobEnvelope):
    """One imaging-stage job: continuum subtraction of a target, or one image of it (mfs per spw, the
    aggregate continuum over its spws, or a line cube per spw). A large cube is planned as chunk jobs
    (kind cube_chunk, each with its `chunk`) and a cube job that joins their images (`chunks`)."""

    message_type: Literal["imaging.job"] = "imaging.job"
    stage: Literal[Stage.IMAGING] = Stage.IMAGING
    kind: ImagingKind
    target: str
    spw_ids: list[int] = Field(min_length=1)
    measurement_sets: list[ObjectRef] = Field(
        description="calibrated MSs (contsub, mfs, cont) or continuum-subtracted ones (cube, cube_chunk); "
        "none for a cube job that joins chunks"
    )
    chunk: ChannelChunk | None = Field(None, description="kind cube_chunk: the channels this job images")
    chunks: list[ImageProduct] = Field(
        default_factory=list,
        description="kind cube, planned in chunks: the chunk images to join into the cube, in channel order",
    )
    continuum: list[ContinuumRanges] = Field(description="the continuum ranges of the job's spws, from findcont")
    metadata: MousMetadata
    overrides: ImagingOverrides = Field(default_factory=ImagingOverrides)
    size_limits: ProductSizeLimits = Field(default_factory=ProductSizeLimits)
    spectral_axis: SpectralAxis | None = Field(
        None,
        description="kind cube: the channels the astronomer asked for (a user-defined cube); None: the spw's "
        "native channels (binned as the heuristics or overrides.channel_binning say)",
    )

    @model_validator(mode="after")
    def _spectral_axis_of_a_cube_made_in_one_job(self) -> Self:
        # A user-defined axis is one grid from start to end; chunks are ranges of native channels, so such
        # a cube is imaged in one job (it is usually a few tens of channels: little to share out).
        if self.spectral_axis is None:
            return self
        if self.kind != ImagingKind.CUBE or self.chunks:
            made = "joined from channel chunks" if self.chunks else f"a {self.kind.value} job"
            raise ValueError(
                f"spectral_axis is for a cube imaged in one job (kind cube), not {made}: a cube with a "
                "user-defined spectral axis is not imaged in chunks"
            )
        if self.overrides.channel_binning is not None:
            raise ValueError(
                "spectral_axis and overrides.channel_binning both set the channel width; give one of them"
            )
        return self


class PreviewsJob(JobEnvelope):
    """Quick-looks of one image; for a cube its moment maps and peak spectrum too; for a target's aggregate
    continuum a HiPS with an offline viewer page."""

    message_type: Literal["previews.job"] = "previews.job"
    stage: Literal[Stage.PREVIEWS] = Stage.PREVIEWS
    image: ImageProduct
    continuum: list[ContinuumRanges] = Field(
        default_factory=list, description="the image's spws' continuum ranges: a cube's line channels lie outside"
    )
    mous_title: str = Field("", description="for the HiPS's title, e.g. the project code and MOUS id")


class FootprintJob(JobEnvelope):
    """The footprint (MOC, STC-S) and the ObsCore record of one image."""

    message_type: Literal["footprint.job"] = "footprint.job"
    stage: Literal[Stage.FOOTPRINT] = Stage.FOOTPRINT
    image: ImageProduct
    metadata: MousMetadata
    pb_limit: float = Field(0.2, gt=0, lt=1, description="the primary-beam response where the footprint ends")
    obs_collection: str = "ALMA"


class JobRecord(BaseModel):
    """What the export (the manifest, casa_commands.log and the weblog) needs to know of one job of the run."""

    job_id: JobId
    stage: Stage
    kind: str = ""
    target: str | None = None
    spw_id: int | None = None
    state: JobState
    reason: str = ""
    attempts: int = Field(ge=0)
    worker: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    duration_s: float | None = None
    qa: list[QAScore] = Field(default_factory=list)
    result: StageResult | None = None
    casa_calls: list[CasaCall] = Field(default_factory=list)
    log: ObjectRef | None = None
    outputs: list[ObjectRef] = Field(default_factory=list, description="what it stored (products among them)")
    params: dict[str, object] = Field(default_factory=dict, description="the planner's parameters of the job")


class ExportJob(JobEnvelope):
    """Name, list and check every product of the run, write casa_commands.log and the weblog."""

    message_type: Literal["export.job"] = "export.job"
    stage: Literal[Stage.EXPORT] = Stage.EXPORT
    metadata: MousMetadata
    run: int = Field(ge=1)
    submitted_at: datetime
    jobs: list[JobRecord] = Field(description="every job of the run but this one, in plan order")


JobMessage = Annotated[
    IngestJob | CalibrationJob | FindcontJob | ImagingJob | PreviewsJob | FootprintJob | ExportJob,
    Field(discriminator="message_type"),
]
