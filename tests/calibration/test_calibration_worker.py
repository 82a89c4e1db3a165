"""The calibration worker as a real process on real RabbitMQ, S3 and CASA, driven by job messages as the
coordinator sends them: an uncalibrated simulated MOUS calibrated end to end (its faint target not
self-calibrated), a restored MOUS passed through, and real VLA MSs without intents (passed through
uncalibrated, or delivered calibrated; too little signal in their raw phases to self-calibrate)."""

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from aperture_contracts import topology
from aperture_contracts.enums import Stage
from aperture_contracts.events import CalibrationMode
from aperture_contracts.jobs import CalibrationJob
from aperture_contracts.metadata import MousMetadata
from aperture_contracts.qa import QABand
from aperture_contracts.selfcal import SelfCalibrationOutcome
from aperture_contracts.storage import ObjectRef
from aperture_ingest.measurement_set import describe_measurement_set, merge_metadata
from aperture_shared.messaging import Broker
from aperture_shared.storage import ObjectStore
from aperture_shared.worker import completion_key
from aperture_testdata.measure import phase_scatter_deg
from aperture_testdata.scenarios import INTENT_PHASE
from support.events import EventCollector
from support.processes import stage_worker

pytestmark = [pytest.mark.integration, pytest.mark.casa, pytest.mark.slow]

MOUS = "uid://A001/X1/X2"
MOUS_KEY = "uid___A001_X1_X2"
INGEST_PREFIX = f"mous/{MOUS_KEY}/work/r1.ingest/"










@pytest.fixture
def worker(env, tmp_path):
    """The worker as deployed: self-calibration on."""
    process = stage_worker("calibration", env, tmp_path / "logs").start()
    yield process
    process.stop()


@pytest.fixture
def worker_without_selfcal(env, tmp_path):
    process = stage_worker("calibration", env, tmp_path / "logs", APERTURE_SELFCAL_ENABLED="false").start()
    yield process
    process.stop()


def _store_as_ingest_does(store: ObjectStore, ms: Path, tmp_path: Path) -> ObjectRef:
    scratch = tmp_path / "upload"
    scratch.mkdir(exist_ok=True)
    return store.put_directory(f"{INGEST_PREFIX}measurement_sets/{ms.name}.tar", ms, scratch)


def _job(refs: list[ObjectRef], metadata: MousMetadata, job_id: str = "r1.calibration", **extra) -> CalibrationJob:
    return CalibrationJob(
        mous_id=MOUS, job_id=job_id, attempt=1, output_prefix=f"mous/{MOUS_KEY}/work/{job_id}/",
        products_prefix=f"mous/{MOUS_KEY}/products/", time_limit_s=600, created_at=datetime.now(UTC),
        measurement_sets=refs, metadata=metadata, **extra,
    )


async def _dispatch(broker: Broker, job: CalibrationJob) -> None:
    await broker.publish_model(
        topology.JOBS_EXCHANGE, Stage.CALIBRATION.value, job, message_id=f"{job.job_id}:{job.attempt}"
    )


async def _result(events: EventCollector, job: CalibrationJob, timeout: float = 180.0):
    done = await events.wait_for(
        lambda e: e.job_id == job.job_id and e.event_type in ("job.succeeded", "job.failed"), timeout=timeout,
        what=f"the result of {job.job_id}",
    )
    assert done.event_type == "job.succeeded", f"{done.error_class}: {done.message}\n{done.detail}"
    return done


async def test_an_uncalibrated_mous_is_calibrated_end_to_end_and_its_calibrated_ms_and_tables_are_stored(
    broker, events, worker, store, uncalibrated_mous, tmp_path
):
    ms = uncalibrated_mous.ms
    metadata = merge_metadata([describe_measurement_set(ms)], calibrated=False)
    job = _job([_store_as_ingest_does(store, ms, tmp_path)], metadata)

    await _dispatch(broker, job)
    done = await _result(events, job)

    result = done.result
    assert result.mode is CalibrationMode.CALIBRATED
    # No flux model in the job and none in CASA for this quasar: the flux scale is relative, and QA says so.
    assert result.flux_scale_known is False
    flux_calibrator = "J1517-2422"
    (relative,) = [q for q in done.qa if q.message.startswith(f"flux calibrator {flux_calibrator}")]
    assert relative.message == f"flux calibrator {flux_calibrator} has no flux model: flux scale relative"
    assert relative.band is QABand.WARNING
    # Every other score is green on this data.
    assert all(q.band is QABand.GOOD for q in done.qa if q is not relative), [q.message for q in done.qa]
    assert {q.metric.name for q in done.qa} >= {
        "flagged_fraction", "median_solution_snr", "flagged_solution_fraction", "phase_scatter_after_deg",
    }  # fmt: skip
    # The antennas' gains were compared and none is an outlier: nothing flagged beyond the deterministic.
    (antennas,) = [q for q in done.qa if q.message.startswith("no antenna's gains are outliers (25 compared)")]
    assert antennas.score == 1.0
    assert not any("GAIN_OUTLIER" in str(call.parameters.get("inpfile")) for call in done.casa_calls)
    # The calibrated MS replaces the ingested one; the four applied tables are stored beside it.
    (calibrated_ref,) = result.measurement_sets
    assert calibrated_ref.key == f"{job.output_prefix}measurement_sets/{ms.name}.tar"
    assert [t.key.rsplit("/", 1)[1] for t in result.tables] == [
        f"{ms.name}.{kind}.tar" for kind in ("bandpass.bcal", "phase_int.gcal", "phase_inf.gcal", "flux_inf.gcal")
    ]
    assert set(done.outputs) == {calibrated_ref, *result.tables}
    tasks = [call.task for call in done.casa_calls]
    selfcal_start = tasks.index("mstransform")  # the calibration, then self-calibration's step
    assert tasks[:selfcal_start].count("applycal") == 3
    # The galaxy is faint and its phases are calibrated: self-calibration gains nothing and changes nothing.
    (selfcal,) = result.self_calibration
    assert selfcal.target == "SimGalaxy" and selfcal.outcome is not SelfCalibrationOutcome.APPLIED
    assert selfcal.data == "data calibrated here from its calibrators" and selfcal.tables == []
    assert done.log is not None and store.exists(done.log.key)
    # What was stored is calibrated: its phase calibrator's phases have collapsed.
    (tmp_path / "download").mkdir()
    calibrated = store.get_directory(calibrated_ref, tmp_path / "download")
    phase_calibrator = uncalibrated_mous.truth.fields_with_intent(INTENT_PHASE)[0].name
    before = phase_scatter_deg(ms, phase_calibrator, "DATA")
    after = phase_scatter_deg(calibrated, phase_calibrator, "DATA")
    assert before / after >= 10, f"{before:.1f} -> {after:.2f} deg"
    assert f"phase scatter of {phase_calibrator}" in result.summary


async def test_a_restored_mous_and_a_calibrated_split_with_intents_pass_through_without_being_stored_again(
    broker, events, worker_without_selfcal, store, restored_mous, tmp_path
):
    # Self-calibration of restored data is test_selfcal.py's; switched off, nothing is even fetched.
    refs = [_store_as_ingest_does(store, Path(path), tmp_path) for path in restored_mous.measurement_sets]
    job = _job(refs, restored_mous.metadata)
    before = sorted(store.list(""))

    await _dispatch(broker, job)
    done = await _result(events, job)

    assert done.result.mode is CalibrationMode.RESTORED and done.result.flux_scale_known
    assert done.result.measurement_sets == refs and done.result.tables == [] and done.outputs == []
    assert done.result.self_calibration == []
    (score,) = done.qa
    assert score.score == 1.0 and "calibration came from the archive's calibration tables" in score.message
    assert done.casa_calls == []
    stored_since = sorted(set(store.list("")) - set(before))
    assert stored_since == [completion_key(job)]

    # The same calibrated MS submitted without its tables (metadata.calibrated is False), as an archive's
    # calibrated split is: its calibrators' phases give it away, and it is not calibrated a second time.
    split_job = _job(refs, restored_mous.metadata.model_copy(update={"calibrated": False}), "r1.calibration-split")
    await _dispatch(broker, split_job)
    done = await _result(events, split_job)

    assert done.result.mode is CalibrationMode.ALREADY_CALIBRATED and done.result.flux_scale_known
    assert done.result.measurement_sets == refs and done.outputs == [] and done.casa_calls == []
    (score,) = done.qa
    assert score.band is QABand.BELOW_STANDARD and "J1553-2422 in DATA already scatter only" in score.message


async def test_real_vla_data_without_intents_pass_through_uncalibrated_unless_corrected_data_holds_a_calibration(
    broker, events, worker, store, casatasks, casa_tools, vla_copy, tmp_path
):
    # As observed: no intents, no CORRECTED_DATA.
    plain = merge_metadata([describe_measurement_set(vla_copy)], calibrated=False)
    plain_job = _job([_store_as_ingest_does(store, vla_copy, tmp_path)], plain, "r1.calibration")
    await _dispatch(broker, plain_job)
    done = await _result(events, plain_job)

    assert done.result.mode is CalibrationMode.UNCALIBRATED and done.result.flux_scale_known is False
    assert done.result.measurement_sets == plain_job.measurement_sets
    assert "passes through uncalibrated" in done.result.summary
    messages = {q.message: q.band for q in done.qa if q.metric.name != "selfcal_improvement"}
    assert messages == {
        "no flux calibrator: flux scale unknown": QABand.ERROR,
        "no bandpass calibrator": QABand.WARNING,
        "no phase calibrator": QABand.WARNING,
    }
    # Its raw phases scatter the quasar's flux over the image: too little signal to self-calibrate on.
    (selfcal,) = done.result.self_calibration
    assert selfcal.target == "J1008+0730" and selfcal.outcome is SelfCalibrationOutcome.NOT_ATTEMPTED
    assert selfcal.reason.startswith("not attempted: SNR too low")
    assert done.outputs == [] and [call.task for call in done.casa_calls] == ["flagdata", "mstransform", "tclean"]

    # The same data with a calibration applied into CORRECTED_DATA (as an observatory delivers it).
    casatasks.clearcal(vis=str(vla_copy), addmodel=False)
    table = casa_tools.table()
    table.open(str(vla_copy), nomodify=False)
    try:
        table.putcol("CORRECTED_DATA", table.getcol("DATA") * (0.5 * np.exp(0.3j)))
    finally:
        table.close()
    delivered = merge_metadata([describe_measurement_set(vla_copy)], calibrated=False)
    assert "CORRECTED_DATA" in delivered.measurement_sets[0].data_columns
    delivered_job = _job(
        [store.put_directory(f"{INGEST_PREFIX}delivered/{vla_copy.name}.tar", vla_copy, tmp_path)], delivered,
        "r1.calibration-delivered",
    )
    await _dispatch(broker, delivered_job)
    done = await _result(events, delivered_job)

    assert done.result.mode is CalibrationMode.ALREADY_CALIBRATED
    (stored,) = done.result.measurement_sets
    assert stored.key == f"{delivered_job.output_prefix}measurement_sets/{vla_copy.name}.tar"
    (score, selfcal_score) = done.qa
    assert score.band is QABand.BELOW_STANDARD and score.message.startswith("delivered calibrated")
    assert selfcal_score.message.startswith("self-calibration of J1008+0730: not attempted")
    assert [call.task for call in done.casa_calls] == ["split", "flagdata", "mstransform", "tclean"]
    (tmp_path / "download").mkdir()
    split_out = store.get_directory(stored, tmp_path / "download")
    assert describe_measurement_set(split_out).data_columns == ["DATA"]
