"""Synthetic CASA-like products for the footprint tests: a PB-corrected image (or cube) and its primary beam,
written with astropy on the 4-D grid CASA exports (RA, Dec, frequency, Stokes; degenerate axes kept).

The header is a template of the cards CASA 6.7 wrote for a real ALMA continuum product of the demo run
(uid___A001_X3a1_X7.SimGalaxy_sci.spw0_1.cont.I.pb.fits / .pbcor.fits), with the grid, frequency axis,
target and beam as parameters. The primary beam is a Gaussian of the antenna's FWHM (1.13 lambda / D),
evaluated at each pixel's true sky distance from the pointing (through the WCS), and NaN below 0.2, as
CASA blanks it below the imaging pblimit.
"""

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning

SPEED_OF_LIGHT_M_S = 299_792_458.0
ALMA_DISH_M = 12.0
CASA_PBLIMIT = 0.2
MOUS_UID = "uid://A001/X3a1/X7"
# The demo run's pointing (SimGalaxy) and a source 2" away from it.
POINTING = (239.625, -24.25)
TARGET = (239.6248476699059, -24.249916666590835)


def pb_fwhm_arcsec(frequency_hz: float, dish_m: float = ALMA_DISH_M) -> float:
    return math.degrees(1.13 * SPEED_OF_LIGHT_M_S / frequency_hz / dish_m) * 3600.0


def limit_radius_arcsec(fwhm_arcsec: float, level: float) -> float:
    """Distance from the pointing where a Gaussian beam of this FWHM falls to `level`."""
    return fwhm_arcsec * math.sqrt(math.log(1.0 / level) / (4.0 * math.log(2.0)))


def disc_area_sr(radius_arcsec: float) -> float:
    """Area of a spherical cap of this radius."""
    return 2.0 * math.pi * (1.0 - math.cos(math.radians(radius_arcsec / 3600.0)))


def casa_header(
    *,
    centre: tuple[float, float],
    pixel_arcsec: float,
    size: int,
    frequency_hz: float,
    channel_width_hz: float,
    channels: int = 1,
    beam_arcsec: tuple[float, float, float] | None = None,
    target: str = "SimGalaxy",
    celestial: bool = True,
) -> fits.Header:
    """The cards of a CASA 6.7 exportfits header (the real product's, in its order), for another grid.
    beam_arcsec (major, minor, PA deg) makes it an image's header (BMAJ..., BUNIT Jy/beam); None a PB's."""
    cdelt = pixel_arcsec / 3600.0
    header = fits.Header()
    header["BSCALE"] = (1.0, "PHYSICAL = PIXEL*BSCALE + BZERO")
    header["BZERO"] = 0.0
    if beam_arcsec is not None:
        header["BMAJ"] = beam_arcsec[0] / 3600.0
        header["BMIN"] = beam_arcsec[1] / 3600.0
        header["BPA"] = beam_arcsec[2]
    header["BTYPE"] = "Intensity"
    header["OBJECT"] = target
    header["BUNIT"] = ("Jy/beam" if beam_arcsec is not None else "", "Brightness (pixel) unit")
    header["EQUINOX"] = 2000.0
    header["RADESYS"] = "FK5"
    header["LONPOLE"] = 180.0
    header["LATPOLE"] = centre[1]
    for column in range(1, 5):
        for row in range(1, 5):
            header[f"PC{row}_{column}"] = 1.0 if row == column else 0.0
    header["CTYPE1"] = "RA---SIN" if celestial else "LINEAR"
    header["CRVAL1"] = centre[0]
    header["CDELT1"] = -cdelt
    header["CRPIX1"] = size // 2 + 1.0
    header["CUNIT1"] = "deg"
    header["CTYPE2"] = "DEC--SIN" if celestial else "LINEAR"
    header["CRVAL2"] = centre[1]
    header["CDELT2"] = cdelt
    header["CRPIX2"] = size // 2 + 1.0
    header["CUNIT2"] = "deg"
    header["CTYPE3"] = "FREQ"
    header["CRVAL3"] = frequency_hz
    header["CDELT3"] = channel_width_hz
    header["CRPIX3"] = 1.0
    header["CUNIT3"] = "Hz"
    header["CTYPE4"] = "STOKES"
    header["CRVAL4"] = 1.0
    header["CDELT4"] = 1.0
    header["CRPIX4"] = 1.0
    header["CUNIT4"] = ""
    if celestial:
        header["PV2_1"] = 0.0
        header["PV2_2"] = 0.0
    header["RESTFRQ"] = (230.538e9, "Rest Frequency (Hz)")
    header["SPECSYS"] = ("LSRK", "Spectral reference frame")
    header["ALTRVAL"] = (6.595826818761e06, "Alternate frequency reference value")
    header["ALTRPIX"] = (1.0, "Alternate frequency reference pixel")
    header["VELREF"] = (257, "1 LSR, 2 HEL, 3 OBS, +256 Radio")
    header["COMMENT"] = "casacore non-standard usage: 4 LSD, 5 GEO, 6 SOU, 7 GAL"
    header["TELESCOP"] = "ALMA"
    header["OBSERVER"] = "aperture"
    header["DATE-OBS"] = "2025-06-01T03:42:50.000000"
    header["TIMESYS"] = "UTC"
    header["OBSRA"] = centre[0]
    header["OBSDEC"] = centre[1]
    header["OBSGEO-X"] = 2.225142180269e06
    header["OBSGEO-Y"] = -5.440307370349e06
    header["OBSGEO-Z"] = -2.481029851874e06
    header["INSTRUME"] = "ALMA"
    header["DISTANCE"] = 0.0
    header["MOUSID"] = MOUS_UID
    header["SPW"] = "0,1" if channels == 1 else "0"
    header["ORIGIN"] = "CASA 6.7.0-31 CASAtools:v1.0.0"
    return header


@dataclass(frozen=True)
class SyntheticProduct:
    image_path: Path
    pb_path: Path
    pointing: tuple[float, float]
    frequencies_hz: np.ndarray  # channel centres
    channel_width_hz: float
    pb_fwhm_arcsec: np.ndarray  # per channel
    pixel_arcsec: float
    size: int

    def limit_radius_arcsec(self, level: float = CASA_PBLIMIT) -> float:
        """The widest channel's radius of the PB >= level disc."""
        return limit_radius_arcsec(float(self.pb_fwhm_arcsec.max()), level)


def pixel_separations_arcsec(header: fits.Header, size: int, pointing: tuple[float, float]) -> np.ndarray:
    """(rows, columns) true sky distance of each pixel centre from the pointing."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        celestial = WCS(header).celestial
    rows, columns = np.mgrid[0:size, 0:size]
    sky = celestial.pixel_to_world(columns, rows)
    separation = sky.separation(SkyCoord(pointing[0] * u.deg, pointing[1] * u.deg, frame=sky.frame))
    return np.asarray(separation.to_value(u.arcsec))


def write_product(
    folder: Path,
    name: str = "uid___A001_X3a1_X7.SimGalaxy_sci.spw0_1.cont.I",
    *,
    centre: tuple[float, float] = POINTING,
    pixel_arcsec: float = 0.26,
    size: int = 160,
    frequency_hz: float = 225.4658619840e9,
    channel_width_hz: float = 10.89982924103e9,
    channels: int = 1,
    fwhm_arcsec: float | None = None,
    pb_peak: float = 1.0,
    nan_box: tuple[slice, slice] | None = None,
    beam_arcsec: tuple[float, float, float] = (1.72, 1.31, -86.0),
    celestial: bool = True,
) -> SyntheticProduct:
    """Write <name>.pbcor.fits and <name>.pb.fits into folder. fwhm_arcsec overrides the antenna beam (same
    for every channel); nan_box blanks a (rows, columns) box in every plane of both files."""
    frequencies = frequency_hz + channel_width_hz * np.arange(channels)
    fwhms = (
        np.full(channels, fwhm_arcsec) if fwhm_arcsec is not None
        else np.array([pb_fwhm_arcsec(frequency) for frequency in frequencies])
    )
    pb_header = casa_header(
        centre=centre, pixel_arcsec=pixel_arcsec, size=size, frequency_hz=frequency_hz,
        channel_width_hz=channel_width_hz, channels=channels, celestial=celestial,
    )
    image_header = casa_header(
        centre=centre, pixel_arcsec=pixel_arcsec, size=size, frequency_hz=frequency_hz,
        channel_width_hz=channel_width_hz, channels=channels, beam_arcsec=beam_arcsec, celestial=celestial,
    )
    if celestial:
        separations = pixel_separations_arcsec(pb_header, size, centre)
    else:
        rows, columns = np.mgrid[0:size, 0:size]
        separations = np.hypot(rows - size // 2, columns - size // 2) * pixel_arcsec
    pb = np.empty((1, channels, size, size), dtype=np.float32)
    for channel, fwhm in enumerate(fwhms):
        pb[0, channel] = pb_peak * np.exp(-4.0 * math.log(2.0) * (separations / fwhm) ** 2)
    pb[pb < CASA_PBLIMIT] = np.nan
    if nan_box is not None:
        pb[:, :, nan_box[0], nan_box[1]] = np.nan
    rng = np.random.default_rng(3)
    image = (rng.normal(0.0, 1e-4, pb.shape) / pb).astype(np.float32)  # noise rising outwards, as pbcor

    folder.mkdir(parents=True, exist_ok=True)
    pb_path = folder / f"{name}.pb.fits"
    image_path = folder / f"{name}.pbcor.fits"
    fits.PrimaryHDU(pb, header=pb_header).writeto(pb_path, overwrite=True)
    fits.PrimaryHDU(image, header=image_header).writeto(image_path, overwrite=True)
    return SyntheticProduct(
        image_path=image_path, pb_path=pb_path, pointing=centre, frequencies_hz=frequencies,
        channel_width_hz=channel_width_hz, pb_fwhm_arcsec=fwhms, pixel_arcsec=pixel_arcsec, size=size,
    )


def add_beams_table(image_path: Path, majors_arcsec: np.ndarray) -> None:
    """Give a cube CASA's per-channel BEAMS table (and drop the single BMAJ/BMIN/BPA), as exportfits does."""
    with fits.open(image_path, mode="update") as hdus:
        header = hdus[0].header
        for keyword in ("BMAJ", "BMIN", "BPA"):
            header.remove(keyword, ignore_missing=True)
        header["CASAMBM"] = (True, "CASA multiple BEAMS table present")
        channels = len(majors_arcsec)
        columns = [
            fits.Column(name="BMAJ", format="1E", unit="arcsec", array=np.asarray(majors_arcsec, dtype=np.float32)),
            fits.Column(name="BMIN", format="1E", unit="arcsec", array=np.asarray(majors_arcsec) * 0.8),
            fits.Column(name="BPA", format="1E", unit="deg", array=np.full(channels, -85.0)),
            fits.Column(name="CHAN", format="1J", array=np.arange(channels)),
            fits.Column(name="POL", format="1J", array=np.zeros(channels, dtype=int)),
        ]
        beams = fits.BinTableHDU.from_columns(columns, name="BEAMS")
        beams.header["NCHAN"] = channels
        beams.header["NPOL"] = 1
        hdus.append(beams)


def sky_offset(position: tuple[float, float], east_arcsec: float, north_arcsec: float) -> tuple[float, float]:
    """The position `east_arcsec` east and `north_arcsec` north of another (along the sphere)."""
    ra, dec = sky_offsets(position, np.array([east_arcsec]), np.array([north_arcsec]))
    return float(ra[0]), float(dec[0])


def sky_offsets(
    position: tuple[float, float], east_arcsec: np.ndarray, north_arcsec: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(RA, Dec) arrays of positions offset from one: a great-circle step of hypot(east, north) arcsec
    towards position angle atan2(east, north)."""
    start = SkyCoord(position[0] * u.deg, position[1] * u.deg)
    distance = np.hypot(east_arcsec, north_arcsec) * u.arcsec
    angle = np.arctan2(east_arcsec, north_arcsec) * u.rad
    moved = start.directional_offset_by(angle, distance)
    return np.asarray(moved.ra.deg), np.asarray(moved.dec.deg)
