"""`aperture request ...` and the client's request methods against the real coordinator app: a real
database (SQLite) holding an MOUS processed to the end, served by uvicorn on a free local port, so the CLI
goes through its real HTTP path (--api, --token, Problem bodies) with no fake in between."""

import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aperture_cli.client import ApertureClient
from aperture_cli.errors import ApiError
from aperture_cli.main import ExitCode
from aperture_cli.views import format_bytes
from aperture_contracts.enums import Stage
from aperture_contracts.imaging import SpectralAxisMode
from aperture_contracts.requests import DryRun, RequestCreate, RequestState, RequestView
from aperture_coordinator.api import CoordinatorServices, create_app
from aperture_coordinator.auth import ApiIdentity
from aperture_coordinator.db import Database, upgrade_database
from aperture_coordinator.settings import CoordinatorSettings
from aperture_coordinator.state import Coordinator
from cli_fakes import FakeCoordinator
from coordinator.factories import MOUS_ID, InMemoryObjectStore, process_to_completion
from support.asgi import serving
from support.cli import CliResult, run_aperture

ALICE, BOB = "alice-token", "bob-token"
TOKENS = {ALICE: ApiIdentity(user="alice"), BOB: ApiIdentity(user="bob")}
# The factories' MOUS has science spws 17 and 19; spw 17: 128 channels of 15.6 MHz from 247 to 248.875 GHz,
# about 19 km/s each at 248 GHz. This asks for 10 channels of 25 km/s from -100 km/s there.
CUBE = "17:velocity:-100:25:10:248e9"
# Its pipeline cube is 150 x 150 pixels (factories.image_product): 10 channels of 5 FITS files of 4 bytes.
CUBE_BYTES = 150 * 150 * 10 * 4 * 5
REQUEST_ID = re.compile(r"^req-[0-9a-f]{12}$")


@dataclass(frozen=True)
class LiveApi:
    url: str

    def client(self, token: str | None = ALICE) -> ApertureClient:
        return ApertureClient(self.url, token=token)


def coordinator_settings(database_file: Path) -> CoordinatorSettings:
    return CoordinatorSettings(
        database_url=f"sqlite:///{database_file}", enabled_stages=list(Stage), api_tokens=TOKENS,
        upload_dir=database_file.parent / "uploads",
    )


@pytest.fixture(scope="module")
def completed_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database with MOUS_ID processed to the end; made once, each test works on a copy."""
    database_file = tmp_path_factory.mktemp("completed") / "coordinator.db"
    settings = coordinator_settings(database_file)
    upgrade_database(settings.database_url)
    database = Database(settings.database_url)
    try:
        process_to_completion(database, settings)
    finally:
        database.dispose()
    return database_file


@pytest.fixture
def live_api(completed_database: Path, tmp_path: Path) -> Iterator[LiveApi]:
    """The coordinator's app on a free port, over a fresh copy of the completed MOUS's database."""
    database_file = tmp_path / "coordinator.db"
    shutil.copyfile(completed_database, database_file)
    settings = coordinator_settings(database_file)
    database = Database(settings.database_url)
    coordinator = Coordinator(database, settings)
    services = CoordinatorServices(database=database, coordinator=coordinator, store=InMemoryObjectStore())
    try:
        with serving(create_app(settings, services)) as url:
            yield LiveApi(url)
    finally:
        database.dispose()



def aperture(*args: str, env: dict[str, str | None] | None = None) -> CliResult:
    """Run `aperture ARGS` in this process; no token or API URL comes from the test's own environment."""
    return run_aperture(*args, env=env)


def create(api: LiveApi, *args: str, token: str = ALICE) -> str:
    """Make a request with the CLI; its id."""
    result = aperture("request", "create", MOUS_ID, "--cube", CUBE, *args, "--api", api.url, "--token", token)
    assert result.exit_code == 0, result
    return result.stdout.strip()


# -- create ---------------------------------------------------------------------------------------------


def test_create_with_estimate_prints_the_estimate_and_stores_nothing(live_api: LiveApi) -> None:
    result = aperture(
        "request", "create", MOUS_ID, "--cube", CUBE, "--robust", "0.5", "--estimate",
        "--api", live_api.url, "--token", ALICE,
    )

    assert result.exit_code == 0, result
    assert "Estimate (nothing stored)" in result.stdout
    assert "spw 17: 10 × 25 km/s from -100 km/s (rest 248 GHz, radio, LSRK)" in result.stdout
    assert "robust 0.5" in result.stdout
    assert re.search(r"largest cube\s+4\.3 MiB", result.stdout), result  # CUBE_BYTES = 4.5e6 B
    assert re.search(r"run time\s+about (\d+m)?\d+s", result.stdout), result
    assert re.search(r"within quota\s+yes", result.stdout), result
    assert "nothing was stored" in result.stderr
    with live_api.client() as client:
        assert client.list_requests().total == 0


def test_create_stores_the_request_as_asked_and_prints_its_id(live_api: LiveApi) -> None:
    result = aperture(
        "request", "create", "uid___A001_X2fa_X2dd", "--cube", CUBE, "--convention", "optical",
        "--frame", "bary", "--robust", "-0.5", "--resolution", "2", "--field-size", "30",
        "--email", "alice@example.org", "--webhook", "https://example.org/hook",
        "--api", live_api.url, "--token", ALICE,
    )

    assert result.exit_code == 0, result
    request_id = result.stdout.strip()
    assert REQUEST_ID.match(request_id), result
    assert "queued" in result.stderr and f"aperture request status {request_id}" in result.stderr
    with live_api.client() as client:
        stored = client.get_request(request_id)
    assert stored.owner == "alice" and stored.mous_id == MOUS_ID
    [version] = stored.versions
    assert version.state is RequestState.QUEUED
    assert version.reason == "waiting for workers"  # its jobs are dispatched; no worker has started one
    assert version.estimate.largest_cube_bytes == 100 * 100 * 10 * 4 * 5  # a 30" field of 0.3" cells
    asked = version.parameters
    assert (asked.robust, asked.target_resolution_arcsec, asked.field_size_arcsec) == (-0.5, 2.0, 30.0)
    assert asked.notify_email == "alice@example.org" and str(asked.webhook_url) == "https://example.org/hook"
    [cube] = asked.cubes
    axis = cube.spectral_axis
    assert cube.spw_id == 17 and axis.mode is SpectralAxisMode.VELOCITY
    assert (axis.start, axis.width, axis.nchan, axis.rest_frequency_hz) == (-100.0, 25.0, 10, 248e9)
    assert (axis.velocity_convention.value, axis.frame.value) == ("optical", "BARY")


def test_create_from_a_json_file_of_a_versions_parameters_round_trips(live_api: LiveApi, tmp_path: Path) -> None:
    first = create(live_api, "--robust", "1")
    shown = aperture("request", "status", first, "--json", "--api", live_api.url, "--token", ALICE)
    assert shown.exit_code == 0, shown
    body = json.loads(shown.stdout)
    with live_api.client() as client:
        assert RequestView.model_validate(body) == client.get_request(first)
    request_file = tmp_path / "request.json"
    request_file.write_text(json.dumps(body["versions"][0]["parameters"]))

    second = aperture(
        "request", "create", "--from-json", str(request_file), "--api", live_api.url, "--token", ALICE
    )

    assert second.exit_code == 0, second
    with live_api.client() as client:
        copy = client.get_request(second.stdout.strip())
        assert copy.versions[0].parameters == client.get_request(first).versions[0].parameters


def test_a_request_the_coordinator_refuses_prints_every_field_problem_and_exits_4(live_api: LiveApi) -> None:
    result = aperture(
        "request", "create", MOUS_ID,
        "--cube", "5:velocity:-100:25:10:248e9",  # no spw 5 in this MOUS
        "--cube", "17:velocity:-100:2:10:248e9",  # 2 km/s channels: finer than the data's 19 km/s
        "--api", live_api.url, "--token", ALICE,
    )

    assert result.exit_code == ExitCode.REQUEST_FAILED == 4, result
    assert "HTTP 422" in result.stderr
    assert re.search(r"- cubes\.0\.spw_id: spw 5 is not a science spw of .*\[17, 19\]", result.stderr), result
    assert re.search(r"- cubes\.1\.spectral_axis\.width: \S", result.stderr), result
    assert "Traceback" not in result.stdout + result.stderr
    with live_api.client() as client:
        assert client.list_requests().total == 0


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (None, "send `Authorization: Bearer <token>`"),
        ("mistyped-token", "the token is not known"),
    ],
)
def test_a_missing_or_unknown_token_prints_the_401_and_where_to_give_one(
    live_api: LiveApi, token: str | None, message: str
) -> None:
    token_args = [] if token is None else ["--token", token]

    result = aperture("request", "list", "--api", live_api.url, *token_args)

    assert result.exit_code == ExitCode.REQUEST_FAILED, result
    assert "HTTP 401" in result.stderr and message in result.stderr
    assert "--token or the environment variable APERTURE_API_TOKEN" in result.stderr


CUBE_FORM = "Expected SPW:MODE:START:WIDTH:NCHAN[:REST_FREQ_HZ], e.g. 0:velocity:-50:5:20:230.538e9"
# (the --cube value, what the error says, whether it repeats the form: only when the syntax is wrong)
BAD_CUBES = [
    ("17:velocity:-100:25", "it has 4 part(s)", True),
    ("17:wavelength:-100:25:10:248e9", "MODE 'wavelength' is not frequency or velocity", True),
    ("x:velocity:-100:25:10:248e9", "SPW 'x' is not a whole number", True),
    ("17:velocity:-100:25:ten:248e9", "NCHAN 'ten' is not a whole number", True),
    ("17:velocity:-100:25:10", "a velocity cube needs REST_FREQ_HZ", True),
    # Well formed, but outside the contract's limits (checked here by the contract itself):
    ("17:velocity:-100:-25:10:248e9", "-25:10:248e9 WIDTH: Input should be greater than 0", False),
    ("17:frequency:230:1e6:10", "is not a radio frequency", False),
]


@pytest.mark.parametrize(("cube", "problem", "shows_form"), BAD_CUBES, ids=[cube for cube, _, _ in BAD_CUBES])
def test_a_malformed_cube_is_a_usage_error_naming_the_option_and_its_form(
    cube: str, problem: str, shows_form: bool
) -> None:
    # Nothing listens at this URL: a usage error must come before any attempt to send.
    result = aperture(
        "request", "create", MOUS_ID, "--cube", cube, "--api", "http://127.0.0.1:9", "--token", ALICE
    )

    assert result.exit_code == ExitCode.USAGE == 2, result
    flat = " ".join(result.stderr.replace("│", " ").split())
    assert "Invalid value for '--cube'" in flat, result
    assert problem in flat, result
    assert (CUBE_FORM in flat) == shows_form, result


def test_a_value_outside_the_contracts_limits_is_a_usage_error_naming_its_option() -> None:
    result = aperture(
        "request", "create", MOUS_ID, "--robust", "3", "--email", "nobody", "--api", "http://127.0.0.1:9"
    )

    assert result.exit_code == ExitCode.USAGE, result
    flat = " ".join(result.stderr.replace("│", " ").split())
    assert "'--robust' / '--email'" in flat and "--robust: Input should be less than or equal to 2" in flat


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        ([], "Invalid value for 'MOUS': give the MOUS to image (or --from-json FILE)"),
        ([MOUS_ID, "--from-json", "request.json"], "the file is the whole request: leave out MOUS"),
        (["--from-json", "request.json", "--robust", "1"], "the file is the whole request"),
        (["--from-json", "missing.json"], "Invalid value for '--from-json': cannot read missing.json"),
        (["--from-json", "not-a-request.json"], "not-a-request.json is not a request body: mous_id: Field required"),
    ],
)
def test_a_request_from_both_a_file_and_options_or_from_neither_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], problem: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "request.json").write_text(json.dumps({"mous_id": MOUS_ID}))
    (tmp_path / "not-a-request.json").write_text(json.dumps({"cubes": []}))

    result = aperture("request", "create", *args, "--api", "http://127.0.0.1:9", "--token", ALICE)

    assert result.exit_code == ExitCode.USAGE, result
    assert problem in " ".join(result.stderr.replace("│", " ").split()), result


# -- list, status, rerun, cancel ---------------------------------------------------------------------------


def test_list_shows_only_the_callers_requests(live_api: LiveApi) -> None:
    alices = create(live_api, token=ALICE)
    bobs = create(live_api, token=BOB)

    as_alice = aperture("request", "list", "--api", live_api.url, "--token", ALICE)
    as_bob = aperture("request", "list", "--api", live_api.url, env={"APERTURE_API_TOKEN": BOB})

    assert as_alice.exit_code == 0 and as_bob.exit_code == 0, (as_alice, as_bob)
    assert alices in as_alice.stdout and bobs not in as_alice.stdout
    assert bobs in as_bob.stdout and alices not in as_bob.stdout
    assert "1–1 of 1" in as_alice.stdout and "queued" in as_alice.stdout
    listed = json.loads(aperture("request", "list", "--json", "--api", live_api.url, "--token", BOB).stdout)
    assert [item["request_id"] for item in listed["requests"]] == [bobs]


def test_another_users_request_is_not_found(live_api: LiveApi) -> None:
    alices = create(live_api, token=ALICE)

    result = aperture("request", "status", alices, "--api", live_api.url, "--token", BOB)

    assert result.exit_code == ExitCode.REQUEST_FAILED, result
    assert "HTTP 404" in result.stderr and f"no request {alices}" in result.stderr


def test_status_shows_every_version_with_state_reason_and_estimate(live_api: LiveApi) -> None:
    request_id = create(live_api, "--field-size", "20")

    result = aperture("request", "status", request_id, "--api", live_api.url, "--token", ALICE)

    assert result.exit_code == 0, result
    assert request_id in result.stdout and "alice" in result.stdout
    assert "field 20″" in result.stdout and "queued" in result.stdout and "waiting for workers" in result.stdout
    # 20 arcsec of 0.3 arcsec cells is 67 x 67 pixels instead of the pipeline's 150 x 150.
    assert format_bytes(67 * 67 * 10 * 4 * 5) in result.stdout, result


def test_rerun_adds_a_version_and_keeps_the_first(live_api: LiveApi, tmp_path: Path) -> None:
    request_id = create(live_api)
    changed = RequestCreate.model_validate_json(
        json.dumps({"mous_id": MOUS_ID, "cubes": [{"spw_id": 17, "spectral_axis": {
            "mode": "velocity", "start": -100, "width": 25, "nchan": 5, "rest_frequency_hz": 248e9,
        }}]})
    )
    parameters = tmp_path / "v3.json"
    parameters.write_text(changed.model_dump_json())

    again = aperture("request", "rerun", request_id, "--api", live_api.url, "--token", ALICE)
    with_file = aperture(
        "request", "rerun", request_id, "--from-json", str(parameters), "--api", live_api.url, "--token", ALICE
    )

    assert again.exit_code == 0 and with_file.exit_code == 0, (again, with_file)
    assert f"version 3 of {request_id}" in with_file.stderr
    with live_api.client() as client:
        versions = client.get_request(request_id).versions
    assert [v.version for v in versions] == [1, 2, 3]
    assert versions[1].parameters == versions[0].parameters
    assert versions[2].parameters.cubes[0].spectral_axis.nchan == 5


def test_cancel_ends_the_unfinished_versions(live_api: LiveApi) -> None:
    request_id = create(live_api)

    result = aperture("request", "cancel", request_id, "--api", live_api.url, "--token", ALICE)

    assert result.exit_code == 0, result
    assert result.stdout.startswith(f"{request_id} version 1: cancelled (cancelled by alice)"), result
    with live_api.client() as client:
        assert [v.state for v in client.get_request(request_id).versions] == [RequestState.CANCELLED]


# -- the client on its own ----------------------------------------------------------------------------------


def test_client_dry_run_returns_the_estimate_and_create_the_stored_request(live_api: LiveApi) -> None:
    body = RequestCreate.model_validate({"mous_id": MOUS_ID, "cubes": [{"spw_id": 19, "spectral_axis": {
        "mode": "frequency", "start": 249.1e9, "width": 31.2e6, "nchan": 20,
    }}]})
    with live_api.client() as client:
        dry_run = client.create_request(body, dry_run=True)
        assert isinstance(dry_run, DryRun) and dry_run.estimate.largest_cube_bytes == 150 * 150 * 20 * 4 * 5
        assert client.list_requests().total == 0
        made = client.create_request(body)
        assert isinstance(made, RequestView) and made.versions[0].parameters == body
        assert client.list_requests(limit=1).requests == [made]


def test_client_field_problems_become_an_api_error_with_every_field(live_api: LiveApi) -> None:
    body = RequestCreate.model_validate({"mous_id": MOUS_ID, "cubes": [{"spw_id": 5, "spectral_axis": {
        "mode": "frequency", "start": 249.1e9, "width": 31.2e6, "nchan": 20,
    }}]})
    with live_api.client() as client, pytest.raises(ApiError) as refused:
        client.create_request(body)
    assert refused.value.status_code == 422
    assert [error["field"] for error in refused.value.field_errors] == ["cubes.0.spw_id"]


def test_the_token_goes_to_the_requests_endpoints_only() -> None:
    fake = FakeCoordinator()
    with ApertureClient("http://aperture.test:8000", token="secret", transport=fake.transport()) as client:
        client.list_mous()
        with pytest.raises(ApiError):  # the fake knows no requests endpoints: a 404 is fine here
            client.get_request("req-000000000001")
    mous_call, request_call = fake.requests
    assert "authorization" not in mous_call.headers
    assert request_call.headers["authorization"] == "Bearer secret"
    assert request_call.url.path == "/api/v1/requests/req-000000000001"
