"""retention: a tenant's own retention days, when a call's personal data was purged, and the
indexes the retention sweep walks (issue 21)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("tenant", sa.Column("retention_days", sa.Integer(), nullable=True))
    with op.batch_alter_table("call_record") as batch:
        batch.add_column(sa.Column("purged", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("recording_deleted", sa.BigInteger(), nullable=True))
        batch.create_index("ix_call_record_retention", ["tenant", "purged", "created"])
    with op.batch_alter_table("vendor_event") as batch:
        batch.create_index("ix_vendor_event_received", ["received", "id"])


def downgrade() -> None:
    with op.batch_alter_table("vendor_event") as batch:
        batch.drop_index("ix_vendor_event_received")
    with op.batch_alter_table("call_record") as batch:
        batch.drop_index("ix_call_record_retention")
        batch.drop_column("recording_deleted")
        batch.drop_column("purged")
    op.drop_column("tenant", "retention_days")
