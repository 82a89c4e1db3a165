"""Self-calibration of a science target: what was decided, what each round did, what was kept.

The calibration stage self-calibrates a target whose own signal is strong enough (phase-only rounds with
solution intervals stepping down, each kept only when it improves the image's peak/rms). One record per
Measurement Set and target, whether or not it was attempted, so that the decision is never implicit.
"""

from enum import StrEnum

from pydantic import BaseModel, Field


class SelfCalibrationOutcome(StrEnum):
    APPLIED = "applied"  # at least one round kept; its gains are applied in the stored MS
    NO_IMPROVEMENT = "no_improvement"  # attempted; no round improved the image: data unchanged
    NOT_ATTEMPTED = "not_attempted"  # the target's signal is too weak (or the target unsuitable): unchanged


class ImageFigures(BaseModel):
    """A quick continuum image of the target: its peak and the rms of its residual off the clean mask."""

    peak_jy: float = Field(description="the image's maximum (Jy/beam), no primary-beam correction")
    rms_jy: float = Field(description="robust rms (1.4826 MAD) of the residual outside the clean mask, Jy/beam")
    snr: float = Field(description="peak / rms: the figure each round must improve")
    model_flux_jy: float = Field(description="the clean model's total flux: what the gains are solved against")


class SelfCalibrationRound(BaseModel):
    number: int = Field(ge=1)
    solint: str = Field(examples=["inf_EB", "inf", "120s", "int"], description="'inf_EB': one solution over the "
                        "whole observation (scans combined); 'inf': one per scan")  # fmt: skip
    calmode: str = Field(examples=["p", "ap"])
    gaintype: str = Field(examples=["G", "T"], description="G: per polarisation; T: both polarisations together")
    solint_s: float = Field(description="the interval's length in seconds")
    expected_solution_snr: float = Field(description="predicted SNR of one solution, from the decision rule")
    median_solution_snr: float | None = Field(description="measured: median SNR of the unflagged solutions")
    flagged_solution_fraction: float
    before: ImageFigures
    after: ImageFigures | None = Field(description="None when the solve gave nothing to apply")
    kept: bool
    reason: str
    table: str | None = Field(None, description="the gain table's name, when kept")
    duration_s: float


class SelfCalibrationRecord(BaseModel):
    measurement_set: str
    target: str
    outcome: SelfCalibrationOutcome
    reason: str = Field(description="why it was (not) attempted, and why it stopped")
    data: str = Field(description="what was self-calibrated, e.g. 'calibrated data' or 'uncalibrated DATA'")
    initial: ImageFigures | None = Field(None, description="the image before self-calibration")
    final: ImageFigures | None = Field(None, description="the image with the kept rounds applied")
    improvement: float | None = Field(None, description="final peak/rms over initial peak/rms")
    rounds: list[SelfCalibrationRound] = Field(default_factory=list)
    tables: list[str] = Field(default_factory=list, description="the gain tables applied, in applycal order")
    duration_s: float = 0.0
