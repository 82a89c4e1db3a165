"""Self-calibration's decisions with numbers, without CASA: the SNR rule, the solution intervals, whether
to try at all, whether a round is kept, which fields are targets, and the settings that steer them."""

import math

import pytest
from aperture_calibration.plan import SelfCalibrationOptions
from aperture_calibration.selfcal_plan import (
    TargetTiming,
    amplitude_interval,
    attempt_decision,
    expected_solution_snr,
    image_figures,
    judge_round,
    phase_intervals,
    quick_image_geometry,
    targets_to_self_calibrate,
)
from aperture_calibration.settings import CalibrationSettings
from support.measurement_set_infos import BANDPASS, PHASE, TARGET, field, ms_info

# The 'selfcal' scenario's shape: 4 scans of 4 min, 20-s integrations, 25 antennas, one spw.
TIMING = TargetTiming(on_source_s=960.0, scan_s=240.0, scans=4, integration_s=20.0, antennas=25, spws=1)
OPTIONS = SelfCalibrationOptions()


def test_solution_intervals_step_down_from_the_whole_observation_to_one_integration():
    intervals = phase_intervals(TIMING, max_rounds=10)

    assert [i.label for i in intervals] == ["inf_EB", "inf", "120s", "60s", "int"]
    assert [i.seconds for i in intervals] == [960.0, 240.0, 120.0, 60.0, 20.0]
    # The whole observation per polarisation (the X-Y offsets), every shorter one both together.
    assert [(i.combine, i.gaintype) for i in intervals[:2]] == [("scan", "G"), ("", "T")]
    assert all(i.calmode == "p" and i.gaintype == "T" for i in intervals[1:])
    assert [i.label for i in phase_intervals(TIMING, max_rounds=3)] == ["inf_EB", "inf", "120s"]


def test_one_scan_gives_no_separate_per_scan_interval_and_odd_lengths_round_to_whole_integrations():
    one_scan = TargetTiming(on_source_s=300.0, scan_s=300.0, scans=1, integration_s=6.05, antennas=40, spws=4)

    intervals = phase_intervals(one_scan, max_rounds=10)

    assert intervals[0].label == "inf_EB" and "inf" not in [i.label for i in intervals]
    # 150 s, 75 s, 37.5 s, 18.8 s, 9.4 s: each rounded to whole 6.05-s integrations, down to two of them.
    assert [i.label for i in intervals[1:]] == ["151.25s", "72.6s", "36.3s", "18.15s", "int"]
    assert all(a.seconds > b.seconds for a, b in zip(intervals, intervals[1:], strict=False))


def test_the_expected_solution_snr_follows_the_alma_rule():
    inf_eb, per_scan, *_ , per_integration = phase_intervals(TIMING, max_rounds=10)

    # (peak/rms) / sqrt(N_ant - 3) / sqrt(T_on / t) / sqrt(N_spw) / sqrt(N_pol solved apart)
    assert expected_solution_snr(100.0, TIMING, inf_eb) == pytest.approx(100 / math.sqrt(22) / math.sqrt(2))
    assert expected_solution_snr(100.0, TIMING, per_scan) == pytest.approx(100 / math.sqrt(22) / 2)
    assert expected_solution_snr(100.0, TIMING, per_integration) == pytest.approx(100 / math.sqrt(22 * 48))
    four_spws = TIMING.model_copy(update={"spws": 4})
    assert expected_solution_snr(100.0, four_spws, per_scan) == pytest.approx(100 / math.sqrt(22) / 4)


def test_a_bright_target_is_tried_and_a_faint_one_is_not_with_the_reason():
    assert attempt_decision(image_figures(0.23, 0.0044, 0.25), TIMING, OPTIONS) is None

    faint = attempt_decision(image_figures(0.004, 0.0005, 0.01), TIMING, OPTIONS)
    assert faint == "not attempted: SNR too low (peak/rms 8.0 < 10)"
    # Bright enough an image, but 8 spws solved apart over 6 antennas leave too little per solution.
    small_array = TIMING.model_copy(update={"antennas": 6, "spws": 8})
    thin = attempt_decision(image_figures(0.015, 0.001, 0.05), small_array, OPTIONS)
    assert thin == (
        "not attempted: SNR too low (peak/rms 15.0 gives an expected SNR of 2.2 per inf_EB solution, below 3)"
    )
    empty_model = attempt_decision(image_figures(0.03, 0.001, 0.0), TIMING, OPTIONS)  # auto-masking found nothing
    assert empty_model is not None and "no emission to model" in empty_model


def test_a_round_is_kept_only_when_peak_over_rms_improves_without_the_rms_rising_or_the_peak_falling():
    before = image_figures(0.30, 0.0020, 0.32)

    kept, why = judge_round(before, image_figures(0.33, 0.0015, 0.35), 0.0, OPTIONS)
    assert kept and why == "peak/rms 150.0 -> 220.0 (x1.47)"

    kept, why = judge_round(before, image_figures(0.301, 0.0020, 0.32), 0.0, OPTIONS)
    assert not kept and why == "peak/rms 150.0 -> 150.5: no improvement of at least 2%"

    # At peak/rms 44 a rise of 3 % is about one rms on the peak: noise, or self-calibration's own bias.
    faint = image_figures(0.00180, 0.0000410, 0.005)
    kept, why = judge_round(faint, image_figures(0.00184, 0.0000407, 0.005), 0.0, OPTIONS)
    assert not kept and why == "peak/rms 43.9 -> 45.2: a rise within the noise on the peak (less than 3)"

    kept, why = judge_round(before, image_figures(0.40, 0.0022, 0.42), 0.0, OPTIONS)
    assert not kept and why == "peak/rms 150.0 -> 181.8, but the rms rose 10%"

    kept, why = judge_round(before, image_figures(0.27, 0.0012, 0.30), 0.0, OPTIONS)
    assert not kept and why == "peak/rms 150.0 -> 225.0, but the peak fell 10%"

    kept, why = judge_round(before, image_figures(0.33, 0.0015, 0.35), 0.40, OPTIONS)
    assert not kept and why == "40% of its solutions flagged (at most 25%)"

    kept, why = judge_round(before, None, 1.0, OPTIONS)
    assert not kept and why == "gaincal found no solutions to apply"


def test_the_amplitude_round_is_per_scan_normalised_elsewhere_and_solves_both_polarisations_together():
    interval = amplitude_interval(TIMING)
    assert (interval.label, interval.solint, interval.calmode, interval.gaintype) == ("inf_ap", "inf", "ap", "T")
    # Per scan: 4 solutions in time, so its SNR is a quarter... of the square root.
    assert expected_solution_snr(1000.0, TIMING, interval) == pytest.approx(1000 / math.sqrt(22) / 2)


def test_targets_are_observe_target_fields_and_fields_without_intents_and_mosaics_are_set_aside():
    info = ms_info(
        [
            field(0, "J1517-2422", [BANDPASS]),
            field(1, "J1553-2422", [PHASE]),
            field(2, "Galaxy", [TARGET]),
            field(3, "Mosaic", [TARGET]),
            field(4, "Mosaic", [TARGET]),
            field(5, "NoIntents", []),
            field(6, "NeverObserved", [TARGET], spw_ids=[]),
        ]
    )

    targets, mosaics = targets_to_self_calibrate(info)

    assert [(t.name, t.ids) for t in targets] == [("Galaxy", [2]), ("NoIntents", [5])]
    assert [(m.name, m.ids) for m in mosaics] == [("Mosaic", [3, 4])]


def test_the_quick_image_samples_the_beam_and_reaches_the_primary_beams_fifth():
    cell, imsize = quick_image_geometry(234e9, baseline_l80_m=120.0, dish_diameter_m=12.0)

    # Beam ~0.574 lambda / L80 = 1.27"; primary beam FWHM 1.13 lambda / D = 24.9", 1.52 of it across.
    assert cell == pytest.approx(0.25)
    assert imsize * cell >= 1.52 * 24.9
    assert imsize == 160  # 152 rounded up to an even size made of 2, 3 and 5


def test_settings_turn_self_calibration_off_and_set_its_thresholds(monkeypatch):
    monkeypatch.setenv("APERTURE_SELFCAL_ENABLED", "false")
    monkeypatch.setenv("APERTURE_SELFCAL_MIN_SOLUTION_SNR", "5")
    monkeypatch.setenv("APERTURE_SELFCAL_AMPLITUDE_MIN_SOLUTION_SNR", "0")
    monkeypatch.setenv("APERTURE_SELFCAL_MAX_PHASE_ROUNDS", "3")

    options = CalibrationSettings().options().self_calibration

    assert not options.enabled
    assert options.min_solution_snr == 5.0
    assert options.amplitude_min_solution_snr is None  # 0: never an amplitude round
    assert options.max_phase_rounds == 3
    assert CalibrationSettings.model_fields["selfcal_min_image_snr"].default == OPTIONS.min_image_snr
