"""cont.dat (ALMA format) written and read back, the operator's mistakes refused with the line named, and
the channel <-> frequency-range conversions behind them."""

import numpy as np
import pytest
from aperture_contracts.continuum import FrequencyRange
from aperture_findcont.cont_dat import format_cont_dat, parse_cont_dat
from aperture_findcont.ranges import channel_selection, channel_width_hz, channels_in_ranges, frequency_ranges
from aperture_shared.errors import BadInput

# 64 channels of 15.625 MHz from 229.9278 GHz, as spw 0 of the generated MOUS.
ASCENDING = 229.9278125e9 + 15.625e6 * np.arange(64)
DESCENDING = ASCENDING[::-1].copy()  # a lower-sideband spw: frequency falls with channel


def test_continuum_channels_become_ranges_from_edge_to_edge():
    continuum = np.zeros(64, dtype=bool)
    continuum[0:28] = continuum[47:64] = True

    ranges = frequency_ranges(continuum, ASCENDING, channel_width_hz(ASCENDING))

    assert [(r.low_hz, r.high_hz) for r in ranges] == [
        (ASCENDING[0] - 7.8125e6, ASCENDING[27] + 7.8125e6),
        (ASCENDING[47] - 7.8125e6, ASCENDING[63] + 7.8125e6),
    ]


@pytest.mark.parametrize("grid", [ASCENDING, DESCENDING], ids=["ascending", "descending"])
def test_ranges_map_back_onto_exactly_the_same_channels(grid):
    continuum = np.zeros(64, dtype=bool)
    continuum[3:20] = continuum[33:35] = continuum[60:] = True
    width = channel_width_hz(grid)

    ranges = frequency_ranges(continuum, grid, width)

    assert [r.low_hz for r in ranges] == sorted(r.low_hz for r in ranges)
    assert np.array_equal(channels_in_ranges(ranges, grid, width), continuum)


@pytest.mark.parametrize(("shift", "selected"), [(0.4, "10~20"), (-0.6, "11~21")])
def test_a_grid_shifted_by_part_of_a_channel_keeps_the_channels_whose_centre_is_inside(shift, selected):
    ranges = [FrequencyRange(low_hz=ASCENDING[10] - 7.8125e6, high_hz=ASCENDING[20] + 7.8125e6)]

    shifted = channels_in_ranges(ranges, ASCENDING + shift * 15.625e6, 15.625e6)

    assert channel_selection(shifted) == selected


def test_channel_selections_use_casa_syntax():
    channels = np.zeros(64, dtype=bool)
    assert channel_selection(channels) == ""
    channels[0:28] = channels[47:] = True
    assert channel_selection(channels) == "0~27;47~63"
    channels[:] = True
    assert channel_selection(channels) == "0~63"


def test_cont_dat_round_trips_ranges_to_a_tenth_of_a_hertz():
    ranges = [
        FrequencyRange(low_hz=229.9200000123e9, high_hz=230.3500000456e9),
        FrequencyRange(low_hz=230.6500000789e9, high_hz=230.9200000000e9),
    ]
    text = format_cont_dat("SimGalaxy", 0, ranges, "LSRK")

    entry = parse_cont_dat(text).find("SimGalaxy", 0)

    assert text.splitlines()[:4] == [
        "Field: SimGalaxy", "", "SpectralWindow: 0", "229.9200000123~230.3500000456GHz LSRK"
    ]
    assert entry is not None and not entry.all_continuum
    assert [r.frame for r in entry.ranges] == ["LSRK", "LSRK"]
    assert [r.low_hz for r in entry.ranges] == pytest.approx([r.low_hz for r in ranges], abs=0.1)
    assert [r.high_hz for r in entry.ranges] == pytest.approx([r.high_hz for r in ranges], abs=0.1)


def test_all_and_none_are_written_and_read_as_such():
    text = format_cont_dat("A", 0, [], "LSRK", all_continuum=True) + format_cont_dat("A", 1, [], "LSRK")

    parsed = parse_cont_dat(text)

    assert "\nALL\n" in text and "\nNONE\n" in text
    assert parsed.find("A", 0).all_continuum and not parsed.find("A", 0).no_continuum
    assert parsed.find("A", 1).no_continuum and parsed.find("A", 1).ranges == []


def test_the_pipelines_later_format_with_spw_names_flags_and_several_ranges_per_line_is_read():
    text = """# edited by hand
Field: "NGC 2872"

SpectralWindow: 25 X123#ALMA_RB_06#BB_1#SW-01#FULL_RES
230100~230300MHz;230.5~230.6GHz LSRK
Flags: LOWBANDWIDTH

SpectralWindow: 27 X123#ALMA_RB_06#BB_2#SW-01#FULL_RES
Flags: ALLCONT

SpectralWindow: 29
220.1~220.2GHz topo
"""
    parsed = parse_cont_dat(text)

    by_name = parsed.find("NGC 2872", 999, "X123#ALMA_RB_06#BB_1#SW-01#FULL_RES")
    assert by_name is not None and by_name.spw_id == 25
    assert [r.low_hz for r in by_name.ranges] == pytest.approx([230.1e9, 230.5e9])
    assert [r.high_hz for r in by_name.ranges] == pytest.approx([230.3e9, 230.6e9])
    assert by_name.flags == ["LOWBANDWIDTH"]
    assert parsed.find("NGC 2872", 27).all_continuum
    assert parsed.find("NGC 2872", 29).ranges[0].frame == "TOPO"
    assert parsed.find("NGC 2872", 31) is None and parsed.find("elsewhere", 25) is None


@pytest.mark.parametrize(
    ("text", "line", "says"),
    [
        ("230.1~230.2GHz LSRK\n", 1, "expected 'Field: <name>'"),
        ("Field:\n", 1, "needs the field's name"),
        ("SpectralWindow: 0\n", 1, "must follow a 'Field: <name>' line"),
        ("Field: A\nSpectralWindow: zero\n", 2, "whole-number id"),
        ("Field: A\nSpectralWindow: 0\n230.1~230.2GHz\n", 3, "needs its frame"),
        ("Field: A\nSpectralWindow: 0\n230.1~230.2GHz BARY\n", 3, "frame 'BARY' is not supported"),
        ("Field: A\nSpectralWindow: 0\n230.1~230.2Gz LSRK\n", 3, "not a frequency unit"),
        ("Field: A\nSpectralWindow: 0\n230.3~230.2GHz LSRK\n", 3, "lower to a higher"),
        ("Field: A\nSpectralWindow: 0\n230.1-230.2GHz LSRK\n", 3, "is not a range"),
        ("Field: A\nSpectralWindow: 0\nALL\nField: A\nSpectralWindow: 0\nNONE\n", 5, "appears twice"),
        ("Field: A\n\nSpectralWindow: 0\nALL\n230.1~230.2GHz LSRK\n", 3, "says ALL and also lists ranges"),
    ],
)
def test_a_broken_cont_dat_is_refused_naming_the_line_and_the_fix(text, line, says):
    with pytest.raises(BadInput) as refused:
        parse_cont_dat(text, source="the operator's cont.dat")

    assert f"the operator's cont.dat line {line}" in refused.value.message
    assert says in refused.value.message
