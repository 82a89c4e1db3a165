"""merge_metadata on hand-made descriptions: target order, science spws and the representative spw rule
with its tie-breaks. No CASA needed."""

from datetime import UTC, datetime, timedelta

import pytest
from aperture_contracts.metadata import (
    AntennaInfo,
    FieldInfo,
    MeasurementSetInfo,
    RepresentativeSpw,
    SpectralWindow,
)
from aperture_ingest.measurement_set import (
    SOURCE_WIDEST_ON_FIRST_TARGET,
    is_science_spectral_window,
    merge_metadata,
)
from aperture_shared.errors import BadInput

START = datetime(2025, 6, 1, 3, 0, tzinfo=UTC)


def spw(spw_id: int, bandwidth_mhz: float, channels: int, science: bool = True) -> SpectralWindow:
    low = 230e9 + spw_id * 2e9
    return SpectralWindow(
        spw_id=spw_id, name=f"SW-{spw_id}", num_channels=channels, ref_frequency_hz=low,
        centre_frequency_hz=low + bandwidth_mhz * 5e5, bandwidth_hz=bandwidth_mhz * 1e6,
        channel_width_hz=bandwidth_mhz * 1e6 / channels, min_frequency_hz=low,
        max_frequency_hz=low + bandwidth_mhz * 1e6, science=science,
    )  # fmt: skip


def field(field_id: int, name: str, spw_ids: list[int], target: bool = True) -> FieldInfo:
    intents = ["OBSERVE_TARGET#ON_SOURCE"] if target else ["CALIBRATE_PHASE#ON_SOURCE"]
    return FieldInfo(
        field_id=field_id, name=name, ra_deg=10.0, dec_deg=-20.0, intents=intents,
        is_science_target=target, spw_ids=spw_ids,
    )  # fmt: skip


def ms(
    name: str,
    fields: list[FieldInfo],
    spws: list[SpectralWindow],
    starts_after_h: float = 0.0,
    recorded: RepresentativeSpw | None = None,
) -> MeasurementSetInfo:
    start = START + timedelta(hours=starts_after_h)
    return MeasurementSetInfo(
        name=name, observatory="ALMA", time_start=start, time_end=start + timedelta(hours=1),
        exposure_s=600.0, num_rows=100, num_antennas=2, num_baselines=1,
        antennas=[AntennaInfo(antenna_id=i, name=f"DA4{i}", diameter_m=12.0) for i in range(2)],
        fields=fields, spectral_windows=spws, correlations=["XX", "YY"],
        intents=sorted({i for f in fields for i in f.intents}), flagged_fraction=0.0,
        data_columns=["DATA"], has_calibrator_intents=any(not f.is_science_target for f in fields),
        recorded_representative_spw=recorded,
    )  # fmt: skip


def test_targets_are_ordered_by_first_observation_across_measurement_sets():
    later = ms("b.ms", [field(0, "NGC253", [0]), field(1, "M83", [0])], [spw(0, 1875, 128)], starts_after_h=2)
    earlier = ms("a.ms", [field(0, "Circinus", [0]), field(1, "NGC253", [0])], [spw(0, 1875, 128)])

    merged = merge_metadata([later, earlier], calibrated=False)

    assert merged.science_targets == ["Circinus", "NGC253", "M83"]
    assert [info.name for info in merged.measurement_sets] == ["b.ms", "a.ms"]


def test_science_spws_are_those_observed_on_targets_and_not_wvr_or_averages():
    info = ms(
        "a.ms",
        [field(0, "J1553-2422", [0, 1, 2, 3], target=False), field(1, "SimGalaxy", [1, 2, 3])],
        [spw(0, 1875, 128), spw(1, 1875, 128), spw(2, 1875, 128), spw(3, 7.5, 4, science=False)],
    )
    assert merge_metadata([info], calibrated=False).science_spw_ids == [1, 2]


@pytest.mark.parametrize(
    "spws, expected",
    [
        ([spw(0, 937.5, 3840), spw(1, 1875, 128), spw(2, 468.75, 1920)], 1),  # widest bandwidth
        ([spw(0, 1875, 128), spw(1, 1875, 3840), spw(2, 1875, 1920)], 1),  # tie: most channels
        ([spw(0, 1875, 128), spw(1, 1875, 128)], 0),  # tie again: lowest id
    ],
)
def test_the_rule_picks_the_widest_spw_then_most_channels_then_lowest_id(spws, expected):
    info = ms("a.ms", [field(0, "SimGalaxy", [s.spw_id for s in spws])], spws)
    representative = merge_metadata([info], calibrated=False).representative_spw
    assert representative == RepresentativeSpw(spw_id=expected, source=SOURCE_WIDEST_ON_FIRST_TARGET)


def test_the_rule_looks_only_at_spws_observed_on_the_first_target():
    spws = [spw(0, 468.75, 1920), spw(1, 1875, 128)]
    info = ms("a.ms", [field(0, "First", [0]), field(1, "Second", [0, 1])], spws)
    merged = merge_metadata([info], calibrated=False)
    assert merged.science_spw_ids == [0, 1]
    assert merged.representative_spw is not None and merged.representative_spw.spw_id == 0


def test_a_recorded_representative_spw_wins_over_the_rule():
    recorded = RepresentativeSpw(spw_id=2, source="data: ASDM_SBSUMMARY science goal representativeWindow")
    spws = [spw(0, 1875, 128), spw(1, 1875, 128), spw(2, 468.75, 1920)]
    first = ms("a.ms", [field(0, "SimGalaxy", [0, 1, 2])], spws)
    second = ms("b.ms", [field(0, "SimGalaxy", [0, 1, 2])], spws, starts_after_h=2, recorded=recorded)

    assert merge_metadata([first, second], calibrated=False).representative_spw == recorded


def test_a_recorded_spw_that_is_not_a_science_spw_is_ignored():
    recorded = RepresentativeSpw(spw_id=3, source="data: ASDM_SBSUMMARY science goal representativeWindow")
    spws = [spw(0, 1875, 128), spw(3, 7.5, 4, science=False)]
    info = ms("a.ms", [field(0, "SimGalaxy", [0, 3])], spws, recorded=recorded)
    representative = merge_metadata([info], calibrated=False).representative_spw
    assert representative == RepresentativeSpw(spw_id=0, source=SOURCE_WIDEST_ON_FIRST_TARGET)


def test_an_mous_of_calibrators_only_has_no_targets_and_no_representative_spw():
    info = ms("a.ms", [field(0, "J1553-2422", [0], target=False)], [spw(0, 1875, 128)])
    merged = merge_metadata([info], calibrated=False)
    assert merged.science_targets == [] and merged.science_spw_ids == []
    assert merged.representative_spw is None


def test_merging_nothing_is_bad_input():
    with pytest.raises(BadInput, match="no Measurement Set"):
        merge_metadata([], calibrated=False)


@pytest.mark.parametrize(
    "name, channels, observatory, intents, science",
    [
        ("X1#ALMA_RB_06#BB_1#SW-01#FULL_RES", 128, "ALMA", ["OBSERVE_TARGET#ON_SOURCE"], True),
        ("X1#ALMA_RB_06#BB_1#SW-01#CH_AVG", 1, "ALMA", ["OBSERVE_TARGET#ON_SOURCE"], False),
        ("WVR#NOMINAL", 4, "ALMA", ["CALIBRATE_WVR#ON_SOURCE"], False),
        ("X1#ALMA_RB_06#BB_1#SW-01#FULL_RES", 4, "ALMA", ["OBSERVE_TARGET#ON_SOURCE"], False),
        ("IF 1, 4 channels", 4, "LWASV", [], True),  # 4 channels mean nothing special outside ALMA
        ("X1#ALMA_RB_06#BB_1#SW-01#FULL_RES", 128, "ALMA", ["CALIBRATE_ATMOSPHERE#ON_SOURCE"], False),
        ("X1#ALMA_RB_06#BB_1#SW-01#FULL_RES", 128, "ALMA", ["OBSERVE_CHECK_SOURCE#ON_SOURCE"], True),
        ("EVLA_KA#A1C1#0", 64, "EVLA", [], True),
    ],
)
def test_which_spectral_windows_carry_science_data(name, channels, observatory, intents, science):
    assert is_science_spectral_window(name, channels, observatory, intents) is science
