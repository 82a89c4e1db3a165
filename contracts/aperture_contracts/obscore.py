"""The IVOA ObsCore 1.1 record of a product: one row of the ObsCore table, as JSON (field names are the
column names) and, with the column metadata each field carries, as a VOTable (the footprint service)."""

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class DataProductType(StrEnum):
    IMAGE = "image"
    CUBE = "cube"


def _column(description: str, *, datatype: str, ucd: str, utype: str, unit: str | None = None) -> Any:
    """A record field carrying its ObsCore column metadata (VOTable datatype, unit, UCD, utype), so the model
    is the one place the table is defined."""
    extra: dict[str, str] = {"votable_datatype": datatype, "ucd": ucd, "utype": f"obscore:{utype}"}
    if unit is not None:
        extra["unit"] = unit
    return Field(description=description, json_schema_extra=extra)  # type: ignore[arg-type]


class ObsCoreRecord(BaseModel):
    """One ObsCore row. The field names, units, UCDs and utypes are those of IVOA ObsCore 1.1 (the
    mandatory columns, plus the optional s_pixel_scale)."""

    model_config = ConfigDict(extra="forbid")

    dataproduct_type: DataProductType = _column(
        "data product type", datatype="char", ucd="meta.code.class", utype="ObsDataset.dataProductType")
    calib_level: int = _column(
        "calibration level (3: science-ready image)", datatype="short", ucd="meta.code;obs.calib",
        utype="ObsDataset.calibLevel")
    obs_collection: str = _column(
        "name of the data collection", datatype="char", ucd="meta.id", utype="DataID.collection")
    obs_id: str = _column(
        "observation identifier (the MOUS)", datatype="char", ucd="meta.id", utype="DataID.observationID")
    obs_publisher_did: str = _column(
        "publisher's dataset identifier", datatype="char", ucd="meta.ref.ivoid", utype="Curation.publisherDID")
    access_url: str = _column(
        "URL of the FITS file", datatype="char", ucd="meta.ref.url", utype="Access.reference")
    access_format: str = _column(
        "MIME type of the file", datatype="char", ucd="meta.code.mime", utype="Access.format")
    access_estsize: int | None = _column(
        "size of the file", datatype="long", ucd="phys.size;meta.file", utype="Access.size", unit="kbyte")
    target_name: str | None = _column(
        "name of the target", datatype="char", ucd="meta.id;src", utype="Target.name")
    s_ra: float = _column(
        "RA of the footprint's centre (ICRS)", datatype="double", ucd="pos.eq.ra",
        utype="Char.SpatialAxis.Coverage.Location.Coord.Position2D.Value2.C1", unit="deg")
    s_dec: float = _column(
        "Dec of the footprint's centre (ICRS)", datatype="double", ucd="pos.eq.dec",
        utype="Char.SpatialAxis.Coverage.Location.Coord.Position2D.Value2.C2", unit="deg")
    s_fov: float = _column(
        "diameter of the circle about the centre holding the footprint", datatype="double",
        ucd="phys.angSize;instr.fov", utype="Char.SpatialAxis.Coverage.Bounds.Extent.diameter", unit="deg")
    s_region: str = _column(
        "footprint where the primary beam is at or above the imaging limit (STC-S)", datatype="char",
        ucd="pos.outline;obs.field", utype="Char.SpatialAxis.Coverage.Support.Area")
    s_resolution: float | None = _column(
        "beam major axis (FWHM)", datatype="double", ucd="pos.angResolution",
        utype="Char.SpatialAxis.Resolution.Refval.value", unit="arcsec")
    s_xel1: int = _column(
        "pixels along the first sky axis", datatype="long", ucd="meta.number", utype="Char.SpatialAxis.numBins1")
    s_xel2: int = _column(
        "pixels along the second sky axis", datatype="long", ucd="meta.number", utype="Char.SpatialAxis.numBins2")
    s_pixel_scale: float = _column(
        "side of a pixel", datatype="double", ucd="phys.angSize;instr.pixel",
        utype="Char.SpatialAxis.Sampling.RefVal.SamplingPeriod", unit="arcsec")
    t_min: float = _column(
        "start time (MJD, UTC)", datatype="double", ucd="time.start;obs.exposure",
        utype="Char.TimeAxis.Coverage.Bounds.Limits.StartTime", unit="d")
    t_max: float = _column(
        "end time (MJD, UTC)", datatype="double", ucd="time.end;obs.exposure",
        utype="Char.TimeAxis.Coverage.Bounds.Limits.StopTime", unit="d")
    t_exptime: float = _column(
        "on-source integration time", datatype="double", ucd="time.duration;obs.exposure",
        utype="Char.TimeAxis.Coverage.Support.Extent", unit="s")
    t_resolution: float | None = _column(
        "time resolution", datatype="double", ucd="time.resolution", utype="Char.TimeAxis.Resolution.Refval.value",
        unit="s")
    t_xel: int = _column(
        "samples along time (1: one image)", datatype="long", ucd="meta.number", utype="Char.TimeAxis.numBins")
    em_min: float = _column(
        "shortest wavelength (high-frequency edge)", datatype="double", ucd="em.wl;stat.min",
        utype="Char.SpectralAxis.Coverage.Bounds.Limits.LoLimit", unit="m")
    em_max: float = _column(
        "longest wavelength (low-frequency edge)", datatype="double", ucd="em.wl;stat.max",
        utype="Char.SpectralAxis.Coverage.Bounds.Limits.HiLimit", unit="m")
    em_res_power: float = _column(
        "spectral resolving power: centre frequency over channel width", datatype="double",
        ucd="spect.resolution", utype="Char.SpectralAxis.Resolution.ResolPower.refVal")
    em_xel: int = _column(
        "channels", datatype="long", ucd="meta.number", utype="Char.SpectralAxis.numBins")
    o_ucd: str = _column(
        "UCD of the pixel values", datatype="char", ucd="meta.ucd", utype="Char.ObservableAxis.ucd")
    pol_states: str | None = _column(
        "polarisation states, as /I/Q/.../", datatype="char", ucd="meta.code;phys.polarization",
        utype="Char.PolarizationAxis.stateList")
    pol_xel: int | None = _column(
        "polarisation planes", datatype="long", ucd="meta.number", utype="Char.PolarizationAxis.numBins")
    facility_name: str | None = _column(
        "telescope", datatype="char", ucd="meta.id;instr.tel", utype="Provenance.ObsConfig.Facility.name")
    instrument_name: str | None = _column(
        "instrument", datatype="char", ucd="meta.id;instr", utype="Provenance.ObsConfig.Instrument.name")
