"""A generated test MOUS, made once per test session with real CASA.

`generated_mous` is the fixture other suites want too (the ingest tests restore it); it lives here
because tests/conftest.py belongs to another part of the work; moving it up is a cut and paste.
"""

import importlib.util
import os
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def require_casa() -> None:
    """Skip (locally) or fail (in CI) when casatools/casatasks are not installed."""
    if importlib.util.find_spec("casatools") and importlib.util.find_spec("casatasks"):
        return
    message = "CASA (casatools, casatasks) is not installed; `make venv` installs it"
    if IN_CI:
        pytest.fail(message + " (CI=true: a missing dependency is a failure)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def casa_tools():
    """casatools, configured for offline use."""
    require_casa()
    from aperture_testdata.casa_runtime import casatools_module

    return casatools_module()


@pytest.fixture(scope="session")
def generated_mous(casa_tools, tmp_path_factory: pytest.TempPathFactory):
    """The default scenario, seed 1, with calibration tables and a .tar.gz package beside it."""
    from aperture_testdata.generator import generate_mous

    root: Path = tmp_path_factory.mktemp("generated-mous")
    return generate_mous(root / "mous", seed=1, package=root / "mous.tar.gz")
