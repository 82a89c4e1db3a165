"""The calibration of one Measurement Set from its own calibrators, in the ALMA pipeline's order. Runs
inside the CASA child process; every task goes through `CasaCallLog.task`, so the job records it.

1. Deterministic flagging (one flagdata pass over the data, mode='list'): autocorrelations, shadowed
   antennas, visibilities of exactly zero (clip, clipzeros), and the edge channels of each science spw.
2. setjy on the flux reference (plan.FluxReference: a solar-system or catalogue model, the job's model,
   or 1 Jy), as a virtual model (usescratch=False: no MODEL_DATA column), except for solar-system
   bodies, whose ephemeris models CASA writes only into MODEL_DATA.
3. Reference antennas: near the array's centre among the least-flagged (measurements.reference_antennas).
4. bandpass on the bandpass calibrator, through per-integration phases solved on it first (so that
   the phase drift within the scan does not decorrelate the bandpass), normalised (solnorm).
5. gaincal phase per integration (solint 'int') on every calibrator, to calibrate the calibrators
   themselves, and per scan (solint 'inf') on the targets' gain calibrators, to be interpolated onto
   the targets (per-integration phases would carry their thermal noise onto them).
6. gaincal amplitude per scan on every calibrator, through the bandpass and the per-integration phases.
   Then the antennas whose gains are outliers (gain_outliers.py: phases that jump between integrations,
   amplitudes far from the array's) are flagged in every field (flagdata, reason GAIN_OUTLIER), and steps
   4-6 are solved again without them, so that no table depends on a broken antenna and the targets lose
   its scrambled baselines. One round, as the ALMA pipeline's hif_lowgainflag.
7. fluxscale: the amplitude gains of the other calibrators scaled to the flux reference's model.
8. applycal: each calibrator with its own solutions; each target with its gain calibrator's per-scan
   phases and scaled amplitudes (gainfield), interpolated linearly in time; the bandpass everywhere.
   calwt=True rescales the weights by the gains, applymode 'calflagstrict' flags what has no solution.
9. split the corrected data into a new MS, whose DATA column then holds the calibrated data.

The phase scatter of the phase calibrators (measurements.phase_scatter_deg) is measured on DATA and
on CORRECTED_DATA around applycal.
"""

import shutil
from pathlib import Path
from typing import Any

from aperture_shared.casa.calls import CasaCallLog
from aperture_shared.errors import BadInput
from pydantic import BaseModel

from aperture_calibration.gain_outliers import GainOutlierDecision, decide_gain_outliers
from aperture_calibration.measurements import (
    FlagSummary,
    PhaseScatter,
    SolutionStatistics,
    antenna_gain_stability,
    flag_summary,
    phase_scatter_deg,
    reference_antennas,
    solution_statistics,
)
from aperture_calibration.plan import CalibrationPlan, FluxReference, FluxStandard

BANDPASS_INTERP = "linear,linearflag"
GAIN_INTERP = "linear"


class ModelFlux(BaseModel):
    """A flux density that setjy set or fluxscale derived, per field and spw."""

    field: str
    spw_id: int
    flux_jy: float
    error_jy: float | None = None


class CalibrationRecord(BaseModel):
    """What the sequence did and measured on one MS; the handler turns it into QA and a summary."""

    ms_name: str
    output_ms: str
    tables: list[str]  # applied, in applycal order
    reference_antennas: list[str]
    flagged_fraction_before: float
    flagged_fraction_after_flagging: float
    edge_channel_share: float  # of all visibilities: the spw edges flagged on purpose
    gain_outliers: GainOutlierDecision  # on the first solutions; its flagged antennas were solved without
    flagged_fraction_before_applycal: float  # deterministic flagging plus the outlier antennas
    flagged_fraction_calibrated: float  # of the split MS: flagging plus data without solutions
    model_flux: list[ModelFlux]
    derived_flux: list[ModelFlux]
    solutions: list[SolutionStatistics]
    phase_scatter: list[PhaseScatter]


class _Tables:
    """The tables of one MS, named after it as the ALMA pipeline names them."""

    def __init__(self, directory: Path, ms_name: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.prebandpass_phase = directory / f"{ms_name}.prebandpass_phase_int.gcal"
        self.bandpass = directory / f"{ms_name}.bandpass.bcal"
        self.phase_int = directory / f"{ms_name}.phase_int.gcal"
        self.phase_inf = directory / f"{ms_name}.phase_inf.gcal"
        self.amplitude = directory / f"{ms_name}.amplitude_inf.gcal"
        self.flux = directory / f"{ms_name}.flux_inf.gcal"
        for table in (self.prebandpass_phase, self.bandpass, self.phase_int, self.phase_inf, self.amplitude,
                      self.flux):  # fmt: skip
            shutil.rmtree(table, ignore_errors=True)


def calibrate(
    vis: Path, plan: CalibrationPlan, tables_dir: Path, output: Path, calls: CasaCallLog
) -> CalibrationRecord:
    """Run steps 1-9 of the module docstring on `vis` (which gets flags and a CORRECTED_DATA column)."""
    if output.exists():
        raise FileExistsError(f"calibration output {output} exists already")
    output.parent.mkdir(parents=True, exist_ok=True)
    before = flag_summary(calls.task("flagdata", vis=str(vis), mode="summary"))
    calls.task(
        "flagdata", vis=str(vis), mode="list", inpfile=deterministic_flag_commands(plan), flagbackup=False,
    )
    flagged = flag_summary(calls.task("flagdata", vis=str(vis), mode="summary"))
    refants = reference_antennas(vis, flagged.per_antenna)
    if not refants:
        raise BadInput(
            f"{plan.ms_name}: every antenna is flagged after deterministic flagging (autocorrelations, "
            "shadowing, zero amplitudes, spw edges): there is nothing to calibrate. Check the MS's flags."
        )
    model_flux = set_flux_model(vis, plan.flux, calls)
    tables = _Tables(tables_dir, plan.ms_name)
    solutions = solve(vis, plan, tables, ",".join(refants), calls)
    outliers = decide_gain_outliers(antenna_gain_stability(tables.phase_int, tables.amplitude))
    before_applycal = flagged
    if outliers.flagged:
        before_applycal = flag_outlier_antennas(vis, outliers.flagged, calls)
        refants = reference_antennas(vis, before_applycal.per_antenna)
        tables = _Tables(tables_dir, plan.ms_name)
        solutions = solve(vis, plan, tables, ",".join(refants), calls, outliers.flagged)
    derived_flux, flux_table = transfer_flux_scale(vis, plan, tables, calls)
    solutions.append(solution_statistics(flux_table, "flux-scaled amplitude per scan", None, outliers.flagged))
    checked = plan.phase_calibrators or plan.gain_sources
    before_deg = {field.name: phase_scatter_deg(vis, field.ids, "DATA") for field in checked}
    applied = apply(vis, plan, tables, flux_table, calls)
    scatter = []
    for field in checked:
        after = phase_scatter_deg(vis, field.ids, "CORRECTED_DATA")
        if before_deg[field.name] is not None and after is not None:
            scatter.append(PhaseScatter(field=field.name, before_deg=before_deg[field.name], after_deg=after))
    calls.task("split", vis=str(vis), outputvis=str(output), datacolumn="corrected", keepflags=True)
    if not output.is_dir():
        raise RuntimeError(f"split did not write {output}; see the CASA log")
    calibrated = flag_summary(calls.task("flagdata", vis=str(output), mode="summary"))
    return CalibrationRecord(
        ms_name=plan.ms_name,
        output_ms=str(output),
        tables=[str(table) for table in applied],
        reference_antennas=refants,
        flagged_fraction_before=round(before.flagged_fraction, 5),
        flagged_fraction_after_flagging=round(flagged.flagged_fraction, 5),
        edge_channel_share=round(flagged.edge_share(plan.edge_channels, plan.num_channels), 5),
        gain_outliers=outliers,
        flagged_fraction_before_applycal=round(before_applycal.flagged_fraction, 5),
        flagged_fraction_calibrated=round(calibrated.flagged_fraction, 5),
        model_flux=model_flux,
        derived_flux=derived_flux,
        solutions=solutions,
        phase_scatter=scatter,
    )


def deterministic_flag_commands(plan: CalibrationPlan) -> list[str]:
    """flagdata commands (mode='list': one pass over the data for all of them)."""
    commands = [
        "mode='manual' autocorr=True reason='AUTOCORRELATIONS'",
        "mode='shadow' reason='SHADOW'",
        "mode='clip' clipzeros=True reason='ZERO_AMPLITUDE'",
    ]
    if plan.edge_flag_selection:
        commands.append(f"mode='manual' spw='{plan.edge_flag_selection}' reason='SPW_EDGES'")
    return commands


def flag_outlier_antennas(vis: Path, antennas: list[str], calls: CasaCallLog) -> FlagSummary:
    """Flag every baseline of `antennas` in every field and spw (their gains are outliers on the
    calibrators: gain_outliers.py); returns the flag summary afterwards, which the reference antennas
    and the applycal QA start from."""
    selection = ",".join(antennas)
    calls.task(
        "flagdata", vis=str(vis), mode="list", inpfile=[f"mode='manual' antenna='{selection}' reason='GAIN_OUTLIER'"],
        flagbackup=False,
    )  # fmt: skip
    return flag_summary(calls.task("flagdata", vis=str(vis), mode="summary"))


def set_flux_model(vis: Path, flux: FluxReference, calls: CasaCallLog) -> list[ModelFlux]:
    """setjy on the flux reference; returns the flux density it set per spw (Stokes I)."""
    parameters: dict[str, Any] = {"standard": flux.standard.value}
    if flux.standard is FluxStandard.MANUAL:
        assert flux.flux_jy is not None
        parameters.update(fluxdensity=[flux.flux_jy, 0, 0, 0], spix=[flux.spectral_index])
        if flux.reference_frequency_hz is not None:
            parameters["reffreq"] = f"{flux.reference_frequency_hz}Hz"
    # A virtual model (no MODEL_DATA column written) except for solar-system bodies, whose ephemeris
    # models setjy can only write into MODEL_DATA.
    scratch_column = flux.standard is FluxStandard.SOLAR_SYSTEM
    try:
        result = calls.task(
            "setjy", vis=str(vis), field=flux.field.selection, usescratch=scratch_column, **parameters
        )
    except RuntimeError as error:
        result, failure = None, str(error)
    else:
        failure = "it set no flux density"
    set_fluxes = _fluxes_by_field_and_spw(result or {}, "fluxd")
    if not set_fluxes:
        raise BadInput(
            f"setjy could not set a flux model for the flux calibrator {flux.field.name} with the standard "
            f"{flux.standard.value!r}: {failure}. Give its flux density in the job's flux_models "
            "(field, flux_jy, reference_frequency_hz, spectral_index)."
        )
    return set_fluxes


def solve(
    vis: Path, plan: CalibrationPlan, tables: _Tables, refant: str, calls: CasaCallLog,
    flagged_antennas: list[str] | None = None,
) -> list[SolutionStatistics]:
    """Steps 4-6: bandpass, phases (per integration and per scan) and amplitudes per scan. The statistics
    leave out flagged_antennas (outliers flagged on purpose)."""
    common = {"vis": str(vis), "spw": plan.spw_selection, "refant": refant, "minsnr": plan.min_snr}
    calibrators = ",".join(field.selection for field in plan.calibrators)
    calls.task(
        "gaincal", caltable=str(tables.prebandpass_phase), field=plan.bandpass.selection, solint="int",
        calmode="p", **common,
    )
    _require(tables.prebandpass_phase, plan, f"phases on the bandpass calibrator {plan.bandpass.name}")
    calls.task(
        "bandpass", caltable=str(tables.bandpass), field=plan.bandpass.selection, solint="inf", combine="scan",
        bandtype="B", solnorm=True, gaintable=[str(tables.prebandpass_phase)], **common,
    )
    _require(tables.bandpass, plan, f"the bandpass on {plan.bandpass.name}")
    calls.task(
        "gaincal", caltable=str(tables.phase_int), field=calibrators, solint="int", calmode="p",
        gaintable=[str(tables.bandpass)], interp=[BANDPASS_INTERP], **common,
    )
    _require(tables.phase_int, plan, "per-integration phases on the calibrators")
    if plan.targets:
        calls.task(
            "gaincal", caltable=str(tables.phase_inf), field=",".join(f.selection for f in plan.gain_sources),
            solint="inf", calmode="p", gaintable=[str(tables.bandpass)], interp=[BANDPASS_INTERP], **common,
        )
        _require(tables.phase_inf, plan, "per-scan phases on the targets' gain calibrators")
    calls.task(
        "gaincal", caltable=str(tables.amplitude), field=calibrators, solint="inf", calmode="a",
        gaintable=[str(tables.bandpass), str(tables.phase_int)], interp=[BANDPASS_INTERP, GAIN_INTERP], **common,
    )
    _require(tables.amplitude, plan, "per-scan amplitudes on the calibrators")
    left_out = flagged_antennas or []
    statistics = [
        solution_statistics(tables.bandpass, "bandpass", plan.edge_channels, left_out),
        solution_statistics(tables.phase_int, "phase per integration", None, left_out),
    ]
    if plan.targets:
        statistics.append(solution_statistics(tables.phase_inf, "phase per scan", None, left_out))
    return statistics


def transfer_flux_scale(
    vis: Path, plan: CalibrationPlan, tables: _Tables, calls: CasaCallLog
) -> tuple[list[ModelFlux], Path]:
    """Step 7. Returns the fluxes fluxscale derived and the amplitude table to apply. With no other
    calibrator to scale (the flux reference is the only one), the amplitude table is already on the
    model's scale."""
    transfer = [field.selection for field in plan.calibrators if field.name != plan.flux.field.name]
    if not transfer:
        return [], tables.amplitude
    result = calls.task(
        "fluxscale", vis=str(vis), caltable=str(tables.amplitude), fluxtable=str(tables.flux),
        reference=[plan.flux.field.selection], transfer=transfer,
    )
    _require(tables.flux, plan, "the flux-scaled amplitudes (fluxscale)")
    return _fluxes_by_field_and_spw(result or {}, "fluxd", "fluxdErr"), tables.flux


def apply(vis: Path, plan: CalibrationPlan, tables: _Tables, flux_table: Path, calls: CasaCallLog) -> list[Path]:
    """Step 8; returns the tables applied, in order."""
    common = {"vis": str(vis), "spw": plan.spw_selection, "calwt": True, "applymode": "calflagstrict",
              "flagbackup": False}  # fmt: skip
    interp = [BANDPASS_INTERP, GAIN_INTERP, GAIN_INTERP]
    for field in plan.calibrators:
        calls.task(
            "applycal", field=field.selection, gaintable=[str(tables.bandpass), str(tables.phase_int), str(flux_table)],
            gainfield=["", field.selection, field.selection], interp=interp, **common,
        )
    for group in plan.targets:
        source = group.gain_field.selection
        calls.task(
            "applycal", field=",".join(target.selection for target in group.targets),
            gaintable=[str(tables.bandpass), str(tables.phase_inf), str(flux_table)],
            gainfield=["", source, source], interp=interp, **common,
        )
    applied = [tables.bandpass, tables.phase_int]
    if plan.targets:
        applied.append(tables.phase_inf)
    return [*applied, flux_table]


def _require(table: Path, plan: CalibrationPlan, what: str) -> None:
    if not table.is_dir():
        raise BadInput(
            f"{plan.ms_name}: CASA found no solutions for {what} (no unflagged data, or every solution below "
            f"SNR {plan.min_snr:g}). Check the calibrator's data and flags; the CASA log has the details."
        )


def _fluxes_by_field_and_spw(result: dict[str, Any], value_key: str, error_key: str = "") -> list[ModelFlux]:
    """setjy's and fluxscale's results: {field id: {'fieldName': ..., spw id: {value_key: [I, Q, U, V]}}}.
    Spws without a value (fluxscale writes -1 there) are left out."""
    fluxes = []
    for field_key, per_field in result.items():
        if not str(field_key).isdigit() or not isinstance(per_field, dict):
            continue
        name = str(per_field.get("fieldName", field_key))
        for spw_key, values in per_field.items():
            if not str(spw_key).isdigit() or not isinstance(values, dict) or value_key not in values:
                continue
            flux = float(values[value_key][0])
            if flux <= 0:
                continue
            error = float(values[error_key][0]) if error_key and error_key in values else None
            fluxes.append(ModelFlux(field=name, spw_id=int(spw_key), flux_jy=round(flux, 6),
                                    error_jy=round(error, 6) if error is not None else None))  # fmt: skip
    return sorted(fluxes, key=lambda flux: (flux.field, flux.spw_id))
