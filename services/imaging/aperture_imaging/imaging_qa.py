"""Imaging QA scores in the ALMA pipeline's convention: a score in [0, 1] with the metric behind it.

Pure functions of figures the CASA step measured, so each rule is checked with numbers.
"""

import math

from aperture_contracts.imaging import Beam
from aperture_contracts.qa import QAMetric, QAScore

# Measured rms over theoretical sensitivity: 1 or less is as good as the data allow (score 1); the score
# falls linearly to 0 at 5 (the ALMA pipeline's imaging score).
RMS_RATIO_GOOD = 1.0
RMS_RATIO_BAD = 5.0
# Beam over the beam the uv coverage should give: within 25 % either way is normal (weighting and
# flagging move it); the score falls to 0 at a factor 2.
BEAM_RATIO_NORMAL = 1.25
BEAM_RATIO_BAD = 2.0
# Peak residual growth between minor cycles: up to 10 % is the ordinary jitter of cycle thresholds; by
# a factor 3 clean diverges (what tclean's own stop codes 5 and 6 call divergence).
GROWTH_NORMAL = 1.1
GROWTH_DIVERGED = 3.0
TCLEAN_DIVERGENCE_STOPCODES = (5, 6)
TCLEAN_ITERATION_LIMIT_STOPCODE = 1


def _clamp(value: float) -> float:
    return round(min(1.0, max(0.0, value)), 3)


def sensitivity_score(measured_rms_jy: float, theoretical_jy: float, applies_to: str) -> QAScore:
    ratio = measured_rms_jy / theoretical_jy
    score = _clamp(1 - (ratio - RMS_RATIO_GOOD) / (RMS_RATIO_BAD - RMS_RATIO_GOOD))
    return QAScore(
        score=score,
        message=(
            f"measured rms {measured_rms_jy * 1e3:.3g} mJy/beam is {ratio:.2f} x the theoretical sensitivity "
            f"{theoretical_jy * 1e3:.3g} mJy/beam"
        ),
        metric=QAMetric(name="rms_over_theoretical_sensitivity", value=round(ratio, 4)),
        applies_to=applies_to,
    )


def beam_score(beam: Beam, expected_arcsec: float, applies_to: str) -> QAScore:
    """The beam's geometric mean against the beam the uv coverage should give."""
    size = math.sqrt(beam.major_arcsec * beam.minor_arcsec)
    ratio = size / expected_arcsec
    deviation = abs(math.log(ratio))
    normal, bad = math.log(BEAM_RATIO_NORMAL), math.log(BEAM_RATIO_BAD)
    score = 1.0 if deviation <= normal else _clamp(1 - (deviation - normal) / (bad - normal))
    return QAScore(
        score=score,
        message=(
            f"beam {beam.major_arcsec:.3g} x {beam.minor_arcsec:.3g} arcsec ({beam.position_angle_deg:.0f} deg) "
            f"is {ratio:.2f} x the {expected_arcsec:.3g} arcsec the uv coverage gives"
        ),
        metric=QAMetric(name="beam_over_expected", value=round(ratio, 4)),
        applies_to=applies_to,
    )


def peak_residual_growth(peak_residuals_per_plane: list[list[float]]) -> float:
    """The largest factor by which a plane's peak residual rose above the lowest it had reached before
    (1.0 when it never rose): clean is diverging when this grows."""
    growth = 1.0
    for peaks in peak_residuals_per_plane:
        lowest = math.inf
        for peak in peaks:
            if lowest < math.inf and lowest > 0:
                growth = max(growth, abs(peak) / lowest)
            lowest = min(lowest, abs(peak))
    return growth


def divergence_score(growth: float, stopcode: int, applies_to: str) -> QAScore:
    if stopcode in TCLEAN_DIVERGENCE_STOPCODES:
        score = 0.0
        message = f"clean diverged (tclean stop code {stopcode}); peak residual grew {growth:.2f} x"
    else:
        score = 1.0 if growth <= GROWTH_NORMAL else _clamp(
            1 - (growth - GROWTH_NORMAL) / (GROWTH_DIVERGED - GROWTH_NORMAL)
        )
        message = (
            "the peak residual fell from cycle to cycle" if growth <= 1.0
            else f"the peak residual grew by up to {growth:.2f} x between clean cycles"
        )
    return QAScore(
        score=score, message=message,
        metric=QAMetric(name="peak_residual_growth", value=round(growth, 4)),
        applies_to=applies_to,
    )


def clean_completion_score(stopcode: int, stop_description: str, iterations: int, applies_to: str) -> QAScore:
    """Clean should stop at its threshold; at the iteration cap the residual still holds clean-able flux."""
    if stopcode == TCLEAN_ITERATION_LIMIT_STOPCODE:
        score = 0.6
        message = f"clean stopped at its iteration limit ({iterations} iterations) before the threshold"
    else:
        score = 1.0
        message = f"clean stopped: {stop_description or f'stop code {stopcode}'} after {iterations} iterations"
    return QAScore(
        score=score, message=message,
        metric=QAMetric(name="tclean_stopcode", value=float(stopcode)),
        applies_to=applies_to,
    )


def continuum_selection_score(
    used_channels: int, total_channels: int, fallback: bool, description: str, applies_to: str
) -> QAScore:
    """A continuum image made of every channel (no line-free channel found) holds line emission too."""
    fraction = used_channels / total_channels if total_channels else 0.0
    return QAScore(
        score=0.5 if fallback else 1.0,
        message=description,
        metric=QAMetric(name="continuum_channel_fraction", value=round(fraction, 4)),
        applies_to=applies_to,
    )


def continuum_subtraction_score(
    spw_id: int, fitorder: int | None, continuum_channels: int, nchan: int, applies_to: str
) -> QAScore:
    """One per spw: subtracted (with what), or passed on unsubtracted because it has no line-free channel."""
    if fitorder is None:
        return QAScore(
            score=0.5,
            message=(
                f"spw {spw_id} has no line-free channel: its continuum could not be fitted, so its data are "
                "passed on without continuum subtraction (its cube holds continuum and lines)"
            ),
            metric=QAMetric(name="continuum_channel_fraction", value=0.0),
            applies_to=applies_to,
        )
    return QAScore(
        score=1.0,
        message=(
            f"spw {spw_id}: continuum fitted (order {fitorder}) on {continuum_channels} of {nchan} channels "
            "and subtracted in the uv plane"
        ),
        metric=QAMetric(name="continuum_channel_fraction", value=round(continuum_channels / nchan, 4)),
        applies_to=applies_to,
    )
