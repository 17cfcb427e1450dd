"""scheduled calls and retry series: when a waiting call is due, why it waits, the tries of
one callback, and a tenant's default callback policies (issue 24)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 05:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("tenant", sa.Column("default_retry", sa.Text(), nullable=True))
    op.add_column("tenant", sa.Column("default_window", sa.Text(), nullable=True))
    with op.batch_alter_table("call_record") as batch:
        # ``scheduled`` has 9 letters: RECORD.md's varchar(8) cannot hold it.
        batch.alter_column(
            "state",
            existing_type=sa.String(length=8),
            type_=sa.String(length=16),
            existing_nullable=False,
        )
        batch.add_column(sa.Column("not_before", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("wait_reason", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("parent", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("try", sa.Integer(), nullable=False, server_default="1"))
        batch.create_index("ix_call_record_parent", ["parent", "try"])


def downgrade() -> None:
    with op.batch_alter_table("call_record") as batch:
        batch.drop_index("ix_call_record_parent")
        batch.drop_column("try")
        batch.drop_column("parent")
        batch.drop_column("wait_reason")
        batch.drop_column("not_before")
        batch.alter_column(
            "state",
            existing_type=sa.String(length=16),
            type_=sa.String(length=8),
            existing_nullable=False,
        )
    op.drop_column("tenant", "default_window")
    op.drop_column("tenant", "default_retry")
