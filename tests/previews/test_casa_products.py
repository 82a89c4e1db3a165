"""The previews of FITS that CASA itself wrote: a cube with a beam per channel and a continuum image,
made with casatools and exported with exportfits as the imaging service does; the moment maps are
checked against CASA's own (ia.moments), and the maps' FITS are read back by CASA."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from aperture_previews.cube_maps import make_cube_maps
from aperture_previews.quicklook import write_quicklook
from astropy.io import fits
from synthetic_images import NCHAN, NX, NY, Line, channel_edges_range, line_cube, png_size

pytestmark = pytest.mark.casa

LINE = Line()
CONTINUUM = [channel_edges_range(0, 7), channel_edges_range(33, NCHAN - 1)]
FIRST_LINE_CHANNEL, LAST_LINE_CHANNEL = 8, 32


@dataclass
class CasaProducts:
    cube_fits: Path
    mfs_fits: Path
    beams: list[dict]  # CASA's restoring beam of each channel
    moment0: np.ndarray  # CASA's moments over the line channels, (y, x)
    peak: np.ndarray
    line_pixel_world_deg: tuple[float, float]  # CASA's RA/Dec of the line's pixel


def casa_image(casa_tools, path: Path, pixels: np.ndarray):
    """A CASA image of (channel, y, x) pixels in CASA's axis order (RA, Dec, Stokes, frequency), on the
    synthetic images' grid."""
    image = casa_tools.image()
    image.fromshape(str(path), [NX, NY, 1, pixels.shape[0]], overwrite=True)
    coordinates = image.coordsys()
    coordinates.setunits(["deg", "deg", "", "Hz"])
    coordinates.setreferencepixel([NX // 2, NY // 2, 0, 0])
    coordinates.setreferencevalue([239.625, -24.25, 1, 230.30e9])
    coordinates.setincrement([-0.25 / 3600, 0.25 / 3600, 1, 1.953125e6])
    coordinates.setrestfrequency(230.538e9)
    coordinates.setreferencecode("LSRK", "spectral", True)
    image.setcoordsys(coordinates.torecord())
    coordinates.done()
    image.setbrightnessunit("Jy/beam")
    image.putchunk(np.transpose(pixels, (2, 1, 0))[:, :, np.newaxis, :].astype(np.float32))
    image.setmiscinfo({"spw": "0", "mousid": "uid://A001/X1/X2"})
    return image


@pytest.fixture(scope="session")
def casa_products(casa_tools, tmp_path_factory) -> CasaProducts:
    from aperture_testdata.casa_runtime import casatasks_module

    tasks = casatasks_module()
    folder: Path = tmp_path_factory.mktemp("casa-previews")
    pixels = line_cube(noise=3e-4)
    pixels[np.isnan(pixels)] = 0.0  # CASA's moments need no blanking here; NaN is tested on astropy FITS

    cube = casa_image(casa_tools, folder / "cube.im", pixels)
    for channel in range(NCHAN):
        cube.setrestoringbeam(major=f"{1.2 + 0.02 * channel}arcsec", minor="0.9arcsec", pa=f"{30 + channel}deg",
                              channel=channel, polarization=0)
    beams = [cube.restoringbeam(channel=channel, polarization=0) for channel in range(NCHAN)]
    line_world = sky_degrees(cube, LINE.x, LINE.y)
    cube.done()

    # CASA convolves per-channel beams to a common one before its moments; a single beam keeps them plain sums.
    single = casa_image(casa_tools, folder / "single.im", pixels)
    single.setrestoringbeam(major="1.2arcsec", minor="0.9arcsec", pa="30deg")
    region = casa_tools.regionmanager().box(
        blc=[0, 0, 0, FIRST_LINE_CHANNEL], trc=[NX - 1, NY - 1, 0, LAST_LINE_CHANNEL]
    )
    references = {}
    for moment in (0, 8):
        result = single.moments(moments=[moment], axis=3, region=region, outfile=str(folder / f"mom{moment}.im"))
        references[moment] = result.getchunk()[:, :, 0].T
        result.done()
    single.done()

    mfs = casa_image(casa_tools, folder / "mfs.im", pixels[20:21])
    mfs.setrestoringbeam(major="1.3arcsec", minor="1.0arcsec", pa="-60deg")
    mfs.done()

    exported = {}
    for name in ("cube", "mfs"):
        tasks.imhead(imagename=str(folder / f"{name}.im"), mode="put", hdkey="object", hdvalue="SynthGalaxy")
        exported[name] = folder / f"src.spw0.{name}.I.pbcor.fits"
        tasks.exportfits(imagename=str(folder / f"{name}.im"), fitsimage=str(exported[name]), velocity=False,
                         optical=False, bitpix=-32, dropdeg=False, dropstokes=False, stokeslast=True,
                         history=False, overwrite=True)
    return CasaProducts(exported["cube"], exported["mfs"], beams, references[0], references[8],
                        line_world)


def sky_degrees(image, x: int, y: int) -> tuple[float, float]:
    """CASA's RA/Dec of a pixel of an open image."""
    coordinates = image.coordsys()
    pixel = coordinates.referencepixel()["numeric"]
    pixel[:2] = [x, y]
    direction = coordinates.toworld(pixel, "m")["measure"]["direction"]
    coordinates.done()
    return float(np.degrees(direction["m0"]["value"])) % 360, float(np.degrees(direction["m1"]["value"]))


def test_casa_writes_the_layout_the_previews_expect(casa_products):
    """RA, Dec, frequency, Stokes with a BEAMS table: if exportfits changes, the tests below test less."""
    with fits.open(casa_products.cube_fits) as hdus:
        header = hdus[0].header
        assert [header[f"CTYPE{axis}"].strip() for axis in range(1, 5)] == ["RA---SIN", "DEC--SIN", "FREQ", "STOKES"]
        assert header["CASAMBM"] and "BEAMS" in hdus and "BMAJ" not in header
    assert "BMAJ" in fits.getheader(casa_products.mfs_fits)


def test_the_quicklook_of_a_casa_cube_shows_the_lines_channel_with_its_beam(casa_products, tmp_path):
    result = write_quicklook(casa_products.cube_fits, tmp_path, kind="cube")

    assert result.channel is not None and abs(result.channel - LINE.channel) <= 1  # 5 % apart: noise decides
    casa_beam = casa_products.beams[result.channel]
    assert result.beam is not None
    assert result.beam.major_arcsec == pytest.approx(casa_beam["major"]["value"], rel=1e-6)
    assert result.beam.position_angle_deg == pytest.approx(casa_beam["positionangle"]["value"], rel=1e-6)
    assert result.beam_major_px == pytest.approx(casa_beam["major"]["value"] / 0.25, rel=1e-6)
    assert result.title.startswith(f"SynthGalaxy · spw 0 · cube · channel {result.channel} at 230.3")
    assert png_size(result.png) == result.png_size_px


def test_the_quicklook_of_a_casa_continuum_image_has_its_header_beam(casa_products, tmp_path):
    result = write_quicklook(casa_products.mfs_fits, tmp_path, kind="mfs")

    assert result.channel is None and result.title == "SynthGalaxy · spw 0 · mfs"
    assert result.beam is not None
    assert (result.beam.major_arcsec, result.beam.minor_arcsec, result.beam.position_angle_deg) == pytest.approx(
        (1.3, 1.0, -60.0), rel=1e-6
    )
    assert result.beam_minor_px == pytest.approx(1.0 / 0.25, rel=1e-6)


def test_the_moment_maps_equal_casas_own(casa_products, tmp_path):
    maps = make_cube_maps(casa_products.cube_fits, tmp_path, CONTINUUM)

    assert maps.line_channels == list(range(FIRST_LINE_CHANNEL, LAST_LINE_CHANNEL + 1))
    np.testing.assert_allclose(fits.getdata(maps.moment0_fits), casa_products.moment0, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(fits.getdata(maps.peak_fits), casa_products.peak, rtol=1e-6)
    assert fits.getdata(maps.moment0_fits)[LINE.y, LINE.x] == pytest.approx(LINE.integral_jy_km_s(), rel=0.02)


def test_the_peak_is_where_casa_puts_the_line_on_the_sky(casa_products, tmp_path):
    maps = make_cube_maps(casa_products.cube_fits, tmp_path, CONTINUUM)

    assert maps.peak_pixel == (LINE.x, LINE.y)
    assert (maps.peak_ra_deg, maps.peak_dec_deg) == pytest.approx(casa_products.line_pixel_world_deg, abs=1e-9)
    assert maps.peak_value == pytest.approx(LINE.peak, rel=0.1)


def test_casa_reads_the_maps_with_their_sky_grid_beam_and_unit(casa_products, casa_tools, tmp_path):
    maps = make_cube_maps(casa_products.cube_fits, tmp_path, CONTINUUM)

    image = casa_tools.image()
    image.open(str(maps.moment0_fits))
    try:
        assert image.shape().tolist() == [NX, NY]
        assert image.brightnessunit() == "Jy/beam.km/s"
        beam = image.restoringbeam()
        assert beam["major"]["value"] == pytest.approx(1.2 + 0.02 * 20, rel=1e-5)  # the median beam: channel 20's
        assert sky_degrees(image, LINE.x, LINE.y) == pytest.approx(casa_products.line_pixel_world_deg, abs=1e-9)
        assert image.getchunk()[LINE.x, LINE.y] == pytest.approx(fits.getdata(maps.moment0_fits)[LINE.y, LINE.x])
    finally:
        image.done()
