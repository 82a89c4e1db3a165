"""Measurements on a Measurement Set and on calibration tables, for QA and for choices the sequence makes
(the reference antenna, outlier antennas, whether CORRECTED_DATA holds a calibration). Runs inside the CASA
child process; the arithmetic on solutions (GainSolutions onwards) needs numpy only.

Visibilities are read per data description (spw x polarisation setup), because a column's cell shape is
fixed only within one, and in bounded blocks of rows, so that a large MS is read in bounded memory.
"""

from collections.abc import Collection, Iterator
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


def solution_statistics(
    table_path: Path, kind: str, edge_channels: dict[int, int] | None = None, left_out_antennas: Collection[str] = ()
) -> SolutionStatistics:
    """Median SNR over the unflagged solutions (per antenna, polarisation, channel and time) and the
    fraction of solutions flagged (below the minimum SNR, or without data).

    edge_channels (spw id -> channels at each edge) and left_out_antennas (names): left out of both
    numbers, because their data were flagged on purpose (a bandpass has no solution in the edge channels
    by design; an outlier antenna has none at all, and its loss has its own QA score). Read one spw at a
    time: a bandpass table's cells are as wide as their spw."""
    snrs: list[np.ndarray] = []
    counted, flagged = 0, 0
    with open_table(table_path / "ANTENNA") as table:
        names = [str(name) for name in table.getcol("NAME")]
    left_out = [index for index, name in enumerate(names) if name in frozenset(left_out_antennas)]
    with open_table(table_path) as table:
        spws = sorted({int(s) for s in table.getcol("SPECTRAL_WINDOW_ID")}) if table.nrows() else []
        for spw in spws:
            selection = table.query(f"SPECTRAL_WINDOW_ID=={spw}")
            try:
                snr = np.asarray(selection.getcol("SNR"))  # (polarisation, channel, row)
                flags = np.asarray(selection.getcol("FLAG"))
                kept = ~np.isin(np.asarray(selection.getcol("ANTENNA1")), left_out)
            finally:
                selection.close()
            snr, flags = snr[..., kept], flags[..., kept]
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


class AntennaGainStability(BaseModel):
    """One antenna's gain solutions on the calibrators over time (None where there was nothing to measure).

    phase_jump_rms_deg: rms of the phase change from one integration to the next within a scan, from the
        per-integration phase table: a working antenna's phase follows the atmosphere smoothly (a degree or
        two per integration), a broken LO or receiver jumps by tens of degrees.
    amplitude_ratio: median over the per-scan amplitude solutions of |g| / the array's median |g| in the
        same solution interval (field, spw, polarisation): a dead or saturated amplifier shows as a low or
        high ratio, as in the ALMA pipeline's hif_lowgainflag.
    amplitude_scatter: standard deviation of ln(that ratio) from scan to scan, within each spw and
        polarisation (pooled): an amplitude that changes erratically (0.1 is 10 %)."""

    antenna: str
    phase_jump_rms_deg: float | None = None
    phase_jumps: int = 0
    amplitude_ratio: float | None = None
    amplitude_scatter: float | None = None
    amplitude_solutions: int = 0


@dataclass(frozen=True)
class GainSolutions:
    """The rows of an antenna-based gain table (one channel per solution, as gaincal writes)."""

    antenna: np.ndarray  # (row,) ANTENNA1
    spw: np.ndarray
    field: np.ndarray
    scan: np.ndarray
    time: np.ndarray
    gains: np.ndarray  # (polarisation, row), complex
    flags: np.ndarray  # (polarisation, row), bool


def read_gain_solutions(table_path: Path) -> tuple[GainSolutions, list[str]]:
    """A gaincal table's solutions and the names of the antennas its ANTENNA1 indexes."""
    with open_table(table_path) as table:
        columns = {
            name: np.asarray(table.getcol(name))
            for name in ("ANTENNA1", "SPECTRAL_WINDOW_ID", "FIELD_ID", "SCAN_NUMBER", "TIME", "CPARAM", "FLAG")
        }
    with open_table(table_path / "ANTENNA") as table:
        names = [str(name) for name in table.getcol("NAME")]
    solutions = GainSolutions(
        antenna=columns["ANTENNA1"], spw=columns["SPECTRAL_WINDOW_ID"], field=columns["FIELD_ID"],
        scan=columns["SCAN_NUMBER"], time=columns["TIME"],
        gains=columns["CPARAM"][:, 0, :], flags=columns["FLAG"][:, 0, :],
    )  # fmt: skip
    return solutions, names


def phase_jumps_deg(solutions: GainSolutions) -> dict[int, np.ndarray]:
    """Per antenna index, the phase changes (degrees, wrapped to +-180) between consecutive unflagged
    solutions of the same spw, field, scan and polarisation: in a per-integration table, the change from
    one integration to the next. Never across scans, where the calibrator or the setup changes."""
    order = np.lexsort((solutions.time, solutions.scan, solutions.field, solutions.spw, solutions.antenna))
    antenna, spw, field, scan = (column[order] for column in
                                 (solutions.antenna, solutions.spw, solutions.field, solutions.scan))  # fmt: skip
    gains, flags = solutions.gains[:, order], solutions.flags[:, order]
    same_interval = (
        (antenna[1:] == antenna[:-1]) & (spw[1:] == spw[:-1]) & (field[1:] == field[:-1]) & (scan[1:] == scan[:-1])
    )
    jumps: dict[int, list[np.ndarray]] = {}
    for polarisation in range(gains.shape[0]):
        usable = same_interval & ~flags[polarisation, 1:] & ~flags[polarisation, :-1]
        change = np.degrees(np.angle(gains[polarisation, 1:] * np.conj(gains[polarisation, :-1])))
        for index in np.unique(antenna[1:][usable]):
            jumps.setdefault(int(index), []).append(change[usable & (antenna[1:] == index)])
    return {index: np.concatenate(parts) for index, parts in jumps.items()}


def amplitude_ratios(solutions: GainSolutions) -> dict[int, list[np.ndarray]]:
    """Per antenna index, |g| / the median |g| of all antennas in the same solution interval (time, spw,
    field) and polarisation, over unflagged, non-zero solutions: one series in time order per spw and
    polarisation. Relative to the array, so that the calibrator's flux and the interval's common gain
    drop out; kept apart per spw and polarisation, whose receivers' gains differ by a constant."""
    amplitude = np.abs(solutions.gains)
    usable = ~solutions.flags & (amplitude > 0)
    keys = np.stack([solutions.time, solutions.spw, solutions.field])
    _, interval = np.unique(keys, axis=1, return_inverse=True)
    interval = interval.ravel()
    ratios = np.full(amplitude.shape, np.nan)
    for polarisation in range(amplitude.shape[0]):
        for index in np.unique(interval):
            rows = (interval == index) & usable[polarisation]
            if rows.any():
                ratios[polarisation, rows] = amplitude[polarisation, rows] / np.median(amplitude[polarisation, rows])
    found: dict[int, list[np.ndarray]] = {}
    for index in np.unique(solutions.antenna):
        for spw in np.unique(solutions.spw):
            rows = np.flatnonzero((solutions.antenna == index) & (solutions.spw == spw))
            rows = rows[np.argsort(solutions.time[rows], kind="stable")]
            for polarisation in range(amplitude.shape[0]):
                series = ratios[polarisation, rows]
                series = series[np.isfinite(series)]
                if series.size:
                    found.setdefault(int(index), []).append(series)
    return found


def log_scatter(series: list[np.ndarray]) -> float | None:
    """The scatter of ln(values) about each series' own mean, pooled over the series (one degree of
    freedom lost per series); None without two values in some series."""
    deviations = [np.log(values) - np.mean(np.log(values)) for values in series if values.size > 1]
    freedom = sum(d.size - 1 for d in deviations)
    if not freedom:
        return None
    return float(np.sqrt(sum(float(np.sum(d**2)) for d in deviations) / freedom))


def gain_stability(phase_int: GainSolutions, amplitude: GainSolutions, names: list[str]) -> list[AntennaGainStability]:
    """Per antenna with any solution (AntennaGainStability), from the per-integration phase table and the
    per-scan amplitude table of the calibrators."""
    jumps, ratios = phase_jumps_deg(phase_int), amplitude_ratios(amplitude)
    stability = []
    for index in sorted(set(np.unique(phase_int.antenna).tolist()) | set(np.unique(amplitude.antenna).tolist())):
        antenna_jumps, series = jumps.get(int(index)), ratios.get(int(index), [])
        all_ratios = np.concatenate(series) if series else np.empty(0)
        scatter = log_scatter(series)
        stability.append(
            AntennaGainStability(
                antenna=names[int(index)],
                phase_jump_rms_deg=round(float(np.sqrt(np.mean(antenna_jumps**2))), 3)
                if antenna_jumps is not None else None,
                phase_jumps=0 if antenna_jumps is None else int(antenna_jumps.size),
                amplitude_ratio=round(float(np.median(all_ratios)), 4) if all_ratios.size else None,
                amplitude_scatter=round(scatter, 4) if scatter is not None else None,
                amplitude_solutions=int(all_ratios.size),
            )
        )  # fmt: skip
    return stability


def antenna_gain_stability(phase_int_table: Path, amplitude_table: Path) -> list[AntennaGainStability]:
    """gain_stability from the two tables on disk."""
    phase_int, names = read_gain_solutions(phase_int_table)
    amplitude, _ = read_gain_solutions(amplitude_table)
    return gain_stability(phase_int, amplitude, names)
