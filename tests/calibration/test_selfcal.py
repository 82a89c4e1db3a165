"""Self-calibration on real CASA and a real object store, through the calibration handler as the worker
runs it, checked against the simulation's truth:

- the 'selfcal' scenario (a 0.4 Jy target alone, no calibrators, antenna phases of ~60 deg rms per
  baseline that vary within scans): self-calibrated, its image's peak/rms improved many times, its peak
  brought to the true flux, its phases to the injected gains, every round and the tables recorded;
- the default scenario restored by the archive (a faint galaxy on calibrated data): tried, nothing gained,
  nothing changed: the MS passes through as the same object.

Each MOUS goes through the handler once per module (about a minute of CASA for the first)."""

import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aperture_calibration.handler import calibrate
from aperture_calibration.plan import CalibrationOptions, SelfCalibrationOptions
from aperture_contracts.events import CalibrationMode, CalibrationResult
from aperture_contracts.jobs import CalibrationJob
from aperture_contracts.metadata import MousMetadata
from aperture_contracts.qa import QABand
from aperture_contracts.selfcal import SelfCalibrationOutcome
from aperture_ingest.measurement_set import describe_measurement_set, merge_metadata
from aperture_shared.settings import CasaSettings, CommonSettings
from aperture_shared.storage import ObjectStore
from aperture_shared.worker import JobContext, JobOutcome
from aperture_testdata.scenarios import INTENT_TARGET
from calibration_checks import correction_error

pytestmark = [pytest.mark.integration, pytest.mark.casa, pytest.mark.slow]

MOUS = "uid://A001/X1/X5"
MOUS_KEY = "uid___A001_X1_X5"


@dataclass
class HandlerRun:
    job: CalibrationJob
    outcome: JobOutcome
    context: JobContext
    stored_before: list[str]
    result: CalibrationResult


@pytest.fixture(scope="module")
def module_store(s3_available):
    store = ObjectStore(CommonSettings(s3_bucket=f"test-{uuid.uuid4().hex[:12]}"))
    store.ensure_bucket()
    yield store
    store.delete_prefix("")


def run_handler(store: ObjectStore, ms_paths: list[Path], metadata: MousMetadata, scratch: Path, name: str,
                options: CalibrationOptions | None = None) -> HandlerRun:  # fmt: skip
    """Store the MSs as ingest does and run the calibration handler on them, with CASA in child processes."""
    (scratch / "upload").mkdir(parents=True)
    work = f"mous/{MOUS_KEY}/work/{name}"
    upload = scratch / "upload"
    refs = [store.put_directory(f"{work}.ingest/measurement_sets/{ms.name}.tar", ms, upload) for ms in ms_paths]
    job = CalibrationJob(
        mous_id=MOUS, job_id=f"{name}.calibration", attempt=1, output_prefix=f"{work}.calibration/",
        products_prefix=f"mous/{MOUS_KEY}/products/", time_limit_s=900, created_at=datetime.now(UTC),
        measurement_sets=refs, metadata=metadata,
    )  # fmt: skip
    (scratch / "job").mkdir()
    context = JobContext(
        job=job, store=store, scratch=scratch / "job", casa_settings=CasaSettings(), deadline=time.monotonic() + 900
    )
    before = sorted(store.list(""))
    outcome = asyncio.run(calibrate(job, context, options))
    assert isinstance(outcome.result, CalibrationResult)
    return HandlerRun(job=job, outcome=outcome, context=context, stored_before=before, result=outcome.result)


@pytest.fixture(scope="module")
def selfcalibrated(selfcal_mous, module_store, tmp_path_factory) -> HandlerRun:
    metadata = merge_metadata([describe_measurement_set(selfcal_mous.ms)], calibrated=False)
    return run_handler(module_store, [selfcal_mous.ms], metadata, tmp_path_factory.mktemp("selfcal-job"), "r1")


def true_peak_jy(selfcal_mous) -> float:
    """The brightest component's flux at the spw's centre (the quick image's frequency)."""
    target = selfcal_mous.truth.fields_with_intent(INTENT_TARGET)[0]
    core = max(target.components, key=lambda c: c.flux_jy)
    (spw,) = selfcal_mous.truth.spws
    return core.flux_jy * (spw.centre_frequency_hz / core.reference_frequency_hz) ** core.spectral_index


def test_a_bright_target_without_calibrators_is_self_calibrated_and_its_image_improves_many_times(
    selfcal_mous, selfcalibrated
):
    result = selfcalibrated.result
    # No calibrators: nothing but the target's own phases could be calibrated, and the result says so.
    assert result.mode is CalibrationMode.UNCALIBRATED and result.flux_scale_known is False
    (record,) = result.self_calibration
    assert record.target == "SimQuasar" and record.outcome is SelfCalibrationOutcome.APPLIED
    assert record.data.startswith("uncalibrated DATA")
    assert record.initial is not None and record.final is not None and record.improvement is not None
    assert record.improvement >= 10, record.reason
    assert record.final.snr == pytest.approx(record.initial.snr * record.improvement, rel=1e-3)
    # The phase errors scatter half the target's flux out of its peak; self-calibration brings it back.
    truth = true_peak_jy(selfcal_mous)
    assert record.initial.peak_jy < 0.75 * truth
    assert record.final.peak_jy == pytest.approx(truth, rel=0.03)
    assert "SimQuasar: self-calibrated" in result.summary and "the flux scale stays unknown" in result.summary


def test_every_round_is_recorded_and_each_is_judged_against_the_last_kept_image(selfcalibrated):
    (record,) = selfcalibrated.result.self_calibration
    rounds = record.rounds
    assert [r.number for r in rounds] == list(range(1, len(rounds) + 1))
    assert rounds[0].solint == "inf_EB" and rounds[0].gaintype == "G" and rounds[0].kept
    phase_rounds = [r for r in rounds if r.calmode == "p"]
    assert len(phase_rounds) >= 3
    assert all(a.solint_s > b.solint_s for a, b in zip(phase_rounds, phase_rounds[1:], strict=False))
    best = record.initial
    for index, r in enumerate(rounds):
        assert r.before == best, f"round {r.number} judged against another image than the last kept one"
        assert r.expected_solution_snr >= 3.0
        # The rule is conservative: the image's peak/rms undercounts the SNR while phases are wrong.
        assert r.median_solution_snr is not None and r.median_solution_snr >= r.expected_solution_snr
        if r.kept:
            assert r.after is not None and r.table is not None
            assert r.after.snr >= 1.02 * r.before.snr and r.after.snr - r.before.snr >= 3
            best = r.after
        elif r.calmode == "p":
            assert all(later.calmode == "ap" for later in rounds[index + 1 :]), "a rejected phase round ends them"
    assert record.final == best
    kept = [r for r in rounds if r.kept]
    last_phase = [r for r in kept if r.calmode == "p"][-1]
    expected_tables = [rounds[0].table, *([last_phase.table] if last_phase is not rounds[0] else [])]
    expected_tables += [r.table for r in kept if r.calmode == "ap"]
    assert record.tables == expected_tables


def test_the_self_calibrated_ms_is_stored_with_its_tables_and_its_phases_match_the_injected_gains(
    selfcal_mous, selfcalibrated, module_store, tmp_path
):
    run = selfcalibrated
    (record,) = run.result.self_calibration
    (stored,) = run.result.measurement_sets
    assert stored.key == f"{run.job.output_prefix}measurement_sets/{selfcal_mous.ms.name}.tar"
    assert [t.key.rsplit("/", 1)[1] for t in run.result.tables] == [f"{name}.tar" for name in record.tables]
    assert set(run.outcome.outputs) == {stored, *run.result.tables}
    assert all(module_store.exists(ref.key) for ref in run.outcome.outputs)

    downloaded = module_store.get_directory(stored, tmp_path)
    assert describe_measurement_set(downloaded).data_columns == ["DATA"]
    target = record.target
    raw = correction_error(selfcal_mous.ms, selfcal_mous.ms, target, selfcal_mous.truth.gains)
    corrected = correction_error(selfcal_mous.ms, downloaded, target, selfcal_mous.truth.gains)
    # Before: the injected baseline phases themselves; after: what the solutions left of them.
    assert raw.phase_rms_deg > 40
    assert corrected.phase_rms_deg < 10, f"{raw.phase_rms_deg:.1f} -> {corrected.phase_rms_deg:.1f} deg"
    # Normalised amplitudes: the flux scale is the data's own (amplitude errors of 5 % average out).
    assert corrected.median_amplitude == pytest.approx(1.0, abs=0.05)


def test_the_self_calibration_is_scored_and_every_casa_task_recorded(selfcalibrated):
    run = selfcalibrated
    (score,) = [q for q in run.outcome.qa if q.metric.name == "selfcal_improvement"]
    (record,) = run.result.self_calibration
    assert score.score == 1.0 and score.metric.value == record.improvement
    assert score.applies_to == f"{record.measurement_set} SimQuasar"
    # The MS still has no calibrators, and QA keeps saying so.
    assert {q.message for q in run.outcome.qa if q.band is QABand.ERROR} == {"no flux calibrator: flux scale unknown"}
    tasks = [call.task for call in run.context.casa_calls]
    assert tasks[:3] == ["flagdata", "mstransform", "tclean"]
    assert tasks.count("tclean") == len(record.rounds) + 1
    assert tasks.count("gaincal") == len(record.rounds)
    assert tasks[-3:] == ["clearcal", "applycal", "split"]
    final_apply = run.context.casa_calls[-2].parameters
    assert [Path(t).name for t in final_apply["gaintable"]] == record.tables
    assert final_apply["applymode"] == "calonly" and final_apply["calwt"] is False


def test_a_faint_target_on_restored_data_gains_nothing_and_its_ms_passes_through_unchanged(
    restored_mous, module_store, tmp_path
):
    # The default scenario as the archive restores it: a galaxy of a few mJy, calibrated. Its quick image
    # allows a try over the whole observation, which cannot improve data whose phases are right already.
    paths = [Path(path) for path in restored_mous.measurement_sets]
    run = run_handler(module_store, paths, restored_mous.metadata, tmp_path, "r2")

    result = run.result
    assert result.mode is CalibrationMode.RESTORED and result.flux_scale_known
    (record,) = result.self_calibration
    assert record.target == "SimGalaxy"
    assert record.outcome is not SelfCalibrationOutcome.APPLIED, record.model_dump_json(indent=1)
    assert result.measurement_sets == run.job.measurement_sets
    assert result.tables == [] and run.outcome.outputs == []
    assert sorted(module_store.list("")) == run.stored_before
    assert record.final == record.initial and record.tables == []
    assert all(not r.kept for r in record.rounds) and len(record.rounds) <= 1
    assert record.reason.startswith(("not attempted: SNR too low", "attempted, nothing kept: stopped at inf_EB"))
    scores = {q.metric.name: q for q in run.outcome.qa}
    assert scores["restored_measurement_sets"].score == 1.0
    assert scores["selfcal_improvement"].band is QABand.GOOD
    assert "SimGalaxy: self-calibration" in result.summary
    # Nothing was applied to the MS itself: the rounds ran on a work copy, and no clearcal or split followed.
    tasks = {call.task for call in run.context.casa_calls}
    assert tasks <= {"flagdata", "mstransform", "tclean", "gaincal", "applycal"}


def test_a_quick_image_over_the_pixel_limit_is_not_attempted_and_nothing_is_imaged(
    restored_mous, module_store, tmp_path
):
    # What long baselines do to the quick image (~10,000 pixels out to the primary beam's 0.2 level on ALMA's
    # widest configuration), here by lowering the limit below the galaxy's ~160 pixels.
    paths = [Path(path) for path in restored_mous.measurement_sets]
    options = CalibrationOptions(self_calibration=SelfCalibrationOptions(max_image_pixels=64))
    run = run_handler(module_store, paths, restored_mous.metadata, tmp_path, "r3", options)

    (record,) = run.result.self_calibration
    assert record.outcome is SelfCalibrationOutcome.NOT_ATTEMPTED
    assert record.reason.startswith("not attempted: the quick image would be "), record.reason
    assert "over the 64 allowed (APERTURE_SELFCAL_MAX_IMAGE_PIXELS)" in record.reason
    assert "tclean" not in {call.task for call in run.context.casa_calls}
    assert run.result.measurement_sets == run.job.measurement_sets
