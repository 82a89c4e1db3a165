"""QA scores of the calibration stage, in [0, 1] with the ALMA pipeline's colour bands (QAScore.band:
red <= 0.33 < yellow <= 0.66 < blue <= 0.90 < green). Each score carries its metric. The formulas:

flagging        excess = flagged fraction after deterministic flagging - the edge-channel share of the
                data (flagged on purpose); 1.0 for excess <= 0.05, falling linearly to 0 at excess 0.60.
solution SNR    per table, the median SNR of its unflagged solutions: 0 at the solve's minimum SNR
                (min_snr), rising linearly to 1.0 at SNR 20 and above; 0 when no solution is unflagged.
flagged         per table, the fraction f of its solutions flagged (edge channels left out):
  solutions     max(0, 1 - 2 f): 5 % flagged is 0.9, a third flagged is red.
applycal        the fraction d of the data that applycal flagged for want of a solution
  flagging      (flagged after calibration - flagged before applycal, i.e. after the deterministic and
                the outlier-antenna flagging): max(0, 1 - 2 d).
phase scatter   per phase calibrator, the rms phase (degrees) of its channel-averaged visibilities after
                applycal: 1.0 up to 10 deg, falling linearly to 0 at 60 deg (a residual of tens of
                degrees decorrelates the targets' images). The metric is the scatter after; the message
                gives before and after.
missing         a role without a calibrator: flux 0.30 (red: the flux scale is unknown), bandpass 0.50 and
  calibrators   phase 0.50 (yellow: solved or transferred from another calibrator, less well).
flux scale      1.0 when set from a model (solar-system, catalogue, or given in the job); 0.50 (yellow)
                when the flux calibrator has no model and is taken as 1 Jy (flux scale relative).
restored        1.0: calibrated at ingest from the archive's own tables (the restore path).
delivered       0.75 (blue): the MS was delivered calibrated (CORRECTED_DATA differs from DATA, or the phase
  calibrated    calibrators' phases in DATA already scatter little about zero); it is used as it is, and
                nothing here checks that calibration beyond the sign that it exists.
antenna gains   per MS, from the calibrators' solutions (gain_outliers.py): 1.0 when no antenna is an
                outlier, the message naming the least stable antenna and the metric its worst figure; when
                outlier antennas were flagged, 0.90 - 2 x the fraction of baselines lost (one antenna of 25:
                0.74, blue: the data are clean but an antenna is lost; two: 0.59; five: 0.17); 0.30 (red)
                when too many antennas are outliers to flag; 0.60 (yellow) when no antenna stands out but
                the array's median phase jumps by more than the outlier floor between integrations (a
                reference antenna, weather or calibrators that per-scan phases cannot follow). Not scored
                when fewer than gain_outliers.MIN_ANTENNAS antennas have solutions.
self-           per MS and science target (selfcal_plan.py), information rather than a verdict on the data:
  calibration   applied 1.0, the metric the improvement of peak/rms; not attempted (SNR too low, a mosaic)
                0.95; attempted but no round improved the image 0.92 (still green: the image is as the
                calibration left it, which on well-calibrated data is as good as it gets; the message
                says why each round was rejected).
"""

from aperture_contracts.qa import QAMetric, QAScore
from aperture_contracts.selfcal import SelfCalibrationOutcome, SelfCalibrationRecord

from aperture_calibration.gain_outliers import PHASE_JUMP_FLOOR_DEG, GainOutlierDecision, GainTest
from aperture_calibration.measurements import PhaseScatter, SolutionStatistics
from aperture_calibration.plan import CalibrationPlan, CalibratorRole, FluxReference, MissingRole

FLAGGED_EXCESS_NORMAL = 0.05
FLAGGED_EXCESS_ALL_BAD = 0.60
SNR_GOOD = 20.0
PHASE_SCATTER_GOOD_DEG = 10.0
PHASE_SCATTER_ALL_BAD_DEG = 60.0
MISSING_ROLE_SCORES = {CalibratorRole.FLUX: 0.30, CalibratorRole.BANDPASS: 0.50, CalibratorRole.PHASE: 0.50}
RELATIVE_FLUX_SCORE = 0.50
DELIVERED_CALIBRATED_SCORE = 0.75
ANTENNAS_FLAGGED_BEST_SCORE = 0.90
TOO_MANY_OUTLIERS_SCORE = 0.30
UNSTABLE_ARRAY_SCORE = 0.60
GAIN_METRICS = {
    GainTest.PHASE_JUMPS: ("phase_jump_rms_deg", "deg"),
    GainTest.AMPLITUDE_LEVEL: ("amplitude_ratio_to_array_median", ""),
    GainTest.AMPLITUDE_SCATTER: ("amplitude_scatter_ln", ""),
}


def _clip(value: float) -> float:
    return round(min(1.0, max(0.0, value)), 3)


def _falling(value: float, good: float, all_bad: float) -> float:
    """1 up to `good`, then falling linearly to 0 at `all_bad` (clipped by the caller)."""
    return 1.0 if value <= good else 1.0 - (value - good) / (all_bad - good)


def flagging_score(flagged_fraction: float, edge_share: float, applies_to: str) -> QAScore:
    excess = max(0.0, flagged_fraction - edge_share)
    return QAScore(
        score=_clip(_falling(excess, FLAGGED_EXCESS_NORMAL, FLAGGED_EXCESS_ALL_BAD)),
        message=f"{flagged_fraction:.1%} of the visibilities are flagged after deterministic flagging "
        f"({edge_share:.1%} are the spw edge channels)",
        metric=QAMetric(name="flagged_fraction", value=round(flagged_fraction, 5)),
        applies_to=applies_to,
    )


def snr_score(statistics: SolutionStatistics, min_snr: float, applies_to: str) -> QAScore:
    snr = statistics.median_snr
    score = 0.0 if snr is None else (snr - min_snr) / (SNR_GOOD - min_snr)
    described = "no unflagged solution" if snr is None else f"median SNR {snr:.1f}"
    return QAScore(
        score=_clip(score),
        message=f"{statistics.kind} solutions ({statistics.table}): {described}",
        metric=QAMetric(name="median_solution_snr", value=snr),
        applies_to=applies_to,
    )


def flagged_solutions_score(statistics: SolutionStatistics, applies_to: str) -> QAScore:
    fraction = statistics.flagged_fraction
    return QAScore(
        score=_clip(1.0 - 2.0 * fraction),
        message=f"{statistics.kind} solutions ({statistics.table}): {fraction:.1%} of "
        f"{statistics.solutions} flagged",
        metric=QAMetric(name="flagged_solution_fraction", value=fraction),
        applies_to=applies_to,
    )


def applycal_flagging_score(flagged_before_applycal: float, flagged_calibrated: float, applies_to: str) -> QAScore:
    added = max(0.0, flagged_calibrated - flagged_before_applycal)
    return QAScore(
        score=_clip(1.0 - 2.0 * added),
        message=f"applycal flagged {added:.1%} of the visibilities for want of a calibration solution",
        metric=QAMetric(name="applycal_flagged_fraction", value=round(added, 5)),
        applies_to=applies_to,
    )


def phase_scatter_score(scatter: PhaseScatter, applies_to: str) -> QAScore:
    after = scatter.after_deg
    return QAScore(
        score=_clip(_falling(after, PHASE_SCATTER_GOOD_DEG, PHASE_SCATTER_ALL_BAD_DEG)),
        message=f"phase scatter of {scatter.field}: {scatter.before_deg:.1f} deg before applycal, "
        f"{after:.2f} deg after",
        metric=QAMetric(name="phase_scatter_after_deg", value=round(after, 3), unit="deg"),
        applies_to=f"{applies_to} {scatter.field}",
    )


def antenna_gains_score(decision: GainOutlierDecision, applies_to: str) -> QAScore | None:
    worst = decision.worst
    if worst is None:
        return None
    if decision.flagged:
        n, k = decision.compared, len(decision.flagged)
        lost = (k * (n - k) + k * (k - 1) / 2) / (n * (n - 1) / 2)
        score = ANTENNAS_FLAGGED_BEST_SCORE - 2.0 * lost
        message = (
            f"{decision.summary()} ({k} of {n} antennas flagged in every field, {lost:.0%} of the baselines; "
            "the calibration was solved again without them)"
        )
    elif decision.outliers:
        score, message = TOO_MANY_OUTLIERS_SCORE, decision.summary()
    elif decision.median_phase_jump_deg is not None and decision.median_phase_jump_deg > PHASE_JUMP_FLOOR_DEG:
        score = UNSTABLE_ARRAY_SCORE
        message = (
            f"the array's phases jump {decision.median_phase_jump_deg:.1f} deg rms between integrations (median "
            "antenna): per-scan phases cannot follow that onto the targets (an unstable reference antenna or "
            "atmosphere, or calibrators too weak per integration)"
        )
    else:
        score = 1.0
        message = (
            f"no antenna's gains are outliers ({decision.compared} compared); the least stable, {worst.antenna}: "
            f"{worst.description}"
        )
    name, unit = GAIN_METRICS[worst.test]
    return QAScore(
        score=_clip(score),
        message=message,
        metric=QAMetric(name=name, value=round(worst.value, 4), unit=unit),
        applies_to=f"{applies_to} {worst.antenna}",
    )


def missing_role_score(missing: MissingRole, applies_to: str) -> QAScore:
    return QAScore(
        score=MISSING_ROLE_SCORES[missing.role],
        message=missing.message,
        metric=QAMetric(name=f"{missing.role.value}_calibrators", value=0),
        applies_to=applies_to,
    )


def flux_scale_score(flux: FluxReference, applies_to: str) -> QAScore:
    if flux.scale_known:
        return QAScore(
            score=1.0, message=flux.how, metric=QAMetric(name="flux_scale_known", value=1), applies_to=applies_to
        )
    return QAScore(
        score=RELATIVE_FLUX_SCORE,
        message=f"flux calibrator {flux.field.name} has no flux model: flux scale relative",
        metric=QAMetric(name="flux_scale_known", value=0),
        applies_to=applies_to,
    )


def plan_scores(plan: CalibrationPlan) -> list[QAScore]:
    """Scores known before any CASA runs: missing roles, and the flux scale where a flux calibrator
    exists (without one, the missing-role score already says the scale is unknown)."""
    scores = [missing_role_score(missing, plan.ms_name) for missing in plan.missing]
    if not any(missing.role is CalibratorRole.FLUX for missing in plan.missing):
        scores.append(flux_scale_score(plan.flux, plan.ms_name))
    return scores


def no_calibrators_scores(applies_to: str) -> list[QAScore]:
    """An MS without any calibrator intent that passes through uncalibrated: the plain messages."""
    messages = {
        CalibratorRole.FLUX: "no flux calibrator: flux scale unknown",
        CalibratorRole.BANDPASS: "no bandpass calibrator",
        CalibratorRole.PHASE: "no phase calibrator",
    }
    return [missing_role_score(MissingRole(role=role, substitute="", message=message), applies_to)
            for role, message in messages.items()]  # fmt: skip


def restored_score(measurement_sets: int) -> QAScore:
    return QAScore(
        score=1.0,
        message="calibration came from the archive's calibration tables, applied at ingest (restore)",
        metric=QAMetric(name="restored_measurement_sets", value=measurement_sets),
    )


def delivered_calibrated_score(differing_fraction: float, applies_to: str) -> QAScore:
    return QAScore(
        score=DELIVERED_CALIBRATED_SCORE,
        message=f"delivered calibrated: CORRECTED_DATA differs from DATA in {differing_fraction:.0%} of the "
        "compared visibilities; its calibration is used as delivered and not checked here",
        metric=QAMetric(name="corrected_data_differing_fraction", value=round(differing_fraction, 4)),
        applies_to=applies_to,
    )


def delivered_phase_score(field: str, scatter_deg: float, applies_to: str) -> QAScore:
    return QAScore(
        score=DELIVERED_CALIBRATED_SCORE,
        message=f"delivered calibrated: the phases of {field} in DATA already scatter only {scatter_deg:.1f} deg "
        "about zero; the data are used as delivered and not calibrated again",
        metric=QAMetric(name="data_phase_scatter_deg", value=round(scatter_deg, 3), unit="deg"),
        applies_to=applies_to,
    )


SELF_CALIBRATION_SCORES = {
    SelfCalibrationOutcome.APPLIED: 1.0,
    SelfCalibrationOutcome.NOT_ATTEMPTED: 0.95,
    SelfCalibrationOutcome.NO_IMPROVEMENT: 0.92,
}


def self_calibration_score(record: SelfCalibrationRecord) -> QAScore:
    return QAScore(
        score=SELF_CALIBRATION_SCORES[record.outcome],
        message=f"self-calibration of {record.target}: {record.reason}",
        metric=QAMetric(name="selfcal_improvement", value=record.improvement),
        applies_to=f"{record.measurement_set} {record.target}",
    )
