"""Whether a user-defined cube's spectral axis (imaging.SpectralAxis) fits the data of a spw, and the
conversions between the request's units and frequency. Pure, so that the API can refuse a request that
cannot be made (422) before any job runs, and the imaging worker can check a job the same way.

The request is in its own frame (LSRK by default), the spw in the frame its channels were recorded in
(ALMA: TOPO). The shift between the two depends on the direction and the date, which a request check does
not compute; instead a request counts as outside the spw only when it is outside by more than the two
frames can ever differ (FRAME_SPEED_BOUND_KMS). For LSRK against TOPO that is 50.8 km/s (the Earth's orbit
and rotation, 31 km/s, plus the Sun's 20 km/s against the LSR): several channels of a fine spw, so a
request that passes may still have a few empty channels at an edge, but one that fails is certainly wrong.
(The simulated MOUS of the tests has LSRK - TOPO = 5.5 km/s, two of its 2.5 km/s channels.)
"""

import math

from aperture_contracts.imaging import (
    SPEED_OF_LIGHT_KMS,
    SpectralAxis,
    SpectralAxisMode,
    SpectralFrame,
    VelocityConvention,
)
from aperture_contracts.metadata import SpectralWindow

# The largest speed (km/s) of each frame relative to an observatory on the Earth, from the frames' CASA
# definitions: the Earth's rotation (0.47) and orbit (30.3 at perihelion) for BARY; the Sun's motion for
# LSRK (20) and LSRD (16.6); the Galaxy's rotation (220) on top of LSRD for GALACTO; the Local Group's
# (308) and the CMB dipole's (369.5) motion relative to the barycentre.
FRAME_SPEED_BOUND_KMS: dict[SpectralFrame, float] = {
    SpectralFrame.TOPO: 0.0,
    SpectralFrame.GEO: 0.5,
    SpectralFrame.BARY: 30.8,
    SpectralFrame.LSRK: 50.8,
    SpectralFrame.LSRD: 47.4,
    SpectralFrame.GALACTO: 267.4,
    SpectralFrame.LGROUP: 338.8,
    SpectralFrame.CMB: 400.3,
}
# Comparisons of frequencies computed along different paths agree to this fraction (floating point, and
# a width given as a rounded number that the messages suggest).
RELATIVE_SLACK = 1e-6
# Significant digits of the widths the messages suggest (rounded up, so that asking for one passes).
SUGGESTED_DIGITS = 4


def frequency_from_velocity_hz(velocity_kms: float, rest_frequency_hz: float, convention: VelocityConvention) -> float:
    if convention == VelocityConvention.RADIO:
        return rest_frequency_hz * (1 - velocity_kms / SPEED_OF_LIGHT_KMS)
    return rest_frequency_hz / (1 + velocity_kms / SPEED_OF_LIGHT_KMS)


def velocity_from_frequency_kms(frequency_hz: float, rest_frequency_hz: float, convention: VelocityConvention) -> float:
    if convention == VelocityConvention.RADIO:
        return SPEED_OF_LIGHT_KMS * (1 - frequency_hz / rest_frequency_hz)
    return SPEED_OF_LIGHT_KMS * (rest_frequency_hz / frequency_hz - 1)


def _to_hz(axis: SpectralAxis, value: float) -> float:
    """A position on the axis (Hz or km/s, as its mode says) as a frequency."""
    if axis.mode == SpectralAxisMode.FREQUENCY:
        return value
    assert axis.rest_frequency_hz is not None  # the model requires it in velocity mode
    return frequency_from_velocity_hz(value, axis.rest_frequency_hz, axis.velocity_convention)


def channel_centres_hz(axis: SpectralAxis) -> list[float]:
    """The requested channels' centre frequencies, in channel order (in axis.frame)."""
    return [_to_hz(axis, axis.start + index * axis.width) for index in range(axis.nchan)]


def channel_widths_hz(axis: SpectralAxis) -> list[float]:
    """Each channel's width in frequency (positive); equal but for optical velocities, where a channel of
    fixed km/s is narrower in Hz the higher its velocity."""
    edges = [_to_hz(axis, axis.start + (index - 0.5) * axis.width) for index in range(axis.nchan + 1)]
    return [abs(upper - lower) for lower, upper in zip(edges, edges[1:], strict=False)]


def narrowest_channel_hz(axis: SpectralAxis) -> float:
    """The frequency width of the narrowest requested channel (the first or the last)."""
    widths = channel_widths_hz(axis)
    return min(widths[0], widths[-1])


def frequency_span_hz(axis: SpectralAxis, nchan: int | None = None) -> tuple[float, float]:
    """Lowest and highest frequency the first `nchan` (default: all) requested channels reach, at their edges."""
    count = axis.nchan if nchan is None else nchan
    ends = (_to_hz(axis, axis.start - axis.width / 2), _to_hz(axis, axis.start + (count - 0.5) * axis.width))
    return min(ends), max(ends)


def frame_tolerance_kms(requested: SpectralFrame, recorded: str) -> float:
    """How far apart the request's frame and the spw's recorded frame ('' or unknown: TOPO) can be."""
    known = recorded.upper() in SpectralFrame.__members__
    data_frame = SpectralFrame(recorded.upper()) if known else SpectralFrame.TOPO
    if data_frame == requested:
        return 0.0
    return FRAME_SPEED_BOUND_KMS[requested] + FRAME_SPEED_BOUND_KMS[data_frame]


def spectral_axis_problems(axis: SpectralAxis, spw: SpectralWindow) -> list[tuple[str, str]]:
    """What makes `axis` impossible to image from `spw`, as (field of SpectralAxis, message) pairs; empty
    when it can be made. Checked: channels finer than the data's (width), more bandwidth than the spw has
    (nchan), and channels outside the spw by more than the frames can differ (start)."""
    problems: list[tuple[str, str]] = []
    native_hz = abs(spw.channel_width_hz)
    if narrowest_channel_hz(axis) < native_hz * (1 - RELATIVE_SLACK):
        problems.append(("width", _too_fine(axis, spw, native_hz)))
    tolerance_kms = frame_tolerance_kms(axis.frame, spw.frame)
    frame_slack = tolerance_kms / SPEED_OF_LIGHT_KMS + RELATIVE_SLACK
    low, high = frequency_span_hz(axis)
    if high - low > spw.bandwidth_hz * (1 + frame_slack):
        problems.append(("nchan", _too_wide(axis, spw, high - low, frame_slack)))
    else:
        below = spw.min_frequency_hz * (1 - frame_slack) - low
        above = high - spw.max_frequency_hz * (1 + frame_slack)
        if below > 0 or above > 0:
            problems.append(("start", _outside(axis, spw, tolerance_kms)))
    return problems


def _too_fine(axis: SpectralAxis, spw: SpectralWindow, native_hz: float) -> str:
    if axis.mode == SpectralAxisMode.FREQUENCY:
        return (
            f"{_hz(axis.width)} is finer than the data's channels ({_hz(native_hz)} in spw {spw.spw_id}); ask for "
            f"{native_hz:.10g} Hz or more"
        )
    rest, convention = axis.rest_frequency_hz, axis.velocity_convention
    assert rest is not None
    # The velocity width of one native channel where the request's channels are narrowest in frequency:
    # anywhere for radio velocities (linear in frequency); at the highest velocity for optical ones.
    at = _to_hz(axis, axis.start + (axis.nchan - 0.5) * axis.width)
    native_kms = abs(
        velocity_from_frequency_kms(at - native_hz / 2, rest, convention)
        - velocity_from_frequency_kms(at + native_hz / 2, rest, convention)
    )
    where = (
        f"at the rest frequency {_hz(rest)}" if convention == VelocityConvention.RADIO
        else f"at {_hz(at)}, optical velocities from the rest frequency {_hz(rest)}"
    )
    return (
        f"{axis.width:g} km/s is finer than the data's channels ({native_kms:.4g} km/s: {_hz(native_hz)} {where}); "
        f"ask for {_round_up(native_kms, SUGGESTED_DIGITS):g} km/s or more"
    )


def _too_wide(axis: SpectralAxis, spw: SpectralWindow, span_hz: float, frame_slack: float) -> str:
    fitting = _most_channels_within(axis, spw.bandwidth_hz * (1 + frame_slack))
    unit = "Hz" if axis.mode == SpectralAxisMode.FREQUENCY else "km/s"
    return (
        f"{axis.nchan} channels of {axis.width:g} {unit} span {_hz(span_hz)}, more than the whole of spw "
        f"{spw.spw_id} ({_hz(spw.bandwidth_hz)}); "
        + (f"at most {fitting} such channels fit" if fitting else "not one such channel fits")
    )


def _most_channels_within(axis: SpectralAxis, bandwidth_hz: float) -> int:
    """The most channels of the axis, from its start, that span no more than `bandwidth_hz`."""
    low, high = 0, axis.nchan  # invariant: `low` channels fit, `high` do not
    while high - low > 1:
        middle = (low + high) // 2
        lowest, highest = frequency_span_hz(axis, middle)
        if highest - lowest <= bandwidth_hz:
            low = middle
        else:
            high = middle
    return low


def _outside(axis: SpectralAxis, spw: SpectralWindow, tolerance_kms: float) -> str:
    low, high = frequency_span_hz(axis)
    recorded = spw.frame or "TOPO"
    shift = (
        f"more than {axis.frame.value} and {recorded} can differ ({tolerance_kms:g} km/s)" if tolerance_kms
        else f"both in {recorded}"
    )
    reach = _hz(max(spw.min_frequency_hz - low, high - spw.max_frequency_hz), digits=4)
    last = axis.start + (axis.nchan - 1) * axis.width
    if axis.mode == SpectralAxisMode.FREQUENCY:
        asked = f"{_hz(axis.start)} to {_hz(last)}"
        first, final = spw.min_frequency_hz + axis.width / 2, spw.max_frequency_hz - (axis.nchan - 0.5) * axis.width
        choice = f"{_hz(first)} to {_hz(final)}"
    else:
        assert axis.rest_frequency_hz is not None
        convention = axis.velocity_convention
        asked = (
            f"{axis.start:g} to {last:g} km/s ({convention.value}, rest frequency {_hz(axis.rest_frequency_hz)}; "
            f"{_hz(low)} to {_hz(high)})"
        )
        # Velocities fall as frequency rises: the spw's top is its lowest velocity.
        slowest = velocity_from_frequency_kms(spw.max_frequency_hz, axis.rest_frequency_hz, convention)
        fastest = velocity_from_frequency_kms(spw.min_frequency_hz, axis.rest_frequency_hz, convention)
        choice = f"{slowest + axis.width / 2:.6g} to {fastest - (axis.nchan - 0.5) * axis.width:.6g} km/s"
    return (
        f"the requested channels, {asked} in {axis.frame.value}, reach {reach} beyond spw {spw.spw_id} "
        f"({_hz(spw.min_frequency_hz)} to {_hz(spw.max_frequency_hz)} in {recorded}): {shift}, so channels "
        f"there would hold no data. With this width and nchan, start can be {choice} (in {recorded}"
        + (f", +-{tolerance_kms:g} km/s in {axis.frame.value})" if tolerance_kms else ")")
    )


def _hz(value: float, digits: int = 7) -> str:
    """A frequency with a unit a person reads (230.538 GHz, 1.953125 MHz)."""
    for unit, scale in (("GHz", 1e9), ("MHz", 1e6), ("kHz", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.{digits}g} {unit}"
    return f"{value:.{digits}g} Hz"


def _round_up(value: float, digits: int) -> float:
    exponent = math.floor(math.log10(abs(value))) - digits + 1
    # round() only removes binary noise (2.5400000000000005): the ceiling already chose the digits.
    return round(math.ceil(value / 10**exponent - 1e-9) * 10**exponent, max(0, -exponent))
