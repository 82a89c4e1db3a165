"""A HiPS (IVOA Hierarchical Progressive Survey 1.0) of a MOUS's continuum images, for browsing the sky
at every zoom in Aladin-like viewers.

How one image becomes a HiPS:
- The deepest order is the first one whose HEALPix pixels are no larger than the image's pixels (HiPS
  1.0 section 4.1's rule): never coarser than the data, at most twice as fine.
- `reproject.hips.reproject_to_hips` resamples the image (bilinear) into FITS tiles at that order and
  averages them down to order 0. CASA writes 4-D images (RA, DEC, FREQ, STOKES) and reproject takes 2-D
  or 3-D ones, so the first plane is passed with its celestial WCS. CASA's FK5 J2000 is transformed to
  the ICRS of the `equatorial` HiPS frame.
- Orders below 3 are dropped (`hips_order_min = 3`) and replaced by a PNG `Norder3/Allsky.png`: for an
  image of an arcminute, tiles of orders 0-2 would be full-size FITS files holding a few pixels each,
  and Aladin Lite asks for the Allsky file instead of the twelve order-0 tiles when the minimum order is
  above 0 (with order 0 kept, it would ask for all twelve, and eleven would be missing).
- Tiles with no finite pixel (outside the primary beam) are removed, and `Moc.fits` lists the deepest
  tiles that remain: clients read it to ask for no tile outside it.
- Every FITS tile gets a PNG twin through one asinh stretch whose cuts come from the whole image
  (robust noise from the median absolute deviation, up to the peak), so adjacent tiles and orders match.
  PNG is the format listed first: it carries transparency outside the data and is what viewers show.

The `properties` file is written here in full (reproject's is replaced): the nine keywords HiPS 1.0
requires, the pixel scales, cuts, initial view, spectral range, MOC sky fraction and provenance.
"""

import math
import re
import shutil
import time
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

import numpy as np
from aperture_contracts.ids import canonical_mous_id, mous_key
from aperture_shared.errors import BadInput
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.time import Time
from astropy.wcs import WCS, FITSFixedWarning
from astropy.wcs.utils import proj_plane_pixel_scales
from numpy.typing import NDArray
from PIL import Image
from pydantic import BaseModel
from reproject import reproject_interp
from reproject.hips import reproject_to_hips
from scipy.ndimage import distance_transform_edt  # scipy comes with reproject

HIPS_VERSION = "1.4"  # the hips_version value of the HiPS 1.0 Recommendation
HIPS_FRAME = "equatorial"  # ICRS
DEFAULT_TILE_WIDTH = 256
# With 256-pixel tiles the many mostly-empty tiles of small ALMA images weigh 256 kB each in FITS
# instead of 1 MB with the usual 512, and the deepest order goes one deeper to keep the same pixel size.
ALLSKY_ORDER = 3
ALLSKY_COLUMNS = 27  # int(sqrt(768 tiles of order 3)), the standard's layout
ALLSKY_ROWS = 29  # ceil(768 / 27)
ALLSKY_MAX_SUBTILE = 64  # each order-3 tile is shrunk to 64 x 64 pixels in the Allsky file
HEALPIX_MAX_ORDER = 29
# The side of the one pixel of HEALPix order 0, nside 1: sqrt(4 pi / 12) radians.
HEALPIX_NSIDE1_PIXEL_DEG = math.degrees(math.sqrt(math.pi / 3))
FIELD_OF_VIEW_MARGIN = 1.2  # the initial view shows the image with a little sky around it
ASINH_SOFTENING = 0.1
MAD_TO_SIGMA = 1.4826
SPEED_OF_LIGHT_M_S = 299_792_458.0
# ALMA product names: <mous>.<target>_sci.spw<ids>.<kind>.I[.tt0].<role>.fits
PRODUCT_NAME = re.compile(
    r"^(?P<mous>[^.]+)\.(?P<target>.+)_sci\.spw(?P<spws>[0-9_]+)\.(?P<kind>mfs|cont|cube)\.I\.(?:tt0\.)?"
    r"(?P<role>[a-z]+)\.fits$"
)


class TileFormat(StrEnum):
    PNG = "png"
    FITS = "fits"


TILE_FORMATS = (TileFormat.PNG, TileFormat.FITS)  # the first is the one suggested to clients


class HipsSurvey(BaseModel):
    """One HiPS as built: where it is, its orders and tiles, and its properties file as a dict."""

    root: Path
    source_image: Path
    creator_did: str
    min_order: int
    max_order: int
    tile_width: int
    tile_formats: list[TileFormat]
    tiles_per_order: dict[int, int]  # per format: every format has the same tiles
    allsky: bool
    target_ra_deg: float
    target_dec_deg: float
    target_name: str
    interior_ra_deg: float  # deep inside the data: every deepest tile near it exists
    interior_dec_deg: float
    size_bytes: int
    build_seconds: float
    properties: dict[str, str]

    @property
    def tile_count(self) -> int:
        return sum(self.tiles_per_order.values()) * len(self.tile_formats)


@dataclass(frozen=True)
class ContinuumPlane:
    """The one sky plane of a continuum image, with what the properties file says about it."""

    data: NDArray[np.float32]
    wcs: WCS  # celestial only
    header: fits.Header  # the image's full header

    @property
    def cell_deg(self) -> float:
        return float(np.sqrt(np.prod(proj_plane_pixel_scales(self.wcs))))


@dataclass(frozen=True)
class DisplayStretch:
    """asinh between two cuts: keeps the noise visible and the brightest source unsaturated."""

    low: float
    high: float
    softening: float = ASINH_SOFTENING

    def grey(self, values: NDArray[np.floating]) -> NDArray[np.uint8]:
        with np.errstate(invalid="ignore"):
            scaled = np.clip((values - self.low) / (self.high - self.low), 0.0, 1.0)
        stretched = np.arcsinh(scaled / self.softening) / np.arcsinh(1.0 / self.softening)
        return np.nan_to_num(np.round(stretched * 255.0)).astype(np.uint8)


def healpix_pixel_deg(order: int, tile_width: int) -> float:
    """The side of a HiPS pixel at `order` (of a tile, not of the tile itself), in degrees."""
    return HEALPIX_NSIDE1_PIXEL_DEG / (tile_width * 2**order)


def deepest_order(cell_deg: float, tile_width: int) -> int:
    """The first order whose HiPS pixels are no larger than the image's `cell_deg` pixels."""
    ratio = HEALPIX_NSIDE1_PIXEL_DEG / (tile_width * cell_deg)
    order = max(0, math.ceil(math.log2(ratio) - 1e-9))  # an exact power of two is not rounded up
    if order + int(math.log2(tile_width)) > HEALPIX_MAX_ORDER:
        raise BadInput(f"pixels of {cell_deg * 3600:.3g} arcsec are finer than HEALPix order {HEALPIX_MAX_ORDER}")
    return order


def read_continuum_plane(image: Path) -> ContinuumPlane:
    """The sky plane of a CASA continuum image (degenerate FREQ and STOKES axes dropped)."""
    with fits.open(image, memmap=False) as hdus:
        data = hdus[0].data
        header = hdus[0].header.copy()
    if data is None:
        raise BadInput(f"{image.name} has no image in its primary HDU")
    # CASA headers trigger astropy's harmless 'datfix'/'obsfix' notes (MJD-OBS, OBSGEO-L/B/H).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        wcs = WCS(header)
    if not wcs.has_celestial or (wcs.wcs.lng, wcs.wcs.lat) != (0, 1):
        raise BadInput(f"{image.name}: the first two axes must be the celestial ones (RA, DEC)")
    extra_planes = data.shape[:-2]
    if any(size != 1 for size in extra_planes):
        raise BadInput(f"{image.name} has {int(np.prod(extra_planes))} planes: a HiPS is made of a continuum image")
    return ContinuumPlane(data=data.reshape(data.shape[-2:]).astype(np.float32), wcs=wcs.celestial, header=header)


def robust_stretch(data: NDArray[np.floating]) -> DisplayStretch:
    """Cuts from the image itself: two robust sigmas below the median, up to the peak."""
    finite = data[np.isfinite(data)]
    if finite.size == 0:
        raise BadInput("the image has no finite pixel")
    median = float(np.median(finite))
    sigma = MAD_TO_SIGMA * float(np.median(np.abs(finite - median)))
    low = median - 2.0 * sigma if sigma > 0 else float(finite.min())
    high = float(finite.max())
    if high <= low:  # a flat image: any non-empty range shows it
        low, high = low - 0.5, low + 0.5
    return DisplayStretch(low=low, high=high)


def image_position(header: fits.Header, ra_deg: float, dec_deg: float) -> SkyCoord:
    """A position given in the image's own frame (CASA: FK5 J2000 or ICRS), in ICRS."""
    system = str(header.get("RADESYS", "ICRS")).strip().lower()
    if system == "fk5":
        equinox = Time(float(header.get("EQUINOX", 2000.0)), format="jyear")
        return SkyCoord(ra_deg * u.deg, dec_deg * u.deg, frame="fk5", equinox=equinox).icrs
    return SkyCoord(ra_deg * u.deg, dec_deg * u.deg, frame=system)


def frequency_range_hz(header: fits.Header) -> tuple[float, float] | None:
    """The band a continuum plane covers: CASA puts its centre in CRVALn and its width in CDELTn."""
    for axis in range(1, int(header.get("NAXIS", 0)) + 1):
        if str(header.get(f"CTYPE{axis}", "")).strip().upper() == "FREQ":
            centre = float(header[f"CRVAL{axis}"])
            half_width = abs(float(header.get(f"CDELT{axis}", 0.0))) / 2
            if centre - half_width > 0:
                return centre - half_width, centre + half_width
    return None


def observing_regime(frequency_hz: float) -> str:
    """HiPS's obs_regime word for a frequency (ALMA is always 'Millimeter')."""
    if frequency_hz < 30e9:
        return "Radio"
    if frequency_hz < 1e12:
        return "Millimeter"
    return "Infrared"


def tile_path(root: Path, order: int, index: int, tile_format: TileFormat) -> Path:
    return root / f"Norder{order}" / f"Dir{index // 10000 * 10000}" / f"Npix{index}.{tile_format.value}"


def tile_indices(root: Path, order: int, tile_format: TileFormat) -> list[int]:
    """The indices of the tiles written at one order, sorted."""
    names = (root / f"Norder{order}").glob(f"Dir*/Npix*.{tile_format.value}")
    return sorted(int(path.name.removeprefix("Npix").split(".")[0]) for path in names)


def write_properties(root: Path, properties: dict[str, str]) -> None:
    lines = [f"{key:<20} = {value}" for key, value in properties.items()]
    (root / "properties").write_text("\n".join(lines) + "\n", encoding="utf-8")


def read_properties(root: Path) -> dict[str, str]:
    """The properties file as a dict (comments and blank lines skipped; a repeated key keeps its last value)."""
    properties: dict[str, str] = {}
    for line in (root / "properties").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            properties[key.strip()] = value.strip()
    return properties


def choose_hips_images(images: Sequence[Path]) -> list[Path]:
    """The images of a MOUS that get a HiPS: per target, the aggregate continuum ('cont') only.

    Why not one HiPS per spw as well: a HiPS is for finding one's way on the sky, and the per-spw
    continuum images show the same field on the same pixel grid, noisier, at frequencies a few GHz apart;
    their HiPS would multiply the tiles without showing anything new (the per-spw images stay in the
    products, and the quick-look previews show each). A target without an aggregate continuum (a single
    spw, or its aggregate failed) falls back to its per-spw ('mfs') images, one HiPS each. Only a
    product's primary-beam-corrected image counts (not its .image, .pb, .residual or .mask), and cubes
    never get a HiPS. A name that does not follow the ALMA product pattern is kept as given.
    """
    by_target: dict[str, list[tuple[str, Path]]] = {}
    unnamed: list[Path] = []
    for image in images:
        match = PRODUCT_NAME.match(image.name)
        if match is None:
            unnamed.append(image)
        elif match["kind"] != "cube" and match["role"] == "pbcor":
            by_target.setdefault(match["target"], []).append((match["kind"], image))
    chosen = list(unnamed)
    for products in by_target.values():
        aggregates = [image for kind, image in products if kind == "cont"]
        chosen.extend(aggregates or [image for _, image in products])
    return sorted(chosen)


def hips_folder_name(image: Path) -> str:
    return image.name.removesuffix(".fits") + ".hips"


def build_mous_hips(
    images: Sequence[Path], output_dir: Path, *, mous_id: str, tile_width: int = DEFAULT_TILE_WIDTH
) -> list[HipsSurvey]:
    """One HiPS folder under `output_dir` per image that `choose_hips_images` keeps."""
    return [
        build_hips(image, output_dir / hips_folder_name(image), mous_id=mous_id, tile_width=tile_width)
        for image in choose_hips_images(images)
    ]


def build_hips(
    image: Path,
    root: Path,
    *,
    mous_id: str,
    tile_width: int = DEFAULT_TILE_WIDTH,
    ivo_authority: str = "aperture",
    threads: bool = True,
) -> HipsSurvey:
    """Build the HiPS of one continuum image at `root`, replacing whatever was there.

    It is built in a sibling folder and moved into place at the end, so that a crash leaves either the
    old HiPS or none, never half of one, and a re-run starts clean.
    """
    started = time.perf_counter()
    plane = read_continuum_plane(image)
    max_order = deepest_order(plane.cell_deg, tile_width)
    min_order = min(ALLSKY_ORDER, max_order)  # below order 3 only for pixels of arcminutes: no Allsky then
    stretch = robust_stretch(plane.data)

    partial = root.with_name(root.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # reproject takes np.nanmin of each tile it writes; tiles of only NaN (outside the primary beam,
        # inside the image's square) warn, and are removed below.
        warnings.filterwarnings("ignore", "All-NaN slice encountered", RuntimeWarning)
        reproject_to_hips(
            (plane.data, plane.wcs),
            coord_system_out=HIPS_FRAME,
            reproject_function=reproject_interp,
            output_directory=str(partial),
            level=max_order,
            tile_size=tile_width,
            threads=threads,
        )
    (partial / "index.html").unlink(missing_ok=True)  # reproject's loads Aladin Lite from a CDN
    for order in range(min_order):
        shutil.rmtree(partial / f"Norder{order}", ignore_errors=True)
    tiles_per_order = {order: remove_empty_tiles(partial, order) for order in range(min_order, max_order + 1)}
    if tiles_per_order[max_order] == 0:
        raise BadInput(f"{image.name} has no finite pixel to put in a HiPS")
    for order in tiles_per_order:
        write_png_tiles(partial, order, stretch)
    allsky = min_order == ALLSKY_ORDER
    if allsky:
        write_allsky_png(partial, tile_width, stretch)
    moc_cells = write_tile_moc(partial, max_order, tile_indices(partial, max_order, TileFormat.FITS))

    target = target_position(plane)
    interior = interior_position(plane)
    properties = hips_properties(
        plane,
        image=image,
        mous_id=mous_id,
        creator_did=creator_did(ivo_authority, mous_id, image),
        min_order=min_order,
        max_order=max_order,
        tile_width=tile_width,
        stretch=stretch,
        sky_fraction=sky_fraction(moc_cells),
        tile_count=sum(tiles_per_order.values()) * len(TILE_FORMATS),
    )
    properties["hips_estsize"] = str(math.ceil(folder_bytes(partial) / 1024))  # kB, as the standard says
    write_properties(partial, properties)

    shutil.rmtree(root, ignore_errors=True)
    partial.rename(root)
    return HipsSurvey(
        root=root,
        source_image=image,
        creator_did=properties["creator_did"],
        min_order=min_order,
        max_order=max_order,
        tile_width=tile_width,
        tile_formats=list(TILE_FORMATS),
        tiles_per_order=tiles_per_order,
        allsky=allsky,
        target_ra_deg=float(target.ra.deg),
        target_dec_deg=float(target.dec.deg),
        target_name=str(plane.header.get("OBJECT", "")).strip() or image.name,
        interior_ra_deg=float(interior.ra.deg),
        interior_dec_deg=float(interior.dec.deg),
        size_bytes=folder_bytes(root),
        build_seconds=time.perf_counter() - started,
        properties=properties,
    )


def remove_empty_tiles(root: Path, order: int) -> int:
    """Delete the FITS tiles of one order that hold no finite pixel; return how many remain."""
    kept = 0
    for index in tile_indices(root, order, TileFormat.FITS):
        path = tile_path(root, order, index, TileFormat.FITS)
        if np.isfinite(fits.getdata(path)).any():
            kept += 1
        else:
            path.unlink()
    return kept


def write_png_tiles(root: Path, order: int, stretch: DisplayStretch) -> None:
    """A PNG beside each FITS tile. PNG rows run top-down, FITS rows bottom-up (HiPS 1.0 section 4.2.1)."""
    for index in tile_indices(root, order, TileFormat.FITS):
        data = fits.getdata(tile_path(root, order, index, TileFormat.FITS))
        display_rgba(data[::-1], stretch).save(tile_path(root, order, index, TileFormat.PNG))


def display_rgba(values: NDArray[np.floating], stretch: DisplayStretch) -> Image.Image:
    """Grey levels, transparent where there is no data."""
    grey = stretch.grey(values)
    alpha = np.where(np.isfinite(values), 255, 0).astype(np.uint8)
    return Image.fromarray(np.dstack([grey, grey, grey, alpha]))  # uint8 x 4 channels: RGBA


def block_mean(data: NDArray[np.floating], factor: int) -> NDArray[np.float32]:
    """The mean of each factor x factor block, over its finite pixels (NaN where it has none)."""
    size = data.shape[0] // factor
    blocks = data.reshape(size, factor, size, factor)
    finite = np.isfinite(blocks)
    total = np.where(finite, blocks, 0.0).sum(axis=(1, 3))
    count = finite.sum(axis=(1, 3))
    mean = np.full((size, size), np.nan, dtype=np.float32)
    np.divide(total, count, out=mean, where=count > 0)
    return mean


def write_allsky_png(root: Path, tile_width: int, stretch: DisplayStretch) -> None:
    """`Norder3/Allsky.png`: the 768 tiles of order 3 shrunk and laid out 27 to a row, in index order."""
    subtile = min(ALLSKY_MAX_SUBTILE, tile_width)
    mosaic = np.full((ALLSKY_ROWS * subtile, ALLSKY_COLUMNS * subtile), np.nan, dtype=np.float32)
    for index in tile_indices(root, ALLSKY_ORDER, TileFormat.FITS):
        data = fits.getdata(tile_path(root, ALLSKY_ORDER, index, TileFormat.FITS))
        row, column = divmod(index, ALLSKY_COLUMNS)
        mosaic[row * subtile : (row + 1) * subtile, column * subtile : (column + 1) * subtile] = block_mean(
            data, tile_width // subtile
        )[::-1]
    display_rgba(mosaic, stretch).save(root / f"Norder{ALLSKY_ORDER}" / "Allsky.png")


def normalized_moc_cells(order: int, indices: Sequence[int]) -> list[tuple[int, int]]:
    """(order, index) cells covering exactly the given cells, four complete siblings merged into their
    parent, as the MOC standard wants."""
    cells: list[tuple[int, int]] = []
    current = set(indices)
    for level in range(order, 0, -1):
        children = Counter(index >> 2 for index in current)
        complete = {parent for parent, count in children.items() if count == 4}
        cells.extend((level, index) for index in current if index >> 2 not in complete)
        current = complete
    cells.extend((0, index) for index in current)
    return sorted(cells)


def write_tile_moc(root: Path, order: int, indices: Sequence[int]) -> list[tuple[int, int]]:
    """`Moc.fits` (IVOA MOC 2.0, NUNIQ) of the deepest tiles: the HiPS's coverage at tile resolution."""
    cells = normalized_moc_cells(order, indices)
    uniq = np.array(sorted(4 * 4**level + index for level, index in cells), dtype=np.int64)
    column_format = "J" if order <= 13 else "K"  # MOC 1.1/2.0: 32-bit NUNIQ up to order 13
    table = fits.BinTableHDU.from_columns([fits.Column(name="UNIQ", format=column_format, array=uniq)])
    table.header["PIXTYPE"] = "HEALPIX"
    table.header["ORDERING"] = "NUNIQ"
    table.header["COORDSYS"] = ("C", "ICRS")
    table.header["MOCDIM"] = "SPACE"
    table.header["MOCORD_S"] = order
    table.header["MOCORDER"] = order  # MOC 1.x readers
    table.header["MOCVERS"] = "2.0"
    table.header["MOCTOOL"] = "aperture-previews"
    table.header["EXTNAME"] = "MOC"
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(root / "Moc.fits", overwrite=True)
    return cells


def sky_fraction(cells: Sequence[tuple[int, int]]) -> float:
    return sum(1.0 / (12 * 4**level) for level, _ in cells)


def target_position(plane: ContinuumPlane) -> SkyCoord:
    """The pointing centre CASA records (OBSRA/OBSDEC), else the image's reference point, in ICRS."""
    header = plane.header
    if "OBSRA" in header and "OBSDEC" in header:
        return image_position(header, float(header["OBSRA"]), float(header["OBSDEC"]))
    ra, dec = plane.wcs.wcs.crval
    return image_position(header, float(ra), float(dec))


def interior_position(plane: ContinuumPlane) -> SkyCoord:
    """The ICRS position of the pixel farthest from any blank one (or from the image's edge)."""
    finite = np.pad(np.isfinite(plane.data), 1, constant_values=False)
    depth = distance_transform_edt(finite)[1:-1, 1:-1]
    y, x = np.unravel_index(np.argmax(depth), depth.shape)
    return plane.wcs.pixel_to_world(x, y).icrs


def image_centre_and_size(plane: ContinuumPlane) -> tuple[SkyCoord, float]:
    """The ICRS position of the image's central pixel and its larger side in degrees."""
    ny, nx = plane.data.shape
    centre = plane.wcs.pixel_to_world((nx - 1) / 2, (ny - 1) / 2).icrs
    return centre, max(nx, ny) * plane.cell_deg


def creator_did(authority: str, mous_id: str, image: Path) -> str:
    """ivo://<authority>/P/<mous key>/<product>: P for a pixel survey, as in ivo://CDS/P/2MASS/J."""
    key = mous_key(canonical_mous_id(mous_id))
    product = image.name.removesuffix(".fits").removeprefix(key + ".")
    return f"ivo://{authority}/P/{key}/{product}"


def describe_image(image: Path, header: fits.Header) -> str:
    """What the image is and of which target, in a few words ("NGC 1 aggregate continuum, spw 0, 1")."""
    match = PRODUCT_NAME.match(image.name)
    target = str(header.get("OBJECT", "")).strip() or (match["target"] if match else image.stem)
    if match is None:
        return f"{target} continuum ({image.name})"
    spws = match["spws"].replace("_", ", ")
    kind = "aggregate continuum" if match["kind"] == "cont" else "continuum"
    return f"{target} {kind}, spw {spws}"


def hips_properties(
    plane: ContinuumPlane,
    *,
    image: Path,
    mous_id: str,
    creator_did: str,
    min_order: int,
    max_order: int,
    tile_width: int,
    stretch: DisplayStretch,
    sky_fraction: float,
    tile_count: int,
) -> dict[str, str]:
    """The properties file: HiPS 1.0's required keywords first, then what clients and people use."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%MZ")
    header = plane.header
    centre, size_deg = image_centre_and_size(plane)
    finite = plane.data[np.isfinite(plane.data)]
    canonical_mous = canonical_mous_id(mous_id)
    telescope = str(header.get("TELESCOP", "ALMA")).strip() or "ALMA"
    properties = {
        "creator_did": creator_did,
        "obs_title": f"{describe_image(image, header)} - {telescope} MOUS {canonical_mous}",
        "dataproduct_type": "image",
        "hips_version": HIPS_VERSION,
        "hips_release_date": now,
        "hips_status": "public master clonableOnce",
        "hips_tile_format": " ".join(tile_format.value for tile_format in TILE_FORMATS),
        "hips_order": str(max_order),
        "hips_frame": HIPS_FRAME,
        "hips_order_min": str(min_order),
        "hips_tile_width": str(tile_width),
        "hips_creation_date": now,
        "hips_builder": "aperture-previews (astropy/reproject)",
        "hips_creator": "Aperture",
        "hips_sampling": "bilinear",
        "hips_pixel_bitpix": "-32",
        "hips_pixel_cut": f"{stretch.low:.6g} {stretch.high:.6g}",
        "hips_data_range": f"{float(finite.min()):.6g} {float(finite.max()):.6g}",
        "hips_pixel_scale": f"{healpix_pixel_deg(max_order, tile_width):.6g}",
        "s_pixel_scale": f"{plane.cell_deg:.6g}",
        "hips_initial_ra": f"{centre.ra.deg:.8f}",
        "hips_initial_dec": f"{centre.dec.deg:.8f}",
        "hips_initial_fov": f"{size_deg * FIELD_OF_VIEW_MARGIN:.6g}",
        "hips_nb_tiles": str(tile_count),
        "moc_sky_fraction": f"{sky_fraction:.6g}",
        "obs_collection": telescope,
        "obs_description": (
            f"Primary-beam-corrected {describe_image(image, header)} of {telescope} member observing unit set "
            f"{canonical_mous}; brightness unit {str(header.get('BUNIT', '')).strip() or 'unknown'}"
        ),
        "prov_progenitor": image.name,
        "hips_bunit": str(header.get("BUNIT", "")).strip(),
    }
    band = frequency_range_hz(header)
    if band is not None:
        properties["obs_regime"] = observing_regime(sum(band) / 2)
        properties["em_min"] = f"{SPEED_OF_LIGHT_M_S / band[1]:.6g}"  # metres: the highest frequency
        properties["em_max"] = f"{SPEED_OF_LIGHT_M_S / band[0]:.6g}"
    if "DATE-OBS" in header:
        properties["t_min"] = f"{Time(str(header['DATE-OBS']), scale='utc').mjd:.6f}"
    return {key: value for key, value in properties.items() if value}


def folder_bytes(root: Path) -> int:
    return sum(path.stat().st_size for path in root.rglob("*") if path.is_file())
