"""From findcont's continuum ranges to what uvcontsub fits and what each image is made of, including the
explicit cases: no continuum, all continuum, a line forest, and a cont.dat that cannot be used."""

import pytest
from aperture_contracts.continuum import ContinuumCase, ContinuumRanges
from aperture_contracts.enums import ImagingKind
from aperture_imaging.continuum_selection import (
    continuum_fit_order,
    imaging_selection,
    parse_channel_ranges,
    plan_continuum_subtraction,
)
from aperture_shared.errors import BadInput

NCHAN = {0: 64, 1: 64, 2: 128}


def ranges(spw: int, channels: str, case: ContinuumCase = ContinuumCase.LINES_AND_CONTINUUM,
           target: str = "SimGalaxy") -> ContinuumRanges:
    return ContinuumRanges(
        target=target, spw_id=spw, ranges=[], channel_ranges=channels, case=case, source="findcont",
        continuum_fraction=0.5,
    )


def test_channel_ranges_parse_into_inclusive_pairs():
    assert parse_channel_ranges("0~27;47~63", 64) == [(0, 27), (47, 63)]
    assert parse_channel_ranges(" 5 ; 7~9 ", 64) == [(5, 5), (7, 9)]
    assert parse_channel_ranges("", 64) == []


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("27~0", "ends before it starts"),
        ("0~64", "past the spw's last channel (63)"),
        ("a~b", "is not a channel"),
        ("0~30;20~40", "overlaps"),
        ("0:0~10", "is not a channel"),
    ],
)
def test_malformed_channel_ranges_are_refused(text: str, problem: str):
    with pytest.raises(ValueError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        parse_channel_ranges(text, 64)


def test_fit_order_is_linear_only_when_the_continuum_brackets_the_lines():
    assert continuum_fit_order([(0, 27), (47, 63)], 64, ContinuumCase.LINES_AND_CONTINUUM) == 1
    assert continuum_fit_order([(0, 20)], 64, ContinuumCase.LINES_AND_CONTINUUM) == 0  # one side only
    assert continuum_fit_order([(0, 63)], 64, ContinuumCase.ALL_CONTINUUM) == 1
    assert continuum_fit_order([(0, 3), (30, 33), (60, 63)], 64, ContinuumCase.LINE_FOREST) == 0
    assert continuum_fit_order([(0, 63)], 64, ContinuumCase.NOISY) == 0


def test_subtraction_plan_fits_each_spw_and_passes_on_a_spw_without_continuum():
    plan = plan_continuum_subtraction(
        "SimGalaxy", [0, 1, 2],
        [
            ranges(0, "0~27;47~63"),
            ranges(1, "", ContinuumCase.NO_CONTINUUM),
            ranges(2, "", ContinuumCase.ALL_CONTINUUM),
        ],
        NCHAN,
    )
    assert [(s.spw_id, s.channels, s.fitorder, s.continuum_channels) for s in plan.subtract] == [
        (0, "0~27;47~63", 1, 45),
        (2, "0~127", 1, 128),
    ]
    assert plan.pass_through == [1]


def test_ranges_of_other_targets_do_not_count_and_missing_ones_are_a_clear_error():
    with pytest.raises(BadInput) as failure:
        plan_continuum_subtraction("SimGalaxy", [0, 1], [ranges(0, "0~10"), ranges(1, "0~10", target="Other")], NCHAN)
    assert "no continuum ranges for target 'SimGalaxy' in spw(s) [1]" in failure.value.message
    assert "Run findcont" in failure.value.message


def test_an_unusable_cont_dat_selection_names_the_spw_and_what_to_do():
    with pytest.raises(BadInput) as failure:
        plan_continuum_subtraction("SimGalaxy", [0], [ranges(0, "0~70")], NCHAN)
    message = failure.value.message
    assert "spw 0" in message and "'0~70'" in message and "Correct the cont.dat" in message


def test_mfs_uses_the_line_free_channels():
    selection = imaging_selection(ImagingKind.MFS, "SimGalaxy", [0], [ranges(0, "0~27;47~63")], NCHAN)
    (spw,) = selection.spws
    assert (spw.spw_id, spw.channels, spw.used_channels, spw.nchan) == (0, "0~27;47~63", 45, 64)
    assert not selection.fallback and selection.left_out == []


def test_an_all_continuum_spw_is_imaged_whole():
    selection = imaging_selection(
        ImagingKind.MFS, "SimGalaxy", [0], [ranges(0, "", ContinuumCase.ALL_CONTINUUM)], NCHAN
    )
    assert selection.spws[0].channels == "" and selection.spws[0].used_channels == 64


def test_mfs_of_a_spw_without_continuum_images_every_channel_and_says_so():
    selection = imaging_selection(
        ImagingKind.MFS, "SimGalaxy", [1], [ranges(1, "", ContinuumCase.NO_CONTINUUM)], NCHAN
    )
    assert selection.fallback
    assert selection.spws[0].channels == ""
    assert "holds line emission" in selection.describe()


def test_cont_leaves_out_spws_without_continuum():
    selection = imaging_selection(
        ImagingKind.CONT, "SimGalaxy", [0, 1],
        [ranges(0, "0~27;47~63"), ranges(1, "", ContinuumCase.NO_CONTINUUM)], NCHAN,
    )
    assert [spw.spw_id for spw in selection.spws] == [0]
    assert selection.left_out == [1] and not selection.fallback
    assert "spw 1: left out, no line-free channel" in selection.describe()


def test_cont_without_any_continuum_falls_back_to_every_channel_of_every_spw():
    no_continuum = [ranges(spw, "", ContinuumCase.NO_CONTINUUM) for spw in (0, 1)]
    selection = imaging_selection(ImagingKind.CONT, "SimGalaxy", [0, 1], no_continuum, NCHAN)
    assert selection.fallback and [spw.spw_id for spw in selection.spws] == [0, 1]


def test_a_cube_takes_every_channel_and_needs_no_ranges():
    selection = imaging_selection(ImagingKind.CUBE, "SimGalaxy", [2], [], NCHAN)
    assert [(spw.spw_id, spw.channels, spw.used_channels) for spw in selection.spws] == [(2, "", 128)]


def test_a_spw_the_mous_does_not_have_is_a_clear_error():
    with pytest.raises(BadInput, match=r"spw 7 is not among the MOUS's spectral windows \(\[0, 1, 2\]\)"):
        imaging_selection(ImagingKind.CUBE, "SimGalaxy", [7], [], NCHAN)
