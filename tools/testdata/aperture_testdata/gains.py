"""Injected antenna gains: drawn from a scenario's statistics and a seed, kept whole in the truth file.

The model (per antenna a, polarisation p, time t since the observation's start, frequency offset dnu
from the spw's centre):

    g = A_ap (1 + sum_k a_ak sin(2 pi t / P_k + alpha_ak))
          * exp(i [phi_ap + sum_k b_ak sin(2 pi t / P_k + beta_ak) + 2 pi tau_ap dnu])

The drift terms (a, b) are shared by both polarisations, as the atmosphere is. Everything needed to
recompute g is in `InjectedGains`, and the corruption uses `InjectedGains.complex_gains`, so the truth
file and the data cannot disagree.
"""

import math

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from aperture_testdata.scenarios import BrokenAntennaPlan, GainPlan


class AntennaGain(BaseModel):
    model_config = ConfigDict(extra="forbid")

    antenna: str
    amplitude: list[float] = Field(description="A, per polarisation")
    phase_offset_deg: list[float] = Field(description="phi, per polarisation")
    delay_ns: list[float] = Field(description="tau, per polarisation")
    drift_amplitude: list[float] = Field(description="a_k, per drift period")
    drift_amplitude_phase_rad: list[float] = Field(description="alpha_k")
    drift_phase_deg: list[float] = Field(description="b_k, per drift period")
    drift_phase_phase_rad: list[float] = Field(description="beta_k")


class InjectedGains(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = (
        "g = A (1 + sum_k a_k sin(2 pi t/P_k + alpha_k)) "
        "exp(i [phi + sum_k b_k sin(2 pi t/P_k + beta_k) + 2 pi tau (nu - nu_spw_centre)]); "
        "t in seconds since time_origin_mjd_s; V_obs(a1,a2) = g(a1) conj(g(a2)) V_true"
    )
    time_origin_mjd_s: float
    drift_periods_s: list[float]
    antennas: list[AntennaGain] = Field(description="in ANTENNA table order")

    def complex_gains(self, times_s: np.ndarray, frequency_offsets_hz: np.ndarray) -> np.ndarray:
        """g with shape (antenna, polarisation, time, channel); times are MJD seconds."""
        t = (np.asarray(times_s, dtype=float) - self.time_origin_mjd_s)[:, None]  # (time, 1)
        periods = np.asarray(self.drift_periods_s)[None, :]  # (1, k)
        dnu = np.asarray(frequency_offsets_hz, dtype=float)
        result = []
        for antenna in self.antennas:
            amplitude_drift = 1.0 + np.sum(
                np.asarray(antenna.drift_amplitude)
                * np.sin(2 * np.pi * t / periods + np.asarray(antenna.drift_amplitude_phase_rad)),
                axis=1,
            )
            phase_drift = np.deg2rad(
                np.sum(
                    np.asarray(antenna.drift_phase_deg)
                    * np.sin(2 * np.pi * t / periods + np.asarray(antenna.drift_phase_phase_rad)),
                    axis=1,
                )
            )
            per_polarisation = []
            for amp, offset_deg, delay_ns in zip(
                antenna.amplitude, antenna.phase_offset_deg, antenna.delay_ns, strict=True
            ):
                phase = (np.deg2rad(offset_deg) + phase_drift)[:, None] + 2 * np.pi * delay_ns * 1e-9 * dnu[
                    None, :
                ]
                per_polarisation.append((amp * amplitude_drift)[:, None] * np.exp(1j * phase))
            result.append(per_polarisation)
        return np.asarray(result)


def draw_gains(
    plan: GainPlan,
    antenna_names: list[str],
    n_polarisations: int,
    time_origin_mjd_s: float,
    rng: np.random.Generator,
) -> InjectedGains:
    """Draw one realisation. Each drift term gets an equal share of the rms (a sinusoid of amplitude b
    has rms b/sqrt(2)), with a random phase, so the long-run rms is the plan's."""
    n_terms = len(plan.drift_periods_s)
    term_scale = math.sqrt(2.0 / n_terms) if n_terms else 0.0
    antennas = []
    for name in antenna_names:
        amplitude = np.clip(1.0 + plan.amplitude_rms * rng.standard_normal(n_polarisations), 0.5, 1.5)
        antennas.append(
            AntennaGain(
                antenna=name,
                amplitude=[round(float(v), 6) for v in amplitude],
                phase_offset_deg=[
                    round(float(v), 4)
                    for v in rng.uniform(
                        -plan.phase_offset_max_deg, plan.phase_offset_max_deg, n_polarisations
                    )
                ],
                delay_ns=[
                    round(float(v), 6) for v in plan.delay_rms_ns * rng.standard_normal(n_polarisations)
                ],
                drift_amplitude=[round(plan.drift_amplitude_rms * term_scale, 6)] * n_terms,
                drift_amplitude_phase_rad=[round(float(v), 6) for v in rng.uniform(0, 2 * np.pi, n_terms)],
                drift_phase_deg=[round(plan.drift_phase_rms_deg * term_scale, 4)] * n_terms,
                drift_phase_phase_rad=[round(float(v), 6) for v in rng.uniform(0, 2 * np.pi, n_terms)],
            )
        )
    return InjectedGains(
        time_origin_mjd_s=time_origin_mjd_s, drift_periods_s=list(plan.drift_periods_s), antennas=antennas
    )


class BrokenAntennaGains(BaseModel):
    """The extra gain factor of a broken antenna (scenarios.BrokenAntennaPlan), per integration and
    polarisation: V_obs(a1, a2) is multiplied by f(a1) conj(f(a2)), where f is 1 for every other antenna.
    Shared by all spws (one receiver), applied whether or not the MOUS is otherwise calibrated."""

    model_config = ConfigDict(extra="forbid")

    antenna: str
    antenna_index: int = Field(description="row of the ANTENNA table")
    times_mjd_s: list[float] = Field(description="every integration's TIME in the MS")
    amplitude: list[list[float]] = Field(description="per polarisation, per time")
    phase_deg: list[list[float]] = Field(description="per polarisation, per time")

    def factors(self, times_s: np.ndarray) -> np.ndarray:
        """f with shape (polarisation, time) at the given MS times, which must be integrations of the MS."""
        known = np.asarray(self.times_mjd_s)
        times = np.asarray(times_s, dtype=float)
        index = np.clip(np.searchsorted(known, times), 0, known.size - 1)
        if not np.allclose(known[index], times, rtol=0, atol=1e-3):
            raise ValueError("times that are not integrations of the MS the broken antenna was drawn for")
        amplitude, phase = np.asarray(self.amplitude), np.deg2rad(np.asarray(self.phase_deg))
        return (amplitude * np.exp(1j * phase))[:, index]


def draw_broken_antenna(
    plan: BrokenAntennaPlan,
    antenna_names: list[str],
    times_mjd_s: np.ndarray,
    n_polarisations: int,
    rng: np.random.Generator,
) -> BrokenAntennaGains:
    """One realisation of the broken antenna's factors at the MS's integration times."""
    times = np.unique(np.asarray(times_mjd_s, dtype=float))
    shape = (n_polarisations, times.size)
    amplitude = rng.uniform(plan.amplitude_low, plan.amplitude_high, shape)
    phase = rng.uniform(-180.0, 180.0, shape) if plan.random_phase else np.zeros(shape)
    return BrokenAntennaGains(
        antenna=antenna_names[plan.antenna_index],
        antenna_index=plan.antenna_index,
        times_mjd_s=times.tolist(),
        amplitude=np.round(amplitude, 6).tolist(),
        phase_deg=np.round(phase, 4).tolist(),
    )
