"""The outlier-antenna rule and its measurements on gain solutions made up in numpy (no CASA): which
antennas are flagged, which are left alone, and how the QA scores it. The same on real CASA:
test_calibration_outlier_antennas.py."""

import numpy as np
import pytest
from aperture_calibration import qa
from aperture_calibration.gain_outliers import GainTest, decide_gain_outliers
from aperture_calibration.measurements import (
    AntennaGainStability,
    GainSolutions,
    amplitude_ratios,
    gain_stability,
    log_scatter,
    phase_jumps_deg,
)
from aperture_contracts.qa import QABand

NAMES = [f"DA{41 + i}" for i in range(25)]


def array(jumps_deg: list[float], ratios: list[float] | None = None) -> list[AntennaGainStability]:
    """Antennas with these phase jumps and amplitude ratios (default 1), each scattering 5 % in amplitude."""
    ratios = ratios or [1.0] * len(jumps_deg)
    return [
        AntennaGainStability(antenna=NAMES[i], phase_jump_rms_deg=jump, phase_jumps=32, amplitude_ratio=ratio,
                             amplitude_scatter=0.05, amplitude_solutions=20)
        for i, (jump, ratio) in enumerate(zip(jumps_deg, ratios, strict=True))
    ]  # fmt: skip


def good_jumps(n: int = 25, median: float = 2.0) -> list[float]:
    """Phase jumps of a working array: spread around `median` by +-50 %, deterministic."""
    return [round(median * (0.5 + i / (n - 1)), 3) for i in range(n)]


def test_an_antenna_whose_phase_jumps_at_random_is_flagged_and_named_with_its_figures():
    jumps = good_jumps()
    jumps[4] = 104.0

    decision = decide_gain_outliers(array(jumps))

    assert decision.flagged == ["DA45"] and decision.compared == 25
    assert decision.worst is not None and decision.worst.antenna == "DA45"
    assert decision.worst.test is GainTest.PHASE_JUMPS and decision.worst.threshold == 30.0
    assert decision.summary() == "DA45 flagged: phase jumps 104.0 deg rms between integrations vs 2.1 deg array median"


def test_a_good_array_with_one_slightly_noisier_antenna_flags_nothing_and_stays_green():
    jumps = good_jumps()
    jumps[7] = 8.0  # four times the median, far below the floor

    decision = decide_gain_outliers(array(jumps))
    score = qa.antenna_gains_score(decision, "x.ms")

    assert decision.flagged == [] and decision.outliers == []
    assert score is not None and score.band is QABand.GOOD and score.score == 1.0
    assert score.applies_to == "x.ms DA48"
    assert score.message.startswith("no antenna's gains are outliers (25 compared); the least stable, DA48: phase")
    assert score.metric.name == "phase_jump_rms_deg" and score.metric.value == 8.0 and score.metric.unit == "deg"
    # A gain higher than the others' but within hif_lowgainflag's 0.5-1.5 is the least normal now, and normal.
    ratios = [1.0] * 25
    ratios[3] = 1.3
    decision = decide_gain_outliers(array(jumps, ratios))
    score = qa.antenna_gains_score(decision, "x.ms")
    assert decision.flagged == [] and score is not None and score.score == 1.0 and score.applies_to == "x.ms DA44"
    assert score.metric.name == "amplitude_ratio_to_array_median" and score.metric.value == 1.3


def test_on_weak_calibrators_the_threshold_follows_the_arrays_noise():
    # Every antenna's per-integration phases are noisy (median 15 deg): 4 x the median is the threshold.
    noisy = good_jumps(median=15.0)
    noisy[10] = 50.0
    assert decide_gain_outliers(array(noisy)).flagged == []
    noisy[10] = 104.0
    decision = decide_gain_outliers(array(noisy))
    assert decision.flagged == ["DA51"] and decision.worst is not None and decision.median_phase_jump_deg is not None
    assert decision.worst.threshold == pytest.approx(4 * decision.median_phase_jump_deg)


@pytest.mark.parametrize(("ratio", "flagged"), [(0.3, True), (0.55, False), (1.45, False), (1.8, True)])
def test_an_antenna_whose_gain_amplitude_is_far_from_the_arrays_is_flagged(ratio, flagged):
    ratios = [1.0] * 25
    ratios[0] = ratio

    decision = decide_gain_outliers(array(good_jumps(), ratios))

    assert decision.flagged == (["DA41"] if flagged else [])
    if flagged:
        assert decision.outliers[0].findings[0].test is GainTest.AMPLITUDE_LEVEL
        assert f"gain amplitude {ratio:.2f} times the array median" in decision.summary()


def test_an_amplitude_that_jumps_from_scan_to_scan_is_an_outlier_even_at_a_normal_level():
    antennas = array(good_jumps())
    antennas[2] = antennas[2].model_copy(update={"amplitude_scatter": 0.45})

    decision = decide_gain_outliers(antennas)

    assert decision.flagged == ["DA43"]
    assert decision.summary() == "DA43 flagged: gain amplitude scatters 45% between scans vs 5% array median"


def test_one_flagged_antenna_of_25_is_blue_and_more_are_worse():
    jumps = good_jumps()
    jumps[4] = 104.0
    one = qa.antenna_gains_score(decide_gain_outliers(array(jumps)), "x.ms")
    jumps[9] = 90.0
    two = qa.antenna_gains_score(decide_gain_outliers(array(jumps)), "x.ms")

    assert one is not None and two is not None
    # 24 of 300 baselines lost: 0.90 - 2 x 0.08.
    assert one.score == pytest.approx(0.74) and one.band is QABand.BELOW_STANDARD
    assert one.applies_to == "x.ms DA45" and one.metric.value == 104.0
    assert "(1 of 25 antennas flagged in every field, 8% of the baselines;" in one.message
    assert two.band is QABand.WARNING and two.message.startswith("DA45 flagged: ") and "; DA50 flagged: " in two.message


def test_too_many_outliers_are_not_flagged_and_the_qa_is_red():
    # A third of the array and more: the reference antenna or the calibrators are the problem.
    ratios = [1.0] * 16 + [0.2] * 9

    decision = decide_gain_outliers(array(good_jumps(), ratios))
    score = qa.antenna_gains_score(decision, "x.ms")

    assert len(decision.outliers) == 9 and decision.flagged == [] and decision.too_many
    assert score is not None and score.band is QABand.ERROR
    assert score.message.startswith("9 of 25 antennas have outlier gains")


def test_an_array_whose_phases_all_jump_is_flagged_nowhere_but_warned_about():
    decision = decide_gain_outliers(array(good_jumps(median=45.0)))
    score = qa.antenna_gains_score(decision, "x.ms")

    assert decision.flagged == []
    assert score is not None and score.band is QABand.WARNING
    assert score.message.startswith("the array's phases jump 45.0 deg rms between integrations")


def test_three_antennas_are_too_few_to_compare_and_nothing_is_decided_or_scored():
    decision = decide_gain_outliers(array([1.0, 2.0, 104.0]))

    assert decision.flagged == [] and decision.worst is None
    assert qa.antenna_gains_score(decision, "x.ms") is None


def solutions(antenna, spw, field, scan, time, phases_deg, amplitudes=None, flags=None) -> GainSolutions:
    phases = np.deg2rad(np.atleast_2d(phases_deg))
    amplitude = np.ones_like(phases) if amplitudes is None else np.atleast_2d(amplitudes)
    return GainSolutions(
        antenna=np.asarray(antenna), spw=np.asarray(spw), field=np.asarray(field), scan=np.asarray(scan),
        time=np.asarray(time, dtype=float), gains=amplitude * np.exp(1j * phases),
        flags=np.zeros(phases.shape, bool) if flags is None else np.atleast_2d(flags),
    )  # fmt: skip


def test_phase_jumps_are_taken_between_consecutive_integrations_of_one_scan_wrapped_and_unflagged():
    # Antenna 0: scan 1 at t=0,1,2 (rows out of time order), scan 2 at t=10,11; antenna 1: one flagged row.
    table = solutions(
        antenna=[0, 0, 0, 0, 0, 1, 1, 1], spw=[0] * 8, field=[0] * 8, scan=[1, 1, 1, 2, 2, 1, 1, 1],
        time=[2, 0, 1, 10, 11, 0, 1, 2],
        phases_deg=[-170, 10, 170, 100, 90, 0, 50, 5],
        flags=[False, False, False, False, False, False, True, False],
    )  # fmt: skip

    jumps = phase_jumps_deg(table)

    # 10 -> 170 is +160; 170 -> -170 wraps to +20; never across the scan boundary (-170 -> 100).
    assert jumps[0] == pytest.approx([160.0, 20.0, -10.0])
    # The flagged middle row leaves no pair of consecutive unflagged solutions.
    assert 1 not in jumps


def test_amplitude_ratios_are_relative_to_the_arrays_median_in_each_interval():
    # Two intervals (times 0 and 10) with different overall levels (the calibrator's flux): ratios drop it.
    table = solutions(
        antenna=[0, 1, 2, 0, 1, 2], spw=[0] * 6, field=[0, 0, 0, 1, 1, 1], scan=[1, 1, 1, 2, 2, 2],
        time=[0, 0, 0, 10, 10, 10], phases_deg=[0] * 6, amplitudes=[1.0, 1.1, 0.3, 3.0, 3.3, 0.9],
    )  # fmt: skip

    ratios = amplitude_ratios(table)

    (series,) = ratios[2]
    assert series == pytest.approx([0.3, 0.3]) and ratios[0][0] == pytest.approx([1.0, 1.0])


def test_amplitude_scatter_is_from_scan_to_scan_not_between_polarisations():
    # Two polarisations whose gains differ by a constant 20 % (each steady in time): no scatter at all.
    steady = [np.array([1.0, 1.0, 1.0]), np.array([1.2, 1.2, 1.2])]
    assert log_scatter(steady) == pytest.approx(0.0)
    # One that alternates by a factor e^0.2 about its mean.
    assert log_scatter([np.exp(np.array([0.2, -0.2, 0.2, -0.2]))]) == pytest.approx(0.2 * np.sqrt(4 / 3))
    assert log_scatter([np.array([1.0])]) is None


def test_a_simulated_broken_antenna_is_found_from_its_solutions():
    # 25 antennas, 2 spws x 2 polarisations, 4 scans of 3 integrations: smooth phases except antenna 4.
    rng = np.random.default_rng(7)
    rows = [(a, s, scan, t) for a in range(25) for s in range(2) for scan in range(4) for t in range(3)]
    antenna, spw, scan, integration = (np.array(c) for c in zip(*rows, strict=True))
    time = scan * 100.0 + integration * 30.0
    phases = rng.normal(0, 1.5, (2, antenna.size)) + antenna * 7.0
    phases[:, antenna == 4] = rng.uniform(-180, 180, (2, int((antenna == 4).sum())))
    phase_int = solutions(antenna, spw, np.zeros_like(antenna), scan, time, phases)
    amplitudes = rng.normal(1.0, 0.03, (2, antenna.size))
    amplitudes[:, antenna == 4] *= 0.3
    amplitude = solutions(antenna, spw, np.zeros_like(antenna), scan, time, np.zeros((2, antenna.size)), amplitudes)

    decision = decide_gain_outliers(gain_stability(phase_int, amplitude, NAMES))

    assert decision.flagged == ["DA45"]
    assert [f.test for f in decision.outliers[0].findings] == [GainTest.PHASE_JUMPS, GainTest.AMPLITUDE_LEVEL]
    assert decision.median_phase_jump_deg is not None and decision.median_phase_jump_deg < 4
