"""The calibration stage: calibrate each ingested MS from its own calibrators, or say why not.

Per MS, decided from the ingest metadata (plan.py), and where that cannot tell, from the data:
- the MOUS was restored at ingest (metadata.calibrated): mode RESTORED, the MSs pass through as they
  are (the same objects, nothing stored again);
- it has calibrator intents: the ALMA-style sequence (sequence.py) in one CASA step, the calibrated MS
  and the applied tables stored under the job's prefix, mode CALIBRATED. Antennas whose gains on the
  calibrators are outliers (gain_outliers.py) are flagged there before the targets are calibrated; the
  summary names them with the figures, and a QA score below green says an antenna was lost. Unless its
  DATA turn out to be calibrated already (an archive's calibrated split, intents kept): the phase
  calibrators' phases then scatter a few degrees about zero where raw data scatter by ~100
  (steps.CALIBRATED_PHASE_SCATTER_DEG), and the MS passes through unchanged as ALREADY_CALIBRATED
  rather than being calibrated again;
- it has none: calibrated data cannot be told from uncalibrated by the visibilities alone (there is no
  calibrator whose phases should be zero), so the rule is: a CORRECTED_DATA column that differs from
  DATA is a calibration the observatory applied (ALREADY_CALIBRATED: that column is split out and
  stored); otherwise the MS passes through unchanged (UNCALIBRATED, flux scale unknown) with red and
  yellow QA saying which calibrators are missing, so that later stages can still image it and nobody
  mistakes it for calibrated data.
The MOUS's mode is the least calibrated of its MSs' (uncalibrated < delivered calibrated < calibrated).

Then, whatever the mode, each MS's science targets are self-calibrated where their own signal allows it
(selfcal_plan.py; switched off with APERTURE_SELFCAL_ENABLED=false): on the calibrated data, on the
data as delivered or restored (the ALMA pipeline self-calibrates restored data too), or on the DATA of
an MS without calibrators, where the phases can still be fixed but the flux scale stays unknown. A
target that gains nothing leaves its MS as it was (a pass-through stays the same object); one that
gains is stored as a new MS with the self-calibration tables beside it. Every decision is recorded in
`CalibrationResult.self_calibration` and scored.
"""

import asyncio
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from aperture_contracts.events import CalibrationMode, CalibrationResult
from aperture_contracts.jobs import CalibrationJob
from aperture_contracts.metadata import MeasurementSetInfo
from aperture_contracts.qa import QAScore
from aperture_contracts.selfcal import SelfCalibrationOutcome, SelfCalibrationRecord
from aperture_contracts.storage import ObjectRef
from aperture_shared.errors import BadInput, JobError
from aperture_shared.worker import JobContext, JobOutcome

from aperture_calibration import qa
from aperture_calibration.plan import CalibrationOptions, CalibrationPlan, fields_by_role, plan_calibration
from aperture_calibration.selfcal_plan import targets_to_self_calibrate
from aperture_calibration.sequence import CalibrationRecord
from aperture_calibration.steps import CalibrationStepResult, DeliveredCalibration, SelfCalibrationStepResult

# From least to most calibrated: a MOUS is as calibrated as its least calibrated MS.
_MODE_ORDER = [CalibrationMode.UNCALIBRATED, CalibrationMode.ALREADY_CALIBRATED, CalibrationMode.CALIBRATED]


@dataclass
class _MeasurementSetOutcome:
    mode: CalibrationMode
    flux_scale_known: bool
    measurement_set: ObjectRef  # what the result names, once stored; until then the MS it came as
    summary: str
    qa: list[QAScore]
    data: str  # what its DATA are now, for the self-calibration record
    local_ms: Path | None = None  # the MS on disk whose DATA are those data; None when not fetched
    store_local: bool = False  # local_ms is new (calibrated or split here) and still to be stored
    tables: list[ObjectRef] = field(default_factory=list)
    stored: list[ObjectRef] = field(default_factory=list)
    self_calibration: list[SelfCalibrationRecord] = field(default_factory=list)


async def calibrate(job: CalibrationJob, context: JobContext, options: CalibrationOptions | None = None) -> JobOutcome:
    options = options or CalibrationOptions()
    if job.metadata.calibrated and not options.self_calibration.enabled:
        return _restored(job, [])
    pairs = pair_measurement_sets(job)
    if job.metadata.calibrated:
        restored = [
            await _finish(context, _restored_outcome(ref), info, options) for ref, info in pairs
        ]  # fmt: skip
        return _restored(job, restored)
    check_flux_models(job)
    outcomes = [
        await _finish(context, await _calibrate_one(job, context, ref, info, options), info, options)
        for ref, info in pairs
    ]  # fmt: skip
    mode = min((outcome.mode for outcome in outcomes), key=_MODE_ORDER.index)
    tables = [table for outcome in outcomes for table in outcome.tables]
    return JobOutcome(
        result=CalibrationResult(
            mode=mode,
            flux_scale_known=all(outcome.flux_scale_known for outcome in outcomes),
            measurement_sets=[outcome.measurement_set for outcome in outcomes],
            tables=tables,
            summary=" ".join(outcome.summary for outcome in outcomes),
            self_calibration=[record for outcome in outcomes for record in outcome.self_calibration],
        ),
        outputs=[ref for outcome in outcomes for ref in outcome.stored],
        qa=[score for outcome in outcomes for score in outcome.qa],
    )


def _restored_outcome(ref: ObjectRef) -> _MeasurementSetOutcome:
    return _MeasurementSetOutcome(
        mode=CalibrationMode.RESTORED, flux_scale_known=True, measurement_set=ref, summary="", qa=[],
        data="data restored at ingest from the archive's calibration tables",
    )  # fmt: skip


def _restored(job: CalibrationJob, outcomes: list[_MeasurementSetOutcome]) -> JobOutcome:
    names = ", ".join(info.name for info in job.metadata.measurement_sets)
    summary = (
        f"Restored at ingest from the archive's calibration tables ({names}): calibration came from the "
        "archive's tables; the MSs pass through as ingest stored them"
    )
    if any(record.outcome is SelfCalibrationOutcome.APPLIED for o in outcomes for record in o.self_calibration):
        summary += ", except where self-calibration improved them (below)"
    return JobOutcome(
        result=CalibrationResult(
            mode=CalibrationMode.RESTORED,
            flux_scale_known=True,
            measurement_sets=[o.measurement_set for o in outcomes] if outcomes else list(job.measurement_sets),
            tables=[table for o in outcomes for table in o.tables],
            summary=" ".join([summary + ".", *(o.summary for o in outcomes if o.summary)]),
            self_calibration=[record for o in outcomes for record in o.self_calibration],
        ),
        outputs=[ref for o in outcomes for ref in o.stored],
        qa=[qa.restored_score(len(job.measurement_sets)), *(score for o in outcomes for score in o.qa)],
    )


async def _finish(
    context: JobContext, outcome: _MeasurementSetOutcome, info: MeasurementSetInfo, options: CalibrationOptions
) -> _MeasurementSetOutcome:
    """Self-calibrate the MS's targets where that is on and they have targets, then store what is new:
    the self-calibrated MS and its tables, else the MS calibrated or split here; a pass-through MS that
    gained nothing stays the object it was."""
    targets, mosaics = targets_to_self_calibrate(info)
    step = None
    if options.self_calibration.enabled and (targets or mosaics):
        ms = outcome.local_ms or await _fetch(context, outcome.measurement_set, info)
        step = SelfCalibrationStepResult.model_validate(
            await context.casa(
                "aperture_calibration.steps:self_calibrate_measurement_set",
                {
                    "ms": str(ms),
                    "targets": [target.model_dump() for target in targets],
                    "mosaics": [mosaic.model_dump() for mosaic in mosaics],
                    "spw_ids": [spw.spw_id for spw in info.spectral_windows if spw.science],
                    "options": options.self_calibration.model_dump(mode="json"),
                    "work_dir": str(context.scratch / "selfcal" / info.name),
                    "output": str(context.scratch / "selfcalibrated" / info.name),
                    "data": outcome.data,
                },
            )
        )
        outcome.self_calibration = step.records
        outcome.qa = [*outcome.qa, *(qa.self_calibration_score(record) for record in step.records)]
        outcome.summary = " ".join(
            part for part in (outcome.summary, self_calibration_summary(info.name, step.records, outcome)) if part
        )
    if step is not None and step.output_ms is not None:
        stored = await context.put_directory(f"measurement_sets/{info.name}.tar", Path(step.output_ms))
        tables = [await context.put_directory(f"tables/{Path(t).name}.tar", Path(t)) for t in step.tables]
        outcome.measurement_set = stored
        outcome.tables = [*outcome.tables, *tables]
        outcome.stored = [stored, *outcome.stored, *tables]
    elif outcome.store_local and outcome.local_ms is not None:
        stored = await context.put_directory(f"measurement_sets/{info.name}.tar", outcome.local_ms)
        outcome.measurement_set = stored
        outcome.stored = [stored, *outcome.stored]
    return outcome


def self_calibration_summary(
    ms_name: str, records: list[SelfCalibrationRecord], outcome: _MeasurementSetOutcome
) -> str:
    """One sentence per target, for a person."""
    parts = []
    for record in records:
        if record.outcome is SelfCalibrationOutcome.APPLIED:
            part = f"{ms_name} {record.target}: self-calibrated, {record.reason}"
            if not outcome.flux_scale_known:
                part += " (phases from the target itself; the flux scale stays unknown)"
        else:
            part = f"{ms_name} {record.target}: self-calibration {record.reason}"
        parts.append(part + ".")
    return " ".join(parts)


def pair_measurement_sets(job: CalibrationJob) -> list[tuple[ObjectRef, MeasurementSetInfo]]:
    """Each stored MS with its description. Ingest stores an MS as `.../<MS name>.tar`; stored under
    other names, the MSs are paired with the descriptions in order."""
    infos = job.metadata.measurement_sets
    by_name = {info.name: info for info in infos}
    names = [PurePosixPath(ref.key).name.removesuffix(".tar") for ref in job.measurement_sets]
    if all(name in by_name for name in names) and len(set(names)) == len(names):
        return [(ref, by_name[name]) for ref, name in zip(job.measurement_sets, names, strict=True)]
    if len(infos) == len(job.measurement_sets):
        return list(zip(job.measurement_sets, infos, strict=True))
    raise JobError(
        f"the calibration job names {len(job.measurement_sets)} Measurement Sets but its metadata describes "
        f"{len(infos)} ({', '.join(by_name)}): the coordinator built the job from inconsistent ingest results"
    )


def check_flux_models(job: CalibrationJob) -> None:
    """A flux model for a field that is no calibrator is a mistake (a typo would silently leave the flux
    scale relative), and so are two models for one field."""
    calibrators = {
        selection.name
        for info in job.metadata.measurement_sets
        for selections in fields_by_role(info).values()
        for selection in selections
    }
    named = [model.field for model in job.flux_models]
    repeated = sorted({name for name in named if named.count(name) > 1})
    if repeated:
        raise BadInput(f"flux_models gives more than one model for {', '.join(repeated)}; give one per field.")
    unknown = [name for name in named if name not in calibrators]
    if unknown:
        raise BadInput(
            f"flux_models names {', '.join(unknown)}, which is not a calibrator of any MS of this MOUS "
            f"(its calibrators: {', '.join(sorted(calibrators)) or 'none'}). Use the field names of the MS."
        )


async def _calibrate_one(
    job: CalibrationJob, context: JobContext, ref: ObjectRef, info: MeasurementSetInfo, options: CalibrationOptions
) -> _MeasurementSetOutcome:
    plan = plan_calibration(info, job.flux_models, options)
    if plan is not None:
        return await _calibrate_from_calibrators(context, ref, info, plan)
    if "CORRECTED_DATA" in info.data_columns:
        return await _inspect_delivered_calibration(context, ref, info)
    return _uncalibrated(ref, info, "no calibrator intents and no CORRECTED_DATA column")


def _uncalibrated(
    ref: ObjectRef, info: MeasurementSetInfo, why: str, local_ms: Path | None = None
) -> _MeasurementSetOutcome:
    return _MeasurementSetOutcome(
        mode=CalibrationMode.UNCALIBRATED,
        flux_scale_known=False,
        measurement_set=ref,
        summary=f"{info.name}: {why}, so it cannot be calibrated here: it passes through uncalibrated "
        "(DATA as delivered, flux scale unknown) unless its targets are self-calibrated, and later stages "
        "image it as it is.",
        qa=qa.no_calibrators_scores(info.name),
        data="uncalibrated DATA (no calibrators: amplitudes, bandpass and flux scale stay uncalibrated)",
        local_ms=local_ms,
    )


async def _fetch(context: JobContext, ref: ObjectRef, info: MeasurementSetInfo) -> Path:
    into = context.scratch / "input" / info.name
    into.mkdir(parents=True)
    return await asyncio.to_thread(context.store.get_directory, ref, into)


async def _inspect_delivered_calibration(
    context: JobContext, ref: ObjectRef, info: MeasurementSetInfo
) -> _MeasurementSetOutcome:
    ms = await _fetch(context, ref, info)
    delivered = DeliveredCalibration.model_validate(
        await context.casa(
            "aperture_calibration.steps:inspect_delivered_calibration",
            {"ms": str(ms), "output": str(context.scratch / "calibrated" / info.name)},
        )
    )
    if not delivered.calibrated or delivered.output_ms is None:
        return _uncalibrated(ref, info, "no calibrator intents, and its CORRECTED_DATA is a copy of DATA", ms)
    differing = delivered.comparison.differing_fraction
    return _MeasurementSetOutcome(
        mode=CalibrationMode.ALREADY_CALIBRATED,
        flux_scale_known=True,
        measurement_set=ref,
        summary=f"{info.name}: delivered calibrated (no calibrator intents; CORRECTED_DATA differs from DATA in "
        f"{differing:.0%} of the compared visibilities): CORRECTED_DATA was split out and is used as delivered, "
        "its flux scale taken to be the observatory's.",
        qa=[qa.delivered_calibrated_score(differing, info.name)],
        data="data delivered calibrated (CORRECTED_DATA)",
        local_ms=Path(delivered.output_ms),
        store_local=True,
    )


async def _calibrate_from_calibrators(
    context: JobContext, ref: ObjectRef, info: MeasurementSetInfo, plan: CalibrationPlan
) -> _MeasurementSetOutcome:
    ms = await _fetch(context, ref, info)
    step = CalibrationStepResult.model_validate(
        await context.casa(
            "aperture_calibration.steps:calibrate_measurement_set",
            {
                "ms": str(ms),
                "plan": plan.model_dump(mode="json"),
                "tables_dir": str(context.scratch / "tables" / info.name),
                "output": str(context.scratch / "calibrated" / info.name),
            },
        )
    )
    if step.record is None:
        return _delivered_with_intents(ref, info, step, ms)
    record = step.record
    tables = [
        await context.put_directory(f"tables/{Path(table).name}.tar", Path(table)) for table in record.tables
    ]
    return _MeasurementSetOutcome(
        mode=CalibrationMode.CALIBRATED,
        flux_scale_known=plan.flux.scale_known,
        measurement_set=ref,
        summary=calibrated_summary(plan, record),
        qa=[*qa.plan_scores(plan), *record_scores(plan, record)],
        data="data calibrated here from its calibrators",
        local_ms=Path(record.output_ms),
        store_local=True,
        tables=tables,
        stored=tables,
    )


def _delivered_with_intents(
    ref: ObjectRef, info: MeasurementSetInfo, step: CalibrationStepResult, ms: Path
) -> _MeasurementSetOutcome:
    scatter = ", ".join(f"{field.field} {field.scatter_deg:.1f} deg" for field in step.data_phase_scatter)
    worst = max(step.data_phase_scatter, key=lambda field: field.scatter_deg)
    return _MeasurementSetOutcome(
        mode=CalibrationMode.ALREADY_CALIBRATED,
        flux_scale_known=True,
        measurement_set=ref,
        summary=f"{info.name}: delivered calibrated (its DATA are calibrated already: the phase calibrators' "
        f"phases scatter only {scatter} about zero): passed through unchanged, its flux scale taken to be the "
        "observatory's.",
        qa=[qa.delivered_phase_score(worst.field, worst.scatter_deg, info.name)],
        data="data delivered calibrated (DATA)",
        local_ms=ms,
    )


def record_scores(plan: CalibrationPlan, record: CalibrationRecord) -> list[QAScore]:
    name = plan.ms_name
    scores = [
        qa.flagging_score(record.flagged_fraction_after_flagging, record.edge_channel_share, name),
        qa.applycal_flagging_score(record.flagged_fraction_before_applycal, record.flagged_fraction_calibrated, name),
    ]
    antenna_gains = qa.antenna_gains_score(record.gain_outliers, name)
    if antenna_gains is not None:
        scores.append(antenna_gains)
    for statistics in record.solutions:
        scores.append(qa.snr_score(statistics, plan.min_snr, name))
        scores.append(qa.flagged_solutions_score(statistics, name))
    scores.extend(qa.phase_scatter_score(scatter, name) for scatter in record.phase_scatter)
    return scores


def calibrated_summary(plan: CalibrationPlan, record: CalibrationRecord) -> str:
    """What was done to one MS, for a person."""
    phase = ", ".join(f.name for f in plan.phase_calibrators) or "none"
    parts = [
        f"{plan.ms_name}: calibrated from its calibrators (bandpass {plan.bandpass.name}, flux "
        f"{plan.flux.field.name}, phase {phase}; reference antennas {', '.join(record.reference_antennas)})",
        plan.flux.how,
    ]
    if record.derived_flux:
        parts.append(
            "fluxscale derived "
            + ", ".join(
                f"{flux.field} {flux.flux_jy:.4g}"
                + (f" +- {flux.error_jy:.2g}" if flux.error_jy is not None else "")
                + f" Jy (spw {flux.spw_id})"
                for flux in record.derived_flux
            )
        )
    parts.extend(
        f"phase scatter of {s.field} {s.before_deg:.1f} -> {s.after_deg:.2f} deg" for s in record.phase_scatter
    )
    if record.gain_outliers.outliers:
        parts.append(record.gain_outliers.summary())
    parts.extend(missing.message for missing in plan.missing)
    return "; ".join(parts) + "."
