"""call query indexes and the recording copy's outcome

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 21:10:00

Every ``GET /v1/calls`` filter is tenant-scoped and pages on (created, id), so each filter
column gets an index that leads with the tenant and ends with the paging key.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FILTERS = ("state", "channel", "agent", "user", "caller", "called", "close_type")


def upgrade() -> None:
    with op.batch_alter_table("call_record") as batch:
        batch.add_column(
            sa.Column(
                "recording_error", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True
            )
        )
        batch.drop_index("ix_call_record_tenant_created")
    op.create_index("ix_call_record_tenant_created", "call_record", ["tenant", "created", "id"])
    for name in FILTERS:
        op.create_index(
            f"ix_call_record_tenant_{name}", "call_record", ["tenant", name, "created", "id"]
        )


def downgrade() -> None:
    for name in FILTERS:
        op.drop_index(f"ix_call_record_tenant_{name}", table_name="call_record")
    op.drop_index("ix_call_record_tenant_created", table_name="call_record")
    op.create_index("ix_call_record_tenant_created", "call_record", ["tenant", "created"])
    with op.batch_alter_table("call_record") as batch:
        batch.drop_column("recording_error")
