"""notification_sender_lease: the one row saying which notification sender may POST now

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-08 09:00:00

Temporal starts a second sender once the first one's heartbeat is late, whether or not the
first has stopped; the lease (taken and renewed by the sender, see
``store/notification_sending.py``) keeps the second from sending until the first is done.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    lease = op.create_table(
        "notification_sender_lease",
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=16), primary_key=True),
        sa.Column("holder", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
    )
    op.bulk_insert(lease, [{"name": "sender", "holder": "", "expires_at": 0}])


def downgrade() -> None:
    op.drop_table("notification_sender_lease")
