"""The ALMA imaging recipe's choices, as pure functions of what the data say: pixel size, image size,
deconvolver, clean threshold, iteration cap and automasking parameters.

Every choice here can be replaced by the job's `ImagingOverrides`; these functions only decide what the
heuristics would pick. Inputs are plain numbers so that each rule can be checked with numbers, without
CASA (tests/imaging/test_heuristics.py).
"""

import math
from dataclasses import dataclass

from aperture_contracts.enums import ImagingKind

SPEED_OF_LIGHT_M_S = 299_792_458.0
ARCSEC_PER_RADIAN = 180.0 / math.pi * 3600.0

# A 12-m ALMA antenna's primary beam: FWHM ~ 1.13 lambda / D (the edge taper of the illumination widens
# it beyond 1.02 lambda / D of a uniformly lit dish). The same factor serves the 7-m antennas.
PRIMARY_BEAM_FWHM_FACTOR = 1.13
# Pixels across the beam's minor axis: enough for clean components and the restoring beam to be
# sampled well (ALMA's choice); the size cascade may coarsen it to COARSE_PIXELS_PER_BEAM.
PIXELS_PER_BEAM = 5
COARSE_PIXELS_PER_BEAM = 3
# The image reaches out to where the primary-beam response falls to this level (tclean's pblimit too).
DEFAULT_PB_LEVEL = 0.2
DEFAULT_ROBUST = 0.5
# Clean down to this many times the theoretical sensitivity (times the dynamic-range correction).
THRESHOLD_SIGMAS = 4.0
# Multi-scale clean's scales, in beams: point-like (0), the beam, and three beams. A single-scale (Hogbom)
# clean of a resolved source stops at the threshold with much of its flux still in the residual, where the
# restored image counts it per dirty beam, whose area (sidelobes included) is far smaller than the clean
# beam's: measured on the simulated disc (3" x 2", ~1.5 beams), Hogbom at 4 sigma recovered 80 % of its
# integrated flux and these scales 94 %, with the point source's flux the same (+-1 %) either way.
MULTISCALE_BEAMS = (0.0, 1.0, 3.0)
# Above this fractional bandwidth the sky's spectral index changes the image across the band enough
# that a single-term (flat-spectrum) model leaves residuals: use mtmfs with two Taylor terms.
MTMFS_FRACTIONAL_BANDWIDTH = 0.10
# The dynamic range (peak / noise) that a 12-m ALMA image reaches before self-calibration: residual
# calibration errors limit it to a few hundred. Brighter sources raise the threshold proportionally, so
# that clean does not chase artefacts it cannot remove.
ACHIEVABLE_DYNAMIC_RANGE = 200.0
# Expected synthesized beam for robust 0.5 from the uv coverage (ALMA Technical Handbook):
# theta ~ 0.574 lambda / L80, with L80 the 80th percentile of the projected baseline lengths.
EXPECTED_BEAM_FACTOR = 0.574
# A safety cap on clean iterations: the threshold is what stops clean; the cap only bounds runaway runs.
NITER_PER_PLANE = 2000
NITER_CAP = 200_000


def primary_beam_fwhm_arcsec(frequency_hz: float, dish_diameter_m: float) -> float:
    """The primary beam's full width at half maximum."""
    wavelength = SPEED_OF_LIGHT_M_S / frequency_hz
    return PRIMARY_BEAM_FWHM_FACTOR * wavelength / dish_diameter_m * ARCSEC_PER_RADIAN


def radius_at_pb_level_arcsec(pb_fwhm_arcsec: float, level: float) -> float:
    """Distance from the pointing centre at which a Gaussian primary beam falls to `level`."""
    if not 0 < level < 1:
        raise ValueError(f"a primary-beam level lies strictly between 0 and 1, got {level}")
    return pb_fwhm_arcsec / 2 * math.sqrt(math.log(1 / level) / math.log(2))


def optimum_image_size(pixels: int) -> int:
    """The smallest even size >= pixels whose prime factors are 2, 3 and 5 only: the sizes CASA's FFTs
    are fast for (what casatools.synthesisutils().getOptimumSize returns)."""
    size = max(2, pixels + (pixels % 2))
    while True:
        remainder = size
        for prime in (2, 3, 5):
            while remainder % prime == 0:
                remainder //= prime
        if remainder == 1:
            return size
        size += 2


def imsize_for_pb_level(pb_fwhm_arcsec: float, level: float, cell_arcsec: float) -> int:
    """Pixels across a square image that reaches the primary-beam `level` on each side."""
    diameter = 2 * radius_at_pb_level_arcsec(pb_fwhm_arcsec, level)
    return optimum_image_size(math.ceil(diameter / cell_arcsec))


def cell_for_beam(beam_minor_arcsec: float, pixels_per_beam: int = PIXELS_PER_BEAM) -> float:
    """The pixel size giving at least `pixels_per_beam` pixels across the beam's minor axis, rounded
    down to two significant digits (a readable number, and rounding down never undersamples)."""
    if beam_minor_arcsec <= 0:
        raise ValueError(f"the beam's minor axis must be positive, got {beam_minor_arcsec}")
    exact = beam_minor_arcsec / pixels_per_beam
    exponent = math.floor(math.log10(exact)) - 1
    # round() only removes binary noise (0.35000000000000003): the floor already chose the digits.
    return round(math.floor(exact / 10**exponent + 1e-9) * 10**exponent, -exponent)


def expected_beam_arcsec(frequency_hz: float, l80_m: float, uvtaper_arcsec: float | None = None) -> float:
    """The beam (geometric mean of the axes) that the uv coverage should give with robust 0.5; a
    Gaussian uv taper of image-plane width t convolves it, to about sqrt(beam^2 + t^2)."""
    wavelength = SPEED_OF_LIGHT_M_S / frequency_hz
    untapered = EXPECTED_BEAM_FACTOR * wavelength / l80_m * ARCSEC_PER_RADIAN
    return math.hypot(untapered, uvtaper_arcsec or 0.0)


def fractional_bandwidth(frequency_min_hz: float, frequency_max_hz: float) -> float:
    """Total bandwidth over the centre frequency."""
    return (frequency_max_hz - frequency_min_hz) / ((frequency_max_hz + frequency_min_hz) / 2)


@dataclass(frozen=True)
class Deconvolver:
    name: str
    nterms: int

    @property
    def multiterm(self) -> bool:
        return self.name == "mtmfs"

    @property
    def multiscale(self) -> bool:
        """Whether tclean takes scales: multiscale, and mtmfs (which is multi-scale when given them)."""
        return self.name in ("multiscale", "mtmfs")


def choose_deconvolver(
    kind: ImagingKind, frac_bandwidth: float, override_name: str | None = None, override_nterms: int | None = None
) -> Deconvolver:
    """multiscale, or mtmfs with two terms for continuum images over more than 10 % fractional bandwidth
    (given scales too, see multiscale_scales). Cubes never use mtmfs: each plane is narrow."""
    if override_name is not None:
        nterms = override_nterms or (2 if override_name == "mtmfs" else 1)
        return Deconvolver(override_name, nterms)
    if kind in (ImagingKind.MFS, ImagingKind.CONT) and frac_bandwidth > MTMFS_FRACTIONAL_BANDWIDTH:
        return Deconvolver("mtmfs", override_nterms or 2)
    if override_nterms is not None and override_nterms > 1:
        return Deconvolver("mtmfs", override_nterms)
    return Deconvolver("multiscale", 1)


def multiscale_scales(beam_arcsec: float, cell_arcsec: float, imsize: list[int]) -> list[int]:
    """Multi-scale clean's scales in pixels (MULTISCALE_BEAMS), distinct, and none wider than a quarter of
    the image (a scale as wide as the image cannot be told from an offset)."""
    beam_pixels = beam_arcsec / cell_arcsec
    widest = min(imsize) / 4
    scales = sorted({int(round(beams * beam_pixels)) for beams in MULTISCALE_BEAMS})
    return [scale for scale in scales if scale <= widest] or [0]


def dynamic_range_correction(peak_jy: float, sensitivity_jy: float) -> float:
    """How much to raise the threshold for a bright source: 1 up to ACHIEVABLE_DYNAMIC_RANGE, then in
    proportion to the dynamic range (peak / sensitivity) beyond it."""
    if sensitivity_jy <= 0:
        raise ValueError(f"the sensitivity must be positive, got {sensitivity_jy}")
    return max(1.0, (peak_jy / sensitivity_jy) / ACHIEVABLE_DYNAMIC_RANGE)


def clean_threshold_jy(sensitivity_jy: float, dr_correction: float = 1.0) -> float:
    return THRESHOLD_SIGMAS * sensitivity_jy * dr_correction


def cube_plane_sensitivity_jy(natural_sensitivity_jy: float, bandwidth_hz: float, plane_width_hz: float) -> float:
    """Natural-weighting noise of one cube plane `plane_width_hz` wide, from the noise of all the data over
    `bandwidth_hz`: the plane holds plane_width / bandwidth of the weight (channels of equal weight), so
    its noise is the whole band's times sqrt(bandwidth / plane_width), i.e. it falls as 1/sqrt(width)."""
    if not 0 < plane_width_hz:
        raise ValueError(f"a plane's width must be positive, got {plane_width_hz} Hz")
    return natural_sensitivity_jy * math.sqrt(bandwidth_hz / plane_width_hz)


def niter_cap(planes: int) -> int:
    return min(NITER_CAP, NITER_PER_PLANE * max(1, planes))


@dataclass(frozen=True)
class AutomaskParameters:
    """tclean's auto-multithresh settings, after the values Kepley et al. (2020, PASP 132, 024505) give per
    array; the sidelobe and noise thresholds are in units of the PSF sidelobe level and the image rms."""

    sidelobethreshold: float
    noisethreshold: float
    lownoisethreshold: float
    minbeamfrac: float
    negativethreshold: float


def automask_parameters(dish_diameter_m: float, baseline_75th_percentile_m: float, cube: bool) -> AutomaskParameters:
    """The published values by array: 7-m, 12-m compact (75th-percentile baseline under 300 m), 12-m
    extended. Cubes mask absorption too (negativethreshold); continuum images do not."""
    if dish_diameter_m < 10:
        return AutomaskParameters(1.25, 5.0, 2.0, 0.1, 10.0 if cube else 0.0)
    negative = 15.0 if cube else 0.0
    if baseline_75th_percentile_m < 300:
        return AutomaskParameters(2.0, 4.25, 1.5, 0.3, negative)
    if baseline_75th_percentile_m < 400:
        return AutomaskParameters(2.0, 5.0, 1.5, 0.3, 7.0 if cube else 0.0)
    return AutomaskParameters(3.0, 5.0, 1.5, 0.3, 7.0 if cube else 0.0)
