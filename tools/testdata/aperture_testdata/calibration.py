"""Derive the calibration tables that restore the generated MOUS, the way the ALMA pipeline does.

Solved on a scratch copy of the MS (setjy writes a model into it); the MS that is handed over keeps
raw DATA only. Steps: flux model on the flux calibrator; phase-only gains on the bandpass calibrator
to solve the bandpass through; bandpass; per-integration phases and per-scan amplitudes on all
calibrators; fluxscale to carry the flux scale to the phase calibrator. Applied in the order
bandpass, phase, amplitude, with gainfield '' (each field's own solutions, the target interpolated in
time between the phase-calibrator scans that bracket it), which one applycal over the whole MS can do.
"""

import shutil
from dataclasses import dataclass
from pathlib import Path

from aperture_contracts.packaging import CalibrationApply

from aperture_testdata.casa_runtime import casatasks_module
from aperture_testdata.scenarios import INTENT_BANDPASS, INTENT_FLUX, INTENT_PHASE, Scenario
from aperture_testdata.truth import FluxscaleResult

CALIBRATION_DIRECTORY = "cal"


@dataclass(frozen=True)
class SolvedCalibration:
    apply: list[CalibrationApply]  # table paths relative to the output directory
    fluxscale: list[FluxscaleResult]


class CalibrationFailed(RuntimeError):
    pass


def solve(
    scenario: Scenario, ms: Path, outdir: Path, scratch: Path, reference_antenna: str
) -> SolvedCalibration:
    """Write the tables under outdir/cal and return them in applycal order. `ms` is not modified."""
    casatasks = casatasks_module()
    # Same name as the MS, which the tables record (keyword MSName) as where they were solved.
    work_ms = scratch / "solve" / ms.name
    shutil.rmtree(work_ms, ignore_errors=True)
    shutil.copytree(ms, work_ms)
    table_dir = outdir / CALIBRATION_DIRECTORY
    table_dir.mkdir(parents=True, exist_ok=True)
    stem = ms.name.removesuffix(".ms")
    bandpass_table = table_dir / f"{stem}.bandpass.bcal"
    phase_table = table_dir / f"{stem}.phase_int.gcal"
    flux_table = table_dir / f"{stem}.flux_inf.gcal"
    pre_bandpass_phase = scratch / f"{stem}.prebandpass_phase.gcal"
    amplitude_table = scratch / f"{stem}.amplitude_inf.gcal"
    for table in (bandpass_table, phase_table, flux_table, pre_bandpass_phase, amplitude_table):
        shutil.rmtree(table, ignore_errors=True)

    flux_calibrator = scenario.fields_with_intent(INTENT_FLUX)[0]
    bandpass_calibrator = scenario.fields_with_intent(INTENT_BANDPASS)[0]
    phase_calibrators = scenario.fields_with_intent(INTENT_PHASE)
    calibrators = ",".join(
        dict.fromkeys([bandpass_calibrator.name, flux_calibrator.name, *(f.name for f in phase_calibrators)])
    )
    flux_model = flux_calibrator.components[0]
    vis = str(work_ms)
    try:
        casatasks.setjy(
            vis=vis,
            field=flux_calibrator.name,
            standard="manual",
            fluxdensity=[flux_model.flux_jy, 0, 0, 0],
            spix=[flux_model.spectral_index],
            reffreq=f"{flux_model.reference_frequency_hz}Hz",
            usescratch=False,
        )
        casatasks.gaincal(
            vis=vis,
            caltable=str(pre_bandpass_phase),
            field=bandpass_calibrator.name,
            solint="int",
            calmode="p",
            refant=reference_antenna,
            minsnr=3.0,
        )
        casatasks.bandpass(
            vis=vis,
            caltable=str(bandpass_table),
            field=bandpass_calibrator.name,
            solint="inf",
            combine="scan",
            refant=reference_antenna,
            bandtype="B",
            solnorm=True,
            minsnr=3.0,
            gaintable=[str(pre_bandpass_phase)],
        )
        casatasks.gaincal(
            vis=vis,
            caltable=str(phase_table),
            field=calibrators,
            solint="int",
            calmode="p",
            refant=reference_antenna,
            minsnr=3.0,
            gaintable=[str(bandpass_table)],
        )
        casatasks.gaincal(
            vis=vis,
            caltable=str(amplitude_table),
            field=calibrators,
            solint="inf",
            calmode="ap",
            refant=reference_antenna,
            minsnr=3.0,
            gaintable=[str(bandpass_table), str(phase_table)],
        )
        transfer = [f.name for f in phase_calibrators if f.name != flux_calibrator.name]
        scaled = casatasks.fluxscale(
            vis=vis,
            caltable=str(amplitude_table),
            fluxtable=str(flux_table),
            reference=[flux_calibrator.name],
            transfer=transfer,
        )
    finally:
        shutil.rmtree(work_ms, ignore_errors=True)
        shutil.rmtree(pre_bandpass_phase, ignore_errors=True)
        shutil.rmtree(amplitude_table, ignore_errors=True)
    for table in (bandpass_table, phase_table, flux_table):
        if not table.is_dir():
            raise CalibrationFailed(f"CASA did not write {table}; see the CASA log for the reason")
    relative = [str(t.relative_to(outdir)) for t in (bandpass_table, phase_table, flux_table)]
    apply = [
        CalibrationApply(table=relative[0], interp="linear,linearflag", gainfield=""),
        CalibrationApply(table=relative[1], interp="linear", gainfield=""),
        CalibrationApply(table=relative[2], interp="linear", gainfield=""),
    ]
    return SolvedCalibration(apply=apply, fluxscale=_fluxscale_results(scenario, scaled))


def _fluxscale_results(scenario: Scenario, scaled: dict) -> list[FluxscaleResult]:
    """fluxscale's derived flux per transfer field and spw, beside the flux the sky model has there."""
    results = []
    for key, per_field in scaled.items():
        if not key.isdigit():
            continue
        field = scenario.fields[int(key)]
        model = field.components[0]
        for spw_key, solution in per_field.items():
            if not spw_key.isdigit() or solution.get("fluxd") is None:
                continue
            spw = scenario.spws[int(spw_key)]
            derived = float(solution["fluxd"][0])
            if derived <= 0:
                continue
            true_flux = (
                model.flux_jy
                * (spw.centre_frequency_hz / model.reference_frequency_hz) ** model.spectral_index
            )
            results.append(
                FluxscaleResult(
                    field=field.name,
                    spw_id=int(spw_key),
                    derived_flux_jy=round(derived, 5),
                    true_flux_jy=round(true_flux, 5),
                )
            )
    return results


# The ingest tests demand at least this much; the generator refuses to hand over data that would not.
MIN_PHASE_SCATTER_DROP = 10.0


@dataclass(frozen=True)
class RestoreCheck:
    field: str
    before_deg: float
    after_deg: float

    @property
    def drop(self) -> float:
        return self.before_deg / max(self.after_deg, 1e-9)


def applycal_parameters(apply: list[CalibrationApply], root: Path) -> dict[str, list]:
    """applycal's table arguments for the manifest entries, with table paths made absolute under root."""
    return {
        "gaintable": [str(root / entry.table) for entry in apply],
        "interp": [entry.interp for entry in apply],
        "spwmap": [entry.spwmap for entry in apply],
        "gainfield": [entry.gainfield for entry in apply],
        "calwt": [entry.calwt for entry in apply],
    }


def check_restore(
    ms: Path, outdir: Path, apply: list[CalibrationApply], field: str, scratch: Path
) -> RestoreCheck:
    """Apply the tables to a copy of the MS and measure the calibrator's phase scatter before and after."""
    from aperture_testdata.measure import phase_scatter_deg

    casatasks = casatasks_module()
    copy = scratch / "check" / ms.name
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(ms, copy)
    try:
        casatasks.applycal(vis=str(copy), flagbackup=False, **applycal_parameters(apply, outdir))
        return RestoreCheck(
            field=field,
            before_deg=phase_scatter_deg(copy, field, "DATA"),
            after_deg=phase_scatter_deg(copy, field, "CORRECTED_DATA"),
        )
    finally:
        shutil.rmtree(copy, ignore_errors=True)
