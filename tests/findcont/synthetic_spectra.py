"""Synthetic spectra for the finder's tests: Gaussian lines on a continuum with white or Hanning-smoothed
noise, in units of the noise's sigma."""

import numpy as np


def gaussian_line(channels: int, centre: float, fwhm: float, peak: float) -> np.ndarray:
    x = np.arange(channels, dtype=float)
    return peak * np.exp(-0.5 * ((x - centre) / (fwhm / (2 * np.sqrt(2 * np.log(2))))) ** 2)


def lines(channels: int, specs: list[tuple[float, float, float]]) -> np.ndarray:
    """Sum of Gaussian lines given as (centre, fwhm, peak)."""
    model = np.zeros(channels)
    for centre, fwhm, peak in specs:
        model += gaussian_line(channels, centre, fwhm, peak)
    return model


def noise(channels: int, seed: int, *, hanning: bool = False) -> np.ndarray:
    """Unit-sigma noise; Hanning-smoothed like ALMA's online smoothing (neighbours correlated by 2/3),
    rescaled back to unit sigma."""
    rng = np.random.default_rng(seed)
    if not hanning:
        return rng.normal(0.0, 1.0, channels)
    smoothed = np.convolve(rng.normal(0.0, 1.0, channels + 2), [0.25, 0.5, 0.25], mode="valid")
    return smoothed / np.sqrt(0.375)
