"""What a test needs from the machine. Locally a missing server, tool or CASA skips the test; under
CI=true it fails it, so that a broken install can never pass as a green run."""

import os
import shutil
import sys
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def require(available: bool, what: str) -> None:
    """Skip (locally) or fail (in CI) when a server or tool the test needs is missing."""
    if available:
        return
    message = f"{what} is not available; `make infra` starts the local servers, `make venv` installs the rest"
    if IN_CI:
        pytest.fail(message + " (CI=true: a missing dependency is a failure)")
    pytest.skip(message)


def find_tool(name: str, how_to_install: str) -> str:
    """The path of a command-line tool (beside this Python first: .venv/bin need not be on PATH)."""
    beside_python = Path(sys.executable).parent / name
    found = str(beside_python) if beside_python.exists() else shutil.which(name)
    require(found is not None, f"{name} ({how_to_install})")
    assert found is not None
    return found
