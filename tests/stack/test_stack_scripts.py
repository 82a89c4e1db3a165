"""The local stack scripts (tools/stack): their exit codes, and the rule that a server the stack did not
start is reused but never stopped by it.

The integration tests need the stack up (`tools/stack/up.sh --with-postgres`). They point the scripts at
an empty state folder (APERTURE_STACK_DIR), so the running servers look "not started by the stack" to
them: that is the ownership rule under test, and it keeps the tests from stopping the shared stack.
"""

import os
import socket
import subprocess
from pathlib import Path

import pytest
from support.requirements import require

STACK_SCRIPTS = Path(__file__).resolve().parents[2] / "tools" / "stack"
PORT_OF_SERVER = {"rabbitmq": 5672, "s3": 7480, "postgres": 5432}
SERVERS = sorted(PORT_OF_SERVER)


def run_script(script: str, *args: str, state_dir: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if state_dir is not None:
        env["APERTURE_STACK_DIR"] = str(state_dir)
    return subprocess.run(
        ["bash", str(STACK_SCRIPTS / script), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def port_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


def require_server(server: str) -> None:
    """Skip when the server is not running locally; in CI (CI=true) its absence is a failure."""
    port = PORT_OF_SERVER[server]
    require(port_answers(port), f"{server} on 127.0.0.1:{port} (tools/stack/up.sh --with-postgres starts it)")


@pytest.mark.parametrize("server", SERVERS)
def test_unknown_action_is_refused_with_usage(server: str) -> None:
    result = run_script(f"{server}.sh", "restart")

    assert result.returncode == 2
    assert "usage:" in result.stderr and "start|stop|status" in result.stderr


def test_up_refuses_an_unknown_option_before_installing_anything() -> None:
    result = run_script("up.sh", "--with-everything")

    assert result.returncode == 2
    assert "usage:" in result.stderr
    assert "[install]" not in result.stderr


@pytest.mark.integration
@pytest.mark.parametrize("server", SERVERS)
def test_status_exits_zero_and_names_the_address_of_a_running_server(server: str) -> None:
    require_server(server)

    result = run_script(f"{server}.sh", "status")

    assert result.returncode == 0, result.stderr
    assert f"127.0.0.1:{PORT_OF_SERVER[server]}" in result.stderr


@pytest.mark.integration
@pytest.mark.parametrize("server", SERVERS)
def test_start_reuses_a_running_server_without_taking_ownership(server: str, tmp_path: Path) -> None:
    require_server(server)

    result = run_script(f"{server}.sh", "start", state_dir=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "reusing" in result.stderr
    assert not (tmp_path / "stack" / f"{server}.started").exists()


@pytest.mark.integration
@pytest.mark.parametrize("server", SERVERS)
def test_stop_leaves_a_server_the_stack_did_not_start_running(server: str, tmp_path: Path) -> None:
    require_server(server)

    result = run_script(f"{server}.sh", "stop", state_dir=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "nothing to stop" in result.stderr
    assert port_answers(PORT_OF_SERVER[server])
    assert run_script(f"{server}.sh", "status").returncode == 0
