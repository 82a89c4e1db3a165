"""Measurements the tests make on a calibrated MS against the simulation's truth, independently of the
service's own measurements.

The strongest check uses the injected gains: applycal multiplies each raw visibility by the inverse of
the solved gains, c = 1 / (g1' conj(g2')), whatever the sky and the noise. So the ratio calibrated/raw of
each visibility is c, and c * g1 conj(g2) with the true gains is 1 when the solutions equal the truth in
amplitude (flux scale included) and phase. The reference antenna's phase, which the solutions do not
determine, cancels in g1 conj(g2).
"""

import asyncio
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from aperture_calibration.plan import CalibrationOptions, CalibrationPlan, plan_calibration
from aperture_calibration.steps import CalibrationStepResult
from aperture_contracts.flux import FluxModel
from aperture_ingest.measurement_set import describe_measurement_set
from aperture_shared.casa.runner import CasaRun, run_casa_step
from aperture_testdata.casa_runtime import casatools_module
from aperture_testdata.gains import InjectedGains


@dataclass(frozen=True)
class CorrectionError:
    median_amplitude: float  # of c g1 conj(g2): 1 for a perfect calibration
    phase_rms_deg: float
    visibilities: int


def _column(ms: Path, table: str, column: str) -> list:
    tb = casatools_module().table()
    tb.open(f"{ms}/{table}" if table else str(ms))
    try:
        return [tb.getcell(column, row) for row in range(tb.nrows())]
    finally:
        tb.close()


def _rows(ms: Path, field: str, ddid: int, columns: list[str]) -> dict[str, np.ndarray]:
    field_id = [str(name) for name in _column(ms, "FIELD", "NAME")].index(field)
    tb = casatools_module().table()
    tb.open(str(ms))
    try:
        selection = tb.query(f"FIELD_ID=={field_id} && DATA_DESC_ID=={ddid} && ANTENNA1!=ANTENNA2")
        try:
            values = {column: selection.getcol(column) for column in columns}
        finally:
            selection.close()
    finally:
        tb.close()
    order = np.lexsort((values["ANTENNA2"], values["ANTENNA1"], values["TIME"]))
    return {column: value[..., order] for column, value in values.items()}


def correction_error(raw_ms: Path, calibrated_ms: Path, field: str, gains: InjectedGains) -> CorrectionError:
    """c g1 conj(g2) over the unflagged visibilities of `field` in every spw (see the module docstring)."""
    spw_of_ddid = [int(s) for s in _column(raw_ms, "DATA_DESCRIPTION", "SPECTRAL_WINDOW_ID")]
    frequencies = _column(raw_ms, "SPECTRAL_WINDOW", "CHAN_FREQ")
    errors = []
    keys = ["TIME", "ANTENNA1", "ANTENNA2", "DATA", "FLAG"]
    for ddid, spw in enumerate(spw_of_ddid):
        raw = _rows(raw_ms, field, ddid, keys)
        calibrated = _rows(calibrated_ms, field, ddid, keys)
        for key in ("TIME", "ANTENNA1", "ANTENNA2"):
            assert np.array_equal(raw[key], calibrated[key]), f"the calibrated MS's {key} differ from the raw MS's"
        offsets = frequencies[spw] - (frequencies[spw][0] + frequencies[spw][-1]) / 2
        times, time_index = np.unique(raw["TIME"], return_inverse=True)
        true_gains = gains.complex_gains(times, offsets)  # (antenna, polarisation, time, channel)
        g1 = true_gains[raw["ANTENNA1"], :, time_index, :]  # (row, polarisation, channel)
        g2 = true_gains[raw["ANTENNA2"], :, time_index, :]
        baseline_gain = np.transpose(g1 * np.conj(g2), (1, 2, 0))
        good = ~calibrated["FLAG"] & (np.abs(raw["DATA"]) > 0)
        errors.append((calibrated["DATA"][good] / raw["DATA"][good]) * baseline_gain[good])
    error = np.concatenate(errors)
    return CorrectionError(
        median_amplitude=float(np.median(np.abs(error))),
        phase_rms_deg=float(np.degrees(np.sqrt(np.mean(np.angle(error) ** 2)))),
        visibilities=int(error.size),
    )


def vector_averaged_amplitude(ms: Path, field: str, ddid: int) -> float:
    """|mean of the unflagged parallel-hand visibilities|: the flux density of a calibrated point source at
    the phase centre (its phases are zero, so the vector average keeps its amplitude and averages the
    noise down)."""
    rows = _rows(ms, field, ddid, ["TIME", "ANTENNA1", "ANTENNA2", "DATA", "FLAG"])
    data, flags = rows["DATA"], rows["FLAG"]
    # XX and YY: the simulated MSs have only parallel hands.
    return float(np.abs(data[~flags].mean()))


def calibrate_copy(
    source_ms: Path, flux_models: list[FluxModel], work: Path
) -> tuple[CalibrationPlan, CalibrationStepResult, CasaRun]:
    """Calibrate a copy of `source_ms` under `work` with the calibration step in a CASA child process, as
    the worker runs it. Returns the plan, the step's result and the CASA run."""
    ms = work / "input" / source_ms.name
    shutil.copytree(source_ms, ms)
    plan = plan_calibration(describe_measurement_set(ms), flux_models, CalibrationOptions())
    assert plan is not None, f"{ms.name} has calibrators: a plan was expected"
    run = asyncio.run(
        run_casa_step(
            "aperture_calibration.steps:calibrate_measurement_set",
            {"ms": str(ms), "plan": plan.model_dump(mode="json"), "tables_dir": str(work / "tables"),
             "output": str(work / "calibrated" / ms.name)},
            workdir=work / "casa", time_limit_s=300, memory_limit_mb=4096,
        )
    )  # fmt: skip
    return plan, CalibrationStepResult.model_validate(run.value), run
