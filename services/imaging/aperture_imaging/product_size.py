"""Product-size control before imaging: the ALMA pipeline's mitigation cascade as one pure function.

The estimated size of an image product is 4 bytes x nx x ny x output channels. When it is over the
job's `max_cube_bytes`, the cascade changes, in order and only as far as needed:

1. bin channels by 2, for spws with very fine channels (cubes only);
2. shrink the field, from the primary-beam level it reaches (0.2 by default) up to at most 0.7;
3. coarsen the pixels to 3 across the beam's minor axis (instead of 5).

What is still over the hard limit afterwards fails with a BadInput naming the sizes and the limits. A
parameter the job's overrides set is never changed; the cascade says it skipped that step and why.
"""

from dataclasses import dataclass, replace

from aperture_contracts.imaging import ProductSizeLimits
from aperture_shared.errors import ProductTooLarge

from aperture_imaging.heuristics import COARSE_PIXELS_PER_BEAM, cell_for_beam, imsize_for_pb_level

BYTES_PER_PIXEL = 4
# Spws with at least this many channels count as "very fine" (ALMA's FDM modes); binning their channels
# by 2 loses little spectral information, while TDM-like spws of 64-128 channels would lose a lot.
FINE_SPW_MIN_CHANNELS = 960
# The primary-beam levels the field may shrink to, in order; ALMA stops at 0.7.
PB_LEVEL_STEPS = (0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7)
GB = 1e9


@dataclass(frozen=True)
class ImageGeometry:
    """The parameters that set a product's size."""

    cell_arcsec: float
    imsize: tuple[int, int]  # nx, ny
    native_channels: int  # planes before binning (1 for continuum images)
    channel_binning: int
    pb_level: float

    @property
    def channels(self) -> int:
        return max(1, self.native_channels // self.channel_binning)

    @property
    def bytes(self) -> int:
        return BYTES_PER_PIXEL * self.imsize[0] * self.imsize[1] * self.channels

    def describe(self) -> str:
        nx, ny = self.imsize
        return f"{nx} x {ny} pixels x {self.channels} channel(s), {self.bytes / GB:.3g} GB"


@dataclass(frozen=True)
class FixedByOverrides:
    """Which size parameters the job's overrides set (the cascade must leave them alone)."""

    cell: bool = False
    imsize: bool = False
    channel_binning: bool = False


@dataclass(frozen=True)
class SizedProduct:
    geometry: ImageGeometry
    mitigation: list[str]


def fit_product_size(
    product: str,
    geometry: ImageGeometry,
    *,
    beam_minor_arcsec: float,
    pb_fwhm_arcsec: float,
    limits: ProductSizeLimits,
    fixed: FixedByOverrides = FixedByOverrides(),
    cube: bool,
) -> SizedProduct:
    """Apply the cascade to `geometry` until the product fits `limits.max_cube_bytes`.

    product: what is being made, for messages ("the cube of NGC253 spw 25").
    Returns the geometry to image with and one line per step taken or skipped, each saying why.
    Raises BadInput when even the last step leaves it over the hard limit (the smaller of
    max_cube_hard_bytes and max_mous_bytes: one product cannot be larger than its whole MOUS may be).
    """
    target = limits.max_cube_bytes
    hard = min(limits.max_cube_hard_bytes, limits.max_mous_bytes)
    if geometry.bytes <= target:
        return SizedProduct(geometry, [])
    steps: list[str] = []
    initial = geometry

    def over() -> str:
        return f"{geometry.describe()} exceeds max_cube_bytes {target / GB:.3g} GB"

    # 1. bin fine channels by 2
    if not cube:
        pass  # a continuum image has one plane: nothing to bin
    elif fixed.channel_binning:
        steps.append("did not bin channels: the channel binning is set by the job's overrides")
    elif geometry.native_channels < FINE_SPW_MIN_CHANNELS:
        steps.append(
            f"did not bin channels: {geometry.native_channels} channels are not a fine spw "
            f"(binning starts at {FINE_SPW_MIN_CHANNELS})"
        )
    elif geometry.channel_binning == 1:
        reason = over()
        geometry = replace(geometry, channel_binning=2)
        steps.append(f"binned channels by 2 ({initial.channels} -> {geometry.channels} channels): {reason}")

    # 2. shrink the field to a higher primary-beam level
    if geometry.bytes > target:
        if fixed.imsize:
            steps.append("did not shrink the field: the image size is set by the job's overrides")
        else:
            reason = over()
            before = geometry
            for level in (level for level in PB_LEVEL_STEPS if level > geometry.pb_level):
                size = imsize_for_pb_level(pb_fwhm_arcsec, level, geometry.cell_arcsec)
                geometry = replace(geometry, pb_level=level, imsize=(size, size))
                if geometry.bytes <= target:
                    break
            if geometry != before:
                steps.append(
                    f"shrank the field to primary-beam level {geometry.pb_level:g} (from {before.pb_level:g}; "
                    f"{before.imsize[0]} -> {geometry.imsize[0]} pixels across): {reason}"
                )

    # 3. coarsen to 3 pixels per beam
    if geometry.bytes > target:
        coarse_cell = cell_for_beam(beam_minor_arcsec, COARSE_PIXELS_PER_BEAM)
        if fixed.cell:
            steps.append("did not coarsen the pixels: the cell size is set by the job's overrides")
        elif coarse_cell > geometry.cell_arcsec:
            reason = over()
            before = geometry
            geometry = replace(geometry, cell_arcsec=coarse_cell)
            if not fixed.imsize:
                size = imsize_for_pb_level(pb_fwhm_arcsec, geometry.pb_level, coarse_cell)
                geometry = replace(geometry, imsize=(size, size))
            steps.append(
                f"coarsened the pixels to {COARSE_PIXELS_PER_BEAM} per beam ({before.cell_arcsec:g} -> "
                f"{coarse_cell:g} arcsec, {before.imsize[0]} -> {geometry.imsize[0]} pixels across): {reason}"
            )

    if geometry.bytes > hard:
        raise ProductTooLarge(
            f"{product} is too large to make: {geometry.describe()} after the size mitigation "
            f"(started at {initial.describe()}; {'; '.join(steps) or 'no step applied'}), over the hard "
            f"limit of {hard / GB:.3g} GB (max_cube_hard_bytes {limits.max_cube_hard_bytes / GB:.3g} GB, "
            f"max_mous_bytes {limits.max_mous_bytes / GB:.3g} GB). Raise the job's size_limits, or ask for "
            "a smaller product through its overrides (channel_binning, imsize, cell_arcsec)."
        )
    if geometry.bytes > target:
        steps.append(
            f"still {geometry.bytes / GB:.3g} GB, over max_cube_bytes {target / GB:.3g} GB but under the hard "
            f"limit {hard / GB:.3g} GB: made as it is"
        )
    return SizedProduct(geometry, steps)

