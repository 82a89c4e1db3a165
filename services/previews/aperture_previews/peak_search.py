"""Where a cube's emission is: the per-pixel noise and the brightest point in signal-to-noise.

In a primary-beam corrected cube the noise grows towards the edge of the field (it is divided by the
primary beam), so the largest pixel of a channel with a weak line is usually an edge noise pixel. Peaks are
therefore looked for in signal-to-noise, against a noise map measured along the spectral axis: the
scaled median absolute deviation over channels, which a line filling fewer than half of the channels
does not raise, then the median of that over small tiles of pixels. A few dozen channels measure a
pixel's noise to only some 20 %, enough to move a peak to its neighbour; the noise of an interferometric
image varies smoothly across the field, so neighbouring pixels can share their measurements. Without
enough channels to measure it (or in a noiseless cube) the plain maximum is used.
"""

import math
import warnings

import numpy as np

from aperture_previews.sky_image import SkyImage

MIN_NOISE_CHANNELS = 5
MAD_TO_SIGMA = 1.4826  # the scaled MAD of Gaussian noise is its standard deviation
BLOCK_PIXELS = 8_000_000  # values read at once when measuring the noise map (64 MB of float64)
NOISE_FLOOR = 0.1  # of the median noise: the least noise a pixel is believed to have
NOISE_TILE = 4  # pixels: small against the primary beam, over which the noise changes


def noise_map(image: SkyImage, channels: np.ndarray) -> np.ndarray | None:
    """The noise of each pixel over the given channels (NaN where blank); None when there are too few
    channels. Read in blocks of rows, since the median needs all channels of a pixel at once."""
    if channels.size < MIN_NOISE_CHANNELS:
        return None
    rows, columns = image.plane_shape
    block_rows = max(1, BLOCK_PIXELS // (channels.size * columns))
    noise = np.empty((rows, columns))
    for first in range(0, rows, block_rows):
        block = image.rows(channels, slice(first, first + block_rows))
        median = np.median(block, axis=0)
        noise[first : first + block_rows] = MAD_TO_SIGMA * np.median(np.abs(block - median), axis=0)
    return np.where(np.isfinite(noise), tile_median(noise, NOISE_TILE), np.nan)


def tile_median(values: np.ndarray, tile: int) -> np.ndarray:
    """Each pixel replaced by the median of the finite values of its tile x tile square."""
    rows, columns = values.shape
    tile_rows, tile_columns = math.ceil(rows / tile), math.ceil(columns / tile)
    padded = np.full((tile_rows * tile, tile_columns * tile), np.nan)
    padded[:rows, :columns] = values
    tiles = padded.reshape(tile_rows, tile, tile_columns, tile).swapaxes(1, 2).reshape(tile_rows, tile_columns, -1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # tiles wholly outside the field: all NaN, and stay so
        medians = np.nanmedian(tiles, axis=2)
    return np.repeat(np.repeat(medians, tile, axis=0), tile, axis=1)[:rows, :columns]


def signal_to_noise(plane: np.ndarray, noise: np.ndarray | None) -> np.ndarray | None:
    """plane / noise (NaN where the noise is not measured); None when the field has no noise to speak of
    (too few channels, or a noiseless cube). The noise is floored at a tenth of its median, so that a few
    pixels of next to no noise cannot make a peak."""
    if noise is None or not np.isfinite(noise).any():
        return None
    typical = float(np.nanmedian(noise))
    if not typical > 0:
        return None
    return plane / np.maximum(noise, NOISE_FLOOR * typical)


def robust_spread(values: np.ndarray) -> float:
    """The scaled MAD of the finite values (1 where it is not positive: nothing to scale by)."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 1.0
    spread = MAD_TO_SIGMA * float(np.median(np.abs(finite - np.median(finite))))
    return spread if spread > 0 else 1.0


def brightest_pixel(score: np.ndarray) -> tuple[int, int] | None:
    """(row, column) of the largest finite value; None when there is none."""
    finite = np.isfinite(score)
    if not finite.any():
        return None
    row, column = np.unravel_index(np.argmax(np.where(finite, score, -np.inf)), score.shape)
    return int(row), int(column)


def brightest_channel(image: SkyImage) -> int:
    """The channel holding the cube's brightest point in signal-to-noise (0 when all is blank). Each
    channel's signal-to-noise is also divided by its own spread, since channels differ in noise too (the
    edge channels of a spw are the noisiest)."""
    noise = noise_map(image, np.arange(image.num_channels))
    best_channel, best_score = 0, -np.inf
    for channel in range(image.num_channels):
        plane = image.plane(channel)
        snr = signal_to_noise(plane, noise)
        score = plane if snr is None else snr / robust_spread(snr)
        pixel = brightest_pixel(score)
        if pixel is not None and score[pixel] > best_score:
            best_channel, best_score = channel, float(score[pixel])
    return best_channel
