"""The product-size mitigation cascade with numbers: each step in order, only as far as needed, overrides
respected, and a clear failure when nothing fits."""

import pytest
from aperture_contracts.imaging import ProductSizeLimits
from aperture_imaging.heuristics import cell_for_beam, imsize_for_pb_level
from aperture_imaging.product_size import (
    PB_LEVEL_STEPS,
    FixedByOverrides,
    ImageGeometry,
    fit_product_size,
)
from aperture_shared.errors import BadInput

PB_FWHM = 25.3  # arcsec: a 12-m dish at 230 GHz
BEAM_MINOR = 1.3  # arcsec
CELL = cell_for_beam(BEAM_MINOR)  # 0.26
FULL_FIELD = imsize_for_pb_level(PB_FWHM, 0.2, CELL)  # 150


def geometry(channels: int, binning: int = 1, imsize: int = FULL_FIELD, cell: float = CELL) -> ImageGeometry:
    return ImageGeometry(cell_arcsec=cell, imsize=(imsize, imsize), native_channels=channels,
                         channel_binning=binning, pb_level=0.2)


def limits(target: int, hard: int | None = None) -> ProductSizeLimits:
    return ProductSizeLimits(max_cube_bytes=target, max_cube_hard_bytes=hard or 2 * target)


def fit(start: ImageGeometry, target: int, hard: int | None = None, cube: bool = True, **fixed: bool):
    return fit_product_size(
        "the cube of SimGalaxy spw 0", start, beam_minor_arcsec=BEAM_MINOR, pb_fwhm_arcsec=PB_FWHM,
        limits=limits(target, hard), fixed=FixedByOverrides(**fixed), cube=cube,
    )


def test_estimated_size_is_four_bytes_per_pixel_and_output_channel():
    assert geometry(64).bytes == 4 * 150 * 150 * 64
    assert geometry(3840, binning=2).bytes == 4 * 150 * 150 * 1920
    assert geometry(1).bytes == 4 * 150 * 150


def test_a_product_within_the_limit_is_left_alone():
    start = geometry(64)
    sized = fit(start, target=start.bytes)
    assert sized.geometry == start
    assert sized.mitigation == []


def test_step_one_bins_a_fine_spw_by_two_and_stops_when_that_fits():
    start = geometry(3840)
    sized = fit(start, target=start.bytes // 2 + 1)
    assert sized.geometry == geometry(3840, binning=2)
    assert len(sized.mitigation) == 1
    assert sized.mitigation[0].startswith("binned channels by 2 (3840 -> 1920 channels)")
    assert "exceeds max_cube_bytes" in sized.mitigation[0]


def test_step_two_shrinks_the_field_to_the_first_primary_beam_level_that_fits():
    start = geometry(64)  # 64 channels: not a fine spw, so step 1 is skipped with its reason
    target = start.bytes // 2
    sized = fit(start, target=target)
    chosen = sized.geometry.pb_level
    assert 0.2 < chosen <= 0.7
    assert sized.geometry.bytes <= target
    assert sized.geometry.channel_binning == 1 and sized.geometry.cell_arcsec == CELL
    # The level just below the chosen one would not have fitted: the field is shrunk no more than needed.
    below = max(level for level in (0.2, *PB_LEVEL_STEPS) if level < chosen)
    assert 4 * imsize_for_pb_level(PB_FWHM, below, CELL) ** 2 * 64 > target
    assert sized.mitigation[0].startswith("did not bin channels: 64 channels are not a fine spw")
    assert sized.mitigation[1].startswith(f"shrank the field to primary-beam level {chosen:g} (from 0.2;")


def test_step_three_coarsens_to_three_pixels_per_beam_when_the_smallest_field_is_still_too_big():
    start = geometry(64)
    smallest_field = 4 * imsize_for_pb_level(PB_FWHM, 0.7, CELL) ** 2 * 64
    sized = fit(start, target=smallest_field - 1, hard=10 * smallest_field)
    assert sized.geometry.pb_level == 0.7
    assert sized.geometry.cell_arcsec == pytest.approx(cell_for_beam(BEAM_MINOR, 3))
    assert sized.geometry.imsize[0] == imsize_for_pb_level(PB_FWHM, 0.7, cell_for_beam(BEAM_MINOR, 3))
    assert [line.split(" ")[0] for line in sized.mitigation] == ["did", "shrank", "coarsened"]
    assert sized.geometry.bytes <= smallest_field - 1


def test_all_three_steps_in_order_for_a_fine_spw():
    start = geometry(3840)
    sized = fit(start, target=start.bytes // 40, hard=start.bytes)
    assert [line.split(" ")[0] for line in sized.mitigation[:3]] == ["binned", "shrank", "coarsened"]
    assert sized.geometry.channel_binning == 2 and sized.geometry.pb_level == 0.7


def test_over_the_target_but_under_the_hard_limit_is_made_and_says_so():
    start = geometry(64)
    sized = fit(start, target=1000, hard=start.bytes)
    assert sized.mitigation[-1].startswith("still ")
    assert "under the hard limit" in sized.mitigation[-1]


def test_nothing_fits_fails_with_the_sizes_and_the_limits():
    start = geometry(3840)
    with pytest.raises(BadInput) as failure:
        fit(start, target=1000, hard=2000)
    message = failure.value.message
    assert message.startswith("the cube of SimGalaxy spw 0 is too large to make:")
    assert "150 x 150 pixels x 3840 channel(s)" in message  # where it started
    assert "hard limit of 2e-06 GB" in message and "max_cube_hard_bytes 2e-06 GB" in message
    assert "binned channels by 2" in message and "coarsened the pixels" in message
    assert "overrides (channel_binning, imsize, cell_arcsec)" in message


def test_the_mous_limit_caps_the_hard_limit():
    start = geometry(64)
    tight = ProductSizeLimits(max_cube_bytes=1000, max_cube_hard_bytes=10**12, max_mous_bytes=2000)
    with pytest.raises(BadInput, match="max_mous_bytes 2e-06 GB"):
        fit_product_size("the cube", start, beam_minor_arcsec=BEAM_MINOR, pb_fwhm_arcsec=PB_FWHM, limits=tight,
                         cube=True)


def test_parameters_set_by_overrides_are_never_changed():
    start = geometry(3840, binning=1, imsize=400, cell=0.1)
    sized = fit(start, target=1000, hard=start.bytes, channel_binning=True, imsize=True, cell=True)
    assert sized.geometry == start
    assert sized.mitigation[:3] == [
        "did not bin channels: the channel binning is set by the job's overrides",
        "did not shrink the field: the image size is set by the job's overrides",
        "did not coarsen the pixels: the cell size is set by the job's overrides",
    ]


def test_a_continuum_image_is_never_binned():
    start = geometry(1, imsize=6000)
    sized = fit(start, target=start.bytes // 2, cube=False)
    assert sized.geometry.channel_binning == 1
    assert sized.mitigation[0].startswith("shrank the field")
