"""call_record.direction: ``out`` for a callback CC placed (every existing row), ``in`` for
a customer who called a 400 number (issue 13)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 02:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("call_record") as batch:
        batch.add_column(
            sa.Column(
                "direction",
                sqlmodel.sql.sqltypes.AutoString(length=8),
                nullable=False,
                server_default="out",
            )
        )
        batch.create_index(
            "ix_call_record_tenant_direction", ["tenant", "direction", "created", "id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("call_record") as batch:
        batch.drop_index("ix_call_record_tenant_direction")
        batch.drop_column("direction")
