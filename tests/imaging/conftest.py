"""Fixtures of the imaging tests: a calibrated simulated MOUS with its truth, astropy for reading FITS,
and a way to run the service's CASA steps as the worker does (in a CASA child process)."""

import asyncio
import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.requirements import require


@pytest.fixture(scope="session")
def calibrated_mous(casa_tools, tmp_path_factory: pytest.TempPathFactory):
    """The default scenario, seed 1, delivered calibrated: 25 antennas, SimGalaxy with a point source
    and a Gaussian disc, CO(2-1) in spw 0 and 13CO(2-1) in spw 1 (64 channels each)."""
    from aperture_testdata.generator import generate_mous

    root: Path = tmp_path_factory.mktemp("calibrated-mous")
    generated = generate_mous(root / "mous", seed=1, calibrated=True)
    assert generated.truth.calibrated
    return generated


@pytest.fixture(scope="session")
def astropy_fits():
    require(importlib.util.find_spec("astropy") is not None, "astropy (installed with the dev group, via pyuvdata)")
    from astropy.io import fits

    return fits


@pytest.fixture(scope="session")
def casa_step(casa_tools) -> Callable[[str, dict[str, Any], Path], Any]:
    """Run one of the service's CASA steps in a CASA child process, as JobContext.casa does; returns
    what the step returned (JSON) and how long it took."""
    from aperture_shared.casa.runner import run_casa_step

    def run(function: str, arguments: dict[str, Any], workdir: Path) -> tuple[Any, float]:
        result = asyncio.run(
            run_casa_step(
                f"aperture_imaging.steps:{function}", arguments, workdir=workdir, time_limit_s=300,
                memory_limit_mb=6144,
            )
        )
        return result.value, result.duration_s

    return run
