"""read_flux_csv: an operator's flux.csv (the ALMA pipeline's format) as one flux model per calibrator."""

import math

import pytest
from aperture_ingest.flux_csv import read_flux_csv
from aperture_shared.errors import BadInput
from support.measurement_set_infos import alma_like, spw

HEADER = "ms,field,spw,I,Q,U,V,spix,uvmin,uvmax,comment\n"


def write(tmp_path, text: str):
    path = tmp_path / "flux.csv"
    path.write_text(text)
    return path


def test_a_pipeline_row_with_a_field_id_gives_that_fields_flux_at_the_spws_centre(tmp_path):
    info = alma_like()
    path = write(tmp_path, HEADER + 'uid___A002_X1.ms,0,0,2.61,0,0,0,-0.6,0,0,"# J1517-2422"\n')

    (model,) = read_flux_csv(path, [info])

    assert model.field == "J1517-2422"
    assert (model.flux_jy, model.spectral_index) == (2.61, -0.6)
    assert model.reference_frequency_hz == info.spectral_windows[0].centre_frequency_hz


def test_rows_over_several_spws_give_the_spectral_index_they_imply(tmp_path):
    info = alma_like()  # spw 0 at 230 GHz, spw 1 at 220 GHz
    alpha = -0.7
    flux_220 = 1.5
    flux_230 = flux_220 * (230 / 220) ** alpha
    path = write(tmp_path, HEADER + f"uid___A002_X1.ms,J1517-2422,0,{flux_230:.6f},0,0,0,0,0,0,\n"
                 f"uid___A002_X1.ms,J1517-2422,1,{flux_220:.6f},0,0,0,0,0,0,\n")  # fmt: skip

    (model,) = read_flux_csv(path, [info])

    assert model.reference_frequency_hz == 220e9  # the lowest frequency
    assert math.isclose(model.flux_jy, flux_220, rel_tol=1e-5)
    assert math.isclose(model.spectral_index, alpha, rel_tol=1e-4)


def test_older_files_without_uv_range_and_comment_lines_are_read(tmp_path):
    path = write(tmp_path, "# written by hand\nms,field,spw,I,Q,U,V,spix\nuid___A002_X1.ms,1,1,0.9,0,0,0,-0.4\n")
    (model,) = read_flux_csv(path, [alma_like()])
    assert (model.field, model.flux_jy, model.spectral_index) == ("J1553-2422", 0.9, -0.4)


def test_each_field_gets_its_own_model(tmp_path):
    path = write(tmp_path, HEADER + "uid___A002_X1.ms,0,0,2.6,0,0,0,-0.6,0,0,\nuid___A002_X1.ms,1,0,0.9,0,0,0,0,0,0,\n")
    assert [model.field for model in read_flux_csv(path, [alma_like()])] == ["J1517-2422", "J1553-2422"]


@pytest.mark.parametrize(
    ("row", "complaint"),
    [
        ("uid___A002_X9.ms,0,0,2.6,0,0,0,0,0,0,", "no Measurement Set named 'uid___A002_X9.ms'"),
        ("uid___A002_X1.ms,7,0,2.6,0,0,0,0,0,0,", "has no field '7'"),
        ("uid___A002_X1.ms,0,5,2.6,0,0,0,0,0,0,", "has no spw '5'"),
        ("uid___A002_X1.ms,0,0,two,0,0,0,0,0,0,", "column I must be a number, not 'two'"),
        ("uid___A002_X1.ms,0,0,-1,0,0,0,0,0,0,", "must be a positive flux density"),
        ("uid___A002_X1.ms,0,0,nan,0,0,0,0,0,0,", "column I must be finite"),
    ],
)
def test_a_row_that_cannot_be_used_is_refused_with_its_line_and_reason(tmp_path, row, complaint):
    with pytest.raises(BadInput, match="line 2") as raised:
        read_flux_csv(write(tmp_path, HEADER + row + "\n"), [alma_like()])
    assert complaint in str(raised.value)


def test_a_file_without_the_needed_columns_is_refused_with_the_expected_format(tmp_path):
    with pytest.raises(BadInput, match="lacks the column.* I; the ALMA format is"):
        read_flux_csv(write(tmp_path, "ms,field,spw,flux\nuid___A002_X1.ms,0,0,2\n"), [alma_like()])


def test_two_fluxes_for_one_field_at_one_frequency_are_refused(tmp_path):
    path = write(tmp_path, HEADER + "uid___A002_X1.ms,0,0,2.6,0,0,0,0,0,0,\nuid___A002_X1.ms,0,0,2.0,0,0,0,0,0,0,\n")
    with pytest.raises(BadInput, match="different fluxes at the same frequency"):
        read_flux_csv(path, [alma_like()])


def test_a_header_without_rows_is_refused(tmp_path):
    with pytest.raises(BadInput, match="no rows"):
        read_flux_csv(write(tmp_path, HEADER), [alma_like()])


def test_spws_are_looked_up_in_the_ms_the_row_names(tmp_path):
    from support.measurement_set_infos import field, ms_info

    other = ms_info([field(0, "J1517-2422", ["CALIBRATE_FLUX#ON_SOURCE"])], spws=[spw(0, centre_hz=100e9)],
                    name="uid___A002_X2.ms")  # fmt: skip
    path = write(tmp_path, HEADER + "uid___A002_X2,0,0,3.0,0,0,0,0,0,0,\n")  # the ".ms" may be left out
    (model,) = read_flux_csv(path, [alma_like(), other])
    assert model.reference_frequency_hz == 100e9
