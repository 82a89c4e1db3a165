"""Which antennas have outlier gains and are flagged before the targets are calibrated: the rule, without
CASA. The ALMA pipeline does the like in hif_lowgainflag (antennas whose gain amplitudes lie far from the
array's median are flagged) and reports unstable phases in hifa_timegaincal's QA.

Why it matters: the calibrators are calibrated with per-integration phases, which follow even an antenna
whose phase jumps at random from one integration to the next, so their phase scatter after applycal looks
perfect; the targets take per-scan phases interpolated between calibrator scans, which cannot follow such
an antenna, so the targets' baselines to it stay scrambled and spoil their images. The per-antenna figures
come from measurements.AntennaGainStability; each test compares an antenna with the array's median
antenna, with an absolute floor, so that the rule adapts to the calibrators' SNR and the weather while a
good array with one slightly noisier antenna keeps all of them:

phase jumps       outlier above max(PHASE_JUMP_FACTOR x the array median, PHASE_JUMP_FLOOR_DEG). Phases that
                  jump at random over the circle give ~104 deg rms; a working antenna a few degrees (the
                  simulated MOUS: array medians 1.8-2.5 deg, the worst working antenna 4.3 deg).
amplitude level   outlier outside AMPLITUDE_RATIO_LOW..AMPLITUDE_RATIO_HIGH times the array median (the
                  bounds of hif_lowgainflag's 'nmedian' test).
amplitude scatter outlier above max(AMPLITUDE_SCATTER_FACTOR x the array median, AMPLITUDE_SCATTER_FLOOR)
                  (ln of the ratio to the array median, from scan to scan within an spw and polarisation;
                  working antennas of the simulated MOUS scatter by 1-5 %, a broken one by 40-60 %).

An antenna's severity in a test is its value over the threshold (for the level, |ln ratio| over |ln bound|
on its side), so an outlier has severity > 1; its worst test names it in the QA and the summary. Outliers are
flagged as a whole (every field: a broken receiver is broken on the targets too), unless there are more
than MAX_OUTLIER_SHARE of the compared antennas: then the array, the reference antenna or the calibrators
are the problem rather than single antennas, and nothing is flagged (the QA is red and says so). Fewer
than MIN_ANTENNAS antennas with solutions make no median to compare with: nothing is decided.
"""

import math
import statistics
from collections.abc import Callable
from enum import StrEnum

from pydantic import BaseModel

from aperture_calibration.measurements import AntennaGainStability

PHASE_JUMP_FACTOR = 4.0
PHASE_JUMP_FLOOR_DEG = 30.0
AMPLITUDE_RATIO_LOW = 0.5
AMPLITUDE_RATIO_HIGH = 1.5
AMPLITUDE_SCATTER_FACTOR = 4.0
AMPLITUDE_SCATTER_FLOOR = 0.2
MAX_OUTLIER_SHARE = 1 / 3
MIN_ANTENNAS = 4


class GainTest(StrEnum):
    PHASE_JUMPS = "phase_jumps"
    AMPLITUDE_LEVEL = "amplitude_level"
    AMPLITUDE_SCATTER = "amplitude_scatter"


class GainFinding(BaseModel):
    """One antenna in one test."""

    antenna: str
    test: GainTest
    value: float
    array_median: float
    threshold: float  # the upper one for the level (the lower one is AMPLITUDE_RATIO_LOW)
    severity: float  # > 1: an outlier

    @property
    def description(self) -> str:
        if self.test is GainTest.PHASE_JUMPS:
            return (
                f"phase jumps {self.value:.1f} deg rms between integrations vs {self.array_median:.1f} deg "
                "array median"
            )
        if self.test is GainTest.AMPLITUDE_LEVEL:
            return (
                f"gain amplitude {self.value:.2f} times the array median (normal: "
                f"{AMPLITUDE_RATIO_LOW:g}-{AMPLITUDE_RATIO_HIGH:g})"
            )
        return (
            f"gain amplitude scatters {self.value:.0%} between scans vs {self.array_median:.0%} array median"
        )


class AntennaOutlier(BaseModel):
    antenna: str
    findings: list[GainFinding]  # the tests it fails, worst first

    @property
    def description(self) -> str:
        return "; ".join(finding.description for finding in self.findings)


class GainOutlierDecision(BaseModel):
    """What the rule found on one MS's calibrator solutions and what it flags."""

    antennas: list[AntennaGainStability]
    median_phase_jump_deg: float | None
    worst: GainFinding | None  # the antenna and test of highest severity; None when nothing was compared
    outliers: list[AntennaOutlier]
    flagged: list[str]  # the outliers' names, unless there were too many to flag
    compared: int  # antennas with solutions

    @property
    def too_many(self) -> bool:
        return bool(self.outliers) and not self.flagged

    def summary(self) -> str:
        """For a person: what was flagged and why, or why nothing was."""
        if self.flagged:
            return "; ".join(f"{outlier.antenna} flagged: {outlier.description}" for outlier in self.outliers)
        if self.outliers:
            return (
                f"{len(self.outliers)} of {self.compared} antennas have outlier gains "
                f"({', '.join(o.antenna for o in self.outliers)}): too many to be single broken antennas, so "
                "none is flagged; the array, the reference antenna or the calibrators are suspect"
            )
        return ""


def decide_gain_outliers(antennas: list[AntennaGainStability]) -> GainOutlierDecision:
    """Apply the module docstring's rule."""
    compared = [a for a in antennas if a.phase_jump_rms_deg is not None or a.amplitude_ratio is not None]
    phase_median = _median([a.phase_jump_rms_deg for a in compared])
    if len(compared) < MIN_ANTENNAS:
        return GainOutlierDecision(
            antennas=antennas, median_phase_jump_deg=phase_median, worst=None, outliers=[], flagged=[],
            compared=len(compared),
        )  # fmt: skip
    scatter_median = _median([a.amplitude_scatter for a in compared])
    tests: list[tuple[GainTest, Callable[[AntennaGainStability], float | None], float | None, float]] = []
    if phase_median is not None:
        tests.append((GainTest.PHASE_JUMPS, lambda a: a.phase_jump_rms_deg, phase_median,
                      max(PHASE_JUMP_FACTOR * phase_median, PHASE_JUMP_FLOOR_DEG)))  # fmt: skip
    tests.append((GainTest.AMPLITUDE_LEVEL, lambda a: a.amplitude_ratio, 1.0, AMPLITUDE_RATIO_HIGH))
    if scatter_median is not None:
        tests.append((GainTest.AMPLITUDE_SCATTER, lambda a: a.amplitude_scatter, scatter_median,
                      max(AMPLITUDE_SCATTER_FACTOR * scatter_median, AMPLITUDE_SCATTER_FLOOR)))  # fmt: skip
    findings: list[GainFinding] = []
    for antenna in compared:
        for test, value_of, median, threshold in tests:
            value = value_of(antenna)
            if value is None or median is None:
                continue
            findings.append(
                GainFinding(
                    antenna=antenna.antenna, test=test, value=value, array_median=round(median, 4),
                    threshold=round(threshold, 4), severity=round(_severity(test, value, threshold), 4),
                )
            )  # fmt: skip
    # Ties (equal severities) go to the antenna listed first, so that the decision is deterministic.
    worst = max(findings, key=lambda finding: finding.severity, default=None)
    outliers = []
    for antenna in compared:
        failed = sorted(
            (f for f in findings if f.antenna == antenna.antenna and f.severity > 1.0),
            key=lambda finding: -finding.severity,
        )
        if failed:
            outliers.append(AntennaOutlier(antenna=antenna.antenna, findings=failed))
    outliers.sort(key=lambda outlier: -outlier.findings[0].severity)
    flagged = [o.antenna for o in outliers] if len(outliers) <= MAX_OUTLIER_SHARE * len(compared) else []
    return GainOutlierDecision(
        antennas=antennas, median_phase_jump_deg=phase_median, worst=worst, outliers=outliers, flagged=flagged,
        compared=len(compared),
    )  # fmt: skip


def _severity(test: GainTest, value: float, threshold: float) -> float:
    if test is GainTest.AMPLITUDE_LEVEL:
        # How far from the median, in units of the distance to the bound on that side (logarithmically:
        # half and one and a half times the median are both 1). Ratios come from non-zero amplitudes; the
        # floor only keeps a pathological one finite.
        bound = threshold if value >= 1.0 else AMPLITUDE_RATIO_LOW
        return abs(math.log(max(value, 1e-6))) / abs(math.log(bound))
    return value / threshold


def _median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return float(statistics.median(known)) if known else None
