"""From a dirty cube to the one spectrum the finder looks at: the mean inside a joint moment mask.

Like ALMA's findContinuum "mom0mom8jointMask" (written from its description): the moment-0 image (mean
over channels) shows where continuum and line emission add up, the moment-8 image (peak over channels)
shows where even a narrow line is bright. Pixels above median + N x scaled MAD in either, within the
primary beam, form the mask; its mean spectrum has the source's lines at full contrast, where a mean over
the whole field would dilute them into the noise. The spectrum's noise is measured off the source, with
the same mask moved about the image (spectrum_noise), so that the finder need not guess it from a
spectrum full of lines. numpy (and scipy.ndimage for the islands) only.
"""

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from aperture_findcont.continuum_finder import robust_sigma


@dataclass(frozen=True)
class MaskParameters:
    moment0_sigma: float = 4.0
    # The peak over channels of pure noise is skewed towards high values (an extreme-value
    # distribution): the same N would let noise peaks in, so its threshold is higher.
    peak_sigma: float = 5.0
    # Mask islands smaller than this fraction of the synthesized beam's area are noise peaks: a real
    # source above the threshold fills at least about a beam.
    minimum_island_beams: float = 0.5
    # Statistics and mask only where the primary-beam response is at least this (ALMA pipeline's mask
    # level); the fallback spectrum uses the inner part, where a faint source would be.
    primary_beam_limit: float = 0.3
    fallback_primary_beam: float = 0.5
    # spectrum_noise: the shifted copies of the mask keep this many beam widths from the mask itself
    # (the source's own sidelobes are strongest there), and need this many samples (copies x channels).
    noise_guard_beams: float = 1.0
    minimum_noise_samples: int = 32
    # ...and use at most this many copies, spread over the image (each reads the mask's pixels in every
    # channel: a large cube kept on disk must not be read hundreds of times).
    maximum_noise_copies: int = 64


@dataclass
class SourceSpectrum:
    """The spectrum to search, and where it came from."""

    spectrum: np.ndarray  # mean intensity per channel in the mask (Jy/beam); NaN where a channel has no data
    mask: np.ndarray  # bool image: the pixels averaged
    from_mask: bool  # False when nothing passed the thresholds and the inner primary beam was averaged
    moment0_threshold: float
    peak_threshold: float
    mask_pixels: int
    # Noise of one channel of `spectrum` measured off the source (see spectrum_noise); None when the
    # image has no room for it.
    noise: float | None = None
    noise_copies: int = 0


def moment_images(cube: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and peak over the channels that have data (NaN planes are skipped), one plane at a time so
    that a cube on disk (memmap) is read once without a cube-sized temporary."""
    total: np.ndarray | None = None
    peak: np.ndarray | None = None
    count = 0
    for plane in cube:
        if not np.all(np.isfinite(plane)):
            continue
        plane = np.asarray(plane, dtype=np.float64)
        total = plane.copy() if total is None else total + plane
        peak = plane.copy() if peak is None else np.maximum(peak, plane)
        count += 1
    if total is None or peak is None:
        raise ValueError("the cube has no channel with data")
    return total / count, peak


def primary_beam_gain(
    npix: int, cell_rad: float, pointing_pixels: list[tuple[float, float]], fwhm_rad: float
) -> np.ndarray:
    """Gaussian primary-beam response, the highest over the pointings (a mosaic's union), as an
    [x, y] image like the cube's planes."""
    x, y = np.meshgrid(np.arange(npix, dtype=float), np.arange(npix, dtype=float), indexing="ij")
    gain = np.zeros((npix, npix))
    for px, py in pointing_pixels:
        radius_sq = ((x - px) ** 2 + (y - py) ** 2) * cell_rad**2
        gain = np.maximum(gain, np.exp(-4 * np.log(2) * radius_sq / fwhm_rad**2))
    return gain


def joint_mask(
    moment0: np.ndarray,
    peak: np.ndarray,
    region: np.ndarray,
    beam_area_pixels: float,
    parameters: MaskParameters,
) -> tuple[np.ndarray, float, float]:
    """Pixels of `region` bright in moment 0 or in the peak image, without islands smaller than about
    half a beam; also the two thresholds."""
    thresholds = []
    for image, n_sigma in ((moment0, parameters.moment0_sigma), (peak, parameters.peak_sigma)):
        values = image[region]
        thresholds.append(float(np.median(values) + n_sigma * robust_sigma(values)))
    moment0_threshold, peak_threshold = thresholds
    mask = region & ((moment0 > moment0_threshold) | (peak > peak_threshold))
    labels, count = ndimage.label(mask)
    if count:
        sizes = np.bincount(labels.ravel())
        small = sizes < parameters.minimum_island_beams * beam_area_pixels
        small[0] = True  # label 0 is the background
        mask = ~small[labels]
    return mask, moment0_threshold, peak_threshold


def source_spectrum(
    cube: np.ndarray,
    primary_beam: np.ndarray,
    beam_area_pixels: float,
    parameters: MaskParameters | None = None,
) -> SourceSpectrum:
    """The mean spectrum inside the joint moment mask (or, when nothing is bright enough, inside the
    inner primary beam, so that a faint source still has its best chance)."""
    parameters = parameters or MaskParameters()
    moment0, peak = moment_images(cube)
    region = primary_beam >= parameters.primary_beam_limit
    mask, moment0_threshold, peak_threshold = joint_mask(moment0, peak, region, beam_area_pixels, parameters)
    from_mask = bool(mask.any())
    if not from_mask:
        mask = primary_beam >= parameters.fallback_primary_beam
    spectrum = np.array([float(np.mean(plane[mask])) for plane in cube])
    noise, copies = spectrum_noise(cube, mask, beam_area_pixels, parameters)
    return SourceSpectrum(
        spectrum=spectrum, mask=mask, from_mask=from_mask, moment0_threshold=moment0_threshold,
        peak_threshold=peak_threshold, mask_pixels=int(mask.sum()), noise=noise, noise_copies=copies,
    )


def spectrum_noise(
    cube: np.ndarray, mask: np.ndarray, beam_area_pixels: float, parameters: MaskParameters
) -> tuple[float | None, int]:
    """The noise of one channel of the mask's mean spectrum, measured where there is no source: the
    same mask shifted to every place of the image that keeps clear of it, its mean spectrum there taken
    about its own median (which removes any continuum sidelobe), the robust scatter pooled over the
    copies and channels. Also how many copies were used.

    Why not from the spectrum itself: a forest of lines, or a broad line's undetected wings, inflate any
    noise the spectrum gives of itself. Why not a pixel's noise scaled by the number of beams in the
    mask: the pixels of a dirty image are correlated over the dirty beam, sidelobes included, and how
    much that averages down depends on the mask's shape (on the generated MOUSs the Gaussian-beam
    estimate was 30-50 % too high). The shifted copies see the same correlation as the mask itself,
    since the dirty image's noise is the same everywhere before primary-beam correction.
    None when fewer than `minimum_noise_samples` values can be had (the mask fills the image).
    """
    if not mask.any():
        return None, 0
    guard = max(1, int(math.ceil(parameters.noise_guard_beams * math.sqrt(beam_area_pixels))))
    clear = ~ndimage.binary_dilation(mask, iterations=guard)
    xs, ys = np.nonzero(mask)
    # Copies half the mask's extent apart: closer ones would mostly repeat the same pixels.
    step_x, step_y = max(1, (int(np.ptp(xs)) + 1) // 2), max(1, (int(np.ptp(ys)) + 1) // 2)
    size_x, size_y = mask.shape
    finite = np.array([bool(np.all(np.isfinite(plane))) for plane in cube])
    shifts = [
        (dx, dy)
        for dx in range(-int(xs.min()), size_x - int(xs.max()), step_x)
        for dy in range(-int(ys.min()), size_y - int(ys.max()), step_y)
        if clear[xs + dx, ys + dy].all()
    ]
    if len(shifts) > parameters.maximum_noise_copies:
        chosen = np.linspace(0, len(shifts) - 1, parameters.maximum_noise_copies).round().astype(int)
        shifts = [shifts[index] for index in chosen]
    spectra = [np.asarray(cube[:, xs + dx, ys + dy], dtype=np.float64)[finite].mean(axis=1) for dx, dy in shifts]
    if not spectra or len(spectra) * int(finite.sum()) < parameters.minimum_noise_samples:
        return None, len(spectra)
    copies = np.array(spectra)
    residual = copies - np.median(copies, axis=1, keepdims=True)
    return robust_sigma(residual.ravel()), len(spectra)
