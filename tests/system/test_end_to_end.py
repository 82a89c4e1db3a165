"""An observation through the real system: the CLI submits, the coordinator plans and dispatches through
its outbox, the ingest worker restores with CASA, and every crash in between loses and repeats nothing."""

import json
import subprocess
import time
from pathlib import Path

import pytest
from aperture_contracts.enums import JobState, MousState, Stage
from aperture_contracts.reports import IngestReport
from aperture_testdata.measure import phase_scatter_deg
from support.processes import BIN, casa_step_processes

pytestmark = [pytest.mark.integration, pytest.mark.casa, pytest.mark.slow]

MOUS_UID = "uid://A001/X3a1/X7"  # named by the generated package's restore manifest


def wait_for_state(system, mous_id: str, states: set[MousState], timeout: float = 240.0):
    deadline = time.monotonic() + timeout
    detail = None
    with system.client() as client:
        while time.monotonic() < deadline:
            detail = client.get_mous(mous_id)
            if detail.state in states:
                return detail
            time.sleep(0.5)
    raise AssertionError(f"{mous_id} stayed in {detail.state if detail else '?'}: {detail}")


def jobs_by_stage(detail) -> dict[Stage, list]:
    grouped: dict[Stage, list] = {}
    for job in detail.jobs:
        grouped.setdefault(job.stage, []).append(job)
    return grouped


def ingest_job(detail):
    (job,) = jobs_by_stage(detail)[Stage.INGEST]
    return job


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_the_cli_submits_a_generated_mous_which_is_ingested_restored_and_planned(
    system, generated_mous, tmp_path
):
    system.start_coordinator()
    system.start_worker()
    downloads = tmp_path / "downloads"
    cli = subprocess.run(
        [str(BIN / "aperture"), "submit", str(generated_mous.package), "--wait", "--download", str(downloads),
         "--api", system.api_url, "--timeout", "300"],
        capture_output=True, text=True, timeout=360,
    )
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert MOUS_UID in cli.stdout

    with system.client() as client:
        detail = client.get_mous(MOUS_UID)
    # Ingest ran; nothing else can run yet, and the MOUS says so rather than pretending.
    assert detail.state is MousState.WAITING_FOR_SERVICE
    assert "calibration" in detail.reason
    truth = generated_mous.truth
    metadata = detail.metadata
    assert metadata is not None and metadata.calibrated is True
    targets = [f.name for f in truth.fields if any(i.startswith("OBSERVE_TARGET") for i in f.intents)]
    assert metadata.science_targets == targets
    assert metadata.science_spw_ids == [spw.spw_id for spw in truth.spws]
    (ms,) = metadata.measurement_sets
    assert ms.observatory == "ALMA" and ms.has_calibrator_intents
    assert {f.name: sorted(f.intents) for f in ms.fields} == {f.name: sorted(f.intents) for f in truth.fields}

    # The planned graph fans out over 1 target x 2 spws (see the planner's docstring for the counts).
    stages = jobs_by_stage(detail)
    counts = {stage: len(jobs) for stage, jobs in stages.items()}
    assert counts == {Stage.INGEST: 1, Stage.CALIBRATION: 1, Stage.FINDCONT: 2, Stage.IMAGING: 6,
                      Stage.PREVIEWS: 5, Stage.FOOTPRINT: 5, Stage.EXPORT: 1}
    assert ingest_job(detail).state is JobState.SUCCEEDED
    (calibration,) = stages[Stage.CALIBRATION]
    assert calibration.state is JobState.WAITING_FOR_SERVICE and "not deployed" in calibration.reason
    assert all(job.state is JobState.PLANNED for stage in (Stage.FINDCONT, Stage.IMAGING) for job in stages[stage])

    # The product (the ingest report) came down with a verified checksum.
    (report_file,) = downloads.iterdir()
    report = IngestReport.model_validate_json(report_file.read_text())
    assert report.applied_tables and [call.task for call in report.casa_calls][:2] == ["applycal", "split"]

    # Restore: the stored MS holds calibrated data; the phase calibrator's phase scatter drops >= 10x.
    ingest_outputs = [o for o in report.metadata.measurement_sets]
    assert ingest_outputs
    store = system.store()
    ms_key = next(k for k in store.list("mous/uid___A001_X3a1_X7/work/") if k.endswith(".ms.tar"))
    restored_dir = tmp_path / "restored"
    restored_dir.mkdir()
    restored = store.get_directory(ms_key, restored_dir)
    phase_calibrator = next(f.name for f in truth.fields if "CALIBRATE_PHASE#ON_SOURCE" in f.intents)
    before = phase_scatter_deg(generated_mous.ms, phase_calibrator, "DATA")
    after = phase_scatter_deg(restored, phase_calibrator, "DATA")
    assert after * 10 <= before, f"phase scatter {before:.1f} deg -> {after:.2f} deg"


def test_resubmitting_the_same_uid_returns_the_same_mous(system, generated_mous):
    system.start_coordinator()
    system.start_worker()
    with system.client() as client:
        first = client.submit(generated_mous.package)
        assert first.created and first.summary.mous_id == MOUS_UID
        wait_for_state(system, MOUS_UID, {MousState.WAITING_FOR_SERVICE})
        again = client.submit(generated_mous.package)
        assert not again.created and again.summary.mous_id == MOUS_UID and again.summary.run == 1
        assert len(client.list_mous().items) == 1


@pytest.mark.parametrize("fault", ["crash_after_commit_before_publish", "crash_after_publish_before_commit"])
def test_a_coordinator_killed_between_commit_and_publish_loses_and_repeats_nothing(system, generated_mous, fault):
    crashing = system.start_coordinator(APERTURE_FAULT_INJECTION=fault)
    worker = system.start_worker()
    with system.client() as client:
        try:
            client.submit(generated_mous.package)
        except Exception:  # the coordinator may die before it answers; the upload was committed first
            pass
    assert crashing.wait_exit(60) != 0, "the fault injection should have killed the coordinator"
    system.start_coordinator()
    detail = wait_for_state(system, MOUS_UID, {MousState.WAITING_FOR_SERVICE, MousState.FAILED})
    assert detail.state is MousState.WAITING_FOR_SERVICE, detail.errors
    job = ingest_job(detail)
    assert job.state is JobState.SUCCEEDED
    (attempt,) = job.attempts
    assert attempt.deliveries == 1, "the ingest job ran more than once"
    store = system.store()
    assert len([k for k in store.list("mous/uid___A001_X3a1_X7/work/") if k.endswith(".ms.tar")]) == 1
    starts = [json.loads(line) for line in worker.log_text().splitlines() if '"job succeeded' in line]
    assert len(starts) == 1, "the worker must run the job exactly once"
    if fault == "crash_after_publish_before_commit":
        # The copy the restarted relay re-published is queued behind the first and reaches the worker only
        # after the first copy's event moved the MOUS on, so wait for it rather than read the log once.
        assert worker.wait_for_log("duplicate delivery"), "the republished job should reach the worker"


def test_a_corrupt_package_fails_the_mous_with_a_clear_reason_and_everything_stays_up(system, tmp_path):
    coordinator = system.start_coordinator()
    worker = system.start_worker()
    bogus = tmp_path / "uid___A001_X9_X9.tar"
    import tarfile

    folder = tmp_path / "not-an-ms.ms"
    folder.mkdir()
    (folder / "table.dat").write_bytes(b"\0" * 64)
    with tarfile.open(bogus, "w") as tar:
        tar.add(folder, arcname=folder.name)
    with system.client() as client:
        submitted = client.submit(bogus)
    detail = wait_for_state(system, submitted.summary.mous_id, {MousState.FAILED}, timeout=120)
    assert detail.errors and "not-an-ms.ms" in detail.errors[0]
    assert "bad_input" in detail.errors[0] or "Measurement Set" in detail.errors[0]
    job = ingest_job(detail)
    assert job.state is JobState.FAILED and len(job.attempts) == 1, "bad input is never retried"
    assert coordinator.alive() and worker.alive()


def test_the_api_and_workers_serve_health_and_metrics(system, generated_mous):
    import urllib3

    system.start_coordinator()
    worker = system.start_worker()
    with system.client() as client:
        client.submit(generated_mous.package)
    wait_for_state(system, MOUS_UID, {MousState.WAITING_FOR_SERVICE})
    metrics = urllib3.request("GET", worker.health_url.replace("/readyz", "/metrics")).data.decode()
    assert 'aperture_jobs_total{error_class="",outcome="succeeded",stage="ingest"} 1.0' in metrics
    assert 'aperture_storage_bytes_total{direction="download"}' in metrics
    assert "aperture_job_duration_seconds_bucket" in metrics
    api_metrics = urllib3.request("GET", f"{system.api_url}/metrics").data.decode()
    assert "aperture_" in api_metrics
    logs = [json.loads(line) for line in worker.log_text().splitlines() if line.startswith("{")]
    job_lines = [entry for entry in logs if entry.get("job_id") == "r1.ingest"]
    assert job_lines and all(entry["mous_id"] == MOUS_UID for entry in job_lines)


def test_cancelling_a_running_mous_stops_its_casa_work_and_keeps_the_worker(system, generated_mous):
    import psutil

    system.start_coordinator()
    worker = system.start_worker()
    scratch = Path(system.env["APERTURE_CASA_SCRATCH_ROOT"])

    def casa_children() -> list[psutil.Process]:
        return casa_step_processes(scratch)

    with system.client() as client:
        client.submit(generated_mous.package)
        deadline = time.monotonic() + 120
        while not casa_children() and time.monotonic() < deadline:
            time.sleep(0.1)
        children = casa_children()
        assert children, "the ingest job's CASA step never started"
        client.cancel_mous(MOUS_UID)
    _, alive = psutil.wait_procs(children, timeout=20)
    assert not alive, "the CASA step of a cancelled job is still running"
    detail = wait_for_state(system, MOUS_UID, {MousState.CANCELLED}, timeout=30)
    assert ingest_job(detail).state is JobState.CANCELLED
    assert "cancelling job r1.ingest" in worker.log_text()
    assert worker.alive()
    deadline = time.monotonic() + 20
    while list(scratch.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert list(scratch.iterdir()) == [], "the cancelled job's scratch directory was left behind"
    assert not [k for k in system.store().list("mous/uid___A001_X3a1_X7/work/") if k.endswith(".ms.tar")]


def test_a_real_ms_directory_without_a_uid_gets_a_generated_id_and_its_metadata(system):
    """A real, non-simulated VLA Measurement Set (no intents, no archive uid) submitted as a directory."""
    vla = Path(__import__("pyuvdata").__file__).parent / "data" / "day2_TDEM0003_10s_norx_1src_1spw.ms"
    system.start_coordinator()
    system.start_worker()
    cli = subprocess.run(
        [str(BIN / "aperture"), "submit", str(vla), "--wait", "--api", system.api_url, "--timeout", "240"],
        capture_output=True, text=True, timeout=300,
    )
    assert cli.returncode == 0, cli.stdout + cli.stderr
    mous_id = next(word for word in cli.stdout.split() if word.startswith("aperture-"))
    with system.client() as client:
        detail = client.get_mous(mous_id)
    assert detail.state is MousState.WAITING_FOR_SERVICE
    (ms,) = detail.metadata.measurement_sets
    assert ms.name == vla.name and ms.observatory == "EVLA"
    assert not ms.has_calibrator_intents and detail.metadata.calibrated is False
    assert detail.metadata.science_targets == [f.name for f in ms.fields if f.is_science_target]
    assert all(not f.intents for f in ms.fields if f.is_science_target), "no intents: treated as targets"
    spw_count = len(detail.metadata.science_spw_ids)
    targets = len(detail.metadata.science_targets)
    assert len(detail.jobs) == 3 + 7 * targets * spw_count + 4 * targets
