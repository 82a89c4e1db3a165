"""The findcont stage: fetch the calibrated MSs (and an operator's cont.dat, if any), find the continuum
ranges of one target in one spw inside CASA, store cont.dat and the plot as products, score the result."""

import asyncio
import os
from pathlib import Path

from aperture_contracts.continuum import ContinuumCase
from aperture_contracts.events import FindcontResult
from aperture_contracts.jobs import FindcontJob
from aperture_contracts.qa import QAMetric, QAScore
from aperture_shared.errors import BadInput
from aperture_shared.naming import science_stem
from aperture_shared.worker import JobContext, JobOutcome

from aperture_findcont.cont_dat import ContDatEntry, parse_cont_dat
from aperture_findcont.continuum_finder import FinderParameters
from aperture_findcont.steps import FindcontStepResult

# QA per case, in the ALMA pipeline's bands: continuum beside lines is what the later stages need
# (green); all continuum and a noisy spw are usable but worth a look (yellow: a faint line may hide in
# the noise), as is a line forest (little continuum, easily contaminated); no continuum at all is red.
CASE_SCORES = {
    ContinuumCase.LINES_AND_CONTINUUM: 1.0,
    ContinuumCase.ALL_CONTINUUM: 0.6,
    ContinuumCase.NOISY: 0.5,
    ContinuumCase.LINE_FOREST: 0.5,
    ContinuumCase.NO_CONTINUUM: 0.2,
}
LITTLE_CONTINUUM_FRACTION = FinderParameters().line_forest_fraction
LITTLE_CONTINUUM_SCORE = 0.6
# An operator's ranges that include channels findcont calls line: usable (the operator decided), but a
# person should look (blue).
OPERATOR_OVERRIDES_LINES_SCORE = 0.8


def product_stem(job: FindcontJob) -> str:
    """`<mous>.<target>_sci.spw<id>`, the ALMA products' naming."""
    return science_stem(job.mous_id, job.target, [job.spw_id])


def spw_name(job: FindcontJob) -> str | None:
    for ms in job.metadata.measurement_sets:
        for window in ms.spectral_windows:
            if window.spw_id == job.spw_id and window.name:
                return window.name
    return None


def continuum_score(step: FindcontStepResult) -> QAScore:
    continuum = step.continuum
    applies_to = f"{continuum.target} spw {continuum.spw_id}"
    fraction = continuum.continuum_fraction
    if continuum.source == "operator":
        overridden = step.finder_line_channels_selected
        score = OPERATOR_OVERRIDES_LINES_SCORE if overridden else 1.0
        message = f"operator's continuum ranges used ({fraction:.0%} of the spw)" + (
            f"; they include {overridden} channel(s) findcont takes for line" if overridden else ""
        )
    else:
        score = CASE_SCORES[continuum.case]
        if continuum.case is ContinuumCase.LINES_AND_CONTINUUM and fraction < LITTLE_CONTINUUM_FRACTION:
            score = LITTLE_CONTINUUM_SCORE  # one or two broad lines leave little: as risky as a forest
        message = f"{continuum.case.value.replace('_', ' ')}: {fraction:.0%} of the spw is continuum"
        if step.notes:
            message += f" ({step.notes[0]})"
    return QAScore(
        score=score, message=message, metric=QAMetric(name="continuum_fraction", value=round(fraction, 4), unit=""),
        applies_to=applies_to,
    )


async def _operator_entry(job: FindcontJob, context: JobContext) -> ContDatEntry | None:
    """The operator's cont.dat entry for this target and spw, if one was supplied and covers them."""
    if job.operator_cont_dat is None:
        return None
    path = context.scratch / "operator.cont.dat"
    await context.get_file(job.operator_cont_dat, path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise BadInput(f"the operator's cont.dat is not UTF-8 text ({error}); save it as plain text") from error
    return parse_cont_dat(text, source="the operator's cont.dat").find(job.target, job.spw_id, spw_name(job))


async def find_continuum(job: FindcontJob, context: JobContext) -> JobOutcome:
    operator = await _operator_entry(job, context)
    measurement_sets = []
    for index, ref in enumerate(job.measurement_sets):
        into = context.scratch / "measurement_sets" / str(index)
        into.mkdir(parents=True)
        measurement_sets.append(await asyncio.to_thread(context.store.get_directory, ref, into))
    step = FindcontStepResult.model_validate(
        await context.casa(
            "aperture_findcont.steps:find_continuum_in_spw",
            {
                "measurement_sets": [str(path) for path in measurement_sets],
                "target": job.target,
                "spw_id": job.spw_id,
                "output_dir": str(context.scratch / "findcont"),
                # ducc0's threads: as many as CASA may use (one per worker when workers share the cores).
                "threads": context.casa_settings.threads or len(os.sched_getaffinity(0)),
                "operator": None if operator is None else {
                    "all_continuum": operator.all_continuum,
                    "ranges": [[r.low_hz, r.high_hz, r.frame] for r in operator.ranges],
                },
            },
        )
    )
    stem = product_stem(job)
    cont_dat = await context.put_file(f"{stem}.cont.dat", Path(step.cont_dat), "text/plain", product=True)
    plot = await context.put_file(f"{stem}.findcont.png", Path(step.plot), "image/png", product=True)
    record = await context.put_file(f"{stem}.findcont.json", Path(step.record), "application/json")
    return JobOutcome(
        result=FindcontResult(continuum=step.continuum, cont_dat=cont_dat, plot=plot),
        outputs=[cont_dat, plot, record],
        qa=[continuum_score(step)],
    )
