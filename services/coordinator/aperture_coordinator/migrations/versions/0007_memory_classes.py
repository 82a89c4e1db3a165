"""Worker memory classes: the class a job's next attempt is sent to (the smallest whose memory fits the
job's estimate; a larger one after it ran out of memory), its estimate, and the class each attempt ran in.
And the parameters of an MOUS's current run (its campaign's RunParameters).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("jobs") as jobs:
        jobs.add_column(sa.Column("memory_class", sa.String(32), nullable=False, server_default="standard"))
        jobs.add_column(sa.Column("estimated_memory_mb", sa.Float(), nullable=True))
    with op.batch_alter_table("attempts") as attempts:
        attempts.add_column(sa.Column("memory_class", sa.String(32), nullable=False, server_default="standard"))
    with op.batch_alter_table("mous") as mous:
        mous.add_column(sa.Column("parameters", JSON_DOCUMENT, nullable=False, server_default="{}"))


def downgrade() -> None:
    with op.batch_alter_table("mous") as mous:
        mous.drop_column("parameters")
    with op.batch_alter_table("attempts") as attempts:
        attempts.drop_column("memory_class")
    with op.batch_alter_table("jobs") as jobs:
        jobs.drop_column("estimated_memory_mb")
        jobs.drop_column("memory_class")
