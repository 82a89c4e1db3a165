"""The hard cases of the scenario registry (line forest, broad line, a line as wide as a spw, a broken
antenna): what each puts in the data, checked on the scenario and on the truth the generator would write,
without CASA (the LSRK/TOPO shift, under a channel, is left out here)."""

import numpy as np
import pytest
from aperture_testdata.gains import BrokenAntennaGains, draw_broken_antenna
from aperture_testdata.generator import _spw_truth
from aperture_testdata.scenarios import (
    INTENT_TARGET,
    SCENARIOS,
    BrokenAntennaPlan,
    default_scenario,
    get_scenario,
)
from pydantic import ValidationError


def _line_free(scenario_name: str, spw_id: int) -> np.ndarray:
    scenario = get_scenario(scenario_name)
    truth = _spw_truth(spw_id, scenario.spws[spw_id], scenario, {f.name: 1.0 for f in scenario.fields})
    free = np.zeros(truth.nchan, dtype=bool)
    for first, last in truth.line_free_channels:
        free[first : last + 1] = True
    return free


def _target_lines(scenario_name: str):
    target = get_scenario(scenario_name).fields_with_intent(INTENT_TARGET)[0]
    return [line for component in target.components for line in component.lines]


@pytest.mark.parametrize("name", ["line_forest", "broad_line", "whole_spw_line", "bad_antenna"])
def test_each_hard_case_is_registered_small_and_valid(name):
    scenario = get_scenario(name)

    assert name in SCENARIOS and scenario.name == name
    assert [spw.nchan for spw in scenario.spws] == [64, 64]
    assert scenario.n_antennas == default_scenario().n_antennas


def test_the_line_forest_leaves_little_line_free_in_spw0_and_spw1_as_in_the_default():
    forest = [line for line in _target_lines("line_forest") if line.transition.startswith("U-line")]

    assert len(forest) >= 10
    assert _line_free("line_forest", 0).mean() < 0.2
    assert np.array_equal(_line_free("line_forest", 1), _line_free("default", 1))


def test_the_broad_line_is_a_quarter_of_the_spw_wide_and_leaves_continuum_on_both_sides():
    spw = get_scenario("broad_line").spws[0]
    (broad,) = [line for line in _target_lines("broad_line") if line.transition == "CO(2-1)"]
    free = _line_free("broad_line", 0)

    assert broad.fwhm_hz >= 0.2 * spw.nchan * spw.channel_width_hz
    assert free[:5].all() and free[-5:].all() and 0.25 < free.mean() < 0.5


def test_the_whole_spw_line_leaves_no_line_free_channel_in_spw1_only():
    assert not _line_free("whole_spw_line", 1).any()
    assert np.array_equal(_line_free("whole_spw_line", 0), _line_free("default", 0))


def test_the_bad_antenna_scenario_breaks_one_antenna_that_is_in_the_array():
    scenario = get_scenario("bad_antenna")

    assert scenario.broken_antenna is not None and scenario.broken_antenna.antenna_index < scenario.n_antennas
    assert default_scenario().broken_antenna is None
    with pytest.raises(ValidationError, match="the broken antenna is row 25"):
        scenario.model_validate(scenario.model_dump() | {"broken_antenna": {"antenna_index": 25}})
    with pytest.raises(ValidationError, match="below amplitude_low"):
        BrokenAntennaPlan(antenna_index=1, amplitude_low=0.5, amplitude_high=0.2)


def test_a_broken_antennas_factors_are_drawn_from_the_seed_within_the_plan_and_recorded_whole():
    plan = BrokenAntennaPlan(antenna_index=1, amplitude_low=0.1, amplitude_high=0.4)
    times = np.array([30.0, 0.0, 60.0, 30.0])

    def draw(seed: int) -> BrokenAntennaGains:
        return draw_broken_antenna(plan, ["DA41", "DA42", "DA43"], times, 2, np.random.default_rng(seed))

    broken = draw(3)
    assert broken == draw(3) and broken != draw(4)
    assert broken.antenna == "DA42" and broken.times_mjd_s == [0.0, 30.0, 60.0]
    assert all(0.1 <= a <= 0.4 for per_pol in broken.amplitude for a in per_pol)
    # The factors are the recorded values, at the recorded times, whatever their order in the request.
    factors = broken.factors(np.array([60.0, 0.0]))
    assert factors.shape == (2, 2)
    assert abs(factors[1, 0]) == pytest.approx(broken.amplitude[1][2], abs=1e-6)
    assert np.degrees(np.angle(factors[0, 1])) == pytest.approx(broken.phase_deg[0][0], abs=1e-3)
    with pytest.raises(ValueError, match="not integrations"):
        broken.factors(np.array([45.0]))
