"""Campaign benchmark of the coordinator alone: its cost per job event, per reconcile and per feeder pass,
and the database a campaign leaves, measured on N generated MOUS, then scaled to a 10,000-MOUS campaign.

    .venv/bin/python tools/bench/campaign_coordinator.py --mous 1000 --database sqlite|postgresql
        [--recipe full|quicklook] [--in-flight 200] [--targets 1] [--spw-channels 128,128,960,1920]
        [--worker-mous-per-hour 60]

What runs is the real thing minus the broker and the CASA work: a campaign of N members is created as the
API creates one, the real CampaignFeeder submits them to the real Coordinator on a real database (a new
SQLite file, or a new PostgreSQL database made on the server of APERTURE_TEST_POSTGRES_URL and dropped
afterwards), the real OutboxRelay publishes the outbox to a publisher that keeps the messages, and fake
workers (fake_workers.py) answer every job message at once with a JobStarted and a JobSucceeded shaped and
sized like a real run's, which the coordinator decodes and applies as its event consumer does. One pass is:
feed, reconcile, then relay and answer until the outbox is empty; passes repeat until the campaign completes.
The coordinator's INFO logs are written (JSON, to a file) as in production: they are part of its cost.

Measured, per call: wall and CPU (this process: the coordinator's Python, and SQLite, which runs in it;
PostgreSQL's server is measured apart, from its backends' /proc figures, when it runs on this machine).
The fake workers' time is outside every per-call figure, but inside the whole run's wall time.

Not measured: the broker (publishing, consuming, acknowledging), the API, pruning, failures and retries
(every job succeeds at its first attempt), and a coordinator waiting on slow workers: here the workers are
instant, so the reconcile and feeder passes run as often as work allows, not every reconcile_interval_s.
The estimate for 10,000 MOUS therefore scales the per-pass costs to passes at that interval over the
campaign's duration at the worker throughput given, and says what else it assumes.
"""

import argparse
import asyncio
import hashlib
import logging
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import psycopg
from aperture_contracts import topology
from aperture_contracts.campaigns import CampaignCreate, CampaignMember, CampaignState, MemberState
from aperture_contracts.enums import MousState, Recipe, Stage
from aperture_contracts.events import JobSucceeded
from aperture_contracts.ids import mous_key
from aperture_contracts.jobs import JobMessage
from aperture_contracts.storage import ObjectRef
from aperture_coordinator import campaigns
from aperture_coordinator.campaigns import CampaignFeeder
from aperture_coordinator.db import Database, upgrade_database
from aperture_coordinator.events import decode_event
from aperture_coordinator.models import Base, Job, Mous
from aperture_coordinator.relay import OutboxRelay
from aperture_coordinator.settings import CoordinatorSettings
from aperture_coordinator.state import Coordinator
from aperture_shared.logs import configure_logging
from fake_workers import FakeWorkers, MousShape
from pydantic import TypeAdapter
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

T = TypeVar("T")
JOB_MESSAGE: TypeAdapter[JobMessage] = TypeAdapter(JobMessage)
# The server the coordinator's tests use (tests/coordinator/conftest.py), unless the environment names another.
POSTGRES_URL_ENV = "APERTURE_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql+psycopg://aperture:aperture@127.0.0.1:5432/aperture_test"
DEFAULT_SHAPE = MousShape(targets=1, spw_channels=(128, 128, 960, 1920))  # 2 TDM-like spws, 2 FDM in chunks
SCALE_TO_MOUS = 10_000
PRUNED_TABLES = ("outbox", "processed_events")  # retention.py deletes their old rows
WORST_PASSES = 3
# A change of the median CPU per event below this, first to last tenth, is taken as noise (not extrapolated).
GROWTH_BEYOND_NOISE = 1.10


# -- what is measured ---------------------------------------------------------------------------------


@dataclass
class Calls:
    """Wall and CPU seconds of every call of one kind, in call order, how much each call handled (MOUS
    looked at, members submitted, messages published), and how many MOUS had completed before it."""

    wall_s: list[float] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)
    handled: list[int] = field(default_factory=list)
    mous_done: list[int] = field(default_factory=list)

    def add(self, wall_s: float, cpu_s: float, mous_done: int, handled: int = 1) -> None:
        self.wall_s.append(wall_s)
        self.cpu_s.append(cpu_s)
        self.handled.append(handled)
        self.mous_done.append(mous_done)

    def __len__(self) -> int:
        return len(self.wall_s)

    @property
    def total_wall_s(self) -> float:
        return sum(self.wall_s)

    @property
    def total_cpu_s(self) -> float:
        return sum(self.cpu_s)


@dataclass
class EventCalls:
    """Every event the coordinator applied: decoding it and applying it, timed apart, with the stage of its
    job. They come in pairs, a job's JobStarted then its JobSucceeded: the fake workers answer each job
    message so, one message after the other."""

    decode: Calls = field(default_factory=Calls)
    apply: Calls = field(default_factory=Calls)
    stages: list[Stage] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.apply)

    def cpu_s(self, index: int) -> float:
        return self.decode.cpu_s[index] + self.apply.cpu_s[index]

    @property
    def mous_done(self) -> list[int]:
        return self.apply.mous_done

    def kind(self, index: int) -> tuple[Stage, str]:
        """What the event is: its job's stage, and whether it started or ended the job."""
        return self.stages[index], "started" if index % 2 == 0 else "succeeded"


@dataclass(frozen=True)
class Table:
    rows: int
    bytes: int | None  # None: the database cannot say


@dataclass(frozen=True)
class BenchConfig:
    mous: int
    database: str  # sqlite or postgresql
    recipe: Recipe = Recipe.FULL
    in_flight: int = 200
    shape: MousShape = DEFAULT_SHAPE


@dataclass(frozen=True)
class SettingsUsed:
    """The coordinator's settings that the figures and the estimate depend on, as the run had them."""

    reconcile_interval_s: float
    bulk_queued_per_stage: int
    cube_chunk_channels: int
    history_retention_days: float
    driver: str  # the database URL's scheme

    @classmethod
    def of(cls, settings: CoordinatorSettings) -> "SettingsUsed":
        return cls(settings.reconcile_interval_s, settings.bulk_queued_per_stage, settings.cube_chunk_channels,
                   settings.history_retention_days, settings.database_url.split(":", 1)[0])


@dataclass
class BenchResult:
    """Everything measured; saved as JSON with --save, so that a report can be printed again (--report)."""

    config: BenchConfig
    settings: SettingsUsed
    complete: bool  # False: figures saved on the way, before the campaign completed
    mous_completed: int  # MOUS whose run completed (the members follow at the feeder's next pass)
    jobs_per_mous: int  # as the planner planned the completed runs
    wall_s: float  # the whole campaign, fake workers included
    members: dict[MemberState, int]
    events: EventCalls
    ignored_events: int  # events the coordinator did not apply (none, unless the bench is wrong)
    reconcile: Calls
    feed: Calls
    relay: Calls
    empty_database_bytes: int
    database_bytes: int
    tables: dict[str, Table]
    server_cpu_s: float | None  # PostgreSQL's backends, when measurable
    log_bytes: int | None = None

    @property
    def coordinator_cpu_s(self) -> float:
        return (self.events.decode.total_cpu_s + self.events.apply.total_cpu_s + self.reconcile.total_cpu_s
                + self.feed.total_cpu_s + self.relay.total_cpu_s)

    @property
    def coordinator_wall_s(self) -> float:
        return (self.events.decode.total_wall_s + self.events.apply.total_wall_s + self.reconcile.total_wall_s
                + self.feed.total_wall_s + self.relay.total_wall_s)

    @property
    def completed(self) -> int:
        """The MOUS the per-MOUS figures are of (on the way, the events of those in flight count too)."""
        return max(1, self.mous_completed)


def measure(call: Callable[[], T]) -> tuple[T, float, float]:
    """The call's value, wall seconds and CPU seconds (the whole process: the relay's threads count too)."""
    wall, cpu = time.perf_counter(), time.process_time()
    value = call()
    return value, time.perf_counter() - wall, time.process_time() - cpu


# -- the campaign -------------------------------------------------------------------------------------


class ArchiveStub:
    """The object store as the feeder sees it: every member's package is there (a 30 GB tar)."""

    def exists(self, key: str) -> bool:
        return True

    def stat(self, key: str) -> ObjectRef:
        return ObjectRef(key=key, sha256=hashlib.sha256(key.encode()).hexdigest(), size=30 * 10**9,
                         content_type="application/x-tar")


class KeepingPublisher:
    """The broker as the relay sees it: every publish is confirmed, and kept for the fake workers."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []

    async def publish(self, exchange: str, routing_key: str, body: bytes, *, message_id: str) -> None:
        self.messages.append((exchange, body))


def member_mous_id(index: int) -> str:
    return f"uid://A001/X{0xb00 + index // 4096:x}/X{index % 4096 + 1:x}"


class CampaignRun:
    """One campaign from creation to completion, every coordinator call timed."""

    def __init__(self, config: BenchConfig, database: Database, settings: CoordinatorSettings) -> None:
        self.config = config
        self.database = database
        self.coordinator = Coordinator(database, settings)
        self.feeder = CampaignFeeder(self.coordinator, ArchiveStub())
        self.publisher = KeepingPublisher()
        self.relay = OutboxRelay(database, self.publisher, batch_size=settings.relay_batch_size)
        self.workers = FakeWorkers(config.shape)
        self.loop = asyncio.new_event_loop()
        self.events = EventCalls()
        self.reconcile = Calls()
        self.feed = Calls()
        self.relay_calls = Calls()
        self.ignored = 0
        self.mous_done = 0
        self.campaign_id = ""

    def create(self) -> None:
        members = [
            CampaignMember(mous_id=member_mous_id(index),
                           object_key=f"archive/bench/{mous_key(member_mous_id(index))}.ms.tar")
            for index in range(self.config.mous)
        ]
        body = CampaignCreate(name=f"bench-{uuid.uuid4().hex[:8]}", pipeline_version="bench", members=members,
                              recipe=self.config.recipe, max_in_flight=self.config.in_flight)
        submitted = campaigns.create_campaign(self.database, body, ArchiveStub(), datetime.now(UTC))
        self.campaign_id = submitted.campaign.campaign_id

    def run(self, progress: Callable[[int], None] = lambda done: None) -> None:
        """Pass after pass until the campaign completed; stops with an error when passes stop changing
        anything before it has."""
        idle_passes = 0
        while True:
            submitted, wall, cpu = measure(self.feeder.feed)
            self.feed.add(wall, cpu, self.mous_done, submitted)
            if self._campaign_state() is CampaignState.COMPLETED:
                return
            looked_at, wall, cpu = measure(self.coordinator.reconcile)
            self.reconcile.add(wall, cpu, self.mous_done, looked_at)
            done_before, events_before = self.mous_done, len(self.events)
            self._answer_until_the_outbox_is_empty()
            if self.mous_done // max(1, self.config.mous // 10) > done_before // max(1, self.config.mous // 10):
                progress(self.mous_done)
            idle_passes = 0 if submitted or len(self.events) > events_before else idle_passes + 1
            if idle_passes >= 3:
                raise RuntimeError(f"the campaign stopped advancing: {self.member_states()}")

    def _answer_until_the_outbox_is_empty(self) -> None:
        while True:
            self.publisher.messages.clear()
            published, wall, cpu = measure(lambda: self.loop.run_until_complete(self.relay.publish_pending()))
            if not published:
                return
            self.relay_calls.add(wall, cpu, self.mous_done, published)
            for exchange, body in list(self.publisher.messages):
                if exchange != topology.JOBS_EXCHANGE:
                    continue  # a cancel: nothing here runs one
                job = JOB_MESSAGE.validate_json(body)
                for event in self.workers.answer(job, datetime.now(UTC)):
                    self._apply(event.model_dump_json().encode(), job.stage, isinstance(event, JobSucceeded))

    def _apply(self, body: bytes, stage: Stage, ends_the_job: bool) -> None:
        """What the coordinator's event consumer does with a message body (events.py), timed."""
        event, decode_wall, decode_cpu = measure(lambda: decode_event(body))
        outcome, apply_wall, apply_cpu = measure(lambda: self.coordinator.apply_event(event))
        self.events.decode.add(decode_wall, decode_cpu, self.mous_done)
        self.events.apply.add(apply_wall, apply_cpu, self.mous_done)
        self.events.stages.append(stage)
        if not outcome.applied:
            self.ignored += 1
        elif stage == Stage.EXPORT and ends_the_job:  # the export is the run's last job
            self.mous_done += 1

    def _campaign_state(self) -> CampaignState:
        with self.database.transaction() as session:
            return campaigns.load_campaign(session, self.campaign_id).state

    def member_states(self) -> dict[MemberState, int]:
        with self.database.transaction() as session:
            return campaigns.member_counts(session, self.campaign_id)

    def close(self) -> None:
        self.loop.close()


def run_bench(
    config: BenchConfig, database_url: str, *, log_path: Path | None = None,
    progress: Callable[["BenchResult"], None] | None = None,
) -> BenchResult:
    """Run the campaign on an empty database at `database_url` (migrated here) and measure it. `progress`,
    when given, gets the figures so far at every tenth of the campaign (so that a run stopped from outside
    leaves them); `log_path` is the coordinator's log, if one is written."""
    settings = CoordinatorSettings(database_url=database_url, enabled_stages=list(Stage))
    upgrade_database(database_url)
    database = Database(database_url)
    try:
        empty_bytes = database_bytes(database)
        run = CampaignRun(config, database, settings)
        started, paused = time.perf_counter(), 0.0

        def figures(complete: bool) -> BenchResult:
            """What was measured until now (the time taken to gather it is left out of the wall time)."""
            nonlocal paused
            gathering = time.perf_counter()
            tables = table_figures(database)
            mous_completed, jobs_per_mous = completed_runs(database)
            result = BenchResult(
                config=config, settings=SettingsUsed.of(settings), complete=complete, mous_completed=mous_completed,
                jobs_per_mous=jobs_per_mous, wall_s=gathering - started - paused,
                members=run.member_states(), events=run.events, ignored_events=run.ignored,
                reconcile=run.reconcile, feed=run.feed, relay=run.relay_calls, empty_database_bytes=empty_bytes,
                database_bytes=database_bytes(database), tables=tables,
                server_cpu_s=postgres_backends_cpu_s(database),
                log_bytes=log_path.stat().st_size if log_path is not None and log_path.exists() else None,
            )
            paused += time.perf_counter() - gathering
            return result

        try:
            run.create()
            started = time.perf_counter()
            run.run(lambda done: progress(figures(complete=False)) if progress is not None else None)
        finally:
            run.close()
        return figures(complete=True)
    finally:
        database.dispose()


# -- the database -------------------------------------------------------------------------------------


@contextmanager
def bench_database(kind: str, workdir: Path) -> Iterator[str]:
    """The URL of an empty database: a new SQLite file in `workdir`, or a new PostgreSQL database on the
    tests' server, dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{workdir / 'coordinator.db'}"
        return
    server = make_url(os.environ.get(POSTGRES_URL_ENV, DEFAULT_POSTGRES_URL))
    admin = server.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"aperture_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_bytes(database: Database) -> int:
    if database.dialect == "postgresql":
        with database.engine.connect() as connection:
            return int(connection.scalar(text("SELECT pg_database_size(current_database())")) or 0)
    # What a copy of the file would hold: the write-ahead log moved into it first (outside a transaction,
    # which the engine's connections always begin).
    raw = database.engine.raw_connection()
    try:
        raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        raw.close()
    path = make_url(database.url).database
    return Path(path).stat().st_size if path else 0


def completed_runs(database: Database) -> tuple[int, int]:
    """The MOUS whose run completed, and the jobs per run (all of one shape: the planner's count for it)."""
    with database.transaction() as session:
        completed = session.scalar(select(func.count()).select_from(Mous).where(Mous.state == MousState.COMPLETED))
        jobs = session.scalar(
            select(func.count()).select_from(Job).join(Mous, Mous.id == Job.mous_id)
            .where(Mous.state == MousState.COMPLETED)
        )
    return completed or 0, round((jobs or 0) / completed) if completed else 0


def table_figures(database: Database) -> dict[str, Table]:
    """Rows and bytes (with the table's indexes) of every table of the schema."""
    names = [table.name for table in Base.metadata.sorted_tables]
    with database.engine.connect() as connection:
        rows = {name: int(connection.scalar(select(func.count()).select_from(text(name))) or 0) for name in names}
        sizes: dict[str, int] = {}
        if database.dialect == "postgresql":
            for name in names:
                sizes[name] = int(connection.scalar(text("SELECT pg_total_relation_size(:name)"), {"name": name}))
        else:
            try:  # dbstat is compiled into most SQLite builds, not all
                owner = dict(connection.execute(text("SELECT name, tbl_name FROM sqlite_master")).all())
                for name, size in connection.execute(text("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name")):
                    table = owner.get(name, name)
                    sizes[table] = sizes.get(table, 0) + int(size)
            except Exception:
                sizes = {}
    return {name: Table(rows[name], sizes.get(name)) for name in names}


def postgres_backends_cpu_s(database: Database) -> float | None:
    """CPU seconds of the PostgreSQL backends serving this database (the bench's pooled connections, from
    their start); None on SQLite or when the server's processes are not on this machine."""
    if database.dialect != "postgresql":
        return None
    with database.engine.connect() as connection:
        pids = list(connection.scalars(text(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend'"
        )))
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        ticks += int(fields[11]) + int(fields[12])  # utime and stime (fields 14 and 15 of proc(5))
    return ticks / os.sysconf("SC_CLK_TCK")


# -- figures ------------------------------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (no interpolation: a figure that some call really took)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def ms(seconds: float) -> str:
    return f"{1000 * seconds:9.2f}"


@dataclass(frozen=True)
class Growth:
    """A cost early and late in the campaign: the median over the first and over the last 10 % of the calls
    (medians: a checkpoint or a garbage collection now and then says nothing of growth), with the mean MOUS
    completed at those calls."""

    first_s: float
    last_s: float
    first_done: float
    last_done: float

    @property
    def ratio(self) -> float:
        return self.last_s / self.first_s

    def at(self, mous_done: float) -> float:
        """The cost after `mous_done` MOUS, were the growth linear in them."""
        slope = (self.last_s - self.first_s) / max(1.0, self.last_done - self.first_done)
        return self.first_s + slope * (mous_done - self.first_done)

    def factor(self, mous_done: float, measured_done: float) -> float:
        """How much more a call costs after `mous_done` MOUS than at `measured_done` (1: no growth beyond
        noise)."""
        if self.ratio <= GROWTH_BEYOND_NOISE:
            return 1.0
        return self.at(mous_done) / self.at(measured_done)


def tenths(values: list[float], mous_done: list[int]) -> Growth | None:
    tenth = len(values) // 10
    if tenth < 1:
        return None
    return Growth(
        first_s=statistics.median(values[:tenth]), last_s=statistics.median(values[-tenth:]),
        first_done=statistics.fmean(mous_done[:tenth]), last_done=statistics.fmean(mous_done[-tenth:]),
    )


def events_of_kinds(events: EventCalls) -> dict[tuple[Stage, str], list[int]]:
    """The indexes of the events of each kind, in stage order."""
    kinds: dict[tuple[Stage, str], list[int]] = {}
    for index in range(len(events)):
        kinds.setdefault(events.kind(index), []).append(index)
    order = list(Stage)
    return dict(sorted(kinds.items(), key=lambda item: (order.index(item[0][0]), item[0][1])))


def kind_growth(events: EventCalls, indexes: list[int]) -> Growth | None:
    return tenths([events.cpu_s(index) for index in indexes], [events.mous_done[index] for index in indexes])


def event_growth(events: EventCalls) -> Growth | None:
    """The CPU per event (decode + apply), each kind of event (stage, started or ended) compared with itself
    and weighted by its share of the events, so that a campaign whose start is mostly ingests and whose end
    mostly exports does not pass for growth."""
    kinds = events_of_kinds(events)
    weights = {kind: len(indexes) / len(events) for kind, indexes in kinds.items()}
    seen_by_kind = {kind: kind_growth(events, indexes) for kind, indexes in kinds.items()}
    measured = {kind: seen for kind, seen in seen_by_kind.items() if seen is not None}
    if not measured:
        return None
    total = sum(weights[kind] for kind in measured)

    def weighted(value: Callable[[Growth], float]) -> float:
        return sum(weights[kind] * value(seen) for kind, seen in measured.items()) / total

    return Growth(
        first_s=weighted(lambda seen: seen.first_s), last_s=weighted(lambda seen: seen.last_s),
        first_done=weighted(lambda seen: seen.first_done), last_done=weighted(lambda seen: seen.last_done),
    )


def reconcile_growth(calls: Calls) -> Growth | None:
    """The CPU per MOUS a reconcile pass looked at."""
    passes = [index for index in range(len(calls)) if calls.handled[index]]
    return tenths([calls.cpu_s[index] / calls.handled[index] for index in passes],
                  [calls.mous_done[index] for index in passes])


@dataclass(frozen=True)
class PassCost:
    """A pass's CPU as fixed + per-MOUS-looked-at seconds (least squares over the passes)."""

    fixed_s: float
    per_mous_s: float


def pass_cost(calls: Calls) -> PassCost:
    if len(set(calls.handled)) < 2:  # every pass looked at as many: no slope to fit
        return PassCost(0.0, calls.total_cpu_s / max(1, sum(calls.handled)))
    fit = statistics.linear_regression([float(h) for h in calls.handled], calls.cpu_s)
    return PassCost(fit.intercept, fit.slope)


@dataclass(frozen=True)
class Estimate:
    """A campaign of `mous` MOUS of the measured shape, its workers finishing `worker_mous_per_hour`; with
    `event_factor` and `reconcile_factor` above 1 when the costs are taken to grow on as measured."""

    mous: int
    worker_mous_per_hour: float
    duration_h: float
    events: int
    event_factor: float  # the mean cost per event over the campaign / the mean measured
    reconcile_factor: float  # the same for the cost per MOUS a reconcile pass looks at
    event_cpu_h: float  # decoding, applying and relaying
    reconcile_cpu_h: float
    feed_cpu_h: float
    reconcile_pass_s: float  # the CPU of one pass with every MOUS in flight to look at
    database_bytes: float
    pruned_bytes: float | None  # of which outbox and processed-event rows, deleted after the retention
    server_cpu_h: float | None
    events_per_s_needed: float
    events_per_s_sustained: float  # one at a time, at the wall time per event measured
    core_share: float  # of one core, the coordinator busy at that throughput
    break_even_mous_per_hour: float  # the throughput that would keep one core busy

    @property
    def cpu_h(self) -> float:
        return self.event_cpu_h + self.reconcile_cpu_h + self.feed_cpu_h


def estimate(
    result: BenchResult, worker_mous_per_hour: float, mous: int = SCALE_TO_MOUS, *, growing: bool = False
) -> Estimate:
    """Scale the measured costs to `mous` MOUS: as measured, or (`growing`) as they would be in the middle of
    that campaign were they to grow on linearly with the MOUS done, as between the first and last tenth here
    (the mean of a linearly growing cost is its middle value)."""
    n = result.completed
    interval = result.settings.reconcile_interval_s
    duration_s = mous / worker_mous_per_hour * 3600
    events = result.events
    event_factor = reconcile_factor = 1.0
    if growing:
        seen = event_growth(events)
        if seen is not None:
            event_factor = seen.factor(mous / 2, statistics.fmean(events.mous_done))
        looked = reconcile_growth(result.reconcile)
        if looked is not None:
            reconcile_factor = looked.factor(mous / 2, statistics.fmean(result.reconcile.mous_done))
    event_cpu_per_mous = event_factor * (
        events.decode.total_cpu_s + events.apply.total_cpu_s + result.relay.total_cpu_s) / n
    event_wall = event_factor * (events.decode.total_wall_s + events.apply.total_wall_s + result.relay.total_wall_s)
    reconcile = pass_cost(result.reconcile)
    pass_cpu = reconcile.fixed_s + reconcile.per_mous_s * reconcile_factor * result.config.in_flight
    # A pass longer than the interval is followed at once by the next: the loop then keeps a core busy.
    reconcile_duty = min(1.0, pass_cpu / interval)
    feed_duty = min(1.0, statistics.fmean(result.feed.cpu_s) / interval)
    per_mous_bytes = (result.database_bytes - result.empty_database_bytes) / n
    pruned = [result.tables[name].bytes for name in PRUNED_TABLES if name in result.tables]
    loops = reconcile_duty + feed_duty
    return Estimate(
        mous=mous, worker_mous_per_hour=worker_mous_per_hour, duration_h=duration_s / 3600,
        events=round(len(events) / n * mous), event_factor=event_factor, reconcile_factor=reconcile_factor,
        event_cpu_h=event_cpu_per_mous * mous / 3600, reconcile_cpu_h=reconcile_duty * duration_s / 3600,
        feed_cpu_h=feed_duty * duration_s / 3600, reconcile_pass_s=pass_cpu,
        database_bytes=result.empty_database_bytes + per_mous_bytes * mous,
        pruned_bytes=sum(size for size in pruned if size is not None) / n * mous if None not in pruned else None,
        server_cpu_h=result.server_cpu_s / n * mous / 3600 if result.server_cpu_s is not None else None,
        events_per_s_needed=worker_mous_per_hour * len(events) / n / 3600,
        events_per_s_sustained=len(events) / event_wall,
        core_share=loops + worker_mous_per_hour * event_cpu_per_mous / 3600,
        break_even_mous_per_hour=max(0.0, 1.0 - loops) * 3600 / event_cpu_per_mous,
    )


# -- the report ---------------------------------------------------------------------------------------


def size(bytes_: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if bytes_ >= scale:
            return f"{bytes_ / scale:.1f} {unit}"
    return f"{bytes_:.0f} B"


def print_calls(label: str, calls: Calls, per: str | None = None) -> None:
    """One row per kind of call: count, then wall and CPU mean/p50/p95/p99 in ms; per handled item too."""
    row = f"  {label:28}{len(calls):>8}"
    for values in (calls.wall_s, calls.cpu_s):
        row += ms(statistics.fmean(values)) + "".join(ms(percentile(values, q)) for q in (0.5, 0.95, 0.99))
    print(row)
    handled = sum(calls.handled)
    if per is not None and handled:
        print(f"  {'  per ' + per:28}{handled:>8}{ms(calls.total_wall_s / handled)}{'':27}"
              f"{ms(calls.total_cpu_s / handled)}")


def print_growth(label: str, seen: Growth | None, unit: str) -> None:
    if seen is None:
        return
    noise = "" if seen.ratio > GROWTH_BEYOND_NOISE else (
        f" (within the {100 * (GROWTH_BEYOND_NOISE - 1):.0f} % taken as noise)")
    print(f"  growth of {label}: {1000 * seen.first_s:.2f} ms {unit} in the first 10 % ({seen.first_done:.0f} MOUS "
          f"done on average), {1000 * seen.last_s:.2f} ms in the last 10 % ({seen.last_done:.0f} done): "
          f"x{seen.ratio:.2f}{noise}")


def print_measured(result: BenchResult) -> None:
    config, n, events = result.config, result.completed, result.events
    if not result.complete:
        print(f"PARTIAL: figures saved on the way, {n} of {config.mous} MOUS completed (per-MOUS figures are per "
              "completed MOUS, counting the work done so far on those in flight)")
    print(f"campaign: {config.mous} MOUS, {config.recipe.value} recipe, {config.in_flight} in flight, "
          f"{result.settings.bulk_queued_per_stage} campaign jobs queued per stage at most; "
          f"{config.database} ({result.settings.driver})")
    print(f"MOUS shape: {config.shape.describe()}: {result.jobs_per_mous} jobs per run "
          f"(cubes over {result.settings.cube_chunk_channels} channels in chunks)")
    print(f"members: {campaigns.progress_sentence(result.members)}; events applied {len(events)} "
          f"({len(events) / n:.1f} per MOUS), ignored {result.ignored_events}")
    print(f"throughput: {n / result.wall_s * 3600:,.0f} MOUS/h on this machine with instant fake workers "
          f"({result.wall_s:.0f} s in all); {n / result.coordinator_wall_s * 3600:,.0f} MOUS/h counting the "
          f"coordinator's calls only ({result.coordinator_wall_s:.0f} s)")
    passes, interval = len(result.reconcile), result.settings.reconcile_interval_s
    print(f"reconcile passes: {passes} ({n / passes:.1f} MOUS per pass). A campaign's jobs held back by the bulk "
          "admission move only in a pass (or by their own MOUS's events): at one pass every "
          f"{interval:g} s that alone would cap a campaign at ~{n / passes * 3600 / interval:,.0f} MOUS/h")

    print(f"\n  {'ms per call':28}{'calls':>8}{'wall:':>9}{'p50':>9}{'p95':>9}{'p99':>9}"
          f"{'cpu:':>9}{'p50':>9}{'p95':>9}{'p99':>9}")
    print_calls("event: decode", events.decode)
    print_calls("event: apply_event", events.apply)
    print_calls("relay: publish_pending", result.relay, "message")
    print_calls("reconcile pass", result.reconcile, "MOUS looked at")
    print_calls("feeder pass", result.feed, "member submitted")
    worst = sorted(range(len(result.reconcile)), key=lambda i: result.reconcile.wall_s[i])[-WORST_PASSES:]
    print("  longest reconcile passes: " + ", ".join(
        f"{1000 * result.reconcile.wall_s[i]:.0f} ms ({result.reconcile.handled[i]} MOUS)" for i in reversed(worst)))

    print(f"\n  {'CPU ms per event, by kind':28}{'events':>8}{'mean':>9}{'p50 first':>11}{'p50 last':>10}"
          f"{'ratio':>7}  (first/last: 10 % of the kind's events)")
    for (stage, kind), indexes in events_of_kinds(events).items():
        seen = kind_growth(events, indexes)
        trend = f"{1000 * seen.first_s:>11.2f}{1000 * seen.last_s:>10.2f}{seen.ratio:>7.2f}" if seen else ""
        print(f"  {f'{stage.value} {kind}':28}{len(indexes):>8}"
              f"{1000 * statistics.fmean(events.cpu_s(i) for i in indexes):>9.2f}{trend}")
    print_growth("CPU per event (medians, each kind against itself, weighted by its share)", event_growth(events),
                 "per event")
    print_growth("reconcile CPU per MOUS looked at (medians)", reconcile_growth(result.reconcile), "per MOUS")

    cpu = result.coordinator_cpu_s
    print(f"\ncoordinator CPU: {cpu:.1f} s, {1000 * cpu / n:.0f} ms per MOUS (events "
          f"{events.decode.total_cpu_s + events.apply.total_cpu_s:.1f} s, relay {result.relay.total_cpu_s:.1f} s, "
          f"reconcile {result.reconcile.total_cpu_s:.1f} s, feeder {result.feed.total_cpu_s:.1f} s)")
    if result.server_cpu_s is not None:
        print(f"PostgreSQL backends' CPU: {result.server_cpu_s:.1f} s, {1000 * result.server_cpu_s / n:.0f} ms "
              "per MOUS (beside the coordinator's)")
    if result.log_bytes is not None:
        print(f"coordinator log (JSON, INFO): {size(result.log_bytes)}, {size(result.log_bytes / n)} per MOUS")
    grown = result.database_bytes - result.empty_database_bytes
    print(f"database: {size(result.database_bytes)} after ({size(result.empty_database_bytes)} empty), "
          f"{size(grown / n)} per MOUS")
    print(f"\n  {'table':20}{'rows':>10}{'per MOUS':>10}{'bytes/MOUS':>12}")
    for name, table in result.tables.items():
        if table.rows:
            per_mous = size(table.bytes / n) if table.bytes is not None else "n/a"
            print(f"  {name:20}{table.rows:>10}{table.rows / n:>10.1f}{per_mous:>12}")


def print_estimate(result: BenchResult, worker_mous_per_hour: float) -> None:
    config = result.config
    flat = estimate(result, worker_mous_per_hour)
    growing = estimate(result, worker_mous_per_hour, growing=True)
    columns = [flat] if (growing.event_factor, growing.reconcile_factor) == (1.0, 1.0) else [flat, growing]
    interval = result.settings.reconcile_interval_s
    print(f"\nestimate for {flat.mous:,} MOUS. Assumed: every MOUS of this shape, no failure or retry; workers "
          f"finishing {flat.worker_mous_per_hour:g} MOUS/h ({flat.duration_h / 24:.1f} days); reconcile "
          f"and feeder passes every {interval:g} s with {config.in_flight} MOUS in flight, each reconcile pass "
          "looking at all of them (an upper bound: the bulk admission holds back most ready jobs); the costs "
          f"per event and per pass as measured here on {config.database}"
          + ("" if len(columns) == 1 else
             f"; in the second column, grown on linearly with the MOUS done, as from the first to the last tenth "
             f"here, to the campaign's middle (x{growing.event_factor:.1f} per event, "
             f"x{growing.reconcile_factor:.1f} per MOUS a reconcile pass looks at)") + ".")
    print(f"  {'':34}" + "".join(f"{label:>18}" for label in ("as measured", "growing on")[:len(columns)]))

    def row(label: str, cell: Callable[[Estimate], str]) -> None:
        print(f"  {label:34}" + "".join(f"{cell(column):>18}" for column in columns))

    row("events", lambda e: f"{e.events:,}")
    row("coordinator CPU", lambda e: f"{e.cpu_h:,.1f} h")
    row("  events and relay", lambda e: f"{e.event_cpu_h:,.1f} h")
    row("  reconcile passes", lambda e: f"{e.reconcile_cpu_h:,.1f} h")
    row("  feeder passes", lambda e: f"{e.feed_cpu_h:,.1f} h")
    row(f"reconcile pass of {config.in_flight} MOUS (CPU)", lambda e: f"{e.reconcile_pass_s:,.2f} s")
    if flat.server_cpu_h is not None:
        row("PostgreSQL CPU (as measured)", lambda e: f"{e.server_cpu_h or 0:,.1f} h")
    row(f"events/s needed at {flat.worker_mous_per_hour:g} MOUS/h", lambda e: f"{e.events_per_s_needed:.2f}")
    row("events/s sustained, one at a time", lambda e: f"{e.events_per_s_sustained:,.1f}")
    row(f"one core busy at {flat.worker_mous_per_hour:g} MOUS/h", lambda e: f"{100 * e.core_share:.0f} %")
    row("one core saturated at", lambda e: f"{e.break_even_mous_per_hour:,.0f} MOUS/h"
        if e.break_even_mous_per_hour else "by the passes")
    pruned = (f", of which {size(flat.pruned_bytes)} outbox and processed-event rows that pruning deletes after "
              f"{result.settings.history_retention_days:g} days" if flat.pruned_bytes is not None else "")
    print(f"  database: {size(flat.database_bytes)}{pruned}")


def print_report(result: BenchResult, worker_mous_per_hour: float) -> None:
    print_measured(result)
    print_estimate(result, worker_mous_per_hour)


RESULT = TypeAdapter(BenchResult)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mous", type=int, default=1000, help="members of the campaign (default 1000)")
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--recipe", choices=[recipe.value for recipe in Recipe], default=Recipe.FULL.value)
    parser.add_argument("--in-flight", type=int, default=200, help="the campaign's max_in_flight (default 200)")
    parser.add_argument("--targets", type=int, default=DEFAULT_SHAPE.targets, help="science targets per MOUS")
    parser.add_argument("--spw-channels", default=",".join(str(c) for c in DEFAULT_SHAPE.spw_channels),
                        help="native channels of each science spw, comma-separated (default %(default)s)")
    parser.add_argument("--worker-mous-per-hour", type=float, default=60.0,
                        help="the workers' throughput the estimate assumes (default 60: 10,000 MOUS in a week)")
    parser.add_argument("--save", type=Path, help="also write every measurement to this JSON file")
    parser.add_argument("--report", type=Path, help="print the report of a saved run instead of running one")
    parser.add_argument("--keep", action="store_true", help="keep the working directory (database, log)")
    args = parser.parse_args()
    if args.report is not None:
        print_report(RESULT.validate_json(args.report.read_bytes()), args.worker_mous_per_hour)
        return 0
    # Stopped from outside: leave through the `finally`s, so that a PostgreSQL database is dropped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    shape = MousShape(args.targets, tuple(int(value) for value in args.spw_channels.split(",")))
    config = BenchConfig(args.mous, args.database, Recipe(args.recipe), args.in_flight, shape)
    load = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} cores, load average {load:.1f} at the start"
          + (" (busy: expect noisy figures)" if load > 0.5 else ""))
    workdir = Path(tempfile.mkdtemp(prefix="aperture-campaign-bench-"))
    log_path = workdir / "coordinator.log"
    # The coordinator logs every event at INFO: formatted as in production, to a file instead of stderr.
    configure_logging("coordinator", "INFO", as_json=True)
    log_file = log_path.open("w")
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(log_file)
    started = time.perf_counter()

    def progress(so_far: BenchResult) -> None:
        print(f"  {so_far.completed} of {config.mous} MOUS done after {time.perf_counter() - started:.0f} s",
              file=sys.stderr)
        if args.save is not None:
            args.save.write_bytes(RESULT.dump_json(so_far))

    try:
        with bench_database(config.database, workdir) as url:
            result = run_bench(config, url, log_path=log_path, progress=progress)
    finally:
        log_file.close()
        if args.keep:
            print(f"working directory (kept): {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    if args.save is not None:
        args.save.write_bytes(RESULT.dump_json(result))
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    print_report(result, args.worker_mous_per_hour)
    return 0


if __name__ == "__main__":
    sys.exit(main())
