"""The calibration steps that run inside the CASA child process (see aperture_shared.casa.runner).

Everything that touches CASA happens here, one MS per step, each in its own process with a time and
memory limit; the handler around them decides what to do from the metadata and moves files.
"""

from pathlib import Path

from aperture_contracts.selfcal import SelfCalibrationRecord
from aperture_shared.casa.calls import CasaCallLog
from pydantic import BaseModel

from aperture_calibration import sequence
from aperture_calibration.measurements import CorrectedDataComparison, compare_corrected_with_data, phase_scatter_deg
from aperture_calibration.plan import CalibrationPlan, FieldSelection, SelfCalibrationOptions
from aperture_calibration.selfcal_sequence import self_calibrate

# CORRECTED_DATA counts as a delivered calibration when at least this fraction of the compared
# visibilities differ from DATA (a copy made by clearcal or an importer differs nowhere).
DELIVERED_CALIBRATION_MIN_DIFFERING = 0.5
# DATA count as calibrated when the phase calibrators' channel-averaged phases already scatter less than
# this about zero. Raw data carry each antenna's arbitrary instrumental phase (offsets uniform over the
# circle scatter by ~104 deg; the simulated MOUS shows 104 deg raw, 0.4 deg calibrated), while a
# calibrated point source at the phase centre has zero phase up to noise and residual drifts.
CALIBRATED_PHASE_SCATTER_DEG = 30.0


class DeliveredCalibration(BaseModel):
    comparison: CorrectedDataComparison
    calibrated: bool
    output_ms: str | None = None  # the corrected data split out, when calibrated


class FieldPhaseScatter(BaseModel):
    field: str
    scatter_deg: float


class CalibrationStepResult(BaseModel):
    """Either the MS was calibrated here (record), or its DATA turned out to be calibrated already:
    then nothing was changed, solved or written."""

    data_phase_scatter: list[FieldPhaseScatter]
    delivered_calibrated: bool
    record: sequence.CalibrationRecord | None = None


def calibrate_measurement_set(arguments: dict[str, object], calls: CasaCallLog) -> CalibrationStepResult:
    """arguments: ms (path; it is modified: flags, CORRECTED_DATA), plan (CalibrationPlan),
    tables_dir, output (where the calibrated MS is split to).

    First checks whether DATA are calibrated already (CALIBRATED_PHASE_SCATTER_DEG): calibrating them
    again would do no good, and without a flux model would replace the observatory's flux scale by 1 Jy."""
    vis = Path(str(arguments["ms"]))
    plan = CalibrationPlan.model_validate(arguments["plan"])
    scatter = []
    for field in plan.phase_calibrators or plan.gain_sources:
        measured = phase_scatter_deg(vis, field.ids, "DATA")
        if measured is not None:
            scatter.append(FieldPhaseScatter(field=field.name, scatter_deg=round(measured, 3)))
    if scatter and all(field.scatter_deg <= CALIBRATED_PHASE_SCATTER_DEG for field in scatter):
        return CalibrationStepResult(data_phase_scatter=scatter, delivered_calibrated=True)
    record = sequence.calibrate(vis, plan, Path(str(arguments["tables_dir"])), Path(str(arguments["output"])), calls)
    return CalibrationStepResult(data_phase_scatter=scatter, delivered_calibrated=False, record=record)


def inspect_delivered_calibration(arguments: dict[str, object], calls: CasaCallLog) -> DeliveredCalibration:
    """arguments: ms, output. Whether the MS's CORRECTED_DATA holds a calibration; if it does, split it
    out to `output` (its DATA then holds the calibrated data, as every later stage expects)."""
    vis, output = Path(str(arguments["ms"])), Path(str(arguments["output"]))
    comparison = compare_corrected_with_data(vis)
    calibrated = comparison.differing_fraction >= DELIVERED_CALIBRATION_MIN_DIFFERING
    if not calibrated:
        return DeliveredCalibration(comparison=comparison, calibrated=False)
    output.parent.mkdir(parents=True, exist_ok=True)
    calls.task("split", vis=str(vis), outputvis=str(output), datacolumn="corrected", keepflags=True)
    if not output.is_dir():
        raise RuntimeError(f"split did not write {output}; see the CASA log")
    return DeliveredCalibration(comparison=comparison, calibrated=True, output_ms=str(output))


class SelfCalibrationStepResult(BaseModel):
    records: list[SelfCalibrationRecord]
    output_ms: str | None = None  # the self-calibrated MS, when some round was kept
    tables: list[str] = []  # the applied gain tables (paths), when some round was kept


def self_calibrate_measurement_set(arguments: dict[str, object], calls: CasaCallLog) -> SelfCalibrationStepResult:
    """arguments: ms (path; modified: MODEL_DATA, CORRECTED_DATA while it runs), targets and mosaics
    (FieldSelection), spw_ids, options (SelfCalibrationOptions), work_dir (images and tables), output (where
    the self-calibrated MS is split to), data (what the MS's DATA are, for the record)."""
    vis, output = Path(str(arguments["ms"])), Path(str(arguments["output"]))
    run = self_calibrate(
        vis,
        [FieldSelection.model_validate(t) for t in arguments["targets"]],  # type: ignore[attr-defined]
        [FieldSelection.model_validate(t) for t in arguments["mosaics"]],  # type: ignore[attr-defined]
        [int(s) for s in arguments["spw_ids"]],  # type: ignore[attr-defined]
        SelfCalibrationOptions.model_validate(arguments["options"]),
        Path(str(arguments["work_dir"])),
        str(arguments["data"]),
        calls,
    )
    if not run.tables:
        return SelfCalibrationStepResult(records=run.records)
    output.parent.mkdir(parents=True, exist_ok=True)
    calls.task("split", vis=str(vis), outputvis=str(output), datacolumn="corrected", keepflags=True)
    if not output.is_dir():
        raise RuntimeError(f"split did not write {output}; see the CASA log")
    return SelfCalibrationStepResult(records=run.records, output_ms=str(output), tables=[str(t) for t in run.tables])
