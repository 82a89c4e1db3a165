"""An IVOA ObsCore 1.1 record per image product, as JSON (pydantic, field names = ObsCore column names) and
as a VOTable with the standard column UCDs, utypes and units (one row per product).

What comes from where:
- the image's FITS header: target (OBJECT), facility and instrument (TELESCOP, INSTRUME), the start
  (DATE-OBS), the beam (BMAJ, or the median of a cube's per-channel BEAMS table), the grid (WCS, NAXISn),
  the frequency axis and the Stokes axis, and the MOUS (MOUSID card, the default obs_id);
- the PB FITS beside it: the footprint (s_region, s_ra/s_dec, s_fov), see stcs.py;
- the caller (`ProductIdentity`): where the file will be served (access_url), the on-source time
  (t_exptime), and optionally the identifiers and the time range.

Choices worth knowing:
- s_ra/s_dec: the footprint's centre (for one pointing, the pointing centre), ICRS.
- s_fov: the diameter of the circle about that centre which holds the s_region polygon.
- em_min/em_max: wavelengths of the outer edges of the first and last channels; em_res_power: the centre
  frequency over one channel's width, which for a continuum image (one channel) is over its bandwidth.
  The frequencies are the image's own frame (LSRK for ALMA products), not barycentric.
- t_min: the given start, else DATE-OBS; t_max: the given end, else t_min + the exposure (the exposure is
  on-source time, so that end is the earliest the observation can have ended).
"""

import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Self

import astropy.units as u
import numpy as np
from aperture_contracts.obscore import DataProductType, ObsCoreRecord
from astropy.io import fits
from astropy.io.votable.tree import Field as VOTableField
from astropy.io.votable.tree import Resource, TableElement, VOTableFile
from astropy.time import Time
from astropy.wcs import WCS, WCSCOMPARE_ANCILLARY, FITSFixedWarning
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from aperture_footprint.primary_beam import DEFAULT_PBLIMIT, FootprintError, celestial_wcs, read_beam_region
from aperture_footprint.stcs import DEFAULT_MAX_VERTICES, footprint_polygon

SPEED_OF_LIGHT_M_S = 299_792_458.0
OBSCORE_TABLE_UTYPE = "ivo://ivoa.net/std/ObsCore#table-1.1"
DEFAULT_PUBLISHER_DID_BASE = "ivo://aperture/products"
# The pixel values of a PB-corrected interferometric image: a flux density (per beam) at radio wavelengths.
RADIO_IMAGE_O_UCD = "phot.flux.density;em.radio"
# FITS Stokes axis codes -> ObsCore pol_states names, in ObsCore's order of the list.
STOKES_NAMES = {1: "I", 2: "Q", 3: "U", 4: "V", -1: "RR", -2: "LL", -3: "RL", -4: "LR",
                -5: "XX", -6: "YY", -7: "XY", -8: "YX"}
_POL_ORDER = ["I", "Q", "U", "V", "RR", "LL", "RL", "LR", "XX", "YY", "XY", "YX"]


class ProductIdentity(BaseModel):
    """What the caller knows about a product that its FITS header does not say (or says less well)."""

    model_config = ConfigDict(extra="forbid")

    access_url: str
    exposure_s: float = Field(gt=0, description="on-source integration time of the data in the image")
    obs_id: str | None = Field(None, description="default: the header's MOUSID card")
    obs_collection: str | None = Field(None, description="default: the header's TELESCOP")
    obs_publisher_did: str | None = Field(None, description=f"default: {DEFAULT_PUBLISHER_DID_BASE}?<file name>")
    t_min_mjd: float | None = Field(None, description="start (MJD, UTC); default: DATE-OBS")
    t_max_mjd: float | None = Field(None, description="end (MJD, UTC); default: the start plus the exposure")
    t_resolution_s: float | None = Field(None, gt=0)
    access_format: str = "application/fits"

    @model_validator(mode="after")
    def _end_after_start(self) -> Self:
        if self.t_min_mjd is not None and self.t_max_mjd is not None and self.t_max_mjd < self.t_min_mjd:
            raise ValueError(f"t_max_mjd {self.t_max_mjd} is before t_min_mjd {self.t_min_mjd}")
        return self


def obscore_record(
    image_path: Path,
    pb_path: Path,
    product: ProductIdentity,
    *,
    pblimit: float = DEFAULT_PBLIMIT,
    max_vertices: int = DEFAULT_MAX_VERTICES,
) -> ObsCoreRecord:
    """The ObsCore record of the image (a PB-corrected image or cube FITS) whose PB is `pb_path`.
    FootprintError when the files cannot describe a footprint (no sky axes, PB below the limit, another
    grid than the image's, no frequency axis, no start time)."""
    with fits.open(image_path, memmap=True) as hdus:
        header = hdus[0].header.copy()
        beam_majors_arcsec = _beam_majors_arcsec(header, hdus)
    wcs = _full_wcs(header)
    image_celestial = celestial_wcs(header, image_path)
    region = read_beam_region(pb_path, pblimit)
    _require_same_grid(image_path, header, image_celestial, region.mask.shape, pb_path, region.celestial)

    polygon = footprint_polygon(region, max_vertices)
    channels = _axis_length(header, wcs.wcs.spec)
    frequency_low, frequency_high, channel_width = _frequency_range_hz(image_path, wcs, channels)
    centre_frequency = 0.5 * (frequency_low + frequency_high)
    stokes = _stokes_names(wcs, header)
    t_min = product.t_min_mjd if product.t_min_mjd is not None else _date_obs_mjd(header, image_path)
    t_max = product.t_max_mjd if product.t_max_mjd is not None else t_min + product.exposure_s / 86400.0
    obs_id = product.obs_id or _card(header, "MOUSID")
    if obs_id is None:
        raise FootprintError(f"{image_path.name}: no obs_id given and no MOUSID card in the header")
    telescope = _card(header, "TELESCOP")
    obs_collection = product.obs_collection or telescope
    if obs_collection is None:
        raise FootprintError(f"{image_path.name}: no obs_collection given and no TELESCOP card in the header")

    return ObsCoreRecord(
        dataproduct_type=DataProductType.CUBE if channels > 1 else DataProductType.IMAGE,
        calib_level=3,
        obs_collection=obs_collection,
        obs_id=obs_id,
        obs_publisher_did=product.obs_publisher_did or f"{DEFAULT_PUBLISHER_DID_BASE}?{image_path.name}",
        access_url=product.access_url,
        access_format=product.access_format,
        access_estsize=math.ceil(image_path.stat().st_size / 1024),
        target_name=_card(header, "OBJECT"),
        s_ra=polygon.centre_ra_deg,
        s_dec=polygon.centre_dec_deg,
        s_fov=2.0 * polygon.radius_deg,
        s_region=polygon.to_stcs(),
        s_resolution=float(np.median(beam_majors_arcsec)) if beam_majors_arcsec else None,
        s_xel1=int(header["NAXIS1"]),
        s_xel2=int(header["NAXIS2"]),
        s_pixel_scale=region.pixel_scale_deg * 3600.0,
        t_min=t_min,
        t_max=t_max,
        t_exptime=product.exposure_s,
        t_resolution=product.t_resolution_s,
        t_xel=1,
        em_min=SPEED_OF_LIGHT_M_S / frequency_high,
        em_max=SPEED_OF_LIGHT_M_S / frequency_low,
        em_res_power=centre_frequency / channel_width,
        em_xel=channels,
        o_ucd=RADIO_IMAGE_O_UCD,
        pol_states="/" + "/".join(stokes) + "/" if stokes else None,
        pol_xel=len(stokes) if stokes else None,
        facility_name=telescope,
        instrument_name=_card(header, "INSTRUME") or telescope,
    )


def _card(header: fits.Header, keyword: str) -> str | None:
    value = str(header.get(keyword, "")).strip()
    return value or None


def _full_wcs(header: fits.Header) -> WCS:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)  # CASA's cards: see primary_beam.celestial_wcs
        return WCS(header)


def _axis_length(header: fits.Header, wcs_axis: int) -> int:
    return int(header.get(f"NAXIS{wcs_axis + 1}", 1)) if wcs_axis >= 0 else 1


def _require_same_grid(
    image_path: Path, header: fits.Header, image_celestial: WCS, pb_shape: tuple[int, ...], pb_path: Path,
    pb_celestial: WCS,
) -> None:
    image_shape = (int(header["NAXIS2"]), int(header["NAXIS1"]))
    same_wcs = image_celestial.wcs.compare(pb_celestial.wcs, cmp=WCSCOMPARE_ANCILLARY, tolerance=1e-9)
    if image_shape != tuple(pb_shape) or not same_wcs:
        raise FootprintError(
            f"{pb_path.name} is not on the sky grid of {image_path.name} "
            f"({pb_shape[1]}x{pb_shape[0]} vs {image_shape[1]}x{image_shape[0]} pixels"
            f"{'' if same_wcs else ', different WCS'}); the footprint would describe another image"
        )


def _frequency_range_hz(image_path: Path, wcs: WCS, channels: int) -> tuple[float, float, float]:
    """(lowest edge, highest edge, one channel's width) of the frequency axis, in Hz."""
    if wcs.wcs.spec < 0 or not str(wcs.wcs.ctype[wcs.wcs.spec]).startswith("FREQ"):
        raise FootprintError(
            f"{image_path.name}: no frequency axis (CTYPE: {list(wcs.wcs.ctype)}); ObsCore's em_min/em_max need one"
        )
    spectral = wcs.sub([wcs.wcs.spec + 1])
    # wcslib normalises spectral units to SI, so these are Hz whatever CUNIT said.
    edges = np.asarray(spectral.pixel_to_world_values(np.array([-0.5, channels - 0.5])), dtype=np.float64)
    low, high = float(edges.min()), float(edges.max())
    if not (low > 0 and high > low):
        raise FootprintError(f"{image_path.name}: its frequency axis gives no positive range ({low} to {high} Hz)")
    return low, high, (high - low) / channels


def _stokes_names(wcs: WCS, header: fits.Header) -> list[str]:
    """The Stokes planes' names in ObsCore's order; empty when the image has no Stokes axis."""
    ctypes = [str(ctype).strip().upper() for ctype in wcs.wcs.ctype]
    if "STOKES" not in ctypes:
        return []
    axis = ctypes.index("STOKES")
    codes = np.asarray(wcs.sub([axis + 1]).pixel_to_world_values(np.arange(_axis_length(header, axis))))
    names = {STOKES_NAMES.get(int(round(float(code))), "") for code in np.atleast_1d(codes)}
    return [name for name in _POL_ORDER if name in names]


def _date_obs_mjd(header: fits.Header, image_path: Path) -> float:
    date_obs = _card(header, "DATE-OBS")
    if date_obs is None:
        raise FootprintError(f"{image_path.name}: no DATE-OBS card and no t_min given")
    scale = (_card(header, "TIMESYS") or "UTC").lower()
    return float(Time(date_obs, format="isot", scale=scale).utc.mjd)


def _beam_majors_arcsec(header: fits.Header, hdus: fits.HDUList) -> list[float]:
    """The beam major axes (arcsec): CASA's per-channel BEAMS table when there is one, else BMAJ (deg)."""
    if "BEAMS" in hdus:
        table = hdus["BEAMS"]
        to_arcsec = u.Unit(table.columns["BMAJ"].unit or "arcsec").to(u.arcsec)
        majors = np.asarray(table.data["BMAJ"], dtype=np.float64) * to_arcsec
        return [float(value) for value in majors if np.isfinite(value) and value > 0]
    if "BMAJ" in header:
        return [float(header["BMAJ"]) * 3600.0]
    return []


# -- output -------------------------------------------------------------------------------------------------

_RECORDS = TypeAdapter(list[ObsCoreRecord])


def write_obscore_json(records: Sequence[ObsCoreRecord], path: Path) -> Path:
    """A JSON array of the records (one object per product, keys = ObsCore column names)."""
    path.write_bytes(_RECORDS.dump_json(list(records), indent=2))
    return path


def read_obscore_json(path: Path) -> list[ObsCoreRecord]:
    return _RECORDS.validate_json(path.read_bytes())


def obscore_votable(records: Sequence[ObsCoreRecord]) -> VOTableFile:
    """A VOTable with one ObsCore table, one row per record, the columns described as ObsCore 1.1 does."""
    votable = VOTableFile()
    resource = Resource(type="results")
    votable.resources.append(resource)
    table = TableElement(votable, name="ObsCore", utype=OBSCORE_TABLE_UTYPE)
    resource.tables.append(table)
    names = list(ObsCoreRecord.model_fields)
    for name in names:
        metadata = column_metadata(name)
        table.fields.append(
            VOTableField(
                votable,
                name=name,
                ID=name,
                datatype=metadata["votable_datatype"],
                arraysize="*" if metadata["votable_datatype"] == "char" else None,
                unit=metadata.get("unit"),
                ucd=metadata["ucd"],
                utype=metadata["utype"],
                xtype="adql:REGION" if name == "s_region" else None,
            )
        )
        table.fields[-1].description = ObsCoreRecord.model_fields[name].description
    table.create_arrays(len(records))
    for row, record in enumerate(records):
        values = record.model_dump(mode="json")
        for name in names:
            value = values[name]
            if value is None:
                table.array.mask[row][name] = True
            else:
                table.array[name][row] = value
    return votable


def write_obscore_votable(records: Sequence[ObsCoreRecord], path: Path) -> Path:
    """Write the records as one ObsCore VOTable (XML, TABLEDATA) at `path`."""
    obscore_votable(records).to_xml(str(path))
    return path


def column_metadata(name: str) -> dict[str, str]:
    """The ObsCore metadata (votable_datatype, ucd, utype, and unit when the column has one) of a column."""
    extra = ObsCoreRecord.model_fields[name].json_schema_extra
    if not isinstance(extra, dict):
        raise KeyError(f"{name} is not an ObsCore column")
    return {key: str(value) for key, value in extra.items()}
