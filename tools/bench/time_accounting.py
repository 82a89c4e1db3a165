"""Where a system run's time goes: CASA task calls, other work in the CASA processes, CASA process start
and import, the workers' own work around CASA (transfers, scratch, events, logs), and time when no job
ran at all (the package upload, dispatch, queueing)."""

from dataclasses import dataclass
from datetime import datetime

from system_run import JobRecord, SystemRun


@dataclass
class TimeAccount:
    """Seconds summed over the run's jobs (with N workers busy at once they add up to more than the wall)."""

    mous_wall_s: float
    imaging_wall_s: float
    jobs_s: float  # each job from its start event to its completion event, as the coordinator recorded
    task_calls_s: float  # the recorded casatasks calls
    casa_steps_s: float  # the CASA processes, from handing each its step to reading its result
    startup_s: float | None  # of those: process start and CASA import (None: the runner did not say)
    idle_s: float  # MOUS wall time during which no job was running
    steps_missing: int  # jobs that ran CASA but whose step figures were not found in the worker logs

    @property
    def non_task_s(self) -> float | None:
        """Work in the CASA processes that is no task call: casatools, ducc0, statistics, unpacking."""
        if self.startup_s is None:
            return None
        return self.casa_steps_s - self.startup_s - self.task_calls_s

    @property
    def worker_s(self) -> float:
        """The workers' work outside the CASA processes: downloads, uploads, scratch, events, logs."""
        return self.jobs_s - self.casa_steps_s

    @property
    def accounted_s(self) -> float:
        """The time the fractions are shares of: the jobs' time plus the time when none ran."""
        return self.jobs_s + self.idle_s

    @property
    def outside_task_calls(self) -> float:
        return 1.0 - self.task_calls_s / self.accounted_s

    @property
    def overhead_s(self) -> float | None:
        """Time spent on no computation at all: process start and import, the workers' own work, idle."""
        if self.startup_s is None:
            return None
        return self.startup_s + self.worker_s + self.idle_s


def account(run: SystemRun) -> TimeAccount:
    jobs = run.jobs
    steps = [step for job in jobs for step in job.steps]
    startups = [step.startup_s for step in steps]
    imaging = [job for job in jobs if job.stage == "imaging"]
    return TimeAccount(
        mous_wall_s=run.wall_s,
        imaging_wall_s=_span_s(imaging),
        jobs_s=sum(job.wall_s for job in jobs),
        task_calls_s=sum(job.task_s for job in jobs),
        casa_steps_s=sum(step.duration_s for step in steps),
        startup_s=sum(s for s in startups if s is not None) if startups and None not in startups else None,
        idle_s=run.wall_s - _covered_s(jobs, run.submitted_at),
        steps_missing=sum(1 for job in jobs if job.calls and not job.steps),
    )


def _span_s(jobs: list[JobRecord]) -> float:
    if not jobs:
        return 0.0
    return (max(job.ended_at for job in jobs) - min(job.started_at for job in jobs)).total_seconds()


def _covered_s(jobs: list[JobRecord], since: datetime) -> float:
    """Seconds after `since` during which at least one job was running (the union of their intervals)."""
    covered = 0.0
    reached = since
    for job in sorted(jobs, key=lambda job: job.started_at):
        start = max(job.started_at, reached)
        if job.ended_at > start:
            covered += (job.ended_at - start).total_seconds()
            reached = job.ended_at
    return covered
