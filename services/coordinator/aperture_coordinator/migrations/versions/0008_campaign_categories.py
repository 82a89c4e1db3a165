"""Campaign categories and sample-first: a campaign's sample size per category; a member's attributes (array,
band, spws, channels, fields, size), the category it was added in, and whether it was sampled or is held
until its category is released. Existing members get no attributes, the "unknown" category, and are neither
sampled nor held (their campaigns had no sample).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("campaigns") as campaigns:
        campaigns.add_column(sa.Column("sample_per_category", sa.Integer(), nullable=True))
    with op.batch_alter_table("campaign_members") as members:
        members.add_column(sa.Column("attributes", JSON_DOCUMENT, nullable=False, server_default=sa.text("'{}'")))
        members.add_column(sa.Column("category", sa.String(128), nullable=False, server_default="unknown"))
        members.add_column(sa.Column("sampled", sa.Boolean(), nullable=False, server_default=sa.false()))
        members.add_column(sa.Column("held", sa.Boolean(), nullable=False, server_default=sa.false()))
        members.create_index("ix_campaign_members_campaign_id_category", ["campaign_id", "category"])


def downgrade() -> None:
    with op.batch_alter_table("campaign_members") as members:
        members.drop_index("ix_campaign_members_campaign_id_category")
        for column in ("held", "sampled", "category", "attributes"):
            members.drop_column(column)
    with op.batch_alter_table("campaigns") as campaigns:
        campaigns.drop_column("sample_per_category")
