"""The findcont worker as a real process on real RabbitMQ, S3 and CASA, driven by job messages as the
coordinator sends them: a generated MOUS's calibrated MS stored as a tar object, with and without an
operator's cont.dat."""

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from aperture_contracts import topology
from aperture_contracts.continuum import ContinuumCase
from aperture_contracts.enums import ErrorClass, Stage
from aperture_contracts.ids import mous_key
from aperture_contracts.jobs import FindcontJob
from aperture_contracts.storage import ObjectRef
from aperture_findcont.cont_dat import parse_cont_dat
from aperture_shared.messaging import Broker
from aperture_shared.storage import ObjectStore
from support.events import EventCollector
from support.processes import stage_worker

pytestmark = [pytest.mark.integration, pytest.mark.casa, pytest.mark.slow]

TARGET = "SimGalaxy"








@pytest.fixture
def worker(env, tmp_path):
    """One findcont worker process."""
    process = stage_worker("findcont", env, tmp_path / "logs").start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def metadata(calibrated_mous):
    from aperture_ingest.measurement_set import describe_measurement_set, merge_metadata

    return merge_metadata([describe_measurement_set(calibrated_mous.ms)], calibrated=True)


def _job(
    calibrated_mous, metadata, store: ObjectStore, tmp_path: Path, spw_id: int, operator: ObjectRef | None = None
) -> FindcontJob:
    key = mous_key(calibrated_mous.truth.mous_uid)
    ms_ref = store.put_directory(f"mous/{key}/work/r1.calibration/measurement_sets/{calibrated_mous.ms.name}.tar",
                                 calibrated_mous.ms, tmp_path)
    job_id = f"r1.findcont.simgalaxy.spw{spw_id}"
    return FindcontJob(
        mous_id=calibrated_mous.truth.mous_uid, job_id=job_id, attempt=1, output_prefix=f"mous/{key}/work/{job_id}/",
        products_prefix=f"mous/{key}/products/", time_limit_s=600, created_at=datetime.now(UTC),
        target=TARGET, spw_id=spw_id, measurement_sets=[ms_ref], metadata=metadata, operator_cont_dat=operator,
    )


async def _dispatch(broker: Broker, job: FindcontJob) -> None:
    await broker.publish_model(
        topology.JOBS_EXCHANGE, Stage.FINDCONT.value, job, message_id=f"{job.job_id}:{job.attempt}"
    )


async def _result(events: EventCollector, timeout: float = 180):
    return await events.wait_for(
        lambda e: e.event_type in ("job.succeeded", "job.failed"), timeout=timeout, what="a result"
    )


def _channels(selection: str) -> np.ndarray:
    mask = np.zeros(64, dtype=bool)
    for part in filter(None, selection.split(";")):
        first, last = (int(value) for value in part.split("~"))
        mask[first : last + 1] = True
    return mask


async def test_the_worker_finds_the_continuum_and_stores_cont_dat_and_plot_as_products(
    broker, events, worker, store, calibrated_mous, metadata, tmp_path
):
    job = _job(calibrated_mous, metadata, store, tmp_path, spw_id=1)
    await _dispatch(broker, job)
    done = await _result(events)

    assert done.event_type == "job.succeeded", getattr(done, "message", "")
    continuum = done.result.continuum
    truth = calibrated_mous.truth.spws[1]
    selected = _channels(continuum.channel_ranges)
    line_free = np.zeros(64, dtype=bool)
    for first, last in truth.line_free_channels:
        line_free[first : last + 1] = True
    assert continuum.case is ContinuumCase.LINES_AND_CONTINUUM and continuum.source == "findcont"
    assert not (selected & ~line_free).any() and (selected & line_free).sum() >= 0.8 * line_free.sum()
    stem = f"{job.products_prefix}uid___A001_X3a1_X7.SimGalaxy_sci.spw1"
    assert (done.result.cont_dat.key, done.result.plot.key) == (f"{stem}.cont.dat", f"{stem}.findcont.png")
    entry = parse_cont_dat(store.get_bytes(done.result.cont_dat).decode()).find(TARGET, 1)
    assert entry is not None and len(entry.ranges) == len(continuum.ranges)
    assert store.get_bytes(done.result.plot)[:4] == b"\x89PNG"
    assert any(ref.key.endswith(".findcont.json") and ref.key.startswith(job.output_prefix) for ref in done.outputs)
    (score,) = done.qa
    assert score.score == 1.0 and score.metric.name == "continuum_fraction"
    assert score.metric.value == pytest.approx(continuum.continuum_fraction, abs=1e-4)
    assert done.log is not None and store.exists(done.log.key)


async def test_an_operator_cont_dat_covering_the_spw_takes_precedence(
    broker, events, worker, store, calibrated_mous, metadata, tmp_path
):
    truth = calibrated_mous.truth.spws[0]
    low = truth.first_channel_hz - truth.channel_width_hz / 2
    high = truth.first_channel_hz + 19.5 * truth.channel_width_hz  # channels 0~19
    text = (
        f"Field: {TARGET}\n\nSpectralWindow: 0\n{low / 1e9:.10f}~{high / 1e9:.10f}GHz TOPO\n\n"
        "SpectralWindow: 5\nALL\n"
    )
    operator = store.put_bytes("mous/uid___A001_X3a1_X7/input/cont.dat", text.encode(), "text/plain")
    await _dispatch(broker, _job(calibrated_mous, metadata, store, tmp_path, spw_id=0, operator=operator))
    done = await _result(events)

    assert done.event_type == "job.succeeded", getattr(done, "message", "")
    assert done.result.continuum.source == "operator"
    assert done.result.continuum.channel_ranges == "0~19"
    assert done.qa[0].score == 1.0 and "operator" in done.qa[0].message


async def test_a_broken_operator_cont_dat_fails_the_job_as_bad_input_naming_the_line(
    broker, events, worker, store, calibrated_mous, metadata, tmp_path
):
    text = f"Field: {TARGET}\n\nSpectralWindow: 0\n230.1~230.3GHz\n"
    operator = store.put_bytes("mous/uid___A001_X3a1_X7/input/cont.dat", text.encode(), "text/plain")
    await _dispatch(broker, _job(calibrated_mous, metadata, store, tmp_path, spw_id=0, operator=operator))
    failed = await _result(events, timeout=120)

    assert failed.event_type == "job.failed"
    assert failed.error_class is ErrorClass.BAD_INPUT
    assert "line 4" in failed.message and "frame" in failed.message
    assert worker.alive()
