"""Which size of worker a job goes to.

Each stage has one queue per memory class (topology.job_queue); the deployment says which classes it runs,
how much memory a CASA process of each may hold (APERTURE_MEMORY_CLASSES_MB, e.g.
{"standard": 8192, "large": 65536}) and which stages have workers of the larger classes
(APERTURE_MEMORY_CLASS_STAGES, default imaging: the stage whose memory grows with its product); the other
stages' jobs always go to the standard class. A job goes to the smallest deployed class whose memory fits
its estimate with a margin; without an estimate, to the smallest.

The estimate is measured, not modelled: the largest peak memory the same job reached in earlier runs of
the MOUS (a campaign's retry, a re-submission), and the limit it hit when it ran out of memory. A job that
runs out of memory gets one more attempt on the next larger class, if one is deployed; out of memory on
the largest class is final (the retry policy in retries.py).
"""

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aperture_contracts.enums import ErrorClass, MemoryClass, Stage
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from aperture_coordinator.models import Attempt, Job

# Peaks vary a little from run to run (CASA's caches, the moment the worker samples them).
ESTIMATE_MARGIN = 1.2
_RUN_PREFIX = re.compile(r"^r\d+\.")


@dataclass(frozen=True)
class MemoryClasses:
    """The deployed classes and the memory of each (MB)."""

    memory_mb: Mapping[MemoryClass, int]
    stages: frozenset[Stage] = frozenset({Stage.IMAGING})  # the stages with workers of every class

    def __post_init__(self) -> None:
        if MemoryClass.STANDARD not in self.memory_mb:
            raise ValueError("the standard memory class must be deployed (APERTURE_MEMORY_CLASSES_MB)")

    def deployed(self, stage: Stage) -> list[MemoryClass]:
        """The classes `stage` has workers of, smallest first (the enum's order)."""
        if stage not in self.stages:
            return [MemoryClass.STANDARD]
        return [memory_class for memory_class in MemoryClass if memory_class in self.memory_mb]

    def for_estimate(self, stage: Stage, estimate_mb: float | None) -> MemoryClass:
        """The smallest class that fits `estimate_mb` with the margin; the largest when none does."""
        classes = self.deployed(stage)
        if estimate_mb is None:
            return classes[0]
        for memory_class in classes:
            if estimate_mb * ESTIMATE_MARGIN <= self.memory_mb[memory_class]:
                return memory_class
        return classes[-1]

    def after_out_of_memory(self, stage: Stage, current: MemoryClass) -> MemoryClass | None:
        """The next class of `stage` with more memory than `current`, or None when there is none."""
        floor = self.memory_mb.get(current, 0)
        larger = [memory_class for memory_class in self.deployed(stage) if self.memory_mb[memory_class] > floor]
        return larger[0] if larger else None


def job_identity(job_id: str) -> str:
    """What stays the same for one job from run to run: its id without the run prefix (r2.imaging... ->
    imaging...)."""
    return _RUN_PREFIX.sub("", job_id)


def estimates_from_earlier_runs(
    session: Session, mous_id: str, run: int, classes: MemoryClasses
) -> dict[str, float]:
    """Per job identity, the most memory an attempt of it needed in an earlier run of the MOUS: its peak,
    or, when it ran out of memory, at least its class's limit (the peak at the kill says only 'more')."""
    rows = session.execute(
        select(Job.job_id, Attempt.memory_class, Attempt.error_class, func.max(Attempt.peak_memory_mb))
        .join(Attempt, Attempt.job_pk == Job.pk)
        .where(Job.mous_id == mous_id, Job.run < run, Job.request_version_pk.is_(None))
        .group_by(Job.job_id, Attempt.memory_class, Attempt.error_class)
    )
    needed: dict[str, float] = {}
    for job_id, memory_class, error_class, peak in rows:
        figure = peak or 0.0
        if error_class == ErrorClass.OUT_OF_MEMORY:
            limit = classes.memory_mb.get(memory_class, 0)
            figure = max(figure, limit * 1.01)  # just over the limit: the class that failed does not fit
        identity = job_identity(job_id)
        if figure > 0:
            needed[identity] = max(needed.get(identity, 0.0), figure)
    return needed


def assign_memory_classes(
    session: Session, mous_id: str, run: int, jobs: Sequence[Job], classes: MemoryClasses
) -> None:
    """Give new jobs of a run their estimate (when an earlier run measured one) and their class."""
    estimates = estimates_from_earlier_runs(session, mous_id, run, classes) if run > 1 else {}
    for job in jobs:
        job.estimated_memory_mb = estimates.get(job_identity(job.job_id))
        job.memory_class = classes.for_estimate(job.stage, job.estimated_memory_mb)
