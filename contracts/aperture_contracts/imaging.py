"""Imaging: what an imaging job may override, the size limits it works within, and what it made."""

from enum import StrEnum
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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
    field_size_arcsec: float | None = Field(
        None, gt=0, description="image side on the sky; the pixel count follows from the cell (imsize wins)"
    )


SPEED_OF_LIGHT_KMS = 299_792.458
# Below this a "frequency" is surely GHz or MHz given as if it were Hz (no interferometer observes under 1 MHz).
LOWEST_RADIO_FREQUENCY_HZ = 1e6


class SpectralAxisMode(StrEnum):
    FREQUENCY = "frequency"  # start and width in Hz
    VELOCITY = "velocity"  # start and width in km/s, Doppler shifts from the rest frequency


class VelocityConvention(StrEnum):
    """How a velocity maps to a frequency nu, with nu0 the rest frequency and c the speed of light."""

    RADIO = "radio"  # v = c (nu0 - nu) / nu0: equal velocity steps are equal frequency steps
    OPTICAL = "optical"  # v = c (nu0 - nu) / nu: equal velocity steps are equal wavelength steps


class SpectralFrame(StrEnum):
    """The spectral reference frames tclean can grid a cube in (its `outframe`)."""

    LSRK = "LSRK"  # kinematic local standard of rest: what ALMA cubes are made in
    LSRD = "LSRD"  # dynamical local standard of rest
    BARY = "BARY"  # solar-system barycentre
    GEO = "GEO"  # centre of the Earth
    TOPO = "TOPO"  # the observatory (ALMA records its channels so)
    GALACTO = "GALACTO"  # centre of the Galaxy
    LGROUP = "LGROUP"  # barycentre of the Local Group
    CMB = "CMB"  # the cosmic microwave background's rest frame


class SpectralAxis(BaseModel):
    """A cube's spectral axis as an astronomer asks for it (ALMA SRDP's user-defined cubes): nchan
    channels of `width` from the centre of the first, `start`, in frequency or in velocity, in `frame`.
    Whether the request fits a spw's data is checked against the spw (aperture_imaging.spectral_axis)."""

    model_config = ConfigDict(extra="forbid")

    mode: SpectralAxisMode
    start: float = Field(description="centre of the first channel: Hz (mode frequency) or km/s (mode velocity)")
    width: float = Field(
        gt=0, description="channel width, Hz or km/s; channels go up in frequency (mode frequency) or in "
        "velocity, i.e. down in frequency (mode velocity)",
    )
    nchan: int = Field(ge=1)
    rest_frequency_hz: float | None = Field(
        None, gt=0,
        description="what velocities are measured from; required in mode velocity. In mode frequency it only "
        "labels the cube's velocities; None takes the spw's rest frequency from the MS (the SOURCE table)",
        examples=[230.538e9],
    )
    velocity_convention: VelocityConvention = VelocityConvention.RADIO
    frame: SpectralFrame = Field(SpectralFrame.LSRK, description="the frame the channels are fixed in")

    @field_validator("frame", mode="before")
    @classmethod
    def _frame_in_capitals(cls, value: Any) -> Any:
        # CASA reads frames in any case ('lsrk'); so does this.
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _physical(self) -> Self:
        if self.mode == SpectralAxisMode.VELOCITY:
            if self.rest_frequency_hz is None:
                raise ValueError(
                    "rest_frequency_hz is required in velocity mode: velocities are Doppler shifts from a rest "
                    "frequency (e.g. 230.538e9 Hz for CO(2-1))"
                )
            # The channels' outer edges, where the convention is closest to its limit (v -> c or -c).
            lowest, highest = self.start - self.width / 2, self.start + (self.nchan - 0.5) * self.width
            if self.velocity_convention == VelocityConvention.RADIO and highest >= SPEED_OF_LIGHT_KMS:
                raise ValueError(
                    f"the channels reach {highest:g} km/s; radio velocities stay below c ({SPEED_OF_LIGHT_KMS} km/s)"
                )
            if self.velocity_convention == VelocityConvention.OPTICAL and lowest <= -SPEED_OF_LIGHT_KMS:
                raise ValueError(
                    f"the channels reach {lowest:g} km/s; optical velocities stay above -c "
                    f"(-{SPEED_OF_LIGHT_KMS} km/s)"
                )
        elif self.start - self.width / 2 < LOWEST_RADIO_FREQUENCY_HZ:
            raise ValueError(
                f"start {self.start:g} Hz (first channel's lower edge {self.start - self.width / 2:g} Hz) is not "
                "a radio frequency: frequencies are in Hz (e.g. 230.4e9 for 230.4 GHz)"
            )
        return self


class ProductSizeLimits(BaseModel):
    """The ALMA mitigation cascade's limits (bytes); defaults as the ALMA pipeline's."""

    model_config = ConfigDict(extra="forbid")

    max_cube_bytes: int = Field(40 * 10**9, gt=0)
    max_cube_hard_bytes: int = Field(60 * 10**9, gt=0)
    max_mous_bytes: int = Field(500 * 10**9, gt=0)


class ChannelChunk(BaseModel):
    """One contiguous range of a cube's native channels that one job images (kind cube_chunk).

    The chunks of a cube cover the spw's channels exactly and in order, and all image the same output
    grid: the whole cube's, with its start, width (after any channel binning), pixels, weighting and
    threshold. With channel binning by w, a chunk's output channels are first_channel // w up to
    (first_channel + num_channels) // w, so the chunks' output channels also cover the cube exactly.
    """

    model_config = ConfigDict(extra="forbid")

    index: int = Field(ge=0, description="0 for the chunk of the lowest channel indices")
    count: int = Field(ge=2, description="chunks of the cube")
    first_channel: int = Field(ge=0, description="the first native channel of the chunk")
    num_channels: int = Field(ge=1, description="native channels in the chunk")
    total_channels: int = Field(ge=2, description="native channels of the whole spw")

    @model_validator(mode="after")
    def _inside_the_spw(self) -> Self:
        if self.index >= self.count:
            raise ValueError(f"chunk index {self.index} is not below the chunk count {self.count}")
        if self.first_channel + self.num_channels > self.total_channels:
            raise ValueError(
                f"channels {self.first_channel}..{self.first_channel + self.num_channels - 1} go past the "
                f"spw's {self.total_channels} channels"
            )
        return self

    @property
    def end_channel(self) -> int:
        """One past the chunk's last native channel."""
        return self.first_channel + self.num_channels

    def describe(self) -> str:
        return (
            f"chunk {self.index + 1} of {self.count} (channels {self.first_channel}~{self.end_channel - 1} "
            f"of {self.total_channels})"
        )


class CubeChunkImage(BaseModel):
    """What the join of a chunked cube needs from one chunk besides its images: where it sits on the
    whole cube's output grid and how it was imaged and cleaned (the cube's QA is made of these)."""

    chunk: ChannelChunk
    first_output_channel: int = Field(ge=0, description="its first channel on the whole cube's output grid")
    cube_channels: int = Field(ge=1, description="output channels of the whole cube")
    channel_binning: int = Field(ge=1)
    deconvolver: str
    pb_level: float
    expected_beam_arcsec: float
    dirty_peak_jy: float
    niter: int
    iterations: int
    stopcode: int
    stop_description: str
    peak_residual_growth: float


class Beam(BaseModel):
    major_arcsec: float
    minor_arcsec: float
    position_angle_deg: float


class ImageProduct(BaseModel):
    """One image (or cube) with its FITS files and the figures QA is computed from. The image of one chunk
    of a cube (kind cube_chunk, `chunk` set) is an intermediate: its files are tarred CASA images in the
    chunk job's work prefix, which the cube job joins into the cube's FITS products."""

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
    imaged_in_chunks: int = Field(1, ge=1, description="how many channel chunks a cube was imaged in, then joined")
    chunk: CubeChunkImage | None = Field(None, description="set on the intermediate image of one chunk of a cube")
