"""Turn the predicted sky in DATA into raw data: antenna gains, then thermal noise, and matching weights.

This is done here rather than with `sm.setgain`/`sm.setnoise`: in CASA 6.7 `sm.setgain(mode='fbm')` left
most antennas without any error and gave a few others phases that jump by up to 180 degrees between
integrations (seen on this data), which neither resembles an atmosphere nor calibrates. Doing it in
numpy also makes the injected values exact and recorded (`InjectedGains`), and the noise reproducible
from the seed alone.
"""

from pathlib import Path

import numpy as np

from aperture_testdata.casa_runtime import casatools_module
from aperture_testdata.gains import BrokenAntennaGains, InjectedGains


def corrupt(
    ms: Path,
    gains: InjectedGains | None,
    sigma_jy: float,
    rng: np.random.Generator,
    broken: BrokenAntennaGains | None = None,
) -> None:
    """DATA := g1 conj(g2) DATA + noise; SIGMA := sigma; WEIGHT := 1/sigma^2 (CASA's convention).

    With `gains=None` only noise is added: the data are then what a calibrated MS holds. A broken
    antenna's factors multiply its baselines in either case (a calibrated delivery still has it).
    Rows are visited in table order per data description, so the noise depends on the seed only.
    """
    tb = casatools_module().table()
    spw_of_ddid = _spw_of_data_description(ms)
    channel_offsets = _channel_offsets_from_centre(ms)
    tb.open(str(ms), nomodify=False)
    try:
        for ddid, spw_id in enumerate(spw_of_ddid):
            selection = tb.query(f"DATA_DESC_ID=={ddid}")
            try:
                if selection.nrows() == 0:
                    continue
                data = selection.getcol("DATA")  # (polarisation, channel, row)
                if gains is not None:
                    data = data * _baseline_gains(selection, gains, channel_offsets[spw_id], data.shape[0])
                if broken is not None:
                    data = data * _broken_antenna_factors(selection, broken, data.shape[0])
                noise = rng.standard_normal((2, *data.shape))
                data = data + sigma_jy * (noise[0] + 1j * noise[1])
                selection.putcol("DATA", data.astype(np.complex64))
            finally:
                selection.close()
        n_pol = tb.getcell("SIGMA", 0).shape[0]
        tb.putcol("SIGMA", np.full((n_pol, tb.nrows()), sigma_jy, dtype=float))
        tb.putcol("WEIGHT", np.full((n_pol, tb.nrows()), 1.0 / sigma_jy**2, dtype=float))
    finally:
        tb.close()


def _baseline_gains(
    selection, gains: InjectedGains, channel_offsets_hz: np.ndarray, n_pol: int
) -> np.ndarray:
    """g(antenna1) conj(g(antenna2)) per row, shaped like DATA."""
    times = selection.getcol("TIME")
    unique_times, time_index = np.unique(times, return_inverse=True)
    per_antenna = gains.complex_gains(unique_times, channel_offsets_hz)  # (antenna, pol, time, channel)
    if per_antenna.shape[1] != n_pol:
        raise ValueError(f"gains have {per_antenna.shape[1]} polarisations, the data {n_pol}")
    antenna1, antenna2 = selection.getcol("ANTENNA1"), selection.getcol("ANTENNA2")
    g1 = per_antenna[antenna1, :, time_index, :]  # (row, pol, channel)
    g2 = per_antenna[antenna2, :, time_index, :]
    return np.transpose(g1 * np.conj(g2), (1, 2, 0))


def _broken_antenna_factors(selection, broken: BrokenAntennaGains, n_pol: int) -> np.ndarray:
    """f(antenna1) conj(f(antenna2)) per row, shaped (polarisation, 1, row): 1 off the broken antenna."""
    factors = broken.factors(selection.getcol("TIME"))  # (polarisation, row)
    if factors.shape[0] != n_pol:
        raise ValueError(f"the broken antenna has {factors.shape[0]} polarisations, the data {n_pol}")
    antenna1, antenna2 = selection.getcol("ANTENNA1"), selection.getcol("ANTENNA2")
    ones = np.ones_like(factors)
    f1 = np.where(antenna1 == broken.antenna_index, factors, ones)
    f2 = np.where(antenna2 == broken.antenna_index, factors, ones)
    return (f1 * np.conj(f2))[:, None, :]


def integration_times(ms: Path) -> np.ndarray:
    """Every distinct TIME of the main table (the integrations), sorted."""
    tb = casatools_module().table()
    tb.open(str(ms))
    try:
        return np.unique(tb.getcol("TIME"))
    finally:
        tb.close()


def _spw_of_data_description(ms: Path) -> list[int]:
    tb = casatools_module().table()
    tb.open(f"{ms}/DATA_DESCRIPTION")
    try:
        return [int(v) for v in tb.getcol("SPECTRAL_WINDOW_ID")]
    finally:
        tb.close()


def _channel_offsets_from_centre(ms: Path) -> list[np.ndarray]:
    """Per spw, each channel's frequency minus the spw's centre: what a delay turns into a phase slope."""
    tb = casatools_module().table()
    tb.open(f"{ms}/SPECTRAL_WINDOW")
    try:
        result = []
        for row in range(tb.nrows()):
            frequencies = tb.getcell("CHAN_FREQ", row)
            result.append(frequencies - (frequencies[0] + frequencies[-1]) / 2)
        return result
    finally:
        tb.close()
