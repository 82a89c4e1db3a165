"""The ducc0 dirty cube on synthetic visibilities: positions, fluxes, mosaics and the LSRK channel
alignment (numpy and ducc0 only; the comparison with tclean on a real MS is in test_findcont_casa.py).

Visibilities follow the sign convention of the Measurement Sets CASA writes: a point source at
(east, north) direction cosines l, m gives V = S exp(+2 pi i (u l + v m)).
"""

import math

import numpy as np
import pytest
from aperture_findcont.dirty_cube import (
    SPEED_OF_LIGHT_M_S,
    DirtyCube,
    ImageGeometry,
    VisibilityBlock,
    nearest_input_channels,
    plan_geometry,
    sin_offsets,
)

ARCSEC = math.radians(1 / 3600)
TOPO_HZ = 229.9278125e9 + 15.625e6 * np.arange(64)


def _uvw(rows: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.uniform(-150, 150, rows), rng.uniform(-150, 150, rows), rng.uniform(-5, 5, rows)])


def _point_source(uvw_m: np.ndarray, frequency_hz: float, east: float, north: float, flux: float = 1.0) -> np.ndarray:
    u, v = (uvw_m[:, :2] * frequency_hz / SPEED_OF_LIGHT_M_S).T
    return (flux * np.exp(2j * np.pi * (u * east + v * north))).astype(np.complex64)


def _geometry(npix: int = 128, pointings: tuple[tuple[float, float], ...] = ((0.0, 0.0),)) -> ImageGeometry:
    return ImageGeometry(
        npix=npix, cell_rad=0.3 * ARCSEC, pointing_offsets_rad=pointings, primary_beam_fwhm_rad=25 * ARCSEC,
        beam_rad=1.5 * ARCSEC,
    )


def _block(
    uvw: np.ndarray, vis: np.ndarray, factor: float = 1.0, centres=((0.0, 0.0),), pointing=None
) -> VisibilityBlock:
    rows = uvw.shape[0]
    return VisibilityBlock(
        uvw_m=uvw, vis=vis, weight=np.ones(vis.shape, dtype=np.float32), first_channel=0,
        lsrk_factor=np.full(rows, factor), pointing=np.zeros(rows, dtype=np.int64) if pointing is None else pointing,
        pointing_centres=centres,
    )


def test_a_point_source_lands_east_left_and_north_up_with_its_flux():
    uvw = _uvw(4000)
    vis = np.repeat(_point_source(uvw, TOPO_HZ[0], 6 * ARCSEC, 3 * ARCSEC, flux=2.5)[:, None], 1, axis=1)
    cube = DirtyCube(_geometry(), TOPO_HZ[:1])

    cube.add(_block(uvw, vis), TOPO_HZ[:1])
    image = cube.finish()[0]

    # RA increases to the left (pixel x falls eastward), Dec upward: CASA's image orientation.
    assert np.unravel_index(np.argmax(image), image.shape) == (64 - 20, 64 + 10)
    assert image.max() == pytest.approx(2.5, rel=0.01)


def test_a_mosaic_pointing_sees_the_image_centre_where_it_is():
    # Pointing 1 is 10" east of the image centre; a source at the image centre is 10" west of it.
    east = 10 * ARCSEC
    uvw = _uvw(4000, seed=1)
    centres = ((0.0, 0.0), sin_offsets(east, 0.0, 0.0, 0.0))
    vis = np.concatenate([_point_source(uvw, TOPO_HZ[0], 0.0, 0.0), _point_source(uvw, TOPO_HZ[0], -east, 0.0)])
    both = np.vstack([uvw, uvw])
    pointing = np.repeat([0, 1], uvw.shape[0])
    cube = DirtyCube(_geometry(pointings=((0.0, 0.0), (east, 0.0))), TOPO_HZ[:1])

    cube.add(_block(both, vis[:, None], centres=centres, pointing=pointing), TOPO_HZ[:1])
    image = cube.finish()[0]

    assert np.unravel_index(np.argmax(image), image.shape) == (64, 64)
    assert image.max() == pytest.approx(1.0, rel=0.01)


def test_executions_doppler_shifted_differently_are_aligned_in_lsrk():
    # The second execution sees the source 1e-4 faster receding: 23 MHz, 1.5 channels lower in TOPO.
    factors = (1.0, 1.0001)
    line_lsrk = TOPO_HZ[30]
    cube = DirtyCube(_geometry(npix=64), TOPO_HZ.copy())
    for seed, factor in enumerate(factors):
        uvw = _uvw(2000, seed)
        vis = np.zeros((uvw.shape[0], TOPO_HZ.size), dtype=np.complex64)
        line_channel = int(np.argmin(np.abs(TOPO_HZ * factor - line_lsrk)))
        vis[:, line_channel] = _point_source(uvw, TOPO_HZ[line_channel], 0.0, 0.0)
        cube.add(_block(uvw, vis, factor=factor), TOPO_HZ)
    peaks = cube.finish()[:, 32, 32]

    assert np.argmax(peaks) == 30
    assert peaks[30] == pytest.approx(1.0, rel=0.01)
    assert np.abs(np.delete(peaks, 30)).max() < 0.01


def test_output_channels_beyond_the_data_stay_empty():
    uvw = _uvw(500)
    cube = DirtyCube(_geometry(npix=32), TOPO_HZ[:4] * 1.0)
    vis = np.repeat(_point_source(uvw, TOPO_HZ[0], 0.0, 0.0)[:, None], 2, axis=1)

    cube.add(_block(uvw, vis), TOPO_HZ[:2])
    planes = cube.finish()

    assert np.isfinite(planes[:2]).all() and np.isnan(planes[2:]).all()


def test_nearest_input_channels_follow_the_doppler_factor_on_rising_and_falling_grids():
    factor = np.array([1.0, 1.0001, 0.9])
    for grid in (TOPO_HZ, TOPO_HZ[::-1].copy()):
        wanted = grid[30]
        channels = nearest_input_channels(wanted, factor, grid)

        assert channels[0] == 30
        assert abs(grid[channels[1]] * factor[1] - wanted) <= 7.9e6  # within half a channel
        assert channels[2] == -1  # 10 % off: outside the spw


def test_a_cube_larger_than_memory_is_kept_on_disk(tmp_path):
    uvw = _uvw(300)
    cube = DirtyCube(_geometry(npix=32), TOPO_HZ[:2], path=tmp_path / "cube.npy")
    vis = np.repeat(_point_source(uvw, TOPO_HZ[0], 0.0, 0.0)[:, None], 2, axis=1)

    cube.add(_block(uvw, vis), TOPO_HZ[:2])
    planes = cube.finish()

    assert (tmp_path / "cube.npy").stat().st_size >= 2 * 32 * 32 * 4
    assert planes[:, 16, 16] == pytest.approx([1.0, 1.0], rel=0.01)


def test_the_geometry_has_five_pixels_across_the_beam_and_covers_the_primary_beam_to_twenty_percent():
    geometry = plan_geometry(160.0, 229.9e9, 230.9e9, 12.0, [(0.0, 0.0)])

    beam = SPEED_OF_LIGHT_M_S / 230.9e9 / 160.0
    fwhm = 1.13 * SPEED_OF_LIGHT_M_S / 229.9e9 / 12.0
    assert geometry.cell_rad == pytest.approx(beam / 5)
    assert geometry.primary_beam_fwhm_rad == pytest.approx(fwhm)
    assert geometry.npix % 2 == 0
    half_width = geometry.npix / 2 * geometry.cell_rad
    assert fwhm * math.sqrt(math.log(5) / (4 * math.log(2))) <= half_width < 1.05 * fwhm


def test_long_baselines_coarsen_the_cell_rather_than_grow_the_image_past_its_limit():
    geometry = plan_geometry(16000.0, 229.9e9, 230.9e9, 12.0, [(0.0, 0.0)], max_npix=512)

    assert geometry.npix == 512
    assert geometry.cell_rad > geometry.beam_rad / 5


def test_a_mosaic_geometry_covers_every_pointing():
    pointings = [(0.0, 0.0), (20 * ARCSEC, 0.0), (0.0, -20 * ARCSEC)]
    geometry = plan_geometry(160.0, 229.9e9, 230.9e9, 12.0, pointings)

    for east, north in pointings:
        x, y = geometry.pixel_of(east, north)
        assert 0 < x < geometry.npix and 0 < y < geometry.npix


def test_an_array_without_baselines_is_refused():
    with pytest.raises(ValueError, match="no baseline"):
        plan_geometry(0.0, 229.9e9, 230.9e9, 12.0, [(0.0, 0.0)])
