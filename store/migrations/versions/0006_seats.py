"""hw seats: agent_line.secret (a seat's encrypted password) and channel_session (a polled
vendor's session state, shared by every process); old demo hw lines become seat numbers

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 21:00:00

hw lines were click2Call ids (the demo's ``seat-000``..``seat-002``); on CC-Gateway a line is
a seat number (101-999999). The demo's lines move to the demo seats 10001-10003; any other hw
line keeps its id and signs in with ``CC_HW_SEAT_PASSWORD`` until given a password.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DEMO = {f"seat-{i:03d}": str(10001 + i) for i in range(3)}


def upgrade() -> None:
    with op.batch_alter_table("agent_line") as batch:
        batch.add_column(sa.Column("secret", sa.Text(), nullable=True))
    op.create_table(
        "channel_session",
        sa.Column("channel", sa.String(length=8), primary_key=True),
        sa.Column("key", sa.String(length=96), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated", sa.BigInteger(), nullable=False),
    )
    # Polled events name the vendor's call id only: find the call by it.
    op.create_index("ix_call_record_vendor_call", "call_record", ["channel", "call_id"])
    line = sa.table("agent_line", sa.column("channel"), sa.column("agent"))
    for old, seat in _DEMO.items():
        op.execute(
            line.update().where(line.c.channel == "hw", line.c.agent == old).values(agent=seat)
        )


def downgrade() -> None:
    line = sa.table("agent_line", sa.column("channel"), sa.column("agent"))
    for old, seat in _DEMO.items():
        op.execute(
            line.update().where(line.c.channel == "hw", line.c.agent == seat).values(agent=old)
        )
    op.drop_index("ix_call_record_vendor_call", table_name="call_record")
    op.drop_table("channel_session")
    with op.batch_alter_table("agent_line") as batch:
        batch.drop_column("secret")
