"""Quick-look PNGs of images and cubes, on small CASA-like FITS made with astropy."""

import gc

import numpy as np
import pytest
from aperture_previews.quicklook import (
    QUICKLOOK_DPI,
    QUICKLOOK_INCHES,
    THUMBNAIL_PX,
    beam_ellipse,
    stretch_limits,
    write_quicklook,
)
from aperture_previews.sky_image import open_sky_image
from astropy.io import fits
from astropy.wcs import WCS
from matplotlib.figure import Figure
from matplotlib.image import imread
from synthetic_images import (
    BEAM,
    NX,
    NY,
    PIXEL_DEG,
    Line,
    casa_header,
    channel_frequencies,
    growing_beams,
    line_cube,
    png_size,
    write_cube,
)

QUICKLOOK_PX = (round(QUICKLOOK_INCHES[0] * QUICKLOOK_DPI), round(QUICKLOOK_INCHES[1] * QUICKLOOK_DPI))
THUMBNAIL_SIZE = (THUMBNAIL_PX, round(THUMBNAIL_PX * NY / NX))  # NX > NY: the width is the longer side


@pytest.fixture
def mfs_fits(tmp_path):
    """A continuum image as CASA writes one: 4-D with one channel, NaN outside the primary-beam limit."""
    plane = line_cube()[20:21]
    return write_cube(tmp_path / "src.spw0.mfs.I.pbcor.fits", plane, header=casa_header(1))


def test_the_quicklook_and_thumbnail_are_pngs_of_the_expected_size(mfs_fits, tmp_path):
    result = write_quicklook(mfs_fits, tmp_path / "out", kind="mfs")

    assert result.png == tmp_path / "out" / "src.spw0.mfs.I.pbcor.png"
    assert png_size(result.png) == QUICKLOOK_PX == result.png_size_px
    assert png_size(result.thumbnail) == THUMBNAIL_SIZE == result.thumbnail_size_px
    assert imread(result.png).shape[:2] == QUICKLOOK_PX[::-1]  # decodes as a whole
    assert result.channel is None and result.unit == "Jy/beam"
    assert result.pixel_arcsec == pytest.approx(0.25)


def test_the_thumbnail_shows_the_source_where_it_is(mfs_fits, tmp_path):
    """Rows counted from the bottom in FITS, from the top in a PNG: an upside-down image fails here."""
    result = write_quicklook(mfs_fits, tmp_path, kind="mfs")

    brightness = imread(result.thumbnail)[:, :, :3].sum(axis=2)
    scale = THUMBNAIL_PX / NX
    line = Line()
    row, column = int((NY - 0.5 - line.y) * scale), int((line.x + 0.5) * scale)
    assert brightness[row, column] > np.percentile(brightness, 99)


def test_the_stretch_limits_lie_within_the_data_and_ignore_nan(mfs_fits, tmp_path):
    result = write_quicklook(mfs_fits, tmp_path, kind="mfs")

    data = fits.getdata(mfs_fits)
    assert np.isnan(data).any()
    assert np.nanmin(data) <= result.vmin < 0 < result.vmax <= np.nanmax(data)
    assert result.vmax > 0.5 * Line().peak  # the source's peak is not drowned in the noise's range


@pytest.mark.parametrize("plane", [np.full((4, 5), 2.5), np.full((4, 5), np.nan)], ids=["flat", "blank"])
def test_the_stretch_of_a_flat_or_blank_plane_is_still_a_range(plane):
    low, high = stretch_limits(plane)
    assert low < high


def test_the_beam_ellipse_has_bmaj_over_cdelt_pixels_and_the_position_angle_from_north_through_east(
    mfs_fits, tmp_path
):
    result = write_quicklook(mfs_fits, tmp_path, kind="mfs")

    assert result.beam is not None
    assert (result.beam.major_arcsec, result.beam.minor_arcsec, result.beam.position_angle_deg) == pytest.approx(BEAM)
    assert result.beam_major_px == pytest.approx(BEAM[0] / 3600 / PIXEL_DEG, rel=1e-9)
    assert result.beam_minor_px == pytest.approx(BEAM[1] / 3600 / PIXEL_DEG, rel=1e-9)
    with open_sky_image(mfs_fits) as image:
        ellipse = beam_ellipse(result.beam, image.celestial, (NY, NX))
    # RA grows to the left (CDELT1 < 0): PA 30 deg (north through east) is 120 deg counter-clockwise from +x.
    assert ellipse.angle == pytest.approx(90 + BEAM[2])
    assert ellipse.width == pytest.approx(result.beam_major_px)


def test_a_cube_shows_the_channel_of_its_peak_with_that_channels_beam_and_frequency(tmp_path):
    beams = growing_beams()
    cube = write_cube(tmp_path / "src.spw0.cube.I.pbcor.fits", line_cube(), beams=beams)

    result = write_quicklook(cube, tmp_path, kind="cube")

    channel = round(Line().channel)
    assert result.channel == channel
    assert result.frequency_hz == pytest.approx(channel_frequencies()[channel])
    assert result.beam is not None and result.beam.major_arcsec == pytest.approx(beams[channel, 0], rel=1e-6)
    assert result.beam.position_angle_deg == pytest.approx(beams[channel, 2], rel=1e-6)
    assert result.title == f"SynthGalaxy · spw 0 · cube · channel {channel} at {result.frequency_hz / 1e9:.5f} GHz"


def test_a_given_channel_and_spws_are_shown(tmp_path):
    cube = write_cube(tmp_path / "cube.fits", line_cube())

    result = write_quicklook(cube, tmp_path, kind="cube", channel=3, spw_ids=[0, 1])

    assert result.channel == 3
    assert result.title.startswith("SynthGalaxy · spws 0,1 · cube · channel 3 at ")
    with pytest.raises(ValueError, match="cube.fits: channel 40 is outside its 40 channels"):
        write_quicklook(cube, tmp_path, kind="cube", channel=40)


def test_the_channel_of_the_peak_is_found_in_signal_to_noise_when_the_edge_noise_is_brighter(tmp_path):
    """As in a primary-beam corrected cube, whose largest pixels are noise at the edge of the field."""
    pixels = line_cube(noise=0.004, edge_noise_factor=5)  # the noise five times higher at the field's edge
    _, y, x = np.unravel_index(np.nanargmax(pixels), pixels.shape)
    assert np.hypot(x - Line().x, y - Line().y) > 5  # the plain maximum is noise far from the line
    cube = write_cube(tmp_path / "cube.fits", pixels)

    # the line's three central channels are within 6 % of each other: the noise decides between them
    assert abs(write_quicklook(cube, tmp_path, kind="cube").channel - Line().channel) <= 1


def test_a_2d_fits_without_spectral_axis_works(tmp_path):
    cube_header = casa_header(1)
    del cube_header["DATE-OBS"]  # astropy would warn that it sets MJD-OBS from it
    header = WCS(cube_header).celestial.to_header()
    header.update({"OBJECT": "SynthGalaxy", "BUNIT": "Jy/beam", "BMAJ": BEAM[0] / 3600, "BMIN": BEAM[1] / 3600})
    path = tmp_path / "flat.fits"
    fits.PrimaryHDU(line_cube()[20].astype(np.float32), header).writeto(path)

    result = write_quicklook(path, tmp_path, kind="mfs", spw_ids=[2])

    assert result.channel is None and result.frequency_hz is None
    assert result.title == "SynthGalaxy · spw 2 · mfs"
    assert png_size(result.png) == QUICKLOOK_PX


def test_a_fully_blank_image_still_gets_its_previews(tmp_path):
    path = write_cube(tmp_path / "blank.fits", np.full((1, NY, NX), np.nan), header=casa_header(1))

    result = write_quicklook(path, tmp_path, kind="mfs")

    assert png_size(result.thumbnail) == THUMBNAIL_SIZE
    assert result.vmin < result.vmax


def test_a_fits_without_celestial_axes_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "spectrum-only.fits"
    fits.PrimaryHDU(np.zeros((3, 4), np.float32), fits.Header({"CTYPE1": "FREQ", "CTYPE2": "STOKES"})).writeto(path)

    with pytest.raises(ValueError, match="spectrum-only.fits: its WCS has no celestial"):
        write_quicklook(path, tmp_path, kind="mfs")


def test_the_same_image_gives_the_same_png_bytes(mfs_fits, tmp_path):
    first = write_quicklook(mfs_fits, tmp_path / "a", kind="mfs")
    second = write_quicklook(mfs_fits, tmp_path / "b", kind="mfs")

    assert first.png.read_bytes() == second.png.read_bytes()
    assert first.thumbnail.read_bytes() == second.thumbnail.read_bytes()


def live_figures() -> int:
    gc.collect()
    return sum(1 for thing in gc.get_objects() if isinstance(thing, Figure))


def test_no_figure_outlives_its_call(mfs_fits, tmp_path):
    before = live_figures()
    for _ in range(3):
        write_quicklook(mfs_fits, tmp_path, kind="mfs")

    assert live_figures() == before
