"""The initial schema: mous, jobs, job_dependencies, attempts, outbox, objects, processed_events.

Revision ID: 0001
Revises:
Create Date: 2025-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The same column types as models.py: enums are short text, times are timezone-aware, JSON is JSONB on
# PostgreSQL, and surrogate keys are 64-bit except on SQLite (whose row ids are 64-bit anyway).
ENUM = sa.String(32)
TIME = sa.DateTime(timezone=True)
JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "mous",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("run", sa.Integer(), nullable=False),
        sa.Column("state", ENUM, nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("package_key", sa.String(1024), nullable=False),
        sa.Column("package_sha256", sa.String(64), nullable=False),
        sa.Column("package_size", sa.BigInteger(), nullable=False),
        sa.Column("package_content_type", sa.String(255), nullable=False),
        sa.Column("package_name", sa.String(255), nullable=False),
        sa.Column("metadata", JSON_DOCUMENT, nullable=True),
        sa.Column("cancelled_at", TIME, nullable=True),
        sa.Column("submitted_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_mous"),
    )
    op.create_index("ix_mous_state", "mous", ["state"])
    op.create_index("ix_mous_submitted_at", "mous", ["submitted_at"])

    op.create_table(
        "jobs",
        sa.Column("pk", BIGINT_PK, autoincrement=True, nullable=False),
        sa.Column("mous_id", sa.String(64), nullable=False),
        sa.Column("job_id", sa.String(200), nullable=False),
        sa.Column("run", sa.Integer(), nullable=False),
        sa.Column("stage", ENUM, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("target", sa.String(255), nullable=True),
        sa.Column("spw_id", sa.Integer(), nullable=True),
        sa.Column("state", ENUM, nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("not_before", TIME, nullable=True),
        sa.Column("params", JSON_DOCUMENT, nullable=False),
        sa.Column("result", JSON_DOCUMENT, nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_jobs"),
        sa.ForeignKeyConstraint(["mous_id"], ["mous.id"], name="fk_jobs_mous_id_mous", ondelete="CASCADE"),
        sa.UniqueConstraint("mous_id", "job_id", name="uq_jobs_mous_id_job_id"),
    )
    op.create_index("ix_jobs_state_stage", "jobs", ["state", "stage"])

    op.create_table(
        "job_dependencies",
        sa.Column("job_pk", BIGINT_PK, nullable=False),
        sa.Column("depends_on_pk", BIGINT_PK, nullable=False),
        sa.PrimaryKeyConstraint("job_pk", "depends_on_pk", name="pk_job_dependencies"),
        sa.ForeignKeyConstraint(
            ["job_pk"], ["jobs.pk"], name="fk_job_dependencies_job_pk_jobs", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["depends_on_pk"], ["jobs.pk"], name="fk_job_dependencies_depends_on_pk_jobs", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_job_dependencies_depends_on_pk", "job_dependencies", ["depends_on_pk"])

    op.create_table(
        "attempts",
        sa.Column("pk", BIGINT_PK, autoincrement=True, nullable=False),
        sa.Column("job_pk", BIGINT_PK, nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(255), nullable=True),
        sa.Column("dispatched_at", TIME, nullable=False),
        sa.Column("started_at", TIME, nullable=True),
        sa.Column("ended_at", TIME, nullable=True),
        sa.Column("deliveries", sa.Integer(), nullable=False),
        sa.Column("outcome", ENUM, nullable=True),
        sa.Column("error_class", ENUM, nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("pk", name="pk_attempts"),
        sa.ForeignKeyConstraint(["job_pk"], ["jobs.pk"], name="fk_attempts_job_pk_jobs", ondelete="CASCADE"),
        sa.UniqueConstraint("job_pk", "attempt", name="uq_attempts_job_pk_attempt"),
    )

    op.create_table(
        "outbox",
        sa.Column("id", BIGINT_PK, autoincrement=True, nullable=False),
        sa.Column("exchange", sa.String(255), nullable=False),
        sa.Column("routing_key", sa.String(255), nullable=False),
        sa.Column("message_id", sa.String(400), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("published_at", TIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.UniqueConstraint("message_id", name="uq_outbox_message_id"),
    )
    op.create_index("ix_outbox_published_at_id", "outbox", ["published_at", "id"])

    op.create_table(
        "objects",
        sa.Column("key", sa.String(1024), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("content_type", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("mous_id", sa.String(64), nullable=True),
        sa.Column("job_pk", BIGINT_PK, nullable=True),
        sa.Column("recorded_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_objects"),
        sa.ForeignKeyConstraint(["mous_id"], ["mous.id"], name="fk_objects_mous_id_mous", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["job_pk"], ["jobs.pk"], name="fk_objects_job_pk_jobs", ondelete="SET NULL"),
    )
    op.create_index("ix_objects_mous_id", "objects", ["mous_id"])

    op.create_table(
        "processed_events",
        sa.Column("event_key", sa.String(512), nullable=False),
        sa.Column("mous_id", sa.String(64), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("processed_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("event_key", name="pk_processed_events"),
    )
    op.create_index("ix_processed_events_mous_id", "processed_events", ["mous_id"])


def downgrade() -> None:
    for table in ("processed_events", "objects", "outbox", "attempts", "job_dependencies", "jobs", "mous"):
        op.drop_table(table)
