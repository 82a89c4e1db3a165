"""The coordinator's tables (SQLAlchemy 2.0 typed ORM). SCHEMA.md beside the package describes each one
with an example row; migrations/versions/ creates them (a test checks the two agree)."""

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

from aperture_contracts.campaigns import CampaignState, MemberState
from aperture_contracts.enums import ErrorClass, JobState, MemoryClass, MousState, Recipe, Stage
from aperture_contracts.requests import RequestState
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import DateTime, TypeDecorator

# Constraint names are part of the migrations: fix them so that both databases name them alike.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

E = TypeVar("E", bound=StrEnum)

# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
BigIntPk = BigInteger().with_variant(Integer(), "sqlite")
JsonDocument = JSON().with_variant(JSONB(), "postgresql")


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both databases (SQLite keeps no zone: it stores naive UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the coordinator stores UTC-aware times only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class EnumText(TypeDecorator[E], Generic[E]):
    """A StrEnum stored as its value in a short text column: readable in SQL, and adding a member needs
    no migration (no database enum type, no CHECK constraint)."""

    impl = String(32)
    cache_ok = True

    def __init__(self, enum_class: type[E]) -> None:
        super().__init__()
        self.enum_class = enum_class

    def process_bind_param(self, value: E | str | None, dialect: Dialect) -> str | None:
        return None if value is None else self.enum_class(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> E | None:
        return None if value is None else self.enum_class(value)


def utc_now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


job_dependencies = Table(
    "job_dependencies",
    Base.metadata,
    Column("job_pk", BigIntPk, ForeignKey("jobs.pk", ondelete="CASCADE"), primary_key=True),
    Column("depends_on_pk", BigIntPk, ForeignKey("jobs.pk", ondelete="CASCADE"), primary_key=True),
    Index(None, "depends_on_pk"),
)
"""Edges of the job graph: `job_pk` may run only when `depends_on_pk` has succeeded."""


class Mous(Base):
    """One MOUS: its identity, the package of its current run, and its state derived from its jobs."""

    __tablename__ = "mous"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    run: Mapped[int] = mapped_column(Integer)
    state: Mapped[MousState] = mapped_column(EnumText(MousState), index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    package_key: Mapped[str] = mapped_column(String(1024))
    package_sha256: Mapped[str] = mapped_column(String(64))
    package_size: Mapped[int] = mapped_column(BigInteger)
    package_content_type: Mapped[str] = mapped_column(String(255))
    package_name: Mapped[str] = mapped_column(String(255))
    # `metadata` is taken by the declarative base: the attribute has another name, the column not.
    observation: Mapped[dict[str, Any] | None] = mapped_column("metadata", JsonDocument, nullable=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # The campaign that started the current run, if one did: its jobs are bulk work, dispatched behind
    # users' work (state.py); None for a run a person asked for.
    campaign_id: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    recipe: Mapped[Recipe] = mapped_column(EnumText(Recipe), default=Recipe.FULL, doc="what the current run makes")
    parameters: Mapped[dict[str, Any]] = mapped_column(
        JsonDocument, default=dict, doc="the current run's RunParameters (its campaign's), as JSON"
    )
    submitted_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)

    jobs: Mapped[list["Job"]] = relationship(back_populates="mous", order_by="Job.pk")


class Job(Base):
    """One job of one run of an MOUS. `job_id` is unique within the MOUS (it carries the run number)."""

    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("mous_id", "job_id"),
        Index(None, "state", "stage"),
        Index(None, "mous_id", "run"),  # a run's jobs, read by every event and reconcile of its MOUS
    )

    pk: Mapped[int] = mapped_column(BigIntPk, primary_key=True, autoincrement=True)
    mous_id: Mapped[str] = mapped_column(String(64), ForeignKey("mous.id", ondelete="CASCADE"))
    job_id: Mapped[str] = mapped_column(String(200))
    run: Mapped[int] = mapped_column(Integer)
    stage: Mapped[Stage] = mapped_column(EnumText(Stage))
    kind: Mapped[str] = mapped_column(String(32), default="")
    target: Mapped[str | None] = mapped_column(String(255), nullable=True)
    spw_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    state: Mapped[JobState] = mapped_column(EnumText(JobState))
    reason: Mapped[str] = mapped_column(Text, default="")
    attempt: Mapped[int] = mapped_column(Integer, default=0, doc="the current attempt; 0 before dispatch")
    not_before: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    params: Mapped[dict[str, Any]] = mapped_column(JsonDocument, default=dict)
    result: Mapped[dict[str, Any] | None] = mapped_column(JsonDocument, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # The worker class the next attempt goes to: the smallest whose memory fits `estimated_memory_mb`, a
    # larger one after an attempt ran out of memory (memory_classes.py).
    memory_class: Mapped[MemoryClass] = mapped_column(EnumText(MemoryClass), default=MemoryClass.STANDARD)
    estimated_memory_mb: Mapped[float | None] = mapped_column(Float, nullable=True)

    # Set on the jobs of a user's imaging request: they image the MOUS's processed data but are not part of
    # its run, so the MOUS's state is derived without them and the request version's from them alone.
    request_version_pk: Mapped[int | None] = mapped_column(
        BigIntPk, ForeignKey("request_versions.pk", ondelete="CASCADE"), nullable=True, index=True
    )

    mous: Mapped[Mous] = relationship(back_populates="jobs")
    depends_on: Mapped[list["Job"]] = relationship(
        secondary=job_dependencies,
        primaryjoin=lambda: Job.pk == job_dependencies.c.job_pk,
        secondaryjoin=lambda: Job.pk == job_dependencies.c.depends_on_pk,
        order_by=lambda: Job.pk,
    )
    attempts: Mapped[list["Attempt"]] = relationship(
        back_populates="job", order_by="Attempt.attempt", cascade="all, delete-orphan"
    )

    def current_attempt(self) -> "Attempt | None":
        for attempt in self.attempts:
            if attempt.attempt == self.attempt:
                return attempt
        return None


class Attempt(Base):
    """One dispatch of a job. A worker that dies mid-job makes the broker deliver the same attempt again
    (`deliveries` counts them); a retry after a failure is a new attempt with a new message."""

    __tablename__ = "attempts"
    # dispatched_at: the run ledger is read newest first and by time range.
    __table_args__ = (UniqueConstraint("job_pk", "attempt"), Index(None, "dispatched_at"))

    pk: Mapped[int] = mapped_column(BigIntPk, primary_key=True, autoincrement=True)
    job_pk: Mapped[int] = mapped_column(BigIntPk, ForeignKey("jobs.pk", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer)
    worker: Mapped[str | None] = mapped_column(String(255), nullable=True)
    dispatched_at: Mapped[datetime] = mapped_column(UtcDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    deliveries: Mapped[int] = mapped_column(Integer, default=0)
    outcome: Mapped[JobState | None] = mapped_column(EnumText(JobState), nullable=True)
    error_class: Mapped[ErrorClass | None] = mapped_column(EnumText(ErrorClass), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The run ledger's figures, as the worker reported them.
    peak_memory_mb: Mapped[float | None] = mapped_column(Float, nullable=True)
    software_version: Mapped[str] = mapped_column(String(64), default="")
    memory_class: Mapped[MemoryClass] = mapped_column(
        EnumText(MemoryClass), default=MemoryClass.STANDARD, doc="the worker class it was sent to"
    )
    log_key: Mapped[str | None] = mapped_column(String(1024), nullable=True)

    job: Mapped[Job] = relationship(back_populates="attempts")


class OutboxMessage(Base):
    """A message to publish, written in the same transaction as the state change it announces; the relay
    publishes rows in id order and stamps `published_at` once the broker confirmed."""

    __tablename__ = "outbox"
    __table_args__ = (Index(None, "published_at", "id"),)

    id: Mapped[int] = mapped_column(BigIntPk, primary_key=True, autoincrement=True)
    exchange: Mapped[str] = mapped_column(String(255))
    routing_key: Mapped[str] = mapped_column(String(255))
    message_id: Mapped[str] = mapped_column(String(400), unique=True)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    published_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class StoredObject(Base):
    """Every object the coordinator learns of (submitted packages, job outputs, logs), with its SHA-256."""

    __tablename__ = "objects"

    key: Mapped[str] = mapped_column(String(1024), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    content_type: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(32), doc="input, work, product, log or other")
    mous_id: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("mous.id", ondelete="CASCADE"), nullable=True, index=True
    )
    job_pk: Mapped[int | None] = mapped_column(
        BigIntPk, ForeignKey("jobs.pk", ondelete="SET NULL"), nullable=True
    )
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ProcessedEvent(Base):
    """Completion events already applied (or deliberately ignored): a redelivered event is a no-op."""

    __tablename__ = "processed_events"

    event_key: Mapped[str] = mapped_column(String(512), primary_key=True)
    mous_id: Mapped[str] = mapped_column(String(64), index=True)
    outcome: Mapped[str] = mapped_column(Text)
    processed_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)  # pruned by age (retention.py)


class ImagingRequest(Base):
    """A user's SRDP-style imaging request on an MOUS: who asked, and for which MOUS. What they asked for is
    in its versions; a re-run makes a new version, so a delivered one is never overwritten."""

    __tablename__ = "imaging_requests"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner: Mapped[str] = mapped_column(String(128), index=True)
    mous_id: Mapped[str] = mapped_column(String(64), ForeignKey("mous.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)

    versions: Mapped[list["RequestVersion"]] = relationship(
        back_populates="request", order_by="RequestVersion.version", cascade="all, delete-orphan"
    )


class RequestVersion(Base):
    """One version of a request: its parameters, the estimate made before it ran, its state, and whether it
    passed QA (at most one version of a request does)."""

    __tablename__ = "request_versions"
    __table_args__ = (UniqueConstraint("request_id", "version"),)

    pk: Mapped[int] = mapped_column(BigIntPk, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(String(40), ForeignKey("imaging_requests.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    parameters: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    estimate: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    state: Mapped[RequestState] = mapped_column(EnumText(RequestState))
    reason: Mapped[str] = mapped_column(Text, default="")
    passed_qa: Mapped[bool | None] = mapped_column(nullable=True)
    qa: Mapped[list[dict[str, Any]]] = mapped_column(JsonDocument, default=list, doc="ImageCheck per image")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True, index=True)
    # A cancelled version's outputs are deleted from the object store once its workers have stopped
    # (request_cleanup.py); set when that is done, cleared when a late worker may have written more.
    outputs_removed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)

    request: Mapped[ImagingRequest] = relationship(back_populates="versions")
    jobs: Mapped[list[Job]] = relationship(order_by="Job.pk", viewonly=True)


class Notification(Base):
    """A message to send when a request version ends (a webhook POST or an e-mail), written in the same
    transaction as the version's end; the notifier sends it afterwards and retries a failed send."""

    __tablename__ = "notifications"
    __table_args__ = (Index(None, "sent_at", "next_attempt_at"),)

    pk: Mapped[int] = mapped_column(BigIntPk, primary_key=True, autoincrement=True)
    version_pk: Mapped[int] = mapped_column(BigIntPk, ForeignKey("request_versions.pk", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(16), doc="webhook or email")
    address: Mapped[str] = mapped_column(Text, doc="the URL or the e-mail address")
    subject: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text, doc="webhook: the RequestView JSON; e-mail: the text")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    gave_up_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)


class Campaign(Base):
    """An archive re-processing campaign: a pipeline version and parameters for a set of MOUS (its members),
    fed to the coordinator a bounded number at a time (campaigns.py). The name is its identity."""

    __tablename__ = "campaigns"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, doc="camp-<12 hex>")
    name: Mapped[str] = mapped_column(String(100), unique=True)
    pipeline_version: Mapped[str] = mapped_column(String(64))
    parameters: Mapped[dict[str, Any]] = mapped_column(JsonDocument, default=dict)
    recipe: Mapped[Recipe] = mapped_column(EnumText(Recipe), default=Recipe.FULL)
    state: Mapped[CampaignState] = mapped_column(EnumText(CampaignState), index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    max_in_flight: Mapped[int] = mapped_column(Integer)
    # Set: that many members of each category run first, the rest is held until released (campaigns.py).
    sample_per_category: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class CampaignMember(Base):
    """One MOUS of a campaign and the run the campaign started for it. `mous_id` is no foreign key: the MOUS
    may not exist until the campaign submits it."""

    __tablename__ = "campaign_members"
    __table_args__ = (
        UniqueConstraint("campaign_id", "mous_id"),
        Index(None, "campaign_id", "state"),
        Index(None, "campaign_id", "category"),
    )

    pk: Mapped[int] = mapped_column(BigIntPk, primary_key=True, autoincrement=True)
    campaign_id: Mapped[str] = mapped_column(String(40), ForeignKey("campaigns.id", ondelete="CASCADE"))
    mous_id: Mapped[str] = mapped_column(String(64))
    object_key: Mapped[str] = mapped_column(String(1024))
    package_size: Mapped[int | None] = mapped_column(BigInteger, nullable=True, doc="known once submitted")
    state: Mapped[MemberState] = mapped_column(EnumText(MemberState))
    run: Mapped[int | None] = mapped_column(Integer, nullable=True, doc="the MOUS run the campaign started")
    error_class: Mapped[ErrorClass | None] = mapped_column(EnumText(ErrorClass), nullable=True)
    failed_job: Mapped[str | None] = mapped_column(String(200), nullable=True)
    message: Mapped[str] = mapped_column(Text, default="")
    added_at: Mapped[datetime] = mapped_column(UtcDateTime)
    submitted_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # MemberAttributes: given up front, completed from the package's size and the MOUS's metadata.
    attributes: Mapped[dict[str, Any]] = mapped_column(JsonDocument, default=dict)
    # The category it had when it was added: its sample and its hold go by this key, which stays (the
    # report's categories come from `attributes` as known now).
    category: Mapped[str] = mapped_column(String(128), default="unknown")
    sampled: Mapped[bool] = mapped_column(default=False, doc="run as its category's sample")
    held: Mapped[bool] = mapped_column(default=False, doc="waits for its category's release")
