"""Fixtures of the ingest tests: CASA configured in this process, and copies of the real Measurement Sets
that the pyuvdata 2.4.5 wheel carries (never the installed files themselves).

The MSs used are named in real_measurement_sets.py.
"""

import shutil
import tarfile
import warnings
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from real_measurement_sets import ALMA_EXCERPT
from support.requirements import require


@pytest.fixture(scope="session")
def casa(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    """casatools, configured for offline data in this process; casatasks imported too.

    casatasks 6.7 holds invalid escape sequences and `is not ''` comparisons; where no bytecode cache
    is written (PYTHONDONTWRITEBYTECODE) they are compiled at every import, and pytest's
    warnings-as-errors would turn the compiler's warnings into a SyntaxError.
    """
    try:
        from aperture_shared.casa.config import configure_offline

        configure_offline(tmp_path_factory.mktemp("casa-log") / "casa.log")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            import casatasks  # type: ignore[import-untyped]  # noqa: F401
            import casatools  # type: ignore[import-untyped]
    except ImportError as error:
        require(False, f"CASA (casatools/casatasks: {error})")
    return casatools


@pytest.fixture(scope="session")
def pristine(pyuvdata_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """A session-wide read-only copy of one of the wheel's MSs, for tests that only read it."""
    root = tmp_path_factory.mktemp("pristine")

    def get(name: str) -> Path:
        target = root / name
        if not target.exists():
            _copy_measurement_set(pyuvdata_data, name, root)
        return target

    return get


@pytest.fixture
def ms_copy(pyuvdata_data: Path, tmp_path: Path) -> Callable[[str], Path]:
    """A fresh copy of one of the wheel's MSs in this test's directory, free to modify."""

    def get(name: str, into: Path | None = None) -> Path:
        folder = into or tmp_path / "copies"
        folder.mkdir(parents=True, exist_ok=True)
        return _copy_measurement_set(pyuvdata_data, name, folder)

    return get


def _copy_measurement_set(data: Path, name: str, into: Path) -> Path:
    if name == ALMA_EXCERPT:
        with tarfile.open(data / f"{ALMA_EXCERPT}.tar.gz") as tar:
            tar.extractall(into, filter="data")
    else:
        shutil.copytree(data / name, into / name)
    return into / name
