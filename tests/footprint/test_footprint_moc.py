"""The footprint MOC: the sky where the primary beam is at or above the imaging limit, at an order chosen
from the pixel scale (mocpy's own silent cap bypassed), written as MOC FITS, JSON and ASCII."""

import math
import warnings
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from aperture_footprint.moc import (
    DEFAULT_MAX_ORDER,
    cell_size_deg,
    footprint_moc,
    moc_area_sr,
    order_for_pixel,
    write_footprint_moc,
)
from aperture_footprint.primary_beam import FootprintError, read_beam_region
from astropy.io import fits
from astropy.wcs import FITSFixedWarning
from mocpy import MOC
from synthetic_pb import (
    POINTING,
    TARGET,
    disc_area_sr,
    limit_radius_arcsec,
    sky_offset,
    write_product,
)


def moc_contains(moc: MOC, *positions: tuple[float, float]) -> list[bool]:
    ra = np.array([position[0] for position in positions]) * u.deg
    dec = np.array([position[1] for position in positions]) * u.deg
    return [bool(inside) for inside in moc.contains_lonlat(ra, dec)]


def test_footprint_holds_the_pointing_and_the_target_and_not_a_point_two_pb_radii_away(tmp_path: Path) -> None:
    product = write_product(tmp_path / "in")
    footprint = write_footprint_moc(product.pb_path, tmp_path / "out")
    moc = MOC.load(footprint.fits_path)
    radius = product.limit_radius_arcsec()

    assert moc_contains(moc, POINTING, TARGET) == [True, True]
    far_away = [sky_offset(POINTING, 2 * radius * math.sin(a), 2 * radius * math.cos(a)) for a in (0, 1.5, 3, 4.5)]
    assert moc_contains(moc, *far_away) == [False] * 4
    # just inside and just outside the PB = 0.2 circle (a cell is 0.2")
    assert moc_contains(moc, sky_offset(POINTING, 0.0, radius - 1.0)) == [True]
    assert moc_contains(moc, sky_offset(POINTING, radius + 1.0, 0.0)) == [False]


def test_footprint_area_is_that_of_the_pb_limit_disc(tmp_path: Path) -> None:
    product = write_product(tmp_path / "in")
    footprint = write_footprint_moc(product.pb_path, tmp_path / "out")
    true_area = disc_area_sr(product.limit_radius_arcsec())

    assert footprint.area_sr == pytest.approx(true_area, rel=0.03)
    assert footprint.area_deg2 == pytest.approx(footprint.area_sr * (180 / math.pi) ** 2)
    assert moc_area_sr(MOC.load(footprint.fits_path)) == pytest.approx(footprint.area_sr)


def test_a_higher_pblimit_gives_the_smaller_disc(tmp_path: Path) -> None:
    product = write_product(tmp_path / "in")
    footprint = write_footprint_moc(product.pb_path, tmp_path / "out", pblimit=0.5)
    radius = product.limit_radius_arcsec(0.5)

    assert footprint.pblimit == 0.5
    assert footprint.area_sr == pytest.approx(disc_area_sr(radius), rel=0.05)
    moc = MOC.load(footprint.fits_path)
    assert moc_contains(moc, sky_offset(POINTING, 0, radius + 2.0)) == [False]


@pytest.mark.parametrize("pixel_arcsec", [0.005, 0.03, 0.26, 1.0, 7.5, 60.0, 3600.0])
def test_order_is_the_coarsest_whose_cells_are_no_larger_than_a_pixel(pixel_arcsec: float) -> None:
    pixel_deg = pixel_arcsec / 3600.0
    order = order_for_pixel(pixel_deg)

    assert cell_size_deg(order) <= pixel_deg
    assert order == 0 or cell_size_deg(order - 1) > pixel_deg


def test_alma_pixels_get_order_20_where_mocpy_would_cap_at_19(tmp_path: Path) -> None:
    """0.26" pixels: cells no larger than a pixel need order 20 (0.20"); mocpy's from_fits_image would
    lower any requested order to 19 (0.40" cells, larger than the pixels)."""
    product = write_product(tmp_path / "in", pixel_arcsec=0.26)
    footprint = write_footprint_moc(product.pb_path, tmp_path / "out")

    assert (footprint.order, footprint.pixel_order, footprint.order_capped) == (20, 20, False)
    assert footprint.cell_size_arcsec <= footprint.pixel_scale_arcsec == pytest.approx(0.26)
    assert MOC.load(footprint.fits_path).max_order == 20
    # what mocpy does with the same pixels (given as the 2-D image it can read) when asked for order 22
    region = read_beam_region(product.pb_path)
    plane = fits.PrimaryHDU(np.where(region.mask, 1.0, np.nan), header=region.celestial.to_header())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)  # mocpy re-reads the WCS (OBSGEO-L/B/H from X/Y/Z)
        assert MOC.from_fits_image(plane, max_norder=22).max_order == 19


def test_very_fine_pixels_cap_the_order_and_the_moc_keeps_the_capped_order(tmp_path: Path) -> None:
    """0.02" pixels would need order 24; the cap (20) applies, says so, and the MOC still has the area."""
    product = write_product(tmp_path / "in", pixel_arcsec=0.02, size=460, fwhm_arcsec=5.5)
    footprint = write_footprint_moc(product.pb_path, tmp_path / "out")

    assert footprint.pixel_order == 24
    assert footprint.order == DEFAULT_MAX_ORDER == 20
    assert footprint.order_capped
    assert footprint.cell_size_arcsec > footprint.pixel_scale_arcsec
    moc = MOC.load(footprint.fits_path)
    assert moc.max_order == 20
    assert footprint.area_sr == pytest.approx(disc_area_sr(product.limit_radius_arcsec()), rel=0.10)
    assert moc_contains(moc, POINTING) == [True]


def test_cells_much_finer_than_pixels_leave_no_holes(tmp_path: Path) -> None:
    """The pixels go in as squares, not centres: at order 20 with 1" pixels (cells 5x smaller), a MOC of
    pixel centres would cover ~4 % of the disc; this one covers it all."""
    product = write_product(tmp_path / "in", pixel_arcsec=1.0, size=48)
    region = read_beam_region(product.pb_path)
    moc = footprint_moc(region, order=20)

    assert moc.max_order == 20
    pixel_area_sr = math.radians(1.0 / 3600) ** 2
    assert moc_area_sr(moc) == pytest.approx(region.pixel_count * pixel_area_sr, rel=0.02)
    assert moc_area_sr(moc) == pytest.approx(disc_area_sr(product.limit_radius_arcsec()), rel=0.06)
    # a point between pixel centres, well inside
    assert moc_contains(moc, sky_offset(POINTING, 3.5, 4.5)) == [True]


def test_nan_pixels_are_outside_the_footprint(tmp_path: Path) -> None:
    # a 12 x 12 pixel box of NaN inside the disc, centred 30.5 px (7.93") east of the pointing (pixel 80, 80)
    # and 0.5 px south: RA grows to the left (CDELT1 < 0)
    box = (slice(74, 86), slice(44, 56))
    product = write_product(tmp_path / "in", nan_box=box)
    footprint = write_footprint_moc(product.pb_path, tmp_path / "out")
    moc = MOC.load(footprint.fits_path)

    hole_centre = sky_offset(POINTING, 7.93, -0.13)
    assert moc_contains(moc, hole_centre, POINTING) == [False, True]
    whole = write_footprint_moc(write_product(tmp_path / "whole").pb_path, tmp_path / "whole-out")
    hole_area_sr = 144 * math.radians(0.26 / 3600) ** 2
    assert whole.area_sr - footprint.area_sr == pytest.approx(hole_area_sr, rel=0.25)


def test_a_cube_footprint_is_the_union_over_channels_the_widest_channel(tmp_path: Path) -> None:
    """The PB shrinks with frequency: 64 channels from 263 down to 200 GHz (a descending axis, as in a
    lower-sideband spw); the footprint is the last channel's 200 GHz disc."""
    product = write_product(
        tmp_path / "in", frequency_hz=263e9, channel_width_hz=-1e9, channels=64, size=200,
        name="uid___A001_X3a1_X7.SimGalaxy_sci.spw0.cube.I",
    )
    footprint = write_footprint_moc(product.pb_path, tmp_path / "out")
    moc = MOC.load(footprint.fits_path)
    widest = product.limit_radius_arcsec()
    narrowest = float(limit_radius_arcsec(product.pb_fwhm_arcsec.min(), 0.2))
    assert widest / narrowest == pytest.approx(263 / 200, rel=1e-6)

    assert footprint.planes == 64
    assert footprint.area_sr == pytest.approx(disc_area_sr(widest), rel=0.03)
    between = sky_offset(POINTING, 0.0, 0.5 * (widest + narrowest))
    assert moc_contains(moc, between) == [True]
    assert footprint.fits_path.name == "uid___A001_X3a1_X7.SimGalaxy_sci.spw0.cube.I.moc.fits"


def test_the_moc_files_read_back_as_the_same_moc(tmp_path: Path) -> None:
    product = write_product(tmp_path / "in")
    footprint = write_footprint_moc(product.pb_path, tmp_path / "out")

    from_fits = MOC.load(footprint.fits_path, format="fits")
    assert MOC.load(footprint.json_path, format="json") == from_fits
    assert MOC.load(footprint.ascii_path, format="ascii") == from_fits
    assert " 20/" in footprint.ascii_path.read_text()  # the deepest cells are order 20
    with fits.open(footprint.fits_path) as hdus:
        # IVOA MOC 2.0: range-encoded, the spatial order in MOCORD_S
        assert (hdus[1].header["MOCVERS"], hdus[1].header["MOCORD_S"], hdus[1].header["COORDSYS"]) == ("2.0", 20, "C")
        assert hdus[1].header["PBLIMIT"] == 0.2


@pytest.mark.parametrize(
    "pointing",
    [(0.0015, 10.0), (123.0, -89.998)],
    ids=["across-ra-zero", "around-the-south-pole"],
)
def test_a_footprint_across_ra_zero_or_around_a_pole(tmp_path: Path, pointing: tuple[float, float]) -> None:
    product = write_product(tmp_path / "in", centre=pointing)
    footprint = write_footprint_moc(product.pb_path, tmp_path / "out")
    moc = MOC.load(footprint.fits_path)
    radius = product.limit_radius_arcsec()

    assert footprint.area_sr == pytest.approx(disc_area_sr(radius), rel=0.03)
    inside = [sky_offset(pointing, dx, dy) for dx, dy in ((-10, 0), (10, 0), (0, 10), (0, -10))]
    assert moc_contains(moc, pointing, *inside) == [True] * 5
    assert moc_contains(moc, sky_offset(pointing, 2 * radius, 0)) == [False]


def test_a_pb_below_the_limit_everywhere_is_a_clear_error(tmp_path: Path) -> None:
    product = write_product(tmp_path / "in", pb_peak=0.25)  # above CASA's 0.2 cut near the centre only
    with pytest.raises(FootprintError, match=r"no pixel has a primary-beam response >= 0.3 \(a peak of 0.25\)"):
        write_footprint_moc(product.pb_path, tmp_path / "out", pblimit=0.3)


def test_an_all_nan_pb_is_a_clear_error(tmp_path: Path) -> None:
    product = write_product(tmp_path / "in", pb_peak=0.1)  # all below CASA's 0.2: all NaN
    with pytest.raises(FootprintError, match="no finite pixel"):
        write_footprint_moc(product.pb_path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_an_image_without_celestial_axes_is_a_clear_error(tmp_path: Path) -> None:
    product = write_product(tmp_path / "in", celestial=False)
    with pytest.raises(FootprintError, match="no celestial"):
        write_footprint_moc(product.pb_path, tmp_path / "out")


def test_a_pblimit_outside_zero_to_one_is_refused(tmp_path: Path) -> None:
    product = write_product(tmp_path / "in")
    with pytest.raises(ValueError, match="pblimit"):
        write_footprint_moc(product.pb_path, tmp_path / "out", pblimit=0.0)
