"""Job messages: what the coordinator asks a worker to do.

A job message names what to read and where to write; workers never touch the database.
"""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from aperture_contracts.continuum import ContinuumRanges
from aperture_contracts.enums import ImagingKind, Stage
from aperture_contracts.ids import JobId, MousId
from aperture_contracts.imaging import ChannelChunk, ImageProduct, ImagingOverrides, ProductSizeLimits
from aperture_contracts.metadata import MousMetadata
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


class FluxModel(BaseModel):
    """The flux density of a flux calibrator that CASA has no model for, given with the job:
    S(nu) = flux_jy * (nu / reference_frequency_hz) ** spectral_index (Stokes I)."""

    model_config = ConfigDict(extra="forbid")

    field: str = Field(min_length=1, description="the calibrator's field name in the MS", examples=["J1517-2422"])
    flux_jy: float = Field(gt=0)
    reference_frequency_hz: float = Field(gt=0)
    spectral_index: float = 0.0


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


# Stages that are not built yet have no message type; they add theirs here.
JobMessage = Annotated[
    IngestJob | CalibrationJob | FindcontJob | ImagingJob, Field(discriminator="message_type")
]
