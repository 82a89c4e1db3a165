"""describe_measurement_set on real Measurement Sets (VLA, MWA, ALMA excerpts from the pyuvdata wheel):
every value is compared with what the test reads from the tables itself, or with known facts."""

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from aperture_ingest.measurement_set import (
    SOURCE_SBSUMMARY_FREQUENCY,
    SOURCE_SBSUMMARY_WINDOW,
    SOURCE_WIDEST_ON_FIRST_TARGET,
    describe_measurement_set,
    measure_flagged_fraction,
    merge_metadata,
)
from real_measurement_sets import ALMA_EXCERPT, MWA, VLA, VLA_HIGHER_FREQUENCY, VLA_TWO_SPWS

pytestmark = pytest.mark.casa

MJD_EPOCH = datetime(1858, 11, 17, tzinfo=UTC)


def read_column(casa: ModuleType, table_path: Path, column: str) -> np.ndarray:
    table = casa.table()
    table.open(str(table_path))
    try:
        return table.getcol(column)
    finally:
        table.close()


def independent_flagged_fraction(casa: ModuleType, ms: Path) -> float:
    flags = read_column(casa, ms, "FLAG")  # these MSs are small and have one FLAG shape
    row_flags = read_column(casa, ms, "FLAG_ROW")
    return float((flags | row_flags[None, None, :]).mean())


def test_a_vla_excerpt_without_intents_is_described_from_its_tables(casa, pristine):
    ms = pristine(VLA)
    info = describe_measurement_set(ms)

    antenna1, antenna2 = read_column(casa, ms, "ANTENNA1"), read_column(casa, ms, "ANTENNA2")
    with_data = sorted(set(antenna1) | set(antenna2))
    names = read_column(casa, ms / "ANTENNA", "NAME")
    assert info.observatory == "EVLA"
    assert len(names) == 28  # the ANTENNA table lists 28 entries; 18 antennas have data in this excerpt
    assert [a.antenna_id for a in info.antennas] == with_data
    assert [a.name for a in info.antennas] == [str(names[i]) for i in with_data]
    assert info.num_antennas == 18
    assert info.num_baselines == 18 * 17 // 2 == len(set(zip(antenna1, antenna2, strict=True)))
    assert {a.diameter_m for a in info.antennas} == {25.0}  # VLA dishes

    (spw,) = info.spectral_windows
    channel_frequencies = read_column(casa, ms / "SPECTRAL_WINDOW", "CHAN_FREQ")[:, 0]
    assert spw.num_channels == 32
    assert spw.ref_frequency_hz == pytest.approx(channel_frequencies[0])
    assert spw.channel_width_hz == pytest.approx(125e3)
    assert spw.bandwidth_hz == pytest.approx(read_column(casa, ms / "SPECTRAL_WINDOW", "TOTAL_BANDWIDTH")[0])
    assert 26.5e9 < spw.min_frequency_hz < spw.max_frequency_hz < 40e9  # Ka band
    assert spw.frame == "TOPO"
    assert spw.correlations == info.correlations == ["RR", "RL", "LR", "LL"]
    assert spw.science

    (field,) = info.fields
    ra, dec = read_column(casa, ms / "FIELD", "PHASE_DIR")[:, 0, 0]
    assert field.name == "J1008+0730"
    assert field.ra_deg == pytest.approx(math.degrees(ra) % 360)
    assert field.dec_deg == pytest.approx(math.degrees(dec))
    assert field.spw_ids == [0]

    times = read_column(casa, ms, "TIME")
    intervals = read_column(casa, ms, "INTERVAL")
    exposures = read_column(casa, ms, "EXPOSURE")
    assert info.time_start == MJD_EPOCH + timedelta(seconds=float((times - intervals / 2).min()))
    assert info.time_end == MJD_EPOCH + timedelta(seconds=float((times + intervals / 2).max()))
    assert info.time_start.year == 2010
    assert info.exposure_s == pytest.approx(len(np.unique(times)) * exposures[0])  # 15 integrations
    assert info.num_rows == len(times) == 1360
    assert info.data_columns == ["DATA"]
    assert info.flagged_fraction == independent_flagged_fraction(casa, ms) == 0.0


def test_fields_without_intents_are_science_targets(pristine):
    for name in (VLA, MWA):
        info = describe_measurement_set(pristine(name))
        assert info.intents == []
        assert info.has_calibrator_intents is False
        assert [f.intents for f in info.fields] == [[]]
        assert all(f.is_science_target for f in info.fields)
        merged = merge_metadata([info], calibrated=False)
        assert merged.science_targets == [info.fields[0].name]
        assert merged.science_spw_ids == [0]


def test_an_mwa_snapshot_is_described_with_its_tiles_band_and_flags(casa, pristine):
    ms = pristine(MWA)
    info = describe_measurement_set(ms)

    assert info.observatory == "MWA"
    assert len(read_column(casa, ms / "ANTENNA", "NAME")) == 128  # the MWA's 128 tiles
    assert info.num_antennas == 121  # tiles with data in this snapshot
    assert info.num_baselines == 121 * 120 // 2
    assert all(a.name.startswith("Tile") and a.diameter_m == 4.0 for a in info.antennas)
    (spw,) = info.spectral_windows
    assert spw.name == "MWA_BAND_185"
    assert spw.num_channels == 10
    assert spw.channel_width_hz == pytest.approx(3.07e6)
    assert spw.centre_frequency_hz == pytest.approx(184.945e6)
    assert spw.correlations == ["XX", "XY", "YX", "YY"]
    assert info.exposure_s == pytest.approx(112.0)  # one 112 s integration
    assert info.flagged_fraction == pytest.approx(independent_flagged_fraction(casa, ms))
    assert info.flagged_fraction == pytest.approx(0.0164, abs=1e-4)


def test_flagged_fraction_is_the_same_when_read_one_row_at_a_time(casa, pristine):
    ms = pristine(VLA_TWO_SPWS)  # two spws; 3.8 % of its rows are flagged through FLAG_ROW
    row_by_row = describe_measurement_set(ms, chunk_elements=1)
    whole = describe_measurement_set(ms)

    assert row_by_row.flagged_fraction == whole.flagged_fraction == pytest.approx(0.0382, abs=1e-4)
    assert measure_flagged_fraction(ms, chunk_elements=7) == whole.flagged_fraction
    assert whole.flagged_fraction == pytest.approx(independent_flagged_fraction(casa, ms))


def test_two_equal_spws_make_the_lower_id_representative_by_the_rule(casa, pristine):
    ms = pristine(VLA_TWO_SPWS)
    info = describe_measurement_set(ms)
    frequencies = read_column(casa, ms / "SPECTRAL_WINDOW", "CHAN_FREQ")

    assert [s.num_channels for s in info.spectral_windows] == [64, 64]
    assert [s.bandwidth_hz for s in info.spectral_windows] == [8e6, 8e6]
    assert [s.ref_frequency_hz for s in info.spectral_windows] == list(frequencies[0])
    merged = merge_metadata([info], calibrated=False)
    assert merged.science_spw_ids == [0, 1]
    assert merged.representative_spw is not None
    assert merged.representative_spw.spw_id == 0
    assert merged.representative_spw.source == SOURCE_WIDEST_ON_FIRST_TARGET


def test_two_vla_excerpts_of_one_source_merge_into_one_target(pristine):
    higher = describe_measurement_set(pristine(VLA_HIGHER_FREQUENCY))
    lower = describe_measurement_set(pristine(VLA))
    merged = merge_metadata([higher, lower], calibrated=True)

    assert merged.science_targets == ["J1008+0730"]
    assert [m.name for m in merged.measurement_sets] == [VLA_HIGHER_FREQUENCY, VLA]  # as given
    assert merged.calibrated is True
    shift_hz = higher.spectral_windows[0].ref_frequency_hz - lower.spectral_windows[0].ref_frequency_hz
    assert shift_hz == pytest.approx(4e6)


def test_an_alma_excerpt_keeps_its_intents_and_unobserved_calibrators_are_not_targets(casa, pristine):
    ms = pristine(ALMA_EXCERPT)
    info = describe_measurement_set(ms)

    assert info.observatory == "ALMA"
    assert [a.name for a in info.antennas] == ["DA41", "DA42"]
    assert info.num_baselines == 1
    assert info.intents == ["OBSERVE_TARGET#ON_SOURCE"]
    assert info.has_calibrator_intents is False
    by_name = {f.name: f for f in info.fields}
    assert set(by_name) == set(read_column(casa, ms / "FIELD", "NAME"))
    target = by_name["GAMA567624"]
    assert target.is_science_target and target.intents == ["OBSERVE_TARGET#ON_SOURCE"]
    assert info.fields[0].name == "GAMA567624"  # fields with data come first, in the order observed
    for calibrator in ("J1337-1257", "J1410+0203"):  # listed in FIELD, but without data in the excerpt
        assert not by_name[calibrator].is_science_target
        assert by_name[calibrator].spw_ids == []
    (spw,) = info.spectral_windows
    assert spw.name == "X1068667655#ALMA_RB_03#BB_1#SW-01#FULL_RES"
    assert spw.num_channels == 11 and spw.science
    assert spw.correlations == ["XX", "YY"]
    assert info.exposure_s == pytest.approx(40 * 6.048)
    # the SB's representative frequency (112.374 GHz) lies outside this 10-channel excerpt
    assert info.recorded_representative_spw is None
    merged = merge_metadata([info], calibrated=False)
    assert merged.science_targets == ["GAMA567624"]
    assert merged.representative_spw is not None
    assert merged.representative_spw.source == SOURCE_WIDEST_ON_FIRST_TARGET


def _set_science_goals(casa: ModuleType, ms: Path, replace: Callable[[str], str | None]) -> None:
    table = casa.table()
    table.open(str(ms / "ASDM_SBSUMMARY"), nomodify=False)
    try:
        goals = [str(g) for g in table.getcell("scienceGoal", 0)]
        changed = [new for new in (replace(g) for g in goals) if new is not None]
        table.putcell("scienceGoal", 0, np.array(changed, dtype=str))
    finally:
        table.close()


def test_a_representative_window_named_in_the_science_goal_is_used(casa, ms_copy):
    ms = ms_copy(ALMA_EXCERPT)
    goals = read_column(casa, ms / "ASDM_SBSUMMARY", "scienceGoal")[:, 0]
    assert "representativeFrequency = 112.37419508840519 GHz" in goals  # outside the excerpt's spw
    assert not any(goal.startswith("representativeWindow") for goal in goals)  # recorded from Cycle 7

    def add_window(goal: str) -> str:
        return "representativeWindow = ALMA_RB_03#BB_1#SW-01" if goal.startswith("dynamicRange") else goal

    _set_science_goals(casa, ms, add_window)
    info = describe_measurement_set(ms)

    assert info.recorded_representative_spw is not None
    assert info.recorded_representative_spw.spw_id == 0
    assert info.recorded_representative_spw.source.startswith(SOURCE_SBSUMMARY_WINDOW)
    merged = merge_metadata([info], calibrated=False)
    assert merged.representative_spw == info.recorded_representative_spw
    assert merged.representative_spw.source.startswith("data")


def test_a_representative_frequency_inside_a_science_spw_selects_it(casa, ms_copy):
    ms = ms_copy(ALMA_EXCERPT)
    info = describe_measurement_set(ms)
    spw = info.spectral_windows[0]
    # the spw's centre as a barycentric sky frequency at the target's first integration
    measures, quanta = casa.measures(), casa.quanta()
    positions = read_column(casa, ms / "ANTENNA", "POSITION").mean(axis=1)
    measures.doframe(measures.position("ITRF", *(quanta.quantity(float(v), "m") for v in positions)))
    target = info.fields[0]
    measures.doframe(measures.direction("J2000", f"{target.ra_deg}deg", f"{target.dec_deg}deg"))
    first_time = float(read_column(casa, ms, "TIME").min())
    measures.doframe(measures.epoch("UTC", quanta.quantity(first_time, "s")))
    topo = measures.frequency("TOPO", quanta.quantity(spw.centre_frequency_hz, "Hz"))
    barycentric_hz = measures.measure(topo, "BARY")["m0"]["value"]
    measures.done()
    assert abs(barycentric_hz - spw.centre_frequency_hz) > spw.bandwidth_hz / 2  # the frame matters

    _set_science_goals(
        casa,
        ms,
        lambda g: (
            f"representativeFrequency = {barycentric_hz / 1e9!r} GHz"
            if g.startswith("representativeFrequency")
            else g
        ),
    )
    recorded = describe_measurement_set(ms).recorded_representative_spw

    assert recorded is not None and recorded.spw_id == 0
    assert recorded.source.startswith(SOURCE_SBSUMMARY_FREQUENCY)


def test_an_alma_spw_named_wvr_is_not_science_and_leaves_no_representative(casa, ms_copy):
    ms = ms_copy(ALMA_EXCERPT)
    table = casa.table()
    table.open(str(ms / "SPECTRAL_WINDOW"), nomodify=False)
    table.putcell("NAME", 0, "X1068667655#ALMA_RB_03#BB_1#SW-01#CH_AVG")
    table.close()

    info = describe_measurement_set(ms)
    merged = merge_metadata([info], calibrated=False)

    assert info.spectral_windows[0].science is False
    assert merged.science_targets == ["GAMA567624"]
    assert merged.science_spw_ids == []
    assert merged.representative_spw is None


def test_field_directions_in_another_frame_are_converted_to_j2000(casa, ms_copy):
    ms = ms_copy(VLA)
    table = casa.table()
    table.open(str(ms / "FIELD"), nomodify=False)
    measure_info = table.getcolkeyword("PHASE_DIR", "MEASINFO")
    table.putcolkeyword("PHASE_DIR", "MEASINFO", {**measure_info, "Ref": "B1950"})
    table.close()
    ra, dec = read_column(casa, ms / "FIELD", "PHASE_DIR")[:, 0, 0]
    measures = casa.measures()
    expected = measures.measure(measures.direction("B1950", f"{ra}rad", f"{dec}rad"), "J2000")
    measures.done()

    (field,) = describe_measurement_set(ms).fields

    # within an arcsecond: the worker converts at the observation's epoch, this reference at none
    arcsecond = 1 / 3600
    assert field.ra_deg == pytest.approx(math.degrees(expected["m0"]["value"]) % 360, abs=arcsecond)
    assert field.dec_deg == pytest.approx(math.degrees(expected["m1"]["value"]), abs=arcsecond)
    assert abs(field.ra_deg - math.degrees(ra)) > 0.5  # 50 years of precession
