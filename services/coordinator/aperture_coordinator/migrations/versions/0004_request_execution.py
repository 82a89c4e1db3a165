"""Running imaging requests: jobs that belong to a request version, the version's QA and times, and the
notifications sent when a version ends.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIME = sa.DateTime(timezone=True)
JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # batch mode: SQLite can add a foreign key only by copying the table.
    with op.batch_alter_table("jobs") as jobs:
        jobs.add_column(sa.Column("request_version_pk", BIGINT_PK, nullable=True))
        jobs.create_foreign_key(
            "fk_jobs_request_version_pk_request_versions", "request_versions", ["request_version_pk"], ["pk"],
            ondelete="CASCADE",
        )
        jobs.create_index("ix_jobs_request_version_pk", ["request_version_pk"])
    with op.batch_alter_table("request_versions") as versions:
        versions.add_column(sa.Column("qa", JSON_DOCUMENT, nullable=False, server_default="[]"))
        versions.add_column(sa.Column("started_at", TIME, nullable=True))
        versions.add_column(sa.Column("ended_at", TIME, nullable=True))
        versions.add_column(sa.Column("outputs_removed_at", TIME, nullable=True))
        versions.create_index("ix_request_versions_ended_at", ["ended_at"])
    op.create_table(
        "notifications",
        sa.Column("pk", BIGINT_PK, autoincrement=True, nullable=False),
        sa.Column("version_pk", BIGINT_PK, nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TIME, nullable=False),
        sa.Column("sent_at", TIME, nullable=True),
        sa.Column("gave_up_at", TIME, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["version_pk"], ["request_versions.pk"], name="fk_notifications_version_pk_request_versions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("pk", name="pk_notifications"),
    )
    op.create_index("ix_notifications_sent_at_next_attempt_at", "notifications", ["sent_at", "next_attempt_at"])


def downgrade() -> None:
    op.drop_table("notifications")
    with op.batch_alter_table("request_versions") as versions:
        versions.drop_index("ix_request_versions_ended_at")
        for column in ("outputs_removed_at", "ended_at", "started_at", "qa"):
            versions.drop_column(column)
    with op.batch_alter_table("jobs") as jobs:
        jobs.drop_index("ix_jobs_request_version_pk")
        jobs.drop_constraint("fk_jobs_request_version_pk_request_versions", type_="foreignkey")
        jobs.drop_column("request_version_pk")
