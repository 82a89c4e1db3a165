"""A broken antenna on real CASA: the 'bad_antenna' MOUS (DA45's gain takes a random phase and a 5-60 %
amplitude in every integration) calibrated by the step as the worker runs it. Per-integration phases
follow DA45 on the calibrators, so their phase scatter after applycal looks perfect; the per-antenna
gain stability gives it away, DA45 is flagged before the targets are calibrated, the calibration is solved
again without it, and the QA says what was lost. The default MOUS's side (nothing flagged, the score
green) is asserted in test_calibration_steps.py and test_calibration_worker.py."""

from pathlib import Path

import numpy as np
import pytest
from aperture_calibration import qa
from aperture_calibration.gain_outliers import GainTest
from aperture_calibration.handler import calibrated_summary, record_scores
from aperture_contracts.qa import QABand
from aperture_testdata.casa_runtime import casatools_module
from aperture_testdata.scenarios import INTENT_TARGET
from calibration_checks import calibrate_copy, correction_error

pytestmark = [pytest.mark.casa, pytest.mark.slow]


@pytest.fixture(scope="module")
def calibrated(bad_antenna_mous, tmp_path_factory):
    """The bad-antenna MOUS calibrated once by the step (no flux model: the flux scale is relative)."""
    plan, step, run = calibrate_copy(bad_antenna_mous.ms, [], tmp_path_factory.mktemp("bad-antenna-calibration"))
    assert step.record is not None
    return plan, step.record, run


def test_the_broken_antenna_stands_out_by_its_phase_jumps_and_is_the_only_one_flagged(bad_antenna_mous, calibrated):
    _, record, _ = calibrated
    broken = bad_antenna_mous.truth.broken_antenna
    assert broken is not None and broken.antenna == "DA45"
    decision = record.gain_outliers

    assert decision.flagged == ["DA45"]
    (outlier,) = decision.outliers
    assert outlier.findings[0].test is GainTest.PHASE_JUMPS
    by_name = {antenna.antenna: antenna for antenna in decision.antennas}
    # Random phases over the circle jump by ~104 deg rms; the others follow the atmosphere smoothly.
    assert by_name["DA45"].phase_jump_rms_deg is not None and by_name["DA45"].phase_jump_rms_deg > 80
    assert decision.median_phase_jump_deg is not None and decision.median_phase_jump_deg < 5
    others = [a.phase_jump_rms_deg for name, a in by_name.items() if name != "DA45"]
    assert all(jump is not None and jump < 10 for jump in others), others
    # Its amplitude is low too (5-60 % of the normal one).
    assert by_name["DA45"].amplitude_ratio is not None and by_name["DA45"].amplitude_ratio < 0.5


def test_a_qa_score_is_not_green_and_names_the_broken_antenna_and_the_summary_says_why(calibrated):
    plan, record, _ = calibrated

    scores = [*qa.plan_scores(plan), *record_scores(plan, record)]

    not_green = [score for score in scores if score.band is not QABand.GOOD and "DA45" in score.applies_to]
    (antenna_score,) = not_green
    assert antenna_score.band is QABand.BELOW_STANDARD
    assert antenna_score.message.startswith("DA45 flagged: phase jumps ")
    assert "deg rms between integrations vs " in antenna_score.message
    assert antenna_score.metric.name == "phase_jump_rms_deg" and antenna_score.metric.value > 80
    assert "DA45 flagged: phase jumps " in calibrated_summary(plan, record)
    # The flagging is the antenna score's to report, not counted again against applycal or the solutions.
    others = [score for score in scores if score is not antenna_score and score.metric.name != "flux_scale_known"]
    assert all(score.band is QABand.GOOD for score in others), [(s.message, s.score) for s in others]


def test_the_antenna_is_flagged_through_a_recorded_flagdata_call_and_the_gains_are_solved_again_without_it(
    calibrated,
):
    _, record, run = calibrated
    tasks = [call.task for call in run.calls]

    (flagging,) = [
        index for index, call in enumerate(run.calls)
        if call.task == "flagdata" and "GAIN_OUTLIER" in " ".join(call.parameters.get("inpfile") or [])
    ]  # fmt: skip
    assert run.calls[flagging].parameters["inpfile"] == ["mode='manual' antenna='DA45' reason='GAIN_OUTLIER'"]
    # Solved once, the antenna found, flagged, then every table solved again before fluxscale and applycal.
    assert tasks[:flagging].count("gaincal") == 4 and tasks[:flagging].count("applycal") == 0
    assert tasks[flagging:].count("gaincal") == 4 and tasks[flagging:].count("bandpass") == 1
    assert tasks.index("fluxscale") > flagging
    assert "DA45" not in record.reference_antennas
    # No applied table has an unflagged solution for DA45.
    tb = casatools_module().table()
    for table in record.tables:
        tb.open(f"{table}/ANTENNA")
        index = [str(name) for name in tb.getcol("NAME")].index("DA45")
        tb.close()
        tb.open(table)
        try:
            flags = tb.getcol("FLAG")[..., tb.getcol("ANTENNA1") == index]
        finally:
            tb.close()
        assert flags.all(), f"{table}: DA45 has unflagged solutions"


def test_the_targets_lose_the_broken_antennas_baselines_and_keep_the_others_calibrated(bad_antenna_mous, calibrated):
    _, record, _ = calibrated
    truth = bad_antenna_mous.truth
    target = truth.fields_with_intent(INTENT_TARGET)[0].name
    output = Path(record.output_ms)
    tb = casatools_module().table()
    tb.open(f"{output}/FIELD")
    target_id = [str(name) for name in tb.getcol("NAME")].index(target)
    tb.close()
    tb.open(str(output))
    try:
        rows = tb.query(f"FIELD_ID=={target_id} && ANTENNA1!=ANTENNA2")
        try:
            antenna1, antenna2, flags = rows.getcol("ANTENNA1"), rows.getcol("ANTENNA2"), rows.getcol("FLAG")
        finally:
            rows.close()
    finally:
        tb.close()
    assert truth.broken_antenna is not None
    broken = truth.broken_antenna.antenna_index
    on_broken = (antenna1 == broken) | (antenna2 == broken)

    assert flags[..., on_broken].all()
    assert flags[..., ~on_broken].mean() == pytest.approx(4 / 64, abs=1e-3)  # only the spw edges
    # The rest is calibrated as on the default MOUS: the working antennas' injected gains are recovered
    # (measured 5.3 deg; with DA45 left in, its scrambled baselines made it 32 deg).
    assert truth.gains is not None
    error = correction_error(bad_antenna_mous.ms, output, target, truth.gains)
    assert error.phase_rms_deg < 10.0
    assert error.visibilities == np.count_nonzero(~flags)
