"""The categories of a campaign's members: array, ALMA band, spws, channels, mosaic or single field and
package size, so that a sample of each kind of observation can run (and be looked at) before the rest.

A category is a key of six parts, "12m/B6/4spw/le1kch/single/lt1GB", each "unknown" while its attribute is
not known; a member of which nothing is known is in the category "unknown". Counts are bucketed so that a
campaign has tens of categories, not thousands: what changes how a run behaves is 4 spws against 16, or
128 channels against 4000, not 3 channels more.

What is known up front (a manifest from the archive's database gives it all, a prefix scan the size only)
is completed by `attributes_from_metadata` once the member's MOUS is ingested.
"""

import re
from collections import Counter
from collections.abc import Iterable

from aperture_contracts.campaigns import MemberAttributes
from aperture_contracts.metadata import MeasurementSetInfo, MousMetadata, SpectralWindow

UNKNOWN = "unknown"
GB = 10**9

# ALMA's receiver bands, as (band, lowest GHz, highest GHz) of the sky frequencies each one takes. Band 2's
# range reaches into band 3's; an spw in the overlap is band 3's, the band the archive has it from.
ALMA_BANDS_GHZ: tuple[tuple[int, float, float], ...] = (
    (1, 35.0, 50.0),
    (2, 67.0, 84.0),
    (3, 84.0, 116.0),
    (4, 125.0, 163.0),
    (5, 163.0, 211.0),
    (6, 211.0, 275.0),
    (7, 275.0, 373.0),
    (8, 385.0, 500.0),
    (9, 602.0, 720.0),
    (10, 787.0, 950.0),
)
# ALMA antennas by name: DA/DV are the 12 m array's, CM the 7 m (ACA) array's, PM the total power array's.
TOTAL_POWER_PREFIX = "PM"
DIAMETER_TOLERANCE_M = 0.5
SIZE_BUCKETS: tuple[tuple[str, int | None], ...] = (
    ("lt1GB", GB), ("1to10GB", 10 * GB), ("10to100GB", 100 * GB), ("ge100GB", None),
)
CHANNEL_BUCKETS: tuple[tuple[str, int | None], ...] = (
    ("le128ch", 128), ("le1kch", 1024), ("le4kch", 4096), ("gt4kch", None),
)


def alma_band(frequency_hz: float) -> int | None:
    """The ALMA band a sky frequency is observed in; None outside every band."""
    ghz = frequency_hz / 1e9
    for band, low, high in ALMA_BANDS_GHZ:
        if low <= ghz <= high:
            return band
    return None


def _bucket(value: int, buckets: tuple[tuple[str, int | None], ...], *, inclusive: bool) -> str:
    for label, bound in buckets:
        if bound is None or value < bound or (inclusive and value == bound):
            return label
    raise AssertionError("the last bucket has no bound")


def spw_part(spws: int) -> str:
    if spws <= 4:
        return f"{spws}spw"
    return "5to8spw" if spws <= 8 else "gt8spw"


def category_key(attributes: MemberAttributes) -> str:
    """The member's category: "12m/B6/4spw/le1kch/single/lt1GB", "unknown" for a part not known, and
    "unknown" alone when nothing is."""
    parts = [
        attributes.array,
        None if attributes.band is None else f"B{attributes.band}",
        None if attributes.spws is None else spw_part(attributes.spws),
        None if attributes.max_channels is None else _bucket(attributes.max_channels, CHANNEL_BUCKETS, inclusive=True),
        None if attributes.fields is None else ("mosaic" if attributes.fields > 1 else "single"),
        None if attributes.size_bytes is None else _bucket(attributes.size_bytes, SIZE_BUCKETS, inclusive=False),
    ]
    if all(part is None for part in parts):
        return UNKNOWN
    return "/".join(part or UNKNOWN for part in parts)


def completed(known: MemberAttributes, learned: MemberAttributes) -> MemberAttributes:
    """`known` with each unknown attribute taken from `learned` (what was given up front stays)."""
    unknown = {name for name, value in known.model_dump().items() if value is None}
    return known.model_copy(update={name: value for name, value in learned.model_dump().items() if name in unknown})


# -- from an ingested MOUS ----------------------------------------------------------------------------


def _part_token(text: str) -> str | None:
    """An observatory's name as a key part: letters, digits and + . _ - only, at most 32 characters."""
    token = re.sub(r"[^A-Za-z0-9+._-]+", "-", text.strip()).strip("-+._")[:32]
    return token or None


def _alma_array(ms: MeasurementSetInfo) -> str | None:
    if not ms.antennas:
        return None
    # Total power antennas sometimes join the 12 m array: only an MS of nothing but them is the TP array's.
    if all(antenna.name.upper().startswith(TOTAL_POWER_PREFIX) for antenna in ms.antennas):
        return "TP"
    arrays = set()
    for antenna in ms.antennas:
        for diameter, name in ((12.0, "12m"), (7.0, "7m")):
            if abs(antenna.diameter_m - diameter) <= DIAMETER_TOLERANCE_M:
                arrays.add(name)
    return "+".join(sorted(arrays)) or None


def _array(metadata: MousMetadata) -> str | None:
    arrays = set()
    for ms in metadata.measurement_sets:
        array = _alma_array(ms) if ms.observatory.strip().upper() == "ALMA" else _part_token(ms.observatory)
        if array is not None:
            arrays.add(array)
    # An MOUS is one array's; should its Measurement Sets differ, the category says all of them.
    return _part_token("+".join(sorted(arrays))) if arrays else None


def _science_windows(metadata: MousMetadata) -> list[SpectralWindow]:
    science = set(metadata.science_spw_ids)
    return [
        spw for ms in metadata.measurement_sets for spw in ms.spectral_windows
        if spw.spw_id in science and spw.science
    ]


def _band(metadata: MousMetadata, windows: Iterable[SpectralWindow]) -> int | None:
    """The ALMA band of the representative spw, else of the first science spw; None for other telescopes."""
    if not any(ms.observatory.strip().upper() == "ALMA" for ms in metadata.measurement_sets):
        return None
    by_id = {spw.spw_id: spw for spw in windows}
    chosen = metadata.representative_spw.spw_id if metadata.representative_spw is not None else None
    spw = by_id.get(chosen) if chosen is not None else None
    if spw is None and by_id:
        spw = by_id[min(by_id)]
    return None if spw is None else alma_band(spw.centre_frequency_hz)


def _most_pointings(metadata: MousMetadata) -> int | None:
    """The most fields of one science target in one Measurement Set: a mosaic's pointings are fields of the
    same name (each MS lists them again, so they are counted per MS)."""
    most = 0
    for ms in metadata.measurement_sets:
        per_target = Counter(field.name for field in ms.fields if field.is_science_target)
        most = max([most, *per_target.values()])
    return most or None


def attributes_from_metadata(metadata: MousMetadata) -> MemberAttributes:
    """What ingest's metadata says of the attributes (the package's size it does not know)."""
    windows = _science_windows(metadata)
    return MemberAttributes(
        array=_array(metadata),
        band=_band(metadata, windows),
        spws=len({spw.spw_id for spw in windows}) or None,
        max_channels=max((spw.num_channels for spw in windows), default=None),
        fields=_most_pointings(metadata),
    )
