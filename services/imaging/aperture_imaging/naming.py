"""The imaging products' names (the rule is aperture_shared.naming's):

    <mous>.<target>_sci.spw<ids joined by _>.<mfs|cont|cube>.I.<pbcor|pb|image>.fits
    <mous>.<target>_sci.spw19_21_23_25.cont.I.tt0.pbcor.fits          (mtmfs: Taylor term 0)

and the continuum-subtracted Measurement Sets of a target. A cube imaged in channel chunks gets the name
of a cube imaged in one job; its chunks' images are intermediates with names of their own.
"""

from aperture_contracts.enums import ImagingKind
from aperture_shared.naming import image_stem, safe_name

# FITS products of an image, by role; extras beside the three every image has.
PBCOR, IMAGE, PB, RESIDUAL, MASK, ALPHA = "pbcor", "image", "pb", "residual", "mask", "alpha"
MAIN_ROLES = (PBCOR, IMAGE, PB)
# Roles that have one image per Taylor term with mtmfs (named .tt0); the mask and alpha have one only.
PER_TERM_ROLES = (PBCOR, IMAGE, PB, RESIDUAL)

def product_stem(mous_id: str, target: str, spw_ids: list[int], kind: ImagingKind) -> str:
    """`<mous>.<target>_sci.spw<ids>.<kind>.I`"""
    return image_stem(mous_id, target, spw_ids, kind.value)


def fits_name(stem: str, role: str, multiterm: bool) -> str:
    """The FITS file of one role: `<stem>.pbcor.fits`, or `<stem>.tt0.pbcor.fits` for mtmfs images."""
    term = "tt0." if multiterm and role in PER_TERM_ROLES else ""
    return f"{stem}.{term}{role}.fits"


def chunk_image_name(stem: str, role: str, index: int, count: int) -> str:
    """The tarred CASA image of one role of one chunk of a cube (an intermediate, in the chunk job's work
    prefix): `<stem>.chunk1of4.<role>.im.tar`, counted from 1 as in the chunk's job id."""
    return f"{stem}.chunk{index + 1}of{count}.{role}.im.tar"


def chunk_image_role(name: str) -> str:
    """The role of a chunk image from its name (the inverse of chunk_image_name)."""
    return name.removesuffix(".im.tar").rsplit(".", 1)[-1]


def contsub_ms_name(ms_name: str, target: str, subtracted: bool) -> str:
    """`<ms>.<target>.contsub.ms` holds continuum-subtracted spws; `<ms>.<target>.no_contsub.ms` the
    spws that had no continuum to subtract (passed on as they were)."""
    stem = ms_name.removesuffix(".ms")
    return f"{stem}.{safe_name(target)}.{'contsub' if subtracted else 'no_contsub'}.ms"
