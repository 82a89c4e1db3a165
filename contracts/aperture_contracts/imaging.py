"""Imaging: what an imaging job may override, the size limits it works within, and what it made."""

from pydantic import BaseModel, ConfigDict, Field

from aperture_contracts.enums import ImagingKind
from aperture_contracts.qa import QAScore
from aperture_contracts.storage import ObjectRef


class ImagingOverrides(BaseModel):
    """Everything the heuristics choose can be set instead (None: let the heuristics decide)."""

    model_config = ConfigDict(extra="forbid")

    cell_arcsec: float | None = Field(None, gt=0)
    imsize: list[int] | None = Field(None, min_length=2, max_length=2)
    robust: float | None = Field(None, ge=-2, le=2)
    threshold_jy: float | None = Field(None, ge=0)
    niter: int | None = Field(None, ge=0)
    deconvolver: str | None = Field(None, examples=["hogbom", "mtmfs"])
    nterms: int | None = Field(None, ge=1, le=3)
    pblimit: float | None = Field(None, gt=0, lt=1)
    channel_binning: int | None = Field(None, ge=1)
    uvtaper_arcsec: float | None = Field(None, gt=0)


class ProductSizeLimits(BaseModel):
    """The ALMA mitigation cascade's limits (bytes); defaults as the ALMA pipeline's."""

    model_config = ConfigDict(extra="forbid")

    max_cube_bytes: int = Field(40 * 10**9, gt=0)
    max_cube_hard_bytes: int = Field(60 * 10**9, gt=0)
    max_mous_bytes: int = Field(500 * 10**9, gt=0)


class Beam(BaseModel):
    major_arcsec: float
    minor_arcsec: float
    position_angle_deg: float


class ImageProduct(BaseModel):
    """One image (or cube) with its FITS files and the figures QA is computed from."""

    kind: ImagingKind
    target: str
    spw_ids: list[int]
    pbcor: ObjectRef = Field(description="primary-beam corrected image (FITS)")
    image: ObjectRef = Field(description="image without primary-beam correction (FITS)")
    pb: ObjectRef = Field(description="the primary beam (FITS)")
    extra: list[ObjectRef] = Field(default_factory=list, description="residual, mask, model, psf, ...")
    beam: Beam
    cell_arcsec: float
    imsize: list[int]
    num_channels: int
    frequency_min_hz: float
    frequency_max_hz: float
    rms_jy: float = Field(description="measured rms of the residual (or image) away from sources, Jy/beam")
    peak_jy: float
    theoretical_sensitivity_jy: float
    threshold_jy: float
    mitigation: list[str] = Field(default_factory=list, description="what the size cascade changed, and why")
    qa: list[QAScore] = Field(default_factory=list)
