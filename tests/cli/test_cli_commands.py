import hashlib
import io
import json
import socket
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from aperture_cli.main import ExitCode
from aperture_cli.views import progress_view
from aperture_contracts.enums import JobState, MousState, Stage
from cli_fakes import (
    MOUS_ID,
    FakeCoordinator,
    make_detail,
    make_job,
    make_measurement_set,
    make_product,
)
from rich.console import Console
from support.cli import CliResult, run_aperture

PointCli = Callable[[FakeCoordinator], None]

METADATA = {
    "measurement_sets": [
        {
            "name": "uid___A002_X1_X2.ms",
            "observatory": "ALMA",
            "time_start": "2025-06-01T10:00:00Z",
            "time_end": "2025-06-01T10:40:00Z",
            "exposure_s": 1800.0,
            "num_rows": 100,
            "num_antennas": 25,
            "num_baselines": 300,
            "antennas": [],
            "fields": [],
            "spectral_windows": [
                {
                    "spw_id": 0,
                    "name": "X1#BB_1",
                    "num_channels": 128,
                    "ref_frequency_hz": 230.0e9,
                    "centre_frequency_hz": 230.9921875e9,
                    "bandwidth_hz": 2.0e9,
                    "channel_width_hz": 15.625e6,
                    "min_frequency_hz": 229.9921875e9,
                    "max_frequency_hz": 231.9921875e9,
                    "frame": "TOPO",
                }
            ],
            "correlations": ["XX", "YY"],
            "intents": ["OBSERVE_TARGET#ON_SOURCE"],
            "flagged_fraction": 0.02,
            "data_columns": ["DATA"],
            "has_calibrator_intents": False,
        }
    ],
    "science_targets": ["NGC_1068"],
    "science_spw_ids": [0],
    "representative_spw": {"spw_id": 0, "source": "data"},
    "calibrated": False,
}


def run(*args: str, env: dict[str, str] | None = None) -> CliResult:
    return run_aperture(*args, env=dict(env or {}))



def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_submit_of_a_directory_prints_the_mous_id_and_uploads_the_ms_at_the_archive_root(
    tmp_path: Path, coordinator: FakeCoordinator, cli_against: PointCli
) -> None:
    cli_against(coordinator)
    coordinator.details = [make_detail()]
    ms = make_measurement_set(tmp_path)

    result = run("submit", str(ms), "--mous-uid", MOUS_ID, "--rerun")

    assert result.exit_code == 0, result
    assert result.stdout.strip() == MOUS_ID
    assert f"aperture status {MOUS_ID}" in result.stderr
    [upload] = coordinator.uploads
    assert upload.form["mous_uid"].content == MOUS_ID.encode()
    assert upload.form["rerun"].content == b"true"
    with tarfile.open(fileobj=io.BytesIO(upload.form["package"].content)) as tar:
        assert {name.split("/")[0] for name in tar.getnames()} == {ms.name}


def test_submit_of_an_archive_uploads_it_unchanged(
    tmp_path: Path, coordinator: FakeCoordinator, cli_against: PointCli
) -> None:
    cli_against(coordinator)
    coordinator.details = [make_detail()]
    archive = tmp_path / "mous.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(make_measurement_set(tmp_path), arcname="uid___A002_X1_X2.ms")

    result = run("submit", str(archive))

    assert result.exit_code == 0, result
    assert coordinator.uploads[0].form["package"].content == archive.read_bytes()
    assert coordinator.uploads[0].form["rerun"].content == b"false"


def test_submit_of_a_known_mous_says_to_use_rerun(
    tmp_path: Path, coordinator: FakeCoordinator, cli_against: PointCli
) -> None:
    cli_against(coordinator)
    coordinator.details = [make_detail(MousState.COMPLETED)]
    coordinator.submit_status = 200

    result = run("submit", str(make_measurement_set(tmp_path)))

    assert result.exit_code == 0, result
    assert "already submitted" in result.stderr and "--rerun" in result.stderr


def test_submit_wait_follows_the_stages_to_completion_and_exits_zero(
    tmp_path: Path, coordinator: FakeCoordinator, cli_against: PointCli
) -> None:
    cli_against(coordinator)
    coordinator.details = [
        make_detail(MousState.RECEIVED),
        make_detail(MousState.INGESTING, jobs=[make_job("ingest-1", Stage.INGEST, JobState.RUNNING)]),
        make_detail(
            MousState.PROCESSING,
            jobs=[
                make_job("ingest-1", Stage.INGEST, JobState.SUCCEEDED),
                make_job("imaging-1", Stage.IMAGING, JobState.SUCCEEDED),
                make_job("imaging-2", Stage.IMAGING, JobState.RUNNING),
            ],
        ),
        make_detail(
            MousState.COMPLETED,
            reason="all 3 jobs succeeded",
            jobs=[
                make_job("ingest-1", Stage.INGEST, JobState.SUCCEEDED),
                make_job("imaging-1", Stage.IMAGING, JobState.SUCCEEDED),
                make_job("imaging-2", Stage.IMAGING, JobState.SUCCEEDED),
            ],
        ),
    ]

    result = run("submit", str(make_measurement_set(tmp_path)), "--wait", "--poll-interval", "0")

    assert result.exit_code == 0, result
    assert result.stdout.splitlines()[0] == MOUS_ID
    assert f"{MOUS_ID}: completed" in result.stdout
    assert "reason: all 3 jobs succeeded" in result.stdout
    assert "ingesting: ingest 0/1 (1 running)" in result.stderr
    assert "processing: ingest 1/1, imaging 1/2 (1 running)" in result.stderr
    assert coordinator.detail_polls == 4


def test_submit_wait_on_a_failed_mous_prints_reason_and_errors_and_exits_one(
    tmp_path: Path, coordinator: FakeCoordinator, cli_against: PointCli
) -> None:
    cli_against(coordinator)
    error = "ingest-1 attempt 1 failed (bad_input): uid___A002_X1_X2.ms has no DATA column"
    coordinator.details = [
        make_detail(MousState.INGESTING),
        make_detail(
            MousState.FAILED,
            reason="ingest failed: the data cannot be processed as given",
            jobs=[make_job("ingest-1", Stage.INGEST, JobState.FAILED)],
            errors=[error],
        ),
    ]

    result = run("submit", str(make_measurement_set(tmp_path)), "--wait", "--poll-interval", "0")

    assert result.exit_code == ExitCode.MOUS_UNSUCCESSFUL == 1, result
    assert f"{MOUS_ID}: failed" in result.stdout
    assert "reason: ingest failed: the data cannot be processed as given" in result.stdout
    assert error in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_wait_stops_at_waiting_for_service_and_says_why(
    coordinator: FakeCoordinator, cli_against: PointCli
) -> None:
    cli_against(coordinator)
    coordinator.details = [make_detail(MousState.WAITING_FOR_SERVICE, reason="calibration is not deployed")]

    result = run("wait", MOUS_ID, "--poll-interval", "0")

    assert result.exit_code == 0, result
    assert "waiting_for_service" in result.stdout
    assert "stage that is not deployed" in result.stdout


def test_cancelled_mous_exits_one(coordinator: FakeCoordinator, cli_against: PointCli) -> None:
    cli_against(coordinator)
    coordinator.details = [make_detail(MousState.CANCELLED, reason="cancelled by a user")]

    result = run("wait", MOUS_ID)

    assert result.exit_code == 1, result


def test_wait_timeout_exits_six_and_says_the_mous_keeps_running(
    coordinator: FakeCoordinator, cli_against: PointCli
) -> None:
    cli_against(coordinator)
    coordinator.details = [make_detail(MousState.PROCESSING)]

    result = run("wait", MOUS_ID, "--timeout", "0", "--poll-interval", "0")

    assert result.exit_code == ExitCode.WAIT_TIMEOUT, result
    assert "still processing after 0 s; it keeps running" in result.stderr


def test_submit_wait_download_fetches_every_product_and_verifies_it(
    tmp_path: Path, coordinator: FakeCoordinator, cli_against: PointCli
) -> None:
    cli_against(coordinator)
    contents = {"cube_spw0.fits": b"SIMPLE cube" + bytes(3000), "mfs_spw0.fits": b"SIMPLE mfs"}
    products = []
    for name, content in contents.items():
        product, path = make_product(name, content)
        products.append(product)
        coordinator.stored_objects[path] = content
    coordinator.details = [
        make_detail(MousState.PROCESSING),
        make_detail(MousState.COMPLETED, products=products),
    ]
    out = tmp_path / "products"

    result = run(
        "submit", str(make_measurement_set(tmp_path)), "--download", str(out), "--poll-interval", "0"
    )

    assert result.exit_code == 0, result
    for name, content in contents.items():
        assert (out / name).read_bytes() == content
        assert f"{out / name}" in result.stdout
    assert result.stdout.count("sha256 ok") == 2


def test_download_with_a_checksum_mismatch_exits_five_and_keeps_no_file(
    tmp_path: Path, coordinator: FakeCoordinator, cli_against: PointCli
) -> None:
    cli_against(coordinator)
    recorded = hashlib.sha256(b"what was stored").hexdigest()
    product, path = make_product("cube.fits", b"what arrived", sha256=recorded)
    coordinator.stored_objects[path] = b"what arrived"
    coordinator.details = [make_detail(MousState.COMPLETED, products=[product])]

    result = run("download", MOUS_ID, str(tmp_path / "out"))

    assert result.exit_code == ExitCode.DOWNLOAD_FAILED == 5, result
    assert f"cube.fits: the downloaded bytes have SHA-256 {hashlib.sha256(b'what arrived').hexdigest()}" in (
        " ".join(result.stderr.split())
    )
    assert not (tmp_path / "out" / "cube.fits").exists()
    assert not list((tmp_path / "out").glob("*.part"))


def test_no_download_when_the_mous_failed(
    tmp_path: Path, coordinator: FakeCoordinator, cli_against: PointCli
) -> None:
    cli_against(coordinator)
    product, path = make_product("partial.fits", b"x")
    coordinator.stored_objects[path] = b"x"
    coordinator.details = [make_detail(MousState.FAILED, products=[product])]

    result = run("wait", MOUS_ID, "--download", str(tmp_path / "out"))

    assert result.exit_code == 1, result
    assert "no products downloaded" in result.stderr
    assert not (tmp_path / "out").exists()


def test_unreachable_api_prints_where_and_how_to_start_it_without_a_traceback() -> None:
    api = f"http://127.0.0.1:{closed_port()}"

    result = run("list", "--api", api)

    assert result.exit_code == ExitCode.API_UNREACHABLE == 3, result
    message = " ".join(result.stderr.split())
    assert f"cannot reach the Aperture API at {api}: is it running? `make up` starts it" in message
    assert "Traceback" not in result.stderr


def test_api_url_comes_from_the_environment() -> None:
    api = f"http://127.0.0.1:{closed_port()}"

    result = run("status", MOUS_ID, env={"APERTURE_API_URL": api})

    assert result.exit_code == 3, result
    assert api in " ".join(result.stderr.split())


def test_api_error_detail_and_field_errors_are_printed(
    tmp_path: Path, coordinator: FakeCoordinator, cli_against: PointCli
) -> None:
    cli_against(coordinator)
    coordinator.failure = (
        422,
        {
            "detail": "mous_uid is not an archive uid",
            "errors": [{"loc": ["body", "mous_uid"], "msg": "use the form uid://A001/X2fa/X2dd"}],
        },
    )

    result = run("submit", str(make_measurement_set(tmp_path)), "--mous-uid", "bogus")

    assert result.exit_code == ExitCode.REQUEST_FAILED == 4, result
    message = " ".join(result.stderr.split())
    assert "the API refused POST /api/v1/mous (HTTP 422): mous_uid is not an archive uid" in message
    assert "- body.mous_uid: use the form uid://A001/X2fa/X2dd" in message
    assert result.stdout == ""


def test_a_field_error_that_repeats_the_detail_is_printed_once_with_its_field(
    tmp_path: Path, coordinator: FakeCoordinator, cli_against: PointCli
) -> None:
    cli_against(coordinator)
    detail = "'bogus' is not an MOUS id"
    coordinator.failure = (422, {"detail": detail, "errors": [{"loc": ["mous_uid"], "msg": detail}]})

    result = run("submit", str(make_measurement_set(tmp_path)), "--mous-uid", "bogus")

    assert result.exit_code == 4, result
    assert result.stderr.count(detail) == 1
    assert "(field: mous_uid)" in result.stderr


def test_unknown_mous_prints_the_api_detail(coordinator: FakeCoordinator, cli_against: PointCli) -> None:
    cli_against(coordinator)

    result = run("status", "uid://A001/X1/X9")

    assert result.exit_code == 4, result
    assert "HTTP 404" in result.stderr and "`aperture list` shows the ones there are" in result.stderr


def test_a_directory_that_is_no_measurement_set_is_refused_before_any_upload(
    tmp_path: Path, coordinator: FakeCoordinator, cli_against: PointCli
) -> None:
    cli_against(coordinator)

    result = run("submit", str(tmp_path))

    assert result.exit_code == 4, result
    assert "is not a Measurement Set" in result.stderr
    assert coordinator.requests == []


def test_status_shows_state_observation_jobs_and_errors(
    coordinator: FakeCoordinator, cli_against: PointCli
) -> None:
    cli_against(coordinator)
    attempts = [
        {
            "attempt": n,
            "worker": "ingest-7f",
            "started_at": "2025-06-01T12:01:00Z",
            "ended_at": "2025-06-01T12:02:00Z",
            "deliveries": 1,
            "outcome": "failed",
            "error_class": "timeout",
            "error_message": "CASA ran past 3600 s",
        }
        for n in (1, 2)
    ]
    coordinator.details = [
        make_detail(
            MousState.PROCESSING,
            reason="1 job running",
            metadata=METADATA,
            jobs=[
                make_job("ingest-1", Stage.INGEST, JobState.SUCCEEDED, attempts=attempts[:1]),
                make_job(
                    "imaging-1", Stage.IMAGING, JobState.RETRY_WAIT, reason="retry in 10 s", attempts=attempts
                ),
            ],
            errors=["imaging-1 attempt 2 failed (timeout): CASA ran past 3600 s"],
        )
    ]

    result = run("status", MOUS_ID)

    assert result.exit_code == 0, result
    text = result.stdout
    for expected in (
        "processing",
        "1 job running",
        "ALMA",
        "NGC_1068",
        "2025-06-01 10:00:00 UTC – 2025-06-01 10:40:00 UTC (40m00s)",
        "spw 0 X1#BB_1: 229.9922–231.9922 GHz, 128 ch × 15.62 MHz TOPO",
        "retry_wait",
        "2 (last: timeout)",
        "imaging-1 attempt 2 failed (timeout): CASA ran past 3600 s",
    ):
        assert expected in text, expected
    assert text.index("ingest-1") < text.index("imaging-1")


def test_status_json_prints_the_api_body(coordinator: FakeCoordinator, cli_against: PointCli) -> None:
    cli_against(coordinator)
    coordinator.details = [make_detail(MousState.COMPLETED, metadata=METADATA)]

    result = run("status", MOUS_ID, "--json")

    assert result.exit_code == 0, result
    body = json.loads(result.stdout)
    assert body["state"] == "completed"
    assert body["metadata"]["science_targets"] == ["NGC_1068"]


def test_list_shows_a_table_of_mous(coordinator: FakeCoordinator, cli_against: PointCli) -> None:
    cli_against(coordinator)
    coordinator.details = [make_detail(MousState.PROCESSING)]

    result = run("list")

    assert result.exit_code == 0, result
    assert MOUS_ID in result.stdout and "processing" in result.stdout
    assert "1–1 of 1" in result.stdout


def test_cancel_prints_the_new_state(coordinator: FakeCoordinator, cli_against: PointCli) -> None:
    cli_against(coordinator)
    coordinator.details = [make_detail(MousState.PROCESSING)]

    result = run("cancel", MOUS_ID)

    assert result.exit_code == 0, result
    assert f"{MOUS_ID}: cancelled" in result.stdout


def test_live_display_shows_jobs_done_per_stage() -> None:
    detail = make_detail(
        MousState.PROCESSING,
        reason="2 jobs running",
        jobs=[
            make_job("ingest-1", Stage.INGEST, JobState.SUCCEEDED),
            make_job("imaging-1", Stage.IMAGING, JobState.SUCCEEDED),
            make_job("imaging-2", Stage.IMAGING, JobState.RUNNING),
            make_job("imaging-3", Stage.IMAGING, JobState.FAILED),
            make_job("imaging-old", Stage.IMAGING, JobState.SUPERSEDED),
        ],
    )
    console = Console(file=io.StringIO(), width=120, record=True)

    console.print(progress_view(detail, elapsed_s=75))

    lines = console.export_text().splitlines()
    assert "processing" in lines[0] and "1m15s" in lines[0]
    [imaging] = [line for line in lines if line.startswith("imaging")]
    assert imaging.split()[-3:] == ["2/3", "1", "1"]
    [ingest] = [line for line in lines if line.startswith("ingest")]
    assert ingest.split()[-1] == "1/1"


@pytest.mark.parametrize("command", [["submit"], ["status"], ["cancel"], ["download", MOUS_ID]])
def test_missing_arguments_are_usage_errors(command: list[str]) -> None:
    result = run(*command)

    assert result.exit_code == ExitCode.USAGE, result
