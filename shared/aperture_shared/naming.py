"""Product names the ALMA way, one rule for every service, so that people who know ALMA archive
products know these:

    <mous>.<target>_sci.spw<ids joined by _>.<what>          e.g. uid___A001_X3a1_X7.NGC_253_sci.spw25.cont.dat
    <mous>.<target>_sci.spw<ids>.<mfs|cont|cube>.I.<role>.fits
"""

import re

from aperture_contracts.ids import mous_key

_UNSAFE = re.compile(r"[^A-Za-z0-9+.-]+")


def safe_name(name: str) -> str:
    """A field name as it appears in file names: runs of anything but letters, digits, '+', '-' and '.'
    become '_' (ALMA writes 'NGC 2872' as NGC_2872)."""
    return _UNSAFE.sub("_", name).strip("_") or "field"


def science_stem(mous_id: str, target: str, spw_ids: list[int]) -> str:
    """`<mous>.<target>_sci.spw<ids>`: what every product of a target and its spws begins with."""
    spws = "_".join(str(spw) for spw in spw_ids)
    return f"{mous_key(mous_id)}.{safe_name(target)}_sci.spw{spws}"


def image_stem(mous_id: str, target: str, spw_ids: list[int], kind: str) -> str:
    """`<mous>.<target>_sci.spw<ids>.<kind>.I` (Stokes I images)."""
    return f"{science_stem(mous_id, target, spw_ids)}.{kind}.I"
