"""Flux densities given for calibrators (an operator's flux.csv, or the job's own)."""

from pydantic import BaseModel, ConfigDict, Field


class FluxModel(BaseModel):
    """The flux density of a flux calibrator that CASA has no model for, given with the job:
    S(nu) = flux_jy * (nu / reference_frequency_hz) ** spectral_index (Stokes I)."""

    model_config = ConfigDict(extra="forbid")

    field: str = Field(min_length=1, description="the calibrator's field name in the MS", examples=["J1517-2422"])
    flux_jy: float = Field(gt=0)
    reference_frequency_hz: float = Field(gt=0)
    spectral_index: float = 0.0
