"""Sky models: component spectra, the primary beam, and CASA component lists for the simulator.

Every component gets a tabular spectrum sampled at the MS's own channel frequencies, because two
shortcuts of the simulator would otherwise make the data disagree with the truth:
- `sm.predict` evaluates a tabular spectrum at the channel frequencies as they are (topocentric),
  ignoring the frame the spectrum is given in; the spectrum is therefore computed in LSRK and written
  against the topocentric frequencies of the same channels.
- the simulator applies no primary beam unless `sm.setvp` is used, and with a component list that
  collapses spectral lines; the Gaussian primary beam is therefore folded into the spectrum here.
"""

import math
from pathlib import Path

import numpy as np

from aperture_testdata.casa_runtime import casatools_module
from aperture_testdata.scenarios import FieldPlan, SkyComponent, SpwPlan

SPEED_OF_LIGHT_M_S = 299_792_458.0
ARCSEC = math.pi / (180.0 * 3600.0)
# ALMA Technical Handbook: the 12 m antennas' primary beam FWHM is 1.13 lambda / D.
PRIMARY_BEAM_FWHM_FACTOR = 1.13
PRIMARY_BEAM_DESCRIPTION = (
    "Gaussian, FWHM = 1.13 lambda / 12 m, applied to each component at its centre, per channel"
)


def primary_beam_gain(
    offset_arcsec: float, frequency_hz: np.ndarray | float, dish_m: float = 12.0
) -> np.ndarray:
    fwhm_rad = PRIMARY_BEAM_FWHM_FACTOR * SPEED_OF_LIGHT_M_S / np.asarray(frequency_hz, dtype=float) / dish_m
    return np.exp(-4.0 * math.log(2.0) * (offset_arcsec * ARCSEC / fwhm_rad) ** 2)


def line_profile_jy(component: SkyComponent, lsrk_hz: np.ndarray) -> np.ndarray:
    """The sum of the component's lines (no continuum), Gaussian in frequency."""
    total = np.zeros_like(lsrk_hz, dtype=float)
    for line in component.lines:
        sigma = line.fwhm_hz / (2.0 * math.sqrt(2.0 * math.log(2.0)))
        total += line.peak_jy * np.exp(-0.5 * ((lsrk_hz - line.centre_frequency_hz) / sigma) ** 2)
    return total


def intrinsic_spectrum_jy(component: SkyComponent, lsrk_hz: np.ndarray) -> np.ndarray:
    continuum = component.flux_jy * (lsrk_hz / component.reference_frequency_hz) ** component.spectral_index
    return continuum + line_profile_jy(component, lsrk_hz)


def offset_arcsec(component: SkyComponent) -> float:
    return math.hypot(component.offset_east_arcsec, component.offset_north_arcsec)


def direction_at_offset(
    ra_rad: float, dec_rad: float, east_arcsec: float, north_arcsec: float
) -> tuple[float, float]:
    """The J2000 direction whose SIN-projected offset from (ra, dec) is (east, north): the inverse of
    the projection images use, so a component lands on the pixel its offset names."""
    east, north = east_arcsec * ARCSEC, north_arcsec * ARCSEC
    depth = math.sqrt(1.0 - east * east - north * north)
    dec = math.asin(north * math.cos(dec_rad) + depth * math.sin(dec_rad))
    ra = ra_rad + math.atan2(east, depth * math.cos(dec_rad) - north * math.sin(dec_rad))
    return ra % (2 * math.pi), dec


def field_direction_rad(field: FieldPlan) -> tuple[float, float]:
    qa = casatools_module().quanta()
    return float(qa.convert(qa.quantity(field.ra), "rad")["value"]), float(
        qa.convert(qa.quantity(field.dec), "rad")["value"]
    )


def sexagesimal(ra_rad: float, dec_rad: float) -> tuple[str, str]:
    """J2000 angles as CASA reads them and people write them: '15h17m41.813000s', '-24d22m19.48000s'."""
    ra_us = round(math.degrees(ra_rad % (2 * math.pi)) / 15 * 3600e6) % round(24 * 3600e6)
    hours, ra_us = divmod(ra_us, round(3600e6))
    minutes, ra_us = divmod(ra_us, round(60e6))
    dec_10us = round(abs(math.degrees(dec_rad)) * 3600e5)
    degrees, dec_10us = divmod(dec_10us, round(3600e5))
    arcmin, dec_10us = divmod(dec_10us, round(60e5))
    sign = "-" if dec_rad < 0 else "+"
    return (
        f"{hours:02d}h{minutes:02d}m{ra_us / 1e6:09.6f}s",
        f"{sign}{degrees:02d}d{arcmin:02d}m{dec_10us / 1e5:08.5f}s",
    )


def sampling_frequencies_hz(spws: tuple[SpwPlan, ...]) -> np.ndarray:
    """Every channel centre of every spw, plus one guard point half a band beyond each edge so that
    nothing is extrapolated; a tabular spectrum is exact at its samples."""
    samples: list[float] = []
    for spw in spws:
        channels = spw.channel_frequencies_hz()
        half_band = spw.nchan * spw.channel_width_hz / 2
        samples += [channels[0] - half_band, *channels, channels[-1] + half_band]
    return np.unique(np.asarray(samples))


def write_component_list(
    field: FieldPlan, spws: tuple[SpwPlan, ...], lsrk_over_topo: float, path: Path
) -> None:
    """A component list of the field's sources as the array sees them (primary beam applied)."""
    tools = casatools_module()
    cl = tools.componentlist()
    ra0, dec0 = field_direction_rad(field)
    topo = sampling_frequencies_hz(spws)
    lsrk = topo * lsrk_over_topo
    try:
        for index, component in enumerate(field.components):
            ra, dec = direction_at_offset(
                ra0, dec0, component.offset_east_arcsec, component.offset_north_arcsec
            )
            shape: dict[str, object] = {"shape": component.shape}
            if component.shape == "gaussian":
                shape |= {
                    "majoraxis": f"{component.major_fwhm_arcsec}arcsec",
                    "minoraxis": f"{component.minor_fwhm_arcsec}arcsec",
                    "positionangle": f"{component.position_angle_deg}deg",
                }
            flux = intrinsic_spectrum_jy(component, lsrk) * primary_beam_gain(offset_arcsec(component), lsrk)
            reference = np.array([component.reference_frequency_hz])
            reference_flux = float(
                (
                    intrinsic_spectrum_jy(component, reference)
                    * primary_beam_gain(offset_arcsec(component), reference)
                )[0]
            )
            cl.addcomponent(
                flux=reference_flux,
                fluxunit="Jy",
                polarization="Stokes",
                dir=f"J2000 {ra}rad {dec}rad",
                freq=f"{component.reference_frequency_hz}Hz",
                label=component.name,
                **shape,
            )
            # The tabular values are absolute (they replace `flux`). The frame is declared LSRK because
            # the tool insists on a convertible frame; predict ignores it (see the module's docstring).
            cl.setspectrum(
                which=index,
                type="tabular",
                tabularfreqs=topo.tolist(),
                tabularflux=flux.tolist(),
                tabularframe="LSRK",
            )
        cl.rename(str(path))
    finally:
        cl.done()
