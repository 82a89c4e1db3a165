"""FITS products from CASA images, with the header keywords archives need. Runs inside the CASA child.

exportfits writes the beam (BMAJ/BMIN/BPA, or a BEAMS table for cubes with a beam per plane; copied
from the image to its PB, residual and mask first, which tclean leaves without one), RESTFRQ,
SPECSYS, OBJECT and the telescope from the image; what the image does not know (the MOUS it belongs to,
the spws it was made from) is put into the image's header with imhead first, which exportfits then
writes as FITS keywords. Done in CASA rather than with astropy afterwards, so that the deployed image
needs nothing beyond CASA.
"""

from pathlib import Path

from aperture_shared.casa.calls import CasaCallLog

from aperture_imaging.naming import IMAGE

# FITS keyword (at most 8 characters) -> meaning; the values come with each export.
MOUS_KEYWORD = "mousid"
SPW_KEYWORD = "spw"


def export_fits(
    calls: CasaCallLog, images: dict[str, str], fits_names: dict[str, str], fits_dir: Path, keywords: dict[str, str]
) -> dict[str, str]:
    """Export each CASA image (role -> path) to fits_dir/<its name>, after adding `keywords` to its
    header. Returns role -> FITS path."""
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
        exported[role] = str(destination)
    return exported


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
