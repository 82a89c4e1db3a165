"""The imaging heuristics with numbers: pixel size, image size, primary beam, deconvolver, threshold."""

import math

import pytest
from aperture_contracts.enums import ImagingKind
from aperture_imaging import heuristics
from aperture_imaging.heuristics import (
    automask_parameters,
    cell_for_beam,
    choose_deconvolver,
    clean_threshold_jy,
    dynamic_range_correction,
    expected_beam_arcsec,
    fractional_bandwidth,
    imsize_for_pb_level,
    niter_cap,
    optimum_image_size,
    primary_beam_fwhm_arcsec,
    radius_at_pb_level_arcsec,
)


def test_primary_beam_of_a_12m_dish_at_230_ghz_is_about_25_arcsec():
    wavelength = 299_792_458.0 / 230e9
    assert primary_beam_fwhm_arcsec(230e9, 12.0) == pytest.approx(1.13 * wavelength / 12 * 206264.806, rel=1e-6)
    assert primary_beam_fwhm_arcsec(230e9, 12.0) == pytest.approx(25.3, abs=0.1)
    # A 7-m dish sees a wider field; a higher frequency a narrower one.
    assert primary_beam_fwhm_arcsec(230e9, 7.0) > primary_beam_fwhm_arcsec(230e9, 12.0)
    assert primary_beam_fwhm_arcsec(345e9, 12.0) == pytest.approx(primary_beam_fwhm_arcsec(230e9, 12.0) * 230 / 345)


def test_gaussian_primary_beam_falls_to_half_at_half_its_width_and_to_a_fifth_further_out():
    assert radius_at_pb_level_arcsec(25.0, 0.5) == pytest.approx(12.5)
    assert radius_at_pb_level_arcsec(25.0, 0.2) == pytest.approx(25.0 * 0.762, rel=1e-3)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        radius_at_pb_level_arcsec(25.0, 1.0)


@pytest.mark.parametrize(
    ("pixels", "optimum"),
    # What casatools.synthesisutils().getOptimumSize returns for these (checked against CASA in
    # test_imaging_steps.py): even, with no prime factor above 5.
    [(100, 100), (101, 108), (125, 128), (129, 144), (200, 200), (250, 250), (257, 270), (1000, 1000), (1, 2)],
)
def test_image_sizes_are_the_next_size_casa_transforms_fast(pixels: int, optimum: int):
    assert optimum_image_size(pixels) == optimum


@pytest.mark.parametrize("minor", [0.0123, 0.0456, 0.31, 1.30, 1.334, 2.0, 17.7])
def test_cell_gives_at_least_five_pixels_across_the_beam_minor_axis_with_two_significant_digits(minor: float):
    cell = cell_for_beam(minor)
    assert minor / cell >= 5
    assert minor / cell < 5 * 1.12  # rounding down to two digits coarsens by under 12 %
    digits = cell / 10 ** (math.floor(math.log10(cell)) - 1)
    assert digits == pytest.approx(round(digits), abs=1e-6)


def test_cell_for_the_simulated_beam_and_for_three_pixels_per_beam():
    assert cell_for_beam(1.30) == pytest.approx(0.26)
    assert cell_for_beam(1.30, pixels_per_beam=3) == pytest.approx(0.43)
    with pytest.raises(ValueError, match="positive"):
        cell_for_beam(0.0)


def test_image_covers_the_primary_beam_down_to_the_chosen_level():
    fwhm, cell = 25.3, 0.26
    size = imsize_for_pb_level(fwhm, 0.2, cell)
    assert size == optimum_image_size(size)
    assert size * cell >= 2 * radius_at_pb_level_arcsec(fwhm, 0.2)
    assert size == 150  # 38.6 arcsec / 0.26 arcsec -> 149 -> 150
    assert imsize_for_pb_level(fwhm, 0.5, cell) < size


def test_fractional_bandwidth_decides_between_multiscale_and_mtmfs():
    # The simulated MOUS: two band-6 spws 10 GHz apart, under 5 %.
    assert fractional_bandwidth(220.02e9, 230.92e9) == pytest.approx(0.0484, abs=1e-3)
    assert choose_deconvolver(ImagingKind.CONT, 0.0484) == heuristics.Deconvolver("multiscale", 1)
    # Band 3 with spws spread over 84-100 GHz: 17 %.
    assert fractional_bandwidth(84e9, 100e9) == pytest.approx(0.174, abs=1e-3)
    assert choose_deconvolver(ImagingKind.CONT, 0.174) == heuristics.Deconvolver("mtmfs", 2)
    assert choose_deconvolver(ImagingKind.MFS, 0.11).multiterm
    assert not choose_deconvolver(ImagingKind.MFS, 0.099).multiterm
    # Cube planes are narrow whatever the spw's span.
    assert choose_deconvolver(ImagingKind.CUBE, 0.2) == heuristics.Deconvolver("multiscale", 1)


def test_multiscale_scales_are_a_point_the_beam_and_three_beams_in_pixels():
    # A 1.5" beam in 0.3" pixels: 0, 5 and 15 pixels.
    assert heuristics.multiscale_scales(1.5, 0.3, [150, 150]) == [0, 5, 15]
    # A small image keeps only the scales up to a quarter of its side.
    assert heuristics.multiscale_scales(1.5, 0.3, [40, 48]) == [0, 5]
    assert heuristics.Deconvolver("multiscale", 1).multiscale and heuristics.Deconvolver("mtmfs", 2).multiscale
    assert not heuristics.Deconvolver("hogbom", 1).multiscale


def test_deconvolver_overrides_win():
    assert choose_deconvolver(ImagingKind.CONT, 0.02, "mtmfs") == heuristics.Deconvolver("mtmfs", 2)
    assert choose_deconvolver(ImagingKind.CONT, 0.3, "hogbom") == heuristics.Deconvolver("hogbom", 1)
    assert choose_deconvolver(ImagingKind.CONT, 0.3, None, 3) == heuristics.Deconvolver("mtmfs", 3)
    assert choose_deconvolver(ImagingKind.MFS, 0.02, None, 2) == heuristics.Deconvolver("mtmfs", 2)


def test_threshold_is_four_sigma_raised_only_for_bright_sources():
    sigma = 60e-6
    assert dynamic_range_correction(peak_jy=2e-3, sensitivity_jy=sigma) == 1.0  # dynamic range 33
    assert dynamic_range_correction(peak_jy=200 * sigma, sensitivity_jy=sigma) == 1.0
    assert dynamic_range_correction(peak_jy=1000 * sigma, sensitivity_jy=sigma) == pytest.approx(5.0)
    assert clean_threshold_jy(sigma) == pytest.approx(240e-6)
    assert clean_threshold_jy(sigma, 5.0) == pytest.approx(1.2e-3)
    with pytest.raises(ValueError, match="positive"):
        dynamic_range_correction(1.0, 0.0)


def test_expected_beam_follows_the_80th_percentile_baseline():
    wavelength = 299_792_458.0 / 230e9
    assert expected_beam_arcsec(230e9, 112.0) == pytest.approx(0.574 * wavelength / 112.0 * 206264.806, rel=1e-6)
    assert expected_beam_arcsec(230e9, 112.0) == pytest.approx(1.38, abs=0.01)
    # A uv taper convolves the beam with a Gaussian of its width.
    assert expected_beam_arcsec(230e9, 112.0, uvtaper_arcsec=1.5) == pytest.approx(math.hypot(1.38, 1.5), abs=0.01)


def test_iteration_cap_grows_with_planes_and_is_bounded():
    assert niter_cap(1) == heuristics.NITER_PER_PLANE
    assert niter_cap(64) == 64 * heuristics.NITER_PER_PLANE
    assert niter_cap(10_000) == heuristics.NITER_CAP


def test_automasking_parameters_follow_the_array():
    compact = automask_parameters(12.0, 105.0, cube=False)
    assert (compact.sidelobethreshold, compact.noisethreshold, compact.minbeamfrac) == (2.0, 4.25, 0.3)
    assert compact.negativethreshold == 0.0
    assert automask_parameters(12.0, 105.0, cube=True).negativethreshold > 0  # absorption in cubes
    assert automask_parameters(12.0, 1200.0, cube=False).sidelobethreshold == 3.0
    assert automask_parameters(7.0, 30.0, cube=False).sidelobethreshold == 1.25
