"""call figures kept as calls close (``store.figures``), so GET /v1/stats reads a few rows
instead of every call of a range (issue 24); backfilled from the closed calls already there

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel import Session

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "call_figures",
        sa.Column("tenant", sa.String(length=32), nullable=False),
        sa.Column("dim", sa.String(length=16), nullable=False),
        sa.Column("span", sa.Integer(), nullable=False),
        sa.Column("start", sa.BigInteger(), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("grp", sa.String(length=96), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("placed", sa.Integer(), nullable=False),
        sa.Column("connected", sa.Integer(), nullable=False),
        sa.Column("talk_sum", sa.BigInteger(), nullable=False),
        sa.Column("talk", sa.LargeBinary(), nullable=False),
        sa.Column("wait", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "dim", "span", "start", "direction", "grp"),
        sqlite_with_rowid=False,
    )
    # The calls closed before this revision: counted once, from their records. The store's
    # own code does it (one definition of a call's figures); it reads only columns that
    # this revision's table and call_record have.
    from store.figures import rebuild

    session = Session(bind=op.get_bind())
    tenants = session.connection().execute(sa.text("SELECT DISTINCT tenant FROM call_record"))
    for (tenant,) in list(tenants):
        rebuild(session, tenant)
    session.flush()


def downgrade() -> None:
    op.drop_table("call_figures")
