"""Figures read from the CASA images tclean made: beam, robust rms, peaks, spectral extent, and the peak
residuals tclean reports per cycle. Runs inside the CASA child process."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from aperture_contracts.imaging import Beam

# 1.4826 x the median absolute deviation estimates a Gaussian's sigma, untouched by sources and artefacts.
MAD_TO_SIGMA = 1.4826
# A plane needs this many noise pixels (outside the clean mask, inside the primary beam) for its rms.
MIN_NOISE_PIXELS = 100


@contextmanager
def opened_image(path: str) -> Iterator[Any]:
    import casatools  # type: ignore[import-untyped]

    image = casatools.image()
    image.open(path)
    try:
        yield image
    finally:
        image.close()


def _pixels(path: str) -> np.ndarray:
    """Pixel values as (nx, ny, planes): Stokes and spectral axes folded into one plane axis."""
    with opened_image(path) as image:
        data = np.asarray(image.getchunk(), dtype=float)
        valid = np.asarray(image.getchunk(getmask=True), dtype=bool)
    data = np.where(valid, data, np.nan)
    return data.reshape(data.shape[0], data.shape[1], -1)


def _planes_like(path: str, values: np.ndarray) -> np.ndarray:
    """The image at `path` with as many planes as `values` (a one-plane primary beam or mask of an
    mfs image, or of an mtmfs image's Taylor terms, serves every plane)."""
    planes = _pixels(path)
    return np.broadcast_to(planes, values.shape) if planes.shape[2] != values.shape[2] else planes


def _beam(record: dict[str, Any]) -> Beam:
    return Beam(
        major_arcsec=_arcsec(record["major"]),
        minor_arcsec=_arcsec(record["minor"]),
        position_angle_deg=_degrees(record["positionangle"] if "positionangle" in record else record["pa"]),
    )


def _arcsec(quantity: dict[str, Any]) -> float:
    import casatools

    return float(casatools.quanta().convert(quantity, "arcsec")["value"])


def _degrees(quantity: dict[str, Any]) -> float:
    import casatools

    return float(casatools.quanta().convert(quantity, "deg")["value"])


def restoring_beam(path: str) -> Beam:
    """The image's beam; for a cube with a beam per plane, the smallest beam that contains them all."""
    with opened_image(path) as image:
        record = image.restoringbeam()
        if "beams" in record:
            record = image.commonbeam()
    return _beam(record)


def robust_rms_jy(residual: str, mask: str | None, pb: str, pb_level: float) -> float:
    """The noise of the residual away from emission and from the primary beam's edge: the MAD-based
    sigma of pixels outside the clean mask where the primary beam is at least `pb_level`; for cubes the
    median over planes (an edge plane with less data does not set the cube's figure). Without a mask
    (nothing cleaned), every pixel inside the primary beam counts."""
    values = _pixels(residual)
    beam = _planes_like(pb, values)
    clean_mask = np.zeros(values.shape) if mask is None else _planes_like(mask, values)
    plane_rms: list[float] = []
    for plane in range(values.shape[2]):
        plane_values = values[:, :, plane]
        inside = (np.nan_to_num(beam[:, :, plane]) >= pb_level) & np.isfinite(plane_values) & (plane_values != 0)
        noise = plane_values[inside & (np.nan_to_num(clean_mask[:, :, plane]) < 0.5)]
        if noise.size < MIN_NOISE_PIXELS:
            noise = plane_values[inside]  # the mask covers the whole beam: the robust estimate still holds
        if noise.size >= MIN_NOISE_PIXELS:
            plane_rms.append(_mad_sigma(noise))
    if not plane_rms:
        raise RuntimeError(f"{residual} has fewer than {MIN_NOISE_PIXELS} pixels inside the primary beam")
    return float(np.median(plane_rms))


def _mad_sigma(values: np.ndarray) -> float:
    return float(MAD_TO_SIGMA * np.median(np.abs(values - np.median(values))))


def peak_within_pb(image: str, pb: str, pb_level: float, absolute: bool = False) -> float:
    """The largest value where the primary beam is at least `pb_level`; absolute: the largest magnitude
    (for a dirty image, where negative sidelobes limit the dynamic range as much as positive ones)."""
    values = _pixels(image)
    beam = _planes_like(pb, values)
    inside = values[(np.nan_to_num(beam) >= pb_level) & np.isfinite(values)]
    if not inside.size:
        return float("nan")
    return float(np.max(np.abs(inside)) if absolute else np.max(inside))


def spectral_extent_hz(path: str) -> tuple[float, float, int]:
    """Lowest and highest frequency covered by the image's channels (edges), and the channel count."""
    with opened_image(path) as image:
        coordinates = image.coordsys()
        try:
            shape = [int(n) for n in image.shape()]
            axis = int(coordinates.findaxisbyname("spectral"))
            increment = abs(float(coordinates.increment()["numeric"][axis]))
            pixel = [0.0] * len(shape)
            centres = []
            for channel in (0, shape[axis] - 1):
                pixel[axis] = float(channel)
                centres.append(float(coordinates.toworld(pixel)["numeric"][axis]))
        finally:
            coordinates.done()
    return min(centres) - increment / 2, max(centres) + increment / 2, shape[axis]


def peak_residuals_per_plane(tclean_summary: dict[str, Any]) -> list[list[float]]:
    """tclean's per-cycle peak residuals, one list per (field, channel, Stokes) plane, from the
    'summaryminor' record tclean returns (nested dicts ending in {'peakRes': [...], ...})."""
    found: list[list[float]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "peakRes" in node:
                found.append([float(value) for value in np.ravel(node["peakRes"])])
                return
            for child in node.values():
                walk(child)

    walk(tclean_summary.get("summaryminor", {}))
    return found
