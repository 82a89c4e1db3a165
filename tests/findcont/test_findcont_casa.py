"""The findcont step with real CASA on generated MOUSs whose truth.json says which channels carry line:
the ranges found against the truth, the products, the operator's ranges, and the ducc0 dirty cube
against tclean's on the same data."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
from aperture_contracts.continuum import ContinuumCase
from aperture_findcont.cont_dat import parse_cont_dat
from aperture_findcont.measurement_set import read_target
from aperture_findcont.steps import FindcontStepResult, dirty_cube_of, find_continuum_in_spw
from aperture_shared.casa.calls import CasaCallLog
from aperture_shared.errors import BadInput

pytestmark = [pytest.mark.casa, pytest.mark.slow]

TARGET = "SimGalaxy"


def _run(mous, spw_id: int, workdir: Path, operator: dict | None = None) -> FindcontStepResult:
    return find_continuum_in_spw(
        {
            "measurement_sets": [str(mous.ms)], "target": TARGET, "spw_id": spw_id,
            "output_dir": str(workdir), "threads": 2, "operator": operator,
        },
        CasaCallLog(),
    )


def _selected(selection: str, channels: int) -> np.ndarray:
    mask = np.zeros(channels, dtype=bool)
    for part in filter(None, selection.split(";")):
        first, last = (int(value) for value in part.split("~"))
        mask[first : last + 1] = True
    return mask


def _truth_mask(ranges: list[tuple[int, int]], channels: int) -> np.ndarray:
    return _selected(";".join(f"{first}~{last}" for first, last in ranges), channels)


@pytest.fixture(scope="module")
def found(calibrated_mous, tmp_path_factory) -> dict[int, FindcontStepResult]:
    return {spw.spw_id: _run(calibrated_mous, spw.spw_id, tmp_path_factory.mktemp(f"spw{spw.spw_id}"))
            for spw in calibrated_mous.truth.spws}


@pytest.mark.parametrize("spw_id", [0, 1])
def test_the_ranges_found_exclude_every_line_channel_of_the_truth_and_keep_most_line_free_ones(
    found, calibrated_mous, spw_id
):
    truth = calibrated_mous.truth.spws[spw_id]
    result = found[spw_id]
    selected = _selected(result.continuum.channel_ranges, truth.nchan)
    line = _truth_mask(truth.line_channels, truth.nchan)
    free = _truth_mask(truth.line_free_channels, truth.nchan)

    assert result.continuum.case is ContinuumCase.LINES_AND_CONTINUUM
    assert not (selected & line).any(), f"line channels {np.flatnonzero(selected & line)} taken as continuum"
    kept = (selected & free).sum() / free.sum()
    assert kept >= 0.8, f"kept {result.continuum.channel_ranges} of {truth.line_free_selection}"
    assert result.continuum.source == "findcont" and result.mask_from_emission


@pytest.mark.parametrize("spw_id", [0, 1])
def test_the_lsrk_ranges_contain_the_channels_selected_and_sit_off_the_line(found, calibrated_mous, spw_id):
    result = found[spw_id]
    target = calibrated_mous.truth.field(TARGET)
    line = next(line for c in target.components for line in c.lines if line.spw_id == spw_id)

    for selected in result.continuum.ranges:
        assert not selected.low_hz <= line.centre_frequency_lsrk_hz <= selected.high_hz
        assert abs(line.centre_frequency_lsrk_hz - selected.low_hz) > line.fwhm_hz
        assert abs(line.centre_frequency_lsrk_hz - selected.high_hz) > line.fwhm_hz
    assert result.continuum.frame == "LSRK"


@pytest.mark.parametrize("spw_id", [0, 1])
def test_the_default_scenarios_continuum_qa_is_green(found, spw_id):
    from aperture_contracts.qa import QABand
    from aperture_findcont.handler import continuum_score

    assert continuum_score(found[spw_id]).band is QABand.GOOD


def test_cont_dat_plot_and_record_are_written_and_agree_with_the_result(found):
    result = found[0]

    entry = parse_cont_dat(Path(result.cont_dat).read_text()).find(TARGET, 0)
    record = json.loads(Path(result.record).read_text())

    assert entry is not None
    assert len(entry.ranges) == len(result.continuum.ranges) == 2
    for written, chosen in zip(entry.ranges, result.continuum.ranges, strict=True):
        assert (written.low_hz, written.high_hz) == pytest.approx((chosen.low_hz, chosen.high_hz), abs=1.0)
    assert Path(result.plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(record["spectrum"]["mean_jy"]) == 64 and record["imaging"]["gridder"] == "ducc0.wgridder.vis2dirty"
    assert record["continuum"] == result.continuum.model_dump(mode="json")


def test_a_spw_without_lines_is_all_continuum_and_written_as_all(edge_line_mous, tmp_path):
    result = _run(edge_line_mous, 0, tmp_path)

    assert result.continuum.case is ContinuumCase.ALL_CONTINUUM
    assert result.continuum.channel_ranges == "0~63" and result.continuum.continuum_fraction == 1.0
    assert "SpectralWindow: 0\nALL\n" in Path(result.cont_dat).read_text()


def test_a_line_across_the_spw_edge_is_excluded_to_the_edge(edge_line_mous, tmp_path):
    truth = edge_line_mous.truth.spws[1]
    result = _run(edge_line_mous, 1, tmp_path)
    selected = _selected(result.continuum.channel_ranges, truth.nchan)

    assert truth.line_channels[-1][1] == 63  # the scenario puts the line across the upper edge
    assert not (selected & _truth_mask(truth.line_channels, 64)).any()
    assert (selected & _truth_mask(truth.line_free_channels, 64)).sum() >= 0.8 * 52
    assert any("upper spw edge" in note for note in result.notes)


def test_operator_ranges_in_topo_take_precedence_and_map_onto_the_ms_channels(found, calibrated_mous, tmp_path):
    truth = calibrated_mous.truth.spws[0]
    half = truth.channel_width_hz / 2
    ranges = [
        [truth.first_channel_hz + first * truth.channel_width_hz - half,
         truth.first_channel_hz + last * truth.channel_width_hz + half, "TOPO"]
        for first, last in truth.line_free_channels
    ]

    result = _run(calibrated_mous, 0, tmp_path, {"all_continuum": False, "ranges": ranges})

    assert result.continuum.source == "operator"
    assert result.continuum.channel_ranges == ";".join(f"{a}~{b}" for a, b in truth.line_free_channels)
    # The channels the operator keeps that findcont alone gives up (its margin around the line) are counted.
    operator_channels = _truth_mask(truth.line_free_channels, 64)
    finder_channels = _selected(found[0].continuum.channel_ranges, 64)
    assert result.finder_line_channels_selected == int((operator_channels & ~finder_channels).sum())
    assert result.finder_case is ContinuumCase.LINES_AND_CONTINUUM


def test_operator_ranges_over_a_line_are_kept_but_the_line_channels_are_counted(calibrated_mous, tmp_path):
    truth = calibrated_mous.truth.spws[0]
    whole = [[truth.first_channel_hz * 0.999, (truth.first_channel_hz + 64 * truth.channel_width_hz) * 1.001, "LSRK"]]

    result = _run(calibrated_mous, 0, tmp_path, {"all_continuum": False, "ranges": whole})

    assert result.continuum.channel_ranges == "0~63"
    assert result.finder_line_channels_selected >= 15


def test_a_target_missing_from_the_data_is_bad_input(calibrated_mous, tmp_path):
    with pytest.raises(BadInput, match="no unflagged cross-correlation of field 'NoSuchGalaxy' in spw 0"):
        find_continuum_in_spw(
            {"measurement_sets": [str(calibrated_mous.ms)], "target": "NoSuchGalaxy", "spw_id": 0,
             "output_dir": str(tmp_path)},
            CasaCallLog(),
        )


def test_the_ducc0_dirty_cube_is_tcleans_dirty_cube(calibrated_mous, tmp_path):
    from aperture_testdata.casa_runtime import casatasks_module, casatools_module

    target = read_target(calibrated_mous.ms, TARGET, 0)
    cube, geometry, lsrk_hz = dirty_cube_of([target], tmp_path, threads=2)
    casatasks_module().tclean(
        vis=str(calibrated_mous.ms), imagename=str(tmp_path / "tclean"), field=TARGET, spw="0", specmode="cube",
        outframe="LSRK", interpolation="nearest", niter=0, weighting="natural", gridder="standard",
        imsize=[geometry.npix, geometry.npix], cell=f"{math.degrees(geometry.cell_rad) * 3600:.6f}arcsec",
        restoration=False, pbcor=False,
    )
    image = casatools_module().image()
    image.open(str(tmp_path / "tclean.residual"))
    try:
        reference = np.transpose(image.getchunk()[:, :, 0, :], (2, 0, 1))
        first_channel_hz = image.coordsys().toworld([0, 0, 0, 0])["numeric"][3]
    finally:
        image.close()

    assert first_channel_hz == pytest.approx(lsrk_hz[0], abs=0.01 * abs(lsrk_hz[1] - lsrk_hz[0]))
    x, y = np.meshgrid(np.arange(geometry.npix), np.arange(geometry.npix), indexing="ij")
    inner = np.hypot(x - geometry.npix // 2, y - geometry.npix // 2) < 0.4 * geometry.npix
    # Channel 0 is left out: tclean's first LSRK channel interpolates from beyond the data.
    difference = np.abs(cube[1:] - reference[1:])[:, inner].max()
    assert difference < 2e-3 * np.abs(reference[1:]).max()
    assert np.unravel_index(np.argmax(cube[1:]), cube[1:].shape) == np.unravel_index(
        np.argmax(reference[1:]), reference[1:].shape
    )
