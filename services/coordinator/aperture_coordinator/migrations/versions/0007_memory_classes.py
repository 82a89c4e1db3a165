"""Worker memory classes: the class a job's next attempt is sent to (the smallest whose memory fits the
job's estimate; a larger one after it ran out of memory), its estimate, and the class each attempt ran in.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as jobs:
        jobs.add_column(sa.Column("memory_class", sa.String(32), nullable=False, server_default="standard"))
        jobs.add_column(sa.Column("estimated_memory_mb", sa.Float(), nullable=True))
    with op.batch_alter_table("attempts") as attempts:
        attempts.add_column(sa.Column("memory_class", sa.String(32), nullable=False, server_default="standard"))


def downgrade() -> None:
    with op.batch_alter_table("attempts") as attempts:
        attempts.drop_column("memory_class")
    with op.batch_alter_table("jobs") as jobs:
        jobs.drop_column("estimated_memory_mb")
        jobs.drop_column("memory_class")
