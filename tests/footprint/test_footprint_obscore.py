"""ObsCore records of image products: what comes from the FITS header, the PB footprint and the caller, as
JSON with exactly the ObsCore column names and as a VOTable with ObsCore 1.1's units, UCDs and utypes."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
from aperture_footprint.obscore import (
    OBSCORE_TABLE_UTYPE,
    DataProductType,
    ObsCoreRecord,
    ProductIdentity,
    obscore_record,
    read_obscore_json,
    write_obscore_json,
    write_obscore_votable,
)
from aperture_footprint.primary_beam import FootprintError
from aperture_footprint.stcs import parse_stcs_polygon
from astropy.io.votable import parse_single_table
from astropy.time import Time
from pydantic import ValidationError
from synthetic_pb import MOUS_UID, POINTING, TARGET, add_beams_table, write_product

C = 299_792_458.0
# IVOA ObsCore 1.1 (mandatory columns and s_pixel_scale): name -> (unit, UCD, utype)
OBSCORE_1_1 = {
    "dataproduct_type": (None, "meta.code.class", "obscore:ObsDataset.dataProductType"),
    "calib_level": (None, "meta.code;obs.calib", "obscore:ObsDataset.calibLevel"),
    "obs_collection": (None, "meta.id", "obscore:DataID.collection"),
    "obs_id": (None, "meta.id", "obscore:DataID.observationID"),
    "obs_publisher_did": (None, "meta.ref.ivoid", "obscore:Curation.publisherDID"),
    "access_url": (None, "meta.ref.url", "obscore:Access.reference"),
    "access_format": (None, "meta.code.mime", "obscore:Access.format"),
    "access_estsize": ("kbyte", "phys.size;meta.file", "obscore:Access.size"),
    "target_name": (None, "meta.id;src", "obscore:Target.name"),
    "s_ra": ("deg", "pos.eq.ra", "obscore:Char.SpatialAxis.Coverage.Location.Coord.Position2D.Value2.C1"),
    "s_dec": ("deg", "pos.eq.dec", "obscore:Char.SpatialAxis.Coverage.Location.Coord.Position2D.Value2.C2"),
    "s_fov": ("deg", "phys.angSize;instr.fov", "obscore:Char.SpatialAxis.Coverage.Bounds.Extent.diameter"),
    "s_region": (None, "pos.outline;obs.field", "obscore:Char.SpatialAxis.Coverage.Support.Area"),
    "s_resolution": ("arcsec", "pos.angResolution", "obscore:Char.SpatialAxis.Resolution.Refval.value"),
    "s_xel1": (None, "meta.number", "obscore:Char.SpatialAxis.numBins1"),
    "s_xel2": (None, "meta.number", "obscore:Char.SpatialAxis.numBins2"),
    "s_pixel_scale": ("arcsec", "phys.angSize;instr.pixel", "obscore:Char.SpatialAxis.Sampling.RefVal.SamplingPeriod"),
    "t_min": ("d", "time.start;obs.exposure", "obscore:Char.TimeAxis.Coverage.Bounds.Limits.StartTime"),
    "t_max": ("d", "time.end;obs.exposure", "obscore:Char.TimeAxis.Coverage.Bounds.Limits.StopTime"),
    "t_exptime": ("s", "time.duration;obs.exposure", "obscore:Char.TimeAxis.Coverage.Support.Extent"),
    "t_resolution": ("s", "time.resolution", "obscore:Char.TimeAxis.Resolution.Refval.value"),
    "t_xel": (None, "meta.number", "obscore:Char.TimeAxis.numBins"),
    "em_min": ("m", "em.wl;stat.min", "obscore:Char.SpectralAxis.Coverage.Bounds.Limits.LoLimit"),
    "em_max": ("m", "em.wl;stat.max", "obscore:Char.SpectralAxis.Coverage.Bounds.Limits.HiLimit"),
    "em_res_power": (None, "spect.resolution", "obscore:Char.SpectralAxis.Resolution.ResolPower.refVal"),
    "em_xel": (None, "meta.number", "obscore:Char.SpectralAxis.numBins"),
    "o_ucd": (None, "meta.ucd", "obscore:Char.ObservableAxis.ucd"),
    "pol_states": (None, "meta.code;phys.polarization", "obscore:Char.PolarizationAxis.stateList"),
    "pol_xel": (None, "meta.number", "obscore:Char.PolarizationAxis.numBins"),
    "facility_name": (None, "meta.id;instr.tel", "obscore:Provenance.ObsConfig.Facility.name"),
    "instrument_name": (None, "meta.id;instr", "obscore:Provenance.ObsConfig.Instrument.name"),
}
CONTINUUM = "uid___A001_X3a1_X7.SimGalaxy_sci.spw0_1.cont.I"
CUBE = "uid___A001_X3a1_X7.SimGalaxy_sci.spw0.cube.I"


def identity(name: str, **overrides) -> ProductIdentity:
    return ProductIdentity(access_url=f"https://archive.example/{name}.pbcor.fits", exposure_s=810.0, **overrides)


@pytest.fixture
def continuum(tmp_path: Path):
    return write_product(tmp_path, CONTINUUM)


@pytest.fixture
def cube(tmp_path: Path):
    product = write_product(
        tmp_path, CUBE, frequency_hz=229.9235773675e9, channel_width_hz=15.62471219684e6, channels=64, size=150
    )
    add_beams_table(product.image_path, np.linspace(1.60, 1.80, 64))
    return product


def test_a_continuum_record_takes_the_header_the_footprint_and_the_caller(continuum) -> None:
    record = obscore_record(continuum.image_path, continuum.pb_path, identity(CONTINUUM))

    assert record.dataproduct_type == DataProductType.IMAGE
    assert (record.calib_level, record.em_xel, record.t_xel) == (3, 1, 1)
    assert (record.obs_id, record.obs_collection, record.target_name) == (MOUS_UID, "ALMA", "SimGalaxy")
    assert (record.facility_name, record.instrument_name) == ("ALMA", "ALMA")
    assert record.access_url == f"https://archive.example/{CONTINUUM}.pbcor.fits"
    assert record.access_format == "application/fits"
    assert record.access_estsize == math.ceil(continuum.image_path.stat().st_size / 1024)
    assert record.obs_publisher_did == f"ivo://aperture/products?{CONTINUUM}.pbcor.fits"
    assert (record.s_xel1, record.s_xel2) == (160, 160)
    assert record.s_pixel_scale == pytest.approx(0.26)
    assert record.s_resolution == pytest.approx(1.72)
    assert (record.pol_states, record.pol_xel) == ("/I/", 1)
    assert record.o_ucd == "phot.flux.density;em.radio"
    # the footprint's centre is the pointing (FK5 J2000 -> ICRS moves it by ~20 mas)
    assert record.s_ra == pytest.approx(POINTING[0], abs=0.05 / 3600)
    assert record.s_dec == pytest.approx(POINTING[1], abs=0.05 / 3600)
    region = parse_stcs_polygon(record.s_region)
    assert region.contains([POINTING[0], TARGET[0]], [POINTING[1], TARGET[1]]).all()


def test_em_range_is_the_frequency_axis_edges_as_wavelengths(continuum, cube) -> None:
    image = obscore_record(continuum.image_path, continuum.pb_path, identity(CONTINUUM))
    # one channel of 10.9 GHz about 225.47 GHz: 220.02 to 230.92 GHz
    low, high = 225.4658619840e9 - 10.89982924103e9 / 2, 225.4658619840e9 + 10.89982924103e9 / 2
    assert image.em_min < image.em_max
    assert image.em_min == pytest.approx(C / high, rel=1e-9)
    assert image.em_max == pytest.approx(C / low, rel=1e-9)
    assert image.em_res_power == pytest.approx(225.4658619840e9 / 10.89982924103e9, rel=1e-9)  # nu / bandwidth

    spectral = obscore_record(cube.image_path, cube.pb_path, identity(CUBE))
    width = 15.62471219684e6
    first_edge = 229.9235773675e9 - width / 2
    last_edge = 229.9235773675e9 + 63.5 * width
    assert spectral.dataproduct_type == DataProductType.CUBE
    assert spectral.em_xel == 64
    assert spectral.em_min == pytest.approx(C / last_edge, rel=1e-9)
    assert spectral.em_max == pytest.approx(C / first_edge, rel=1e-9)
    assert spectral.em_res_power == pytest.approx(0.5 * (first_edge + last_edge) / width, rel=1e-9)  # nu / dnu
    assert spectral.s_resolution == pytest.approx(1.70, abs=0.01)  # the median of the per-channel beams


def test_s_fov_is_the_diameter_of_the_footprint(continuum, cube) -> None:
    for product, name in ((continuum, CONTINUUM), (cube, CUBE)):
        record = obscore_record(product.image_path, product.pb_path, identity(name))
        diameter_deg = 2 * product.limit_radius_arcsec() / 3600
        assert record.s_fov == pytest.approx(diameter_deg, rel=0.03)


def test_times_come_from_date_obs_and_the_exposure_unless_given(continuum) -> None:
    start = Time("2025-06-01T03:42:50", scale="utc").mjd
    record = obscore_record(continuum.image_path, continuum.pb_path, identity(CONTINUUM))
    assert record.t_min == pytest.approx(start, abs=1e-8)
    assert record.t_max == pytest.approx(start + 810.0 / 86400, abs=1e-8)
    assert record.t_exptime == 810.0
    assert record.t_resolution is None

    given = identity(CONTINUUM, t_min_mjd=60827.150752, t_max_mjd=60827.169502, t_resolution_s=6.048)
    record = obscore_record(continuum.image_path, continuum.pb_path, given)
    assert (record.t_min, record.t_max, record.t_resolution) == (60827.150752, 60827.169502, 6.048)
    with pytest.raises(ValidationError, match="before"):
        identity(CONTINUUM, t_min_mjd=60827.2, t_max_mjd=60827.1)
    with pytest.raises(ValidationError, match="greater than 0"):
        ProductIdentity(access_url="x", exposure_s=0)


def test_caller_identifiers_override_the_header(continuum) -> None:
    given = identity(CONTINUUM, obs_id="uid://A002/X1/X2", obs_collection="Aperture",
                     obs_publisher_did="ivo://example.org/alma?x")
    record = obscore_record(continuum.image_path, continuum.pb_path, given)
    assert (record.obs_id, record.obs_collection, record.obs_publisher_did) == (
        "uid://A002/X1/X2", "Aperture", "ivo://example.org/alma?x"
    )


def test_json_has_exactly_the_obscore_column_names_and_reads_back(tmp_path: Path, continuum, cube) -> None:
    records = [
        obscore_record(continuum.image_path, continuum.pb_path, identity(CONTINUUM)),
        obscore_record(cube.image_path, cube.pb_path, identity(CUBE)),
    ]
    path = write_obscore_json(records, tmp_path / "obscore.json")
    rows = json.loads(path.read_text())

    assert [list(row) for row in rows] == [list(OBSCORE_1_1)] * 2
    assert rows[1]["dataproduct_type"] == "cube"
    assert rows[0]["t_resolution"] is None
    assert read_obscore_json(path) == records
    assert set(json.loads(records[0].model_dump_json())) == set(OBSCORE_1_1)


def test_votable_parses_back_with_the_obscore_columns_units_ucds_and_utypes(tmp_path: Path, continuum, cube) -> None:
    records = [
        obscore_record(continuum.image_path, continuum.pb_path, identity(CONTINUUM)),
        obscore_record(cube.image_path, cube.pb_path, identity(CUBE)),
    ]
    path = write_obscore_votable(records, tmp_path / "obscore.xml")
    votable = parse_single_table(path)  # strict: a VOTable warning would fail the test
    table = votable.to_table()

    assert votable.utype == OBSCORE_TABLE_UTYPE
    assert table.colnames == list(OBSCORE_1_1)
    assert len(table) == 2
    for field in votable.fields:
        unit, ucd, utype = OBSCORE_1_1[field.name]
        assert (str(field.unit) if field.unit is not None else None, field.ucd, field.utype) == (unit, ucd, utype)
    assert votable.get_field_by_id("s_region").xtype == "adql:REGION"
    assert list(table["dataproduct_type"]) == ["image", "cube"]
    assert list(table["em_xel"]) == [1, 64]
    assert table["t_resolution"].mask.all()  # nulls stay null
    assert str(table["t_min"].unit) == "d"
    for row, record in zip(table, records, strict=True):
        assert row["s_region"] == record.s_region
        assert row["em_min"] == pytest.approx(record.em_min)
        assert row["s_fov"] == pytest.approx(record.s_fov)
        assert row["obs_publisher_did"] == record.obs_publisher_did


def test_a_pb_on_another_grid_is_rejected(tmp_path: Path) -> None:
    image = write_product(tmp_path / "a", CONTINUUM)
    other = write_product(tmp_path / "b", CONTINUUM, pixel_arcsec=0.3)
    with pytest.raises(FootprintError, match="not on the sky grid"):
        obscore_record(image.image_path, other.pb_path, identity(CONTINUUM))
    smaller = write_product(tmp_path / "c", CONTINUUM, size=150)
    with pytest.raises(FootprintError, match="150x150 vs 160x160"):
        obscore_record(image.image_path, smaller.pb_path, identity(CONTINUUM))


def test_an_image_without_celestial_axes_is_rejected(tmp_path: Path) -> None:
    product = write_product(tmp_path, CONTINUUM, celestial=False)
    with pytest.raises(FootprintError, match="no celestial"):
        obscore_record(product.image_path, product.pb_path, identity(CONTINUUM))


def test_a_pb_below_the_limit_is_rejected(tmp_path: Path) -> None:
    product = write_product(tmp_path, CONTINUUM, pb_peak=0.1)
    with pytest.raises(FootprintError, match="no pixel has a primary-beam response >= 0.2"):
        obscore_record(product.image_path, product.pb_path, identity(CONTINUUM))


def test_no_obs_id_anywhere_is_rejected(tmp_path: Path) -> None:
    from astropy.io import fits

    product = write_product(tmp_path, CONTINUUM)
    with fits.open(product.image_path, mode="update") as hdus:
        del hdus[0].header["MOUSID"]
    with pytest.raises(FootprintError, match="no obs_id"):
        obscore_record(product.image_path, product.pb_path, identity(CONTINUUM))
    record = obscore_record(product.image_path, product.pb_path, identity(CONTINUUM, obs_id="uid://A001/X1/X1"))
    assert record.obs_id == "uid://A001/X1/X1"


def test_every_record_field_is_an_obscore_column() -> None:
    assert list(ObsCoreRecord.model_fields) == list(OBSCORE_1_1)
