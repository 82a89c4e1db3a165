"""The joint moment mask and its mean spectrum, on synthetic cubes (numpy only)."""

import numpy as np
import pytest
from aperture_findcont.joint_mask import (
    MaskParameters,
    moment_images,
    primary_beam_gain,
    source_spectrum,
    spectrum_noise,
)

NPIX = 96
BEAM_FWHM_PIXELS = 5.0
BEAM_AREA = np.pi / (4 * np.log(2)) * BEAM_FWHM_PIXELS**2


def _smooth(image: np.ndarray, fwhm: float) -> np.ndarray:
    """Convolve with a Gaussian of `fwhm` pixels (through the FFT): noise correlated like a dirty image."""
    frequencies = np.fft.fftfreq(image.shape[0])
    u, v = np.meshgrid(frequencies, frequencies, indexing="ij")
    sigma = fwhm / (2 * np.sqrt(2 * np.log(2)))
    return np.real(np.fft.ifft2(np.fft.fft2(image) * np.exp(-2 * (np.pi * sigma) ** 2 * (u**2 + v**2))))


def _noise_cube(channels: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    cube = np.array([_smooth(rng.normal(0, 1, (NPIX, NPIX)), BEAM_FWHM_PIXELS) for _ in range(channels)])
    return cube / cube.std()


def _blob(centre: tuple[float, float], fwhm: float) -> np.ndarray:
    x, y = np.meshgrid(np.arange(NPIX), np.arange(NPIX), indexing="ij")
    return np.exp(-4 * np.log(2) * ((x - centre[0]) ** 2 + (y - centre[1]) ** 2) / fwhm**2)


def _flat_beam() -> np.ndarray:
    return np.ones((NPIX, NPIX))


def test_the_mask_covers_the_source_and_its_spectrum_shows_the_line_at_full_contrast():
    cube = _noise_cube(40, seed=1)
    source = _blob((40, 55), 8.0)
    line = np.zeros(40)
    line[15:25] = 6.0
    cube += source[None] * (2.0 + line)[:, None, None]

    found = source_spectrum(cube, _flat_beam(), BEAM_AREA)

    assert found.from_mask
    assert found.mask[40, 55] and found.mask[source > 0.5].mean() > 0.9
    assert found.mask[source < 0.01].mean() < 0.001
    inside, outside = found.spectrum[15:25].mean(), np.delete(found.spectrum, range(15, 25)).mean()
    # The mean over the mask is the source's mean weight there times its spectrum: line and continuum
    # keep their ratio, unlike a mean over the whole field.
    weight = source[found.mask].mean()
    assert weight > 0.4
    assert inside - outside == pytest.approx(6.0 * weight, abs=0.3)
    assert outside == pytest.approx(2.0 * weight, abs=0.2)


def test_a_line_without_continuum_is_found_by_the_peak_image():
    cube = _noise_cube(40, seed=2)
    cube[18:21] += 8.0 * _blob((30, 30), 6.0)[None]  # a narrow line: bright in moment 8, faint in moment 0

    found = source_spectrum(cube, _flat_beam(), BEAM_AREA)

    assert found.from_mask and found.mask[30, 30]
    assert np.argmax(found.spectrum) in (18, 19, 20)


def test_without_a_source_the_inner_primary_beam_is_averaged_instead():
    cube = _noise_cube(30, seed=3)
    beam = primary_beam_gain(NPIX, 1.0, [(NPIX / 2, NPIX / 2)], 60.0)

    found = source_spectrum(cube, beam, BEAM_AREA)

    assert not found.from_mask
    assert np.array_equal(found.mask, beam >= MaskParameters().fallback_primary_beam)
    assert np.abs(found.spectrum).max() < 1.0


def test_a_single_bright_pixel_is_too_small_to_be_a_source():
    cube = _noise_cube(30, seed=4)
    cube[10, 20, 20] += 50.0  # one pixel, one channel: not beam-shaped, so not a source

    found = source_spectrum(cube, _flat_beam(), BEAM_AREA)

    assert not found.from_mask


def test_the_mask_stays_inside_the_primary_beam():
    cube = _noise_cube(30, seed=5)
    cube += 5.0 * _blob((8, 8), 8.0)[None]  # bright, but where the primary beam is ~0
    beam = primary_beam_gain(NPIX, 1.0, [(NPIX / 2, NPIX / 2)], 40.0)

    found = source_spectrum(cube, beam, BEAM_AREA)

    assert not found.mask[8, 8]


def test_channels_without_data_are_left_out_of_the_moments_and_stay_nan_in_the_spectrum():
    cube = _noise_cube(10, seed=6)
    cube += 3.0 * _blob((48, 48), 8.0)[None]
    cube[0] = np.nan

    mean, peak = moment_images(cube)
    found = source_spectrum(cube, _flat_beam(), BEAM_AREA)

    assert np.isfinite(mean).all() and np.isfinite(peak).all()
    assert np.isnan(found.spectrum[0]) and np.isfinite(found.spectrum[1:]).all()


def test_the_primary_beam_is_half_at_half_its_width_and_a_mosaic_takes_the_best_pointing():
    beam = primary_beam_gain(101, 2.0, [(50, 50), (80, 50)], 20.0)

    assert beam[50, 50] == pytest.approx(1.0)
    assert beam[55, 50] == pytest.approx(0.5)  # 5 pixels of 2 units: half the 20-unit FWHM
    assert beam[80, 50] == pytest.approx(1.0)


def test_the_noise_of_the_mask_spectrum_is_measured_off_the_source_whatever_the_lines_do():
    # A bright source whose line covers half the channels: the spectrum's own scatter says nothing of
    # its noise, the mask's shifted copies do.
    cube = _noise_cube(40, seed=7)
    source = _blob((48, 48), 10.0)
    line = 8.0 * np.exp(-0.5 * ((np.arange(40) - 20) / 6.0) ** 2)
    cube += source[None] * (3.0 + line)[:, None, None]

    found = source_spectrum(cube, _flat_beam(), BEAM_AREA)
    # The truth: the scatter of the same mask's mean over many channels of noise alone.
    truth = float(np.std(_noise_cube(300, seed=8)[:, found.mask].mean(axis=1)))

    assert found.noise is not None and found.noise_copies >= 4
    assert found.noise == pytest.approx(truth, rel=0.15)
    # Far below a pixel's noise (the mask averages several beams), far below the spectrum's scatter.
    assert found.noise < 0.6 and found.noise < 0.5 * float(np.std(found.spectrum))


def test_a_mask_that_leaves_no_room_for_copies_gives_no_noise():
    cube = _noise_cube(10, seed=9)
    mask = np.ones((NPIX, NPIX), dtype=bool)
    mask[:4] = False

    noise, copies = spectrum_noise(cube, mask, BEAM_AREA, MaskParameters())

    assert noise is None and copies == 0
