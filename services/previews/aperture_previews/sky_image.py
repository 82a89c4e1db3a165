"""A FITS image or cube read one sky plane at a time: its celestial WCS, channel frequencies, beam(s) and
the header cards the previews name things by.

CASA writes images as 4-D (RA, Dec, frequency, Stokes) with degenerate axes; a 2-D or 3-D FITS works the
same way. Axes other than the celestial and spectral ones (Stokes) are read at their first pixel, which
is Stokes I in the pipeline's products. The pixels stay memory-mapped, so that a large cube is read one
channel at a time.
"""

import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import astropy.units as u
import numpy as np
from aperture_contracts.imaging import Beam
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning
from astropy.wcs.utils import proj_plane_pixel_scales


@dataclass
class SkyImage:
    path: Path
    header: fits.Header
    celestial: WCS
    frequencies_hz: np.ndarray | None  # channel centres; None when there is no frequency axis
    beams: list[Beam]  # one per channel, or one for all channels; empty when the file has none
    pixels: np.ndarray  # the FITS data as stored (numpy axis order), memory-mapped
    plane_index: tuple[int | slice, ...]  # selects one plane; the spectral axis' entry is set per channel
    spectral_axis: int | None  # the numpy axis of the channels

    @property
    def num_channels(self) -> int:
        return 1 if self.spectral_axis is None else int(self.pixels.shape[self.spectral_axis])

    @property
    def plane_shape(self) -> tuple[int, int]:
        rows, columns = (size for size, entry in zip(self.pixels.shape, self.plane_index, strict=True)
                         if isinstance(entry, slice))
        return rows, columns

    def plane(self, channel: int = 0) -> np.ndarray:
        """One channel's sky plane (rows: latitude, columns: longitude), as float64."""
        if not 0 <= channel < self.num_channels:
            raise ValueError(f"{self.path.name}: channel {channel} is outside its {self.num_channels} channels")
        return self.rows(np.array([channel]), slice(None))[0]

    def rows(self, channels: np.ndarray, rows: slice) -> np.ndarray:
        """Some rows of some channels, as float64 (channel, row, column): a block small enough to hold
        when a statistic needs every channel of a pixel. Read channel by channel with plain indexing, so
        that the axes left are the plane's in its order whatever the file's axis order."""
        index = list(self.plane_index)
        index[min(axis for axis, entry in enumerate(index) if isinstance(entry, slice))] = rows
        planes = []
        for channel in channels:
            if self.spectral_axis is not None:
                index[self.spectral_axis] = int(channel)
            planes.append(self.pixels[tuple(index)])
        return np.array(planes, dtype=np.float64)

    def beam(self, channel: int = 0) -> Beam | None:
        if len(self.beams) == self.num_channels:
            return self.beams[channel]
        return self.beams[0] if len(self.beams) == 1 else None

    @property
    def pixel_arcsec(self) -> float:
        """The side of a pixel (the mean of the two axes, which are equal for interferometric images)."""
        return float(np.mean(proj_plane_pixel_scales(self.celestial))) * 3600.0

    @property
    def target(self) -> str:
        return str(self.header.get("OBJECT", "")).strip() or self.path.name

    @property
    def unit(self) -> str:
        return str(self.header.get("BUNIT", "")).strip()

    @property
    def rest_frequency_hz(self) -> float | None:
        value = self.header.get("RESTFRQ", self.header.get("RESTFREQ"))
        return float(value) if value else None

    @property
    def spw_ids(self) -> list[int]:
        """The spws of the SPW card the imaging service writes ('0' or '0,1'); empty without one."""
        return [int(number) for number in re.findall(r"\d+", str(self.header.get("SPW", "")))]


@contextmanager
def open_sky_image(path: Path) -> Iterator[SkyImage]:
    """The image in `path`; its pixels can be read until the block ends. ValueError (naming the file)
    when the file holds no image with celestial axes."""
    with fits.open(path, memmap=True) as hdus:
        primary = hdus[0]
        if primary.data is None or primary.header.get("NAXIS", 0) < 2:
            raise ValueError(f"{path.name}: the primary HDU holds no image")
        with warnings.catch_warnings():
            # CASA headers make astropy "fix" harmless things (MJD-OBS from DATE-OBS, ...) with a warning each.
            warnings.simplefilter("ignore", FITSFixedWarning)
            wcs = WCS(primary.header)
        if not wcs.has_celestial:
            raise ValueError(f"{path.name}: its WCS has no celestial (RA/Dec) axes; a sky preview needs them")
        yield _sky_image(path, primary.header, wcs, primary.data, hdus)


def _sky_image(path: Path, header: fits.Header, wcs: WCS, pixels: np.ndarray, hdus: fits.HDUList) -> SkyImage:
    ndim = pixels.ndim
    celestial_axes = {ndim - 1 - wcs.wcs.lng, ndim - 1 - wcs.wcs.lat}  # FITS axis i is numpy axis ndim-1-i
    spectral_axis = None if wcs.wcs.spec < 0 else ndim - 1 - wcs.wcs.spec
    plane_index: tuple[int | slice, ...] = tuple(
        slice(None) if axis in celestial_axes else 0 for axis in range(ndim)
    )
    return SkyImage(
        path=path,
        header=header,
        celestial=wcs.celestial,
        frequencies_hz=_frequencies_hz(wcs, pixels.shape[spectral_axis]) if spectral_axis is not None else None,
        beams=_beams(header, hdus),
        pixels=pixels,
        plane_index=plane_index,
        spectral_axis=spectral_axis,
    )


def _frequencies_hz(wcs: WCS, channels: int) -> np.ndarray | None:
    spectral = wcs.sub(["spectral"])
    if not spectral.wcs.ctype[0].startswith("FREQ"):
        return None  # a velocity or wavelength axis: no frequencies to show or to select continuum by
    # wcslib normalises spectral units to SI (Hz) when it sets up the transformation.
    return np.asarray(spectral.pixel_to_world_values(np.arange(channels)), dtype=np.float64)


def _beams(header: fits.Header, hdus: fits.HDUList) -> list[Beam]:
    """The per-channel beams of CASA's BEAMS table (first polarisation) when there is one, else the
    header's BMAJ/BMIN/BPA (degrees)."""
    if "BEAMS" in hdus:
        table = hdus["BEAMS"]
        rows = table.data[table.data["POL"] == 0] if "POL" in table.columns.names else table.data
        rows = rows[np.argsort(rows["CHAN"])] if "CHAN" in table.columns.names else rows
        to_arcsec = {
            name: u.Unit(table.columns[name].unit or "arcsec").to(u.arcsec) for name in ("BMAJ", "BMIN")
        }
        to_deg = u.Unit(table.columns["BPA"].unit or "deg").to(u.deg)
        return [
            Beam(
                major_arcsec=float(row["BMAJ"]) * to_arcsec["BMAJ"],
                minor_arcsec=float(row["BMIN"]) * to_arcsec["BMIN"],
                position_angle_deg=float(row["BPA"]) * to_deg,
            )
            for row in rows
        ]
    if "BMAJ" in header and "BMIN" in header:
        return [
            Beam(
                major_arcsec=float(header["BMAJ"]) * 3600.0,
                minor_arcsec=float(header["BMIN"]) * 3600.0,
                position_angle_deg=float(header.get("BPA", 0.0)),
            )
        ]
    return []

