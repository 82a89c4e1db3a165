"""The run ledger read back: the `attempts` rows with their job and MOUS, filtered, newest dispatch first,
and a summary of them (counts by outcome and error class, peak memory percentiles per stage).

Read only; the coordinator writes the rows as it dispatches jobs and applies their events (state.py). A
page is one query joining attempts, jobs and MOUS (and the request version, for the request's id) plus one
count; the summary is one grouped count plus one query of the memory figures.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVarTuple

from aperture_contracts.enums import ErrorClass, JobState, Stage
from aperture_contracts.ledger import AttemptOutcome, LedgerEntry, LedgerPage, LedgerSummary, StageMemory
from sqlalchemy import ColumnElement, Row, Select, func, or_, select
from sqlalchemy.orm import Session

from aperture_coordinator.models import Attempt, Campaign, Job, Mous, RequestVersion

# The memory percentiles are computed here, not in SQL (SQLite has no percentile function): over at most
# this many figures, the newest, which keeps a summary of a long campaign's ledger cheap.
PEAK_MEMORY_LIMIT = 50_000

Columns = TypeVarTuple("Columns")


@dataclass(frozen=True)
class LedgerFilter:
    """Which attempts to read; every condition given must hold. `campaign` is a campaign's id or name and
    matches the jobs of the MOUS runs it started; `since` and `until` bound the dispatch time [since, until)."""

    mous_id: str | None = None
    campaign: str | None = None
    stage: Stage | None = None
    outcome: AttemptOutcome | None = None
    error_class: ErrorClass | None = None
    worker: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    software_version: str | None = None


def _is_current_run_job() -> ColumnElement[bool]:
    # mous.campaign_id is the campaign of the current run only: neither earlier runs' jobs nor an imaging
    # request's jobs are that campaign's work.
    return (Job.run == Mous.run) & Job.request_version_pk.is_(None)


def _conditions(where: LedgerFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if where.mous_id is not None:
        conditions.append(Job.mous_id == where.mous_id)
    if where.campaign is not None:
        named = select(Campaign.id).where(Campaign.name == where.campaign).scalar_subquery()
        conditions.append(or_(Mous.campaign_id == where.campaign, Mous.campaign_id == named))
        conditions.append(_is_current_run_job())
    if where.stage is not None:
        conditions.append(Job.stage == where.stage)
    if where.outcome is not None:
        conditions.append(Attempt.outcome == JobState(where.outcome.value))
    if where.error_class is not None:
        conditions.append(Attempt.error_class == where.error_class)
    if where.worker is not None:
        conditions.append(Attempt.worker == where.worker)
    if where.since is not None:
        conditions.append(Attempt.dispatched_at >= where.since)
    if where.until is not None:
        conditions.append(Attempt.dispatched_at < where.until)
    if where.software_version is not None:
        conditions.append(Attempt.software_version == where.software_version)
    return conditions


def _matching(query: Select[*Columns], where: LedgerFilter) -> Select[*Columns]:
    """`query` over attempts joined to their job and MOUS, narrowed by the filter."""
    joined = query.join(Job, Attempt.job_pk == Job.pk).join(Mous, Job.mous_id == Mous.id)
    return joined.where(*_conditions(where))


_ENTRY_COLUMNS = (
    Job.mous_id, Job.run, Job.job_id, Job.stage, Job.kind, Job.target, Job.spw_id, Job.params,
    Attempt.attempt, Attempt.worker, Attempt.dispatched_at, Attempt.started_at, Attempt.ended_at,
    Attempt.peak_memory_mb, Attempt.software_version, Attempt.memory_class, Attempt.outcome, Attempt.error_class,
    Attempt.error_message, Attempt.log_key,
    Job.request_version_pk, Mous.run.label("current_run"), Mous.campaign_id, RequestVersion.request_id,
)


def _entry(row: Row[Any]) -> LedgerEntry:
    duration = (row.ended_at - row.started_at).total_seconds() if row.started_at and row.ended_at else None
    of_current_run = row.run == row.current_run and row.request_version_pk is None
    return LedgerEntry(
        mous_id=row.mous_id, run=row.run, job_id=row.job_id, stage=row.stage, kind=row.kind, target=row.target,
        spw_id=row.spw_id, attempt=row.attempt, worker=row.worker, dispatched_at=row.dispatched_at,
        started_at=row.started_at, ended_at=row.ended_at, duration_s=duration, peak_memory_mb=row.peak_memory_mb,
        software_version=row.software_version, memory_class=row.memory_class,
        outcome=None if row.outcome is None else AttemptOutcome(row.outcome.value), error_class=row.error_class,
        message=row.error_message, log_key=row.log_key,
        campaign_id=row.campaign_id if of_current_run else None, request=row.request_id,
        inputs=row.params or {},
    )


def ledger_page(session: Session, where: LedgerFilter, *, offset: int, limit: int) -> LedgerPage:
    """The attempts matching `where`, newest dispatch first, and how many match in all."""
    query = _matching(select(*_ENTRY_COLUMNS).select_from(Attempt), where).outerjoin(
        RequestVersion, Job.request_version_pk == RequestVersion.pk
    )
    rows = session.execute(
        query.order_by(Attempt.dispatched_at.desc(), Attempt.pk.desc()).offset(offset).limit(limit)
    )
    entries = [_entry(row) for row in rows]
    total = session.scalar(_matching(select(func.count(Attempt.pk)).select_from(Attempt), where)) or 0
    return LedgerPage(entries=entries, total=total, offset=offset, limit=limit)


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """The figure `fraction` of the way through `ordered` (sorted, not empty), interpolating linearly between
    its two nearest neighbours (numpy's default, so that p50 of an even count is the mean of the middle two)."""
    position = fraction * (len(ordered) - 1)
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


def stage_memory(figures: Sequence[tuple[Stage, float]]) -> list[StageMemory]:
    """p50, p95 and max of the (stage, peak MB) figures, per stage in pipeline order."""
    by_stage: dict[Stage, list[float]] = {}
    for stage, peak_mb in figures:
        by_stage.setdefault(stage, []).append(peak_mb)
    summaries = []
    for stage in Stage:
        ordered = sorted(by_stage.get(stage, []))
        if ordered:
            summaries.append(StageMemory(
                stage=stage, attempts=len(ordered), p50_mb=percentile(ordered, 0.5),
                p95_mb=percentile(ordered, 0.95), max_mb=ordered[-1],
            ))
    return summaries


def ledger_summary(session: Session, where: LedgerFilter, *, memory_limit: int = PEAK_MEMORY_LIMIT) -> LedgerSummary:
    """The attempts matching `where` counted by outcome and by error class, and their peak memory per stage
    (over the newest `memory_limit` figures)."""
    counts = session.execute(_matching(
        select(Attempt.outcome, Attempt.error_class, func.count(Attempt.pk)).select_from(Attempt), where
    ).group_by(Attempt.outcome, Attempt.error_class))
    by_outcome: dict[AttemptOutcome, int] = {}
    by_error_class: dict[ErrorClass, int] = {}
    attempts = unfinished = 0
    for outcome, error_class, count in counts:
        attempts += count
        if outcome is None:
            unfinished += count
        else:
            key = AttemptOutcome(outcome.value)
            by_outcome[key] = by_outcome.get(key, 0) + count
        if error_class is not None:
            by_error_class[error_class] = by_error_class.get(error_class, 0) + count
    newest = session.execute(
        _matching(select(Job.stage, Attempt.peak_memory_mb).select_from(Attempt), where)
        .where(Attempt.peak_memory_mb.is_not(None))
        .order_by(Attempt.dispatched_at.desc(), Attempt.pk.desc())
        .limit(memory_limit + 1)
    ).all()
    figures = [(stage, peak_mb) for stage, peak_mb in newest[:memory_limit] if peak_mb is not None]
    return LedgerSummary(
        attempts=attempts,
        by_outcome={outcome: by_outcome[outcome] for outcome in AttemptOutcome if outcome in by_outcome},
        unfinished=unfinished,
        by_error_class=dict(sorted(by_error_class.items(), key=lambda item: (-item[1], item[0].value))),
        peak_memory=stage_memory(figures),
        peak_memory_limit=memory_limit,
        peak_memory_truncated=len(newest) > memory_limit,
    )
