"""Where an image has usable data: the pixels whose primary-beam response is at or above the imaging limit.

The primary beam (PB) is read from the FITS file tclean writes beside each image (`*.pb.fits`): the same
sky grid, CASA's 4-D layout (RA, Dec, frequency, Stokes, degenerate axes kept), and NaN where CASA masked
the beam below its own pblimit. NaN (or any non-finite value) counts as outside.

A cube has a PB per channel. The footprint is the union of the channels' regions: the part of the sky
where at least one channel has data. For one pointing the PB scales as 1/frequency, so the regions are
nested and the union is simply the lowest-frequency (widest) channel's; the union also stays right when
a channel is fully flagged (all NaN) or when the channels of a mosaic differ in coverage, where picking
"the widest channel" by pixel count would not. Stokes planes are merged the same way.
"""

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from aperture_shared.errors import BadInput
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning
from astropy.wcs.utils import proj_plane_pixel_scales
from numpy.typing import NDArray

# ALMA imaging's default: tclean's pblimit in the ALMA pipeline, below which the image is blanked.
DEFAULT_PBLIMIT = 0.2


class FootprintError(BadInput):
    """The files cannot give a footprint (no sky axes, no pixel above the PB limit, grids that differ).
    Bad input: retrying cannot help."""


@dataclass(frozen=True)
class BeamRegion:
    """The pixels of one image grid where the PB response is >= pblimit in at least one plane."""

    source: Path
    mask: NDArray[np.bool_]  # (rows = latitude pixels, columns = longitude pixels)
    celestial: WCS  # the 2-D celestial WCS of the grid
    pblimit: float
    planes: int  # how many channel x Stokes planes were merged

    @property
    def pixel_scale_deg(self) -> float:
        """The side of a pixel: the geometric mean of the two axes' scales at the reference pixel."""
        scales = proj_plane_pixel_scales(self.celestial)
        return float(np.sqrt(abs(scales[0] * scales[1])))

    @property
    def pixel_count(self) -> int:
        return int(self.mask.sum())

    def to_icrs(
        self, x: NDArray[np.float64], y: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """ICRS (RA, Dec) in degrees of 0-based pixel positions (x: column, y: row). CASA writes FK5 J2000;
        ObsCore and MOCs are ICRS, ~20 mas away, so the frame is converted rather than assumed."""
        sky = self.celestial.pixel_to_world(x, y)
        if not isinstance(sky, SkyCoord):
            raise FootprintError(f"{self.source.name}: its celestial axes do not give sky positions")
        icrs = sky.icrs
        return np.asarray(icrs.ra.deg, dtype=np.float64), np.asarray(icrs.dec.deg, dtype=np.float64)


def celestial_wcs(header: fits.Header, source: Path) -> WCS:
    """The 2-D celestial WCS of a header whose first two axes are RA and Dec (either order), as CASA writes."""
    with warnings.catch_warnings():
        # CASA headers make astropy "fix" harmless cards (MJD-OBS from DATE-OBS, OBSGEO-L/B/H) with a warning each.
        warnings.simplefilter("ignore", FITSFixedWarning)
        wcs = WCS(header)
    if not wcs.has_celestial:
        raise FootprintError(
            f"{source.name}: its WCS has no celestial (RA/Dec) axes (CTYPE: {list(wcs.wcs.ctype)}); "
            "a footprint needs sky coordinates"
        )
    if {wcs.wcs.lng, wcs.wcs.lat} != {0, 1}:
        raise FootprintError(
            f"{source.name}: the celestial axes are FITS axes {wcs.wcs.lng + 1} and {wcs.wcs.lat + 1}; "
            "they must be the first two (the image planes), as CASA writes them"
        )
    return wcs.celestial


def read_beam_region(pb_path: Path, pblimit: float = DEFAULT_PBLIMIT) -> BeamRegion:
    """The PB >= pblimit region of a PB FITS file, merged over all its channel and Stokes planes."""
    if not 0.0 < pblimit <= 1.0:
        raise ValueError(f"pblimit must be in (0, 1], not {pblimit}")
    with fits.open(pb_path, memmap=True) as hdus:
        primary = hdus[0]
        header = primary.header
        if primary.data is None or int(header.get("NAXIS", 0)) < 2:
            raise FootprintError(f"{pb_path.name}: the primary HDU holds no image")
        celestial = celestial_wcs(header, pb_path)
        data = primary.data
        rows, columns = data.shape[-2], data.shape[-1]
        planes = data.reshape(-1, rows, columns)
        mask = np.zeros((rows, columns), dtype=bool)
        peak = -np.inf
        # One plane at a time: the file stays memory-mapped, so a large cube is never held whole.
        for plane in planes:
            finite = np.isfinite(plane)
            if finite.any():
                peak = max(peak, float(np.max(plane[finite])))
            mask |= finite & (plane >= pblimit)
    if not mask.any():
        found = "no finite pixel" if peak == -np.inf else f"a peak of {peak:.3g}"
        raise FootprintError(
            f"{pb_path.name}: no pixel has a primary-beam response >= {pblimit} ({found}); "
            "is this the PB image, and the right pblimit?"
        )
    return BeamRegion(source=pb_path, mask=mask, celestial=celestial, pblimit=pblimit, planes=len(planes))
