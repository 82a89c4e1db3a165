"""An index of jobs by MOUS and run: every event and every reconcile of an MOUS reads its current run's
jobs, and without it SQLite answered that query through the request-version index, scanning every job of
every run that is not a request's, a cost that grew with the campaign's history (measured by
tools/bench/campaign_coordinator.py).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-21
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_jobs_mous_id_run", "jobs", ["mous_id", "run"])


def downgrade() -> None:
    op.drop_index("ix_jobs_mous_id_run", table_name="jobs")
