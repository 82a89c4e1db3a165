"""Moment 0, peak map and peak spectrum of a cube, on small CASA-like FITS cubes with a known Gaussian line."""

import warnings

import numpy as np
import pytest
from aperture_previews.cube_maps import channel_selection, line_channels, make_cube_maps
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning
from synthetic_images import (
    BEAM,
    LAYOUTS,
    NCHAN,
    NX,
    NY,
    WIDTH_HZ,
    Line,
    casa_header,
    channel_edges_range,
    channel_frequencies,
    growing_beams,
    line_cube,
    png_size,
    write_cube,
)

LINE = Line()
# findcont's ranges for channels 0-7 and 33-39: the line (channel 20, sigma 3) lies in 8-32, 4 sigma each side
CONTINUUM = [channel_edges_range(0, 7), channel_edges_range(33, NCHAN - 1)]
LINE_CHANNELS = list(range(8, 33))
NOISE = 1e-4


def celestial_wcs(header: fits.Header) -> WCS:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        return WCS(header).celestial


@pytest.fixture(params=LAYOUTS)
def cube_fits(request, tmp_path):
    return write_cube(tmp_path / "src.spw0.cube.I.pbcor.fits", line_cube(noise=NOISE), layout=request.param)


def test_moment0_gives_the_known_integral_of_the_line_and_nothing_off_it(cube_fits, tmp_path):
    maps = make_cube_maps(cube_fits, tmp_path / "maps", CONTINUUM)

    moment0 = fits.getdata(maps.moment0_fits)
    assert moment0[LINE.y, LINE.x] == pytest.approx(LINE.integral_jy_km_s(), rel=0.01)
    channel_km_s = WIDTH_HZ / 230.538e9 * 299_792.458
    off_line_noise = NOISE * channel_km_s * np.sqrt(len(LINE_CHANNELS))
    assert abs(moment0[NY // 2 + 8, 6]) < 5 * off_line_noise  # far from the source
    assert np.isnan(moment0[0, 0])  # blank in every channel stays blank


def test_the_peak_map_peaks_at_the_injected_peak_and_the_spectrum_is_taken_there(cube_fits, tmp_path):
    maps = make_cube_maps(cube_fits, tmp_path, CONTINUUM)

    peak_map = fits.getdata(maps.peak_fits)
    assert np.unravel_index(np.nanargmax(peak_map), peak_map.shape) == (LINE.y, LINE.x)
    assert np.nanmax(peak_map) == pytest.approx(LINE.peak, rel=0.01)
    assert maps.peak_pixel == (LINE.x, LINE.y)
    assert maps.peak_value == pytest.approx(LINE.peak, rel=0.01)
    sky = celestial_wcs(fits.getheader(cube_fits)).pixel_to_world(LINE.x, LINE.y)
    assert (maps.peak_ra_deg, maps.peak_dec_deg) == pytest.approx((sky.ra.deg, sky.dec.deg), abs=1e-9)
    assert maps.peak_signal_to_noise is not None and maps.peak_signal_to_noise > 100
    assert png_size(maps.spectrum_png) == maps.spectrum_size_px == (700, 400)


def test_the_maps_use_exactly_the_channels_outside_the_continuum_ranges(cube_fits, tmp_path):
    maps = make_cube_maps(cube_fits, tmp_path, CONTINUUM)

    assert maps.line_channels == LINE_CHANNELS
    assert "channels 8~32" in maps.moment0_quicklook.title
    # a map over other channels would differ: the line's wings reach past channel 8 (4 sigma)
    wider = make_cube_maps(cube_fits, tmp_path / "all", [])
    assert wider.line_channels == list(range(NCHAN))


def test_line_channels_follow_the_centre_inside_a_range_rule():
    frequencies = channel_frequencies(10)
    centre_of_4 = float(frequencies[4])

    assert line_channels(frequencies, [channel_edges_range(0, 2)]).tolist() == list(range(3, 10))
    # a range ending at a channel's centre takes the channel; ranges written rounded still do
    assert line_channels(frequencies, [(frequencies[0] - 1e6, centre_of_4)]).tolist() == list(range(5, 10))
    assert line_channels(frequencies, [(frequencies[0], centre_of_4 - 1e-3 * WIDTH_HZ / 2)]).tolist() == [5, 6, 7, 8, 9]
    # a descending frequency axis and a range given high to low
    assert line_channels(frequencies[::-1], [(frequencies[9] + 1e6, frequencies[7] - 1e6)]).tolist() == list(
        range(3, 10)
    )
    assert line_channels(frequencies, []).tolist() == list(range(10))


def test_channel_selection_is_written_in_casa_syntax():
    assert channel_selection(np.array([3, 4, 5, 9, 11, 12])) == "3~5;9;11~12"


def test_the_maps_are_2d_fits_with_the_cubes_celestial_wcs_beam_and_units(tmp_path):
    beams = growing_beams()
    cube = write_cube(tmp_path / "cube.fits", line_cube(noise=NOISE), beams=beams)

    maps = make_cube_maps(cube, tmp_path, CONTINUUM)

    cube_sky = celestial_wcs(fits.getheader(cube))
    for path, unit in ((maps.moment0_fits, "Jy/beam.km/s"), (maps.peak_fits, "Jy/beam")):
        header = fits.getheader(path)
        assert header["NAXIS"] == 2 and (header["NAXIS1"], header["NAXIS2"]) == (NX, NY)
        assert header["BUNIT"] == unit
        assert (header["OBJECT"], header["SPW"], header["RESTFRQ"]) == ("SynthGalaxy", "0", 230.538e9)
        map_sky = celestial_wcs(header)
        assert map_sky.naxis == 2
        corners = ([0, NX - 1, 7], [0, NY - 1, 30])
        np.testing.assert_allclose(map_sky.all_pix2world(*corners, 0), cube_sky.all_pix2world(*corners, 0), atol=1e-12)
        # the beam of median area over the line channels 8-32 (channel 20's)
        assert header["BMAJ"] * 3600 == pytest.approx(beams[20, 0], rel=1e-6)
        assert header["BPA"] == pytest.approx(beams[20, 2], rel=1e-6)
    assert maps.moment0_unit == "Jy/beam.km/s"
    assert maps.moment0_quicklook.unit == "Jy/beam.km/s"
    assert png_size(maps.moment0_quicklook.png) == png_size(maps.peak_quicklook.png) == (700, 600)


def test_the_peak_is_found_in_signal_to_noise_in_a_primary_beam_corrected_cube(tmp_path):
    """The largest pixels of such a cube are noise at the edge of the field, not the line."""
    pixels = line_cube(noise=0.004, edge_noise_factor=5)  # the noise five times higher at the field's edge
    cube = write_cube(tmp_path / "cube.fits", pixels)

    maps = make_cube_maps(cube, tmp_path, CONTINUUM)

    peak_map = fits.getdata(maps.peak_fits)
    y, x = np.unravel_index(np.nanargmax(peak_map), peak_map.shape)
    assert np.hypot(x - LINE.x, y - LINE.y) > 5  # the plain maximum is noise far from the line
    # at a signal-to-noise of some 9 per channel the noise may still move the peak to a neighbour
    assert np.hypot(maps.peak_pixel[0] - LINE.x, maps.peak_pixel[1] - LINE.y) <= 1


def test_nan_pixels_inside_line_channels_are_skipped(tmp_path):
    pixels = line_cube(noise=NOISE)
    pixels[20, LINE.y, LINE.x] = np.nan  # one blanked channel at the peak pixel
    cube = write_cube(tmp_path / "cube.fits", pixels)

    maps = make_cube_maps(cube, tmp_path, CONTINUUM)

    moment0 = fits.getdata(maps.moment0_fits)
    missing = LINE.peak * WIDTH_HZ / 230.538e9 * 299_792.458  # channel 20's share
    assert moment0[LINE.y, LINE.x] == pytest.approx(LINE.integral_jy_km_s() - missing, rel=0.01)
    assert maps.peak_pixel == (LINE.x, LINE.y)


def test_a_cube_of_too_few_channels_to_measure_its_noise_takes_the_plain_peak(tmp_path):
    pixels = line_cube(noise=NOISE)[18:22]
    cube = write_cube(tmp_path / "cube.fits", pixels, header=casa_header(4))

    maps = make_cube_maps(cube, tmp_path, [])

    assert maps.peak_signal_to_noise is None
    assert maps.peak_pixel == (LINE.x, LINE.y)
    assert maps.line_channels == [0, 1, 2, 3]


def test_a_cube_without_rest_frequency_is_refused_naming_the_file(tmp_path):
    header = casa_header()
    del header["RESTFRQ"]
    cube = write_cube(tmp_path / "no-rest.fits", line_cube(), header=header)

    with pytest.raises(ValueError, match="no-rest.fits: no rest frequency"):
        make_cube_maps(cube, tmp_path, CONTINUUM)


def test_a_spw_that_is_all_continuum_has_no_line_maps(cube_fits, tmp_path):
    with pytest.raises(ValueError, match="every channel lies in the continuum ranges"):
        make_cube_maps(cube_fits, tmp_path, [channel_edges_range(0, NCHAN - 1)])


def test_an_image_of_one_channel_is_not_a_cube(tmp_path):
    image = write_cube(tmp_path / "mfs.fits", line_cube()[:1], header=casa_header(1))

    with pytest.raises(ValueError, match="mfs.fits: no frequency axis of several channels"):
        make_cube_maps(image, tmp_path, [])


def test_the_header_beam_is_used_without_a_beams_table(cube_fits, tmp_path):
    maps = make_cube_maps(cube_fits, tmp_path, CONTINUUM)

    assert fits.getheader(maps.peak_fits)["BMAJ"] * 3600 == pytest.approx(BEAM[0])
