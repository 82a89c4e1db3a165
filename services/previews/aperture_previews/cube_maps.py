"""The line maps of a cube: integrated intensity (moment 0), peak (moment 8) and the spectrum at the peak.

The maps use the line channels only: those whose centre lies outside every continuum range (a channel
belongs to a range exactly when its centre lies inside, as findcont writes cont.dat; the ranges must be
in the cube's spectral frame, LSRK for the pipeline's cubes). With no ranges every channel is a line
channel. Velocities follow the radio convention, v = c (1 - f / RESTFRQ), so a channel of width df spans
c |df| / RESTFRQ.

The peak position is the brightest point of the peak map in signal-to-noise (see peak_search): in a
primary-beam corrected cube the largest pixel is usually noise at the edge of the field.
"""

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from aperture_contracts.imaging import Beam
from astropy.io import fits
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from numpy.typing import ArrayLike
from pydantic import BaseModel

from aperture_previews.peak_search import brightest_pixel, noise_map, signal_to_noise
from aperture_previews.quicklook import QUICKLOOK_DPI, QuickLook, quicklook_title, write_quicklook
from aperture_previews.sky_image import SkyImage, open_sky_image

SPEED_OF_LIGHT_KM_S = 299_792.458
SPECTRUM_INCHES = (7.0, 4.0)
# Header cards of the cube that the maps keep, besides the celestial WCS and the beam.
KEPT_CARDS = ("OBJECT", "TELESCOP", "INSTRUME", "OBSERVER", "DATE-OBS", "SPECSYS", "RESTFRQ", "MOUSID", "SPW")


class CubeMaps(BaseModel):
    """What make_cube_maps wrote and what it found."""

    cube: Path
    moment0_fits: Path
    peak_fits: Path
    moment0_quicklook: QuickLook
    peak_quicklook: QuickLook
    spectrum_png: Path
    spectrum_size_px: tuple[int, int]
    line_channels: list[int]
    continuum_ranges_hz: list[tuple[float, float]]
    rest_frequency_hz: float
    moment0_unit: str
    peak_unit: str
    peak_pixel: tuple[int, int]  # (x, y): column and row, counted from 0
    peak_ra_deg: float
    peak_dec_deg: float
    peak_value: float  # the peak map there, in peak_unit
    peak_signal_to_noise: float | None  # None where the cube's noise could not be measured


def make_cube_maps(
    cube_fits: Path,
    out_dir: Path,
    continuum_ranges_hz: Sequence[tuple[float, float]] = (),
    *,
    spw_ids: Sequence[int] | None = None,
) -> CubeMaps:
    """Write <stem>.mom0.fits, <stem>.mom8.fits, their quick-looks and <stem>.spectrum.png into out_dir.
    ValueError (naming the file) for a cube without a frequency axis or rest frequency, or with no line
    channel left."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = cube_fits.name.removesuffix(".fits")
    ranges = [(float(low), float(high)) for low, high in continuum_ranges_hz]
    with open_sky_image(cube_fits) as cube:
        frequencies_hz, rest_hz = _spectral_axis(cube)
        line = line_channels(frequencies_hz, ranges)
        if line.size == 0:
            raise ValueError(f"{cube_fits.name}: every channel lies in the continuum ranges; there is no line to map")
        moment0, peak = line_maps(cube, line, velocity_widths_km_s(frequencies_hz, rest_hz))
        (row, column), peak_snr = locate_peak(cube, line, peak)
        sky = cube.celestial.pixel_to_world(column, row)
        spectrum = cube.rows(np.arange(cube.num_channels), slice(row, row + 1))[:, 0, column]
        channels_text = channel_selection(line)
        beam = representative_beam([cube.beam(int(channel)) for channel in line])
        moment0_unit = f"{cube.unit}.km/s" if cube.unit else "km/s"
        moment0_fits, peak_fits = out_dir / f"{stem}.mom0.fits", out_dir / f"{stem}.mom8.fits"
        _write_map(moment0_fits, moment0, cube, beam, moment0_unit, f"moment 0 over channels {channels_text}")
        _write_map(peak_fits, peak, cube, beam, cube.unit, f"moment 8 (peak) over channels {channels_text}")
        spws = list(spw_ids) if spw_ids is not None else cube.spw_ids
        spectrum_png = out_dir / f"{stem}.spectrum.png"
        where = f"spectrum at {sky.to_string('hmsdms', precision=2)} (pixel {column}, {row})"
        spectrum_size = draw_spectrum(
            spectrum_png, frequencies_hz, spectrum, ranges, rest_hz, cube.unit,
            quicklook_title(cube.target, spws, where, None, None), str(cube.header.get("SPECSYS", "")).strip(),
        )
        return CubeMaps(
            cube=cube_fits, moment0_fits=moment0_fits, peak_fits=peak_fits,
            moment0_quicklook=write_quicklook(moment0_fits, out_dir, kind=f"moment 0, channels {channels_text}",
                                              spw_ids=spws),
            peak_quicklook=write_quicklook(peak_fits, out_dir, kind=f"peak, channels {channels_text}", spw_ids=spws),
            spectrum_png=spectrum_png, spectrum_size_px=spectrum_size, line_channels=[int(c) for c in line],
            continuum_ranges_hz=ranges, rest_frequency_hz=rest_hz, moment0_unit=moment0_unit, peak_unit=cube.unit,
            peak_pixel=(column, row), peak_ra_deg=float(sky.spherical.lon.deg),
            peak_dec_deg=float(sky.spherical.lat.deg), peak_value=float(peak[row, column]),
            peak_signal_to_noise=peak_snr,
        )


def _spectral_axis(cube: SkyImage) -> tuple[np.ndarray, float]:
    if cube.frequencies_hz is None or cube.num_channels < 2:
        raise ValueError(f"{cube.path.name}: no frequency axis of several channels; it is not a line cube")
    if cube.rest_frequency_hz is None:
        raise ValueError(f"{cube.path.name}: no rest frequency (RESTFRQ) to convert channels to velocities")
    return cube.frequencies_hz, cube.rest_frequency_hz


def locate_peak(cube: SkyImage, line: np.ndarray, peak: np.ndarray) -> tuple[tuple[int, int], float | None]:
    """(row, column) of the peak map's brightest point in signal-to-noise, against the noise of the
    continuum channels (of all channels when there are none), and that signal-to-noise."""
    continuum = np.setdiff1d(np.arange(cube.num_channels), line)
    noise = noise_map(cube, continuum if continuum.size else np.arange(cube.num_channels))
    snr = signal_to_noise(peak, noise)
    found = brightest_pixel(peak if snr is None else snr)
    if found is None:
        raise ValueError(f"{cube.path.name}: no finite pixel in its line channels")
    return found, None if snr is None else float(snr[found])


def line_channels(frequencies_hz: np.ndarray, continuum_ranges_hz: Sequence[tuple[float, float]]) -> np.ndarray:
    """The channels whose centre lies outside every continuum range. A thousandth of a channel of
    tolerance absorbs ranges rounded when written (cont.dat has 10 decimals in GHz)."""
    tolerance = 1e-3 * float(np.median(np.abs(np.diff(frequencies_hz)))) if frequencies_hz.size > 1 else 0.0
    continuum = np.zeros(frequencies_hz.size, dtype=bool)
    for low, high in continuum_ranges_hz:
        continuum |= (frequencies_hz >= min(low, high) - tolerance) & (frequencies_hz <= max(low, high) + tolerance)
    return np.flatnonzero(~continuum)


def velocity_widths_km_s(frequencies_hz: np.ndarray, rest_hz: float) -> np.ndarray:
    """Each channel's width in radio velocity (the channel spacing of the WCS, converted)."""
    return np.abs(np.gradient(frequencies_hz)) * SPEED_OF_LIGHT_KM_S / rest_hz


def line_maps(cube: SkyImage, channels: np.ndarray, widths_km_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Moment 0 (sum of intensity x velocity width) and the peak over the channels, read one channel at a
    time. Blank (NaN) pixels are skipped; a pixel blank in every channel stays blank in both maps."""
    moment0, peak = np.zeros(cube.plane_shape), np.full(cube.plane_shape, -np.inf)
    seen = np.zeros(cube.plane_shape, dtype=bool)
    for channel in channels:
        plane = cube.plane(int(channel))
        finite = np.isfinite(plane)
        moment0 += np.where(finite, plane, 0.0) * widths_km_s[channel]
        peak = np.where(finite & (plane > peak), plane, peak)
        seen |= finite
    moment0[~seen] = np.nan
    peak[~seen] = np.nan
    return moment0, peak


def representative_beam(beams: list[Beam | None]) -> Beam | None:
    """One beam for a map made of several channels: the one of median area (per-channel beams of a cube
    differ by a few per cent)."""
    known = sorted((beam for beam in beams if beam is not None), key=lambda b: b.major_arcsec * b.minor_arcsec)
    return known[len(known) // 2] if known else None


def channel_selection(channels: np.ndarray) -> str:
    """Channels in CASA's syntax, '28~46;50~52'."""
    runs = np.split(channels, np.flatnonzero(np.diff(channels) != 1) + 1)
    return ";".join(f"{run[0]}~{run[-1]}" if run.size > 1 else f"{run[0]}" for run in runs)


def _write_map(path: Path, data: np.ndarray, cube: SkyImage, beam: Beam | None, unit: str, what: str) -> None:
    header = cube.celestial.to_header()
    for card in KEPT_CARDS:
        if card in cube.header:
            header[card] = cube.header[card]
    header["BUNIT"] = unit
    if beam is not None:
        header["BMAJ"] = beam.major_arcsec / 3600.0
        header["BMIN"] = beam.minor_arcsec / 3600.0
        header["BPA"] = beam.position_angle_deg
    header["HISTORY"] = f"{what} of {cube.path.name}"
    fits.PrimaryHDU(data.astype(np.float32), header).writeto(path, overwrite=True)


def draw_spectrum(
    png: Path, frequencies_hz: np.ndarray, spectrum: np.ndarray, continuum_ranges_hz: list[tuple[float, float]],
    rest_hz: float, unit: str, title: str, frame: str,
) -> tuple[int, int]:
    """The spectrum against frequency (GHz), continuum ranges shaded, radio velocity on the top axis;
    returns the PNG's size in pixels."""
    figure = Figure(figsize=SPECTRUM_INCHES, dpi=QUICKLOOK_DPI, layout="constrained")
    canvas = FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    frequencies_ghz = frequencies_hz / 1e9
    half_channel = abs(float(np.median(np.diff(frequencies_ghz)))) / 2
    axes.set_xlim(frequencies_ghz.min() - half_channel, frequencies_ghz.max() + half_channel)
    for index, (low, high) in enumerate(continuum_ranges_hz):
        axes.axvspan(low / 1e9, high / 1e9, color="tab:blue", alpha=0.15, linewidth=0,
                     label="continuum ranges" if index == 0 else None)
    axes.axhline(0.0, color="grey", linewidth=0.6)
    axes.step(frequencies_ghz, spectrum, where="mid", color="black", linewidth=1.0)
    axes.set_xlabel(f"Frequency{f' ({frame})' if frame else ''} (GHz)")
    axes.set_ylabel(f"Flux density ({unit or 'no unit'})")
    rest_ghz = rest_hz / 1e9

    def ghz_to_km_s(ghz: ArrayLike) -> ArrayLike:
        return SPEED_OF_LIGHT_KM_S * (1 - np.asarray(ghz) / rest_ghz)

    def km_s_to_ghz(km_s: ArrayLike) -> ArrayLike:
        return rest_ghz * (1 - np.asarray(km_s) / SPEED_OF_LIGHT_KM_S)

    velocity = axes.secondary_xaxis("top", functions=(ghz_to_km_s, km_s_to_ghz))
    velocity.set_xlabel(f"Radio velocity (km/s; rest frequency {rest_ghz:.6f} GHz)")
    if continuum_ranges_hz:
        axes.legend(loc="upper right", fontsize=8)
    axes.set_title(title, fontsize=9)
    figure.savefig(png, dpi=QUICKLOOK_DPI)
    return canvas.get_width_height()
