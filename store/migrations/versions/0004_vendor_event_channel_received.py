"""vendor_event (channel, received): a channel's latest event without a scan

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 21:40:00

Health asks for each channel's latest event every round (webhook freshness), and
GET /v1/channels shows it.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_vendor_event_channel_received", "vendor_event", ["channel", "received"])


def downgrade() -> None:
    op.drop_index("ix_vendor_event_channel_received", table_name="vendor_event")
