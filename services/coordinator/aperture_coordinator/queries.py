"""What the API shows: MOUS summaries and details read from the database (never written here)."""

from aperture_contracts.api import AttemptView, JobView, MousDetail, MousList, MousSummary, ProductView
from aperture_contracts.enums import JobState, MousState
from aperture_contracts.metadata import MousMetadata
from aperture_contracts.qa import QAScore
from aperture_contracts.storage import ObjectRef
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from aperture_coordinator.job_messages import products_prefix
from aperture_coordinator.models import Job, Mous, StoredObject


def summary_of(mous: Mous) -> MousSummary:
    return MousSummary(
        mous_id=mous.id, state=mous.state, reason=mous.reason, run=mous.run, submitted_at=mous.submitted_at,
        updated_at=mous.updated_at, package_name=mous.package_name,
    )


def mous_summary(session: Session, mous_id: str) -> MousSummary | None:
    mous = session.get(Mous, mous_id)
    return summary_of(mous) if mous is not None else None


def list_mous(session: Session, *, offset: int, limit: int, state: MousState | None) -> MousList:
    """Newest submissions first."""
    query = select(Mous)
    count = select(func.count()).select_from(Mous)
    if state is not None:
        query = query.where(Mous.state == state)
        count = count.where(Mous.state == state)
    rows = session.scalars(query.order_by(Mous.submitted_at.desc(), Mous.id).offset(offset).limit(limit))
    return MousList(items=[summary_of(row) for row in rows], total=session.scalar(count) or 0)


def _attempt_view(job: Job) -> list[AttemptView]:
    return [
        AttemptView(
            attempt=attempt.attempt, worker=attempt.worker, started_at=attempt.started_at,
            ended_at=attempt.ended_at, deliveries=attempt.deliveries, outcome=attempt.outcome,
            error_class=attempt.error_class, error_message=attempt.error_message,
        )
        for attempt in job.attempts
    ]


def _failure_sentences(jobs: list[Job]) -> list[str]:
    failures = [
        (attempt.ended_at, job, attempt)
        for job in jobs
        for attempt in job.attempts
        if attempt.outcome == JobState.FAILED and attempt.ended_at is not None
    ]
    failures.sort(key=lambda item: (item[0], item[1].pk), reverse=True)
    return [
        f"{ended:%Y-%m-%d %H:%M:%S} UTC: job {job.job_id} attempt {attempt.attempt} failed "
        f"({attempt.error_class.value if attempt.error_class else 'unknown'}): {attempt.error_message}"
        for ended, job, attempt in failures
    ]


def _qa_scores(jobs: list[Job]) -> list[QAScore]:
    scores: list[QAScore] = []
    for job in jobs:
        if job.state == JobState.SUCCEEDED and job.result:
            scores.extend(QAScore.model_validate(score) for score in job.result.get("qa", []))
    return scores


def mous_detail(session: Session, mous_id: str) -> MousDetail | None:
    """The MOUS with its current run's jobs; products carry no download links yet (the API signs them)."""
    mous = session.get(Mous, mous_id)
    if mous is None:
        return None
    jobs = list(
        session.scalars(
            select(Job)
            .where(Job.mous_id == mous.id, Job.run == mous.run)
            .order_by(Job.pk)
            .options(selectinload(Job.depends_on), selectinload(Job.attempts))
        )
    )
    prefix = products_prefix(mous.id)
    # The current run's products only: an object an earlier run wrote under a name this run does not use
    # is still in storage, but it is not a product of what the MOUS now is.
    products = session.scalars(
        select(StoredObject)
        .join(Job, StoredObject.job_pk == Job.pk)
        .where(
            StoredObject.mous_id == mous.id, StoredObject.key.startswith(prefix, autoescape=True),
            Job.run == mous.run,
        )
        .order_by(StoredObject.key)
    )
    metadata: MousMetadata | None = None
    if mous.observation is not None:
        try:
            metadata = MousMetadata.model_validate(mous.observation)
        except ValidationError:
            metadata = None  # written by an older contract version; the jobs still show what happened
    return MousDetail(
        **summary_of(mous).model_dump(),
        metadata=metadata,
        jobs=[
            JobView(
                job_id=job.job_id, stage=job.stage, kind=job.kind, target=job.target, spw_id=job.spw_id,
                state=job.state, reason=job.reason, depends_on=[dep.job_id for dep in job.depends_on],
                attempts=_attempt_view(job),
            )
            for job in jobs
        ],
        errors=_failure_sentences(jobs),
        qa=_qa_scores(jobs),
        products=[
            ProductView(
                name=row.key.removeprefix(prefix),
                object=ObjectRef(
                    key=row.key, sha256=row.sha256, size=row.size, content_type=row.content_type
                ),
            )
            for row in products
        ],
    )
