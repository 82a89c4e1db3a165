"""Which channels of a spectrum are continuum (line-free): findcont's decision, on a plain numpy array.

The spectrum is the mean intensity per channel inside the source mask (see joint_mask.py); channels
without data are NaN. Everything here is numpy only, so it is tested on synthetic spectra in
milliseconds.

The method, in the spirit of ALMA's findContinuum (written from its published description):

1. Baseline and noise from the quietest channels. Emission lines only ever raise a channel, so the
   lowest ~19 % of the channels are the ones least touched by lines, even in a line forest where most
   channels carry some line. Their median and MAD, corrected for taking the low tail of a normal
   distribution, give the continuum level and the noise. Two more starts cover what that one gets
   wrong: the median of all channels (absorption-dominated spectra) and a robust straight line (a bright
   source's continuum slope across a wide spw). The refined solutions compete: a continuum must look
   like noise (its scatter bounded by what the channel-to-channel differences allow), and of two
   believable ones the quieter wins, since line signal left in the continuum can only add scatter.
   When the noise is known from outside the spectrum (findcont measures it off the source in the
   dirty cube, see joint_mask.spectrum_noise), it replaces the differences as the yardstick and holds
   the noise used for detection near itself, and a fourth start takes the level where most channels
   crowd within that noise (the continuum, even when a line covers most of the spw).
2. Lines are found at several spectral scales (boxcar widths 1, 3, 5, 9, 17, ...): a narrow line stands
   out channel by channel, a broad faint one only once averaged. Each scale's threshold follows from
   its number of effectively independent trials (measured for boxcar-smoothed noise), so that pure noise
   yields a false line about 5 % of the time over all scales together, whatever the number of channels;
   the threshold is raised a little for the uncertainty of a noise estimate made from few channels.
3. A line bright enough to have its width at half maximum measured is taken out to where a Gaussian
   of that width falls to 1 % of its peak (plus the measurement's error), and beyond only where its
   excess stays significant: far down a bright line's wings the 1 % level is deep in the noise, and
   growth through the noise there would walk on without bound. A fainter detection is grown through
   its wings down to one sigma, then padded by a margin that reaches where a Gaussian line of its
   strength would fall to 1 % of its peak (more for faint lines, which are followed less far down
   their profile): the costly error is line emission left in the continuum (it ends up in the
   continuum image and is subtracted from the cube), not a few continuum channels given up.
4. Baseline (a constant, or a slope when the data demand one) and noise are refitted on the channels
   left, and steps 2-3 repeat until the selection stops changing.
5. Continuum islands too short to be trusted (a noise dip between two lines) become line.

When nothing is left yet many separate lines were found, the spectrum is a forest whose gaps are
narrower than the margins: its quietest channels are kept, as for any spectrum with structure
everywhere, and the case says line forest.

The outcome is classified explicitly (ContinuumCase) rather than left to thresholds' accidents: all
continuum, noisy (nothing significant at all), lines and continuum, line forest (little continuum
left), no continuum. Broad lines and lines at the spw edges are named in the notes.
"""

import math
from dataclasses import dataclass, field
from functools import lru_cache
from statistics import NormalDist

import numpy as np
from aperture_contracts.continuum import ContinuumCase

# MAD of a normal distribution is this fraction of its standard deviation.
_MAD_TO_SIGMA = 1.0 / NormalDist().inv_cdf(0.75)
_NORMAL = NormalDist()
# |x| of N(0, 1) falls below _DIFFERENCE_QUANTILE_UNIT with probability _DIFFERENCE_QUANTILE.
_DIFFERENCE_QUANTILE = 0.3
_DIFFERENCE_QUANTILE_UNIT = _NORMAL.inv_cdf(0.5 + _DIFFERENCE_QUANTILE / 2)
# Noise can be at most this many times the differences' estimate: Hanning smoothing, the strongest
# correlation a spectrometer gives, makes the ratio 1.73; the rest is room for estimation error, which
# grows for few channels (see noise_ceiling).
_NOISE_OVER_DIFFERENCES = 2.2
# Largest believable noise correlation between channels 1 and 2 apart (Hanning: 0.67 and 0.17).
_CORRELATION_CAPS = (0.75, 0.3)
# looks_like_noise: its tests need this many channels; the outlier level (sigma), the largest excess of
# outliers on one side; the lags of the long-range correlation and its limit.
_NOISE_TEST_CHANNELS = 16
_OUTLIER_SIGMA = 4.0
_MAX_OUTLIER_EXCESS = 8
_LONG_RANGE_LAGS = (3, 4, 5, 6)
_LONG_RANGE_CORRELATION_LIMIT = 0.55


@dataclass(frozen=True)
class FinderParameters:
    """The knobs of the finder; the defaults are what findcont uses."""

    quiet_fraction: float = 0.19  # fraction of lowest channels that seeds baseline and noise
    false_line_probability: float = 0.05  # chance that pure noise yields a line, over all scales
    minimum_threshold_sigma: float = 3.0  # never detect below this, however few the trials
    grow_threshold_sigma: float = 1.0  # a line extends while its signal stays above this
    stop_sigma: float = 1.5  # where a line's growth stopped, it may still be this strong (see wing_margin)
    wing_fraction: float = 0.01  # lines are padded out to where a Gaussian line would fall to this of its peak
    minimum_margin_fraction: float = 0.1  # ...and by at least this fraction of their width on each side
    minimum_margin_channels: int = 1
    profile_peak_sigma: float = 12.0  # a line this strong (at 3-channel smoothing) has its half widths measured...
    profile_growth_sigma: float = 2.0  # ...beyond which it extends only while its signal stays above this
    profile_slack_sigma: float = 1.0  # ...and its 1 % extent widened by this many errors of that measurement
    minimum_island_channels: int = 3  # continuum runs shorter than this become line...
    minimum_island_fraction: float = 0.005  # ...or shorter than this fraction of the spw
    broadest_scale_fraction: float = 0.25  # the widest smoothing is this fraction of the channels
    line_forest_fraction: float = 0.3  # less continuum than this between at least...
    line_forest_lines: int = 3  # ...this many line regions: a line forest
    broad_line_fraction: float = 0.2  # a line wider than this fraction of the spw is called broad
    # A noise given with the spectrum (measured off the source) is trusted to this relative error: the
    # noise used for detection stays within it.
    independent_noise_tolerance: float = 0.15
    continuum_detection_sigma: float = 5.0  # continuum level significance that counts as detected
    minimum_channels: int = 8  # fewer usable channels: too few to look for lines
    max_iterations: int = 10


@dataclass(frozen=True)
class LineRegion:
    """Channels [first, last] (inclusive) judged to carry a line, margin included."""

    first: int
    last: int
    sign: int  # +1 emission, -1 absorption
    peak_sigma: float  # strongest significance over the scales that found it
    scale: int  # boxcar width (channels) at which it was most significant
    at_lower_edge: bool
    at_upper_edge: bool

    @property
    def width(self) -> int:
        return self.last - self.first + 1


@dataclass
class ContinuumDecision:
    """The finder's answer for one spectrum."""

    continuum: np.ndarray  # bool per channel: continuum
    usable: np.ndarray  # bool per channel: had data
    lines: list[LineRegion]
    case: ContinuumCase
    baseline: np.ndarray  # the fitted continuum model per channel (NaN where unusable)
    noise: float  # sigma of one channel about the baseline, from the continuum channels
    continuum_level_sigma: float  # significance of the mean continuum level over the continuum channels
    thresholds: dict[int, float] = field(default_factory=dict)  # detection threshold (sigma) per scale
    notes: list[str] = field(default_factory=list)

    @property
    def continuum_fraction(self) -> float:
        """Over all channels of the spw, unusable ones counting as not continuum."""
        return float(self.continuum.sum()) / max(1, self.continuum.size)


# -- statistics ----------------------------------------------------------------------------------------


def robust_sigma(values: np.ndarray) -> float:
    """Standard deviation estimated from the median absolute deviation (outliers barely move it)."""
    if values.size == 0:
        return math.nan
    return float(np.median(np.abs(values - np.median(values))) * _MAD_TO_SIGMA)


def clipped_sigma(residual: np.ndarray, clip: float = 4.0) -> float:
    """Standard deviation about zero after dropping values beyond `clip` sigma (iterated).

    The plain standard deviation is twice as efficient as the MAD: with the 64 channels of a small spw
    the MAD's estimate scatters by ~13 %, enough to double the false-line rate at a 3.8-sigma threshold.
    Clipping at 4 sigma keeps a stray outlier from inflating it and biases a normal sample by < 0.1 %.
    """
    if residual.size == 0:
        return math.nan
    sigma = robust_sigma(residual) or float(np.std(residual))
    for _ in range(5):
        kept = residual[np.abs(residual) <= clip * sigma] if sigma > 0 else residual
        if kept.size < 2:
            break
        updated = float(np.sqrt(np.mean(kept**2)))
        if updated == sigma:
            break
        sigma = updated
    return sigma


@lru_cache(maxsize=16)
def _low_tail_constants(fraction: float) -> tuple[float, float]:
    """For the lowest `fraction` of draws of N(0, 1): where their median lies, and their MAD.

    Taking only the low tail shifts the median down and shrinks the spread; these two numbers undo that:
    level = median_tail - median_offset * sigma and sigma = mad_tail / mad_unit.
    """
    top = _NORMAL.inv_cdf(fraction)
    median = _NORMAL.inv_cdf(fraction / 2)

    def share_within(half_width: float) -> float:
        upper = min(median + half_width, top)
        return (_NORMAL.cdf(upper) - _NORMAL.cdf(median - half_width)) / fraction

    low, high = 0.0, 10.0
    for _ in range(100):  # bisection: the MAD is where half the tail lies within it of the median
        middle = (low + high) / 2
        low, high = (middle, high) if share_within(middle) < 0.5 else (low, middle)
    return median, (low + high) / 2


def quiet_channel_estimate(values: np.ndarray, fraction: float) -> tuple[float, float]:
    """Continuum level and noise from the lowest `fraction` of the values (at least 5 of them)."""
    count = min(values.size, max(5, int(round(fraction * values.size))))
    fraction = count / values.size
    if fraction >= 0.999:
        return float(np.median(values)), robust_sigma(values)
    tail = np.sort(values)[:count]
    median_offset, mad_unit = _low_tail_constants(fraction)
    tail_median = float(np.median(tail))
    sigma = float(np.median(np.abs(tail - tail_median))) / mad_unit
    return tail_median - median_offset * sigma, sigma


def densest_level(values: np.ndarray, sigma: float) -> float:
    """The level around which most values crowd within one sigma (the lowest such, on a tie): with the
    noise known, where the continuum lies even when lines cover most of the spw. The low tail of the
    values (the quiet start) assumes that few channels carry line, and rises with the line's share; a
    line's channels spread over its whole height, while the continuum's crowd within the noise."""
    ordered = np.sort(values)
    inside = np.searchsorted(ordered, ordered + 2 * sigma, side="right") - np.arange(ordered.size)
    first = int(np.argmax(inside))
    return float(np.median(ordered[first : first + int(inside[first])]))


def difference_sigma(values: np.ndarray, usable: np.ndarray) -> float:
    """Noise from the differences of neighbouring channels: blind to the baseline and to lines broader
    than a channel, so a floor under any other estimate and a yardstick for what noise can look like.

    It uses the 30th percentile of |difference| rather than the MAD: in a forest of narrow lines most
    differences sit on some line's flank, and the low percentile still comes from the flat parts.
    (Correlated neighbours make it an underestimate, never an overestimate.)
    """
    pairs = usable[:-1] & usable[1:]
    differences = np.abs((values[1:] - values[:-1])[pairs])
    if differences.size < 8:
        return 0.0
    return float(np.quantile(differences, _DIFFERENCE_QUANTILE)) / _DIFFERENCE_QUANTILE_UNIT / math.sqrt(2)


def robust_line(values: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """A straight line through the spectrum that lines barely move: the slope is the median of the
    slopes between channels half the spw apart, the offset the median of what is left."""
    channels = np.flatnonzero(usable).astype(float)
    y = values[usable]
    half = channels.size // 2
    if half < 4:
        return np.full(values.size, float(np.median(y)))
    slope = float(np.median((y[half : 2 * half] - y[:half]) / (channels[half : 2 * half] - channels[:half])))
    offset = float(np.median(y - slope * channels))
    return offset + slope * np.arange(values.size)


# -- smoothing and scales ------------------------------------------------------------------------------


def boxcar(values: np.ndarray, usable: np.ndarray, width: int) -> np.ndarray:
    """Centred running mean over `width` channels (odd), counting only usable channels; NaN where fewer
    than half of the window had data."""
    if width == 1:
        return np.where(usable, values, np.nan)
    kernel = np.ones(width)
    total = np.convolve(np.where(usable, values, 0.0), kernel, mode="same")
    count = np.convolve(usable.astype(float), kernel, mode="same")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count >= width / 2, total / count, np.nan)


def smoothing_scales(usable_channels: int, broadest_fraction: float) -> list[int]:
    """Odd boxcar widths 1, 3, 5, 9, 17, ... up to the broadest allowed."""
    broadest = max(1, int(broadest_fraction * usable_channels))
    scales = [1]
    width = 3
    while width <= broadest:
        scales.append(width)
        width = 2 * width - 1
    return scales


def detection_threshold(
    usable_channels: int, scale: int, scale_count: int, noise_channels: int, parameters: FinderParameters
) -> float:
    """Sigma threshold at one scale.

    The false-line probability is shared among the scales and spread over the scale's effectively
    independent trials. For a running mean of width w over N channels the maximum behaves like that of
    about 1.5 N / sqrt(w) independent normal draws (measured by simulation for N = 64 to 1920): more than
    N / w, because overlapping windows still differ. The threshold is then raised by one standard error
    of the noise estimate (relative error 1 / sqrt(2 n) for n channels), which matters for small spws.
    """
    trials = min(float(usable_channels), 1.5 * usable_channels / math.sqrt(scale))
    per_trial = parameters.false_line_probability / scale_count / (2 * max(1.0, trials))
    threshold = max(parameters.minimum_threshold_sigma, _NORMAL.inv_cdf(1 - per_trial))
    return threshold * (1 + 1 / math.sqrt(2 * max(1, noise_channels)))


def _lag_correlations(residual: np.ndarray, continuum: np.ndarray) -> list[float]:
    """Correlation of the noise between channels 1 and 2 apart (ALMA spectra are Hanning-smoothed
    online, which correlates neighbours); 0 where too few continuum pairs exist to say.

    Capped a little above what Hanning smoothing gives (2/3 and 1/6): no spectrometer correlates its
    channels more, and a line left among the "continuum" channels would otherwise pass for strongly
    correlated noise, inflate the noise of broad scales and so hide itself.
    """
    correlations = []
    values = residual[continuum]
    variance = float(np.mean((values - values.mean()) ** 2)) if values.size > 1 else 0.0
    for lag, cap in enumerate(_CORRELATION_CAPS, start=1):
        pairs = continuum[:-lag] & continuum[lag:]
        if pairs.sum() < 16 or variance <= 0:
            correlations.append(0.0)
            continue
        a, b = residual[:-lag][pairs], residual[lag:][pairs]
        correlation = float(np.mean((a - a.mean()) * (b - b.mean()))) / variance
        correlations.append(min(cap, max(0.0, correlation)))
    return correlations


def scale_sigma(sigma: float, width: int, correlations: list[float]) -> float:
    """Noise of a `width`-channel mean when neighbouring channels are correlated as measured."""
    if width == 1:
        return sigma
    inflation = 1.0 + 2.0 * sum(
        (1 - lag / width) * rho for lag, rho in enumerate(correlations, start=1) if lag < width
    )
    return sigma * math.sqrt(inflation / width)


# -- baseline ------------------------------------------------------------------------------------------


def fit_baseline(values: np.ndarray, continuum: np.ndarray, sigma: float) -> np.ndarray:
    """A constant, or a straight line when the continuum channels span the spw and the slope is
    significant (a bright source's spectral index across a wide spw)."""
    channels = np.arange(values.size, dtype=float)
    x, y = channels[continuum], values[continuum]
    constant = np.full(values.size, float(np.mean(y)) if y.size else float(np.nanmedian(values)))
    if y.size < 20 or not np.isfinite(sigma) or sigma <= 0:
        return constant
    quarter = values.size / 4
    if not (np.any(x < quarter) and np.any(x > values.size - quarter)):
        return constant  # continuum on one side only cannot tell a slope from a line's wing
    slope, intercept = np.polyfit(x, y, 1)
    slope_error = sigma / math.sqrt(float(np.sum((x - x.mean()) ** 2)))
    if abs(slope) < 4 * slope_error:
        return constant
    return intercept + slope * channels


# -- lines ---------------------------------------------------------------------------------------------


def runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """Inclusive (first, last) index ranges of consecutive True values."""
    padded = np.concatenate([[False], np.asarray(flags, dtype=bool), [False]])
    changes = np.flatnonzero(padded[1:] != padded[:-1])
    return [(int(start), int(stop) - 1) for start, stop in zip(changes[::2], changes[1::2], strict=True)]


@dataclass
class _Detection:
    first: int
    last: int
    sign: int
    peak_sigma: float  # at the scale that found it
    scale: int
    grown_peak_sigma: float  # at the scale its wings were followed, where growth stopped at 1 sigma
    peak_channel: int
    # Bright enough for its profile to be measured: [first, last] already reaches where a Gaussian of
    # its measured half widths falls to wing_fraction of its peak, and only a minimal margin is added.
    profiled: bool = False
    peaks: int = 1  # separate runs above the threshold merged into it (many in a blended forest)


def _grow(signed: np.ndarray, start: int, level: float) -> tuple[int, int]:
    """From `start`, extend both ways while the signed significance stays above `level`."""
    first = last = start
    while first > 0 and signed[first - 1] > level:
        first -= 1
    while last < signed.size - 1 and signed[last + 1] > level:
        last += 1
    return first, last


def detect_lines(
    residual: np.ndarray,
    usable: np.ndarray,
    sigma: float,
    correlations: list[float],
    noise_channels: int,
    parameters: FinderParameters,
) -> tuple[list[_Detection], dict[int, float]]:
    """Significant excursions of the residual, from the finest scale to the broadest, each grown
    through its wings; also the threshold used at each scale.

    What a finer scale found is taken out before the next, broader scale looks: a forest of narrow lines
    would otherwise look like one broad line at broad scales and swallow the continuum between its
    lines, while a genuinely broad line (or the faint wings of a strong one) still stands out in the
    channels that are left.

    Wings are followed twice: at scale 3 (one channel at a time, a noise dip below one sigma inside a
    wing would cut the line short), then at about a quarter of the width found, whose lower noise
    follows a broad line's wings much farther down (a narrow line's quarter width is 3 again).
    """
    usable_channels = int(usable.sum())
    scales = smoothing_scales(usable_channels, parameters.broadest_scale_fraction)
    thresholds = {
        scale: detection_threshold(usable_channels, scale, len(scales), noise_channels, parameters)
        for scale in scales
    }
    claimed = np.zeros(residual.size, dtype=bool)
    detections: list[_Detection] = []
    for scale in scales:
        free = usable & ~claimed
        significance: dict[int, np.ndarray] = {}

        def at(width: int, free: np.ndarray = free, significance: dict[int, np.ndarray] = significance) -> np.ndarray:
            if width not in significance:
                with np.errstate(invalid="ignore"):
                    smoothed = boxcar(residual, free, width) / scale_sigma(sigma, width, correlations)
                significance[width] = np.nan_to_num(smoothed, nan=0.0)
            return significance[width]

        narrow_growth = max(scale, 3) if usable_channels >= 16 else scale
        found: list[_Detection] = []
        for sign in (1, -1):
            signed = sign * at(scale)
            for first, last in runs((signed > thresholds[scale]) & free):
                start = first + int(np.argmax(signed[first : last + 1]))
                grown = sign * at(narrow_growth)
                low, high = _grow(grown, start, parameters.grow_threshold_sigma)
                profile = _profile_extent(grown, low, high, parameters) if narrow_growth > 1 else None
                if profile is not None:
                    # The profile's extent already reaches the 1 % level. Beyond it only a significant
                    # excess (a wing broader than a Gaussian's) extends the line, by the minimal margin:
                    # at one sigma, a noise bump beside the wing would carry it on.
                    low, high = _grow(grown, start, parameters.profile_growth_sigma)
                    margin = parameters.minimum_margin_channels
                    low = max(0, min(low - margin, profile[0]))
                    high = min(residual.size - 1, max(high + margin, profile[1]))
                else:
                    wide_growth = max([s for s in scales if s <= (high - low + 1) // 4] or [1])
                    if wide_growth > narrow_growth:
                        grown = sign * at(wide_growth)
                        wide_low, wide_high = _grow(grown, start, parameters.grow_threshold_sigma)
                        low, high = min(low, wide_low), max(high, wide_high)
                detection = _Detection(
                    min(low, first), max(high, last), sign, float(signed[first : last + 1].max()), scale,
                    float(grown[start]), start, profiled=profile is not None,
                )
                found = _merged_into(found, detection)
        for detection in found:
            claimed[detection.first : detection.last + 1] = True
        detections.extend(found)
    return detections, thresholds


def _profile_extent(
    significance: np.ndarray, low: int, high: int, parameters: FinderParameters
) -> tuple[int, int] | None:
    """Where a bright line falls to `wing_fraction` of its peak, from its measured half maximum.

    Growth through the wings to one sigma cannot reach the 1 % level of a bright line (for a 30-sigma
    line that level is 0.3 sigma, deep in the noise), and following the wings at broad scales walks on
    through noise. A line whose half maximum stands well clear of the noise has a measurable width
    instead: the channels where its (slightly smoothed) profile crosses half its peak, interpolated, are
    known to a fraction of a channel. Beyond each crossing a Gaussian of that full width at half maximum
    falls to `wing_fraction` of its peak (sqrt(ln(1/f) / ln 2) - 1) half widths farther out. The centre
    is not taken from the peak channel, which noise moves about on a flat-topped broad line. A side cut
    by the spw edge (no crossing before it) is mirrored from the other about the peak. None when the
    line is too faint for its half maximum to be measured, or both sides are cut: its margins are then
    guessed from its strength (see wing_margin).
    """
    peak_channel = low + int(np.argmax(significance[low : high + 1]))
    peak = float(significance[peak_channel])
    if peak < parameters.profile_peak_sigma:
        return None
    half = peak / 2

    def crossing(step: int) -> tuple[float, float] | None:
        """Where the profile falls below half maximum on one side, and how uncertain that is (channels:
        one unit of noise over the slope there)."""
        channel = peak_channel
        while 0 <= channel + step < significance.size:
            following = float(significance[channel + step])
            if following < half:
                slope = float(significance[channel]) - following
                return channel + step * (float(significance[channel]) - half) / slope, 1 / slope
            channel += step
        return None

    below, above = crossing(-1), crossing(+1)
    # A peak on the spw's edge may be no peak at all (the line's centre can lie beyond the edge): then
    # the intact side says nothing of the cut one.
    if (below is None and peak_channel < 2) or (above is None and peak_channel > significance.size - 3):
        return None
    if below is None and above is None:
        return None
    if below is None:
        assert above is not None
        below = 2 * peak_channel - above[0], above[1]
    if above is None:
        above = 2 * peak_channel - below[0], below[1]
    (lower, lower_error), (upper, upper_error) = below, above
    half_width = (upper - lower) / 2
    factor = math.sqrt(math.log(1 / parameters.wing_fraction) / math.log(2)) - 1
    # Each edge is uncertain by its own crossing's error plus `factor` times the half width's.
    width_error = math.hypot(lower_error, upper_error) / 2
    slack = parameters.profile_slack_sigma * (max(lower_error, upper_error) + factor * width_error)
    beyond = factor * half_width + slack
    # A channel is line when its centre lies within the reach (as the truth samples channel centres).
    first, last = int(math.ceil(lower - beyond)), int(math.floor(upper + beyond))
    return max(0, first), min(significance.size - 1, last)


def _merged_into(found: list[_Detection], detection: _Detection) -> list[_Detection]:
    """`found` with `detection` added, merged with those of the same sign whose channels it overlaps.

    Two runs above the threshold that grow into overlapping channels are one line (a noise dip split its
    top) or blended lines. Kept apart, the weaker one would be measured from its own off-centre peak
    (its half width taken to the far end of the whole line, its strength that of a shoulder) and so be
    padded as if it were a faint line twice as wide as the real one, which can swallow the spw. Merged,
    the region is the union and its profile is the strongest peak's."""
    overlapping = [
        other for other in found
        if other.sign == detection.sign and other.first <= detection.last and detection.first <= other.last
    ]
    if not overlapping:
        return [*found, detection]
    group = [*overlapping, detection]
    strongest = max(group, key=lambda d: d.grown_peak_sigma)
    merged = _Detection(
        min(d.first for d in group), max(d.last for d in group), detection.sign,
        max(d.peak_sigma for d in group), strongest.scale, strongest.grown_peak_sigma, strongest.peak_channel,
        profiled=all(d.profiled for d in group), peaks=sum(d.peaks for d in group),
    )
    return [*[other for other in found if other not in overlapping], merged]


def wing_margin(width: int, grown_peak_sigma: float, parameters: FinderParameters) -> int:
    """Channels to add on each side of a line found `width` channels wide down to one sigma (for a line
    cut by the spw edge, twice its intact half).

    A faint line is followed only a short way down its profile, a bright one nearly to its foot: for a
    Gaussian of peak S sigma, growth to 1 sigma reaches sqrt(2 ln S) of its own sigma, and the point
    where it falls to `wing_fraction` of its peak lies sqrt(ln(1 / wing_fraction) / ln S) times farther
    out. Noise stops growth early about as often as late, where the line may still be above 1 sigma:
    the stop is taken to lie where the line is at `stop_sigma`. The margin covers the difference (capped
    at the width itself for the faintest), so that faint broad lines (the known weakness of continuum
    finding) do not leave their wings in the continuum.
    """
    strength = math.log(max(grown_peak_sigma / parameters.stop_sigma, 1.5))
    reach = min(3.0, math.sqrt(math.log(1 / parameters.wing_fraction) / strength))
    margin = max(parameters.minimum_margin_fraction, (reach - 1) / 2) * width
    return max(parameters.minimum_margin_channels, int(math.ceil(margin)))


def _line_mask(detections: list[_Detection], size: int, parameters: FinderParameters) -> np.ndarray:
    """The detections padded by their wing margins, each side by its own extent from the peak: a noise
    bump that carried the growth farther on one side must not widen the other side too. A side cut by
    the spw edge has no measurable extent and takes the other side's (the line's intact half)."""
    mask = np.zeros(size, dtype=bool)
    for detection in detections:
        lower = detection.peak_channel - detection.first
        upper = detection.last - detection.peak_channel
        if detection.first == 0:
            lower = max(lower, upper)
        if detection.last == size - 1:
            upper = max(lower, upper)
        if detection.profiled:
            lower_margin = upper_margin = 0
        else:
            lower_margin = wing_margin(2 * lower + 1, detection.grown_peak_sigma, parameters)
            upper_margin = wing_margin(2 * upper + 1, detection.grown_peak_sigma, parameters)
        mask[max(0, detection.first - lower_margin) : min(size, detection.last + upper_margin + 1)] = True
    return mask


def _drop_short_islands(continuum: np.ndarray, usable: np.ndarray, shortest: int) -> np.ndarray:
    """Continuum runs shorter than `shortest` channels become line (they are usually noise dips inside
    or between lines), unless the run is all the usable data there is."""
    kept = continuum.copy()
    usable_count = int(usable.sum())
    for first, last in runs(continuum):
        if last - first + 1 < min(shortest, usable_count):
            kept[first : last + 1] = False
    return kept


@dataclass
class _Solution:
    continuum: np.ndarray
    detections: list[_Detection]
    thresholds: dict[int, float]
    baseline: np.ndarray
    sigma: float  # as used for detection: the measured noise held between the floor and the ceiling
    measured_sigma: float  # the scatter of the continuum channels themselves
    correlations: list[float]


def _refine(
    values: np.ndarray,
    usable: np.ndarray,
    baseline: np.ndarray,
    sigma: float,
    sigma_bounds: tuple[float, float],
    parameters: FinderParameters,
) -> _Solution:
    """From a start (baseline, sigma): detect lines, refit baseline and noise on what is left, repeat.

    The noise used for detection stays within `sigma_bounds` (from the channel differences), which
    stops two spirals: channels removed as line are the high ones, so the noise of what is left shrinks
    with each false detection, which invites the next; and a line taken for continuum inflates the
    noise, which hides the next line.
    """
    floor, ceiling = sigma_bounds
    sigma = min(max(sigma, floor), ceiling)
    measured = sigma
    continuum = usable.copy()
    # Measured on every channel at first: lines make neighbours look more alike, which overstates the
    # noise of broad scales and so errs towards finding fewer lines until the lines are known.
    correlations = _lag_correlations(values - baseline, usable)
    detections: list[_Detection] = []
    thresholds: dict[int, float] = {}
    shortest = max(
        parameters.minimum_island_channels, int(math.ceil(parameters.minimum_island_fraction * values.size))
    )
    noise_channels = int(usable.sum())
    for _ in range(parameters.max_iterations):
        detections, thresholds = detect_lines(
            values - baseline, usable, sigma, correlations, noise_channels, parameters
        )
        candidate = usable & ~_line_mask(detections, values.size, parameters)
        candidate = _drop_short_islands(candidate, usable, shortest)
        if candidate.sum() < 3:
            continuum = candidate
            break
        changed = not np.array_equal(candidate, continuum)
        continuum = candidate
        baseline = fit_baseline(values, continuum, sigma)
        residual = values - baseline
        measured = clipped_sigma(residual[continuum])
        sigma = min(max(measured, floor), ceiling)
        correlations = _lag_correlations(residual, continuum)
        noise_channels = int(continuum.sum())
        if not changed:
            break
    return _Solution(continuum, detections, thresholds, baseline, sigma, measured, correlations)


def noise_ceiling(difference_noise: float, usable_channels: int) -> float:
    """The largest scatter that noise can have given the channel differences (see difference_sigma):
    above it a "continuum" is structure, not noise."""
    return _NOISE_OVER_DIFFERENCES * (1 + 2 / math.sqrt(max(1, usable_channels))) * difference_noise


def independent_noise_ceiling(noise: float, usable_channels: int, tolerance: float) -> float:
    """The largest scatter a continuum can have given a noise measured outside the spectrum: that noise,
    its own uncertainty, and what measuring a scatter on the spectrum's few channels adds."""
    return noise * (1 + tolerance) * (1 + 2 / math.sqrt(max(1, usable_channels)))


def _misses_lines(solution: _Solution, other: _Solution, values: np.ndarray) -> bool:
    """Whether `solution` counts as continuum a stretch that `other` calls line and that is significant
    (beyond 5 sigma) even by `solution`'s own baseline and noise: then `solution` missed a line."""
    for first, last in runs(solution.continuum & ~other.continuum):
        width = last - first + 1
        mean = float(np.mean((values - solution.baseline)[first : last + 1]))
        if abs(mean) > 5 * scale_sigma(solution.sigma, width, solution.correlations):
            return True
    return False


def looks_like_noise(residual: np.ndarray) -> bool:
    """Whether a continuum's residual could be noise, by two signs that the channel differences miss.

    - Symmetry: noise scatters as far below the baseline as above it, lines only one way. A forest of
      narrow lines inflates the channel differences as much as the scatter (so the noise ceiling lets it
      pass), but leaves many channels beyond 4 sigma on one side only (sigma from the quieter side's
      16th-84th percentile). Pure noise, white or Hanning-smoothed, gave at most 7 such channels more on
      one side than the other in 3000 draws of 16 to 1920 channels.
    - No long-range correlation: a spectrometer correlates neighbouring channels (Hanning: lags 1 and
      2) and no farther, while a line as wide as the spw is a hump whose channels 3 to 6 apart still
      move together. Noise gave a mean correlation over those lags of at most 0.47 (64 Hanning-smoothed
      channels) in 3000 draws; the limit is set above that and rises for few channels.
    Below 16 channels neither says anything and the residual is taken as noise.
    """
    count = residual.size
    if count < _NOISE_TEST_CHANNELS:
        return True
    centre = float(np.median(residual))
    sigma = min(centre - float(np.quantile(residual, 0.1587)), float(np.quantile(residual, 0.8413)) - centre)
    if sigma > 0:
        above = int(np.sum(residual > centre + _OUTLIER_SIGMA * sigma))
        below = int(np.sum(residual < centre - _OUTLIER_SIGMA * sigma))
        if abs(above - below) > _MAX_OUTLIER_EXCESS:
            return False
    centred = residual - float(np.mean(residual))
    variance = float(np.mean(centred**2))
    if variance <= 0:
        return True
    long_range = float(np.mean([np.mean(centred[:-lag] * centred[lag:]) / variance for lag in _LONG_RANGE_LAGS]))
    return long_range <= max(_LONG_RANGE_CORRELATION_LIMIT, 4.0 / math.sqrt(count))


def _better(first: _Solution, second: _Solution, ceiling: float, values: np.ndarray) -> _Solution:
    """The more believable of two solutions.

    A solution's continuum must look like noise: its scatter cannot exceed what the channel-to-channel
    differences allow for noise with any correlation a spectrometer gives. A line forest taken for noise
    by a start inside the forest fails this; so does a solution that left no continuum at all. Of two
    believable solutions the quieter wins (line signal left in the continuum can only add scatter), but
    only when the difference is beyond what estimating a sigma from so few channels allows (a handful
    of channels between two lines always looks quiet). Otherwise the one keeping more continuum wins,
    unless that one takes for continuum a stretch that is clearly line even by its own noise.
    """

    def believable(solution: _Solution) -> bool:
        return bool(
            solution.continuum.sum() >= 3
            and solution.measured_sigma <= ceiling
            and looks_like_noise((values - solution.baseline)[solution.continuum])
        )

    if believable(first) != believable(second):
        return first if believable(first) else second
    if not believable(first):
        return first if first.continuum.sum() <= second.continuum.sum() else second
    counts = int(first.continuum.sum()), int(second.continuum.sum())
    tolerance = 2.5 * math.sqrt(1 / (2 * counts[0]) + 1 / (2 * counts[1]))
    # Compared with the floor applied: no continuum is quieter than the channel differences allow.
    ratio = first.sigma / second.sigma
    if abs(math.log(ratio)) <= tolerance:
        wider, narrower = (first, second) if counts[0] >= counts[1] else (second, first)
        return narrower if _misses_lines(wider, narrower, values) else wider
    return first if ratio < 1 else second


# -- the decision --------------------------------------------------------------------------------------


def find_continuum_channels(
    spectrum: np.ndarray,
    *,
    source_detected: bool | None = None,
    noise: float | None = None,
    parameters: FinderParameters | None = None,
) -> ContinuumDecision:
    """Decide which channels of `spectrum` are continuum.

    source_detected: whether the image moments showed real emission (the mask was not a fallback); when
    None, continuum is "detected" when its level over the continuum channels is significant.
    noise: the noise of one channel of `spectrum`, measured without it (see joint_mask.spectrum_noise).
    A spectrum alone can only guess its noise from its own quiet channels, which a line forest or a
    line's undetected wings inflate (lines then hide in the "noise") and a few lucky channels deflate.
    Given, it holds the noise used for detection close to itself and is the yardstick of what noise may
    look like; otherwise the channel differences are.
    """
    parameters = parameters or FinderParameters()
    values = np.asarray(spectrum, dtype=float)
    if values.ndim != 1:
        raise ValueError(f"a spectrum is one-dimensional; got shape {values.shape}")
    usable = np.isfinite(values)
    count = int(usable.sum())
    if count < parameters.minimum_channels:
        return _too_few_channels(values, usable)

    finite = values[usable]
    quiet_level, quiet_sigma = quiet_channel_estimate(finite, parameters.quiet_fraction)
    sloped = robust_line(values, usable)
    starts = [
        (np.full(values.size, quiet_level), quiet_sigma),
        (np.full(values.size, float(np.median(finite))), robust_sigma(finite)),
        (sloped, robust_sigma(values[usable] - sloped[usable])),
    ]
    independent = noise is not None and math.isfinite(noise) and noise > 0
    if independent:
        assert noise is not None
        tolerance = parameters.independent_noise_tolerance
        sigma_bounds = (noise / (1 + tolerance), noise * (1 + tolerance))
        ceiling = independent_noise_ceiling(noise, count, tolerance)
        starts = [(baseline, noise) for baseline, _ in starts]
        starts.append((np.full(values.size, densest_level(finite, noise)), noise))
    else:
        difference_noise = difference_sigma(values, usable)
        ceiling = noise_ceiling(difference_noise, count)
        # 0.9: the differences' own estimate scatters by several per cent, and the floor must not bind on
        # white noise, where the differences give the true sigma.
        sigma_bounds = (0.9 * difference_noise, ceiling)
    best: _Solution | None = None
    for baseline, sigma in starts:
        if not np.isfinite(sigma) or sigma <= 0:
            sigma = _fallback_sigma(finite)
        solution = _refine(values, usable, baseline, sigma, sigma_bounds, parameters)
        best = solution if best is None else _better(best, solution, ceiling, values)
    assert best is not None
    structured = bool(
        best.continuum.sum() >= 3
        and (
            best.measured_sigma > ceiling
            or not looks_like_noise((values - best.baseline)[best.continuum])
        )
    )
    # Lines everywhere, their margins leaving no continuum, yet found as many separate lines: a forest
    # so dense that its gaps are narrower than the margins. Its quietest channels may still be its gaps.
    crowded = bool(
        best.continuum.sum() < 3 and sum(d.peaks for d in best.detections) >= parameters.line_forest_lines
    )
    forest = False
    if structured or crowded:
        quietest, forest = _quietest_channels(values, usable, sloped, best, parameters)
        if structured or forest:
            best = quietest

    lines = _line_regions(best.continuum, usable, best.detections)
    continuum_count = int(best.continuum.sum())
    level_sigma = _level_significance(best, continuum_count)
    case, notes = _classify(lines, continuum_count, count, level_sigma, source_detected, parameters)
    if forest:
        notes.insert(
            0,
            "the spectrum shows structure everywhere, with quiet channels scattered between many peaks, as "
            "in a dense line forest: only the quietest channels are kept, and they may still carry line wings",
        )
    elif structured:
        notes.insert(
            0,
            "the spectrum is one broad structure across the spw (not noise about any baseline): its "
            "quietest channels lie together on its wings, so no channel is taken as continuum",
        )
    elif continuum_count == 0 and len(lines) == 1:
        notes.insert(
            0,
            "the spectrum is one broad structure across the spw: a line (or a blend) whose extent down to "
            f"{parameters.wing_fraction:.0%} of its peak covers every channel, so no channel is taken as continuum",
        )
    return ContinuumDecision(
        continuum=best.continuum, usable=usable, lines=lines, case=case,
        baseline=np.where(usable, best.baseline, np.nan), noise=float(best.sigma),
        continuum_level_sigma=level_sigma, thresholds=best.thresholds, notes=notes,
    )


def _quietest_channels(
    values: np.ndarray, usable: np.ndarray, sloped: np.ndarray, solution: _Solution, parameters: FinderParameters
) -> tuple[_Solution, bool]:
    """When no start found noise-like continuum, and whether the spectrum is a line forest.

    The quietest channels about a robust slope tell the two apart. Scattered over the spw in several
    separate runs, some in its middle half, they are the gaps of a line forest: they are kept as its
    continuum, as ALMA's findContinuum does for hot cores, however short (in a forest every gap is
    short; the QA says the ranges are uncertain). Gathered towards the spw edges, they are the wings of
    one structure as wide as the spw (a line covering it): then nothing is continuum, since calling a
    line's wings continuum would subtract the line from the cube and put it into the continuum image."""
    residual = np.where(usable, values - sloped, np.inf)
    count = max(3, int(round(parameters.quiet_fraction * usable.sum())))
    continuum = np.zeros(values.size, dtype=bool)
    continuum[np.argsort(residual)[:count]] = True
    continuum &= usable
    usable_channels = np.flatnonzero(usable)
    quarter = usable_channels.size // 4
    middle = usable_channels[quarter : usable_channels.size - quarter]
    forest = len(runs(continuum)) >= parameters.line_forest_lines and bool(continuum[middle].any())
    if not forest:
        continuum[:] = False
    baseline = fit_baseline(values, continuum, solution.sigma) if continuum.sum() else sloped
    measured = clipped_sigma((values - baseline)[continuum]) if continuum.sum() >= 2 else solution.measured_sigma
    return _Solution(
        continuum, solution.detections, solution.thresholds, baseline, solution.sigma, measured,
        solution.correlations,
    ), forest


def _fallback_sigma(values: np.ndarray) -> float:
    """When the robust estimators return 0 (quantised or constant data): the plain spread, or a tiny
    positive number for a constant spectrum."""
    spread = float(np.std(values))
    return spread if spread > 0 else max(1e-12, abs(float(np.mean(values))) * 1e-9)


def _level_significance(solution: _Solution, continuum_count: int) -> float:
    if continuum_count == 0 or not np.isfinite(solution.sigma) or solution.sigma <= 0:
        return 0.0
    mean_sigma = scale_sigma(solution.sigma, continuum_count, solution.correlations)
    return float(np.mean(solution.baseline[solution.continuum])) / mean_sigma


def _line_regions(continuum: np.ndarray, usable: np.ndarray, detections: list[_Detection]) -> list[LineRegion]:
    """The final line regions: usable channels that are not continuum, with what was found in them."""
    usable_channels = np.flatnonzero(usable)
    lowest, highest = int(usable_channels[0]), int(usable_channels[-1])
    regions = []
    for first, last in runs(usable & ~continuum):
        inside = [d for d in detections if d.last >= first and d.first <= last]
        strongest = max(inside, key=lambda d: d.peak_sigma, default=None)
        regions.append(
            LineRegion(
                first=first, last=last,
                sign=strongest.sign if strongest else 1,
                peak_sigma=round(strongest.peak_sigma, 2) if strongest else 0.0,
                scale=strongest.scale if strongest else 1,
                at_lower_edge=first <= lowest, at_upper_edge=last >= highest,
            )
        )
    return regions


def _classify(
    lines: list[LineRegion],
    continuum_count: int,
    usable_count: int,
    level_sigma: float,
    source_detected: bool | None,
    parameters: FinderParameters,
) -> tuple[ContinuumCase, list[str]]:
    notes: list[str] = []
    fraction = continuum_count / usable_count
    for line in lines:
        kind = "absorption" if line.sign < 0 else "emission"
        where = f"channels {line.first}~{line.last}"
        if line.width >= parameters.broad_line_fraction * usable_count:
            notes.append(f"broad {kind} line over {where} ({line.width / usable_count:.0%} of the spw)")
        if line.at_lower_edge or line.at_upper_edge:
            edge = "lower" if line.at_lower_edge else "upper"
            notes.append(f"{kind} line at the {edge} spw edge ({where}): its wing beyond the edge is unseen")
    if continuum_count == 0:
        notes.append("no line-free channel is left: nothing to fit or image as continuum")
        return ContinuumCase.NO_CONTINUUM, notes
    if not lines:
        detected = (
            source_detected if source_detected is not None
            else level_sigma >= parameters.continuum_detection_sigma
        )
        if detected:
            notes.append("no significant line: the whole spw is continuum")
            return ContinuumCase.ALL_CONTINUUM, notes
        notes.append(
            f"neither continuum nor lines are significant (continuum level at {level_sigma:.1f} sigma): "
            "the whole spw is used, and the choice is uncertain"
        )
        return ContinuumCase.NOISY, notes
    if fraction < parameters.line_forest_fraction:
        if len(lines) >= parameters.line_forest_lines:
            notes.append(f"line forest: {len(lines)} line regions leave {fraction:.0%} of the spw as continuum")
            return ContinuumCase.LINE_FOREST, notes
        notes.append(f"little continuum: {len(lines)} line region(s) leave {fraction:.0%} of the spw")
    return ContinuumCase.LINES_AND_CONTINUUM, notes


def _too_few_channels(values: np.ndarray, usable: np.ndarray) -> ContinuumDecision:
    """A handful of channels (a continuum-mode spw, or nearly all flagged) cannot show a line: all of it
    is continuum, and the case says whether there was any data at all."""
    count = int(usable.sum())
    if count == 0:
        return ContinuumDecision(
            continuum=usable.copy(), usable=usable, lines=[], case=ContinuumCase.NO_CONTINUUM,
            baseline=np.full(values.size, np.nan), noise=math.nan, continuum_level_sigma=0.0,
            notes=["no channel has data"],
        )
    level = float(np.median(values[usable]))
    return ContinuumDecision(
        continuum=usable.copy(), usable=usable, lines=[], case=ContinuumCase.NOISY,
        baseline=np.where(usable, level, np.nan), noise=robust_sigma(values[usable]), continuum_level_sigma=0.0,
        notes=[f"only {count} channel(s) with data: too few to look for lines, all are used as continuum"],
    )
