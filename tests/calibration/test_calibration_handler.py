"""The handler's decisions that need no CASA and no download: the restore path and MSs without
calibrators pass through untouched (a store that refuses every call proves nothing is fetched or
stored), and inconsistent jobs are refused with a reason."""

from datetime import UTC, datetime
from pathlib import Path

import pytest
from aperture_calibration.handler import calibrate, pair_measurement_sets
from aperture_calibration.plan import CalibrationOptions, SelfCalibrationOptions
from aperture_contracts.events import CalibrationMode
from aperture_contracts.flux import FluxModel
from aperture_contracts.jobs import CalibrationJob
from aperture_contracts.qa import QABand
from aperture_contracts.storage import ObjectRef
from aperture_shared.errors import BadInput, JobError
from aperture_shared.settings import CasaSettings
from aperture_shared.worker import JobContext
from support.measurement_set_infos import alma_like, field, metadata, ms_info

PREFIX = "mous/uid___A001_X1_X1/work/r1.ingest/measurement_sets/"


class RefusingStore:
    """Any storage call fails the test: pass-through paths must neither fetch nor store anything."""

    def __getattr__(self, name: str):
        raise AssertionError(f"the handler used the object store ({name}) on a pass-through path")


def ref(name: str) -> ObjectRef:
    return ObjectRef(key=f"{PREFIX}{name}.tar", sha256="a" * 64, size=10, content_type="application/x-tar")


def job(*infos, calibrated: bool = False, refs: list[ObjectRef] | None = None, flux_models=()) -> CalibrationJob:
    return CalibrationJob(
        mous_id="uid://A001/X1/X1", job_id="r1.calibration", attempt=1,
        output_prefix="mous/uid___A001_X1_X1/work/r1.calibration/",
        products_prefix="mous/uid___A001_X1_X1/products/", time_limit_s=600, created_at=datetime.now(UTC),
        measurement_sets=refs or [ref(info.name) for info in infos], metadata=metadata(*infos, calibrated=calibrated),
        flux_models=list(flux_models),
    )


def context(job: CalibrationJob, tmp_path: Path) -> JobContext:
    return JobContext(job=job, store=RefusingStore(), scratch=tmp_path, casa_settings=CasaSettings())  # type: ignore[arg-type]


# Self-calibration switched off (APERTURE_SELFCAL_ENABLED=false): with it on, these paths fetch the MS to
# image its targets (test_selfcal.py).
NO_SELFCAL = CalibrationOptions(self_calibration=SelfCalibrationOptions(enabled=False))


async def test_a_restored_mous_passes_through_with_the_same_objects_and_says_its_calibration_is_the_archives(
    tmp_path,
):
    restored = job(alma_like("a.ms"), alma_like("b.ms"), calibrated=True)

    outcome = await calibrate(restored, context(restored, tmp_path), NO_SELFCAL)

    assert outcome.result.mode is CalibrationMode.RESTORED
    assert outcome.result.flux_scale_known
    assert outcome.result.measurement_sets == restored.measurement_sets
    assert outcome.result.tables == [] and outcome.outputs == []
    (score,) = outcome.qa
    assert score.score == 1.0 and "archive's calibration tables" in score.message
    assert list(tmp_path.iterdir()) == []


async def test_an_ms_without_calibrator_intents_or_corrected_data_passes_through_uncalibrated_and_says_so(tmp_path):
    vla = ms_info([field(0, "J1008+0730", [])], name="day2.ms")
    uncalibrated = job(vla)

    outcome = await calibrate(uncalibrated, context(uncalibrated, tmp_path), NO_SELFCAL)

    assert outcome.result.mode is CalibrationMode.UNCALIBRATED
    assert outcome.result.flux_scale_known is False
    assert outcome.result.measurement_sets == uncalibrated.measurement_sets
    assert "passes through uncalibrated" in outcome.result.summary
    assert {s.message: s.band for s in outcome.qa} == {
        "no flux calibrator: flux scale unknown": QABand.ERROR,
        "no bandpass calibrator": QABand.WARNING,
        "no phase calibrator": QABand.WARNING,
    }
    assert outcome.outputs == [] and outcome.result.self_calibration == []


async def test_with_self_calibration_on_an_ms_without_calibrators_is_fetched_to_image_its_target(tmp_path):
    uncalibrated = job(ms_info([field(0, "J1008+0730", [])], name="day2.ms"))

    with pytest.raises(AssertionError, match=r"used the object store \(get_directory\)"):
        await calibrate(uncalibrated, context(uncalibrated, tmp_path))


async def test_a_flux_model_for_a_field_that_is_no_calibrator_is_refused_before_any_work(tmp_path):
    typo = job(alma_like(), flux_models=[FluxModel(field="J1517-242", flux_jy=2.5, reference_frequency_hz=225e9)])

    with pytest.raises(BadInput, match="flux_models names J1517-242, which is not a calibrator"):
        await calibrate(typo, context(typo, tmp_path))


async def test_two_flux_models_for_one_field_are_refused(tmp_path):
    model = FluxModel(field="J1517-2422", flux_jy=2.5, reference_frequency_hz=225e9)
    twice = job(alma_like(), flux_models=[model, model])

    with pytest.raises(BadInput, match="more than one model for J1517-2422"):
        await calibrate(twice, context(twice, tmp_path))


def test_stored_measurement_sets_are_paired_with_their_descriptions_by_name_then_by_order():
    a, b = alma_like("a.ms"), alma_like("b.ms")
    by_name = job(a, b, refs=[ref("b.ms"), ref("a.ms")])
    assert [(r.key.rsplit("/", 1)[1], info.name) for r, info in pair_measurement_sets(by_name)] == [
        ("b.ms.tar", "b.ms"), ("a.ms.tar", "a.ms")
    ]
    by_order = job(a, b, refs=[ref("x"), ref("y")])
    assert [info.name for _, info in pair_measurement_sets(by_order)] == ["a.ms", "b.ms"]
    inconsistent = job(a, b, refs=[ref("x")])
    with pytest.raises(JobError, match="names 1 Measurement Sets but its metadata describes 2"):
        pair_measurement_sets(inconsistent)
