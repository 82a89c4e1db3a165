"""What the visibilities to be imaged say before any image is made: which MSs hold the target in which
spws, the uv coverage, the smallest dish, the frequency span and the natural-weighting sensitivity.

Runs inside the CASA child process (casatools is imported on first use, after configure_offline()).
Everything is read in bounded chunks, so a many-GB MS costs time but not memory.
"""

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from aperture_shared.errors import BadInput

from aperture_imaging.continuum_selection import parse_channel_ranges

# casacore's Stokes codes of the parallel hands (and Stokes I itself): the correlations Stokes I is made of.
PARALLEL_HANDS = {1: "I", 5: "RR", 8: "LL", 9: "XX", 12: "YY"}
# Elements (correlations x channels x rows) read at a time: ~16 M booleans of FLAG plus their weights.
CHUNK_ELEMENTS = 1 << 24
# Pointings of one target closer than this are the same pointing (repeated FIELD rows).
SAME_POINTING_ARCSEC = 1.0


@dataclass(frozen=True)
class MeasurementSetSelection:
    """The part of one MS that goes into an image."""

    path: str
    field_ids: list[int]
    spw_channels: dict[int, str]  # spw id -> channel ranges ('' = every channel)

    @property
    def field(self) -> str:
        return ",".join(str(field_id) for field_id in self.field_ids)

    @property
    def spw(self) -> str:
        """CASA spw selection, e.g. '0:0~27;47~63,1'."""
        return ",".join(f"{spw}:{channels}" if channels else str(spw) for spw, channels in self.spw_channels.items())


@dataclass(frozen=True)
class DataSelection:
    measurement_sets: list[MeasurementSetSelection]

    @property
    def vis(self) -> list[str]:
        return [selection.path for selection in self.measurement_sets]

    @property
    def field(self) -> list[str]:
        return [selection.field for selection in self.measurement_sets]

    @property
    def spw(self) -> list[str]:
        return [selection.spw for selection in self.measurement_sets]


def select_data(ms_paths: list[Path], target: str, spw_channels: dict[int, str]) -> DataSelection:
    """The MSs (and their field ids) that hold `target` in any of the spws. BadInput when none does, when
    a spw is in none of them, or when the target is a mosaic (several pointings), which is not imaged
    here yet."""
    import casatools  # type: ignore[import-untyped]

    selections: list[MeasurementSetSelection] = []
    found_spws: set[int] = set()
    for path in ms_paths:
        metadata = casatools.msmetadata()
        metadata.open(str(path))
        try:
            if target not in list(metadata.fieldnames()):
                continue
            field_ids = [int(field_id) for field_id in metadata.fieldsforname(target)]
            _refuse_mosaic(metadata, target, field_ids, path.name)
            with_data = {int(spw) for spw in metadata.spwsforfield(target)}
        finally:
            metadata.close()
        present = {spw: channels for spw, channels in spw_channels.items() if spw in with_data}
        if present:
            selections.append(MeasurementSetSelection(str(path), field_ids, present))
            found_spws.update(present)
    names = ", ".join(path.name for path in ms_paths)
    if not selections:
        raise BadInput(
            f"none of the job's Measurement Sets ({names}) holds data of target {target!r} in spw(s) "
            f"{sorted(spw_channels)}: the job names a target or spws that these data do not have"
        )
    missing = sorted(set(spw_channels) - found_spws)
    if missing:
        raise BadInput(
            f"target {target!r} has no data in spw(s) {missing} in any of the job's Measurement Sets ({names})"
        )
    return DataSelection(selections)


def _refuse_mosaic(metadata: Any, target: str, field_ids: list[int], ms_name: str) -> None:
    directions = [metadata.phasecenter(field_id) for field_id in field_ids]
    first = directions[0]
    for direction in directions[1:]:
        separation = _separation_arcsec(
            first["m0"]["value"], first["m1"]["value"], direction["m0"]["value"], direction["m1"]["value"]
        )
        if separation > SAME_POINTING_ARCSEC:
            raise BadInput(
                f"target {target!r} in {ms_name} is a mosaic ({len(field_ids)} pointings, up to "
                f"{separation:.0f} arcsec apart); mosaic imaging is not supported yet: image each pointing "
                "as its own target"
            )


def _separation_arcsec(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    cos_angle = math.sin(dec1) * math.sin(dec2) + math.cos(dec1) * math.cos(dec2) * math.cos(ra1 - ra2)
    return math.degrees(math.acos(min(1.0, max(-1.0, cos_angle)))) * 3600


@dataclass
class VisibilityStatistics:
    """Figures of the selected, unflagged cross-correlations."""

    baseline_l75_m: float
    baseline_l80_m: float
    baseline_max_m: float
    dish_diameter_m: float  # the smallest dish (the widest primary beam)
    frequency_min_hz: float  # edges of the selected channels
    frequency_max_hz: float
    sum_of_weights: float  # Stokes I: over parallel hands, selected channels, unflagged samples
    selected_channels: dict[int, int] = field(default_factory=dict)  # per spw

    @property
    def frequency_centre_hz(self) -> float:
        return (self.frequency_min_hz + self.frequency_max_hz) / 2

    @property
    def natural_sensitivity_jy(self) -> float:
        """Stokes I noise of a naturally weighted image of all selected channels: 1 / sqrt(sum of w),
        with w = 1 / sigma^2 per correlation and channel (the two parallel hands average into I)."""
        if self.sum_of_weights <= 0:
            raise BadInput("every selected visibility is flagged or has zero weight: there is nothing to image")
        return 1.0 / math.sqrt(self.sum_of_weights)


def measure_visibilities(selection: DataSelection) -> VisibilityStatistics:
    import casatools

    uv_lengths: list[np.ndarray] = []
    weights = 0.0
    diameters: list[float] = []
    low, high = math.inf, 0.0
    selected_channels: dict[int, int] = {}
    for ms in selection.measurement_sets:
        metadata = casatools.msmetadata()
        metadata.open(ms.path)
        try:
            diameters.append(_smallest_dish_m(metadata))
            for spw, text in ms.spw_channels.items():
                frequencies = np.asarray(metadata.chanfreqs(spw), dtype=float)
                widths = np.abs(np.asarray(metadata.chanwidths(spw), dtype=float))
                channel_mask = _channel_mask(text, len(frequencies))
                low = min(low, float(np.min(frequencies[channel_mask] - widths[channel_mask] / 2)))
                high = max(high, float(np.max(frequencies[channel_mask] + widths[channel_mask] / 2)))
                selected_channels[spw] = int(channel_mask.sum())
                for data_description in metadata.datadescids(spw=spw):
                    hands = _parallel_hand_indices(metadata, int(data_description))
                    sum_w, lengths = _read_weights_and_uv(
                        ms.path, ms.field_ids, int(data_description), channel_mask, hands
                    )
                    weights += sum_w
                    uv_lengths.append(lengths)
        finally:
            metadata.close()
    lengths_m = np.concatenate(uv_lengths) if uv_lengths else np.zeros(0)
    if lengths_m.size == 0:
        raise BadInput("the selected data hold no unflagged cross-correlation: there is nothing to image")
    return VisibilityStatistics(
        baseline_l75_m=float(np.percentile(lengths_m, 75)),
        baseline_l80_m=float(np.percentile(lengths_m, 80)),
        baseline_max_m=float(lengths_m.max()),
        dish_diameter_m=min(diameters),
        frequency_min_hz=low,
        frequency_max_hz=high,
        sum_of_weights=weights,
        selected_channels=selected_channels,
    )


def _channel_mask(text: str, nchan: int) -> np.ndarray:
    mask = np.zeros(nchan, dtype=bool)
    if not text:
        mask[:] = True
        return mask
    for first, last in parse_channel_ranges(text, nchan):
        mask[first : last + 1] = True
    return mask


def _smallest_dish_m(metadata: Any) -> float:
    diameters = [float(metadata.antennadiameter(antenna)["value"]) for antenna in range(metadata.nantennas())]
    usable = [diameter for diameter in diameters if diameter > 0]
    if not usable:
        raise BadInput("the MS's ANTENNA table gives no dish diameter: the primary beam cannot be known")
    return min(usable)


def _parallel_hand_indices(metadata: Any, data_description: int) -> list[int]:
    codes = [int(code) for code in metadata.corrtypesforpol(metadata.polidfordatadesc(data_description))]
    hands = [index for index, code in enumerate(codes) if code in PARALLEL_HANDS]
    if not hands:
        names = ", ".join(str(code) for code in codes)
        raise BadInput(
            f"data description {data_description} has no parallel-hand correlation (codes {names}): "
            "a Stokes I image cannot be made from cross-hands alone"
        )
    return hands


def _read_weights_and_uv(
    ms_path: str, field_ids: list[int], data_description: int, channel_mask: np.ndarray, hands: list[int]
) -> tuple[float, np.ndarray]:
    """Sum of the weights of the unflagged selected samples, and the uv length (m) of every row with one."""
    import casatools

    table = casatools.table()
    table.open(ms_path)
    try:
        fields = ",".join(str(field_id) for field_id in field_ids)
        rows = table.query(
            f"FIELD_ID IN [{fields}] && DATA_DESC_ID=={data_description} && ANTENNA1!=ANTENNA2 && !FLAG_ROW"
        )
        try:
            return _sum_chunks(rows, channel_mask, hands)
        finally:
            rows.close()
    finally:
        table.close()


def _sum_chunks(rows: Any, channel_mask: np.ndarray, hands: list[int]) -> tuple[float, np.ndarray]:
    num_rows = int(rows.nrows())
    if num_rows == 0:
        return 0.0, np.zeros(0, dtype=np.float32)
    spectral_weights = "WEIGHT_SPECTRUM" in rows.colnames() and rows.iscelldefined("WEIGHT_SPECTRUM", 0)
    npol = len(rows.getcell("FLAG", 0))
    chunk = max(1, CHUNK_ELEMENTS // (npol * channel_mask.size))
    total = 0.0
    lengths: list[np.ndarray] = []
    for start in range(0, num_rows, chunk):
        count = min(chunk, num_rows - start)
        flags = rows.getcol("FLAG", startrow=start, nrow=count)[hands][:, channel_mask, :]
        good = ~flags
        if spectral_weights:
            weight = rows.getcol("WEIGHT_SPECTRUM", startrow=start, nrow=count)[hands][:, channel_mask, :]
        else:
            weight = rows.getcol("WEIGHT", startrow=start, nrow=count)[hands][:, np.newaxis, :]
        total += float(np.sum(np.where(good, weight, 0.0)))
        uvw = rows.getcol("UVW", startrow=start, nrow=count)
        has_data = good.any(axis=(0, 1))
        lengths.append(np.hypot(uvw[0], uvw[1])[has_data].astype(np.float32))
    return total, np.concatenate(lengths)
