"""Scenarios and the gain model: plain Python, no CASA."""

import numpy as np
import pytest
from aperture_testdata.gains import AntennaGain, InjectedGains, draw_gains
from aperture_testdata.scenarios import (
    INTENT_PHASE,
    INTENT_TARGET,
    ScanPlan,
    SkyComponent,
    UnknownScenario,
    default_scenario,
    get_scenario,
)
from pydantic import ValidationError


def test_default_scenario_has_two_band6_spws_and_a_target_with_lines_inside_them():
    scenario = get_scenario("default")
    assert len(scenario.spws) >= 2
    assert all(spw.nchan == 64 and 211e9 < spw.centre_frequency_hz < 275e9 for spw in scenario.spws)
    target = scenario.fields_with_intent(INTENT_TARGET)[0]
    lines = [line for c in target.components for line in c.lines]
    for spw in scenario.spws:
        low = spw.first_channel_hz
        high = low + (spw.nchan - 1) * spw.channel_width_hz
        inside = [line for line in lines if low < line.centre_frequency_hz < high]
        assert inside, f"no line in {spw.name}"
        # Far enough from both edges that line-free channels exist on either side.
        for line in inside:
            assert line.centre_frequency_hz - 2 * line.fwhm_hz > low
            assert line.centre_frequency_hz + 2 * line.fwhm_hz < high


def test_unknown_scenario_is_refused_with_the_known_names():
    with pytest.raises(UnknownScenario, match="default"):
        get_scenario("no-such-scenario")


def test_a_scan_on_a_field_that_does_not_exist_is_refused():
    scenario = default_scenario()
    with pytest.raises(ValidationError, match="do not exist"):
        scenario.model_validate(
            scenario.model_dump()
            | {"scans": [*scenario.model_dump()["scans"], ScanPlan(field="nowhere", duration_s=60)]}
        )


def test_a_gaussian_component_without_a_size_is_refused():
    with pytest.raises(ValidationError, match="needs major, minor"):
        SkyComponent(name="blob", shape="gaussian", flux_jy=1.0, reference_frequency_hz=230e9)


def test_injected_gains_follow_the_recorded_model():
    gains = InjectedGains(
        time_origin_mjd_s=1000.0,
        drift_periods_s=[400.0],
        antennas=[
            AntennaGain(
                antenna="DA41",
                amplitude=[2.0, 1.0],
                phase_offset_deg=[30.0, -10.0],
                delay_ns=[1.0, 0.0],
                drift_amplitude=[0.1],
                drift_amplitude_phase_rad=[0.0],
                drift_phase_deg=[20.0],
                drift_phase_phase_rad=[0.0],
            )
        ],
    )
    # At t = P/4 after the origin each drift sinusoid is at its maximum.
    g = gains.complex_gains(np.array([1100.0]), np.array([0.0, 1e8]))
    assert g.shape == (1, 2, 1, 2)
    assert abs(g[0, 0, 0, 0]) == pytest.approx(2.0 * 1.1)
    assert np.degrees(np.angle(g[0, 0, 0, 0])) == pytest.approx(50.0)
    # A 1 ns delay turns 100 MHz into 36 degrees.
    assert np.degrees(np.angle(g[0, 0, 0, 1] / g[0, 0, 0, 0])) == pytest.approx(36.0)
    assert np.degrees(np.angle(g[0, 1, 0, 0])) == pytest.approx(10.0)


def test_gain_draws_repeat_with_the_seed_and_differ_between_seeds():
    plan = default_scenario().gains
    names = ["DA41", "DA42", "DA43"]

    def draw(seed: int) -> InjectedGains:
        return draw_gains(plan, names, 2, 0.0, np.random.default_rng(seed))

    assert draw(5) == draw(5)
    assert draw(5) != draw(6)
    phases = [p for a in draw(5).antennas for p in a.phase_offset_deg]
    assert all(-180 <= p <= 180 for p in phases)


def test_the_phase_calibrator_is_bright_enough_for_per_integration_solutions():
    """Per-integration phase solutions need SNR: flux / noise per visibility well above 1 per channel."""
    scenario = default_scenario()
    calibrator = scenario.fields_with_intent(INTENT_PHASE)[0].components[0]
    assert calibrator.flux_jy / scenario.noise_sigma_jy >= 10
