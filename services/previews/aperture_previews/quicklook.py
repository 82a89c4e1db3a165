"""Quick-look PNGs of a FITS image: one sky plane with RA/Dec axes, the restoring beam, a colour bar in the
image's unit and a robust asinh stretch; and a small thumbnail of the same plane without axes.

Figures are drawn with matplotlib's object API on the Agg canvas, never through pyplot: nothing is
registered globally, so a worker that renders thousands of images keeps no figure between calls and
needs no display. The same input gives the same PNG bytes.
"""

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from aperture_contracts.imaging import Beam
from astropy.visualization import AsinhStretch, ImageNormalize
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_scales
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import Colormap
from matplotlib.figure import Figure
from matplotlib.patches import Ellipse
from pydantic import BaseModel

from aperture_previews.peak_search import brightest_channel
from aperture_previews.sky_image import open_sky_image

QUICKLOOK_INCHES = (7.0, 6.0)
QUICKLOOK_DPI = 100  # 700 x 600 pixels
THUMBNAIL_PX = 192  # the longer side
# The stretch runs between these percentiles of the finite pixels: the lower one sits in the noise, the
# upper one keeps a compact source's peak from being set by a few edge pixels that the primary-beam
# correction amplifies. asinh then shows both the noise and the bright emission.
LOWER_PERCENTILE = 0.5
UPPER_PERCENTILE = 99.95
ASINH_A = 0.1
COLOURMAP = "inferno"
BLANK_COLOUR = "#d0d0d0"  # NaN pixels (outside the primary-beam limit)


class QuickLook(BaseModel):
    """What write_quicklook wrote and the figures it drew with."""

    fits: Path
    png: Path
    thumbnail: Path
    png_size_px: tuple[int, int]  # width, height
    thumbnail_size_px: tuple[int, int]
    channel: int | None  # the cube channel shown; None for an image with one plane
    frequency_hz: float | None  # of that channel (of the image's reference, for one plane)
    vmin: float  # the stretch limits, in the image's unit
    vmax: float
    unit: str
    pixel_arcsec: float
    beam: Beam | None
    beam_major_px: float | None  # the ellipse as drawn
    beam_minor_px: float | None
    title: str


def write_quicklook(
    fits_path: Path,
    out_dir: Path,
    *,
    kind: str,
    spw_ids: Sequence[int] | None = None,
    channel: int | None = None,
    title: str | None = None,
) -> QuickLook:
    """Write <stem>.png and <stem>.thumb.png of `fits_path` into out_dir. For a cube, `channel` (default:
    the channel with the brightest point in signal-to-noise) is shown. `kind` (mfs, cont, cube, ...) and
    the spws (default: the header's SPW card) go into the title unless a whole `title` is given."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = fits_path.name.removesuffix(".fits")
    with open_sky_image(fits_path) as image:
        is_cube = image.num_channels > 1
        shown = channel if channel is not None else (brightest_channel(image) if is_cube else 0)
        plane = image.plane(shown)
        frequency_hz = None if image.frequencies_hz is None else float(image.frequencies_hz[shown])
        beam = image.beam(shown)
        if title is None:
            spws = list(spw_ids) if spw_ids is not None else image.spw_ids
            title = quicklook_title(image.target, spws, kind, shown if is_cube else None, frequency_hz)
        vmin, vmax = stretch_limits(plane)
        beam_px = beam_size_px(beam, image.celestial) if beam is not None else None
        png, thumbnail = out_dir / f"{stem}.png", out_dir / f"{stem}.thumb.png"
        png_size = draw_quicklook(png, plane, image.celestial, (vmin, vmax), beam, image.unit, title)
        thumbnail_size = draw_thumbnail(thumbnail, plane, (vmin, vmax))
        return QuickLook(
            fits=fits_path, png=png, thumbnail=thumbnail, png_size_px=png_size, thumbnail_size_px=thumbnail_size,
            channel=shown if is_cube else None, frequency_hz=frequency_hz, vmin=vmin, vmax=vmax, unit=image.unit,
            pixel_arcsec=image.pixel_arcsec, beam=beam, beam_major_px=beam_px[0] if beam_px else None,
            beam_minor_px=beam_px[1] if beam_px else None, title=title,
        )


def quicklook_title(
    target: str, spw_ids: Sequence[int], kind: str, channel: int | None, frequency_hz: float | None
) -> str:
    parts = [target]
    if spw_ids:
        parts.append(("spw " if len(spw_ids) == 1 else "spws ") + ",".join(str(spw) for spw in spw_ids))
    parts.append(kind)
    if channel is not None:
        parts.append(f"channel {channel}" + (f" at {frequency_hz / 1e9:.5f} GHz" if frequency_hz else ""))
    return " · ".join(parts)


def stretch_limits(plane: np.ndarray) -> tuple[float, float]:
    """The display range: percentiles of the finite pixels, widened when they coincide (a flat or blank
    plane) so that the normalisation is always defined."""
    finite = plane[np.isfinite(plane)]
    if finite.size == 0:
        return 0.0, 1.0
    low, high = (float(value) for value in np.percentile(finite, [LOWER_PERCENTILE, UPPER_PERCENTILE]))
    if high <= low:
        half_width = max(abs(low), 1.0) * 1e-6
        return low - half_width, low + half_width
    return low, high


def beam_size_px(beam: Beam, celestial: WCS) -> tuple[float, float]:
    """The beam's major and minor axes (FWHM) in pixels."""
    pixel_deg = float(np.mean(proj_plane_pixel_scales(celestial)))
    return beam.major_arcsec / 3600.0 / pixel_deg, beam.minor_arcsec / 3600.0 / pixel_deg


def beam_ellipse(beam: Beam, celestial: WCS, plane_shape: tuple[int, ...]) -> Ellipse:
    """The beam as a patch in pixel coordinates, in the lower left corner. The position angle runs from
    north through east; with east to the left (RA increasing leftwards, as CASA writes images) that is
    counter-clockwise on the plot."""
    major_px, minor_px = beam_size_px(beam, celestial)
    east_is_left = celestial.pixel_scale_matrix[0, 0] < 0
    angle = 90.0 + beam.position_angle_deg if east_is_left else 90.0 - beam.position_angle_deg
    margin = 0.04 * min(plane_shape) + major_px / 2
    return Ellipse(
        (margin - 0.5, margin - 0.5), width=major_px, height=minor_px, angle=angle,
        facecolor="white", edgecolor="black", linewidth=0.8, alpha=0.8,
    )


def _colourmap() -> Colormap:
    return colormaps[COLOURMAP].with_extremes(bad=BLANK_COLOUR)


def _normalisation(limits: tuple[float, float]) -> ImageNormalize:
    # Not clipped: clipping would turn NaN into the top colour; the colour map's ends show what is outside.
    return ImageNormalize(vmin=limits[0], vmax=limits[1], stretch=AsinhStretch(ASINH_A), clip=False)


def draw_quicklook(
    png: Path, plane: np.ndarray, celestial: WCS, limits: tuple[float, float], beam: Beam | None, unit: str,
    title: str,
) -> tuple[int, int]:
    """Draw the annotated quick-look into `png`; returns its size in pixels."""
    figure = Figure(figsize=QUICKLOOK_INCHES, dpi=QUICKLOOK_DPI, layout="constrained")
    canvas = FigureCanvasAgg(figure)
    axes = figure.add_subplot(projection=celestial)
    shown = axes.imshow(plane, origin="lower", cmap=_colourmap(), norm=_normalisation(limits), interpolation="nearest")
    frame = (celestial.wcs.radesys or "ICRS").strip()
    longitude, latitude = axes.coords[0], axes.coords[1]
    if celestial.wcs.ctype[0].startswith("RA"):
        longitude.set_major_formatter("hh:mm:ss.s")
        latitude.set_major_formatter("dd:mm:ss")
        longitude.set_axislabel(f"Right ascension ({frame})")
        latitude.set_axislabel(f"Declination ({frame})")
    if beam is not None:
        axes.add_patch(beam_ellipse(beam, celestial, plane.shape))
    colour_bar = figure.colorbar(shown, ax=axes, label=unit or "(no unit)", shrink=0.9)
    # Ticks evenly spaced along the bar (the stretch would crowd evenly spaced values at the top).
    colour_bar.set_ticks([float(f"{value:.2g}") for value in shown.norm.inverse(np.linspace(0, 1, 6))])
    axes.set_title(title, fontsize=10)
    figure.savefig(png, dpi=QUICKLOOK_DPI)
    return canvas.get_width_height()


def draw_thumbnail(png: Path, plane: np.ndarray, limits: tuple[float, float]) -> tuple[int, int]:
    """Draw the plane alone (no axes, no labels), THUMBNAIL_PX on its longer side; returns its size."""
    rows, columns = plane.shape
    scale = THUMBNAIL_PX / max(rows, columns)
    size = (max(1, round(columns * scale)), max(1, round(rows * scale)))
    figure = Figure(figsize=(size[0] / QUICKLOOK_DPI, size[1] / QUICKLOOK_DPI), dpi=QUICKLOOK_DPI)
    canvas = FigureCanvasAgg(figure)
    axes = figure.add_axes((0.0, 0.0, 1.0, 1.0))
    axes.set_axis_off()
    axes.imshow(plane, origin="lower", cmap=_colourmap(), norm=_normalisation(limits), aspect="auto")
    figure.savefig(png, dpi=QUICKLOOK_DPI)
    return canvas.get_width_height()
