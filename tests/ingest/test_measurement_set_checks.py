"""Inputs that are not a readable Measurement Set are refused with BadInput saying what they are and what
to do. Each broken MS is made from a copy of a real one (pyuvdata's VLA excerpt)."""

import shutil
from pathlib import Path

import pytest
from aperture_contracts.enums import ErrorClass
from aperture_ingest.measurement_set import describe_measurement_set
from aperture_shared.errors import BadInput
from real_measurement_sets import VLA

pytestmark = pytest.mark.casa


def refusal(path: Path, error_class: ErrorClass = ErrorClass.BAD_INPUT) -> BadInput:
    """The refusal of `path`, of the class a campaign report counts it under."""
    with pytest.raises(BadInput) as caught:
        describe_measurement_set(path)
    assert caught.value.error_class is error_class
    return caught.value


def storage_file_of(casa, ms: Path, column: str) -> Path:
    """The main-table file that stores `column`, found from the table's own data-manager description."""
    table = casa.table()
    table.open(str(ms))
    try:
        managers = sorted(table.getdminfo().values(), key=lambda manager: manager["SEQNR"])
    finally:
        table.close()
    (manager,) = [m for m in managers if column in list(m["COLUMNS"])]
    candidates = sorted(ms.glob(f"table.f{manager['SEQNR']}*"))
    return candidates[-1]  # tiled storage managers keep the data in table.fN_TSM*


def test_a_path_that_does_not_exist_is_refused(casa, tmp_path):
    assert "no such file or directory" in refusal(tmp_path / "missing.ms").message


def test_a_text_file_is_refused_as_a_text_file(casa, tmp_path):
    path = tmp_path / "notes.ms"
    path.write_text("observing log\n")
    message = refusal(path).message
    assert "notes.ms is a text file, not a Measurement Set" in message
    assert "an MS is a directory" in message


def test_a_uvfits_file_is_refused_as_fits(casa, pyuvdata_data, tmp_path):
    path = tmp_path / "day2.uvfits"
    shutil.copy(pyuvdata_data / "day2_TDEM0003_10s_norx_1scan.uvfits", path)
    assert "is a FITS file (UVFITS or an image), not a Measurement Set" in refusal(path).message


def test_an_empty_directory_is_refused(casa, tmp_path):
    (tmp_path / "empty.ms").mkdir()
    assert "empty.ms is an empty directory, not a Measurement Set" in refusal(tmp_path / "empty.ms").message


def test_a_directory_that_is_not_a_table_is_refused_with_what_it_holds(casa, tmp_path):
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "image.fits").write_bytes(b"SIMPLE  =                    T")
    message = refusal(folder).message
    assert "not a casacore table (it has no table.dat; it holds image.fits)" in message


def test_a_folder_holding_an_ms_points_to_the_ms_inside(casa, ms_copy, tmp_path):
    ms_copy(VLA, into=tmp_path / "delivery")
    message = refusal(tmp_path / "delivery").message
    assert "holds Measurement Sets (multi_1.ms) but is not one itself" in message


def test_a_sub_table_given_instead_of_the_ms_is_not_a_measurement_set(casa, ms_copy):
    message = refusal(ms_copy(VLA) / "ANTENNA").message
    assert "ANTENNA is a CASA table but not a Measurement Set" in message
    assert "ANTENNA1" in message and "SPECTRAL_WINDOW" in message


def test_an_ms_without_rows_is_refused_as_empty(casa, ms_copy, tmp_path):
    ms = tmp_path / "empty.ms"
    table = casa.table()
    table.open(str(ms_copy(VLA)))
    table.copy(str(ms), deep=True, norows=True)  # same columns and sub-tables, no rows
    table.close()
    message = refusal(ms, ErrorClass.NO_VISIBILITIES).message
    assert "empty.ms is an empty Measurement Set (its main table has no rows" in message


def test_an_ms_without_any_visibility_column_says_it_has_none(casa, ms_copy):
    ms = ms_copy(VLA)
    table = casa.table()
    table.open(str(ms), nomodify=False)
    table.removecols("DATA")
    table.close()
    assert "multi_1.ms has no DATA column (its visibility columns: none)" in refusal(ms).message


def test_an_ms_with_only_corrected_data_is_told_to_split_it_into_data(casa, ms_copy):
    ms = ms_copy(VLA)
    table = casa.table()
    table.open(str(ms), nomodify=False)
    table.renamecol("DATA", "CORRECTED_DATA")
    table.close()
    message = refusal(ms).message
    assert "has no DATA column (its visibility columns: CORRECTED_DATA)" in message
    assert "datacolumn='corrected'" in message


def test_an_ms_with_only_float_data_is_named_as_such(casa, ms_copy):
    ms = ms_copy(VLA)
    table = casa.table()
    table.open(str(ms), nomodify=False)
    table.renamecol("DATA", "FLOAT_DATA")
    table.close()
    message = refusal(ms).message
    assert "(its visibility columns: FLOAT_DATA)" in message
    assert "single-dish" in message


def test_a_missing_spectral_window_sub_table_is_named(casa, ms_copy):
    ms = ms_copy(VLA)
    shutil.rmtree(ms / "SPECTRAL_WINDOW")
    error = refusal(ms, ErrorClass.CORRUPT_INPUT)
    assert "multi_1.ms: its SPECTRAL_WINDOW sub-table cannot be read" in error.message
    assert "incomplete or damaged" in error.message
    assert "SPECTRAL_WINDOW does not exist" in error.detail


@pytest.mark.parametrize("sub_table", ["FIELD", "ANTENNA", "POLARIZATION", "DATA_DESCRIPTION"])
def test_a_deleted_sub_table_data_file_is_named(casa, ms_copy, sub_table):
    ms = ms_copy(VLA)
    (ms / sub_table / "table.f0").unlink()
    assert f"its {sub_table} sub-table cannot be read" in refusal(ms, ErrorClass.CORRUPT_INPUT).message


@pytest.mark.parametrize("sub_table", ["FIELD", "ANTENNA", "SPECTRAL_WINDOW", "OBSERVATION"])
def test_a_truncated_sub_table_data_file_is_named(casa, ms_copy, sub_table):
    ms = ms_copy(VLA)
    data_file = ms / sub_table / "table.f0"
    with data_file.open("r+b") as stream:
        stream.truncate(data_file.stat().st_size // 2)
    assert f"its {sub_table} sub-table cannot be read" in refusal(ms, ErrorClass.CORRUPT_INPUT).message


def test_a_missing_visibility_storage_file_is_found_without_reading_all_data(casa, ms_copy):
    ms = ms_copy(VLA)
    storage_file_of(casa, ms, "DATA").unlink()
    assert "multi_1.ms: its DATA column cannot be read" in refusal(ms, ErrorClass.CORRUPT_INPUT).message


def test_a_truncated_flag_storage_file_is_named(casa, ms_copy):
    ms = ms_copy(VLA)
    flag_file = storage_file_of(casa, ms, "FLAG")
    with flag_file.open("r+b") as stream:
        stream.truncate(flag_file.stat().st_size // 2)
    assert "its main table (visibility flags and times) cannot be read" in refusal(ms, ErrorClass.CORRUPT_INPUT).message


def test_a_truncated_main_table_description_is_named(casa, ms_copy):
    ms = ms_copy(VLA)
    with (ms / "table.dat").open("r+b") as stream:
        stream.truncate(100)
    assert "multi_1.ms: its main table cannot be read" in refusal(ms, ErrorClass.CORRUPT_INPUT).message
