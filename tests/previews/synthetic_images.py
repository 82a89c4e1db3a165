"""Small FITS images and cubes shaped like CASA's exportfits output, made with astropy.

The header cards are those of a real pipeline product (a CASA 6.7 pbcor cube of the demo MOUS): 4-D
RA/Dec/frequency/Stokes with a PC matrix, RESTFRQ, SPECSYS, VELREF, the MOUSID and SPW cards the imaging
service adds, and either BMAJ/BMIN/BPA or a BEAMS table with one beam per channel (CASAMBM).
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits

NX, NY, NCHAN = 48, 40, 40  # not square, so that swapped axes show
PIXEL_DEG = 0.25 / 3600
FIRST_HZ, WIDTH_HZ = 230.30e9, 1.953125e6
REST_HZ = 230.538e9
SPEED_OF_LIGHT_KM_S = 299_792.458
BEAM = (1.2, 0.9, 30.0)  # major, minor (arcsec), position angle (deg)


@dataclass(frozen=True)
class Line:
    """A Gaussian line of a point-like source at one pixel: spatially a Gaussian of sigma 1.5 pixels."""

    x: int = 30
    y: int = 14
    channel: float = 20.0
    sigma_channels: float = 3.0
    peak: float = 0.05  # Jy/beam

    def integral_jy_km_s(self) -> float:
        """Its integrated intensity at (x, y): peak x sigma x sqrt(2 pi), in velocity."""
        width_km_s = WIDTH_HZ / REST_HZ * SPEED_OF_LIGHT_KM_S
        return self.peak * self.sigma_channels * width_km_s * float(np.sqrt(2 * np.pi))


def channel_frequencies(nchan: int = NCHAN, width_hz: float = WIDTH_HZ) -> np.ndarray:
    return FIRST_HZ + width_hz * np.arange(nchan)


def channel_edges_range(first: int, last: int, width_hz: float = WIDTH_HZ) -> tuple[float, float]:
    """The continuum range findcont writes for channels first..last: from edge to edge."""
    frequencies = channel_frequencies(max(first, last) + 1, width_hz)
    return float(frequencies[first] - abs(width_hz) / 2), float(frequencies[last] + abs(width_hz) / 2)


def line_cube(line: Line = Line(), noise: float = 1e-4, edge_noise_factor: float = 1.0, seed: int = 1) -> np.ndarray:
    """(channel, y, x) pixels: the line plus Gaussian noise, NaN outside a circle (as a pbcor cube is
    blanked below the primary-beam limit). With edge_noise_factor > 1 the noise grows towards the circle's
    edge like a primary-beam corrected cube's (divided by a Gaussian primary beam falling to
    1 / edge_noise_factor there)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:NY, 0:NX]
    radius = np.hypot(x - (NX - 1) / 2, y - (NY - 1) / 2)
    edge = NY / 2
    primary_beam = np.exp(np.log(1 / edge_noise_factor) * (radius / edge) ** 2)
    spatial = np.exp(-((x - line.x) ** 2 + (y - line.y) ** 2) / (2 * 1.5**2))
    spectral = np.exp(-((np.arange(NCHAN) - line.channel) ** 2) / (2 * line.sigma_channels**2))
    cube = line.peak * spectral[:, None, None] * spatial[None] + rng.normal(0, noise, (NCHAN, NY, NX)) / primary_beam
    cube[:, radius > edge] = np.nan
    return cube


def casa_header(nchan: int = NCHAN, *, first_hz: float = FIRST_HZ, width_hz: float = WIDTH_HZ) -> fits.Header:
    """The primary header of a CASA 4-D image (RA, Dec, frequency, Stokes) of NX x NY pixels."""
    header = fits.Header()
    header["BTYPE"] = "Intensity"
    header["OBJECT"] = "SynthGalaxy"
    header["BUNIT"] = ("Jy/beam", "Brightness (pixel) unit")
    header.update({"EQUINOX": 2000.0, "RADESYS": "FK5", "LONPOLE": 180.0, "LATPOLE": -24.25})
    for row in range(1, 5):
        for column in range(1, 5):
            header[f"PC{row}_{column}"] = 1.0 if row == column else 0.0
    axes = [
        ("RA---SIN", 239.625, -PIXEL_DEG, NX // 2 + 1, "deg"),
        ("DEC--SIN", -24.25, PIXEL_DEG, NY // 2 + 1, "deg"),
        ("FREQ", first_hz, width_hz, 1.0, "Hz"),
        ("STOKES", 1.0, 1.0, 1.0, ""),
    ]
    for number, (ctype, crval, cdelt, crpix, cunit) in enumerate(axes, start=1):
        header.update({f"CTYPE{number}": ctype, f"CRVAL{number}": crval, f"CDELT{number}": cdelt,
                       f"CRPIX{number}": crpix, f"CUNIT{number}": cunit})
    header.update({"PV2_1": 0.0, "PV2_2": 0.0, "RESTFRQ": REST_HZ, "SPECSYS": "LSRK", "VELREF": 257})
    header.update({"TELESCOP": "ALMA", "OBSERVER": "aperture", "DATE-OBS": "2025-06-01T03:42:50.000000",
                   "TIMESYS": "UTC", "INSTRUME": "ALMA", "MOUSID": "uid://A001/X3a1/X7", "SPW": "0"})
    return header


LAYOUTS = ("casa", "stokes-before-frequency", "no-stokes")


def write_cube(
    path: Path, cube: np.ndarray, *, beams: np.ndarray | None = None, layout: str = "casa",
    header: fits.Header | None = None,
) -> Path:
    """Write (channel, y, x) pixels as CASA does: 4-D with a degenerate Stokes axis last (or, in other
    layouts, before the frequency axis as in CASA's own images, or none at all), with BMAJ/BMIN/BPA, or a
    BEAMS table when `beams` (arcsec, arcsec, deg per channel) is given."""
    header = header if header is not None else casa_header(cube.shape[0])
    data = cube[np.newaxis].astype(np.float32)  # (Stokes, channel, y, x)
    if layout == "stokes-before-frequency":
        data = np.swapaxes(data, 0, 1)
        for key in ("CTYPE", "CRVAL", "CDELT", "CRPIX", "CUNIT"):
            header[f"{key}3"], header[f"{key}4"] = header[f"{key}4"], header[f"{key}3"]
    elif layout == "no-stokes":
        data = data[0]
        for key in [key for key in header if key.endswith("4") or key.startswith("PC4_")]:
            del header[key]
    hdus: list[fits.PrimaryHDU | fits.BinTableHDU] = [fits.PrimaryHDU(data, header)]
    if beams is None:
        header_beam(hdus[0].header, BEAM)
    else:
        hdus[0].header["CASAMBM"] = (True, "CASA multiple BEAMS table present")
        hdus.append(beams_table(beams))
    fits.HDUList(hdus).writeto(path, overwrite=True)
    return path


def header_beam(header: fits.Header, beam: tuple[float, float, float]) -> None:
    header.update({"BMAJ": beam[0] / 3600, "BMIN": beam[1] / 3600, "BPA": beam[2]})


def beams_table(beams: np.ndarray) -> fits.BinTableHDU:
    channels = len(beams)
    table = fits.BinTableHDU.from_columns([
        fits.Column("BMAJ", "E", unit="arcsec", array=beams[:, 0]),
        fits.Column("BMIN", "E", unit="arcsec", array=beams[:, 1]),
        fits.Column("BPA", "E", unit="deg", array=beams[:, 2]),
        fits.Column("CHAN", "J", array=np.arange(channels)),
        fits.Column("POL", "J", array=np.zeros(channels)),
    ], name="BEAMS")
    table.header.update({"NCHAN": channels, "NPOL": 1})
    return table


def growing_beams(nchan: int = NCHAN) -> np.ndarray:
    """Per-channel beams that differ (so that picking the wrong channel's beam shows)."""
    return np.array([[1.2 + 0.02 * channel, 0.9, 30.0 + channel] for channel in range(nchan)])


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk, after checking the signature."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    assert head[12:16] == b"IHDR"
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
