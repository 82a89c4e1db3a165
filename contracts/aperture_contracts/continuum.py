"""Continuum (line-free) frequency ranges: what findcont finds, `cont.dat` holds, and imaging uses."""

from enum import StrEnum

from pydantic import BaseModel, Field, model_validator


class FrequencyRange(BaseModel):
    """A closed frequency interval in the frame of its ContinuumRanges."""

    low_hz: float = Field(gt=0)
    high_hz: float = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> "FrequencyRange":
        if self.high_hz < self.low_hz:
            raise ValueError(f"high_hz {self.high_hz} is below low_hz {self.low_hz}")
        return self


class ContinuumCase(StrEnum):
    """What the spectrum looked like, decided explicitly rather than left to thresholds' accidents."""

    LINES_AND_CONTINUUM = "lines_and_continuum"  # the usual case: line channels excluded
    ALL_CONTINUUM = "all_continuum"  # no line found: the whole spw is continuum
    LINE_FOREST = "line_forest"  # little continuum left between lines: ranges are few and narrow
    NO_CONTINUUM = "no_continuum"  # no line-free channel at all: nothing to subtract or image as continuum
    NOISY = "noisy"  # no significant signal: the whole spw is used, flagged as uncertain


class ContinuumRanges(BaseModel):
    """The continuum of one target in one spw."""

    target: str
    spw_id: int = Field(ge=0)
    frame: str = Field("LSRK", description="spectral frame of the ranges")
    ranges: list[FrequencyRange]
    channel_ranges: str = Field(
        description="the same ranges as a CASA spw selection of channels, e.g. '0~27;47~63' ('' when none)"
    )
    case: ContinuumCase
    source: str = Field(description="'findcont' or 'operator' (an edited cont.dat supplied for the MOUS)")
    continuum_fraction: float = Field(ge=0, le=1, description="fraction of the spw's channels that are continuum")
