"""campaigns and campaign_members: archive re-processing campaigns and the MOUS each one feeds.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ENUM = sa.String(32)
TIME = sa.DateTime(timezone=True)
JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("pipeline_version", sa.String(64), nullable=False),
        sa.Column("parameters", JSON_DOCUMENT, nullable=False),
        sa.Column("state", ENUM, nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("max_in_flight", sa.Integer(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_campaigns"),
        sa.UniqueConstraint("name", name="uq_campaigns_name"),
    )
    op.create_index("ix_campaigns_state", "campaigns", ["state"])
    op.create_table(
        "campaign_members",
        sa.Column("pk", BIGINT_PK, autoincrement=True, nullable=False),
        sa.Column("campaign_id", sa.String(40), nullable=False),
        sa.Column("mous_id", sa.String(64), nullable=False),
        sa.Column("object_key", sa.String(1024), nullable=False),
        sa.Column("package_size", sa.BigInteger(), nullable=True),
        sa.Column("state", ENUM, nullable=False),
        sa.Column("run", sa.Integer(), nullable=True),
        sa.Column("error_class", ENUM, nullable=True),
        sa.Column("failed_job", sa.String(200), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("added_at", TIME, nullable=False),
        sa.Column("submitted_at", TIME, nullable=True),
        sa.Column("ended_at", TIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name="fk_campaign_members_campaign_id_campaigns", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("pk", name="pk_campaign_members"),
        sa.UniqueConstraint("campaign_id", "mous_id", name="uq_campaign_members_campaign_id_mous_id"),
    )
    op.create_index("ix_campaign_members_campaign_id_state", "campaign_members", ["campaign_id", "state"])


def downgrade() -> None:
    op.drop_table("campaign_members")
    op.drop_table("campaigns")
