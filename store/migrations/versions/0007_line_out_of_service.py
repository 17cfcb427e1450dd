"""agent_line.out_of_service: why no call may take the line (an hw seat signed in elsewhere,
100-015); NULL for every line in service

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("agent_line") as batch:
        batch.add_column(sa.Column("out_of_service", sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("agent_line") as batch:
        batch.drop_column("out_of_service")
