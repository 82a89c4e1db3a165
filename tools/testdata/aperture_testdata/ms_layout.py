"""Fixes to the simulator's MS so that it reads like an ALMA one, and read-backs for the truth file.

The simulator opens one scan per spw, writes the first channel's frequency as every source's rest
frequency, leaves some time stamps at odd values (the subtables' TIME, the OBSERVATION time range),
and fills SOURCE for the first spw only. Software downstream reads all of these.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aperture_testdata.casa_runtime import casatools_module
from aperture_testdata.scenarios import SpwPlan


@dataclass(frozen=True)
class ScanRecord:
    scan_number: int
    field_id: int
    intents: tuple[str, ...]
    start_mjd_s: float
    end_mjd_s: float


def merge_spw_scans(ms: Path) -> None:
    """One scan per pointing, holding every spw: the simulator's scans that start together are one."""
    tb = casatools_module().table()
    tb.open(str(ms), nomodify=False)
    try:
        scans = tb.getcol("SCAN_NUMBER")
        times = tb.getcol("TIME")
        first_time = {int(s): float(times[scans == s].min()) for s in np.unique(scans)}
        starts = sorted(set(first_time.values()))
        renumber = {s: starts.index(t) + 1 for s, t in first_time.items()}
        tb.putcol("SCAN_NUMBER", np.array([renumber[int(s)] for s in scans], dtype=scans.dtype))
    finally:
        tb.close()


def write_source_table(ms: Path, spws: tuple[SpwPlan, ...]) -> None:
    """SOURCE rows for every (source, spw), each with the spw's rest frequency and transition, and with
    the time of the observation; tclean takes the rest frequency from here for its velocity axis."""
    tb = casatools_module().table()
    start, end = _time_range(ms)
    tb.open(f"{ms}/SOURCE", nomodify=False)
    try:
        n_sources = tb.nrows()
        copied = ["DIRECTION", "PROPER_MOTION", "CALIBRATION_GROUP", "CODE", "NAME", "SOURCE_ID", "PULSAR_ID"]
        values = {column: tb.getcol(column) for column in copied}
        tb.addrows(n_sources * (len(spws) - 1))
        for spw_id, spw in enumerate(spws):
            for source in range(n_sources):
                row = spw_id * n_sources + source
                for column in copied:
                    value = values[column][..., source]
                    tb.putcell(column, row, value.item() if value.ndim == 0 else value)
                tb.putcell("SPECTRAL_WINDOW_ID", row, spw_id)
                tb.putcell("TIME", row, (start + end) / 2)
                tb.putcell("INTERVAL", row, end - start)
                tb.putcell("NUM_LINES", row, 1)
                tb.putcell("REST_FREQUENCY", row, np.array([spw.rest_frequency_hz]))
                tb.putcell("TRANSITION", row, np.array([spw.transition]))
                tb.putcell("SYSVEL", row, np.array([0.0]))
    finally:
        tb.close()


def write_time_ranges(ms: Path) -> None:
    """OBSERVATION's TIME_RANGE and FIELD's TIME from the data themselves."""
    tb = casatools_module().table()
    start, end = _time_range(ms)
    tb.open(f"{ms}/OBSERVATION", nomodify=False)
    try:
        tb.putcol("TIME_RANGE", np.array([[start], [end]]))
    finally:
        tb.close()
    tb.open(f"{ms}/FIELD", nomodify=False)
    try:
        tb.putcol("TIME", np.full(tb.nrows(), start))
    finally:
        tb.close()


def _time_range(ms: Path) -> tuple[float, float]:
    """First integration's start to last integration's end, MJD seconds."""
    tb = casatools_module().table()
    tb.open(str(ms))
    try:
        times, intervals = tb.getcol("TIME"), tb.getcol("INTERVAL")
        return float((times - intervals / 2).min()), float((times + intervals / 2).max())
    finally:
        tb.close()


def read_scans(ms: Path) -> list[ScanRecord]:
    tb = casatools_module().table()
    tb.open(f"{ms}/STATE")
    try:
        obs_modes = list(tb.getcol("OBS_MODE"))
    finally:
        tb.close()
    tb.open(str(ms))
    try:
        scans, fields, states = tb.getcol("SCAN_NUMBER"), tb.getcol("FIELD_ID"), tb.getcol("STATE_ID")
        times, intervals = tb.getcol("TIME"), tb.getcol("INTERVAL")
    finally:
        tb.close()
    records = []
    for scan in np.unique(scans):
        rows = scans == scan
        records.append(
            ScanRecord(
                scan_number=int(scan),
                field_id=int(fields[rows][0]),
                intents=tuple(obs_modes[int(states[rows][0])].split(",")),
                start_mjd_s=float((times[rows] - intervals[rows] / 2).min()),
                end_mjd_s=float((times[rows] + intervals[rows] / 2).max()),
            )
        )
    return records
