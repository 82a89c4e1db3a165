"""Imaging QA scores with numbers, the ALMA product names, and the job checks made before any download."""

from datetime import UTC, datetime

import pytest
from aperture_contracts.continuum import ContinuumCase, ContinuumRanges
from aperture_contracts.enums import ImagingKind
from aperture_contracts.imaging import Beam, ChannelChunk, ImageProduct, ImagingOverrides
from aperture_contracts.jobs import ImagingJob
from aperture_contracts.metadata import FieldInfo, MeasurementSetInfo, MousMetadata, SpectralWindow
from aperture_contracts.qa import QABand
from aperture_contracts.storage import ObjectRef
from aperture_imaging import imaging_qa
from aperture_imaging.handler import check_job
from aperture_imaging.image_statistics import peak_residuals_per_plane
from aperture_imaging.naming import (
    chunk_image_name,
    chunk_image_role,
    contsub_ms_name,
    fits_name,
    product_stem,
    safe_name,
)
from aperture_shared.errors import BadInput


@pytest.mark.parametrize(("ratio", "score"), [(0.8, 1.0), (1.0, 1.0), (2.0, 0.75), (3.0, 0.5), (5.0, 0.0), (9.0, 0.0)])
def test_rms_score_falls_linearly_from_one_at_the_theory_to_zero_at_five_times_it(ratio: float, score: float):
    result = imaging_qa.sensitivity_score(ratio * 60e-6, 60e-6, "SimGalaxy spw0 mfs")
    assert result.score == pytest.approx(score)
    assert result.metric.name == "rms_over_theoretical_sensitivity"
    assert result.metric.value == pytest.approx(ratio)


def test_beam_score_accepts_normal_deviations_and_falls_to_zero_at_a_factor_two():
    expected = 1.4
    assert imaging_qa.beam_score(Beam(major_arcsec=1.73, minor_arcsec=1.34, position_angle_deg=-89), expected,
                                 "x").score == 1.0
    twice = imaging_qa.beam_score(Beam(major_arcsec=2.8, minor_arcsec=2.8, position_angle_deg=0), expected, "x")
    assert twice.score == 0.0 and twice.band == QABand.ERROR
    between = imaging_qa.beam_score(Beam(major_arcsec=2.1, minor_arcsec=2.1, position_angle_deg=0), expected, "x")
    assert 0.0 < between.score < 1.0
    assert between.metric.value == pytest.approx(1.5)


def test_peak_residual_growth_finds_a_rise_above_the_lowest_so_far():
    assert imaging_qa.peak_residual_growth([[1.0, 0.5, 0.4], [2.0, 1.0]]) == 1.0
    assert imaging_qa.peak_residual_growth([[1.0, 0.5, 0.4], [1.0, 0.2, 0.6]]) == pytest.approx(3.0)
    assert imaging_qa.peak_residual_growth([]) == 1.0


def test_tclean_summary_is_read_per_plane():
    summary = {"summaryminor": {0: {0: {0: {"peakRes": [3e-4, 2e-4]}}, 1: {0: {"peakRes": [5e-4, 6e-4]}}}}}
    assert peak_residuals_per_plane(summary) == [[3e-4, 2e-4], [5e-4, 6e-4]]
    assert peak_residuals_per_plane({}) == []


def test_divergence_is_flagged_by_growth_and_by_tclean_stop_codes():
    assert imaging_qa.divergence_score(1.0, 2, "x").score == 1.0
    assert imaging_qa.divergence_score(2.05, 2, "x").score == pytest.approx(0.5)
    assert imaging_qa.divergence_score(3.5, 2, "x").score == 0.0
    diverged = imaging_qa.divergence_score(1.0, 5, "x")
    assert diverged.score == 0.0 and "diverged" in diverged.message


def test_clean_stopping_at_its_iteration_cap_is_below_standard():
    assert imaging_qa.clean_completion_score(2, "threshold", 59, "x").score == 1.0
    capped = imaging_qa.clean_completion_score(1, "iteration limit", 2000, "x")
    assert capped.band == QABand.BELOW_STANDARD or capped.band == QABand.WARNING
    assert "iteration limit" in capped.message


def test_continuum_scores_say_what_was_subtracted_and_what_was_not():
    done = imaging_qa.continuum_subtraction_score(0, 1, 44, 64, "SimGalaxy spw0")
    assert done.score == 1.0 and "order 1" in done.message and done.metric.value == pytest.approx(44 / 64)
    skipped = imaging_qa.continuum_subtraction_score(1, None, 0, 64, "SimGalaxy spw1")
    assert skipped.band == QABand.WARNING and "without continuum subtraction" in skipped.message


def test_products_are_named_the_alma_way():
    stem = product_stem("uid://A001/X2fa/X2dd", "NGC 2872", [19, 21, 23, 25], ImagingKind.CONT)
    assert stem == "uid___A001_X2fa_X2dd.NGC_2872_sci.spw19_21_23_25.cont.I"
    assert fits_name(stem, "pbcor", multiterm=True) == stem + ".tt0.pbcor.fits"
    assert fits_name(stem, "mask", multiterm=True) == stem + ".mask.fits"
    cube = product_stem("uid://A001/X2fa/X2dd", "NGC_2872", [25], ImagingKind.CUBE)
    assert fits_name(cube, "pb", multiterm=False) == "uid___A001_X2fa_X2dd.NGC_2872_sci.spw25.cube.I.pb.fits"
    assert safe_name("M 100 / core") == "M_100_core"
    assert contsub_ms_name("uid___A002_X1.ms", "NGC 2872", True) == "uid___A002_X1.NGC_2872.contsub.ms"
    assert contsub_ms_name("uid___A002_X1.ms", "NGC 2872", False) == "uid___A002_X1.NGC_2872.no_contsub.ms"
    # A chunk's images are intermediates named after their cube, its chunk and their role.
    chunk = chunk_image_name(cube, "residual", 0, 4)
    assert chunk == "uid___A001_X2fa_X2dd.NGC_2872_sci.spw25.cube.I.chunk1of4.residual.im.tar"
    assert chunk_image_role(f"mous/x/work/r1.imaging.cube_chunk.x.spw25.c1of4/{chunk}") == "residual"


def _job(kind: ImagingKind, spw_ids: list[int], target: str = "SimGalaxy", **overrides) -> ImagingJob:
    spws = [
        SpectralWindow(spw_id=spw, num_channels=64, ref_frequency_hz=230e9, centre_frequency_hz=230.5e9,
                       bandwidth_hz=1e9, channel_width_hz=15.625e6, min_frequency_hz=230e9, max_frequency_hz=231e9)
        for spw in (0, 1)
    ]
    info = MeasurementSetInfo(
        name="x.ms", observatory="ALMA", time_start=datetime(2025, 6, 1, tzinfo=UTC),
        time_end=datetime(2025, 6, 1, 1, tzinfo=UTC), exposure_s=810, num_rows=1, num_antennas=25,
        num_baselines=300, antennas=[], spectral_windows=spws, correlations=["XX", "YY"], intents=[],
        fields=[FieldInfo(field_id=2, name="SimGalaxy", ra_deg=239.6, dec_deg=-24.2, is_science_target=True)],
        flagged_fraction=0.0, data_columns=["DATA"], has_calibrator_intents=False,
    )
    return ImagingJob(
        mous_id="uid://A001/X1/X1", job_id="r1.imaging.mfs.simgalaxy.spw0", attempt=1,
        output_prefix="mous/uid___A001_X1_X1/work/r1.imaging/", products_prefix="mous/uid___A001_X1_X1/products/",
        time_limit_s=600, created_at=datetime.now(UTC), kind=kind, target=target, spw_ids=spw_ids,
        measurement_sets=[ObjectRef(key="mous/x.ms.tar", sha256="0" * 64, size=1)],
        continuum=[ContinuumRanges(target="SimGalaxy", spw_id=0, ranges=[], channel_ranges="0~27",
                                   case=ContinuumCase.LINES_AND_CONTINUUM, source="findcont", continuum_fraction=0.4)],
        metadata=MousMetadata(measurement_sets=[info], science_targets=["SimGalaxy"], science_spw_ids=[0, 1],
                              representative_spw=None, calibrated=True),
        overrides=ImagingOverrides(**overrides),
    )


def test_a_sound_job_passes_its_checks():
    assert check_job(_job(ImagingKind.CONT, [0, 1])) == {0: 64, 1: 64}


HALF = ChannelChunk(index=0, count=2, first_channel=0, num_channels=32, total_channels=64)


def _chunk_image(spw: int) -> ImageProduct:
    ref = ObjectRef(key="mous/x/work/c.im.tar", sha256="0" * 64, size=1)
    return ImageProduct(
        kind=ImagingKind.CUBE_CHUNK, target="SimGalaxy", spw_ids=[spw], pbcor=ref, image=ref, pb=ref,
        beam=Beam(major_arcsec=1, minor_arcsec=1, position_angle_deg=0), cell_arcsec=0.2, imsize=[10, 10],
        num_channels=32, frequency_min_hz=1, frequency_max_hz=2, rms_jy=1, peak_jy=1, theoretical_sensitivity_jy=1,
        threshold_jy=1,
    )


def _chunking(kind: ImagingKind, **fields) -> ImagingJob:
    return _job(kind, [0]).model_copy(update=fields)


def test_sound_chunk_and_join_jobs_pass_their_checks():
    assert check_job(_chunking(ImagingKind.CUBE_CHUNK, chunk=HALF)) == {0: 64, 1: 64}
    assert check_job(_chunking(ImagingKind.CUBE, chunks=[_chunk_image(0)], measurement_sets=[])) == {0: 64, 1: 64}


@pytest.mark.parametrize(
    ("job", "problem"),
    [
        (_chunking(ImagingKind.CUBE_CHUNK), "a cube_chunk job must name a channel chunk"),
        (_chunking(ImagingKind.CUBE, chunk=HALF), "a cube job cannot have a channel chunk"),
        (_chunking(ImagingKind.CUBE_CHUNK, chunk=HALF.model_copy(update={"total_channels": 128})),
         "does not fit spw 0, which has 64 channels"),
        (_chunking(ImagingKind.MFS, chunks=[_chunk_image(0)]), "only a cube job joins chunk images"),
        (_chunking(ImagingKind.CUBE, chunks=[_chunk_image(1)]), "can only join its own chunks, not cube_chunk"),
        (_chunking(ImagingKind.CUBE, measurement_sets=[]), "the cube job names no Measurement Set"),
    ],
)
def test_a_chunk_or_join_job_that_does_not_fit_fails_before_any_download(job: ImagingJob, problem: str):
    with pytest.raises(BadInput) as failure:
        check_job(job)
    assert problem in failure.value.message


@pytest.mark.parametrize(
    ("job", "problem"),
    [
        (_job(ImagingKind.MFS, [0, 1]), "a mfs image is made of one spw, the job names 2"),
        (_job(ImagingKind.CUBE, [3]), "spw(s) [3] are not spectral windows of this MOUS"),
        (_job(ImagingKind.MFS, [0], target="NGC 253"), "target 'NGC 253' is not a field of this MOUS"),
        (_job(ImagingKind.CONT, [0, 0]), "names a spw more than once"),
        (_job(ImagingKind.CONT, [0, 1], deconvolver="clean"), "'clean' is not one of hogbom, clark, multiscale"),
        (_job(ImagingKind.MFS, [0], imsize=[0, 128]), "must be two pixel counts of at least 2"),
    ],
)
def test_a_job_that_does_not_fit_its_mous_fails_before_any_download(job: ImagingJob, problem: str):
    with pytest.raises(BadInput) as failure:
        check_job(job)
    assert problem in failure.value.message
