"""Archive re-processing campaigns: one pipeline version for many MOUS, fed to the coordinator a bounded
number at a time, so that a campaign of thousands neither floods the broker nor starves user requests.

Identity: a campaign's name is its key. Submitting a name again (same pipeline version and parameters)
adds only the members it lacks, by MOUS id; the same set adds nothing. A member's package and earlier
results are never changed by a later submission; `max_in_flight` is taken from the latest one.

A member's life: pending -> submitted (its MOUS run is in flight) -> completed | failed | cancelled.
`CampaignFeeder.feed()` does, for every active campaign, in order:
1. follow the members in flight: one whose MOUS run ended takes its end (a failed one records the error
   class, job and message of the run's first failed job's last attempt);
2. submit pending members until `max_in_flight` are in flight, as a re-run when the MOUS exists (a
   campaign re-processes), each with the package's ObjectRef from the store (a missing package fails the
   member as bad_input: no attempt can help until someone puts it there and retries the class);
3. mark the campaign completed when no member is pending or in flight.

Sample first (`sample_per_category`, campaign_samples.py): members held for their category's release are
not submitted; when nothing else is pending or in flight, the campaign awaits validation until an operator
releases categories (`release`). A member's attributes (its category) are completed as its run goes: the
package's size at submission, the rest from the MOUS's metadata once it is ingested (campaign_categories.py).

Crash safety: a member is claimed (submitted, with the run its submission will make) in one transaction
and the MOUS submitted in the next. A claim whose run never appears was cut off by a crash: after
CLAIM_GRACE it goes back to pending. A run the MOUS moved past (someone re-ran it) is adopted: the member
follows the MOUS's latest run. One feeder runs per coordinator database, like the reconcile loop.

Pausing stops step 2 only: members in flight run to their end. Cancelling cancels pending members and
the runs in flight (Coordinator.cancel). `retry` puts the failed members of one error class back to
pending; the feeder then gives each MOUS a new run. The report is campaign_report.py's, where members come
from (a list, a manifest, a prefix) campaign_sources.py's.
"""

import asyncio
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from aperture_contracts.campaigns import (
    CampaignCreate,
    CampaignList,
    CampaignState,
    CampaignSubmitted,
    CampaignView,
    MemberAttributes,
    MemberState,
)
from aperture_contracts.enums import ErrorClass, JobState, MousState, Recipe
from aperture_contracts.metadata import MousMetadata
from aperture_contracts.run_parameters import RunParameters
from aperture_shared.errors import JobError, StorageError
from sqlalchemy import and_, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from aperture_coordinator.campaign_categories import attributes_from_metadata, category_key, completed
from aperture_coordinator.campaign_samples import (
    awaiting_reason,
    counted,
    held_count,
    place_members,
    release_held,
)
from aperture_coordinator.campaign_sources import (
    CampaignProblem,
    PackageLookup,
    ResolvedMember,
    resolve_members,
)
from aperture_coordinator.db import Database
from aperture_coordinator.models import Attempt, Campaign, CampaignMember, Job, Mous
from aperture_coordinator.state import Coordinator, NothingToCancel, Submission, UnknownMous
from aperture_coordinator.uploads import safe_package_name

log = logging.getLogger(__name__)

# A claim older than this whose MOUS run never appeared was cut off by a crash: it is submitted again.
CLAIM_GRACE = timedelta(minutes=5)
ENDED_BY_MOUS_STATE = {
    MousState.COMPLETED: MemberState.COMPLETED,
    MousState.FAILED: MemberState.FAILED,
    MousState.CANCELLED: MemberState.CANCELLED,
}


class UnknownCampaign(CampaignProblem):
    status = 404

    def __init__(self, reference: str) -> None:
        super().__init__(
            f"no campaign {reference!r}: give its id (camp-<hex>) or its name; GET /api/v1/campaigns lists them",
            "campaign_id",
        )


class CampaignConflict(CampaignProblem):
    status = 409


class Waker(Protocol):
    def wake(self) -> None: ...


# -- reading ------------------------------------------------------------------------------------------


def new_campaign_id() -> str:
    return f"camp-{secrets.token_hex(6)}"


def load_campaign(session: Session, reference: str, *, lock: bool = False) -> Campaign:
    """A campaign by id, else by name (both are unique; ids are looked up first)."""
    for column in (Campaign.id, Campaign.name):
        query = select(Campaign).where(column == reference.strip())
        campaign = session.scalar(query.with_for_update() if lock else query)
        if campaign is not None:
            return campaign
    raise UnknownCampaign(reference)


def member_counts(session: Session, campaign_id: str) -> dict[MemberState, int]:
    rows = session.execute(
        select(CampaignMember.state, func.count())
        .where(CampaignMember.campaign_id == campaign_id)
        .group_by(CampaignMember.state)
    )
    counts = dict.fromkeys(MemberState, 0)
    counts.update({state: count for state, count in rows})
    return counts


def view_of(session: Session, campaign: Campaign) -> CampaignView:
    counts = member_counts(session, campaign.id)
    return CampaignView(
        campaign_id=campaign.id, name=campaign.name, state=campaign.state, reason=campaign.reason,
        pipeline_version=campaign.pipeline_version, parameters=campaign.parameters, recipe=campaign.recipe,
        max_in_flight=campaign.max_in_flight, sample_per_category=campaign.sample_per_category, members=counts,
        total=sum(counts.values()),
        held=held_count(session, campaign.id) if campaign.sample_per_category is not None else 0,
        created_at=campaign.created_at, updated_at=campaign.updated_at,
    )


def list_campaigns(
    session: Session, *, offset: int, limit: int, state: CampaignState | None = None
) -> CampaignList:
    """Newest first."""
    query = select(Campaign)
    count = select(func.count()).select_from(Campaign)
    if state is not None:
        query, count = query.where(Campaign.state == state), count.where(Campaign.state == state)
    rows = session.scalars(query.order_by(Campaign.created_at.desc(), Campaign.id).offset(offset).limit(limit))
    return CampaignList(
        campaigns=[view_of(session, row) for row in rows], total=session.scalar(count) or 0, offset=offset,
        limit=limit,
    )


def progress_sentence(counts: dict[MemberState, int]) -> str:
    shown = [f"{counts[state]} {state.value}" for state in MemberState if counts[state]]
    return ", ".join(shown) if shown else "no members"


# -- submitting ---------------------------------------------------------------------------------------


def create_campaign(
    database: Database, body: CampaignCreate, store: PackageLookup, now: datetime
) -> CampaignSubmitted:
    """Create the campaign, or add to the one of that name the members it lacks (see the module doc)."""
    members = resolve_members(body, store)  # reads the store: before the transaction
    try:
        return _create(database, body, members, now)
    except IntegrityError:
        # The same name was submitted twice at once and the other committed first: add to it.
        log.info("campaign %s was created concurrently; adding to it", body.name)
        return _create(database, body, members, now)


def _create(
    database: Database, body: CampaignCreate, members: Sequence[ResolvedMember], now: datetime
) -> CampaignSubmitted:
    with database.transaction() as session:
        campaign = session.scalar(select(Campaign).where(Campaign.name == body.name).with_for_update())
        created = campaign is None
        if campaign is None:
            campaign = Campaign(
                id=new_campaign_id(), name=body.name, pipeline_version=body.pipeline_version,
                parameters=body.parameters, recipe=body.recipe, state=CampaignState.ACTIVE, reason="submitted",
                max_in_flight=body.max_in_flight, sample_per_category=body.sample_per_category, created_at=now,
                updated_at=now,
            )
            session.add(campaign)
            session.flush()
        else:
            _check_same_campaign(campaign, body)
            campaign.max_in_flight = body.max_in_flight
        known = set(session.scalars(select(CampaignMember.mous_id).where(CampaignMember.campaign_id == campaign.id)))
        new = [member for member in members if member.mous_id not in known]
        categories = [category_key(member.attributes) for member in new]
        placements = place_members(session, campaign, categories)
        session.add_all(
            CampaignMember(
                campaign_id=campaign.id, mous_id=member.mous_id, object_key=member.object_key,
                state=MemberState.PENDING, added_at=now,
                message="held until its category is released" if placement.held else "waits for its turn",
                attributes=member.attributes.model_dump(exclude_none=True), category=category,
                sampled=placement.sampled, held=placement.held,
            )
            for member, category, placement in zip(new, categories, placements, strict=True)
        )
        if new:
            if campaign.state in (CampaignState.COMPLETED, CampaignState.AWAITING_VALIDATION):
                # The feeder decides at its next pass whether the new members wait for a release too.
                campaign.state = CampaignState.ACTIVE
            campaign.reason = f"{len(new)} members added" if not created else f"submitted with {len(new)} members"
            campaign.updated_at = now
        session.flush()
        log.info("campaign %s (%s): %d members added, %d known", campaign.name, campaign.id, len(new),
                 len(members) - len(new))
        return CampaignSubmitted(
            campaign=view_of(session, campaign), created=created, members_added=len(new),
            members_known=len(members) - len(new),
        )


def _check_same_campaign(campaign: Campaign, body: CampaignCreate) -> None:
    """A submission under an existing name must mean the same campaign: the name is its identity."""
    remedy = "submit it under a new name, or submit this one as it was to add members to it"
    if campaign.state is CampaignState.CANCELLED:
        raise CampaignConflict(f"campaign {campaign.name} ({campaign.id}) was cancelled; {remedy}", "name")
    if campaign.pipeline_version != body.pipeline_version:
        raise CampaignConflict(
            f"campaign {campaign.name} runs pipeline version {campaign.pipeline_version}, not "
            f"{body.pipeline_version}; {remedy}",
            "pipeline_version",
        )
    if campaign.recipe != body.recipe:
        raise CampaignConflict(
            f"campaign {campaign.name} runs the {campaign.recipe.value} recipe, not {body.recipe.value}; {remedy}",
            "recipe",
        )
    if campaign.parameters != body.parameters:
        raise CampaignConflict(
            f"campaign {campaign.name} was submitted with other parameters ({campaign.parameters}); {remedy}",
            "parameters",
        )
    if campaign.sample_per_category != body.sample_per_category:
        given = "no sample" if campaign.sample_per_category is None else f"{campaign.sample_per_category} per category"
        raise CampaignConflict(
            f"campaign {campaign.name} was submitted with sample_per_category {given}; {remedy}",
            "sample_per_category",
        )


# -- steering -----------------------------------------------------------------------------------------


def pause(database: Database, reference: str, by: str, now: datetime) -> CampaignView:
    """Stop submitting members; those in flight run to their end. Pausing a paused campaign is a no-op."""
    with database.transaction() as session:
        campaign = load_campaign(session, reference, lock=True)
        if campaign.state is CampaignState.ACTIVE:
            _set_state(campaign, CampaignState.PAUSED, f"paused by {by}: members in flight run on, no new one "
                       "is submitted until it is resumed", now)
        elif campaign.state is not CampaignState.PAUSED:
            raise CampaignConflict(f"campaign {campaign.name} is {campaign.state.value}: there is nothing to pause")
        return view_of(session, campaign)


def resume(database: Database, reference: str, by: str, now: datetime) -> CampaignView:
    with database.transaction() as session:
        campaign = load_campaign(session, reference, lock=True)
        if campaign.state is CampaignState.PAUSED:
            _set_state(campaign, CampaignState.ACTIVE, f"resumed by {by}", now)
        elif campaign.state is CampaignState.AWAITING_VALIDATION:
            raise CampaignConflict(
                f"campaign {campaign.name} awaits the validation of its samples: release its categories "
                f"(aperture campaign release {campaign.name}) to go on"
            )
        elif campaign.state is not CampaignState.ACTIVE:
            raise CampaignConflict(f"campaign {campaign.name} is {campaign.state.value}: there is nothing to resume")
        return view_of(session, campaign)


def retry(
    database: Database, reference: str, error_class: ErrorClass, by: str, now: datetime
) -> tuple[CampaignView, int]:
    """Put the failed members of one error class back to pending (the feeder re-runs their MOUS); a
    completed campaign becomes active again. Returns the campaign and how many members were put back."""
    with database.transaction() as session:
        campaign = load_campaign(session, reference, lock=True)
        if campaign.state is CampaignState.CANCELLED:
            raise CampaignConflict(f"campaign {campaign.name} was cancelled: submit a new campaign instead")
        members = list(session.scalars(
            select(CampaignMember).where(
                CampaignMember.campaign_id == campaign.id, CampaignMember.state == MemberState.FAILED,
                CampaignMember.error_class == error_class,
            )
        ))
        for member in members:
            member.state, member.error_class, member.failed_job = MemberState.PENDING, None, None
            member.message = f"retried by {by} after {error_class.value}"
            member.ended_at = None
        if members:
            waiting = (CampaignState.COMPLETED, CampaignState.AWAITING_VALIDATION)
            state = CampaignState.ACTIVE if campaign.state in waiting else campaign.state
            _set_state(campaign, state, f"{len(members)} {error_class.value} failures retried by {by}", now)
        log.info("campaign %s: %d %s failures retried", campaign.id, len(members), error_class.value)
        return view_of(session, campaign), len(members)


def release(
    database: Database, reference: str, categories: Sequence[str] | None, by: str, now: datetime
) -> tuple[CampaignView, dict[str, int]]:
    """Let the held members of these categories (None: of all) run; a campaign awaiting validation becomes
    active. Returns the campaign and how many members were released per category."""
    with database.transaction() as session:
        campaign = load_campaign(session, reference, lock=True)
        if campaign.state is CampaignState.CANCELLED:
            raise CampaignConflict(f"campaign {campaign.name} was cancelled: there is nothing to release")
        if campaign.sample_per_category is None:
            raise CampaignConflict(
                f"campaign {campaign.name} was submitted without sample_per_category: none of its members is held"
            )
        released = release_held(session, campaign, categories)
        count = sum(released.values())
        if count:
            state = CampaignState.ACTIVE if campaign.state is CampaignState.AWAITING_VALIDATION else campaign.state
            of = counted(sum(1 for n in released.values() if n), "category", "categories")
            _set_state(campaign, state, f"{counted(count, 'member', 'members')} of {of} released by {by}", now)
        log.info("campaign %s: %d held members released by %s", campaign.id, count, by)
        return view_of(session, campaign), released


def cancel(coordinator: Coordinator, reference: str, by: str) -> CampaignView:
    """Cancel pending members and stop the MOUS runs in flight. A cancelled campaign stays cancelled."""
    now = coordinator.clock()
    reason = f"campaign cancelled by {by}"
    with coordinator.database.transaction() as session:
        campaign = load_campaign(session, reference, lock=True)
        if campaign.state is CampaignState.COMPLETED:
            raise CampaignConflict(f"campaign {campaign.name} has completed: there is nothing to cancel")
        campaign_id = campaign.id
        members = list(session.scalars(
            select(CampaignMember).where(
                CampaignMember.campaign_id == campaign_id,
                CampaignMember.state.in_([MemberState.PENDING, MemberState.SUBMITTED]),
            )
        ))
        pending = [member for member in members if member.state is MemberState.PENDING]
        in_flight = [member.mous_id for member in members if member.state is MemberState.SUBMITTED]
        for member in pending:
            _end_member(member, MemberState.CANCELLED, reason, now)
        _set_state(campaign, CampaignState.CANCELLED,
                   f"{reason}: {len(pending)} pending members cancelled, {len(in_flight)} runs in flight stopped", now)
    # Each MOUS is cancelled in its own transaction (the coordinator's), never inside this one.
    for mous_id in in_flight:
        _cancel_mous(coordinator, mous_id, reason)
    with coordinator.database.transaction() as session:
        campaign = load_campaign(session, campaign_id, lock=True)
        _follow_in_flight(session, campaign, now, ended_otherwise=reason)
        return view_of(session, campaign)


def _cancel_mous(coordinator: Coordinator, mous_id: str, reason: str) -> None:
    try:
        coordinator.cancel(mous_id, reason)
    except (NothingToCancel, UnknownMous) as error:  # it ended meanwhile, or was never submitted
        log.info("campaign cancel: %s", error)


def _set_state(campaign: Campaign, state: CampaignState, reason: str, now: datetime) -> None:
    campaign.state, campaign.reason, campaign.updated_at = state, reason, now


def _end_member(
    member: CampaignMember, state: MemberState, message: str, ended_at: datetime,
    error_class: ErrorClass | None = None, failed_job: str | None = None,
) -> None:
    member.state, member.message, member.ended_at = state, message, ended_at
    member.error_class, member.failed_job = error_class, failed_job


# -- following MOUS runs ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FirstFailure:
    error_class: ErrorClass
    job_id: str | None
    message: str


def first_failure(session: Session, mous: Mous) -> FirstFailure:
    """The error of the run's first job that failed for good (its last attempt's class and message)."""
    row = session.execute(
        select(Job.job_id, Attempt.error_class, Attempt.error_message)
        .join(Attempt, and_(Attempt.job_pk == Job.pk, Attempt.attempt == Job.attempt))
        .where(
            Job.mous_id == mous.id, Job.run == mous.run, Job.request_version_pk.is_(None),
            Job.state == JobState.FAILED,
        )
        .order_by(Job.updated_at, Job.pk)
        .limit(1)
    ).first()
    if row is None or row.error_class is None:
        return FirstFailure(ErrorClass.INTERNAL, row.job_id if row else None, mous.reason)
    return FirstFailure(row.error_class, row.job_id, row.error_message or mous.reason)


def _follow_in_flight(session: Session, campaign: Campaign, now: datetime, *, ended_otherwise: str = "") -> None:
    """Bring the members in flight up to date with their MOUS runs. With `ended_otherwise`, a member
    whose run has not ended is cancelled with that sentence (the campaign was cancelled)."""
    rows = session.execute(
        select(CampaignMember, Mous)
        .outerjoin(Mous, Mous.id == CampaignMember.mous_id)
        .where(CampaignMember.campaign_id == campaign.id, CampaignMember.state == MemberState.SUBMITTED)
    )
    for member, mous in rows:
        _follow(session, member, mous, now)
        if ended_otherwise and member.state is MemberState.SUBMITTED:
            _end_member(member, MemberState.CANCELLED, ended_otherwise, now)


def _follow(session: Session, member: CampaignMember, mous: Mous | None, now: datetime) -> None:
    if mous is None or member.run is None or mous.run < member.run:
        submitted = member.submitted_at or now
        if submitted + CLAIM_GRACE <= now:
            log.warning("campaign member %s: its run %s never started (a crash?); it is submitted again",
                        member.mous_id, member.run)
            member.state, member.run, member.message = MemberState.PENDING, None, "submitted again after a crash"
        return
    if mous.run > member.run:
        log.info("campaign member %s: MOUS re-run as run %d meanwhile; following it", member.mous_id, mous.run)
        member.run = mous.run
    if mous.observation is not None and not _attributes_known(member):
        _learn_attributes(member, attributes_from_metadata(MousMetadata.model_validate(mous.observation)))
    ended = ENDED_BY_MOUS_STATE.get(mous.state)
    if ended is MemberState.FAILED:
        failure = first_failure(session, mous)
        _end_member(member, ended, failure.message, mous.updated_at, failure.error_class, failure.job_id)
    elif ended is not None:
        _end_member(member, ended, mous.reason, mous.updated_at)


def _attributes_known(member: CampaignMember) -> bool:
    return all(member.attributes.get(name) is not None for name in MemberAttributes.model_fields)


def _learn_attributes(member: CampaignMember, learned: MemberAttributes) -> None:
    """Complete what is known of the member (its `category` stays: see campaign_samples.py)."""
    known = MemberAttributes.model_validate(member.attributes)
    filled = completed(known, learned)
    if filled != known:
        member.attributes = filled.model_dump(exclude_none=True)


# -- feeding ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """A member taken for submission: the run its submission will make, and whether the MOUS exists."""

    member_pk: int
    campaign_id: str
    mous_id: str
    object_key: str
    run: int
    rerun: bool
    recipe: Recipe = Recipe.FULL
    parameters: RunParameters = field(default_factory=RunParameters)


class CampaignFeeder:
    """Submits the campaigns' members as room frees up (see the module docstring). Thread-safe like the
    Coordinator: each step is its own transaction."""

    def __init__(self, coordinator: Coordinator, store: PackageLookup) -> None:
        self.coordinator = coordinator
        self.database = coordinator.database
        self.store = store

    def feed(self) -> int:
        """One pass over every active campaign (and paused ones, whose members in flight are followed);
        returns how many MOUS it submitted."""
        with self.database.transaction() as session:
            campaign_ids = list(session.scalars(
                select(Campaign.id)
                .where(Campaign.state.in_([CampaignState.ACTIVE, CampaignState.PAUSED]))
                .order_by(Campaign.created_at)
            ))
        submitted = 0
        for campaign_id in campaign_ids:
            try:
                submitted += self.feed_campaign(campaign_id)
            except Exception:  # one campaign that cannot advance must not hold back the others
                log.exception("feeding campaign %s failed; the next pass tries again", campaign_id)
        return submitted

    def feed_campaign(self, campaign_id: str) -> int:
        claims = self._follow_and_claim(campaign_id)
        submitted = 0
        for index, claim in enumerate(claims):
            outcome = self._submit(claim)
            if outcome is None:  # the object store is unreachable: leave the rest for the next pass
                for unsent in claims[index + 1:]:
                    self._release(unsent)
                break
            submitted += outcome
        return submitted

    def _follow_and_claim(self, campaign_id: str) -> list[Claim]:
        now = self.coordinator.clock()
        with self.database.transaction() as session:
            campaign = session.scalar(select(Campaign).where(Campaign.id == campaign_id).with_for_update())
            if campaign is None or campaign.state not in (CampaignState.ACTIVE, CampaignState.PAUSED):
                return []
            _follow_in_flight(session, campaign, now)
            if campaign.state is CampaignState.PAUSED:
                return []
            session.flush()
            counts = member_counts(session, campaign.id)
            room = max(0, campaign.max_in_flight - counts[MemberState.SUBMITTED])
            pending = list(session.scalars(
                select(CampaignMember)
                .where(
                    CampaignMember.campaign_id == campaign.id, CampaignMember.state == MemberState.PENDING,
                    CampaignMember.held.is_(False),
                )
                .order_by(CampaignMember.pk)
                .limit(room)
            )) if room else []
            if not pending and not counts[MemberState.SUBMITTED]:
                if counts[MemberState.PENDING]:  # every one of them is held
                    _set_state(campaign, CampaignState.AWAITING_VALIDATION, awaiting_reason(session, campaign), now)
                    log.info("campaign %s awaits validation: %s", campaign.name, campaign.reason)
                else:
                    _set_state(campaign, CampaignState.COMPLETED, f"completed: {progress_sentence(counts)}", now)
                    log.info("campaign %s completed: %s", campaign.name, progress_sentence(counts))
                return []
            runs = {
                mous_id: run
                for mous_id, run in session.execute(
                    select(Mous.id, Mous.run).where(Mous.id.in_([member.mous_id for member in pending]))
                )
            }
            claims = []
            for member in pending:
                current = runs.get(member.mous_id)
                member.state, member.run, member.submitted_at = MemberState.SUBMITTED, (current or 0) + 1, now
                member.message = "being submitted"
                claims.append(Claim(member.pk, campaign.id, member.mous_id, member.object_key, member.run,
                                    rerun=current is not None, recipe=campaign.recipe,
                                    parameters=RunParameters.model_validate(campaign.parameters)))
            return claims

    def _submit(self, claim: Claim) -> int | None:
        """Submit one claimed member: 1 when its MOUS was submitted, 0 when the member failed instead,
        None when the store is unreachable (the claim is released)."""
        try:
            if not self.store.exists(claim.object_key):
                message = (
                    f"the package {claim.object_key} is missing from the object store: put it there, then retry "
                    "the campaign's bad_input failures"
                )
                self._fail(claim, ErrorClass.BAD_INPUT, message)
                return 0
            package = self.store.stat(claim.object_key)
        except StorageError as error:
            log.warning("campaign %s: the object store is unavailable (%s); trying again later",
                        claim.campaign_id, error.message)
            self._release(claim)
            return None
        except JobError as error:  # e.g. an object without the checksum Aperture's storage layer writes
            self._fail(claim, error.error_class, error.message)
            return 0
        submission = Submission(
            claim.mous_id, package, safe_package_name(claim.object_key), rerun=claim.rerun,
            campaign_id=claim.campaign_id, recipe=claim.recipe, parameters=claim.parameters,
        )
        try:
            outcome = self.coordinator.submit(submission)
        except Exception:
            self._release(claim)
            raise
        if self._record_submission(claim, outcome.run, package.size):
            _cancel_mous(self.coordinator, claim.mous_id, "campaign cancelled")
        return 1

    def _record_submission(self, claim: Claim, run: int, package_size: int) -> bool:
        """Note the run the submission made. True when the campaign was cancelled meanwhile: the new run
        must be stopped too (the cancel could not see it)."""
        now = self.coordinator.clock()
        with self.database.transaction() as session:
            campaign = session.scalar(select(Campaign).where(Campaign.id == claim.campaign_id).with_for_update())
            member = session.get(CampaignMember, claim.member_pk)
            if campaign is None or member is None:
                return False
            member.run, member.package_size = run, package_size
            _learn_attributes(member, MemberAttributes(size_bytes=package_size))
            if campaign.state is CampaignState.CANCELLED:
                _end_member(member, MemberState.CANCELLED, campaign.reason, now)
                return True
            if member.state is MemberState.SUBMITTED:
                member.message = f"run {run} submitted"
            return False

    def _release(self, claim: Claim) -> None:
        with self.database.transaction() as session:
            member = session.get(CampaignMember, claim.member_pk)
            if member is not None and member.state is MemberState.SUBMITTED and member.run == claim.run:
                member.state, member.run, member.submitted_at = MemberState.PENDING, None, None
                member.message = "waits for the object store"

    def _fail(self, claim: Claim, error_class: ErrorClass, message: str) -> None:
        now = self.coordinator.clock()
        with self.database.transaction() as session:
            member = session.get(CampaignMember, claim.member_pk)
            if member is not None and member.state is MemberState.SUBMITTED:
                member.run = None  # nothing was submitted
                _end_member(member, MemberState.FAILED, message, now, error_class)
        log.info("campaign %s: member %s failed (%s): %s", claim.campaign_id, claim.mous_id, error_class.value,
                 message)


async def feed_forever(feeder: CampaignFeeder, interval_s: float, after_change: Waker) -> None:
    """The periodic pass that submits campaign members as room frees up (beside the reconcile loop)."""
    while True:
        try:
            if await asyncio.to_thread(feeder.feed):
                after_change.wake()
        except Exception:  # the database may be restarting: the next pass tries again
            log.exception("campaign feeding pass failed")
        await asyncio.sleep(interval_s)
