"""Following an imaging request to its end and fetching what it made, against the real coordinator app:
`aperture request create/status --wait` (progress on stderr, the outcome and QA on stdout, an exit code per
ending), `request products`, `request download` (size and SHA-256 verified, from a real HTTP server standing
in for the object store), the client's wait/products/download, and the notebook handle's HTML.

A version's jobs are run by this test in the coordinator's place of workers: a thread applies the jobs'
events wave by wave while the CLI waits, each wave only after the CLI has polled the last one's state (the
app counts the polls), so every state the test expects to see shown is shown.
"""

import asyncio
import hashlib
import io
import random
import re
import shutil
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.util import find_spec
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import pytest
from aperture_cli.client import ApertureClient
from aperture_cli.errors import ProductsUnavailable, RequestWaitTimeout
from aperture_cli.main import ExitCode
from aperture_cli.notebook import ProductTable, request_html
from aperture_cli.request_commands import ProgressDisplay
from aperture_contracts.enums import ErrorClass, JobState, Stage
from aperture_contracts.events import JobSucceeded
from aperture_contracts.requests import ProductList, RequestCreate, RequestState, RequestView, VersionView
from aperture_coordinator.api import CoordinatorServices, create_app
from aperture_coordinator.db import Database
from aperture_coordinator.models import ImagingRequest
from aperture_coordinator.state import Coordinator
from coordinator.factories import (
    MOUS_ID,
    FakeClock,
    InMemoryObjectStore,
    failed,
    request_job_succeeded,
    request_jobs,
    started,
)
from sqlalchemy import select
from support.asgi import serving
from test_cli_requests import (  # noqa: F401 (completed_database is a fixture)
    ALICE,
    CUBE,
    REQUEST_ID,
    CliResult,
    aperture,
    completed_database,
    coordinator_settings,
)

# Per target (two): mfs of spws 17 and 19, the aggregate continuum and the cube of spw 17 (the first wave),
# then a previews job of each (the second).
JOBS = 16
IMAGES = 8
PRODUCTS = IMAGES * 3 + IMAGES  # pbcor, image and pb of each image, and a quicklook of each
POLL = "0.02"
FILE_BYTES = 960  # each product file the test's jobs store
RMS_RATIO_CELL = re.compile(r"│\s+1\.05 │")  # a QA table's row: the image's rms is 1.05 x the expected


class ServedStore(InMemoryObjectStore):
    """The app's object store, whose download links point at a real HTTP server serving its objects.

    `damaged` maps keys to the bytes served instead of the stored ones (a corrupted or cut transfer);
    `fetched` lists the keys served.
    """

    def __init__(self) -> None:
        super().__init__()
        self.damaged: dict[str, bytes] = {}
        self.fetched: list[str] = []
        store = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
                key = unquote(urlsplit(self.path).path.removeprefix("/"))
                if key not in store.objects:
                    self.send_error(404)
                    return
                data = store.damaged.get(key, store.objects[key][0])
                store.fetched.append(key)
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        host, port = self._server.server_address[:2]
        self.base_url = f"http://{host!s}:{port}"

    def presigned_get(self, key: str, expires: timedelta) -> str:
        return f"{self.base_url}/{quote(key)}?expires={int(expires.total_seconds())}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class PollCounter:
    """The app, counting the reads of a request's view (a wait's polls) so that the driver can pace itself.

    A read and a wave of events exclude each other (`gate`): each event commits on its own, and a poll in
    the middle of a wave would show a state that depends on timing.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.count = 0
        self.gate = threading.Lock()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if not (scope["type"] == "http" and scope["method"] == "GET" and re.fullmatch(
            r"/api/v1/requests/req-[0-9a-f]+", scope["path"]
        )):
            await self.app(scope, receive, send)
            return
        await asyncio.to_thread(self.gate.acquire)
        try:
            self.count += 1
            await self.app(scope, receive, send)
        finally:
            self.gate.release()


@dataclass
class RunningApi:
    """The coordinator's app over a completed MOUS, with the means to run its requests' jobs."""

    url: str
    database: Database
    coordinator: Coordinator
    clock: FakeClock
    store: ServedStore
    polls: PollCounter
    data: dict[str, bytes] = field(default_factory=dict)

    def client(self, token: str = ALICE) -> ApertureClient:
        return ApertureClient(self.url, token=token)

    def create(self) -> str:
        body = RequestCreate.model_validate({"mous_id": MOUS_ID, "cubes": [{"spw_id": 17, "spectral_axis": {
            "mode": "velocity", "start": -100, "width": 25, "nchan": 10, "rest_frequency_hz": 248e9,
        }}]})
        with self.client() as client:
            return client.create_request(body).request_id

    def run_wave(self, request_id: str, *, rms_ratio: float = 1.05) -> list[str]:
        """Succeed every dispatched or running job of version 1 (as factories.run_request_wave does), with
        outputs whose bytes are in the store, so that their links serve exactly what the events recorded."""
        with self.polls.gate:
            wave = [job for job in request_jobs(self.database, request_id)
                    if job.state in (JobState.DISPATCHED, JobState.RUNNING)]
            for job in wave:
                if job.state is JobState.DISPATCHED:
                    self.coordinator.apply_event(started(
                        job.job_id, at=self.clock.advance(1), stage=job.stage, worker=f"{job.stage.value}:1",
                        mous_id=job.mous_id,
                    ))
                done = request_job_succeeded(job, at=self.clock.advance(1), rms_ratio=rms_ratio)
                self.coordinator.apply_event(self.stored(done))
        return [job.job_id for job in wave]

    def stored(self, event: JobSucceeded) -> JobSucceeded:
        outputs = []
        for ref in event.outputs:
            data = (f"SIMPLE = T / {ref.key}\n" * 20).encode()[:FILE_BYTES]  # its key first: unique
            self.data[ref.key] = data
            outputs.append(self.store.put_bytes(ref.key, data, ref.content_type))
        return event.model_copy(update={"outputs": outputs})

    def run_to_the_end(self, request_id: str, *, rms_ratio: float = 1.05) -> None:
        while self.run_wave(request_id, rms_ratio=rms_ratio):
            pass

    def start_one(self, request_id: str) -> None:
        job = next(job for job in request_jobs(self.database, request_id) if job.state is JobState.DISPATCHED)
        self.coordinator.apply_event(started(
            job.job_id, at=self.clock.advance(1), stage=job.stage, worker="imaging:1", mous_id=job.mous_id
        ))

    def fail_the_cube(self, request_id: str) -> None:
        cube = next(job for job in request_jobs(self.database, request_id) if job.kind == "cube")
        with self.polls.gate:
            self.coordinator.apply_event(started(
                cube.job_id, at=self.clock.advance(1), stage=Stage.IMAGING, worker="imaging:1", mous_id=cube.mous_id
            ))
            self.coordinator.apply_event(failed(
                cube.job_id, ErrorClass.BAD_INPUT, at=self.clock.advance(1), stage=Stage.IMAGING,
                message="no visibilities selected in spw 17", mous_id=cube.mous_id,
            ))

    def await_polls(self, more: int = 2) -> None:
        """Until the waiting client has read the request `more` times from now: with 2, one whole poll
        began after everything done so far was committed, so it was shown."""
        target = self.polls.count + more
        deadline = time.monotonic() + 20
        while self.polls.count < target:
            assert time.monotonic() < deadline, "the client stopped polling"
            time.sleep(0.005)

    def await_request(self) -> str:
        """The id of the first request made (by a CLI command running meanwhile)."""
        deadline = time.monotonic() + 20
        while True:
            with self.database.transaction() as session:
                found = session.scalar(select(ImagingRequest.id))
            if found is not None:
                return found
            assert time.monotonic() < deadline, "no request was made"
            time.sleep(0.005)


@pytest.fixture
def api(completed_database: Path, tmp_path: Path) -> Iterator[RunningApi]:  # noqa: F811 (the imported fixture)
    database_file = tmp_path / "coordinator.db"
    shutil.copyfile(completed_database, database_file)
    settings = coordinator_settings(database_file)
    database = Database(settings.database_url)
    clock = FakeClock()
    clock.advance(24 * 3600)  # after the MOUS's own processing, which the factory ran on such a clock
    coordinator = Coordinator(database, settings, clock=clock, rng=random.Random(1))
    store = ServedStore()
    polls = PollCounter(
        create_app(settings, CoordinatorServices(database=database, coordinator=coordinator, store=store))
    )
    try:
        with serving(polls) as url:
            yield RunningApi(url, database, coordinator, clock, store, polls)
    finally:
        store.close()
        database.dispose()


@contextmanager
def in_background(work: Callable[[], None]) -> Iterator[None]:
    """Run `work` in a thread while the block runs; its failure fails the test."""
    failures: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as error:  # re-raised in the test's thread below
            failures.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield
    thread.join(timeout=30)
    assert not thread.is_alive(), "the background work did not finish"
    if failures:
        raise failures[0]


def succeed_all(api: RunningApi, request_id: str, rms_ratio: float = 1.05) -> None:
    """Wave after wave, each once the waiting client has seen the one before (a wait ends at the last)."""
    api.await_polls()
    while api.run_wave(request_id, rms_ratio=rms_ratio):
        if all(job.state.terminal for job in request_jobs(api.database, request_id)):
            return
        api.await_polls()


def cli(api: RunningApi, *args: str) -> CliResult:
    return aperture("request", *args, "--api", api.url, "--token", ALICE)


def progress_lines(result: CliResult) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("version 1 ")]


def flat(text: str) -> str:
    return " ".join(text.replace("│", " ").split())


# -- waiting ----------------------------------------------------------------------------------------------


def test_create_with_wait_shows_progress_until_the_version_ends_then_its_qa(api: RunningApi) -> None:
    with in_background(lambda: succeed_all(api, api.await_request())):
        result = cli(api, "create", MOUS_ID, "--cube", CUBE, "--wait", "--poll-interval", POLL)

    assert result.exit_code == ExitCode.OK == 0, result
    request_id = result.stdout.splitlines()[0]
    assert REQUEST_ID.match(request_id), result
    # Not a terminal: a line per change, no carriage returns, each state of the version shown once.
    assert progress_lines(result) == [
        "version 1 queued [....................] 0/16 jobs",
        "version 1 running [##########..........] 8/16 jobs",
        "version 1 succeeded [####################] 16/16 jobs",
    ], result
    assert "\r" not in result.stderr
    assert f"{request_id} version 1: succeeded, QA passed" in result.stdout
    assert "reason: 8 images made; every image passed QA" in result.stdout
    assert re.search(r"16/16 jobs in \d+s", result.stdout), result  # from its start and end times
    assert "QA per image" in result.stdout
    with api.client() as client:
        checks = client.get_request(request_id).versions[0].qa
    assert len(checks) == IMAGES
    assert len(RMS_RATIO_CELL.findall(result.stdout)) == IMAGES, result
    assert f"aperture request download {request_id} --version 1" in result.stderr


@dataclass(frozen=True)
class Ending:
    """How a version is driven to its end, and what `status --wait` must then say."""

    drive: Callable[[RunningApi, str], None]
    exit_code: ExitCode
    headline: str
    shown: list[str]


def _fail_then_finish(api: RunningApi, request_id: str) -> None:
    api.await_polls()
    api.fail_the_cube(request_id)
    succeed_all(api, request_id)


def _cancel_midway(api: RunningApi, request_id: str) -> None:
    api.await_polls()
    api.run_wave(request_id)
    api.await_polls()
    with api.client() as client:
        client.cancel_request(request_id)


ENDINGS = {
    "passed": Ending(succeed_all, ExitCode.OK, "succeeded, QA passed", ["every image passed QA"]),
    "qa-not-passed": Ending(
        lambda api, request_id: succeed_all(api, request_id, rms_ratio=3.0), ExitCode.QA_NOT_PASSED,
        "succeeded, QA not passed", ["3.00 x the expected", "not passed"],
    ),
    "failed": Ending(
        _fail_then_finish, ExitCode.VERSION_FAILED, "failed, QA not passed",
        ["failed: imaging cube", "no visibilities selected in spw 17"],
    ),
    "cancelled": Ending(_cancel_midway, ExitCode.VERSION_CANCELLED, "cancelled, QA not passed", ["cancelled by alice"]),
}


@pytest.mark.parametrize("ending", ENDINGS.values(), ids=ENDINGS.keys())
def test_status_wait_ends_with_an_exit_code_per_ending(api: RunningApi, ending: Ending) -> None:
    request_id = api.create()

    with in_background(lambda: ending.drive(api, request_id)):
        result = cli(api, "status", request_id, "--wait", "--poll-interval", POLL)

    assert result.exit_code == ending.exit_code, result
    assert f"{request_id} version 1: {ending.headline}" in result.stdout, result
    for text in ending.shown:
        assert text in flat(result.stdout), (text, result)
    lines = progress_lines(result)
    assert lines[0] == "version 1 queued [....................] 0/16 jobs", result
    assert lines[-1].startswith(f"version 1 {ending.headline.split(',')[0]} ["), result
    assert len(lines) == len(set(lines)), result


def test_exit_codes_are_distinct_and_documented() -> None:
    endings = [ExitCode.OK, ExitCode.QA_NOT_PASSED, ExitCode.VERSION_FAILED, ExitCode.VERSION_CANCELLED]
    assert len({int(code) for code in ExitCode}) == len(ExitCode)
    assert [int(code) for code in endings] == [0, 7, 8, 9]
    result = aperture("--help")
    assert "7 a request version's images did not pass QA" in flat(result.stdout), result


def test_a_wait_past_its_timeout_exits_6_and_says_where_the_version_is(api: RunningApi) -> None:
    request_id = api.create()

    result = cli(api, "status", request_id, "--wait", "--timeout", "0.1", "--poll-interval", POLL)

    assert result.exit_code == ExitCode.WAIT_TIMEOUT == 6, result
    assert f"version 1 of {request_id} is still queued after 0.1 s (0 of 16 jobs done)" in flat(result.stderr)
    assert f"aperture request status {request_id}" in flat(result.stderr)


def test_status_wait_json_prints_the_ended_request_as_the_api_has_it(api: RunningApi) -> None:
    request_id = api.create()
    api.run_to_the_end(request_id, rms_ratio=3.0)

    result = cli(api, "status", request_id, "--wait", "--json", "--poll-interval", POLL)

    assert result.exit_code == ExitCode.QA_NOT_PASSED, result
    [version] = RequestView.model_validate_json(result.stdout).versions
    assert version.state is RequestState.SUCCEEDED and version.passed_qa is False
    assert progress_lines(result) == ["version 1 succeeded [####################] 16/16 jobs"]


def test_ctrl_c_stops_waiting_and_says_the_request_goes_on(api: RunningApi, monkeypatch: pytest.MonkeyPatch) -> None:
    request_id = api.create()

    def interrupted(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(ApertureClient, "wait_for_request", interrupted)
    result = cli(api, "status", request_id, "--wait")

    assert result.exit_code == ExitCode.INTERRUPTED == 130, result
    assert f"stopped waiting; {request_id} goes on" in flat(result.stderr)
    assert f"`aperture request cancel {request_id}` stops it" in flat(result.stderr)
    with api.client() as client:
        assert client.get_request(request_id).versions[0].state is RequestState.QUEUED


def test_on_a_terminal_the_progress_is_one_line_redrawn_in_place(api: RunningApi) -> None:
    request_id = api.create()
    with api.client() as client:
        queued = client.get_request(request_id).versions[0]
    running = queued.model_copy(update={
        "state": RequestState.RUNNING, "progress": queued.progress.model_copy(update={"succeeded": 3, "running": 2}),
    })
    stream = io.StringIO()
    display = ProgressDisplay(stream, redraw=True)

    for version in (queued, queued, running):
        display.show(version)
    display.close()

    first = "version 1 queued [....................] 0/16 jobs"
    second = "version 1 running [####................] 3/16 jobs, 2 running"
    assert stream.getvalue() == f"\r{first}\r{second}\n"


def test_status_shows_each_job_and_the_qa_per_image(api: RunningApi) -> None:
    request_id = api.create()
    api.run_wave(request_id)
    api.start_one(request_id)

    running = cli(api, "status", request_id)
    api.run_to_the_end(request_id)
    ended = cli(api, "status", request_id, "--version", "1")

    assert running.exit_code == 0 and ended.exit_code == 0, (running, ended)
    assert "version 1 running [##########..........] 8/16 jobs, 1 running" in running.stdout, running
    job_lines = [line for line in running.stdout.splitlines() if re.match(r"^│ (imaging|previews) ", line)]
    assert len(job_lines) == JOBS, running
    assert sum("succeeded" in line for line in job_lines) == 8 and sum("running" in line for line in job_lines) == 1
    assert "QA per image" in running.stdout  # the images made so far
    assert "version 1 succeeded [####################] 16/16 jobs" in ended.stdout, ended
    assert len(RMS_RATIO_CELL.findall(ended.stdout)) == IMAGES, ended


def test_the_client_waits_for_the_latest_version_and_reports_each_poll(api: RunningApi) -> None:
    request_id = api.create()
    seen: list[VersionView] = []

    with api.client() as client, in_background(lambda: succeed_all(api, request_id)):
        request = client.wait_for_request(request_id, poll_s=0.02, on_progress=seen.append)

    assert request.versions[0].state is RequestState.SUCCEEDED
    assert [ended for ended in dict.fromkeys(v.progress.succeeded for v in seen)] == [0, 8, 16]


def test_the_client_wait_past_its_timeout_raises_with_the_version_as_it_was(api: RunningApi) -> None:
    request_id = api.create()

    with api.client() as client, pytest.raises(RequestWaitTimeout, match="still queued after 0.05 s") as caught:
        client.wait_for_request(request_id, poll_s=0.01, timeout_s=0.05)

    assert caught.value.version.state is RequestState.QUEUED and caught.value.version.version == 1


# -- products and downloads ----------------------------------------------------------------------------------


def test_products_lists_the_files_and_json_is_a_product_list(api: RunningApi) -> None:
    request_id = api.create()
    api.run_to_the_end(request_id)

    table = cli(api, "products", request_id)
    as_json = cli(api, "products", request_id, "--version", "1", "--json")

    assert table.exit_code == 0 and as_json.exit_code == 0, (table, as_json)
    listing = ProductList.model_validate_json(as_json.stdout)
    assert (listing.request_id, listing.version, listing.state) == (request_id, 1, RequestState.SUCCEEDED)
    assert len(listing.products) == PRODUCTS
    assert sorted({product.kind for product in listing.products}) == ["image", "pb", "pbcor", "quicklook"]
    assert all(product.url.startswith(api.store.base_url) for product in listing.products)
    assert f"{request_id} version 1: succeeded, QA passed" in table.stdout
    assert f"{PRODUCTS} files" in table.stdout
    assert table.stdout.count("pbcor.fits") == IMAGES, table


def test_download_fetches_every_product_verified_and_keeps_intact_files(api: RunningApi, tmp_path: Path) -> None:
    request_id = api.create()
    api.run_to_the_end(request_id)

    first = cli(api, "download", request_id, "--to", str(tmp_path))
    fetched = len(api.store.fetched)
    again = cli(api, "download", request_id, "--version", "1", "--to", str(tmp_path))

    assert first.exit_code == 0 and again.exit_code == 0, (first, again)
    folder = tmp_path / request_id / "v1"
    files = sorted(path for path in folder.rglob("*") if path.is_file())
    assert len(files) == PRODUCTS and fetched == PRODUCTS
    with api.client() as client:
        listing = client.request_products(request_id)
    for product in listing.products:
        data = (folder / product.name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == product.sha256 and len(data) == product.size
    assert first.stdout.count("sha256 ok") == PRODUCTS
    assert again.stdout.count("already there, checksum ok") == PRODUCTS
    assert len(api.store.fetched) == fetched, "nothing fetched the second time"


def test_download_of_some_kinds_only(api: RunningApi, tmp_path: Path) -> None:
    request_id = api.create()
    api.run_to_the_end(request_id)

    result = cli(api, "download", request_id, "--to", str(tmp_path), "--kind", "pbcor", "--kind", "pb")
    unknown = cli(api, "download", request_id, "--to", str(tmp_path), "--kind", "pbcr")

    assert result.exit_code == 0, result
    names = sorted(path.name for path in (tmp_path / request_id / "v1").rglob("*.fits"))
    assert len(names) == 2 * IMAGES and all(name.endswith((".pbcor.fits", ".pb.fits")) for name in names)
    assert unknown.exit_code == ExitCode.DOWNLOAD_FAILED, unknown
    assert "no products of kind pbcr; its kinds are: image, pb, pbcor, quicklook" in flat(unknown.stderr)


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda data: data[:-1] + b"!", "the downloaded bytes have SHA-256"),
        (lambda data: data[:-7], f"brought {FILE_BYTES - 7} bytes, but the stored product has {FILE_BYTES}"),
        (lambda data: data + b"more", f"the download brought more than {FILE_BYTES} bytes"),
    ],
    ids=["corrupted", "cut-short", "too-long"],
)
def test_a_damaged_download_is_refused_and_leaves_no_file(
    api: RunningApi, tmp_path: Path, damage: Callable[[bytes], bytes], problem: str
) -> None:
    request_id = api.create()
    api.run_to_the_end(request_id)
    with api.client() as client:
        victim = next(product for product in client.request_products(request_id).products if product.kind == "pbcor")
    key = next(key for key in api.data if key.endswith("/" + victim.name))
    api.store.damaged[key] = damage(api.data[key])

    result = cli(api, "download", request_id, "--to", str(tmp_path), "--kind", "pbcor")

    assert result.exit_code == ExitCode.DOWNLOAD_FAILED == 5, result
    assert f"error: {victim.name}: " in flat(result.stderr) and problem in flat(result.stderr), result
    assert f"aperture request rerun {request_id}" in flat(result.stderr)
    assert not (tmp_path / request_id / "v1" / victim.name).exists()
    assert not list(tmp_path.rglob("*.part"))


def test_products_of_a_running_version_say_why_there_are_none_yet(api: RunningApi, tmp_path: Path) -> None:
    request_id = api.create()
    api.run_wave(request_id)
    api.start_one(request_id)

    result = cli(api, "download", request_id, "--to", str(tmp_path / "products"))

    assert result.exit_code == ExitCode.REQUEST_FAILED, result
    assert (
        f"version 1 of {request_id} is running (8 of 16 jobs done): its products can be fetched once it has ended; "
        f"`aperture request status {request_id} --wait` waits for that"
    ) in flat(result.stderr), result
    assert not (tmp_path / "products").exists()


def test_products_of_a_cancelled_version_say_it_was_cancelled(api: RunningApi) -> None:
    request_id = api.create()
    with api.client() as client:
        client.cancel_request(request_id)
        with pytest.raises(ProductsUnavailable, match=r"was cancelled \(cancelled by alice\): it has no products"):
            client.request_products(request_id)

    result = cli(api, "products", request_id)

    assert result.exit_code == ExitCode.REQUEST_FAILED, result
    assert f"aperture request rerun {request_id}" in flat(result.stderr)


def test_the_client_downloads_into_a_folder_per_request_and_version(api: RunningApi, tmp_path: Path) -> None:
    request_id = api.create()
    api.run_to_the_end(request_id)

    with api.client() as client:
        paths = client.download_request(request_id, into=tmp_path, kinds={"quicklook"})

    assert len(paths) == IMAGES
    assert all(path.parent.is_relative_to(tmp_path / request_id / "v1") for path in paths)
    assert all(path.read_bytes() == api.data[next(k for k in api.data if k.endswith(path.name))] for path in paths)


# -- cancel -------------------------------------------------------------------------------------------------


def test_request_cancel_prints_the_cancelled_state_and_aperture_cancel_points_to_it(api: RunningApi) -> None:
    request_id = api.create()

    mistaken = aperture("cancel", request_id, "--api", api.url)
    result = cli(api, "cancel", request_id)
    again = cli(api, "cancel", request_id)

    assert mistaken.exit_code == ExitCode.USAGE, mistaken
    assert f"`aperture request cancel {request_id}` cancels it" in flat(mistaken.stderr)
    assert result.exit_code == 0, result
    assert result.stdout.splitlines()[0] == f"{request_id} version 1: cancelled (cancelled by alice)"
    assert again.exit_code == 0 and "nothing to cancel" in again.stderr, again


# -- the notebook -------------------------------------------------------------------------------------------


def test_the_notebook_handle_shows_state_progress_and_qa_and_the_products_table(api: RunningApi) -> None:
    request_id = api.create()
    api.run_to_the_end(request_id)

    with api.client() as client:
        handle = client.request(request_id)
        page = handle._repr_html_()
        products = handle.products()

    assert handle.state is RequestState.SUCCEEDED and handle.passed_qa is True
    assert f"<strong>{request_id}</strong>" in page
    assert f'<progress value="{JOBS}" max="{JOBS}"></progress>' in page
    assert page.count("<tr>") == 1 + IMAGES  # the QA table's header and a row per image
    table = products._repr_html_()
    assert len(products) == PRODUCTS and table.count("<tr>") == 1 + PRODUCTS
    first = products.listing.products[0]
    assert f'<a href="{first.url}" target="_blank"' in table  # the store's plain URLs need no escaping
    assert f"<td>{first.size / 1e6:.2f}</td>" in table


def test_the_notebook_html_escapes_what_the_api_says(api: RunningApi) -> None:
    request_id = api.create()
    api.run_to_the_end(request_id)
    evil = "<script>alert(1)</script>"
    with api.client() as client:
        view = client.get_request(request_id)
        listing = client.request_products(request_id)
    version = view.versions[0]
    version = version.model_copy(update={
        "reason": evil, "qa": [check.model_copy(update={"target": evil}) for check in version.qa],
    })
    listing = listing.model_copy(update={"products": [
        product.model_copy(update={"target": evil, "name": evil}) for product in listing.products
    ] + [listing.products[0].model_copy(update={"url": "javascript:alert(1)"})]})

    pages = [request_html(view, version), ProductTable(listing)._repr_html_()]

    for page in pages:
        assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "javascript:" not in pages[1]


def test_the_notebook_handle_waits_printing_a_line_per_change_without_ipython(
    api: RunningApi, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "IPython", None)  # as where IPython is not installed
    request_id = api.create()

    with api.client() as client:
        handle = client.request(request_id)
        with in_background(lambda: succeed_all(api, request_id)):
            assert handle.wait(poll_s=0.02) is handle

    assert handle.state is RequestState.SUCCEEDED
    assert capsys.readouterr().out.splitlines() == [
        "version 1 queued [....................] 0/16 jobs",
        "version 1 running [##########..........] 8/16 jobs",
        "version 1 succeeded [####################] 16/16 jobs",
    ]


def test_the_notebook_handle_updates_one_display_in_place_under_ipython(
    api: RunningApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    shown: list[Any] = []

    class DisplayHandle:
        def update(self, obj: Any) -> None:
            shown.append(obj)

    def display(obj: Any, display_id: bool = False) -> DisplayHandle:
        assert display_id is True
        shown.append(obj)
        return DisplayHandle()

    ipython = types.ModuleType("IPython")
    ipython.get_ipython = lambda: object()  # type: ignore[attr-defined]
    ipython_display = types.ModuleType("IPython.display")
    ipython_display.display = display  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    monkeypatch.setitem(sys.modules, "IPython.display", ipython_display)
    request_id = api.create()

    with api.client() as client:
        handle = client.request(request_id)
        with in_background(lambda: succeed_all(api, request_id)):
            handle.wait(poll_s=0.02)

    pages = [item._repr_html_() for item in shown]
    assert pages[0].count("<progress") == 1 and 'value="0" max="16"' in pages[0]
    assert 'value="16" max="16"' in pages[-1] and "succeeded" in pages[-1]
    assert any('value="8" max="16"' in page for page in pages)


def test_the_notebook_wait_with_a_timeout_raises(api: RunningApi) -> None:
    request_id = api.create()

    with api.client() as client, pytest.raises(RequestWaitTimeout, match=f"version 1 of {request_id} is still"):
        client.request(request_id).wait(progress=False, poll_s=0.01, timeout_s=0.05)


def test_products_to_pandas_needs_pandas(api: RunningApi) -> None:
    request_id = api.create()
    api.run_to_the_end(request_id)
    with api.client() as client:
        products = client.request(request_id).products()

    if find_spec("pandas") is None:
        with pytest.raises(ImportError, match=r"needs pandas, which is not installed.*ProductTable\.rows\(\)"):
            products.to_pandas()
    else:
        frame = products.to_pandas()
        assert len(frame) == PRODUCTS and list(frame.columns)[:2] == ["name", "kind"]
    assert len(products.rows()) == PRODUCTS and products.rows()[0]["url"] == products.listing.products[0].url
