"""Continuum channels <-> LSRK frequency ranges <-> CASA channel selections, in plain numpy.

A range runs from the outer edge of its first channel to the outer edge of its last, so that a channel
belongs to a range exactly when its centre lies inside: the same rule maps ranges back onto any channel
grid (another execution's channels, shifted by the Earth's motion, or an operator's hand-written
ranges).
"""

import numpy as np
from aperture_contracts.continuum import FrequencyRange

from aperture_findcont.continuum_finder import runs


def channel_width_hz(frequencies_hz: np.ndarray) -> float:
    """The (absolute) spacing of a regular channel grid; 0 for a single channel."""
    if frequencies_hz.size < 2:
        return 0.0
    return abs(float(frequencies_hz[-1] - frequencies_hz[0])) / (frequencies_hz.size - 1)


def frequency_ranges(continuum: np.ndarray, frequencies_hz: np.ndarray, width_hz: float) -> list[FrequencyRange]:
    """The continuum channels as closed frequency ranges (channel edges), low to high frequency."""
    ranges = []
    for first, last in runs(continuum):
        centres = frequencies_hz[[first, last]]
        ranges.append(
            FrequencyRange(low_hz=float(centres.min()) - width_hz / 2, high_hz=float(centres.max()) + width_hz / 2)
        )
    return sorted(ranges, key=lambda r: r.low_hz)


def channels_in_ranges(ranges: list[FrequencyRange], frequencies_hz: np.ndarray, width_hz: float) -> np.ndarray:
    """Which channels have their centre inside one of the ranges. A tolerance of a thousandth of a
    channel absorbs the rounding of ranges written with 10 decimals in GHz."""
    tolerance = 1e-3 * width_hz
    inside = np.zeros(frequencies_hz.size, dtype=bool)
    for selected in ranges:
        inside |= (frequencies_hz >= selected.low_hz - tolerance) & (frequencies_hz <= selected.high_hz + tolerance)
    return inside


def channel_selection(channels: np.ndarray) -> str:
    """CASA's channel syntax for the selected channels: '0~27;47~63' ('' when none)."""
    return ";".join(f"{first}~{last}" for first, last in runs(channels))
