"""The whole ingest path on a simulated ALMA-like MOUS (tools/testdata): its package is unpacked, its
manifest read, its tables applied, and the calibrated, split-out MS is described. The generator injects
known antenna gain errors, so the phase calibrator's phases must collapse once the tables are applied."""

from pathlib import Path

import pytest
from aperture_ingest.measurement_set import (
    SOURCE_WIDEST_ON_FIRST_TARGET,
    describe_measurement_set,
    merge_metadata,
)
from aperture_ingest.package import unpack_package
from aperture_ingest.restore import read_restore_manifest, restore
from aperture_shared.casa.calls import CasaCallLog

pytestmark = [pytest.mark.casa, pytest.mark.slow]


@pytest.fixture(scope="module")
def simulated_package(casa, tmp_path_factory):
    """A default-scenario MOUS (25 antennas, 2 spws x 64 channels, ~25 s to make) and its .tar.gz."""
    from aperture_testdata.generator import generate_mous

    folder = tmp_path_factory.mktemp("simulated")
    return generate_mous(folder / "mous", seed=7, package=folder / "mous.tar.gz")


def test_restoring_a_simulated_mous_flattens_its_phase_calibrator(simulated_package, tmp_path):
    from aperture_testdata.measure import phase_scatter_deg

    truth = simulated_package.truth
    assert truth.calibration is not None
    check_field = truth.calibration.check_field
    package = unpack_package(simulated_package.package, tmp_path / "unpacked")
    manifest = read_restore_manifest(package.root)
    assert manifest is not None
    calls = CasaCallLog()

    result = restore(package.measurement_sets, package.root, manifest, calls, tmp_path / "restored")

    assert result.applied_tables == [entry.table for entry in truth.calibration.apply]
    (restored,) = result.measurement_sets
    before = phase_scatter_deg(package.measurement_sets[0], check_field, "DATA")
    after = phase_scatter_deg(restored.path, check_field, "DATA")
    assert before / after >= 10, f"phase scatter of {check_field}: {before:.1f} -> {after:.2f} deg"
    assert after == pytest.approx(truth.calibration.phase_scatter_after_deg, abs=0.5)

    info = describe_measurement_set(restored.path)
    merged = merge_metadata([info], calibrated=True)
    assert info.data_columns == ["DATA"]
    assert info.has_calibrator_intents
    assert merged.science_targets == [f.name for f in truth.fields if "OBSERVE_TARGET#ON_SOURCE" in f.intents]
    assert merged.science_spw_ids == [0, 1]
    assert merged.representative_spw is not None
    assert merged.representative_spw.source == SOURCE_WIDEST_ON_FIRST_TARGET
    assert merged.calibrated


def test_the_simulated_package_layout_is_found(simulated_package, tmp_path):
    package = unpack_package(simulated_package.package, tmp_path / "unpacked")
    assert [ms.name for ms in package.measurement_sets] == [simulated_package.ms.name]
    assert package.manifest == package.root / "aperture-restore.json"
    assert all((package.root / table.relative_to(simulated_package.outdir)).is_dir()
               for table in simulated_package.calibration_tables)  # fmt: skip
    assert Path(package.root).is_relative_to(tmp_path / "unpacked")
