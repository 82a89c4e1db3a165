"""The calibration steps on real CASA: a simulated, uncalibrated ALMA-like MS calibrated from its own
calibrators in a CASA child process, as the worker runs it, and compared with the simulation's truth;
and the rule that tells a delivered calibration (CORRECTED_DATA) from a copy of DATA, on a real VLA MS."""

import shutil
from pathlib import Path

import numpy as np
import pytest
from aperture_calibration.plan import CalibrationOptions, FluxStandard, plan_calibration
from aperture_calibration.sequence import set_flux_model
from aperture_calibration.steps import CalibrationStepResult, inspect_delivered_calibration
from aperture_contracts.flux import FluxModel
from aperture_ingest.measurement_set import describe_measurement_set
from aperture_shared.casa.calls import CasaCallLog
from aperture_shared.casa.runner import run_casa_step
from aperture_testdata.measure import phase_scatter_deg
from aperture_testdata.scenarios import INTENT_FLUX, INTENT_PHASE, INTENT_TARGET
from calibration_checks import calibrate_copy, correction_error, vector_averaged_amplitude

pytestmark = [pytest.mark.casa, pytest.mark.slow]


@pytest.fixture(scope="module")
def calibrated(uncalibrated_mous, tmp_path_factory):
    """The MOUS calibrated once by the step, with the flux calibrator's true flux given as its model."""
    truth = uncalibrated_mous.truth
    flux_calibrator = truth.fields_with_intent(INTENT_FLUX)[0]
    source = flux_calibrator.components[0]
    model = FluxModel(
        field=flux_calibrator.name, flux_jy=source.flux_jy, reference_frequency_hz=source.reference_frequency_hz,
        spectral_index=source.spectral_index,
    )
    plan, step, run = calibrate_copy(uncalibrated_mous.ms, [model], tmp_path_factory.mktemp("calibration-step"))
    assert not step.delivered_calibrated and step.record is not None
    (raw,) = step.data_phase_scatter
    assert raw.scatter_deg > 60, "raw data: each antenna's arbitrary phase"
    return plan, step.record, run


def test_the_phase_calibrators_phase_scatter_drops_more_than_tenfold(uncalibrated_mous, calibrated):
    _, record, _ = calibrated
    phase_calibrator = uncalibrated_mous.truth.fields_with_intent(INTENT_PHASE)[0].name

    before = phase_scatter_deg(uncalibrated_mous.ms, phase_calibrator, "DATA")
    after = phase_scatter_deg(Path(record.output_ms), phase_calibrator, "DATA")

    assert before / after >= 10, f"{phase_calibrator}: {before:.1f} -> {after:.2f} deg"
    (measured,) = record.phase_scatter
    assert measured.field == phase_calibrator
    assert measured.before_deg == pytest.approx(before, rel=0.05)
    assert measured.after_deg == pytest.approx(after, abs=0.5)


def test_the_phase_calibrator_comes_out_at_its_true_flux_in_every_spw(uncalibrated_mous, calibrated):
    _, record, _ = calibrated
    truth = uncalibrated_mous.truth
    phase_calibrator = truth.fields_with_intent(INTENT_PHASE)[0]
    source = phase_calibrator.components[0]
    for spw in truth.spws:
        true_flux = source.flux_jy * (spw.centre_frequency_hz / source.reference_frequency_hz) ** source.spectral_index
        measured = vector_averaged_amplitude(Path(record.output_ms), phase_calibrator.name, spw.spw_id)
        assert measured == pytest.approx(true_flux, rel=0.10), f"spw {spw.spw_id}"
        (derived,) = [f for f in record.derived_flux if f.field == phase_calibrator.name and f.spw_id == spw.spw_id]
        assert derived.flux_jy == pytest.approx(true_flux, rel=0.05)


def test_the_targets_calibration_matches_the_injected_gains_in_amplitude_and_phase(uncalibrated_mous, calibrated):
    _, record, _ = calibrated
    truth = uncalibrated_mous.truth
    target = truth.fields_with_intent(INTENT_TARGET)[0].name
    assert truth.gains is not None

    error = correction_error(uncalibrated_mous.ms, Path(record.output_ms), target, truth.gains)

    # The flux scale carried from the flux calibrator's model to the target through the phase calibrator.
    assert error.median_amplitude == pytest.approx(1.0, abs=0.10)
    # Phases interpolated in time between the phase calibrator's scans.
    assert error.phase_rms_deg < 10.0
    assert error.visibilities > 100_000


def test_the_sequence_is_the_alma_one_and_every_task_is_recorded_with_its_parameters(calibrated):
    plan, record, run = calibrated
    tasks = [call.task for call in run.calls]

    assert tasks == [
        "flagdata", "flagdata", "flagdata", "setjy", "gaincal", "bandpass", "gaincal", "gaincal", "gaincal",
        "fluxscale", "applycal", "applycal", "applycal", "split", "flagdata",
    ]  # fmt: skip
    flagging = run.calls[1].parameters
    assert flagging["mode"] == "list"
    commands = " | ".join(flagging["inpfile"])
    for expected in ("autocorr=True", "mode='shadow'", "clipzeros=True", "spw='0:0~1;62~63,1:0~1;62~63'"):
        assert expected in commands
    setjy = run.calls[3].parameters
    assert setjy["standard"] == "manual" and setjy["fluxdensity"][0] == plan.flux.flux_jy
    target_applycal = run.calls[12].parameters
    phase_id = plan.phase_calibrators[0].selection
    assert target_applycal["gainfield"] == ["", phase_id, phase_id]
    assert target_applycal["gaintable"][1].endswith(".phase_inf.gcal")
    assert [t.rsplit("/", 1)[1] for t in record.tables] == [
        f"{plan.ms_name}.{kind}" for kind in ("bandpass.bcal", "phase_int.gcal", "phase_inf.gcal", "flux_inf.gcal")
    ]


def test_flagging_takes_the_edge_channels_and_the_solutions_are_strong(calibrated):
    _, record, _ = calibrated

    # The simulation has no zeros, no shadowing and no autocorrelations: only the 2 + 2 edge channels of 64.
    assert record.flagged_fraction_after_flagging == pytest.approx(4 / 64, abs=1e-4)
    assert record.edge_channel_share == pytest.approx(4 / 64, abs=1e-4)
    assert record.flagged_fraction_calibrated == pytest.approx(record.flagged_fraction_after_flagging, abs=1e-3)
    for statistics in record.solutions:
        assert statistics.flagged_fraction == 0.0, statistics
        assert statistics.median_snr is not None and statistics.median_snr > 50, statistics


def test_no_antenna_of_a_working_array_is_an_outlier_and_none_is_flagged(calibrated):
    plan, record, run = calibrated
    decision = record.gain_outliers

    assert decision.flagged == [] and decision.outliers == [] and decision.compared == 25
    # Per-integration phases of working antennas change by a few degrees (the reference antenna's by none).
    jumps = [a.phase_jump_rms_deg for a in decision.antennas]
    assert all(jump is not None and jump < 6 for jump in jumps), jumps
    assert decision.median_phase_jump_deg is not None and 0.5 < decision.median_phase_jump_deg < 4
    assert decision.worst is not None and decision.worst.severity < 0.5
    assert not any("GAIN_OUTLIER" in str(call.parameters.get("inpfile")) for call in run.calls)
    assert record.flagged_fraction_before_applycal == record.flagged_fraction_after_flagging


def test_the_calibrated_ms_holds_the_calibrated_data_in_data_only(calibrated):
    _, record, _ = calibrated
    info = describe_measurement_set(Path(record.output_ms))
    assert info.data_columns == ["DATA"]
    assert [f.name for f in info.fields] == ["J1517-2422", "J1553-2422", "SimGalaxy"]


async def test_data_that_are_calibrated_already_are_recognised_by_their_calibrators_phases_and_left_alone(
    restored_mous, tmp_path
):
    # An archive's calibrated split keeps its intents: calibrating it again, without a flux model, would
    # replace the observatory's flux scale by 1 Jy.
    (restored,) = restored_mous.measurement_sets
    ms = tmp_path / Path(restored).name
    shutil.copytree(restored, ms)
    plan = plan_calibration(describe_measurement_set(ms), [], CalibrationOptions())
    assert plan is not None and not plan.flux.scale_known

    run = await run_casa_step(
        "aperture_calibration.steps:calibrate_measurement_set",
        {"ms": str(ms), "plan": plan.model_dump(mode="json"), "tables_dir": str(tmp_path / "tables"),
         "output": str(tmp_path / "calibrated" / ms.name)},
        workdir=tmp_path / "casa", time_limit_s=120, memory_limit_mb=4096,
    )  # fmt: skip

    step = CalibrationStepResult.model_validate(run.value)
    assert step.delivered_calibrated and step.record is None
    (checked,) = step.data_phase_scatter
    assert checked.field == "J1553-2422" and checked.scatter_deg < 2.0
    assert run.calls == []
    assert not (tmp_path / "calibrated").exists() and not (tmp_path / "tables").exists()
    assert describe_measurement_set(ms).data_columns == ["DATA"]


def test_corrected_data_that_only_copies_data_is_no_delivered_calibration(casatasks, vla_copy, tmp_path):
    casatasks.clearcal(vis=str(vla_copy), addmodel=False)  # creates CORRECTED_DATA = DATA

    delivered = inspect_delivered_calibration({"ms": str(vla_copy), "output": str(tmp_path / "out.ms")}, CasaCallLog())

    assert not delivered.calibrated and delivered.output_ms is None
    assert delivered.comparison.differing_fraction == 0.0
    assert delivered.comparison.visibilities_compared > 10_000
    assert not (tmp_path / "out.ms").exists()


def test_corrected_data_that_differs_from_data_is_split_out_as_a_delivered_calibration(
    casatasks, casa_tools, vla_copy, tmp_path
):
    casatasks.clearcal(vis=str(vla_copy), addmodel=False)
    table = casa_tools.table()
    table.open(str(vla_copy), nomodify=False)
    try:
        corrected = table.getcol("DATA") * (0.5 * np.exp(0.3j))  # as if gains of sqrt(2) had been applied
        table.putcol("CORRECTED_DATA", corrected)
    finally:
        table.close()
    calls = CasaCallLog()

    delivered = inspect_delivered_calibration({"ms": str(vla_copy), "output": str(tmp_path / "out.ms")}, calls)

    assert delivered.calibrated and delivered.output_ms == str(tmp_path / "out.ms")
    assert delivered.comparison.differing_fraction > 0.99
    assert delivered.comparison.median_ratio == pytest.approx(0.5, rel=1e-4)
    assert [call.task for call in calls.calls] == ["split"]
    table.open(str(tmp_path / "out.ms"))
    try:
        assert "CORRECTED_DATA" not in table.colnames()
        assert np.allclose(table.getcol("DATA"), corrected, rtol=1e-5)
    finally:
        table.close()


def test_a_solar_system_flux_calibrator_is_modelled_from_its_ephemeris_offline(
    casatasks, casa_tools, uncalibrated_mous, tmp_path
):
    ms = tmp_path / uncalibrated_mous.ms.name
    shutil.copytree(uncalibrated_mous.ms, ms)
    table = casa_tools.table()
    table.open(str(ms / "FIELD"), nomodify=False)
    try:
        names = list(table.getcol("NAME"))
        names[0] = "Uranus"  # the bandpass/flux calibrator, renamed: setjy models what the name says
        table.putcol("NAME", names)
    finally:
        table.close()
    plan = plan_calibration(describe_measurement_set(ms), [], CalibrationOptions())
    assert plan is not None and plan.flux.standard is FluxStandard.SOLAR_SYSTEM
    calls = CasaCallLog()

    fluxes = set_flux_model(ms, plan.flux, calls)

    # Uranus's disc at 220-230 GHz: some 30 Jy (Butler-JPL-Horizons 2012, ephemeris from casadata).
    assert [f.spw_id for f in fluxes] == [0, 1]
    assert all(f.field == "Uranus" and 20 < f.flux_jy < 45 for f in fluxes), fluxes
    # CASA writes ephemeris models only into MODEL_DATA (a virtual model is refused for them).
    assert calls.calls[0].parameters["usescratch"] is True
    table.open(str(ms))
    try:
        assert "MODEL_DATA" in table.colnames()
    finally:
        table.close()
