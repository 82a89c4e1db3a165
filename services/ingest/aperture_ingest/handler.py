"""The ingest/restore stage: fetch the MS package, check and describe it with CASA (restoring it when it
carries calibration tables), store each MS as one archive object and the ingest report as a product."""

from datetime import UTC, datetime
from pathlib import Path

from aperture_contracts.events import IngestResult
from aperture_contracts.ids import mous_key
from aperture_contracts.jobs import IngestJob
from aperture_contracts.metadata import MeasurementSetInfo
from aperture_contracts.qa import QAMetric, QAScore
from aperture_contracts.reports import IngestReport
from aperture_shared.worker import JobContext, JobOutcome

from aperture_ingest.steps import IngestStepResult

# Flagged fractions up to this are normal (shadowing, edges); the score falls linearly above it and
# reaches 0 at FLAGGED_ALL_BAD.
FLAGGED_NORMAL = 0.05
FLAGGED_ALL_BAD = 0.6


def flagging_score(info: MeasurementSetInfo) -> QAScore:
    fraction = info.flagged_fraction
    if fraction <= FLAGGED_NORMAL:
        score = 1.0
    else:
        score = max(0.0, 1.0 - (fraction - FLAGGED_NORMAL) / (FLAGGED_ALL_BAD - FLAGGED_NORMAL))
    return QAScore(
        score=round(score, 3),
        message=f"{fraction:.1%} of the visibilities are flagged",
        metric=QAMetric(name="flagged_fraction", value=round(fraction, 5), unit=""),
        applies_to=info.name,
    )


async def ingest(job: IngestJob, context: JobContext) -> JobOutcome:
    package = context.scratch / "package" / Path(job.package_name).name
    package.parent.mkdir()
    await context.get_file(job.package, package)
    step = IngestStepResult.model_validate(
        await context.casa(
            "aperture_ingest.steps:ingest_package",
            {
                "package": str(package),
                "unpack_dir": str(context.scratch / "unpacked"),
                "output_dir": str(context.scratch / "restored"),
            },
        )
    )
    stored_ms = [
        await context.put_directory(f"measurement_sets/{Path(path).name}.tar", Path(path))
        for path in step.measurement_sets
    ]
    cont_dat = None
    if step.operator_cont_dat is not None:
        cont_dat = await context.put_file("operator/cont.dat", Path(step.operator_cont_dat), "text/plain")
    flux_csv = None
    if step.operator_flux_csv is not None:
        flux_csv = await context.put_file("operator/flux.csv", Path(step.operator_flux_csv), "text/csv")
    qa = [flagging_score(info) for info in step.metadata.measurement_sets]
    report = IngestReport(
        mous_id=job.mous_id, package=job.package, package_name=job.package_name, created_at=datetime.now(UTC),
        metadata=step.metadata, restored=step.restored, applied_tables=step.applied_tables, qa=qa,
        casa_calls=context.casa_calls,
    )
    report_path = context.scratch / "ingest_report.json"
    report_path.write_text(report.model_dump_json(indent=2))
    report_ref = await context.put_file(
        f"{mous_key(job.mous_id)}.ingest_report.json", report_path, "application/json", product=True
    )
    return JobOutcome(
        result=IngestResult(
            metadata=step.metadata, measurement_sets=stored_ms, report=report_ref,
            restored_tables=step.applied_tables, operator_cont_dat=cont_dat, operator_flux_csv=flux_csv,
            flux_models=step.flux_models,
        ),
        outputs=[*stored_ms, report_ref, *(ref for ref in (cont_dat, flux_csv) if ref is not None)],
        qa=qa,
    )
