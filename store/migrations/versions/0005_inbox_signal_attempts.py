"""vendor_event: signal attempts, so redelivery retries only events never signalled;
call_record.conn_time_implied

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 17:00:00

An event whose signal reached Temporal is ``signalled_at``; one whose signal failed waits for
``next_attempt_at`` (back-off). The redelivery query reads (signalled_at, next_attempt_at).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("vendor_event") as batch:
        batch.add_column(sa.Column("signalled_at", sa.BigInteger(), nullable=True))
        batch.add_column(
            sa.Column("signal_attempts", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("next_attempt_at", sa.BigInteger(), nullable=True))
    # conn_time derived from a hang-up's duration (the bridge event was lost): a bridge event
    # that turns up later replaces it, even once the workflow is gone.
    with op.batch_alter_table("call_record") as batch:
        batch.add_column(
            sa.Column("conn_time_implied", sa.Boolean(), nullable=False, server_default="0")
        )
    # Rows stored before this revision: the applied ones are done; the rest are due now.
    op.create_index(
        "ix_vendor_event_redelivery", "vendor_event", ["applied", "signalled_at", "next_attempt_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_vendor_event_redelivery", table_name="vendor_event")
    with op.batch_alter_table("call_record") as batch:
        batch.drop_column("conn_time_implied")
    with op.batch_alter_table("vendor_event") as batch:
        batch.drop_column("next_attempt_at")
        batch.drop_column("signal_attempts")
        batch.drop_column("signalled_at")
