"""imaging_requests and request_versions: users' SRDP-style imaging requests and their versions.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ENUM = sa.String(32)
TIME = sa.DateTime(timezone=True)
JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "imaging_requests",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("mous_id", sa.String(64), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(["mous_id"], ["mous.id"], name="fk_imaging_requests_mous_id_mous", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_imaging_requests"),
    )
    op.create_index("ix_imaging_requests_owner", "imaging_requests", ["owner"])
    op.create_index("ix_imaging_requests_mous_id", "imaging_requests", ["mous_id"])
    op.create_index("ix_imaging_requests_created_at", "imaging_requests", ["created_at"])
    op.create_table(
        "request_versions",
        sa.Column("pk", BIGINT_PK, autoincrement=True, nullable=False),
        sa.Column("request_id", sa.String(40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("parameters", JSON_DOCUMENT, nullable=False),
        sa.Column("estimate", JSON_DOCUMENT, nullable=False),
        sa.Column("state", ENUM, nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("passed_qa", sa.Boolean(), nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"], ["imaging_requests.id"], name="fk_request_versions_request_id_imaging_requests",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("pk", name="pk_request_versions"),
        sa.UniqueConstraint("request_id", "version", name="uq_request_versions_request_id_version"),
    )


def downgrade() -> None:
    op.drop_table("request_versions")
    op.drop_table("imaging_requests")
