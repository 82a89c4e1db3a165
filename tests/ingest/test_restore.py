"""Restore: the manifest is read and checked, every table is applied through applycal in order, and the
calibrated data lands in the DATA column of a new MS. The tables are solved by gaincal on a real VLA
calibrator scan (J1008+0730 at the phase centre), so applying them must flatten its phases."""

import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
from aperture_contracts.packaging import RESTORE_MANIFEST_NAME, CalibrationApply, RestoreManifest
from aperture_ingest.measurement_set import describe_measurement_set
from aperture_ingest.package import unpack_package
from aperture_ingest.restore import read_restore_manifest, restore, validate_restore_manifest
from aperture_shared.casa.calls import CasaCallLog
from aperture_shared.errors import BadInput
from real_measurement_sets import MWA, VLA

DELAY_TABLE = "cal/multi_1.K"
PHASE_TABLE = "cal/multi_1.G"


def fake_table(path: Path, table_type: str) -> Path:
    """A directory that looks like a casacore table of the given type (enough for manifest checks)."""
    path.mkdir(parents=True)
    (path / "table.dat").write_bytes(b"\x00")
    (path / "table.info").write_text(f"Type = {table_type}\nSubType = G Jones\n")
    return path


def read_column(casa, ms: Path, column: str) -> np.ndarray:
    table = casa.table()
    table.open(str(ms))
    try:
        return table.getcol(column)
    finally:
        table.close()


@pytest.fixture(scope="module")
def solved_tables(casa, pyuvdata_data, tmp_path_factory) -> dict[str, Path]:
    """A delay (K) and a per-integration phase (G) table solved on a scratch copy of the VLA scan."""
    import casatasks  # type: ignore[import-untyped]

    scratch = tmp_path_factory.mktemp("solve")
    ms = scratch / VLA
    shutil.copytree(pyuvdata_data / VLA, ms)
    tables = {DELAY_TABLE: scratch / "multi_1.K", PHASE_TABLE: scratch / "multi_1.G"}
    casatasks.gaincal(vis=str(ms), caltable=str(tables[DELAY_TABLE]), gaintype="K", solint="inf", refant="1")
    casatasks.gaincal(
        vis=str(ms), caltable=str(tables[PHASE_TABLE]), gaintype="G", calmode="p", solint="int",
        refant="1", gaintable=[str(tables[DELAY_TABLE])],
    )  # fmt: skip
    return tables


def write_package(
    root: Path, ms_paths: list[Path], tables: dict[str, Path], manifest: dict[str, object]
) -> Path:
    root.mkdir(parents=True)
    for ms in ms_paths:
        shutil.copytree(ms, root / ms.name)
    for name, table in tables.items():
        shutil.copytree(table, root / name)
    (root / RESTORE_MANIFEST_NAME).write_text(json.dumps(manifest))
    return root


VLA_MANIFEST = {
    "kind": "aperture.restore-manifest",
    "apply": [
        {"table": DELAY_TABLE, "interp": "nearest"},
        {"table": PHASE_TABLE, "interp": "linear", "gainfield": "J1008+0730"},
    ],
}


@pytest.mark.casa
@pytest.mark.slow
def test_a_packaged_restore_applies_every_table_and_leaves_calibrated_data_in_data(
    casa, ms_copy, solved_tables, tmp_path
):
    from aperture_testdata.measure import phase_scatter_deg

    source = write_package(tmp_path / "X2dd", [ms_copy(VLA)], solved_tables, VLA_MANIFEST)
    archive = tmp_path / "X2dd.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(source, arcname="X2dd")
    package = unpack_package(archive, tmp_path / "unpacked")
    manifest = read_restore_manifest(package.root)
    assert manifest is not None
    calls = CasaCallLog()

    result = restore(package.measurement_sets, package.root, manifest, calls, tmp_path / "restored")

    assert result.applied_tables == [DELAY_TABLE, PHASE_TABLE]
    assert [call.task for call in calls.calls] == ["applycal", "split"]
    applycal = calls.calls[0].parameters
    assert applycal["gaintable"] == [str(package.root / DELAY_TABLE), str(package.root / PHASE_TABLE)]
    assert applycal["interp"] == ["nearest", "linear"]
    assert applycal["gainfield"] == ["", "J1008+0730"]
    assert applycal["spwmap"] == [[], []]
    assert applycal["calwt"] == [False, False]
    assert applycal["flagbackup"] is False
    assert calls.calls[1].parameters["datacolumn"] == "corrected"

    (restored,) = result.measurement_sets
    submitted = package.measurement_sets[0]
    assert restored.calibrated and restored.path == tmp_path / "restored" / VLA
    assert describe_measurement_set(restored.path).data_columns == ["DATA"]
    assert np.array_equal(
        read_column(casa, restored.path, "DATA"), read_column(casa, submitted, "CORRECTED_DATA")
    )
    before = phase_scatter_deg(submitted, "J1008+0730", "DATA")
    after = phase_scatter_deg(restored.path, "J1008+0730", "DATA")
    # measured: 105 deg (raw phases are random) -> 30 deg, limited by this short scan's thermal noise
    assert before > 90
    assert after < 40
    assert before / after > 3
    # applycal's calflag flags the data of the solutions gaincal flagged (SNR < 3): 26 % here
    assert restored.flagged_fraction_before == 0.0
    assert restored.flagged_fraction_after == pytest.approx(read_column(casa, restored.path, "FLAG").mean())
    assert 0 < restored.flagged_fraction_after < 0.5


@pytest.mark.casa
@pytest.mark.slow
def test_a_manifest_naming_one_ms_leaves_the_others_as_submitted(casa, ms_copy, solved_tables, tmp_path):
    manifest = RestoreManifest.model_validate({**VLA_MANIFEST, "measurement_sets": [VLA]})
    root = write_package(
        tmp_path / "package", [ms_copy(VLA), ms_copy(MWA)], solved_tables, manifest.model_dump(mode="json")
    )
    calls = CasaCallLog()

    result = restore([root / MWA, root / VLA], root, manifest, calls, tmp_path / "restored")

    by_name = {ms.name: ms for ms in result.measurement_sets}
    assert by_name[MWA].path == root / MWA and not by_name[MWA].calibrated
    assert by_name[VLA].calibrated
    assert [call.parameters["vis"] for call in calls.calls if call.task == "applycal"] == [str(root / VLA)]


@pytest.mark.casa
def test_tables_solved_on_another_array_are_refused_before_applycal(ms_copy, solved_tables, tmp_path):
    manifest = RestoreManifest(apply=[CalibrationApply(table=PHASE_TABLE)], measurement_sets=[MWA])
    root = write_package(tmp_path / "pkg", [ms_copy(MWA)], solved_tables, manifest.model_dump(mode="json"))
    calls = CasaCallLog()

    # applycal itself would apply the VLA solutions to MWA tiles 0-27 (it matches antennas by index)
    with pytest.raises(BadInput, match=f"{PHASE_TABLE} does not belong to {MWA}: its antenna 0 is '1' but"):
        restore([root / MWA], root, manifest, calls, tmp_path / "restored")
    assert calls.calls == []


@pytest.mark.casa
@pytest.mark.slow
def test_tables_whose_solutions_are_all_flagged_are_refused(casa, ms_copy, solved_tables, tmp_path):
    manifest = RestoreManifest(apply=[CalibrationApply(table=PHASE_TABLE)])
    root = write_package(tmp_path / "pkg", [ms_copy(VLA)], solved_tables, manifest.model_dump(mode="json"))
    table = casa.table()
    table.open(str(root / PHASE_TABLE), nomodify=False)
    table.putcol("FLAG", np.ones_like(table.getcol("FLAG")))
    table.close()

    with pytest.raises(BadInput, match=f"flagged every visibility of {VLA} .flagged before: 0.0%"):
        restore([root / VLA], root, manifest, CasaCallLog(), tmp_path / "restored")


@pytest.mark.casa
@pytest.mark.slow
def test_an_interpolation_applycal_rejects_is_bad_input_and_the_call_is_recorded(
    ms_copy, solved_tables, tmp_path
):
    manifest = RestoreManifest(apply=[CalibrationApply(table=PHASE_TABLE, interp="sideways")])
    root = write_package(
        tmp_path / "package", [ms_copy(VLA)], solved_tables, manifest.model_dump(mode="json")
    )
    calls = CasaCallLog()

    with pytest.raises(BadInput, match="applycal refused the package's calibration tables for multi_1.ms"):
        restore([root / VLA], root, manifest, calls, tmp_path / "restored")

    assert [call.task for call in calls.calls] == ["applycal"]
    assert calls.calls[0].parameters["interp"] == ["sideways"]


# -- manifest checks: on the package's files only, before any CASA call


@pytest.fixture
def package_root(tmp_path) -> Path:
    root = tmp_path / "package"
    fake_table(root / "obs.ms", "Measurement Set")
    fake_table(root / "cal" / "obs.G", "Calibration")
    return root


def refusal(manifest: RestoreManifest, root: Path, ms_names: tuple[str, ...] = ("obs.ms",)) -> str:
    calls = CasaCallLog()
    with pytest.raises(BadInput) as caught:
        restore([root / name for name in ms_names], root, manifest, calls, root.parent / "restored")
    assert calls.calls == []  # refused before applycal ran
    return caught.value.message


def test_a_valid_manifest_resolves_each_table_inside_the_package(package_root):
    manifest = RestoreManifest(apply=[CalibrationApply(table="cal/obs.G", spwmap=[0, 0])])
    ((entry, path),) = validate_restore_manifest(manifest, package_root, [package_root / "obs.ms"])
    assert entry.spwmap == [0, 0]
    assert path == package_root / "cal" / "obs.G"


@pytest.mark.parametrize(
    "table, expected",
    [
        ("../outside.G", r"apply\[0\].table \('../outside.G'\) must be a path inside the package"),
        ("cal/../../outside.G", "without '..'"),
        ("/etc/obs.G", r"apply\[0\].table \('/etc/obs.G'\) must be a path inside the package"),
        ("C:\\cal\\obs.G", "must be a path inside the package"),
        ("cal/missing.G", r"apply\[0\].table \('cal/missing.G'\) is not in the package"),
        ("obs.ms", "is a CASA table of type 'Measurement Set', not a calibration table"),
        ("", "is empty"),
    ],
)
def test_a_table_the_package_cannot_supply_is_refused(package_root, table, expected):
    manifest = RestoreManifest(apply=[CalibrationApply(table=table)])
    assert pytest.raises(
        BadInput, validate_restore_manifest, manifest, package_root, [package_root / "obs.ms"]
    )
    with pytest.raises(BadInput, match=expected):
        validate_restore_manifest(manifest, package_root, [package_root / "obs.ms"])


def test_a_text_file_named_as_a_table_is_refused(package_root):
    (package_root / "cal" / "notes.G").write_text("gains\n")
    manifest = RestoreManifest(apply=[CalibrationApply(table="cal/notes.G")])
    assert "is a text file, not a CASA calibration table" in refusal(manifest, package_root)


def test_a_link_leading_out_of_the_package_is_refused(package_root, tmp_path):
    fake_table(tmp_path / "elsewhere" / "obs.G", "Calibration")
    (package_root / "cal" / "linked.G").symlink_to(tmp_path / "elsewhere" / "obs.G")
    manifest = RestoreManifest(apply=[CalibrationApply(table="cal/linked.G")])
    assert "leads outside the package (through a link)" in refusal(manifest, package_root)


def test_a_manifest_naming_an_ms_the_package_lacks_is_refused(package_root):
    manifest = RestoreManifest(apply=[CalibrationApply(table="cal/obs.G")], measurement_sets=["other.ms"])
    message = refusal(manifest, package_root)
    assert (
        "names Measurement Sets that are not in the package: other.ms (the package holds obs.ms)" in message
    )


def test_a_manifest_with_nothing_to_apply_is_refused(package_root):
    assert "lists no calibration tables under 'apply'" in refusal(RestoreManifest(apply=[]), package_root)


def test_a_negative_spw_in_an_spwmap_is_refused(package_root):
    manifest = RestoreManifest(apply=[CalibrationApply(table="cal/obs.G", spwmap=[0, -1])])
    assert r"apply[0].spwmap has negative spw ids: [0, -1]" in refusal(manifest, package_root)


# -- reading the manifest


def test_a_package_without_a_manifest_has_none(tmp_path):
    assert read_restore_manifest(tmp_path) is None


def test_a_manifest_is_read_into_the_model(tmp_path):
    (tmp_path / RESTORE_MANIFEST_NAME).write_text(json.dumps(VLA_MANIFEST))
    manifest = read_restore_manifest(tmp_path)
    assert manifest is not None
    assert [entry.table for entry in manifest.apply] == [DELAY_TABLE, PHASE_TABLE]
    assert manifest.apply[1].gainfield == "J1008+0730"


def test_a_manifest_that_is_not_json_names_the_line_and_column(tmp_path):
    (tmp_path / RESTORE_MANIFEST_NAME).write_text('{\n  "apply": [\n    {"table": "cal/x.G",}\n  ]\n}\n')
    with pytest.raises(
        BadInput, match=rf"{RESTORE_MANIFEST_NAME} is not valid JSON: .* at line 3, column 25"
    ):
        read_restore_manifest(tmp_path)


@pytest.mark.parametrize(
    "document, expected",
    [
        (
            {"apply": [{"table": "cal/x.G", "calwt": "maybe"}]},
            r"apply\[0\]\.calwt: Input should be a valid boolean",
        ),
        (
            {"apply": [{"tabel": "cal/x.G"}]},
            r"apply\[0\]\.table: Field required; apply\[0\]\.tabel: Extra inputs",
        ),
        (
            {"apply": [{"table": "cal/x.G", "spwmap": "0,0"}]},
            r"apply\[0\]\.spwmap: Input should be a valid list",
        ),
        ({"kind": "something-else"}, r"kind: Input should be 'aperture.restore-manifest'"),
        (["cal/x.G"], r"document: Input should be a valid dictionary"),
    ],
)
def test_a_manifest_with_wrong_fields_names_each_field(tmp_path, document, expected):
    (tmp_path / RESTORE_MANIFEST_NAME).write_text(json.dumps(document))
    with pytest.raises(BadInput, match=expected) as caught:
        read_restore_manifest(tmp_path)
    assert "each entry of 'apply': table, interp, spwmap, gainfield, calwt" in caught.value.message


def test_a_manifest_that_is_not_utf8_is_refused(tmp_path):
    (tmp_path / RESTORE_MANIFEST_NAME).write_bytes(b'{"apply": [{"table": "cal/\xff.G"}]}')
    with pytest.raises(BadInput, match="is not UTF-8 text"):
        read_restore_manifest(tmp_path)
