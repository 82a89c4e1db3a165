"""Which channels of each spw are continuum, in the forms uvcontsub and tclean take, from findcont's
`ContinuumRanges`; and what to do, explicitly, where a spw has no line-free channel or no line at all.

Pure: the handler plans with these before any CASA process starts, so a wrong cont.dat fails the job
at once with a message naming the spw and the selection.
"""

import re
from dataclasses import dataclass

from aperture_contracts.continuum import ContinuumCase, ContinuumRanges
from aperture_contracts.enums import ImagingKind
from aperture_shared.errors import BadInput

_RANGE = re.compile(r"^\s*(\d+)\s*(?:~\s*(\d+))?\s*$")

# Cases whose ranges span the whole spw whatever the selection string says.
WHOLE_SPW_CASES = (ContinuumCase.ALL_CONTINUUM, ContinuumCase.NOISY)


def parse_channel_ranges(text: str, nchan: int) -> list[tuple[int, int]]:
    """'0~27;47~63' -> [(0, 27), (47, 63)] (inclusive); '' -> []. ValueError when malformed, reversed,
    overlapping or outside 0..nchan-1."""
    ranges: list[tuple[int, int]] = []
    if not text.strip():
        return ranges
    for part in text.split(";"):
        match = _RANGE.match(part)
        if match is None:
            raise ValueError(f"{part!r} is not a channel or a channel range like '10~20'")
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) is not None else first
        if last < first:
            raise ValueError(f"the range {part.strip()!r} ends before it starts")
        if last >= nchan:
            raise ValueError(f"the range {part.strip()!r} goes past the spw's last channel ({nchan - 1})")
        if ranges and first <= ranges[-1][1]:
            raise ValueError(f"the range {part.strip()!r} overlaps or precedes the one before it")
        ranges.append((first, last))
    return ranges


def format_channel_ranges(ranges: list[tuple[int, int]]) -> str:
    return ";".join(f"{first}~{last}" if last != first else str(first) for first, last in ranges)


def count_channels(ranges: list[tuple[int, int]]) -> int:
    return sum(last - first + 1 for first, last in ranges)


def continuum_of_spws(
    target: str, spw_ids: list[int], continuum: list[ContinuumRanges]
) -> dict[int, ContinuumRanges]:
    """The continuum ranges of each of the job's spws for its target; BadInput when one is missing."""
    by_spw = {ranges.spw_id: ranges for ranges in continuum if ranges.target == target}
    missing = [spw for spw in spw_ids if spw not in by_spw]
    if missing:
        known = sorted((ranges.target, ranges.spw_id) for ranges in continuum)
        raise BadInput(
            f"the job carries no continuum ranges for target {target!r} in spw(s) {missing} (it has ranges "
            f"for {known or 'nothing'}). Run findcont for them, or supply a cont.dat that covers them."
        )
    return {spw: by_spw[spw] for spw in spw_ids}


def line_free_channels(ranges: ContinuumRanges, nchan: int) -> list[tuple[int, int]]:
    """The continuum channels of one spw: the whole spw for the all-continuum and noisy cases, none for
    no_continuum, else the parsed selection. BadInput when the selection cannot be read."""
    if ranges.case == ContinuumCase.NO_CONTINUUM:
        return []
    if ranges.case in WHOLE_SPW_CASES and not ranges.channel_ranges.strip():
        return [(0, nchan - 1)]
    try:
        return parse_channel_ranges(ranges.channel_ranges, nchan)
    except ValueError as error:
        raise BadInput(
            f"the continuum channels of {ranges.target!r} in spw {ranges.spw_id} "
            f"({ranges.channel_ranges!r}, from {ranges.source}) cannot be used: {error}. "
            "Correct the cont.dat (channels 0.."
            f"{nchan - 1}, ranges like '0~27;47~63') and submit it again."
        ) from error


def continuum_fit_order(channels: list[tuple[int, int]], nchan: int, case: ContinuumCase) -> int:
    """Polynomial order of uvcontsub's fit: 1 (a slope across the spw) when the continuum channels span
    at least half the spw, so the slope is pinned down on both sides of the lines; 0 when they sit in a
    narrow part of it (a slope would be extrapolated across the lines and add noise), in a line forest
    (few, short ranges) and when findcont saw no significant signal."""
    if case in (ContinuumCase.LINE_FOREST, ContinuumCase.NOISY) or not channels:
        return 0
    span = channels[-1][1] - channels[0][0] + 1
    return 1 if span * 2 >= nchan else 0


@dataclass(frozen=True)
class _SpwContinuum:
    spw_id: int
    nchan: int
    ranges: ContinuumRanges
    channels: list[tuple[int, int]]  # line-free; empty when the spw has none


def _continuum_per_spw(
    target: str, spw_ids: list[int], continuum: list[ContinuumRanges], nchan_by_spw: dict[int, int]
) -> list[_SpwContinuum]:
    """Each spw of the job with its line-free channels, in the job's order."""
    ranges_of = continuum_of_spws(target, spw_ids, continuum)
    found = []
    for spw in spw_ids:
        nchan = _nchan(nchan_by_spw, spw)
        found.append(_SpwContinuum(spw, nchan, ranges_of[spw], line_free_channels(ranges_of[spw], nchan)))
    return found


@dataclass(frozen=True)
class SpwSubtraction:
    """uvcontsub's fit of one spw: the line-free channels it fits and the polynomial order."""

    spw_id: int
    channels: str
    fitorder: int
    continuum_channels: int
    nchan: int


@dataclass(frozen=True)
class ContinuumSubtractionPlan:
    subtract: list[SpwSubtraction]
    pass_through: list[int]  # spws without continuum: their data go on as they are, unsubtracted


def plan_continuum_subtraction(
    target: str, spw_ids: list[int], continuum: list[ContinuumRanges], nchan_by_spw: dict[int, int]
) -> ContinuumSubtractionPlan:
    """What uvcontsub fits per spw. A spw without line-free channels cannot have its continuum fitted:
    subtracting a fit of line channels would remove the line, so it is passed on unsubtracted."""
    subtract: list[SpwSubtraction] = []
    pass_through: list[int] = []
    for spw in _continuum_per_spw(target, spw_ids, continuum, nchan_by_spw):
        if not spw.channels:
            pass_through.append(spw.spw_id)
            continue
        subtract.append(
            SpwSubtraction(
                spw_id=spw.spw_id, channels=format_channel_ranges(spw.channels),
                fitorder=continuum_fit_order(spw.channels, spw.nchan, spw.ranges.case),
                continuum_channels=count_channels(spw.channels), nchan=spw.nchan,
            )
        )
    return ContinuumSubtractionPlan(subtract=subtract, pass_through=pass_through)


@dataclass(frozen=True)
class SpwImagingSelection:
    """The channels of one spw that go into an image ('' = all of them) and why."""

    spw_id: int
    channels: str
    used_channels: int
    nchan: int
    note: str


@dataclass(frozen=True)
class ImagingSelection:
    spws: list[SpwImagingSelection]  # what is imaged
    left_out: list[int]  # cont: spws without continuum, not imaged
    fallback: bool  # True when the image could not be restricted to line-free channels

    def describe(self) -> str:
        parts = [f"spw {spw.spw_id}: {spw.note}" for spw in self.spws]
        parts += [f"spw {spw}: left out, no line-free channel" for spw in self.left_out]
        return "; ".join(parts)


def imaging_selection(
    kind: ImagingKind,
    target: str,
    spw_ids: list[int],
    continuum: list[ContinuumRanges],
    nchan_by_spw: dict[int, int],
) -> ImagingSelection:
    """Channels per spw for an image of `kind`.

    cube: every channel (the data are continuum-subtracted already). mfs and cont: the line-free channels.
    cont leaves out spws without continuum; an mfs of such a spw, or a cont where no spw has continuum,
    images every channel instead, marked as a fallback: the data hold no line-free channel, and an image
    of the whole band is still the best continuum estimate there is (QA says what it holds)."""
    if kind == ImagingKind.CONTSUB:
        raise ValueError("continuum subtraction makes no image")
    if kind == ImagingKind.CUBE:
        every = [
            SpwImagingSelection(spw, "", _nchan(nchan_by_spw, spw), _nchan(nchan_by_spw, spw), "all channels")
            for spw in spw_ids
        ]
        return ImagingSelection(every, [], False)
    chosen: list[SpwImagingSelection] = []
    without_continuum: list[int] = []
    for spw in _continuum_per_spw(target, spw_ids, continuum, nchan_by_spw):
        if not spw.channels:
            without_continuum.append(spw.spw_id)
            continue
        used = count_channels(spw.channels)
        chosen.append(
            SpwImagingSelection(
                spw.spw_id, "" if used == spw.nchan else format_channel_ranges(spw.channels), used, spw.nchan,
                f"{used} of {spw.nchan} channels are continuum ({spw.ranges.case.value}, from {spw.ranges.source})",
            )
        )
    if chosen:
        return ImagingSelection(chosen, without_continuum, False)
    every = [
        SpwImagingSelection(
            spw, "", _nchan(nchan_by_spw, spw), _nchan(nchan_by_spw, spw),
            "no line-free channel: every channel is imaged, so the image holds line emission too",
        )
        for spw in spw_ids
    ]
    return ImagingSelection(every, [], True)


def _nchan(nchan_by_spw: dict[int, int], spw: int) -> int:
    try:
        return nchan_by_spw[spw]
    except KeyError:
        raise BadInput(
            f"spw {spw} is not among the MOUS's spectral windows ({sorted(nchan_by_spw)}); "
            "the job names a spw that ingest did not find"
        ) from None
