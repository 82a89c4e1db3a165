"""A campaign's report: where its members are, why the failed ones failed, how fast it goes and when it
should end, and what it has produced. Read from the campaign's members (never written here).

Time per MOUS is wall time, from the campaign's submission of the MOUS to the moment its run completed:
queueing included, since that is what the campaign's length is made of. The expected completion comes
from the rate members ended (completed or failed: both leave the queue) in the last hour, else since the
first submission; a paused or cancelled campaign has none.

Categories (campaign_categories.py) are counted by what is known of each member now: the attributes given
up front, completed by its package's size and its MOUS's metadata; a sampled campaign's report says per
category how many members were in the sample, how many of those failed, and how many are held.
"""

import statistics
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta

from aperture_contracts.campaigns import (
    CampaignReport,
    CampaignState,
    CategoryCount,
    Durations,
    FailureClass,
    FailureExample,
    MemberAttributes,
    MemberState,
    SizeBucket,
    Throughput,
)
from aperture_contracts.enums import ErrorClass
from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from aperture_coordinator.campaign_categories import category_key
from aperture_coordinator.campaigns import load_campaign, view_of
from aperture_coordinator.models import CampaignMember, Job, StoredObject

EXAMPLES_PER_CLASS = 3
HOUR = timedelta(hours=1)
MB, GB = 10**6, 10**9
# Package sizes that take visibly different times to process; only buckets with members are shown.
SIZE_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("< 100 MB", 0, 100 * MB),
    ("100 MB - 1 GB", 100 * MB, GB),
    ("1 - 10 GB", GB, 10 * GB),
    ("10 - 100 GB", 10 * GB, 100 * GB),
    (">= 100 GB", 100 * GB, None),
)


def durations(seconds: Sequence[float]) -> Durations:
    if not seconds:
        return Durations(count=0)
    return Durations(count=len(seconds), median_s=statistics.median(seconds), mean_s=statistics.fmean(seconds))


def by_size(completed: Sequence[tuple[int | None, float]]) -> list[SizeBucket]:
    """Durations per package-size bucket, for the (size, seconds) of each completed member."""
    buckets = []
    for label, low, high in SIZE_BUCKETS:
        seconds = [s for size, s in completed if size is not None and size >= low and (high is None or size < high)]
        if seconds:
            buckets.append(SizeBucket(label=label, min_bytes=low, max_bytes=high, **durations(seconds).model_dump()))
    return buckets


def failure_classes(session: Session, campaign_id: str) -> list[FailureClass]:
    """Failed members by error class, most frequent first, with the earliest few of each as examples."""
    rows = session.execute(
        select(CampaignMember.error_class, CampaignMember.mous_id, CampaignMember.failed_job, CampaignMember.message)
        .where(CampaignMember.campaign_id == campaign_id, CampaignMember.state == MemberState.FAILED)
        .order_by(CampaignMember.ended_at, CampaignMember.pk)
    )
    counts: dict[ErrorClass, int] = {}
    examples: dict[ErrorClass, list[FailureExample]] = {}
    for error_class, mous_id, job_id, message in rows:
        error_class = error_class or ErrorClass.INTERNAL
        counts[error_class] = counts.get(error_class, 0) + 1
        shown = examples.setdefault(error_class, [])
        if len(shown) < EXAMPLES_PER_CLASS:
            shown.append(FailureExample(mous_id=mous_id, job_id=job_id, message=message))
    order = sorted(counts, key=lambda error_class: (-counts[error_class], error_class.value))
    return [FailureClass(error_class=c, count=counts[c], examples=examples[c]) for c in order]


def products_of(session: Session, campaign_id: str) -> tuple[int, int]:
    """Count and bytes of the products of the completed members' current runs."""
    count, total = session.execute(
        select(func.count(), func.coalesce(func.sum(StoredObject.size), 0))
        .select_from(CampaignMember)
        .join(Job, and_(Job.mous_id == CampaignMember.mous_id, Job.run == CampaignMember.run))
        .join(StoredObject, StoredObject.job_pk == Job.pk)
        .where(
            CampaignMember.campaign_id == campaign_id, CampaignMember.state == MemberState.COMPLETED,
            Job.request_version_pk.is_(None), StoredObject.kind == "product",
        )
    ).one()
    return int(count), int(total)


def categories_of(session: Session, campaign_id: str) -> list[CategoryCount]:
    """Members per category as known now, most members first."""
    rows = session.execute(
        select(CampaignMember.attributes, CampaignMember.package_size, CampaignMember.state, CampaignMember.sampled,
               CampaignMember.held)
        .where(CampaignMember.campaign_id == campaign_id)
    )
    states: dict[str, Counter[MemberState]] = {}
    figures: dict[str, Counter[str]] = {}
    for attributes, package_size, state, sampled, held in rows:
        known = MemberAttributes.model_validate(attributes)
        if known.size_bytes is None and package_size is not None:  # a member submitted before it had attributes
            known = known.model_copy(update={"size_bytes": package_size})
        category = category_key(known)
        states.setdefault(category, Counter())[state] += 1
        counted = figures.setdefault(category, Counter())
        counted["sampled"] += sampled
        counted["sample_failed"] += sampled and state is MemberState.FAILED
        counted["held"] += held and state is MemberState.PENDING
    order = sorted(states, key=lambda category: (-states[category].total(), category))
    return [
        CategoryCount(
            category=category, members={state: states[category][state] for state in MemberState},
            total=states[category].total(), sampled=figures[category]["sampled"],
            sample_failed=figures[category]["sample_failed"], held=figures[category]["held"],
        )
        for category in order
    ]


def _per_hour(count: int, span: timedelta) -> float | None:
    """None when no time has passed to measure a rate over."""
    return count / (span / HOUR) if span > timedelta(0) else None


def report(session: Session, reference: str, now: datetime) -> CampaignReport:
    campaign = load_campaign(session, reference)
    view = view_of(session, campaign)
    rows = list(session.execute(
        select(CampaignMember.state, CampaignMember.package_size, CampaignMember.submitted_at,
               CampaignMember.ended_at)
        .where(CampaignMember.campaign_id == campaign.id, CampaignMember.submitted_at.is_not(None))
    ))
    completed = [
        (size, max(0.0, (ended - submitted).total_seconds()))
        for state, size, submitted, ended in rows
        if state is MemberState.COMPLETED and submitted is not None and ended is not None
    ]
    ends = [(state, ended) for state, _size, _submitted, ended in rows
            if state in (MemberState.COMPLETED, MemberState.FAILED) and ended is not None]
    remaining = view.members[MemberState.PENDING] + view.members[MemberState.SUBMITTED]
    first = min((submitted for _state, _size, submitted, _ended in rows if submitted is not None), default=None)
    # Once nothing is left the campaign's span ends with its last member, not at the report's time.
    last = now if remaining or not ends else max(ended for _state, ended in ends)
    span = last - first if first is not None else timedelta(0)
    completed_last_hour = sum(1 for state, ended in ends if state is MemberState.COMPLETED and ended > now - HOUR)
    ended_last_hour = sum(1 for _state, ended in ends if ended > now - HOUR)
    rate = _per_hour(ended_last_hour, HOUR) or _per_hour(len(ends), span)
    expected = None
    if remaining and rate and campaign.state is CampaignState.ACTIVE:
        expected = now + HOUR * (remaining / rate)
    products, product_bytes = products_of(session, campaign.id)
    return CampaignReport(
        campaign=view,
        failures=failure_classes(session, campaign.id),
        throughput=Throughput(
            last_hour=float(completed_last_hour),
            overall_per_hour=_per_hour(sum(1 for state, _ended in ends if state is MemberState.COMPLETED), span),
        ),
        time_per_mous=durations([seconds for _size, seconds in completed]),
        time_per_mous_by_size=by_size(completed),
        remaining=remaining,
        expected_completion_at=expected,
        products=products,
        product_bytes=product_bytes,
        generated_at=now,
        categories=categories_of(session, campaign.id),
    )
