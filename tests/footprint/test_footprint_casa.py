"""The footprint and ObsCore record of products CASA itself wrote: a Gaussian primary beam (blanked below
0.2 by a pixel mask, as tclean does) and a PB-corrected image made with casatools.image, their headers
completed with imhead and exported with exportfits as the imaging service does, so every card is CASA's."""

import math
from pathlib import Path
from types import ModuleType

import astropy.units as u
import numpy as np
import pytest
from aperture_footprint.moc import write_footprint_moc
from aperture_footprint.obscore import DataProductType, ProductIdentity, obscore_record
from aperture_footprint.primary_beam import read_beam_region
from aperture_footprint.stcs import parse_stcs_polygon
from mocpy import MOC
from synthetic_pb import disc_area_sr, limit_radius_arcsec, pb_fwhm_arcsec, sky_offset

pytestmark = pytest.mark.casa

POINTING = (201.365063, -43.019113)  # Centaurus A
PIXEL_ARCSEC = 0.3
SIZE = 144
FIRST_FREQUENCY_HZ = 230.0e9
CHANNEL_WIDTH_HZ = 2.0e9


@pytest.fixture(scope="module")
def casatasks(casa_tools) -> ModuleType:
    from aperture_testdata.casa_runtime import casatasks_module

    return casatasks_module()


def casa_product(casa_tools, casatasks, folder: Path, name: str, channels: int) -> tuple[Path, Path]:
    """<name>.pb.fits and <name>.pbcor.fits of a pointing at POINTING, made and exported by CASA."""
    folder.mkdir(parents=True, exist_ok=True)
    coordinates = casa_tools.coordsys().newcoordsys(direction=True, spectral=True, stokes=["I"])
    centre = f"{POINTING[0]}deg {POINTING[1]}deg"
    increment = f"-{PIXEL_ARCSEC}arcsec {PIXEL_ARCSEC}arcsec"
    coordinates.setdirection(refcode="J2000", proj="SIN", refval=centre, refpix=[SIZE // 2, SIZE // 2], incr=increment)
    coordinates.setspectral(refcode="LSRK", restfreq="230.538GHz")
    coordinates.setreferencevalue(type="spectral", value=[FIRST_FREQUENCY_HZ])
    coordinates.setincrement(type="spectral", value=[CHANNEL_WIDTH_HZ])
    coordinates.settelescope("ALMA")
    coordinates.setobserver("aperture")
    coordinates.setepoch(casa_tools.measures().epoch("utc", "2025-06-01T03:42:50"))

    offsets = (np.arange(SIZE) - SIZE // 2) * PIXEL_ARCSEC
    distance = np.hypot(offsets[:, np.newaxis], offsets[np.newaxis, :])  # (x, y): CASA's axis order
    shape = [SIZE, SIZE, 1, channels]  # RA, Dec, Stokes, frequency
    beam = np.empty(shape, dtype=np.float32)
    for channel in range(channels):
        fwhm = pb_fwhm_arcsec(FIRST_FREQUENCY_HZ + channel * CHANNEL_WIDTH_HZ)
        beam[:, :, 0, channel] = np.exp(-4 * math.log(2) * (distance / fwhm) ** 2)
    rng = np.random.default_rng(11)

    paths = {}
    for role in ("pb", "pbcor"):
        image_path = folder / f"{name}.{role}"
        image = casa_tools.image()
        image.fromshape(outfile=str(image_path), shape=shape, csys=coordinates.torecord(), overwrite=True)
        try:
            values = beam if role == "pb" else rng.normal(0, 1e-4, shape).astype(np.float32) / beam
            image.putchunk(values)
            if role == "pbcor":
                image.setbrightnessunit("Jy/beam")
                for channel in range(channels):
                    image.setrestoringbeam(
                        major=f"{1.8 - 0.1 * channel}arcsec", minor="1.3arcsec", pa="-86deg",
                        channel=channel if channels > 1 else -1, polarization=-1,
                    )
            # tclean's blanking: a pixel mask where the PB is under pblimit; exportfits writes NaN there
            image.calcmask(f'"{folder / name}.pb" >= 0.2', name="pbmask")
        finally:
            image.close()
        for keyword, value in (("object", "CenA"), ("mousid", "uid://A001/X9/X9")):
            casatasks.imhead(imagename=str(image_path), mode="put", hdkey=keyword, hdvalue=value)
        fits_path = folder / f"{name}.{role}.fits"
        casatasks.exportfits(
            imagename=str(image_path), fitsimage=str(fits_path), velocity=False, optical=False, bitpix=-32,
            dropdeg=False, dropstokes=False, stokeslast=True, history=False, overwrite=True,
        )
        paths[role] = fits_path
    return paths["pb"], paths["pbcor"]


def test_casa_pb_gives_a_moc_and_s_region_of_the_pb_limit_disc(casa_tools, casatasks, tmp_path: Path) -> None:
    name = "uid___A001_X9_X9.CenA_sci.spw0.mfs.I"
    pb_path, image_path = casa_product(casa_tools, casatasks, tmp_path / "casa", name, channels=1)
    region = read_beam_region(pb_path)
    radius = limit_radius_arcsec(pb_fwhm_arcsec(FIRST_FREQUENCY_HZ), 0.2)

    # CASA's own blanking: NaN below 0.2, so the footprint is exactly CASA's unmasked pixels
    assert region.pixel_count == pytest.approx(math.pi * (radius / PIXEL_ARCSEC) ** 2, rel=0.03)
    footprint = write_footprint_moc(pb_path, tmp_path / "moc")
    moc = MOC.load(footprint.fits_path)
    assert footprint.order == 20 and not footprint.order_capped
    assert footprint.area_sr == pytest.approx(disc_area_sr(radius), rel=0.05)
    far = sky_offset(POINTING, 2 * radius, 0)
    near = sky_offset(POINTING, -0.5 * radius, 0.5 * radius)
    contained = moc.contains_lonlat(np.array([POINTING[0], near[0], far[0]]) * u.deg,
                                    np.array([POINTING[1], near[1], far[1]]) * u.deg)
    assert contained.tolist() == [True, True, False]

    record = obscore_record(image_path, pb_path, ProductIdentity(access_url="https://x/y.fits", exposure_s=1200))
    assert (record.target_name, record.obs_id, record.facility_name) == ("CenA", "uid://A001/X9/X9", "ALMA")
    assert record.dataproduct_type == DataProductType.IMAGE
    assert record.s_resolution == pytest.approx(1.8, rel=1e-4)
    assert record.s_fov == pytest.approx(2 * radius / 3600, rel=0.03)
    assert record.em_min == pytest.approx(299_792_458.0 / (FIRST_FREQUENCY_HZ + CHANNEL_WIDTH_HZ / 2), rel=1e-9)
    polygon = parse_stcs_polygon(record.s_region)
    assert polygon.contains([POINTING[0], near[0], far[0]], [POINTING[1], near[1], far[1]]).tolist() == [
        True, True, False
    ]


def test_casa_cube_with_per_channel_beams(casa_tools, casatasks, tmp_path: Path) -> None:
    """4 channels, 230 to 236 GHz: the footprint is the widest (230 GHz) channel's; the beam a median."""
    name = "uid___A001_X9_X9.CenA_sci.spw0.cube.I"
    pb_path, image_path = casa_product(casa_tools, casatasks, tmp_path / "casa", name, channels=4)
    widest = limit_radius_arcsec(pb_fwhm_arcsec(FIRST_FREQUENCY_HZ), 0.2)

    footprint = write_footprint_moc(pb_path, tmp_path / "moc")
    assert footprint.planes == 4
    assert footprint.area_sr == pytest.approx(disc_area_sr(widest), rel=0.05)

    record = obscore_record(image_path, pb_path, ProductIdentity(access_url="https://x/y.fits", exposure_s=1200))
    assert record.dataproduct_type == DataProductType.CUBE
    assert record.em_xel == 4
    assert record.em_res_power == pytest.approx(233e9 / CHANNEL_WIDTH_HZ, rel=1e-9)
    assert record.s_resolution == pytest.approx(1.65, rel=1e-4)  # median of 1.8, 1.7, 1.6, 1.5
