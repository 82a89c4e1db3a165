"""An MOUS's state and the sentence that explains it, derived from the states of its current run's jobs.

In order of precedence:
- FAILED when any job failed for good (the first failure's sentence; jobs that do not depend on it may
  still run to completion, so that one run reports every problem of the data, not just the first);
- CANCELLED when a person cancelled it;
- COMPLETED when every job succeeded;
- before ingest succeeded: RECEIVED (ingest queued), INGESTING (ingest running or waiting to retry), or
  WAITING_FOR_SERVICE (the ingest service is not deployed);
- after it: PROCESSING while any job is queued, running or waiting to retry, else WAITING_FOR_SERVICE
  when everything that can run is done and the rest waits on stages that are not deployed.
"""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from aperture_contracts.enums import JobState, MousState, Stage

ACTIVE_JOB_STATES = frozenset({JobState.DISPATCHED, JobState.RUNNING, JobState.RETRY_WAIT})


@dataclass(frozen=True)
class JobStatus:
    job_id: str
    stage: Stage
    state: JobState
    reason: str = ""


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _and_list(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def derive_mous_state(jobs: Sequence[JobStatus], *, cancelled: bool) -> tuple[MousState, str]:
    states = Counter(job.state for job in jobs)
    active = sum(states[state] for state in ACTIVE_JOB_STATES)

    failed = [job for job in jobs if job.state == JobState.FAILED]
    if failed:
        reason = failed[0].reason
        if len(failed) > 1:
            reason += f" ({_plural(len(failed) - 1, 'other job')} failed too: see the job list)"
        if active and not cancelled:
            does, is_ = ("does", "is") if active == 1 else ("do", "are")
            reason += f" {_plural(active, 'job')} that {does} not depend on it {is_} still running or queued."
        return MousState.FAILED, reason
    if cancelled:
        return MousState.CANCELLED, "cancelled by request; submit it again with rerun=true to process it anew"
    if not jobs:
        return MousState.RECEIVED, "no jobs are planned yet"
    if states[JobState.SUCCEEDED] == len(jobs):
        return MousState.COMPLETED, f"all {len(jobs)} jobs succeeded"

    ingest = next((job for job in jobs if job.stage == Stage.INGEST), None)
    if ingest is not None and ingest.state != JobState.SUCCEEDED:
        if ingest.state == JobState.RUNNING:
            return MousState.INGESTING, "ingest is checking and describing the package"
        if ingest.state == JobState.RETRY_WAIT:
            return MousState.INGESTING, ingest.reason
        if ingest.state == JobState.WAITING_FOR_SERVICE:
            return MousState.WAITING_FOR_SERVICE, ingest.reason
        return MousState.RECEIVED, "queued for the ingest service"

    done = states[JobState.SUCCEEDED]
    if active:
        parts = [
            f"{states[state]} {label}"
            for state, label in (
                (JobState.RUNNING, "running"),
                (JobState.DISPATCHED, "queued"),
                (JobState.RETRY_WAIT, "waiting to retry"),
            )
            if states[state]
        ]
        return MousState.PROCESSING, f"{done} of {len(jobs)} jobs done; {_and_list(parts)}"

    waiting = [job for job in jobs if job.state == JobState.WAITING_FOR_SERVICE]
    if waiting:
        stages = list(dict.fromkeys(job.stage.value for job in waiting))
        several = len(stages) > 1
        services = f"the {_and_list(stages)} service{'s are' if several else ' is'} not deployed yet"
        pronoun = "them" if several else "it"
        waits = f"{_plural(len(waiting), 'job')} wait{'s' if len(waiting) == 1 else ''} for {pronoun}"
        behind = states[JobState.PLANNED]
        after = f", {behind} more come after {'them' if len(waiting) > 1 else 'it'}" if behind else ""
        return (
            MousState.WAITING_FOR_SERVICE,
            f"everything that can run is done ({done} of {len(jobs)} jobs): {services} ({waits}{after})",
        )
    return MousState.PROCESSING, f"{done} of {len(jobs)} jobs done; {states[JobState.PLANNED]} planned"
