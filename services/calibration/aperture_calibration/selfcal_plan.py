"""Self-calibration of a science target: the decisions, as functions of numbers (no CASA), so that each
rule can be checked with numbers (tests/calibration/test_selfcal_plan.py). The CASA side is
selfcal_sequence.py.

Which targets: fields observed with OBSERVE_TARGET, or with no intent at all (as plan.py treats them),
one pointing each (mosaics are left alone: one model across pointings needs joint imaging). Which data:
whatever DATA the stage ends up with for the MS: calibrated from its calibrators, delivered calibrated,
restored by the archive (the ALMA pipeline self-calibrates restored data too, in its imaging recipe), or
uncalibrated without calibrators: then the phases can still be fixed, but the amplitudes, the bandpass
and the flux scale stay uncalibrated (flux scale unknown), and the record says so.

The SNR rule (as the ALMA pipeline's auto-selfcal heuristics estimate it): one gain solution of one
antenna over an interval of t seconds has a signal-to-noise ratio of about

    SNR_solution = (peak / rms) / sqrt(N_ant - 3) / sqrt(T_on / t) / sqrt(N_spw) / sqrt(N_pol)

where peak/rms is the current image's, T_on the time on source, N_spw the spws solved separately and
N_pol 2 when each polarisation is solved on its own (gaintype 'G'), else 1: the image's SNR spread over
the antenna's share of the baselines, the intervals, the spws and the polarisations. Self-calibration
is attempted only when the image's peak/rms reaches `min_image_snr` and the longest interval's
solutions reach `min_solution_snr`; each shorter interval is tried only while its solutions would.
The image peak/rms underestimates the thermal SNR while phase errors still scatter flux, which is
conservative; the rule is re-evaluated with each kept round's better image.

The rounds (ALMA's order): phases over the whole observation per polarisation ('inf_EB', scans
combined: it takes out the fixed and X-Y offsets), then per scan ('inf') and halving intervals down to
one integration ('int') with both polarisations together ('T'), each solved from DATA with 'inf_EB'
pre-applied against the model of the last kept image. A round is kept when peak/rms improves by at
least `min_improvement` and by `min_snr_gain` (the peak is uncertain by about one rms, and phases solved
on noise pull it up by about as much), the rms does not rise by more than `rms_tolerance`, the peak does not fall
by more than `peak_tolerance` and no more than `max_flagged_fraction` of its solutions are flagged; the
first round that fails ends the phase rounds. Then, only after a kept phase round and only when the
per-scan solutions reach `amplitude_min_solution_snr`, one amplitude-and-phase round per scan
(normalised: the flux scale stays as it was), kept by the same rule.
"""

import math

from aperture_contracts.metadata import MeasurementSetInfo
from aperture_contracts.selfcal import ImageFigures
from pydantic import BaseModel, Field

from aperture_calibration.plan import (
    FieldSelection,
    SelfCalibrationOptions,
    group_by_name,
    observed_fields,
    scan_intent,
)

TARGET_INTENT = "OBSERVE_TARGET"
# The number of antennas the SNR rule takes away from N_ant (ALMA auto-selfcal's sqrt(N_ant - 3)).
ANTENNA_DEGREES_OF_FREEDOM = 3


# The quick image: pixels across the expected beam, and how far out it reaches (the primary beam's
# 0.2 level, as the ALMA imaging recipe's images do: 1.52 FWHM across for a Gaussian beam).
SPEED_OF_LIGHT_M_S = 299_792_458.0
ARCSEC_PER_RADIAN = 180.0 / math.pi * 3600.0
PIXELS_PER_BEAM = 5
# Beam FWHM ~ 0.574 lambda / L80 for robust 0.5 (ALMA Technical Handbook); primary beam FWHM 1.13 lambda/D.
BEAM_FACTOR = 0.574
PRIMARY_BEAM_FACTOR = 1.13
IMAGE_ACROSS_PRIMARY_BEAM_FWHM = 1.52


class TargetTiming(BaseModel):
    """What the SNR rule and the intervals need to know of a target's data."""

    on_source_s: float = Field(gt=0)
    scan_s: float = Field(gt=0, description="median scan length on the target")
    scans: int = Field(ge=1)
    integration_s: float = Field(gt=0)
    antennas: int = Field(ge=1)
    spws: int = Field(ge=1)


class SolutionInterval(BaseModel):
    label: str = Field(examples=["inf_EB", "inf", "120s", "int"])
    solint: str = Field(description="gaincal's solint")
    combine: str = Field(description="gaincal's combine")
    gaintype: str
    calmode: str
    seconds: float

    @property
    def polarisations_solved_apart(self) -> int:
        return 2 if self.gaintype == "G" else 1


def expected_solution_snr(image_snr: float, timing: TargetTiming, interval: SolutionInterval) -> float:
    """The SNR rule of the module docstring."""
    antennas = max(1, timing.antennas - ANTENNA_DEGREES_OF_FREEDOM)
    intervals = max(1.0, timing.on_source_s / interval.seconds)
    return image_snr / math.sqrt(antennas * intervals * timing.spws * interval.polarisations_solved_apart)


def phase_intervals(timing: TargetTiming, max_rounds: int) -> list[SolutionInterval]:
    """The phase rounds, longest first: 'inf_EB', 'inf' (when there are several scans), then the scan
    halved (rounded to whole integrations) while two integrations or more remain, then 'int'."""
    intervals = [
        SolutionInterval(label="inf_EB", solint="inf", combine="scan", gaintype="G", calmode="p",
                         seconds=timing.on_source_s),
    ]  # fmt: skip
    if timing.scans > 1:
        intervals.append(
            SolutionInterval(label="inf", solint="inf", combine="", gaintype="T", calmode="p", seconds=timing.scan_s)
        )
    seconds = timing.scan_s / 2
    while seconds >= 2 * timing.integration_s:
        rounded = round(seconds / timing.integration_s) * timing.integration_s
        if rounded < intervals[-1].seconds:
            intervals.append(
                SolutionInterval(label=f"{rounded:g}s", solint=f"{rounded:g}s", combine="", gaintype="T",
                                 calmode="p", seconds=rounded)
            )  # fmt: skip
        seconds = rounded / 2
    if timing.integration_s < intervals[-1].seconds:
        intervals.append(
            SolutionInterval(label="int", solint="int", combine="", gaintype="T", calmode="p",
                             seconds=timing.integration_s)
        )  # fmt: skip
    return intervals[:max_rounds]


def amplitude_interval(timing: TargetTiming) -> SolutionInterval:
    """Amplitude and phase per scan, both polarisations together (over the whole observation when there
    is one scan)."""
    return SolutionInterval(label="inf_ap", solint="inf", combine="", gaintype="T", calmode="ap",
                            seconds=timing.scan_s)  # fmt: skip


def attempt_decision(initial: ImageFigures, timing: TargetTiming, options: SelfCalibrationOptions) -> str | None:
    """Why self-calibration is not attempted on this image, or None when it is."""
    if initial.snr < options.min_image_snr:
        return f"not attempted: SNR too low (peak/rms {initial.snr:.1f} < {options.min_image_snr:g})"
    if initial.model_flux_jy <= 0:
        return (
            f"not attempted: clean found no emission to model (peak/rms {initial.snr:.1f}), and gains cannot "
            "be solved against an empty model"
        )
    first = phase_intervals(timing, 1)[0]
    expected = expected_solution_snr(initial.snr, timing, first)
    if expected < options.min_solution_snr:
        return (
            f"not attempted: SNR too low (peak/rms {initial.snr:.1f} gives an expected SNR of {expected:.1f} per "
            f"{first.label} solution, below {options.min_solution_snr:g})"
        )
    return None


def judge_round(
    before: ImageFigures, after: ImageFigures | None, flagged_fraction: float, options: SelfCalibrationOptions
) -> tuple[bool, str]:
    """Whether a round is kept, and why (the rule of the module docstring)."""
    if after is None:
        return False, "gaincal found no solutions to apply"
    if flagged_fraction > options.max_flagged_fraction:
        return False, f"{flagged_fraction:.0%} of its solutions flagged (at most {options.max_flagged_fraction:.0%})"
    change = f"peak/rms {before.snr:.1f} -> {after.snr:.1f}"
    if after.snr < before.snr * (1 + options.min_improvement):
        return False, f"{change}: no improvement of at least {options.min_improvement:.0%}"
    if after.snr - before.snr < options.min_snr_gain:
        return False, f"{change}: a rise within the noise on the peak (less than {options.min_snr_gain:g})"
    if after.rms_jy > before.rms_jy * (1 + options.rms_tolerance):
        return False, f"{change}, but the rms rose {after.rms_jy / before.rms_jy - 1:.0%}"
    if after.peak_jy < before.peak_jy * (1 - options.peak_tolerance):
        return False, f"{change}, but the peak fell {1 - after.peak_jy / before.peak_jy:.0%}"
    return True, f"{change} (x{after.snr / before.snr:.2f})"


def image_figures(peak_jy: float, rms_jy: float, model_flux_jy: float) -> ImageFigures:
    snr = peak_jy / rms_jy if rms_jy > 0 else 0.0
    return ImageFigures(peak_jy=round(peak_jy, 7), rms_jy=round(rms_jy, 8), snr=round(snr, 3),
                        model_flux_jy=round(model_flux_jy, 7))  # fmt: skip


def targets_to_self_calibrate(info: MeasurementSetInfo) -> tuple[list[FieldSelection], list[FieldSelection]]:
    """(single pointings to self-calibrate, mosaics left alone): fields observed as OBSERVE_TARGET or
    without any intent, grouped by name."""
    fields = [
        field for field in observed_fields(info)
        if not field.intents or any(scan_intent(intent) == TARGET_INTENT for intent in field.intents)
    ]  # fmt: skip
    grouped = group_by_name(fields)
    return [t for t in grouped if len(t.ids) == 1], [t for t in grouped if len(t.ids) > 1]


def quick_image_geometry(max_frequency_hz: float, baseline_l80_m: float, dish_diameter_m: float) -> tuple[float, int]:
    """(cell in arcsec, pixels across) of the quick image: PIXELS_PER_BEAM across the expected beam, out
    to the primary beam's 0.2 level, the size even and made of the factors 2, 3 and 5 (fast FFTs)."""
    wavelength = SPEED_OF_LIGHT_M_S / max_frequency_hz
    beam = BEAM_FACTOR * wavelength / baseline_l80_m * ARCSEC_PER_RADIAN
    cell = float(f"{beam / PIXELS_PER_BEAM:.2g}")
    across = IMAGE_ACROSS_PRIMARY_BEAM_FWHM * PRIMARY_BEAM_FACTOR * wavelength / dish_diameter_m * ARCSEC_PER_RADIAN
    size = max(64, math.ceil(across / cell))
    size += size % 2
    while not _only_factors_2_3_5(size):
        size += 2
    return cell, size


def _only_factors_2_3_5(number: int) -> bool:
    for prime in (2, 3, 5):
        while number % prime == 0:
            number //= prime
    return number == 1
