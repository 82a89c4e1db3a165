"""What the handler decides without CASA: the QA score of each case, product names, the spw name used to
match an operator's cont.dat."""

from datetime import UTC, datetime

import pytest
from aperture_contracts.continuum import ContinuumCase, ContinuumRanges, FrequencyRange
from aperture_contracts.jobs import FindcontJob
from aperture_contracts.metadata import MousMetadata
from aperture_contracts.qa import QABand
from aperture_contracts.storage import ObjectRef
from aperture_findcont.handler import continuum_score, product_stem, spw_name
from aperture_findcont.steps import FindcontStepResult, ImagingRecord


def _step(case: ContinuumCase, fraction: float, source: str = "findcont", line_channels: int = 0) -> FindcontStepResult:
    return FindcontStepResult(
        continuum=ContinuumRanges(
            target="SimGalaxy", spw_id=1, ranges=[FrequencyRange(low_hz=220.0e9, high_hz=220.2e9)],
            channel_ranges="0~12", case=case, source=source, continuum_fraction=fraction,
        ),
        cont_dat="cont.dat", plot="findcont.png", record="findcont.json", spw_name="BB_2", notes=["a note"],
        lines=[], noise_jy=1e-4, mask_pixels=100, mask_from_emission=True, finder_case=case,
        finder_line_channels_selected=line_channels,
        imaging=ImagingRecord(
            npix=116, cell_arcsec=0.33, primary_beam_fwhm_arcsec=25.3, pointings=1, channels=64, rows=8100,
            measurement_sets=["x.ms"], seconds=0.2,
        ),
        finding_seconds=0.1,
    )


@pytest.mark.parametrize(
    ("case", "fraction", "band"),
    [
        (ContinuumCase.LINES_AND_CONTINUUM, 0.7, QABand.GOOD),
        (ContinuumCase.LINES_AND_CONTINUUM, 0.2, QABand.WARNING),  # one broad line leaving little
        (ContinuumCase.ALL_CONTINUUM, 1.0, QABand.WARNING),
        (ContinuumCase.NOISY, 1.0, QABand.WARNING),
        (ContinuumCase.LINE_FOREST, 0.15, QABand.WARNING),
        (ContinuumCase.NO_CONTINUUM, 0.0, QABand.ERROR),
    ],
)
def test_each_case_gets_its_qa_band_with_the_continuum_fraction_as_metric(case, fraction, band):
    score = continuum_score(_step(case, fraction))

    assert score.band is band
    assert score.metric.name == "continuum_fraction" and score.metric.value == fraction
    assert score.applies_to == "SimGalaxy spw 1"
    assert f"{fraction:.0%}" in score.message and "a note" in score.message


def test_operator_ranges_are_good_unless_they_take_in_what_findcont_calls_line():
    clean = continuum_score(_step(ContinuumCase.LINES_AND_CONTINUUM, 0.6, source="operator"))
    overriding = continuum_score(_step(ContinuumCase.LINES_AND_CONTINUUM, 0.9, "operator", line_channels=7))

    assert clean.band is QABand.GOOD and "operator" in clean.message
    assert overriding.band is QABand.BELOW_STANDARD and "7 channel(s)" in overriding.message


def _job(target: str) -> FindcontJob:
    metadata = MousMetadata.model_validate(
        {
            "measurement_sets": [], "science_targets": [target], "science_spw_ids": [1],
            "representative_spw": None, "calibrated": True,
        }
    )
    return FindcontJob(
        mous_id="uid://A001/X3a1/X7", job_id="r1.findcont.x.spw1", attempt=1, output_prefix="w/", products_prefix="p/",
        time_limit_s=60, created_at=datetime.now(UTC), target=target, spw_id=1, metadata=metadata,
        measurement_sets=[ObjectRef(key="m.tar", sha256="0" * 64, size=1)],
    )


def test_products_are_named_like_the_alma_pipelines_with_unsafe_characters_replaced():
    assert product_stem(_job("NGC 2872/north")) == "uid___A001_X3a1_X7.NGC_2872_north_sci.spw1"


def test_without_metadata_for_the_spw_no_name_is_used_to_match_cont_dat():
    assert spw_name(_job("SimGalaxy")) is None
