"""The ingest worker as a real process on real RabbitMQ, S3 and CASA, driven by job messages as the
coordinator sends them: real and broken packages, duplicate and poison messages, a worker killed mid-job."""

import asyncio
import json
import tarfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aio_pika
import psutil
import pytest
from aperture_contracts import topology
from aperture_contracts.enums import ErrorClass, Stage
from aperture_contracts.jobs import IngestJob
from aperture_contracts.reports import IngestReport
from aperture_shared.messaging import DEAD_REASON_HEADER, Broker
from aperture_shared.storage import ObjectStore, tar_directory
from support.processes import casa_step_processes, stage_worker

pytestmark = [pytest.mark.integration, pytest.mark.casa, pytest.mark.slow]

PYUVDATA_DATA = Path(__import__("pyuvdata").__file__).parent / "data"
MOUS = "uid://A001/X1/X1"










@pytest.fixture
def workers(env, tmp_path):
    started = []

    def start(index: int = 0, **extra_env: str):
        worker = stage_worker("ingest", env, tmp_path / "logs", index, **extra_env).start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def _package(ms: Path, tmp_path: Path) -> Path:
    archive = tmp_path / f"{ms.name}.tar"
    tar_directory(ms, archive)
    return archive


def _job(store: ObjectStore, package: Path, job_id: str = "r1.ingest", attempt: int = 1) -> IngestJob:
    key = f"mous/uid___A001_X1_X1/input/{package.name}"
    ref = store.put_file(key, package)
    return IngestJob(
        mous_id=MOUS, job_id=job_id, attempt=attempt, output_prefix=f"mous/uid___A001_X1_X1/work/{job_id}/",
        products_prefix="mous/uid___A001_X1_X1/products/", time_limit_s=600, created_at=datetime.now(UTC),
        package=ref, package_name=package.name,
    )


async def _dispatch(broker: Broker, job: IngestJob) -> None:
    await broker.publish_model(
        topology.JOBS_EXCHANGE, Stage.INGEST.value, job, message_id=f"{job.job_id}:{job.attempt}"
    )


async def test_a_real_vla_measurement_set_is_ingested_and_described(broker, events, workers, store, tmp_path):
    workers()
    job = _job(store, _package(PYUVDATA_DATA / "multi_1.ms", tmp_path))
    await _dispatch(broker, job)
    done = await events.wait_for(lambda e: e.event_type in ("job.succeeded", "job.failed"), what="a result")
    assert done.event_type == "job.succeeded", getattr(done, "message", "")
    metadata = done.result.metadata
    (ms,) = metadata.measurement_sets
    assert ms.observatory == "EVLA"
    # 28 rows in its ANTENNA table, of which 18 have data in this excerpt.
    assert ms.num_antennas == 18 and ms.num_baselines == 18 * 17 // 2
    assert ms.has_calibrator_intents is False
    assert metadata.science_targets, "fields without intents are science targets"
    assert metadata.representative_spw is not None
    # The MS is stored as one archive object and the report as a product, each with its checksum.
    ms_ref, report_ref = done.result.measurement_sets[0], done.result.report
    assert ms_ref.key.endswith("measurement_sets/multi_1.ms.tar")
    assert store.stat(ms_ref.key).sha256 == ms_ref.sha256
    report = IngestReport.model_validate_json(store.get_bytes(report_ref))
    assert report_ref.key == "mous/uid___A001_X1_X1/products/uid___A001_X1_X1.ingest_report.json"
    assert report.metadata == metadata
    assert done.log is not None and store.exists(done.log.key)
    started = events.of_type("job.started")
    assert len(started) == 1 and started[0].redelivered is False


async def test_a_package_without_a_measurement_set_fails_with_a_clear_reason_and_the_worker_stays_up(
    broker, events, workers, store, tmp_path
):
    worker = workers()
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "README.txt").write_text("not a measurement set")
    archive = tmp_path / "notes.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(notes, arcname="notes")
    await _dispatch(broker, _job(store, archive))
    failed = await events.wait_for(lambda e: e.event_type == "job.failed", what="a failure")
    assert failed.error_class is ErrorClass.BAD_INPUT
    assert "Measurement Set" in failed.message
    assert worker.alive()
    # ... and it still works afterwards.
    vla = _package(PYUVDATA_DATA / "day2_TDEM0003_10s_norx_1src_1spw.ms", tmp_path)
    await _dispatch(broker, _job(store, vla, "r1.ingest-b"))
    ok = await events.wait_for(lambda e: e.job_id == "r1.ingest-b" and e.event_type == "job.succeeded", what="success")
    assert ok.result.metadata.measurement_sets


async def test_a_corrupt_measurement_set_fails_as_corrupt_input(broker, events, workers, store, tmp_path):
    workers()
    import shutil

    broken = tmp_path / "broken.ms"
    shutil.copytree(PYUVDATA_DATA / "multi_1.ms", broken)
    shutil.rmtree(broken / "SPECTRAL_WINDOW")
    await _dispatch(broker, _job(store, _package(broken, tmp_path)))
    failed = await events.wait_for(lambda e: e.event_type in ("job.failed", "job.succeeded"), what="a result")
    assert failed.event_type == "job.failed"
    assert failed.error_class is ErrorClass.CORRUPT_INPUT
    assert "SPECTRAL_WINDOW" in failed.message


async def test_a_job_delivered_twice_runs_once_and_reports_the_same_outputs(broker, events, workers, store, tmp_path):
    workers()
    job = _job(store, _package(PYUVDATA_DATA / "day2_TDEM0003_10s_norx_1src_1spw.ms", tmp_path))
    await _dispatch(broker, job)
    await _dispatch(broker, job)  # e.g. the coordinator died between its publish and its commit
    await events.wait_for(lambda e: len(events.of_type("job.succeeded")) == 2, what="two completion events")
    first, second = events.of_type("job.succeeded")
    assert first.outputs == second.outputs
    assert len(events.of_type("job.started")) == 1, "the second delivery must not run the job again"
    assert len(list(store.list(job.output_prefix + "measurement_sets/"))) == 1

    # The same attempt dispatched anew (a coordinator whose database was reset, over a bucket that kept
    # the earlier run's objects) is a new dispatch: it runs, rather than re-sending the stale event.
    await _dispatch(broker, job.model_copy(update={"created_at": job.created_at + timedelta(minutes=5)}))
    await events.wait_for(lambda e: len(events.of_type("job.succeeded")) == 3, what="the new dispatch's event")
    assert len(events.of_type("job.started")) == 2


async def test_a_poison_message_is_dead_lettered_with_a_reason_and_its_job_reported_failed(
    broker, events, workers, amqp_vhost_url
):
    worker = workers()
    body = json.dumps({"mous_id": MOUS, "job_id": "r1.ingest", "attempt": 1, "stage": "ingest"}).encode()
    await broker.publish(topology.JOBS_EXCHANGE, Stage.INGEST.value, body, message_id="poison:1")
    failed = await events.wait_for(lambda e: e.event_type == "job.failed", what="a poison report")
    assert failed.error_class is ErrorClass.POISON and "dead-lettered" in failed.message
    connection = await aio_pika.connect(amqp_vhost_url)
    try:
        channel = await connection.channel()
        dead_letters = await channel.get_queue(topology.DEAD_LETTER_QUEUE, ensure=True)
        dead = None
        for _ in range(50):
            dead = await dead_letters.get(fail=False)
            if dead:
                break
            await asyncio.sleep(0.2)
        assert dead is not None and dead.body == body
        assert "output_prefix: Field required" in dead.headers[DEAD_REASON_HEADER]
    finally:
        await connection.close()
    assert worker.alive()


async def test_a_worker_killed_mid_job_leaves_no_casa_process_and_the_job_completes_elsewhere(
    broker, events, workers, store, tmp_path, env
):
    first = workers(0)
    job = _job(store, _package(PYUVDATA_DATA / "1102865728_small.ms", tmp_path))
    await _dispatch(broker, job)
    await events.wait_for(lambda e: e.event_type == "job.started", what="the start")
    scratch = Path(env["APERTURE_CASA_SCRATCH_ROOT"])
    deadline = time.monotonic() + 60
    while not casa_step_processes(scratch) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    children = casa_step_processes(scratch)
    assert children, "the CASA step never started"
    first.kill()  # SIGKILL in the middle of the CASA step
    gone, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, f"CASA processes outlived their worker: {[p.pid for p in alive]}"
    workers(1)
    done = await events.wait_for(lambda e: e.event_type == "job.succeeded", timeout=180, what="the completion")
    assert done.job_id == job.job_id and done.attempt == 1
    restarts = events.of_type("job.started")
    assert len(restarts) == 2 and restarts[1].redelivered is True
    assert len(events.of_type("job.succeeded")) == 1
    # The killed worker's scratch directory was cleaned by the next worker at its start.
    assert [p.name for p in scratch.iterdir()] == []


async def test_an_operators_cont_dat_and_flux_csv_in_the_package_are_kept_for_later_stages(
    broker, events, workers, store, tmp_path
):
    workers()
    import shutil

    root = tmp_path / "package"
    shutil.copytree(PYUVDATA_DATA / "day2_TDEM0003_10s_norx_1src_1spw.ms", root / "vla.ms")
    edited = "Field: 1331+305=3C286\n\nSpectralWindow: 0\n1.30~1.40GHz LSRK\n"
    (root / "cont.dat").write_text(edited)
    # The ALMA pipeline's format, with the field given by id as the pipeline writes it.
    flux_csv = 'ms,field,spw,I,Q,U,V,spix,uvmin,uvmax,comment\nvla.ms,0,0,14.9,0,0,0,-0.47,0,0,"# J1008+0730"\n'
    (root / "flux.csv").write_text(flux_csv)
    archive = tmp_path / "with-operator-files.tar"
    with tarfile.open(archive, "w") as tar:
        for entry in sorted(root.iterdir()):
            tar.add(entry, arcname=entry.name)
    await _dispatch(broker, _job(store, archive))
    done = await events.wait_for(lambda e: e.event_type in ("job.succeeded", "job.failed"), what="a result")
    assert done.event_type == "job.succeeded", getattr(done, "message", "")
    kept = done.result.operator_cont_dat
    assert kept is not None and kept in done.outputs
    assert store.get_bytes(kept).decode() == edited
    assert done.result.operator_flux_csv in done.outputs
    (model,) = done.result.flux_models
    (spw,) = done.result.metadata.measurement_sets[0].spectral_windows
    assert (model.field, model.flux_jy, model.spectral_index) == ("J1008+0730", 14.9, -0.47)
    assert model.reference_frequency_hz == spw.centre_frequency_hz


def _not_an_ms(tmp_path: Path, name: str) -> Path:
    """A package with no Measurement Set in it: ingest fails it at once (bad input)."""
    notes = tmp_path / name
    notes.mkdir()
    (notes / "README.txt").write_text("not a measurement set")
    archive = tmp_path / f"{name}.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(notes, arcname=name)
    return archive


async def test_a_one_job_worker_takes_one_message_settles_it_and_exits_leaving_the_next_queued(
    broker, events, workers, store, tmp_path
):
    """KEDA's ScaledJob starts one worker per message (APERTURE_EXIT_AFTER_JOBS=1): it must take one
    message, not a second one under its prefetch, settle it, and exit 0."""
    one_job = workers(0, APERTURE_EXIT_AFTER_JOBS="1")
    await _dispatch(broker, _job(store, _not_an_ms(tmp_path, "first"), "r1.ingest-first"))
    await _dispatch(broker, _job(store, _not_an_ms(tmp_path, "second"), "r1.ingest-second"))
    first = await events.wait_for(lambda e: e.event_type == "job.failed", what="the first job's result")
    assert first.job_id == "r1.ingest-first"
    assert one_job.wait_exit(timeout=60) == 0
    assert one_job.wait_for_log("exit_after_jobs")
    assert [e.job_id for e in events.of_type("job.started")] == ["r1.ingest-first"]
    # The second message was left on the queue for the next worker.
    workers(1)
    second = await events.wait_for(lambda e: e.job_id == "r1.ingest-second" and e.event_type == "job.failed",
                                   what="the second job, by the next worker")
    assert second.error_class is ErrorClass.BAD_INPUT


async def test_a_one_job_worker_that_gets_no_message_exits_after_its_idle_time(workers):
    started = time.monotonic()
    idle = workers(0, APERTURE_EXIT_AFTER_JOBS="1", APERTURE_EXIT_AFTER_IDLE_S="8")
    assert idle.wait_exit(timeout=60) == 0
    assert time.monotonic() - started >= 8
    assert idle.wait_for_log("exit_after_idle_s")
