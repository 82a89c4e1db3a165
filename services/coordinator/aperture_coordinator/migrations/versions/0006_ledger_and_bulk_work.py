"""The run ledger's figures per attempt (peak memory, the worker's Aperture version, the log), which
campaign started an MOUS's current run (its jobs are bulk work, dispatched behind users' work), and the
recipe of a run and of a campaign (full, or quicklook: continuum only).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("attempts") as attempts:
        attempts.add_column(sa.Column("peak_memory_mb", sa.Float(), nullable=True))
        attempts.add_column(sa.Column("software_version", sa.String(64), nullable=False, server_default=""))
        attempts.add_column(sa.Column("log_key", sa.String(1024), nullable=True))
        attempts.create_index("ix_attempts_dispatched_at", ["dispatched_at"])
    with op.batch_alter_table("mous") as mous:
        mous.add_column(sa.Column("campaign_id", sa.String(40), nullable=True))
        mous.add_column(sa.Column("recipe", sa.String(32), nullable=False, server_default="full"))
        mous.create_index("ix_mous_campaign_id", ["campaign_id"])
    with op.batch_alter_table("campaigns") as campaigns:
        campaigns.add_column(sa.Column("recipe", sa.String(32), nullable=False, server_default="full"))


def downgrade() -> None:
    with op.batch_alter_table("campaigns") as campaigns:
        campaigns.drop_column("recipe")
    with op.batch_alter_table("mous") as mous:
        mous.drop_index("ix_mous_campaign_id")
        mous.drop_column("recipe")
        mous.drop_column("campaign_id")
    with op.batch_alter_table("attempts") as attempts:
        attempts.drop_index("ix_attempts_dispatched_at")
        for column in ("log_key", "software_version", "peak_memory_mb"):
            attempts.drop_column(column)
