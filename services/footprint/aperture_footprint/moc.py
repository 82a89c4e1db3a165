"""The footprint of an image as an IVOA MOC (HEALPix Multi-Order Coverage map): the sky where the primary
beam is at or above the imaging limit, written as MOC FITS, JSON and ASCII.

Why not mocpy's `MOC.from_fits_image` (mocpy 0.21): it reads the image's shape as 2-D (a CASA 4-D image
fails), and it silently lowers the requested order to the deepest one whose cells are at least as large
as a pixel (`depth_px` in its source), because it puts only the pixel *centres* into the MOC: with cells
smaller than a pixel, a centre-per-pixel MOC would be full of holes (for 0.26" pixels it keeps order 19,
0.4" cells; asking `MOC.from_lonlat` for order 20-22 with the same centres drops the area by 40-96 %).

What is done instead, explicitly:
- The order is chosen here: the coarsest whose cells are no larger than a pixel (so the MOC resolves the
  image's own sampling), capped at `max_order` (default 20, cells of ~0.2"), since finer cells than that
  describe nothing a primary-beam edge can tell and only make the MOC bigger. `MocFootprint` says whether
  the cap applied.
- Each row's runs of in-footprint pixels become one thin sky polygon (pixel edges, not centres), and the
  MOC is the union of the polygons' MOCs at that order. So the MOC has no holes at any order, follows the
  pixel edges to within a cell, and is slightly conservative: a cell is in when it overlaps a pixel that is.
"""

import math
from pathlib import Path

import numpy as np
from mocpy import MOC
from numpy.typing import NDArray
from pydantic import BaseModel, Field

from aperture_footprint.primary_beam import DEFAULT_PBLIMIT, BeamRegion, read_beam_region

DEFAULT_MAX_ORDER = 20
HEALPIX_MAX_ORDER = 29  # the deepest order a MOC can have
# A row run longer than this is split: a polygon edge is a great circle, a pixel row in the image's
# projection is not quite one, and short pieces keep the difference far below a pixel.
MAX_RUN_PIXELS = 128
SQUARE_DEGREES_PER_STERADIAN = (180.0 / math.pi) ** 2


class MocFootprint(BaseModel):
    """A footprint MOC as written, with the figures it was made from."""

    pb_path: Path
    pblimit: float
    order: int = Field(description="the MOC's order (HEALPix depth)")
    pixel_order: int = Field(description="the coarsest order with cells no larger than a pixel, before the cap")
    max_order: int
    order_capped: bool = Field(description="True when pixel_order was above max_order (cells larger than a pixel)")
    pixel_scale_arcsec: float
    cell_size_arcsec: float = Field(description="the side of a HEALPix cell at `order` (square root of its area)")
    planes: int = Field(description="channel x Stokes planes merged into the footprint")
    area_sr: float
    area_deg2: float
    fits_path: Path
    json_path: Path
    ascii_path: Path


def cell_size_deg(order: int) -> float:
    """The side of a HEALPix cell at `order`: the square root of its area, 4 pi / (12 * 4**order) sr."""
    return math.degrees(math.sqrt(math.pi / 3.0) / 2.0**order)


def order_for_pixel(pixel_scale_deg: float) -> int:
    """The coarsest HEALPix order whose cells are no larger than a pixel (uncapped, 0 to 29)."""
    if not pixel_scale_deg > 0:
        raise ValueError(f"the pixel scale must be positive, not {pixel_scale_deg}")
    ratio = math.sqrt(math.pi / 3.0) / math.radians(pixel_scale_deg)
    order = max(0, math.ceil(math.log2(ratio)))
    # log2 rounding can put the boundary case one order off either way: settle it on the cell size itself.
    while order > 0 and cell_size_deg(order - 1) <= pixel_scale_deg:
        order -= 1
    while cell_size_deg(order) > pixel_scale_deg and order < HEALPIX_MAX_ORDER:
        order += 1
    return min(order, HEALPIX_MAX_ORDER)


def footprint_moc(region: BeamRegion, order: int) -> MOC:
    """The MOC, at `order`, of the region's pixels (each pixel as its whole square, not its centre)."""
    polygons = _row_run_polygons(region)
    mocs = MOC.from_polygons(polygons, max_depth=order)
    moc = mocs[0] if len(mocs) == 1 else mocs[0].union(*mocs[1:])
    return moc


def _row_runs(mask: NDArray[np.bool_]) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.intp]]:
    """(row, first column, last column) of each run of True pixels along the rows, long runs split."""
    padded = np.zeros((mask.shape[0], mask.shape[1] + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    steps = np.diff(padded, axis=1)
    rows, starts = np.nonzero(steps == 1)
    _, stops = np.nonzero(steps == -1)  # one past the run; same row order as the starts
    pieces = -(-(stops - starts) // MAX_RUN_PIXELS)  # ceil: how many pieces each run is cut into
    run_rows = np.repeat(rows, pieces)
    piece_of_run = np.arange(pieces.sum()) - np.repeat(np.cumsum(pieces) - pieces, pieces)
    first = np.repeat(starts, pieces) + piece_of_run * MAX_RUN_PIXELS
    last = np.minimum(first + MAX_RUN_PIXELS, np.repeat(stops, pieces)) - 1
    return run_rows, first, last


def _row_run_polygons(region: BeamRegion) -> NDArray[np.float64]:
    """mocpy's polygon array [lon1, lat1, lon2, lat2, ...] (degrees): one quadrilateral per run, on the
    pixel edges."""
    rows, first, last = _row_runs(region.mask)
    left, right = first - 0.5, last + 0.5
    bottom, top = rows - 0.5, rows + 0.5
    x = np.stack([left, right, right, left], axis=1).astype(np.float64)
    y = np.stack([bottom, bottom, top, top], axis=1).astype(np.float64)
    ra, dec = region.to_icrs(x.ravel(), y.ravel())
    polygons = np.empty((2 * len(rows), 4), dtype=np.float64)
    polygons[0::2] = ra.reshape(x.shape)
    polygons[1::2] = dec.reshape(x.shape)
    return polygons


def moc_area_sr(moc: MOC) -> float:
    return float(moc.sky_fraction) * 4.0 * math.pi


def moc_file_stem(pb_path: Path) -> str:
    """`x.cont.I.pb.fits` -> `x.cont.I`: the product's name, which the MOC files are named after."""
    name = pb_path.name.removesuffix(".fits")
    return name.removesuffix(".pb")


def write_footprint_moc(
    pb_path: Path,
    output_dir: Path,
    *,
    pblimit: float = DEFAULT_PBLIMIT,
    max_order: int = DEFAULT_MAX_ORDER,
) -> MocFootprint:
    """Write the footprint MOC of the image whose PB is `pb_path` into output_dir as <product>.moc.fits
    (IVOA MOC 2.0), .moc.json and .moc.txt (ASCII); FootprintError when the PB gives no footprint."""
    if not 0 <= max_order <= HEALPIX_MAX_ORDER:
        raise ValueError(f"max_order must be 0..{HEALPIX_MAX_ORDER}, not {max_order}")
    region = read_beam_region(pb_path, pblimit)
    pixel_order = order_for_pixel(region.pixel_scale_deg)
    order = min(pixel_order, max_order)
    moc = footprint_moc(region, order)

    output_dir.mkdir(parents=True, exist_ok=True)
    stem = moc_file_stem(pb_path)
    fits_path = output_dir / f"{stem}.moc.fits"
    json_path = output_dir / f"{stem}.moc.json"
    ascii_path = output_dir / f"{stem}.moc.txt"
    moc.save(fits_path, format="fits", overwrite=True, fits_keywords={"PBLIMIT": pblimit})
    moc.save(json_path, format="json", overwrite=True)
    moc.save(ascii_path, format="ascii", overwrite=True)

    area_sr = moc_area_sr(moc)
    return MocFootprint(
        pb_path=pb_path,
        pblimit=pblimit,
        order=order,
        pixel_order=pixel_order,
        max_order=max_order,
        order_capped=pixel_order > max_order,
        pixel_scale_arcsec=region.pixel_scale_deg * 3600.0,
        cell_size_arcsec=cell_size_deg(order) * 3600.0,
        planes=region.planes,
        area_sr=area_sr,
        area_deg2=area_sr * SQUARE_DEGREES_PER_STERADIAN,
        fits_path=fits_path,
        json_path=json_path,
        ascii_path=ascii_path,
    )
