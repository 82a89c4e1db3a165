"""Sample first: a campaign with `sample_per_category` runs that many members of each category, then holds
the rest until an operator, having looked at the samples' results, releases their categories.

Members are placed when they are added (campaigns.py submits): of a category not released and holding
none yet, the first `sample_per_category` (in the order given) are its sample, the others are held; members
of a released category run at once. The feeder submits only members not held, and once none of those is
pending or in flight while some are held, the campaign awaits validation (campaigns.py). A member keeps the
category it was added in for all of this, even when its metadata later puts it in a more precise one.
"""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from aperture_contracts.campaigns import MemberState
from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.orm import Session

from aperture_coordinator.campaign_sources import CampaignProblem
from aperture_coordinator.models import Campaign, CampaignMember

SHOWN_CATEGORIES = 5  # in an error naming the held categories


@dataclass(frozen=True)
class Placement:
    sampled: bool
    held: bool


RUN_AT_ONCE = Placement(sampled=False, held=False)


def _by_category(session: Session, campaign_id: str) -> dict[str, Counter[str]]:
    """Per category: how many of its members were sampled, are held, or were released (neither)."""
    rows = session.execute(
        select(CampaignMember.category, CampaignMember.sampled, CampaignMember.held, func.count())
        .where(CampaignMember.campaign_id == campaign_id)
        .group_by(CampaignMember.category, CampaignMember.sampled, CampaignMember.held)
    )
    counts: dict[str, Counter[str]] = {}
    for category, sampled, held, count in rows:
        kind = "sampled" if sampled else "held" if held else "released"
        counts.setdefault(category, Counter())[kind] += count
    return counts


def place_members(session: Session, campaign: Campaign, categories: Sequence[str]) -> list[Placement]:
    """Whether each new member (by its category, in order) is sampled, held or run at once."""
    if campaign.sample_per_category is None:
        return [RUN_AT_ONCE] * len(categories)
    counts = _by_category(session, campaign.id)
    placements = []
    for category in categories:
        seen = counts.setdefault(category, Counter())
        if seen["released"]:
            placement = RUN_AT_ONCE
        elif not seen["held"] and seen["sampled"] < campaign.sample_per_category:
            placement = Placement(sampled=True, held=False)
        else:  # the category's sample is drawn: the member waits for it to be validated
            placement = Placement(sampled=False, held=True)
        seen["sampled" if placement.sampled else "held" if placement.held else "released"] += 1
        placements.append(placement)
    return placements


def _held_filter(campaign_id: str) -> tuple[ColumnElement[bool], ...]:
    return (
        CampaignMember.campaign_id == campaign_id, CampaignMember.held.is_(True),
        CampaignMember.state == MemberState.PENDING,
    )


def held_count(session: Session, campaign_id: str) -> int:
    return session.scalar(select(func.count()).where(*_held_filter(campaign_id))) or 0


def held_by_category(session: Session, campaign_id: str) -> dict[str, int]:
    rows = session.execute(
        select(CampaignMember.category, func.count())
        .where(*_held_filter(campaign_id))
        .group_by(CampaignMember.category)
    )
    return {category: count for category, count in rows}


def counted(count: int, one: str, many: str) -> str:
    """`1 member`, `3 members`."""
    return f"{count} {one if count == 1 else many}"


def awaiting_reason(session: Session, campaign: Campaign) -> str:
    """Why the campaign waits, what its samples gave, and how to go on."""
    samples = list(session.execute(
        select(CampaignMember.category, CampaignMember.state)
        .where(CampaignMember.campaign_id == campaign.id, CampaignMember.sampled.is_(True))
    ))
    failed = sum(1 for _category, state in samples if state is MemberState.FAILED)
    held = held_by_category(session, campaign.id)
    sampled_categories = counted(len({category for category, _state in samples}), "category", "categories")
    return (
        f"the samples of {sampled_categories} have ended, {failed} of {len(samples)} failed; "
        f"{counted(sum(held.values()), 'member', 'members')} of {counted(len(held), 'category', 'categories')} "
        f"held: check the samples (aperture campaign report {campaign.name}), then release them with "
        f"`aperture campaign release {campaign.name}` (or --category KEY for some)"
    )


def release_held(session: Session, campaign: Campaign, categories: Sequence[str] | None) -> dict[str, int]:
    """Release the held members of these categories (None: of every category). Returns how many were
    released per category; a category released before counts 0, one the campaign never had is refused."""
    held = held_by_category(session, campaign.id)
    if categories is None:
        chosen = sorted(held)
    else:
        chosen = list(dict.fromkeys(category.strip() for category in categories))
        known = set(session.scalars(
            select(CampaignMember.category).where(CampaignMember.campaign_id == campaign.id).distinct()
        ))
        strangers = [category for category in chosen if category not in known]
        if strangers:
            shown = ", ".join(sorted(held)[:SHOWN_CATEGORIES]) + (", ..." if len(held) > SHOWN_CATEGORIES else "")
            raise CampaignProblem(
                f"campaign {campaign.name} has no member of category {strangers[0]!r}; "
                + (f"its held categories: {shown}" if held else "none of its members is held"),
                "categories",
            )
    released = {category: held.get(category, 0) for category in chosen}
    if any(released.values()):
        session.execute(
            update(CampaignMember)
            .where(*_held_filter(campaign.id), CampaignMember.category.in_([c for c, n in released.items() if n]))
            .values(held=False)
            .execution_options(synchronize_session=False)
        )
    return released
