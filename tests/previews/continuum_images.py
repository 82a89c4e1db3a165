"""Small CASA-like continuum images for the HiPS tests, made with astropy from the header of a real one.

CASA_CONTINUUM_HEADER is the primary header of a real pipeline product (CASA 6.7 exportfits of the demo
MOUS's aggregate continuum, uid___A001_X3a1_X7.SimGalaxy_sci.spw0_1.cont.I.pbcor.fits): 4-D RA, DEC, FREQ,
STOKES with degenerate FREQ and STOKES axes, FK5 J2000, SIN projection, 0.26" pixels, a 10.9 GHz wide
continuum plane at 225.5 GHz. The images here change only its size and put a beam-shaped source and
noise on it, NaN outside a circle as below the primary-beam limit of a pbcor image.
"""

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning

MOUS_ID = "uid://A001/X3a1/X7"
IMAGE_NAME = "uid___A001_X3a1_X7.SimGalaxy_sci.spw0_1.cont.I.pbcor.fits"
CASA_CONTINUUM_HEADER = """\
SIMPLE  =                    T /Standard FITS
BITPIX  =                  -32 /Floating point (32 bit)
NAXIS   =                    4
NAXIS1  =                  160
NAXIS2  =                  160
NAXIS3  =                    1
NAXIS4  =                    1
EXTEND  =                    T
BSCALE  =   1.000000000000E+00 /PHYSICAL = PIXEL*BSCALE + BZERO
BZERO   =   0.000000000000E+00
BMAJ    =   4.777076509264E-04
BMIN    =   3.640405005879E-04
BPA     =  -8.599198150635E+01
BTYPE   = 'Intensity'
OBJECT  = 'SimGalaxy'
BUNIT   = 'Jy/beam '           /Brightness (pixel) unit
EQUINOX =   2.000000000000E+03
RADESYS = 'FK5     '
LONPOLE =   1.800000000000E+02
LATPOLE =  -2.425000000000E+01
PC1_1   =   1.000000000000E+00
PC2_1   =   0.000000000000E+00
PC3_1   =   0.000000000000E+00
PC4_1   =   0.000000000000E+00
PC1_2   =   0.000000000000E+00
PC2_2   =   1.000000000000E+00
PC3_2   =   0.000000000000E+00
PC4_2   =   0.000000000000E+00
PC1_3   =   0.000000000000E+00
PC2_3   =   0.000000000000E+00
PC3_3   =   1.000000000000E+00
PC4_3   =   0.000000000000E+00
PC1_4   =   0.000000000000E+00
PC2_4   =   0.000000000000E+00
PC3_4   =   0.000000000000E+00
PC4_4   =   1.000000000000E+00
CTYPE1  = 'RA---SIN'
CRVAL1  =   2.396250000000E+02
CDELT1  =  -7.222222222222E-05
CRPIX1  =   8.100000000000E+01
CUNIT1  = 'deg     '
CTYPE2  = 'DEC--SIN'
CRVAL2  =  -2.425000000000E+01
CDELT2  =   7.222222222222E-05
CRPIX2  =   8.100000000000E+01
CUNIT2  = 'deg     '
CTYPE3  = 'FREQ    '
CRVAL3  =   2.254658619840E+11
CDELT3  =   1.089982924103E+10
CRPIX3  =   1.000000000000E+00
CUNIT3  = 'Hz      '
CTYPE4  = 'STOKES  '
CRVAL4  =   1.000000000000E+00
CDELT4  =   1.000000000000E+00
CRPIX4  =   1.000000000000E+00
CUNIT4  = '        '
PV2_1   =   0.000000000000E+00
PV2_2   =   0.000000000000E+00
RESTFRQ =   2.305380000000E+11 /Rest Frequency (Hz)
SPECSYS = 'LSRK    '           /Spectral reference frame
ALTRVAL =   6.595826818761E+06 /Alternate frequency reference value
ALTRPIX =   1.000000000000E+00 /Alternate frequency reference pixel
VELREF  =                  257 /1 LSR, 2 HEL, 3 OBS, +256 Radio
COMMENT casacore non-standard usage: 4 LSD, 5 GEO, 6 SOU, 7 GAL
TELESCOP= 'ALMA    '
OBSERVER= 'aperture'
DATE-OBS= '2025-06-01T03:42:50.000000'
TIMESYS = 'UTC     '
OBSRA   =   2.396250000000E+02
OBSDEC  =  -2.425000000000E+01
OBSGEO-X=   2.225142180269E+06
OBSGEO-Y=  -5.440307370349E+06
OBSGEO-Z=  -2.481029851874E+06
INSTRUME= 'ALMA    '
DISTANCE=   0.000000000000E+00
MPIPROCS=                    1
CHNCHNKS=                    1
MEMREQ  =        1.3595581E-03
MEMAVAIL=        1.7082340E+01
USEWEIGH=                    F
MOUSID  = 'uid://A001/X3a1/X7'
SPW     = '0,1     '
DATE    = '2026-11-21T13:05:52.299489' /Date FITS file was written
ORIGIN  = 'CASA 6.7.0-31 CASAtools:v1.0.0'
"""


@dataclass(frozen=True)
class ContinuumImage:
    """A written image and where its source is."""

    path: Path
    source_x: float  # 0-based pixel of the source's peak
    source_y: float
    peak_jy: float
    noise_jy: float

    def header(self) -> fits.Header:
        return fits.getheader(self.path)

    def celestial_wcs(self) -> WCS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)  # CASA's MJD-OBS/OBSGEO notes
            return WCS(self.header()).celestial

    def source_position(self) -> SkyCoord:
        """The source in ICRS (the image is FK5 J2000, as CASA writes it)."""
        return self.celestial_wcs().pixel_to_world(self.source_x, self.source_y).icrs

    def cell_deg(self) -> float:
        return abs(float(self.header()["CDELT2"]))


def casa_header(size: int, planes: int = 1) -> fits.Header:
    """The template with `size` x `size` pixels (and `planes` frequency planes), centred as CASA does."""
    header = fits.Header.fromstring(CASA_CONTINUUM_HEADER, sep="\n")
    header["NAXIS1"] = header["NAXIS2"] = size
    header["NAXIS3"] = planes
    header["CRPIX1"] = header["CRPIX2"] = size // 2 + 1
    return header


def beam_sigma_px(header: fits.Header) -> float:
    """The Gaussian sigma, in pixels, of a round beam of the restoring beam's area."""
    fwhm_to_sigma = 1 / (2 * np.sqrt(2 * np.log(2)))
    fwhm_deg = np.sqrt(float(header["BMAJ"]) * float(header["BMIN"]))
    return float(fwhm_deg / abs(float(header["CDELT2"])) * fwhm_to_sigma)


def write_continuum_image(
    path: Path,
    *,
    size: int = 120,
    source_xy: tuple[float, float] = (44.0, 72.0),
    peak_jy: float = 5e-3,
    noise_jy: float = 5e-5,
    planes: int = 1,
    seed: int = 3,
) -> ContinuumImage:
    """A pbcor continuum image: a beam-shaped source at `source_xy` (0-based x, y) plus Gaussian noise,
    NaN beyond 0.45 x size from the centre."""
    header = casa_header(size, planes)
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(float)
    sigma = beam_sigma_px(header)
    source = peak_jy * np.exp(-((x - source_xy[0]) ** 2 + (y - source_xy[1]) ** 2) / (2 * sigma**2))
    plane = source + rng.normal(0.0, noise_jy, (size, size))
    centre = (size - 1) / 2
    plane[np.hypot(x - centre, y - centre) > 0.45 * size] = np.nan
    data = np.broadcast_to(plane, (1, planes, size, size)).astype(np.float32)  # (STOKES, FREQ, DEC, RA)
    fits.PrimaryHDU(data, header).writeto(path, overwrite=True)
    return ContinuumImage(path, source_xy[0], source_xy[1], peak_jy, noise_jy)
