"""Fixtures of the findcont tests: calibrated MOUSs generated once per session with real CASA (the
default scenario and the one with an all-continuum spw and a line across a spw edge)."""

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def calibrated_mous(casa_tools, tmp_path_factory: pytest.TempPathFactory):
    """The default scenario, seed 1, delivered calibrated: DATA holds calibrated visibilities, as
    findcont receives them."""
    from aperture_testdata.generator import generate_mous

    root: Path = tmp_path_factory.mktemp("findcont-mous")
    return generate_mous(root / "mous", seed=1, calibrated=True)


@pytest.fixture(scope="session")
def edge_line_mous(casa_tools, tmp_path_factory: pytest.TempPathFactory):
    """The "edge_line" scenario: spw 0 without any line, spw 1 with a line across its upper edge."""
    from aperture_testdata.generator import generate_mous

    root: Path = tmp_path_factory.mktemp("findcont-edge-line")
    return generate_mous(root / "mous", seed=1, calibrated=True, scenario="edge_line")
