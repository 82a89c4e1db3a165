"""Cubes on a spectral axis the astronomer chose (ImagingJob.spectral_axis, ALMA SRDP's user-defined
cubes): the check of a request against its spw's data (what the API refuses with a 422, and what the
worker refuses as bad input), and the request as tclean's spectral parameters.

The checks themselves are aperture_contracts.spectral's (pure, so the coordinator's API uses them too
without the imaging service); here they are worded with the field they are about, as a person reads them.
"""

from typing import Any

from aperture_contracts.imaging import SpectralAxis, SpectralAxisMode, VelocityConvention
from aperture_contracts.metadata import SpectralWindow
from aperture_contracts.spectral import spectral_axis_problems


def check_spectral_axis(axis: SpectralAxis, spw: SpectralWindow) -> list[str]:
    """What makes `axis` impossible to image from `spw`, one message per problem, each starting with the
    field it is about ("spectral_axis.width: ..."); empty when the cube can be made."""
    return [f"spectral_axis.{field}: {message}" for field, message in spectral_axis_problems(axis, spw)]


def tclean_spectral_parameters(axis: SpectralAxis) -> dict[str, Any]:
    """tclean's nchan, start, width (CASA quantities), restfreq, outframe and veltype for `axis`.

    A positive velocity width makes channels that go up in velocity, i.e. down in frequency, as the
    request means; repr() keeps every digit of the request. Without a rest frequency (frequency mode)
    tclean takes the spw's from the MS's SOURCE table, which only labels the cube's velocities."""
    unit = "Hz" if axis.mode == SpectralAxisMode.FREQUENCY else "km/s"
    return {
        "nchan": axis.nchan,
        "start": f"{axis.start!r}{unit}",
        "width": f"{axis.width!r}{unit}",
        "restfreq": f"{axis.rest_frequency_hz!r}Hz" if axis.rest_frequency_hz is not None else "",
        "outframe": axis.frame.value,
        "veltype": axis.velocity_convention.value,
    }


def in_equal_wavelength_steps(axis: SpectralAxis) -> bool:
    """Whether the channels are equally spaced in wavelength rather than in frequency: equal steps of
    optical velocity (c dlambda / lambda0). Their FITS axis is written as such (fits_export)."""
    return axis.mode == SpectralAxisMode.VELOCITY and axis.velocity_convention == VelocityConvention.OPTICAL
