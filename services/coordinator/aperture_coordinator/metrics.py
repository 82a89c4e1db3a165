"""The coordinator's Prometheus metrics: counters of what it did, and gauges read from the database at
scrape time (so that they are right after a restart, and agree with what the API shows).

What the gauges answer, and why here: the coordinator is the one that knows when it dispatched each job
and whether a worker has taken it, so the backlog per stage (jobs dispatched but not started, and how
long the oldest has waited) is read from its database; RabbitMQ's own metrics show the broker's side.
Labels are bounded (stages, states) except for the in-flight MOUS gauges of the drill-down dashboard,
which carry the MOUS id for at most IN_FLIGHT_MOUS_SHOWN MOUS at a time (see that constant), and the
campaign series, which carry the names of the active campaigns (a handful at a time).

A campaign's throughput comes from aperture_campaign_members_completed_total, a counter read from the
database like the gauges: a completed member stays completed (a retry puts back failed members only), so
the count only grows while the campaign is active, survives restarts, and is the same whichever
coordinator replica is scraped.
"""

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from aperture_contracts.campaigns import CampaignState, MemberState
from aperture_contracts.enums import ErrorClass, JobState, MousState, Stage
from prometheus_client import Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from aperture_coordinator.db import Database
from aperture_coordinator.models import Attempt, Campaign, CampaignMember, Job, Mous, OutboxMessage

SUBMISSIONS = Counter(
    "aperture_coordinator_submissions",
    "MOUS submissions by how they came and what they did",
    ["source", "result"],
)
EVENTS = Counter(
    "aperture_coordinator_events",
    "Completion events consumed, by type and whether they changed state (applied) or not (ignored)",
    ["event_type", "result"],
)
DISPATCHES = Counter("aperture_coordinator_dispatches", "Job attempts dispatched, by stage", ["stage"])
OUTBOX_PUBLISHED = Counter("aperture_coordinator_outbox_published", "Outbox messages the broker confirmed")
OUTBOX_FAILURES = Counter(
    "aperture_coordinator_outbox_publish_failures", "Outbox publishes that failed (they are tried again)"
)

# MOUS that still have work: the "stuck" question is asked of these. WAITING_FOR_SERVICE is not among
# them (it waits, by design, for a stage to be deployed) but is shown in the drill-down.
PROGRESSING_STATES = (MousState.RECEIVED, MousState.INGESTING, MousState.PROCESSING)
IN_FLIGHT_STATES = (*PROGRESSING_STATES, MousState.WAITING_FOR_SERVICE)

# The drill-down's per-MOUS series exist only while an MOUS is in flight, and for the oldest this many:
# a bounded number of series at any time, however many MOUS the archive processes (each MOUS's series
# end when it finishes, as a pod's do in Kubernetes). An operator who needs one beyond them uses the API.
IN_FLIGHT_MOUS_SHOWN = 50

Clock = Callable[[], datetime]
Family = GaugeMetricFamily | CounterMetricFamily


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _age_s(now: datetime, then: datetime | None) -> float:
    return 0.0 if then is None else max(0.0, (now - then).total_seconds())


def _gauge(name: str, documentation: str, labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=labels or [])


class DatabaseStateCollector(Collector):
    """Series counted in the database at each scrape: MOUS per state, jobs per stage and state, the
    outbox backlog, the backlog per stage queue, how long MOUS go without progress, the in-flight
    MOUS of the drill-down, and the active campaigns' members (by state, completed, failed by class).
    Every bounded label combination is reported, at zero when nothing has it, so that dashboards show 0
    rather than "no data" and rates see a series from its start; a campaign's failures are reported for the
    classes it has only (a dozen classes at zero per campaign would hide the few that matter)."""

    def __init__(self, database: Database, clock: Clock = _utc_now) -> None:
        self.database = database
        self.clock = clock

    @staticmethod
    def _families() -> dict[str, Family]:
        families: list[Family] = [
            _gauge("aperture_coordinator_mous", "MOUS by state", ["state"]),
            _gauge("aperture_coordinator_jobs", "Jobs by stage and state", ["stage", "state"]),
            _gauge("aperture_coordinator_outbox_backlog", "Outbox messages not yet confirmed by the broker"),
            _gauge("aperture_queue_jobs", "Jobs dispatched to a stage's queue and not yet started by a worker",
                   ["stage"]),
            _gauge("aperture_queue_oldest_job_age_seconds",
                   "How long the longest-waiting job dispatched to a stage has waited for a worker (0: none)",
                   ["stage"]),
            _gauge("aperture_running_job_oldest_age_seconds",
                   "How long the longest-running job of a stage has been running (0: none runs)", ["stage"]),
            _gauge("aperture_mous_seconds_since_progress",
                   "Of the MOUS in a state that has work left, the longest time one has gone without a job "
                   "of it finishing (or being planned); 0 when none is in that state", ["state"]),
            _gauge("aperture_inflight_mous_age_seconds",
                   "Per in-flight MOUS (the oldest few, see IN_FLIGHT_MOUS_SHOWN): time since its current "
                   "run began, labelled with its state", ["mous", "state"]),
            _gauge("aperture_inflight_mous_seconds_since_progress",
                   "Per in-flight MOUS: time since a job of its current run last finished or was planned",
                   ["mous"]),
            _gauge("aperture_inflight_mous_jobs", "Per in-flight MOUS: jobs of its current run by stage and state",
                   ["mous", "stage", "state"]),
            _gauge("aperture_inflight_mous_total",
                   "MOUS in flight (received, ingesting, processing or waiting for a service), shown or not"),
            _gauge("aperture_campaign_members",
                   "Members of each active campaign by state (pending, submitted, completed, failed, cancelled); "
                   "campaigns that are paused or ended have no series", ["campaign", "state"]),
            CounterMetricFamily("aperture_campaign_members_completed",
                                "Members of each active campaign that have completed, since it began (what its "
                                "throughput is the rate of)", labels=["campaign"]),
            _gauge("aperture_campaign_failed_members",
                   "Failed members of each active campaign by the error class of their failure (the classes "
                   "it has: a retry of a class puts them back to pending)", ["campaign", "error_class"]),
        ]
        return {family.name: family for family in families}

    def describe(self) -> Iterator[Family]:
        """What collect() yields, without reading the database (registration happens before migrations)."""
        yield from self._families().values()

    def collect(self) -> Iterator[Family]:
        families = self._families()
        now = self.clock()
        with self.database.transaction() as session:
            self._collect_states(session, families)
            self._collect_queues(session, families, now)
            self._collect_in_flight(session, families, now)
            self._collect_campaigns(session, families)
        yield from families.values()

    # -- each group of gauges reads what it needs --------------------------------------------------------

    @staticmethod
    def _collect_states(session: Session, families: dict[str, Family]) -> None:
        mous_counts: dict[MousState, int] = {
            state: count for state, count in session.execute(select(Mous.state, func.count()).group_by(Mous.state))
        }
        for mous_state in MousState:
            families["aperture_coordinator_mous"].add_metric([mous_state.value], mous_counts.get(mous_state, 0))
        job_counts: dict[tuple[Stage, JobState], int] = {
            (stage, state): count
            for stage, state, count in session.execute(
                select(Job.stage, Job.state, func.count()).group_by(Job.stage, Job.state)
            )
        }
        for stage in Stage:
            for job_state in JobState:
                families["aperture_coordinator_jobs"].add_metric(
                    [stage.value, job_state.value], job_counts.get((stage, job_state), 0)
                )
        unpublished = session.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.published_at.is_(None))
        )
        families["aperture_coordinator_outbox_backlog"].add_metric([], unpublished or 0)

    @staticmethod
    def _collect_queues(session: Session, families: dict[str, Family], now: datetime) -> None:
        current_attempt = and_(Attempt.job_pk == Job.pk, Attempt.attempt == Job.attempt)
        waiting: dict[Stage, tuple[int, datetime | None]] = {
            stage: (count, oldest)
            for stage, count, oldest in session.execute(
                select(Job.stage, func.count(), func.min(Attempt.dispatched_at))
                .join(Attempt, current_attempt)
                .where(Job.state == JobState.DISPATCHED)
                .group_by(Job.stage)
            )
        }
        running: dict[Stage, datetime | None] = {
            stage: oldest
            for stage, oldest in session.execute(
                select(Job.stage, func.min(Attempt.started_at))
                .join(Attempt, current_attempt)
                .where(Job.state == JobState.RUNNING)
                .group_by(Job.stage)
            )
        }
        for stage in Stage:
            count, oldest = waiting.get(stage, (0, None))
            families["aperture_queue_jobs"].add_metric([stage.value], count)
            families["aperture_queue_oldest_job_age_seconds"].add_metric([stage.value], _age_s(now, oldest))
            families["aperture_running_job_oldest_age_seconds"].add_metric(
                [stage.value], _age_s(now, running.get(stage))
            )

    @staticmethod
    def _collect_campaigns(session: Session, families: dict[str, Family]) -> None:
        """Active campaigns only, labelled by name: a handful at a time, however many ever ran."""
        active = list(session.scalars(select(Campaign.name).where(Campaign.state == CampaignState.ACTIVE)))
        members_of_active = (
            select(Campaign.name)
            .join(CampaignMember, CampaignMember.campaign_id == Campaign.id)
            .where(Campaign.state == CampaignState.ACTIVE)
        )
        counts: dict[tuple[str, MemberState], int] = {
            (name, state): count
            for name, state, count in session.execute(
                members_of_active.add_columns(CampaignMember.state, func.count())
                .group_by(Campaign.name, CampaignMember.state)
            )
        }
        for name in sorted(active):
            for member_state in MemberState:
                families["aperture_campaign_members"].add_metric(
                    [name, member_state.value], counts.get((name, member_state), 0)
                )
            families["aperture_campaign_members_completed"].add_metric(
                [name], counts.get((name, MemberState.COMPLETED), 0)
            )
        failures: dict[tuple[str, ErrorClass], int] = {}
        for name, error_class, count in session.execute(
            members_of_active.add_columns(CampaignMember.error_class, func.count())
            .where(CampaignMember.state == MemberState.FAILED)
            .group_by(Campaign.name, CampaignMember.error_class)
        ):
            # A failure recorded without a class counts as internal, as in the report (campaign_report.py).
            key = (name, error_class or ErrorClass.INTERNAL)
            failures[key] = failures.get(key, 0) + count
        for (name, error_class), count in sorted(failures.items()):
            families["aperture_campaign_failed_members"].add_metric([name, error_class.value], count)

    @staticmethod
    def _collect_in_flight(session: Session, families: dict[str, Family], now: datetime) -> None:
        """The in-flight MOUS: how long each has gone without progress, and the drill-down's series."""
        current_run = and_(Job.mous_id == Mous.id, Job.run == Mous.run)
        rows: list[Any] = list(
            session.execute(
                select(
                    Mous.id, Mous.state,
                    func.min(Job.created_at), func.max(Job.created_at), func.max(Attempt.ended_at),
                )
                .join(Job, current_run)
                .outerjoin(Attempt, Attempt.job_pk == Job.pk)
                .where(Mous.state.in_(IN_FLIGHT_STATES))
                .group_by(Mous.id, Mous.state)
                .order_by(func.min(Job.created_at), Mous.id)
            )
        )
        since_progress: dict[str, float] = {}
        longest_by_state: dict[MousState, float] = {}
        for mous_id, mous_state, _run_began, last_planned, last_finished in rows:
            progress = max(moment for moment in (last_planned, last_finished) if moment is not None)
            since_progress[mous_id] = _age_s(now, progress)
            longest_by_state[mous_state] = max(longest_by_state.get(mous_state, 0.0), since_progress[mous_id])
        for mous_state in PROGRESSING_STATES:
            families["aperture_mous_seconds_since_progress"].add_metric(
                [mous_state.value], longest_by_state.get(mous_state, 0.0)
            )
        families["aperture_inflight_mous_total"].add_metric([], len(rows))

        shown = rows[:IN_FLIGHT_MOUS_SHOWN]
        for mous_id, mous_state, run_began, _last_planned, _last_finished in shown:
            families["aperture_inflight_mous_age_seconds"].add_metric(
                [mous_id, mous_state.value], _age_s(now, run_began)
            )
            families["aperture_inflight_mous_seconds_since_progress"].add_metric([mous_id], since_progress[mous_id])
        if not shown:
            return
        jobs = session.execute(
            select(Job.mous_id, Job.stage, Job.state, func.count())
            .join(Mous, current_run)
            .where(Mous.id.in_([row[0] for row in shown]))
            .group_by(Job.mous_id, Job.stage, Job.state)
        )
        for mous_id, stage, job_state, count in jobs:
            families["aperture_inflight_mous_jobs"].add_metric([mous_id, stage.value, job_state.value], count)
