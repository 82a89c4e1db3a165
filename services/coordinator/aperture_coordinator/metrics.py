"""The coordinator's Prometheus metrics: counters of what it did, and gauges read from the database at
scrape time (so that they are right after a restart, and agree with what the API shows)."""

from collections.abc import Iterator

from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from aperture_coordinator.db import Database
from aperture_coordinator.models import Job, Mous, OutboxMessage

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


class DatabaseStateCollector(Collector):
    """MOUS per state, jobs per stage and state, and the outbox backlog, counted in the database."""

    def __init__(self, database: Database) -> None:
        self.database = database

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily("aperture_coordinator_mous", "MOUS by state", labels=["state"]),
            GaugeMetricFamily(
                "aperture_coordinator_jobs", "Jobs by stage and state", labels=["stage", "state"]
            ),
            GaugeMetricFamily(
                "aperture_coordinator_outbox_backlog", "Outbox messages not yet confirmed by the broker"
            ),
        )

    def describe(self) -> Iterator[GaugeMetricFamily]:
        """What collect() yields, without reading the database (registration happens before migrations)."""
        yield from self._families()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        mous, jobs, backlog = self._families()
        with self.database.transaction() as session:
            for mous_state, count in session.execute(select(Mous.state, func.count()).group_by(Mous.state)):
                mous.add_metric([mous_state.value], count)
            rows = session.execute(select(Job.stage, Job.state, func.count()).group_by(Job.stage, Job.state))
            for stage, state, count in rows:
                jobs.add_metric([stage.value, state.value], count)
            unpublished = session.scalar(
                select(func.count()).select_from(OutboxMessage).where(OutboxMessage.published_at.is_(None))
            )
            backlog.add_metric([], unpublished or 0)
        yield mous
        yield jobs
        yield backlog
