"""Measurements on a Measurement Set that tests compare before and after calibration.

A calibrator is a point source at its field's phase centre, so its calibrated visibilities have zero
phase up to noise; the rms of the phase about zero therefore measures what calibration left of the
antenna phase errors. Channels are vector-averaged per row and correlation first: that keeps the thermal
noise (about sigma / flux radians per channel) from hiding a residual of a few degrees, and a bandpass
slope left in the data still shows (it lowers and turns the average).
"""

from pathlib import Path

import numpy as np

from aperture_testdata.casa_runtime import casatools_module

_ROWS_PER_READ = 20_000
# Stokes codes of the parallel hands (RR, LL, XX, YY) in the POLARIZATION table's CORR_TYPE.
_PARALLEL_HANDS = {5, 8, 9, 12}


class MeasurementError(ValueError):
    pass


def phase_scatter_deg(ms: Path, field: str | int, column: str = "DATA") -> float:
    """RMS about zero, in degrees, of the channel-averaged visibility phase of one field.

    field: name or id. column: DATA, CORRECTED_DATA or MODEL_DATA. Uses unflagged cross-correlations
    of the parallel hands only. Meaningful for a point source at the phase centre (a calibrator).
    """
    tools = casatools_module()
    tb = tools.table()
    field_id = _field_id(ms, field)
    parallel = _parallel_hand_mask_per_ddid(ms)
    sum_squares, count = 0.0, 0
    tb.open(str(ms))
    try:
        if column not in tb.colnames():
            raise MeasurementError(f"{ms} has no {column} column (it has {', '.join(tb.colnames())})")
        # One data description at a time: spws with different channel counts have differently shaped
        # cells, which one getcol cannot return together.
        for ddid, keep in enumerate(parallel):
            selection = tb.query(
                f"FIELD_ID=={field_id} && DATA_DESC_ID=={ddid} && ANTENNA1!=ANTENNA2 && !FLAG_ROW"
            )
            try:
                for start in range(0, selection.nrows(), _ROWS_PER_READ):
                    n = min(_ROWS_PER_READ, selection.nrows() - start)
                    data = selection.getcol(column, startrow=start, nrow=n)[keep]
                    flags = selection.getcol("FLAG", startrow=start, nrow=n)[keep]
                    values = np.where(flags, 0, data)
                    n_good = (~flags).sum(axis=1)
                    averaged = values.sum(axis=1)[n_good > 0] / n_good[n_good > 0]
                    phases = np.angle(averaged)
                    sum_squares += float(np.sum(phases**2))
                    count += phases.size
            finally:
                selection.close()
    finally:
        tb.close()
    if count == 0:
        raise MeasurementError(f"field {field!r} of {ms} has no unflagged cross-correlations to measure")
    return float(np.degrees(np.sqrt(sum_squares / count)))


def _field_id(ms: Path, field: str | int) -> int:
    tb = casatools_module().table()
    tb.open(f"{ms}/FIELD")
    try:
        names = list(tb.getcol("NAME"))
    finally:
        tb.close()
    if isinstance(field, int):
        if not 0 <= field < len(names):
            raise MeasurementError(f"{ms} has fields 0..{len(names) - 1}; there is no field {field}")
        return field
    if field not in names:
        raise MeasurementError(f"{ms} has no field named {field!r}; its fields are {names}")
    return names.index(field)


def _parallel_hand_mask_per_ddid(ms: Path) -> list[np.ndarray]:
    tb = casatools_module().table()
    tb.open(f"{ms}/POLARIZATION")
    try:
        corr_types = [tb.getcell("CORR_TYPE", row) for row in range(tb.nrows())]
    finally:
        tb.close()
    tb.open(f"{ms}/DATA_DESCRIPTION")
    try:
        polarization_ids = tb.getcol("POLARIZATION_ID")
    finally:
        tb.close()
    return [np.isin(corr_types[int(p)], list(_PARALLEL_HANDS)) for p in polarization_ids]
