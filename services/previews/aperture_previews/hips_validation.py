"""Checks that a HiPS folder is a valid HiPS 1.0 image survey: its properties file, its tiles at every
order from hips_order_min to hips_order in every listed format, the Allsky files and the MOC.

`validate_hips` returns the problems found as sentences (an empty list: valid), so that a test or a QA
step can show all of them at once rather than stop at the first.
"""

import math
import re
from datetime import datetime
from pathlib import Path

from astropy.io import fits
from PIL import Image

from aperture_previews.hips import ALLSKY_COLUMNS, ALLSKY_ORDER, ALLSKY_ROWS, HEALPIX_MAX_ORDER

REQUIRED_KEYS = (
    "creator_did",
    "obs_title",
    "dataproduct_type",
    "hips_version",
    "hips_release_date",
    "hips_status",
    "hips_tile_format",
    "hips_order",
    "hips_frame",
)
REPEATABLE_KEYS = {"prov_progenitor", "bib_reference", "bib_reference_url", "obs_regime", "data_ucd", "client_link"}
IMAGE_TILE_EXTENSIONS = {"fits": "fits", "png": "png", "jpeg": "jpg"}
# IVOA Identifiers 2.0: ivo://<authority>[/<path>]; the authority starts alphanumeric, 3 characters or more.
IVOID = re.compile(r"^ivo://[A-Za-z0-9][\w\-.~*'()]{2,}(/[\w\-.~*'()/:@!$&+,;=%]*)?$")
ISO_MINUTE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}Z$")
VERSION = re.compile(r"^\d+\.\d+$")
FRAMES = {"equatorial", "galactic", "ecliptic"}
DATAPRODUCT_TYPES = {"image", "cube", "catalog", "spectral-cube", "time-cube"}
STATUS_GROUPS = ({"private", "public"}, {"master", "mirror", "partial"}, {"clonable", "unclonable", "clonableOnce"})
BITPIX = {"8", "16", "32", "64", "-32", "-64"}
TILE_NAME = re.compile(r"^Npix(\d+)\.(\w+)$")


def validate_hips(root: Path) -> list[str]:
    """Every way in which the HiPS at `root` breaks HiPS 1.0 (or its own properties); [] when none."""
    if not (root / "properties").is_file():
        return [f"{root} has no properties file"]
    properties, problems = parse_properties(root / "properties")
    problems += check_properties(properties)
    if any("hips_order" in problem or "hips_tile_format" in problem for problem in problems):
        return problems  # the tile checks need both
    max_order = int(properties["hips_order"])
    min_order = int(properties.get("hips_order_min", "0"))
    width = int(properties.get("hips_tile_width", "512"))
    formats = properties["hips_tile_format"].split()
    tiles: dict[str, dict[int, set[int]]] = {}
    for tile_format in formats:
        tiles[tile_format], format_problems = check_tiles(root, tile_format, min_order, max_order, width)
        problems += format_problems
    problems += check_formats_agree(tiles)
    for tile_format in formats:
        problems += check_allsky(root, tile_format, width)
    if (root / "Moc.fits").is_file():
        deepest = next(iter(tiles.values()))[max_order] if tiles else set()
        problems += check_moc(root / "Moc.fits", max_order, deepest, properties.get("moc_sky_fraction"))
    return problems


def parse_properties(path: Path) -> tuple[dict[str, str], list[str]]:
    """The keyword = value lines (HiPS 1.0 section 4.4.1), with any syntax problems."""
    problems: list[str] = []
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        return {}, [f"properties is not UTF-8: {error}"]
    properties: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        if "=" not in line:
            problems.append(f"properties line {number} is not 'keyword = value': {line!r}")
            continue
        key, value = (part.strip() for part in line.split("=", 1))
        if not key or re.search(r"\s", key):
            problems.append(f"properties line {number} has an invalid keyword {key!r}")
        elif key in properties and key not in REPEATABLE_KEYS:
            problems.append(f"properties keyword {key} is given twice")
        properties[key] = value
    return properties, problems


def check_properties(properties: dict[str, str]) -> list[str]:
    """Required keywords present, and every known keyword's value in its documented format."""
    problems = [f"properties lacks the required keyword {key}" for key in REQUIRED_KEYS if not properties.get(key)]
    checks = {
        "creator_did": lambda v: bool(IVOID.match(v)),
        "obs_title": lambda v: "\n" not in v,
        "dataproduct_type": lambda v: v in DATAPRODUCT_TYPES,
        "hips_version": lambda v: bool(VERSION.match(v)),
        "hips_release_date": is_iso_minute,
        "hips_creation_date": is_iso_minute,
        "hips_status": is_status,
        "hips_tile_format": lambda v: bool(v.split()) and all(word in IMAGE_TILE_EXTENSIONS for word in v.split()),
        "hips_order": lambda v: is_int_between(v, 0, HEALPIX_MAX_ORDER),
        "hips_order_min": lambda v: is_int_between(v, 0, int(properties.get("hips_order", HEALPIX_MAX_ORDER))),
        "hips_frame": lambda v: v in FRAMES,
        "hips_tile_width": is_power_of_two,
        "hips_pixel_bitpix": lambda v: v in BITPIX,
        "hips_pixel_cut": is_range,
        "hips_data_range": is_range,
        "hips_initial_ra": lambda v: is_float_between(v, 0, 360),
        "hips_initial_dec": lambda v: is_float_between(v, -90, 90),
        "hips_initial_fov": lambda v: is_float_between(v, 0, 360, low_open=True),
        "hips_pixel_scale": lambda v: is_float_between(v, 0, 360, low_open=True),
        "s_pixel_scale": lambda v: is_float_between(v, 0, 360, low_open=True),
        "moc_sky_fraction": lambda v: is_float_between(v, 0, 1),
        "em_min": lambda v: is_float_between(v, 0, math.inf, low_open=True),
        "em_max": lambda v: is_float_between(v, 0, math.inf, low_open=True),
        "t_min": is_float,
        "t_max": is_float,
        "hips_estsize": lambda v: is_int_between(v, 0, 2**63),
        "hips_nb_tiles": lambda v: is_int_between(v, 0, 2**63),
    }
    for key, check in checks.items():
        if properties.get(key) and not check(properties[key]):
            problems.append(f"properties {key} = {properties[key]!r} is not in the standard's format")
    for low, high in (("em_min", "em_max"), ("t_min", "t_max")):
        if is_float(properties.get(low, "")) and is_float(properties.get(high, "")):
            if float(properties[low]) > float(properties[high]):
                problems.append(f"properties {low} is larger than {high}")
    return problems


def check_tiles(
    root: Path, tile_format: str, min_order: int, max_order: int, width: int
) -> tuple[dict[int, set[int]], list[str]]:
    """Tiles of one format: at least one per order, in the right Dir, of the right size, with parents."""
    extension = IMAGE_TILE_EXTENSIONS[tile_format]
    tiles: dict[int, set[int]] = {}
    problems: list[str] = []
    for order in range(min_order, max_order + 1):
        tiles[order] = set()
        for path in sorted((root / f"Norder{order}").glob(f"Dir*/Npix*.{extension}")):
            match = TILE_NAME.match(path.name)
            if match is None:
                problems.append(f"{path.relative_to(root)} is not named Npix<index>.{extension}")
                continue
            index = int(match[1])
            tiles[order].add(index)
            where = path.relative_to(root)
            if index >= 12 * 4**order:
                problems.append(f"{where}: order {order} has no tile {index}")
            if path.parent.name != f"Dir{index // 10000 * 10000}":
                problems.append(f"{where} is not in Dir{index // 10000 * 10000}")
            size = tile_size(path, tile_format)
            if size != (width, width):
                problems.append(f"{where} is {size[0]} x {size[1]} pixels, not {width} x {width}")
        if not tiles[order]:
            problems.append(f"no {tile_format} tile at order {order} (Norder{order}/Dir*/Npix*.{extension})")
        elif order > min_order:
            orphans = sorted(index for index in tiles[order] if index // 4 not in tiles[order - 1])
            if orphans:
                problems.append(f"{tile_format} tiles of order {order} without a parent tile: {orphans[:5]}")
    return tiles, problems


def check_formats_agree(tiles: dict[str, dict[int, set[int]]]) -> list[str]:
    """Each format holds the same tiles: a client may switch format at any zoom."""
    if len(tiles) < 2:
        return []
    (first, reference), *others = tiles.items()
    return [
        f"{tile_format} and {first} tiles differ at order {order}"
        for tile_format, by_order in others
        for order, indices in by_order.items()
        if indices != reference.get(order)
    ]


def check_allsky(root: Path, tile_format: str, width: int) -> list[str]:
    """An Allsky file, where written, is 27 x 29 order-3 tiles shrunk to a power of two (section 4.3.2)."""
    path = root / f"Norder{ALLSKY_ORDER}" / f"Allsky.{IMAGE_TILE_EXTENSIONS[tile_format]}"
    if not path.is_file():
        return []
    columns_px, rows_px = tile_size(path, tile_format)
    subtile = columns_px // ALLSKY_COLUMNS
    if columns_px % ALLSKY_COLUMNS or rows_px != ALLSKY_ROWS * subtile or not is_power_of_two(str(subtile)):
        return [f"{path.relative_to(root)} is {columns_px} x {rows_px} pixels, not 27 x 29 tiles of 2^n pixels"]
    if subtile > width:
        return [f"{path.relative_to(root)} has tiles of {subtile} pixels, more than the tiles' {width}"]
    return []


def check_moc(path: Path, max_order: int, deepest_tiles: set[int], sky_fraction: str | None) -> list[str]:
    """Moc.fits (NUNIQ or RANGE, MOC 2.0) covers every deepest tile, and its area matches moc_sky_fraction."""
    try:
        with fits.open(path) as hdus:
            values = [int(value) for value in hdus[1].data.field(0)]
            ordering = hdus[1].header.get("ORDERING")
    except (OSError, IndexError, KeyError, TypeError) as error:
        return [f"Moc.fits cannot be read as a MOC: {error}"]
    if ordering == "NUNIQ":
        ranges = [nuniq_to_range(value) for value in values]
    elif ordering == "RANGE" and len(values) % 2 == 0:
        ranges = list(zip(values[0::2], values[1::2], strict=True))
    else:
        return [f"Moc.fits has ORDERING = {ordering!r} ({len(values)} values), not NUNIQ or RANGE"]
    shift = 2 * (HEALPIX_MAX_ORDER - max_order)
    problems = [
        f"Moc.fits does not cover the order-{max_order} tile {tile}"
        for tile in sorted(deepest_tiles)
        if not any(start < (tile + 1) << shift and tile << shift < end for start, end in ranges)
    ]
    if sky_fraction is not None and is_float(sky_fraction):
        area = sum(end - start for start, end in ranges) / (12 * 4**HEALPIX_MAX_ORDER)
        if not math.isclose(area, float(sky_fraction), rel_tol=1e-3):
            problems.append(f"moc_sky_fraction = {sky_fraction} but Moc.fits covers {area:.6g} of the sky")
    return problems


def nuniq_to_range(value: int) -> tuple[int, int]:
    """A NUNIQ cell (4 * 4^order + index, index < 12 * 4^order) as its range of order-29 cells."""
    order = (value.bit_length() - 3) // 2
    index = value - 4 * 4**order
    shift = 2 * (HEALPIX_MAX_ORDER - order)
    return index << shift, (index + 1) << shift


def tile_size(path: Path, tile_format: str) -> tuple[int, int]:
    if tile_format == "fits":
        header = fits.getheader(path)
        return int(header.get("NAXIS1", 0)), int(header.get("NAXIS2", 0))
    with Image.open(path) as image:
        return image.size


def is_iso_minute(value: str) -> bool:
    if not ISO_MINUTE.match(value):
        return False
    try:
        datetime.strptime(value, "%Y-%m-%dT%H:%MZ")
    except ValueError:
        return False
    return True


def is_status(value: str) -> bool:
    words = value.split()
    return (
        bool(words)
        and all(sum(word in group for word in words) <= 1 for group in STATUS_GROUPS)
        and all(any(word in group for group in STATUS_GROUPS) for word in words)
    )


def is_float(value: str) -> bool:
    try:
        return math.isfinite(float(value))
    except ValueError:
        return False


def is_float_between(value: str, low: float, high: float, low_open: bool = False) -> bool:
    if not is_float(value):
        return False
    number = float(value)
    return (number > low if low_open else number >= low) and number <= high


def is_int_between(value: str, low: int, high: int) -> bool:
    return value.lstrip("-").isdigit() and low <= int(value) <= high


def is_power_of_two(value: str) -> bool:
    return value.isdigit() and int(value) > 0 and int(value) & (int(value) - 1) == 0


def is_range(value: str) -> bool:
    parts = value.split()
    return len(parts) == 2 and all(is_float(part) for part in parts) and float(parts[0]) <= float(parts[1])
