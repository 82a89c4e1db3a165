"""Measurements on a Measurement Set and on calibration tables, for QA and for choices the sequence makes
(the reference antenna, whether CORRECTED_DATA holds a calibration). Runs inside the CASA child process.

Visibilities are read per data description (spw x polarisation setup), because a column's cell shape is
fixed only within one, and in bounded blocks of rows, so that a large MS is read in bounded memory.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

# casacore's Stokes codes (POLARIZATION.CORR_TYPE) of the parallel hands RR, LL, XX, YY: for a point
# source at the phase centre these carry the source's phase, zero once calibrated.
PARALLEL_HANDS = frozenset({5, 8, 9, 12})
ROWS_PER_BLOCK = 10_000


class SolutionStatistics(BaseModel):
    """One calibration table: how many solutions, their median SNR and the fraction flagged."""

    table: str
    kind: str
    solutions: int
    median_snr: float | None
    flagged_fraction: float


class PhaseScatter(BaseModel):
    field: str
    before_deg: float
    after_deg: float


@dataclass(frozen=True)
class FlagSummary:
    flagged_fraction: float
    per_antenna: dict[str, float]  # flagged fraction per antenna name
    spw_share: dict[int, float]  # the fraction of all visibilities in each spw

    def edge_share(self, edge_channels: dict[int, int], num_channels: dict[int, int]) -> float:
        """The fraction of all visibilities that lie in the spw edge channels flagged on purpose."""
        return sum(
            self.spw_share.get(spw, 0.0) * 2 * edge / num_channels[spw]
            for spw, edge in edge_channels.items()
            if num_channels.get(spw)
        )


def _tools() -> Any:
    import casatools  # type: ignore[import-untyped]

    return casatools


@contextmanager
def open_table(path: Path | str, readonly: bool = True) -> Iterator[Any]:
    table = _tools().table()
    table.open(str(path), nomodify=readonly)
    try:
        yield table
    finally:
        table.close()


def flag_summary(summary: dict[str, Any]) -> FlagSummary:
    """From flagdata(mode='summary')'s dictionary: the flagged fraction, overall and per antenna."""
    total = float(summary.get("total", 0.0))
    per_antenna = {
        str(name): float(counts["flagged"]) / float(counts["total"])
        for name, counts in summary.get("antenna", {}).items()
        if float(counts.get("total", 0.0)) > 0
    }
    spw_share = {
        int(spw): float(counts.get("total", 0.0)) / total
        for spw, counts in summary.get("spw", {}).items()
        if str(spw).isdigit() and total
    }
    return FlagSummary(
        flagged_fraction=float(summary.get("flagged", 0.0)) / total if total else 0.0,
        per_antenna=per_antenna,
        spw_share=spw_share,
    )


def reference_antennas(vis: Path, flagged_per_antenna: dict[str, float], count: int = 3) -> list[str]:
    """Reference antennas in order of preference: near the array's centre (short baselines to all others,
    so the phases it references vary least) among the antennas with the least flagged data (within 5
    percentage points of the best), as the ALMA pipeline's hif_refant ranks by geometry and flagging.
    Several are given so that gaincal can switch where the first has no solution (refantmode 'flex')."""
    with open_table(vis / "ANTENNA") as table:
        names = [str(name) for name in table.getcol("NAME")]
        positions = np.asarray(table.getcol("POSITION")).T  # (antenna, xyz)
    with_data = [i for i, name in enumerate(names) if name in flagged_per_antenna]
    if not with_data:
        return []
    least_flagged = min(flagged_per_antenna[names[i]] for i in with_data)
    usable = [i for i in with_data if flagged_per_antenna[names[i]] <= least_flagged + 0.05]
    centre = np.median(positions[with_data], axis=0)
    usable.sort(key=lambda i: (float(np.linalg.norm(positions[i] - centre)), names[i]))
    return [names[i] for i in usable[:count]]


def solution_statistics(table_path: Path, kind: str, edge_channels: dict[int, int] | None = None) -> SolutionStatistics:
    """Median SNR over the unflagged solutions (per antenna, polarisation, channel and time) and the
    fraction of solutions flagged (below the minimum SNR, or without data).

    edge_channels (spw id -> channels at each edge): channels left out of both numbers, because the
    data there were flagged on purpose (a bandpass has no solution in them by design). Read one spw at
    a time: a bandpass table's cells are as wide as their spw."""
    snrs: list[np.ndarray] = []
    counted, flagged = 0, 0
    with open_table(table_path) as table:
        spws = sorted({int(s) for s in table.getcol("SPECTRAL_WINDOW_ID")}) if table.nrows() else []
        for spw in spws:
            selection = table.query(f"SPECTRAL_WINDOW_ID=={spw}")
            try:
                snr = np.asarray(selection.getcol("SNR"))  # (polarisation, channel, row)
                flags = np.asarray(selection.getcol("FLAG"))
            finally:
                selection.close()
            edge = (edge_channels or {}).get(spw, 0)
            if edge and snr.shape[1] > 2 * edge:
                snr, flags = snr[:, edge : snr.shape[1] - edge], flags[:, edge : flags.shape[1] - edge]
            snrs.append(snr[~flags])
            counted += flags.size
            flagged += int(flags.sum())
    good = np.concatenate(snrs) if snrs else np.empty(0)
    return SolutionStatistics(
        table=table_path.name,
        kind=kind,
        solutions=counted,
        median_snr=round(float(np.median(good)), 2) if good.size else None,
        flagged_fraction=round(flagged / counted, 5) if counted else 1.0,
    )


def _parallel_hands_per_ddid(vis: Path) -> dict[int, np.ndarray]:
    with open_table(vis / "POLARIZATION") as table:
        corr_types = [np.asarray(table.getcell("CORR_TYPE", row)) for row in range(table.nrows())]
    with open_table(vis / "DATA_DESCRIPTION") as table:
        polarization_ids = [int(p) for p in table.getcol("POLARIZATION_ID")]
    return {
        ddid: np.isin(corr_types[pol], list(PARALLEL_HANDS)) for ddid, pol in enumerate(polarization_ids)
    }


def _cross_correlation_blocks(
    vis: Path, condition: str, columns: list[str]
) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
    """(ddid, {column: values}) blocks of unflagged-row cross-correlations that meet `condition`."""
    with open_table(vis) as table:
        ddids = sorted({int(d) for d in np.unique(table.getcol("DATA_DESC_ID"))})
        for ddid in ddids:
            selection = table.query(f"DATA_DESC_ID=={ddid} && ANTENNA1!=ANTENNA2 && !FLAG_ROW && ({condition})")
            try:
                for start in range(0, selection.nrows(), ROWS_PER_BLOCK):
                    rows = min(ROWS_PER_BLOCK, selection.nrows() - start)
                    yield ddid, {c: selection.getcol(c, startrow=start, nrow=rows) for c in columns}
            finally:
                selection.close()


def phase_scatter_deg(vis: Path, field_ids: list[int], column: str) -> float | None:
    """RMS about zero, in degrees, of the channel-averaged phase of a point source at the phase centre
    (a calibrator), over unflagged parallel-hand cross-correlations; None when nothing is unflagged.

    Channels are averaged as vectors first: the thermal noise of one channel would otherwise hide a
    residual of a few degrees, while a phase slope left across the spw still shows."""
    parallel = _parallel_hands_per_ddid(vis)
    ids = ",".join(str(i) for i in field_ids)
    sum_squares, count = 0.0, 0
    for ddid, block in _cross_correlation_blocks(vis, f"FIELD_ID IN [{ids}]", [column, "FLAG"]):
        keep = parallel[ddid]
        data, flags = block[column][keep], block["FLAG"][keep]  # (correlation, channel, row)
        unflagged = (~flags).sum(axis=1)
        summed = np.where(flags, 0, data).sum(axis=1)
        has_data = unflagged > 0
        phases = np.angle(summed[has_data] / unflagged[has_data])
        sum_squares += float(np.sum(phases**2))
        count += int(phases.size)
    return float(np.degrees(np.sqrt(sum_squares / count))) if count else None


class CorrectedDataComparison(BaseModel):
    """Whether CORRECTED_DATA differs from DATA: a sign that a calibration was applied."""

    visibilities_compared: int
    differing_fraction: float
    median_ratio: float | None


def compare_corrected_with_data(vis: Path, rows_wanted: int = 20_000) -> CorrectedDataComparison:
    """Compare the two columns on a sample of rows spread over the MS (every n-th row).

    applycal changes every calibrated visibility (gains are never exactly 1), while clearcal, the
    simulator and importers that create the column initialise it to a copy of DATA. So a column that
    equals DATA everywhere holds no calibration, and one that differs in most samples does."""
    with open_table(vis) as table:
        step = max(1, table.nrows() // rows_wanted)
    compared, differing = 0, 0
    ratios: list[np.ndarray] = []
    for _, block in _cross_correlation_blocks(
        vis, f"rownumber() % {step} == 0", ["DATA", "CORRECTED_DATA", "FLAG"]
    ):
        data, corrected, flags = block["DATA"], block["CORRECTED_DATA"], block["FLAG"]
        good = ~flags & (np.abs(data) > 0)
        scale = np.abs(data[good])
        difference = np.abs(corrected[good] - data[good])
        compared += int(good.sum())
        differing += int(np.count_nonzero(difference > 1e-6 * scale))
        if good.any():
            ratios.append(np.abs(corrected[good]) / scale)
    ratio = float(np.median(np.concatenate(ratios))) if ratios else None
    return CorrectedDataComparison(
        visibilities_compared=compared,
        differing_fraction=differing / compared if compared else 0.0,
        median_ratio=round(ratio, 6) if ratio is not None else None,
    )
