"""FITS products from CASA images, with the header keywords archives need. Runs inside the CASA child.

exportfits writes the beam (BMAJ/BMIN/BPA, or a BEAMS table for cubes with a beam per plane; copied
from the image to its PB, residual and mask first, which tclean leaves without one), RESTFRQ,
SPECSYS, OBJECT and the telescope from the image; what the image does not know (the MOUS it belongs to,
the spws it was made from) is put into the image's header with imhead first, which exportfits then
writes as FITS keywords. Done in CASA rather than with astropy afterwards, so that the deployed image
needs nothing beyond CASA.

A cube in equal steps of optical velocity is equally spaced in wavelength, not in frequency; CASA keeps
its channels as a table, and exportfits writes a linear frequency axis through the first two channels,
which drifts from the true channels (0.03 km/s after 20 channels of 5 km/s, growing with the square of the
span). Such a cube's spectral axis is written as FITS's frequency axis sampled linearly in wavelength
(CTYPE FREQ-W2F, Greisen et al. 2006), which gives every channel's frequency exactly, still as FREQ.
"""

import math
from pathlib import Path

from aperture_shared.casa.calls import CasaCallLog

from aperture_imaging.naming import IMAGE

# FITS keyword (at most 8 characters) -> meaning; the values come with each export.
MOUS_KEYWORD = "mousid"
SPW_KEYWORD = "spw"
SPEED_OF_LIGHT_M_S = 299_792_458.0
FITS_BLOCK_BYTES, FITS_CARD_BYTES = 2880, 80


def export_fits(
    calls: CasaCallLog, images: dict[str, str], fits_names: dict[str, str], fits_dir: Path, keywords: dict[str, str],
    *, linear_in_wavelength: bool = False,
) -> dict[str, str]:
    """Export each CASA image (role -> path) to fits_dir/<its name>, after adding `keywords` to its
    header. Returns role -> FITS path. linear_in_wavelength: the images are cubes in equal steps of
    optical velocity, whose spectral axis is written as FREQ-W2F (see the module's docstring)."""
    fits_dir.mkdir(parents=True, exist_ok=True)
    exported: dict[str, str] = {}
    for role, image in images.items():
        if role != IMAGE and IMAGE in images:
            _give_beam(calls, image, images[IMAGE])
        for key, value in keywords.items():
            calls.task("imhead", imagename=image, mode="put", hdkey=key, hdvalue=value)
        destination = fits_dir / fits_names[role]
        calls.task(
            "exportfits", imagename=image, fitsimage=str(destination), velocity=False, optical=False,
            bitpix=-32, dropdeg=False, dropstokes=False, stokeslast=True, history=False, overwrite=True,
        )
        if not destination.is_file():
            raise RuntimeError(f"exportfits did not write {destination.name}; see the CASA log")
        if linear_in_wavelength:
            first, last, count = _first_and_last_channel_hz(image)
            if count > 1:
                write_wavelength_linear_axis(destination, first, last, count)
        exported[role] = str(destination)
    return exported


def _first_and_last_channel_hz(image: str) -> tuple[float, float, int]:
    """The centre frequencies of an image's first and last channel (from its own, tabular, spectral axis)
    and its channel count."""
    import casatools  # type: ignore[import-untyped]

    tool = casatools.image()
    try:
        tool.open(image)
        shape = [int(n) for n in tool.shape()]
        coordinates = tool.coordsys()
        try:
            axis = int(coordinates.findaxisbyname("spectral"))
            pixel = [0.0] * len(shape)
            first = float(coordinates.toworld(pixel)["numeric"][axis])
            pixel[axis] = float(shape[axis] - 1)
            last = float(coordinates.toworld(pixel)["numeric"][axis])
        finally:
            coordinates.done()
    finally:
        tool.close()
        tool.done()
    return first, last, shape[axis]


def write_wavelength_linear_axis(fits_path: Path, first_hz: float, last_hz: float, count: int) -> None:
    """Make the FITS file's frequency axis FREQ-W2F: `count` channels equally spaced in wavelength, centred
    on first_hz to last_hz. The reference is the first channel; CDELT is the frequency step there
    (d nu / d pixel = -nu^2 d lambda / c), as the convention defines it."""
    if count < 2:
        raise ValueError(f"a wavelength step needs two channels or more, got {count}")
    axis = _frequency_axis_number(fits_path)
    wavelength_step = (SPEED_OF_LIGHT_M_S / last_hz - SPEED_OF_LIGHT_M_S / first_hz) / (count - 1)
    _rewrite_cards(fits_path, {
        f"CTYPE{axis}": "'FREQ-W2F'",
        f"CRPIX{axis}": _fits_real(1.0),
        f"CRVAL{axis}": _fits_real(first_hz),
        f"CDELT{axis}": _fits_real(-(first_hz**2) * wavelength_step / SPEED_OF_LIGHT_M_S),
    })


def _fits_real(value: float) -> str:
    if not math.isfinite(value):
        raise ValueError(f"a FITS header value must be finite, got {value}")
    return f"{value:.15E}"


def _header_bytes(fits_path: Path) -> bytearray:
    """The primary header, whole blocks up to the one holding END."""
    header = bytearray()
    with fits_path.open("rb") as file:
        while True:
            block = file.read(FITS_BLOCK_BYTES)
            if len(block) < FITS_BLOCK_BYTES:
                raise RuntimeError(f"{fits_path.name} has no END card in its primary header")
            header += block
            cards = (block[start : start + 8] for start in range(0, FITS_BLOCK_BYTES, FITS_CARD_BYTES))
            if any(keyword == b"END     " for keyword in cards):
                return header


def _frequency_axis_number(fits_path: Path) -> int:
    header = _header_bytes(fits_path)
    for start in range(0, len(header), FITS_CARD_BYTES):
        card = header[start : start + FITS_CARD_BYTES].decode("ascii")
        if card.startswith("CTYPE") and card[10:].strip().strip("'").strip().startswith("FREQ"):
            return int(card[5:8])
    raise RuntimeError(f"{fits_path.name} has no FREQ axis to describe")


def _rewrite_cards(fits_path: Path, values: dict[str, str]) -> None:
    """Give existing cards of the primary header new values, in place: each card keeps its 80 bytes, so
    the header and the data after it stay where they are. (CASA has no tool that writes FITS headers.)"""
    header = _header_bytes(fits_path)
    missing = set(values)
    for start in range(0, len(header), FITS_CARD_BYTES):
        keyword = header[start : start + 8].decode("ascii").strip()
        if keyword in values:
            header[start : start + FITS_CARD_BYTES] = f"{keyword:<8}= {values[keyword]:>20}".ljust(80).encode("ascii")
            missing.discard(keyword)
    if missing:
        raise RuntimeError(f"{fits_path.name} has no {', '.join(sorted(missing))} card to rewrite")
    with fits_path.open("r+b") as file:
        file.write(header)


def _give_beam(calls: CasaCallLog, companion: str, image: str) -> None:
    """tclean writes the restoring beam(s) on the image alone; its PB, residual and mask share its grid
    and resolution, so each FITS of the product carries the same beam (per plane for a cube)."""
    import casatools  # type: ignore[import-untyped]

    tool = casatools.image()
    try:
        tool.open(companion)
        has_beam = bool(tool.restoringbeam())
    finally:
        tool.close()
        tool.done()
    if not has_beam:
        calls.image_tool(companion, "setrestoringbeam", imagename=image)
