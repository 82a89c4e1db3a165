"""What the calibration stage decides from the ingest metadata alone: calibrator roles and fallbacks, how
the flux scale is set, which gains each target takes, which channels are flagged; and the QA formulas."""

import pytest
from aperture_calibration import qa
from aperture_calibration.measurements import PhaseScatter, SolutionStatistics
from aperture_calibration.plan import (
    CalibrationOptions,
    CalibratorRole,
    FluxStandard,
    edge_channels,
    plan_calibration,
)
from aperture_contracts.flux import FluxModel
from aperture_contracts.qa import QABand
from support.measurement_set_infos import (
    AMPLI,
    ATMOSPHERE,
    BANDPASS,
    FLUX,
    PHASE,
    TARGET,
    alma_like,
    field,
    ms_info,
    spw,
)

OPTIONS = CalibrationOptions()


def test_an_alma_like_ms_is_planned_with_its_three_roles_and_the_target_interpolated_from_its_phase_calibrator():
    plan = plan_calibration(alma_like(), [], OPTIONS)

    assert plan is not None
    assert plan.bandpass.name == "J1517-2422" and plan.bandpass.ids == [0]
    assert plan.flux.field.name == "J1517-2422"
    assert [f.name for f in plan.phase_calibrators] == ["J1553-2422"]
    assert [f.name for f in plan.calibrators] == ["J1517-2422", "J1553-2422"]
    (group,) = plan.targets
    assert [t.name for t in group.targets] == ["SimGalaxy"] and group.gain_field.name == "J1553-2422"
    assert plan.missing == []
    assert plan.science_spw_ids == [0, 1]
    # 1/32 of 64 channels at each edge of each spw.
    assert plan.edge_flag_selection == "0:0~1;62~63,1:0~1;62~63"


def test_each_target_takes_the_gains_of_the_phase_calibrator_nearest_to_it_on_the_sky():
    info = ms_info([
        field(0, "J0006-0623", [BANDPASS, FLUX], ra_deg=1.56, dec_deg=-6.39),
        field(1, "J0423-0120", [PHASE], ra_deg=65.8, dec_deg=-1.3),
        field(2, "J1058+0133", [PHASE], ra_deg=164.6, dec_deg=1.6),
        field(3, "NGC1068", [TARGET], ra_deg=40.7, dec_deg=-0.01),
        field(4, "NGC3521", [TARGET], ra_deg=166.5, dec_deg=-0.04),
        field(5, "NGC3521", [TARGET], ra_deg=166.51, dec_deg=-0.03),  # a second mosaic pointing
    ])  # fmt: skip
    plan = plan_calibration(info, [], OPTIONS)

    assert plan is not None
    taken = {t.name: (t.ids, group.gain_field.name) for group in plan.targets for t in group.targets}
    assert taken == {"NGC1068": ([3], "J0423-0120"), "NGC3521": ([4, 5], "J1058+0133")}


def test_an_amplitude_calibrator_intent_sets_the_flux_scale_and_fields_without_data_are_ignored():
    info = ms_info([
        field(0, "Titan", [AMPLI]),
        field(1, "J1924-2914", [BANDPASS, ATMOSPHERE]),
        field(2, "J1733-1304", [PHASE]),
        field(3, "Target", [TARGET, ATMOSPHERE]),
        field(4, "NeverObserved", [PHASE], spw_ids=[]),
    ])  # fmt: skip
    plan = plan_calibration(info, [], OPTIONS)

    assert plan is not None
    assert plan.flux.field.name == "Titan" and plan.flux.standard is FluxStandard.SOLAR_SYSTEM
    assert plan.flux.scale_known
    assert plan.bandpass.name == "J1924-2914"
    assert [f.name for f in plan.phase_calibrators] == ["J1733-1304"]
    assert [f.name for f in plan.calibrators] == ["J1924-2914", "Titan", "J1733-1304"]


def test_without_a_bandpass_calibrator_the_bandpass_is_solved_on_the_flux_calibrator_and_qa_says_so():
    info = ms_info([field(0, "J1517-2422", [FLUX]), field(1, "J1553-2422", [PHASE]), field(2, "T", [TARGET])])
    plan = plan_calibration(info, [], OPTIONS)

    assert plan is not None and plan.bandpass.name == "J1517-2422"
    (missing,) = plan.missing
    assert missing.role is CalibratorRole.BANDPASS
    assert missing.message == "no bandpass calibrator: the bandpass is solved on J1517-2422"
    score = qa.missing_role_score(missing, info.name)
    assert score.band is QABand.WARNING


def test_without_a_phase_calibrator_targets_take_the_bandpass_calibrators_gains_with_a_warning():
    info = ms_info([field(0, "J1517-2422", [BANDPASS, FLUX]), field(1, "T", [TARGET])])
    plan = plan_calibration(info, [], OPTIONS)

    assert plan is not None
    assert plan.phase_calibrators == []
    assert plan.targets[0].gain_field.name == "J1517-2422"
    assert [m.role for m in plan.missing] == [CalibratorRole.PHASE]
    assert plan.missing[0].message.startswith("no phase calibrator")


def test_without_a_flux_calibrator_the_flux_scale_is_unknown_unless_the_job_gives_a_model_for_a_calibrator():
    info = ms_info([field(0, "J1924-2914", [BANDPASS]), field(1, "J1733-1304", [PHASE]), field(2, "T", [TARGET])])

    plan = plan_calibration(info, [], OPTIONS)
    assert plan is not None
    assert plan.flux.field.name == "J1924-2914" and not plan.flux.scale_known
    (missing,) = plan.missing
    assert missing.message == "no flux calibrator: flux scale unknown"
    scores = qa.plan_scores(plan)
    assert [s.message for s in scores] == ["no flux calibrator: flux scale unknown"]
    assert scores[0].band is QABand.ERROR

    given = FluxModel(field="J1733-1304", flux_jy=0.9, reference_frequency_hz=230e9, spectral_index=-0.5)
    with_model = plan_calibration(info, [given], OPTIONS)
    assert with_model is not None
    assert with_model.flux.field.name == "J1733-1304" and with_model.flux.scale_known
    assert with_model.flux.standard is FluxStandard.MANUAL and with_model.flux.flux_jy == 0.9


@pytest.mark.parametrize(
    ("name", "frequency_hz", "standard", "known"),
    [
        ("Mars", 230e9, FluxStandard.SOLAR_SYSTEM, True),
        ("Uranus", 100e9, FluxStandard.SOLAR_SYSTEM, True),
        ("3C286", 40e9, FluxStandard.CATALOGUE, True),
        ("J1331+3030", 10e9, FluxStandard.CATALOGUE, True),
        # Perley-Butler 2017 stops at 50 GHz: at ALMA's frequencies the quasar has no catalogue flux.
        ("3C286", 230e9, FluxStandard.MANUAL, False),
        ("J1517-2422", 230e9, FluxStandard.MANUAL, False),
    ],
)
def test_the_flux_scale_comes_from_casas_models_where_they_exist_and_is_relative_otherwise(
    name, frequency_hz, standard, known
):
    info = ms_info(
        [field(0, name, [BANDPASS, FLUX]), field(1, "J1553-2422", [PHASE]), field(2, "T", [TARGET])],
        spws=[spw(0, centre_hz=frequency_hz)],
    )
    plan = plan_calibration(info, [], OPTIONS)

    assert plan is not None
    assert (plan.flux.standard, plan.flux.scale_known) == (standard, known)
    (score,) = qa.plan_scores(plan)
    if known:
        assert score.score == 1.0
    else:
        assert plan.flux.flux_jy == 1.0 and plan.flux.spectral_index == 0.0
        assert score.message == f"flux calibrator {name} has no flux model: flux scale relative"
        assert score.band is QABand.WARNING


def test_a_flux_model_given_in_the_job_wins_over_the_catalogue():
    info = ms_info([field(0, "3C286", [BANDPASS, FLUX]), field(1, "T", [TARGET])], spws=[spw(0, centre_hz=20e9)])
    given = FluxModel(field="3C286", flux_jy=2.52, reference_frequency_hz=20e9, spectral_index=-0.7)
    plan = plan_calibration(info, [given], OPTIONS)

    assert plan is not None
    assert plan.flux.standard is FluxStandard.MANUAL
    assert (plan.flux.flux_jy, plan.flux.reference_frequency_hz, plan.flux.spectral_index) == (2.52, 20e9, -0.7)


def test_an_ms_without_calibrator_intents_has_no_plan_and_its_qa_names_each_missing_calibrator_plainly():
    info = ms_info([field(0, "J1008+0730", [])])

    assert plan_calibration(info, [], OPTIONS) is None
    scores = qa.no_calibrators_scores(info.name)
    assert [(s.message, s.band) for s in scores] == [
        ("no flux calibrator: flux scale unknown", QABand.ERROR),
        ("no bandpass calibrator", QABand.WARNING),
        ("no phase calibrator", QABand.WARNING),
    ]


def test_only_science_spws_are_calibrated_and_edge_flagged():
    info = ms_info(
        [field(0, "J1517-2422", [BANDPASS, FLUX]), field(1, "T", [TARGET])],
        spws=[spw(0, num_channels=4, science=False), spw(1, num_channels=128), spw(2, num_channels=1)],
    )
    plan = plan_calibration(info, [], CalibrationOptions(edge_channel_fraction=0.05))

    assert plan is not None
    assert plan.science_spw_ids == [1, 2]
    assert plan.edge_channels == {1: 6, 2: 0}
    assert plan.edge_flag_selection == "1:0~5;122~127"


@pytest.mark.parametrize(
    ("channels", "fraction", "expected"),
    [(64, 0.03125, 2), (128, 0.03125, 4), (1, 0.03125, 0), (3, 0.4, 1), (10, 0, 0)],
)
def test_edge_channels_never_take_the_whole_spw(channels, fraction, expected):
    assert edge_channels(channels, fraction) == expected


@pytest.mark.parametrize(
    ("flagged", "edge", "score"), [(0.0625, 0.0625, 1.0), (0.10, 0.0, 0.909), (0.3875, 0.0625, 0.5), (0.9, 0.0, 0.0)]
)
def test_the_flagging_score_counts_only_what_was_flagged_beyond_the_edge_channels(flagged, edge, score):
    assert qa.flagging_score(flagged, edge, "ms").score == pytest.approx(score, abs=1e-3)


def test_solution_scores_follow_their_snr_and_flagged_fraction():
    good = SolutionStatistics(table="t", kind="bandpass", solutions=100, median_snr=383.0, flagged_fraction=0.0)
    weak = SolutionStatistics(table="t", kind="bandpass", solutions=100, median_snr=8.0, flagged_fraction=0.25)
    empty = SolutionStatistics(table="t", kind="bandpass", solutions=0, median_snr=None, flagged_fraction=1.0)

    assert qa.snr_score(good, 3.0, "ms").band is QABand.GOOD
    assert qa.snr_score(weak, 3.0, "ms").score == pytest.approx(5 / 17, abs=1e-3)
    assert qa.snr_score(empty, 3.0, "ms").score == 0.0
    assert qa.flagged_solutions_score(weak, "ms").score == 0.5
    assert qa.flagged_solutions_score(empty, "ms").score == 0.0


@pytest.mark.parametrize(("after", "band"), [(0.4, QABand.GOOD), (20.0, QABand.BELOW_STANDARD), (45.0, QABand.ERROR)])
def test_the_phase_scatter_score_falls_with_the_residual_scatter(after, band):
    score = qa.phase_scatter_score(PhaseScatter(field="J1553-2422", before_deg=104.0, after_deg=after), "ms")
    assert score.band is band
    assert score.metric.value == after and score.metric.unit == "deg"
    assert "104.0 deg before" in score.message
