"""Reading one target in one spw out of a Measurement Set with casatools (inside the CASA child process).

What the gridder needs and nothing more: the rows of the target's fields in the spw (cross-correlations,
rows not flagged as a whole), their uvw, times, fields and weights, and the calibrated DATA as Stokes I,
a block of channels at a time so that memory stays bounded whatever the MS's size.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from aperture_shared.casa.antennas import present_antennas
from aperture_shared.errors import BadInput

from aperture_findcont.dirty_cube import VisibilityBlock

# casacore's Stokes enumeration: the parallel hands, whose weighted mean is Stokes I.
PARALLEL_HANDS = {1: "I", 5: "RR", 8: "LL", 9: "XX", 12: "YY"}
# MEAS_FREQ_REF codes of the SPECTRAL_WINDOW table.
FREQUENCY_FRAMES = {
    0: "REST", 1: "LSRK", 2: "LSRD", 3: "BARY", 4: "GEO", 5: "TOPO", 6: "GALACTO", 7: "LGROUP", 8: "CMB",
}
# Elements (rows x channels x correlations) read per block: ~250 MB of data, flags and weights.
BLOCK_ELEMENTS = 20_000_000


@dataclass
class TargetRows:
    """The target's rows of one data description (spw + polarisation setup) of one MS."""

    data_description_id: int
    correlations: list[int]  # indices of the parallel hands in the correlation axis
    uvw_m: np.ndarray  # (rows, 3)
    time_s: np.ndarray  # (rows,) MJD seconds, UTC
    field_id: np.ndarray  # (rows,)
    weight: np.ndarray  # (rows, correlations): WEIGHT, used where WEIGHT_SPECTRUM is absent


@dataclass
class TargetData:
    """What one MS holds of the target in the spw."""

    path: Path
    spw_id: int
    spw_name: str
    channel_hz: np.ndarray  # channel centres in the spw's own frame
    frame: str  # that frame, e.g. TOPO
    field_ids: list[int]
    field_directions: dict[int, tuple[float, float]]  # field id -> (ra, dec) in radians
    direction_frame: str
    dish_diameter_m: float  # the smallest dish: its primary beam is the widest
    observatory_itrf_m: tuple[float, float, float]
    rows: list[TargetRows]

    @property
    def row_count(self) -> int:
        return sum(part.time_s.size for part in self.rows)

    @property
    def longest_baseline_m(self) -> float:
        lengths = [float(np.hypot(p.uvw_m[:, 0], p.uvw_m[:, 1]).max()) for p in self.rows if p.time_s.size]
        return max(lengths, default=0.0)

    @property
    def mid_time_s(self) -> float:
        times = np.concatenate([part.time_s for part in self.rows])
        return float((times.min() + times.max()) / 2)


@contextmanager
def _opened(path: Path) -> Iterator[Any]:
    """A casatools table, open for the block (a missing or broken table is BadInput)."""
    import casatools  # type: ignore[import-untyped]

    table = casatools.table()
    try:
        table.open(str(path))
    except RuntimeError as error:
        raise BadInput(f"{path} cannot be opened as a table of a Measurement Set: {error}") from error
    try:
        yield table
    finally:
        table.close()


def _measure_reference(table: Any, column: str, default: str) -> str:
    try:
        return str(table.getcolkeyword(column, "MEASINFO").get("Ref", default))
    except Exception:  # a column without MEASINFO: the MS convention's default frame
        return default


def read_target(ms: Path, target: str, spw_id: int) -> TargetData | None:
    """The target's data in the spw, or None when this MS has no such field or spw (an MOUS's other
    execution may). Raises BadInput for an MS that cannot be read as one."""
    with _opened(ms / "FIELD") as table:
        names = list(table.getcol("NAME"))
        phase_dir = table.getcol("PHASE_DIR")[:, 0, :]
        direction_frame = _measure_reference(table, "PHASE_DIR", "J2000")
    field_ids = [index for index, name in enumerate(names) if name == target]
    if not field_ids:
        return None
    with _opened(ms / "SPECTRAL_WINDOW") as table:
        if spw_id >= table.nrows():
            return None
        channel_hz = np.asarray(table.getcell("CHAN_FREQ", spw_id), dtype=float)
        frame_code = int(table.getcell("MEAS_FREQ_REF", spw_id))
        spw_name = str(table.getcell("NAME", spw_id))
    with _opened(ms / "DATA_DESCRIPTION") as table:
        spw_of = table.getcol("SPECTRAL_WINDOW_ID")
        polarization_of = table.getcol("POLARIZATION_ID")
    with _opened(ms / "POLARIZATION") as table:
        correlation_types = [list(table.getcell("CORR_TYPE", row)) for row in range(table.nrows())]
    with _opened(ms / "ANTENNA") as table:
        diameters, positions = table.getcol("DISH_DIAMETER"), table.getcol("POSITION")
        present = present_antennas(table.getcol("FLAG_ROW"), diameters, positions)
    if not present.any():
        raise BadInput(f"{ms.name}: its ANTENNA table describes no antenna (every row is flagged or has no "
                       "dish diameter or position): the MS is incomplete")
    dish = float(np.min(diameters[present]))
    position = positions[:, present].mean(axis=1)
    data_descriptions = [int(dd) for dd in np.flatnonzero(spw_of == spw_id)]
    if not data_descriptions:
        return None
    if frame_code not in FREQUENCY_FRAMES or FREQUENCY_FRAMES[frame_code] == "REST":
        raise BadInput(
            f"{ms.name} spw {spw_id} has channel frequencies in frame code {frame_code}, which cannot be "
            "converted to LSRK; findcont needs TOPO, LSRK, BARY or another moving frame"
        )
    with _opened(ms) as table:
        if "DATA" not in table.colnames():
            raise BadInput(f"{ms.name} has no DATA column; findcont reads calibrated visibilities from DATA")
        rows = [
            _read_rows(table, dd, field_ids, correlation_types[int(polarization_of[dd])], ms.name)
            for dd in data_descriptions
        ]
    return TargetData(
        path=ms, spw_id=spw_id, spw_name=spw_name, channel_hz=channel_hz, frame=FREQUENCY_FRAMES[frame_code],
        field_ids=field_ids,
        field_directions={fid: (float(phase_dir[0, fid]), float(phase_dir[1, fid])) for fid in field_ids},
        direction_frame=direction_frame, dish_diameter_m=dish,
        observatory_itrf_m=(float(position[0]), float(position[1]), float(position[2])),
        rows=[part for part in rows if part.time_s.size],
    )


def _read_rows(table: Any, dd: int, field_ids: list[int], types: list[int], ms_name: str) -> TargetRows:
    correlations = [index for index, kind in enumerate(types) if int(kind) in PARALLEL_HANDS]
    if not correlations:
        raise BadInput(
            f"{ms_name} data description {dd} has only cross-hand correlations ({types}): no Stokes I to image"
        )
    query = table.query(
        f"DATA_DESC_ID=={dd} && FIELD_ID IN [{','.join(map(str, field_ids))}] "
        "&& ANTENNA1!=ANTENNA2 && !FLAG_ROW"
    )
    try:
        if query.nrows() == 0:
            empty = np.zeros((0,))
            return TargetRows(
                dd, correlations, np.zeros((0, 3)), empty, empty.astype(int), np.zeros((0, len(correlations)))
            )
        return TargetRows(
            data_description_id=dd,
            correlations=correlations,
            uvw_m=np.ascontiguousarray(query.getcol("UVW").T),
            time_s=query.getcol("TIME"),
            field_id=query.getcol("FIELD_ID"),
            weight=query.getcol("WEIGHT").T[:, correlations].astype(np.float32),
        )
    finally:
        query.close()


def stokes_i(data: np.ndarray, flags: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted mean of the parallel hands and its weight; flagged samples weigh nothing.

    data, flags, weights: (correlations, channels, rows), as casatools returns columns."""
    usable = np.where(flags, 0.0, weights).astype(np.float32)
    total = usable.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        vis = np.where(total > 0, (usable * data).sum(axis=0) / total, 0).astype(np.complex64)
    return np.ascontiguousarray(vis.T), np.ascontiguousarray(total.T)


def visibility_blocks(
    target: TargetData,
    lsrk_factor: dict[int, np.ndarray],
    pointing_index: dict[int, int],
    pointing_centres: tuple[tuple[float, float], ...],
    block_elements: int = BLOCK_ELEMENTS,
) -> Iterator[VisibilityBlock]:
    """Stokes I blocks of channels, for every data description of the target in this MS.

    lsrk_factor: per data description id, the LSRK/own-frame factor of each row."""
    with _opened(target.path) as table:
        for part in target.rows:
            ids = ",".join(map(str, target.field_ids))
            query = table.query(
                f"DATA_DESC_ID=={part.data_description_id} && FIELD_ID IN [{ids}] && ANTENNA1!=ANTENNA2 && !FLAG_ROW"
            )
            try:
                yield from _blocks_of(
                    query, part, target, lsrk_factor, pointing_index, pointing_centres, block_elements
                )
            finally:
                query.close()


def _blocks_of(
    query: Any,
    part: TargetRows,
    target: TargetData,
    lsrk_factor: dict[int, np.ndarray],
    pointing_index: dict[int, int],
    pointing_centres: tuple[tuple[float, float], ...],
    block_elements: int,
) -> Iterator[VisibilityBlock]:
    rows = part.time_s.size
    correlation_count = int(query.getcell("DATA", 0).shape[0])
    has_spectrum_weights = "WEIGHT_SPECTRUM" in query.colnames() and query.iscelldefined("WEIGHT_SPECTRUM", 0)
    channels = target.channel_hz.size
    per_block = max(1, block_elements // max(1, rows * correlation_count))
    low_corr, high_corr = min(part.correlations), max(part.correlations)
    chosen = [index - low_corr for index in part.correlations]
    pointing = np.array([pointing_index[int(field)] for field in part.field_id], dtype=np.int64)
    for first in range(0, channels, per_block):
        last = min(channels, first + per_block) - 1
        blc, trc = [low_corr, first], [high_corr, last]
        data = query.getcolslice("DATA", blc, trc, [1, 1])[chosen]
        flags = query.getcolslice("FLAG", blc, trc, [1, 1])[chosen]
        if has_spectrum_weights:
            weights = query.getcolslice("WEIGHT_SPECTRUM", blc, trc, [1, 1])[chosen]
        else:
            weights = np.broadcast_to(part.weight.T[:, None, :], data.shape)
        vis, weight = stokes_i(data, flags, weights)
        yield VisibilityBlock(
            uvw_m=part.uvw_m, vis=vis, weight=weight, first_channel=first,
            lsrk_factor=lsrk_factor[part.data_description_id], pointing=pointing,
            pointing_centres=pointing_centres,
        )
