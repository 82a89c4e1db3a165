"""The Dockerfiles and the compose file against the code they run: entry points that exist, settings
that the services actually read, health checks that answer. No Docker needed."""

import re
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from aperture_calibration.settings import CalibrationSettings
from aperture_coordinator.settings import CoordinatorSettings
from aperture_export.settings import ExportSettings
from aperture_findcont.settings import FindcontSettings
from aperture_footprint.settings import FootprintSettings
from aperture_imaging.settings import ImagingSettings
from aperture_ingest.settings import IngestSettings
from aperture_previews.settings import PreviewsSettings
from aperture_shared.settings import CasaSettings
from pydantic_settings import BaseSettings
from settings_fields import variable_is_read

ROOT = Path(__file__).resolve().parents[2]
BASE_DOCKERFILE = ROOT / "docker" / "base.Dockerfile"
HEALTHCHECK_SCRIPT = ROOT / "docker" / "healthcheck.py"
SERVICES: dict[str, type[BaseSettings]] = {
    "coordinator": CoordinatorSettings, "ingest": IngestSettings, "calibration": CalibrationSettings,
    "findcont": FindcontSettings, "imaging": ImagingSettings,
    "previews": PreviewsSettings, "footprint": FootprintSettings, "export": ExportSettings,
}


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", dockerfile.read_text())
    pairs = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, arguments = line.partition(" ")
            pairs.append((keyword.upper(), " ".join(arguments.split())))
    return pairs


def env_names(dockerfile: Path) -> set[str]:
    names = set()
    for keyword, arguments in instructions(dockerfile):
        if keyword == "ENV":
            names.update(re.findall(r"(\w+)=", arguments))
    return names


def compose_file() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_service_image_runs_an_entry_point_its_package_declares(service: str) -> None:
    [command] = [
        arguments
        for keyword, arguments in instructions(ROOT / "services" / service / "Dockerfile")
        if keyword == "CMD"
    ]
    program = yaml.safe_load(command)[0]
    scripts = tomllib.loads((ROOT / "services" / service / "pyproject.toml").read_text())["project"][
        "scripts"
    ]

    assert program in scripts


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_every_aperture_variable_set_for_a_service_is_a_setting_it_reads(service: str) -> None:
    """pydantic-settings ignores unknown variables, so a misspelt one would silently do nothing."""
    set_in_dockerfiles = env_names(BASE_DOCKERFILE) | env_names(ROOT / "services" / service / "Dockerfile")
    set_in_compose = set(compose_file()["services"][service]["environment"])
    aperture_variables = {
        name for name in set_in_dockerfiles | set_in_compose if name.startswith("APERTURE_")
    }

    assert aperture_variables
    unread = sorted(
        name for name in aperture_variables if not variable_is_read(name, SERVICES[service], CasaSettings)
    )
    assert unread == []


@pytest.mark.parametrize(
    ("service", "port_variable"), [("coordinator", "APERTURE_API_PORT"), ("ingest", "APERTURE_HTTP_PORT")]
)
def test_health_check_probes_healthz_on_the_port_the_service_listens_on(
    service: str, port_variable: str
) -> None:
    dockerfile = ROOT / "services" / service / "Dockerfile"
    [health] = [arguments for keyword, arguments in instructions(dockerfile) if keyword == "HEALTHCHECK"]

    assert f"http://127.0.0.1:${{{port_variable}}}/healthz" in health
    assert port_variable in env_names(dockerfile)
    assert port_variable in compose_file()["services"][service]["environment"]


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_service_images_build_from_the_shared_base_image(service: str) -> None:
    steps = instructions(ROOT / "services" / service / "Dockerfile")
    declared = compose_file()["services"]

    assert ("FROM", "${BASE_IMAGE}") in steps
    assert declared[service]["build"]["args"]["BASE_IMAGE"] == declared["base"]["image"]
    assert declared[service]["build"]["context"] == f"services/{service}"
    assert declared["base"]["build"]["dockerfile"] == "docker/base.Dockerfile"


def test_base_image_installs_the_locked_dependencies_before_the_code_and_runs_unprivileged() -> None:
    every_step = instructions(BASE_DOCKERFILE)
    # The image is the last stage; the stages before it only build what it copies (Aladin Lite).
    last_from = max(index for index, (keyword, _) in enumerate(every_step) if keyword == "FROM")
    steps = every_step[last_from:]
    syncs = [
        index
        for index, (keyword, arguments) in enumerate(steps)
        if keyword == "RUN" and "uv sync" in arguments
    ]

    assert steps[0] == ("FROM", "python:3.11-slim-bookworm")
    assert len(syncs) == 2
    first, second = (steps[index][1] for index in syncs)
    assert "--frozen" in first and "--no-install-workspace" in first and "--no-dev" in first
    assert "--frozen" in second and "--no-dev" in second
    # Only the lock and the pyproject files reach the dependency layer, so code changes keep its cache.
    copied_before = [
        arguments
        for keyword, arguments in steps[: syncs[0]]
        if keyword == "COPY" and "--from" not in arguments
    ]
    sources = [path for arguments in copied_before for path in arguments.split()[:-1]]
    assert sources and all(Path(path).name in {"pyproject.toml", "uv.lock"} for path in sources)
    assert [arguments for keyword, arguments in steps if keyword == "USER"][-1] == "aperture"


@pytest.fixture
def health_server() -> Iterator[str]:
    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
            status = {"/healthz": 200, "/readyz": 503}.get(self.path, 404)
            self.send_response(status)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.mark.parametrize(("path", "exit_code"), [("/healthz", 0), ("/readyz", 1), ("/missing", 1)])
def test_health_check_script_passes_only_on_a_2xx_answer(
    health_server: str, path: str, exit_code: int
) -> None:
    result = subprocess.run(
        [sys.executable, str(HEALTHCHECK_SCRIPT), health_server + path],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert result.returncode == exit_code, result.stderr


def test_health_check_script_fails_when_nothing_listens() -> None:
    result = subprocess.run(
        [sys.executable, str(HEALTHCHECK_SCRIPT), "http://127.0.0.1:1/healthz"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert result.returncode == 1
    assert "http://127.0.0.1:1/healthz" in result.stderr
