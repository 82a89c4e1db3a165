"""The 'selfcal' scenario and what made it possible: a scenario may observe its target alone (no calibrator
at all), never some calibrator roles without the others; and the generator then writes an MOUS with its
gain errors in DATA and no restore tables (real CASA, the small scenario: ~10 s)."""

import json

import pytest
from aperture_testdata.scenarios import (
    INTENT_FLUX,
    INTENT_PHASE,
    INTENT_TARGET,
    Scenario,
    default_scenario,
    get_scenario,
)
from pydantic import ValidationError


def test_the_selfcal_scenario_observes_one_bright_target_and_no_calibrator():
    scenario = get_scenario("selfcal")

    assert not scenario.has_calibrators and default_scenario().has_calibrators
    (target,) = scenario.fields
    assert target.intents == (INTENT_TARGET,)
    assert max(c.flux_jy for c in target.components) >= 0.3
    # Phases must change within a scan, or solution intervals shorter than a scan would gain nothing.
    scan = scenario.scans[0].duration_s
    assert min(scenario.gains.drift_periods_s) < scan / 2
    assert scenario.gains.phase_offset_max_deg < 90, "the uncorrected image must still show the target"


def test_calibrators_come_for_every_role_or_for_none():
    base = default_scenario()

    def with_intents(change) -> dict:
        """The default scenario's fields with their intents changed, as the validator would see them."""
        fields = [{**field.model_dump(), "intents": change(field.intents)} for field in base.fields]
        return {**base.model_dump(), "fields": fields}

    without_flux = with_intents(lambda intents: [i for i in intents if i != INTENT_FLUX])
    with pytest.raises(ValidationError, match="no field has the intent CALIBRATE_FLUX#ON_SOURCE; give fields"):
        Scenario.model_validate(without_flux)
    without_target = with_intents(lambda intents: [INTENT_PHASE] if INTENT_TARGET in intents else intents)
    with pytest.raises(ValidationError, match=f"no field has the intent {INTENT_TARGET}"):
        Scenario.model_validate(without_target)
    targets_only = with_intents(lambda intents: [INTENT_TARGET])
    assert not Scenario.model_validate(targets_only).has_calibrators


@pytest.mark.casa
@pytest.mark.slow
def test_the_generator_writes_the_selfcal_mous_with_gain_errors_and_no_tables(casa_tools, tmp_path):
    from aperture_testdata.generator import generate_mous

    generated = generate_mous(tmp_path / "mous", seed=3, scenario="selfcal", package=tmp_path / "selfcal.tar")

    truth = generated.truth
    assert truth.scenario == "selfcal" and not truth.calibrated
    assert truth.gains is not None and truth.calibration is None and generated.calibration_tables == []
    assert not (generated.outdir / "cal").exists()
    assert json.loads(generated.manifest.read_text())["apply"] == []
    assert [field.name for field in truth.fields] == ["SimQuasar"]
    assert generated.package is not None and generated.package.is_file()
