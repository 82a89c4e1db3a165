"""Fixtures of the calibration tests: an uncalibrated simulated MOUS (raw DATA with the injected gain
errors; its tables are never applied), the same with a broken antenna, a bright target without
calibrators for self-calibration, real VLA Measurement Sets without intents, and CASA in-process."""

import shutil
from pathlib import Path
from types import ModuleType

import pytest


@pytest.fixture(scope="session")
def casatasks(casa_tools) -> ModuleType:
    """casatasks in this process, configured for offline data (through the casa_tools fixture)."""
    from aperture_testdata.casa_runtime import casatasks_module

    return casatasks_module()


@pytest.fixture(scope="session")
def uncalibrated_mous(casa_tools, tmp_path_factory: pytest.TempPathFactory):
    """The default scenario with seed 2: DATA hold the sky times the antenna gains in truth.json, plus
    noise. The generator also writes tables that would restore it; nothing here applies them."""
    from aperture_testdata.generator import generate_mous

    root: Path = tmp_path_factory.mktemp("uncalibrated-mous")
    generated = generate_mous(root / "mous", seed=2, calibrated=False)
    assert generated.truth.gains is not None and not generated.truth.calibrated
    return generated


@pytest.fixture(scope="session")
def bad_antenna_mous(casa_tools, tmp_path_factory: pytest.TempPathFactory):
    """The 'bad_antenna' scenario with seed 2: the uncalibrated default MOUS with one antenna (DA45 in truth)
    whose gain takes a random phase and a 5-60 % amplitude in every integration, its data left unflagged."""
    from aperture_testdata.generator import generate_mous

    root: Path = tmp_path_factory.mktemp("bad-antenna-mous")
    generated = generate_mous(root / "mous", seed=2, scenario="bad_antenna")
    assert generated.truth.gains is not None and generated.truth.broken_antenna is not None
    return generated


@pytest.fixture(scope="session")
def selfcal_mous(casa_tools, tmp_path_factory: pytest.TempPathFactory):
    """The 'selfcal' scenario with seed 3: a 0.4 Jy target observed alone, no calibrators, its DATA carrying
    the antenna gains in truth.json (phases varying within scans) plus noise; no restore tables."""
    from aperture_testdata.generator import generate_mous

    root: Path = tmp_path_factory.mktemp("selfcal-mous")
    generated = generate_mous(root / "mous", seed=3, scenario="selfcal")
    assert generated.truth.gains is not None and generated.truth.calibration is None
    return generated


@pytest.fixture(scope="session")
def restored_mous(generated_mous, tmp_path_factory: pytest.TempPathFactory):
    """The generated package restored the way ingest restores it (its tables applied, the calibrated MS
    split out): calibrated DATA that keep their calibrator intents. Returns ingest's step result."""
    from aperture_ingest.steps import ingest_package
    from aperture_shared.casa.calls import CasaCallLog

    root: Path = tmp_path_factory.mktemp("restored-mous")
    restored = ingest_package(
        {"package": str(generated_mous.package), "unpack_dir": str(root / "unpacked"),
         "output_dir": str(root / "restored")},
        CasaCallLog(),
    )  # fmt: skip
    assert restored.metadata.calibrated
    return restored


# A real VLA excerpt (one source, J1008+0730, one spw of 64 channels): its STATE table records no intents.
VLA_WITHOUT_INTENTS = "day2_TDEM0003_10s_norx_1src_1spw.ms"


@pytest.fixture
def vla_copy(pyuvdata_data: Path, tmp_path: Path) -> Path:
    """A fresh copy of the VLA MS, free to modify."""
    copy = tmp_path / "vla" / VLA_WITHOUT_INTENTS
    shutil.copytree(pyuvdata_data / VLA_WITHOUT_INTENTS, copy)
    return copy
