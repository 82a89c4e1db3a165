"""Doppler factors from an MS's own frequency frame to LSRK, with casatools' measures (in the CASA child).

ALMA records channel frequencies in TOPO; the source's lines are fixed in LSRK. The ratio
nu_LSRK / nu_TOPO depends on time (the Earth turns and orbits) and direction, and not on frequency, so
one factor per time converts every channel. Over an hour it changes by ~1e-6 (a fraction of a channel);
between executions on different days by up to ~1e-4 (many channels), which is why each row gets its own.
"""

import math
from typing import Any

import numpy as np

# Factors are computed at most this far apart and interpolated in between (the factor is smooth).
SAMPLE_INTERVAL_S = 300.0
_REFERENCE_HZ = 1.0e11


def lsrk_factors(
    times_s: np.ndarray,
    direction_rad: tuple[float, float],
    direction_frame: str,
    observatory_itrf_m: tuple[float, float, float],
    frame: str,
) -> np.ndarray:
    """nu_LSRK / nu_frame for each time (MJD seconds, UTC) towards one direction from one place."""
    times_s = np.asarray(times_s, dtype=float)
    if frame == "LSRK" or times_s.size == 0:
        return np.ones_like(times_s)
    import casatools  # type: ignore[import-untyped]

    measures: Any = casatools.measures()
    quanta: Any = casatools.quanta()
    try:
        x, y, z = observatory_itrf_m
        measures.doframe(
            measures.position("ITRF", quanta.quantity(x, "m"), quanta.quantity(y, "m"), quanta.quantity(z, "m"))
        )
        ra, dec = direction_rad
        measures.doframe(
            measures.direction(direction_frame, quanta.quantity(ra, "rad"), quanta.quantity(dec, "rad"))
        )
        start, stop = float(times_s.min()), float(times_s.max())
        samples = np.linspace(start, stop, max(2, 1 + math.ceil((stop - start) / SAMPLE_INTERVAL_S)))
        factors = []
        for moment in samples:
            measures.doframe(measures.epoch("UTC", quanta.quantity(float(moment), "s")))
            converted = measures.measure(measures.frequency(frame, quanta.quantity(_REFERENCE_HZ, "Hz")), "LSRK")
            factors.append(float(converted["m0"]["value"]) / _REFERENCE_HZ)
    finally:
        measures.done()
        quanta.done()
    return np.interp(times_s, samples, np.asarray(factors))
