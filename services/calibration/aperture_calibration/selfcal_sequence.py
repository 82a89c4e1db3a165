"""Self-calibration of the science targets of one MS, inside the CASA child process (the rules are in
selfcal_plan.py). Every task goes through `CasaCallLog.task`, so the job records it.

Per target (one pointing), on a work copy of its data (mstransform: that field, the science spws,
channels averaged to about CHANNELS_PER_SPW per spw, ids kept so that the tables apply to the full
MS): a quick continuum image of DATA (tclean mfs, hogbom, auto-multithresh, cleaned to `nsigma` x the
residual rms, the model saved to MODEL_DATA); the decision; then per round gaincal against that model,
applycal into CORRECTED_DATA, and a new image of CORRECTED_DATA, whose model the next round solves
against when the round is kept. Averaging channels makes each image several times cheaper (gridding
dominates) and changes nothing for gains that are one number per spw.

The kept tables are then applied to the full MS (clearcal first: CORRECTED_DATA = DATA for every other
field), and the caller splits the corrected data out. When no round is kept anywhere, the MS is not
touched at all.
"""

import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from aperture_contracts.selfcal import (
    ImageFigures,
    SelfCalibrationOutcome,
    SelfCalibrationRecord,
    SelfCalibrationRound,
)
from aperture_shared.casa.calls import CasaCallLog

from aperture_calibration.measurements import (
    flag_summary,
    open_table,
    reference_antennas,
    solution_statistics,
)
from aperture_calibration.plan import FieldSelection, SelfCalibrationOptions
from aperture_calibration.selfcal_plan import (
    SolutionInterval,
    TargetTiming,
    amplitude_interval,
    attempt_decision,
    expected_solution_snr,
    image_figures,
    judge_round,
    phase_intervals,
    quick_image_geometry,
)

# 1.4826 x the median absolute deviation estimates a Gaussian's sigma, untouched by sources and artefacts.
MAD_TO_SIGMA = 1.4826
PRIMARY_BEAM_LIMIT = 0.2
GAIN_INTERP = "linear"
# Rows read to measure baselines and times: every n-th row beyond this many, so a large MS costs little.
ROWS_SAMPLED = 200_000
# Channels left per spw in the work copy: enough that bandwidth smearing stays small across the quick
# image (a 2 GHz spw at 230 GHz in 8 channels smears a source at the primary beam's 0.2 level by a few
# per cent of a 0.5" beam), few enough that gridding is cheap.
CHANNELS_PER_SPW = 8


@dataclass
class SelfCalibrationRun:
    records: list[SelfCalibrationRecord]
    tables: list[Path] = field(default_factory=list)  # every applied table, all targets


@dataclass
class _Geometry:
    timing: TargetTiming
    cell_arcsec: float
    imsize: int


@dataclass
class _Image:
    figures: ImageFigures
    model: Path


def self_calibrate(
    vis: Path,
    targets: list[FieldSelection],
    mosaics: list[FieldSelection],
    spw_ids: list[int],
    options: SelfCalibrationOptions,
    work_dir: Path,
    data: str,
    calls: CasaCallLog,
) -> SelfCalibrationRun:
    """Self-calibrate each target of `vis` (its DATA: `data` says what they are). The kept tables are
    applied to CORRECTED_DATA; the caller splits them out when `tables` is not empty."""
    ms_name = vis.name
    records = [
        SelfCalibrationRecord(
            measurement_set=ms_name, target=mosaic.name, outcome=SelfCalibrationOutcome.NOT_ATTEMPTED, data=data,
            reason=f"not attempted: a mosaic of {len(mosaic.ids)} pointings (self-calibrating one model across "
            "pointings needs joint mosaic imaging, which this stage does not do)",
        )
        for mosaic in mosaics
    ]  # fmt: skip
    spw = ",".join(str(s) for s in spw_ids)
    flagged = flag_summary(calls.task("flagdata", vis=str(vis), mode="summary", spw=spw))
    refant = ",".join(reference_antennas(vis, flagged.per_antenna))
    applied: dict[int, tuple[list[Path], list[int]]] = {}  # field id -> (kept tables, spws)
    for target in targets:
        target_spws = _spws_with_data(vis, target.ids[0], spw_ids)
        if not target_spws:
            records.append(
                SelfCalibrationRecord(
                    measurement_set=ms_name, target=target.name, outcome=SelfCalibrationOutcome.NOT_ATTEMPTED,
                    data=data, reason="not attempted: no unflagged data in the science spws",
                )
            )  # fmt: skip
            continue
        target_dir = work_dir / _safe(target.name)
        target_dir.mkdir(parents=True, exist_ok=True)
        work_ms = target_dir / f"{vis.name.removesuffix('.ms')}.{_safe(target.name)}.selfcal.ms"
        _work_copy(vis, work_ms, target.ids[0], target_spws, calls)
        record, tables = _self_calibrate_target(work_ms, ms_name, target, target_spws, refant, options, target_dir,
                                                data, calls)  # fmt: skip
        shutil.rmtree(work_ms)
        records.append(record)
        if tables:
            applied[target.ids[0]] = (tables, target_spws)
    if applied:
        calls.task("clearcal", vis=str(vis), addmodel=False)
        for field_id, (tables, target_spws) in applied.items():
            _apply(vis, field_id, ",".join(str(s) for s in target_spws), tables, calls)
    return SelfCalibrationRun(records=records, tables=[t for tables, _ in applied.values() for t in tables])


def _spws_with_data(vis: Path, field_id: int, spw_ids: list[int]) -> list[int]:
    """Those of `spw_ids` in which the field has unflagged rows."""
    with open_table(vis) as table:
        selection = table.query(f"FIELD_ID=={field_id} && !FLAG_ROW && ANTENNA1!=ANTENNA2", columns="DATA_DESC_ID")
        try:
            ddids = {int(d) for d in np.unique(selection.getcol("DATA_DESC_ID"))} if selection.nrows() else set()
        finally:
            selection.close()
    with open_table(vis / "DATA_DESCRIPTION") as table:
        spw_of_ddid = [int(s) for s in table.getcol("SPECTRAL_WINDOW_ID")]
    observed = {spw_of_ddid[d] for d in ddids}
    return [spw for spw in spw_ids if spw in observed]


def _work_copy(vis: Path, work_ms: Path, field_id: int, spw_ids: list[int], calls: CasaCallLog) -> None:
    """The target's data, channels averaged, field and spw ids kept (reindex=False)."""
    with open_table(vis / "SPECTRAL_WINDOW") as table:
        bins = [max(1, int(table.getcell("NUM_CHAN", spw)) // CHANNELS_PER_SPW) for spw in spw_ids]
    shutil.rmtree(work_ms, ignore_errors=True)
    calls.task(
        "mstransform", vis=str(vis), outputvis=str(work_ms), field=str(field_id),
        spw=",".join(str(s) for s in spw_ids), datacolumn="data", chanaverage=any(b > 1 for b in bins),
        chanbin=bins, reindex=False, keepflags=True,
    )  # fmt: skip
    if not work_ms.is_dir():
        raise RuntimeError(f"mstransform did not write {work_ms}; see the CASA log")


def _self_calibrate_target(
    vis: Path, ms_name: str, target: FieldSelection, spw_ids: list[int], refant: str,
    options: SelfCalibrationOptions, target_dir: Path, data: str, calls: CasaCallLog,
) -> tuple[SelfCalibrationRecord, list[Path]]:  # fmt: skip
    """`vis` is the work copy of the target's data; the tables are named after the MS (`ms_name`)."""
    started = time.monotonic()
    field_id = target.ids[0]
    spw = ",".join(str(s) for s in spw_ids)
    stem = f"{ms_name.removesuffix('.ms')}.{_safe(target.name)}"
    geometry = _geometry(vis, field_id, spw_ids)
    record = SelfCalibrationRecord(
        measurement_set=ms_name, target=target.name, outcome=SelfCalibrationOutcome.NOT_ATTEMPTED, reason="",
        data=data,
    )
    if geometry.imsize > options.max_image_pixels:
        record.reason = (
            f"not attempted: the quick image would be {geometry.imsize} pixels across ({geometry.cell_arcsec:g} "
            f"arcsec pixels out to the primary beam's 0.2 level), over the {options.max_image_pixels} allowed "
            "(APERTURE_SELFCAL_MAX_IMAGE_PIXELS)"
        )
        record.duration_s = round(time.monotonic() - started, 1)
        return record, []
    best = _image(vis, field_id, spw, "data", target_dir / f"{stem}.initial", geometry, options, calls)
    record.initial = record.final = best.figures
    refusal = attempt_decision(best.figures, geometry.timing, options)
    if refusal is not None:
        record.reason = refusal
        record.duration_s = round(time.monotonic() - started, 1)
        return record, []

    inf_eb: Path | None = None  # the kept whole-observation phases, pre-applied to every later solve
    phase: Path | None = None  # the last kept shorter-interval phases
    stop = "every solution interval down to the last allowed was kept"
    for interval in phase_intervals(geometry.timing, options.max_phase_rounds):
        expected = expected_solution_snr(best.figures.snr, geometry.timing, interval)
        if expected < options.min_solution_snr:
            stop = (
                f"stopped before {interval.label}: expected SNR {expected:.1f} per solution, below "
                f"{options.min_solution_snr:g}"
            )
            break
        prior = [inf_eb] if inf_eb is not None and interval.label != "inf_EB" else []
        result = _round(vis, field_id, spw, refant, interval, expected, prior, best, len(record.rounds) + 1,
                        stem, target_dir, geometry, options, calls)  # fmt: skip
        record.rounds.append(result.round)
        if not result.round.kept:
            stop = f"stopped at {interval.label}: {result.round.reason}"
            break
        best = result.image
        if interval.label == "inf_EB":
            inf_eb = result.table
        else:
            phase = result.table
    phase_tables = [t for t in (inf_eb, phase) if t is not None]
    tables = list(phase_tables)
    if phase_tables and options.amplitude_min_solution_snr is not None:
        interval = amplitude_interval(geometry.timing)
        expected = expected_solution_snr(best.figures.snr, geometry.timing, interval)
        if expected >= options.amplitude_min_solution_snr:
            # The model of the best image, wherever a rejected round left MODEL_DATA.
            calls.task("ft", vis=str(vis), field=str(field_id), spw=spw, model=str(best.model), usescratch=True)
            result = _round(vis, field_id, spw, refant, interval, expected, phase_tables, best,
                            len(record.rounds) + 1, stem, target_dir, geometry, options, calls)  # fmt: skip
            record.rounds.append(result.round)
            if result.round.kept:
                best = result.image
                tables.append(result.table)
            stop += f"; amplitude round {'kept' if result.round.kept else 'rejected'}: {result.round.reason}"
        else:
            stop += (
                f"; no amplitude round (expected SNR {expected:.1f} per scan solution, below "
                f"{options.amplitude_min_solution_snr:g})"
            )
    kept = [r for r in record.rounds if r.kept]
    record.final = best.figures
    record.improvement = round(best.figures.snr / record.initial.snr, 3) if record.initial.snr else None
    record.tables = [t.name for t in tables]
    if kept:
        record.outcome = SelfCalibrationOutcome.APPLIED
        record.reason = (
            f"applied {', '.join(r.solint for r in kept)}: peak/rms {record.initial.snr:.1f} -> "
            f"{best.figures.snr:.1f} (x{record.improvement:.2f}); {stop}"
        )
    else:
        record.outcome = SelfCalibrationOutcome.NO_IMPROVEMENT
        record.reason = f"attempted, nothing kept: {stop}"
    record.duration_s = round(time.monotonic() - started, 1)
    return record, tables


@dataclass
class _RoundResult:
    round: SelfCalibrationRound
    image: _Image
    table: Path


def _round(
    vis: Path, field_id: int, spw: str, refant: str, interval: SolutionInterval, expected: float,
    prior: list[Path], best: _Image, number: int, stem: str, target_dir: Path, geometry: _Geometry,
    options: SelfCalibrationOptions, calls: CasaCallLog,
) -> _RoundResult:  # fmt: skip
    """Solve, apply and image one round; judged against `best`."""
    started = time.monotonic()
    table = target_dir / f"{stem}.selfcal_r{number}_{interval.label}.gcal"
    shutil.rmtree(table, ignore_errors=True)
    solve = {"solnorm": True} if interval.calmode == "ap" else {}
    calls.task(
        "gaincal", vis=str(vis), caltable=str(table), field=str(field_id), spw=spw, solint=interval.solint,
        combine=interval.combine, gaintype=interval.gaintype, calmode=interval.calmode, refant=refant,
        minsnr=options.gaincal_min_snr, minblperant=4, gaintable=[str(t) for t in prior],
        interp=[GAIN_INTERP] * len(prior), **solve,
    )  # fmt: skip
    after: _Image | None = None
    median_snr, flagged_fraction = None, 1.0
    if table.is_dir():
        statistics = solution_statistics(table, f"self-calibration {interval.label}")
        median_snr, flagged_fraction = statistics.median_snr, statistics.flagged_fraction
        if statistics.median_snr is not None:
            _apply(vis, field_id, spw, [*prior, table], calls)
            after = _image(vis, field_id, spw, "corrected", target_dir / f"{stem}.r{number}", geometry, options,
                           calls)  # fmt: skip
    kept, reason = judge_round(best.figures, after.figures if after else None, flagged_fraction, options)
    result = SelfCalibrationRound(
        number=number, solint=interval.label, calmode=interval.calmode, gaintype=interval.gaintype,
        solint_s=round(interval.seconds, 3), expected_solution_snr=round(expected, 2), median_solution_snr=median_snr,
        flagged_solution_fraction=flagged_fraction, before=best.figures, after=after.figures if after else None,
        kept=kept, reason=reason, table=table.name if kept else None, duration_s=round(time.monotonic() - started, 1),
    )  # fmt: skip
    return _RoundResult(round=result, image=after if kept and after else best, table=table)


def _apply(vis: Path, field_id: int, spw: str, tables: list[Path], calls: CasaCallLog) -> None:
    # calonly: a time without a solution keeps its data (uncorrected by that table) rather than losing
    # them; calwt=False: phase solutions carry no weight information, normalised amplitudes little.
    calls.task(
        "applycal", vis=str(vis), field=str(field_id), spw=spw, gaintable=[str(t) for t in tables],
        interp=[GAIN_INTERP] * len(tables), calwt=False, applymode="calonly", flagbackup=False,
    )  # fmt: skip


def _image(
    vis: Path, field_id: int, spw: str, column: str, imagename: Path, geometry: _Geometry,
    options: SelfCalibrationOptions, calls: CasaCallLog,
) -> _Image:  # fmt: skip
    """A quick continuum image of the target, its model saved to MODEL_DATA; its figures."""
    calls.task(
        "tclean", vis=str(vis), imagename=str(imagename), field=str(field_id), spw=spw, datacolumn=column,
        specmode="mfs", deconvolver="hogbom", gridder="standard", imsize=[geometry.imsize, geometry.imsize],
        cell=f"{geometry.cell_arcsec}arcsec", weighting="briggs", robust=0.5, niter=options.niter,
        nsigma=options.nsigma, usemask="auto-multithresh", pblimit=PRIMARY_BEAM_LIMIT, savemodel="modelcolumn",
        interactive=False,
    )  # fmt: skip
    return _Image(figures=measure_image(imagename), model=Path(f"{imagename}.model"))


def measure_image(imagename: Path) -> ImageFigures:
    """Peak of the image, robust rms of the residual outside the clean mask, both where the primary beam
    is above PRIMARY_BEAM_LIMIT, and the model's total flux."""
    image = _pixels(f"{imagename}.image")
    residual = _pixels(f"{imagename}.residual")
    inside = np.nan_to_num(_pixels(f"{imagename}.pb")) >= PRIMARY_BEAM_LIMIT
    mask_path = Path(f"{imagename}.mask")
    masked = _pixels(str(mask_path)) > 0.5 if mask_path.is_dir() else np.zeros_like(inside)
    noise = residual[inside & ~masked & np.isfinite(residual)]
    rms = float(MAD_TO_SIGMA * np.median(np.abs(noise - np.median(noise)))) if noise.size else 0.0
    peak = float(np.nanmax(np.where(inside, image, np.nan))) if inside.any() else 0.0
    model = float(np.nansum(_pixels(f"{imagename}.model")))
    return image_figures(peak, rms, model)


def _pixels(path: str) -> np.ndarray:
    import casatools  # type: ignore[import-untyped]

    image = casatools.image()
    image.open(path)
    try:
        return np.asarray(image.getchunk(), dtype=float)
    finally:
        image.close()


def _geometry(vis: Path, field_id: int, spw_ids: list[int]) -> _Geometry:
    """The target's timing (selfcal_plan.TargetTiming) and the quick image's cell and size, from the MS."""
    with open_table(vis) as table:
        selection = table.query(f"FIELD_ID=={field_id} && ANTENNA1!=ANTENNA2 && !FLAG_ROW")
        try:
            step = max(1, selection.nrows() // ROWS_SAMPLED)
            rows = {
                name: np.asarray(selection.getcol(name, 0, -1, step))
                for name in ("TIME", "INTERVAL", "SCAN_NUMBER", "ANTENNA1", "ANTENNA2", "UVW")
            }
        finally:
            selection.close()
    if not rows["TIME"].size:
        raise ValueError(f"field {field_id} of {vis.name} has no unflagged cross-correlations")
    integration = float(np.median(rows["INTERVAL"]))
    scan_lengths = [
        float(np.ptp(rows["TIME"][rows["SCAN_NUMBER"] == scan])) + integration
        for scan in np.unique(rows["SCAN_NUMBER"])
    ]
    with open_table(vis / "SPECTRAL_WINDOW") as table:
        max_frequency = max(float(np.max(table.getcell("CHAN_FREQ", spw))) for spw in spw_ids)
    with open_table(vis / "ANTENNA") as table:
        dish = float(np.median(table.getcol("DISH_DIAMETER")))
    baselines = np.hypot(rows["UVW"][0], rows["UVW"][1])
    cell, imsize = quick_image_geometry(max_frequency, float(np.percentile(baselines, 80)), dish)
    timing = TargetTiming(
        on_source_s=sum(scan_lengths), scan_s=float(np.median(scan_lengths)), scans=len(scan_lengths),
        integration_s=integration, antennas=len(np.union1d(rows["ANTENNA1"], rows["ANTENNA2"])),
        spws=len(spw_ids),
    )  # fmt: skip
    return _Geometry(timing=timing, cell_arcsec=cell, imsize=imsize)


def _safe(name: str) -> str:
    """A field name as part of a file name."""
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", name) or "field"
