"""notification_subscription (a tenant's one subscription to its calls' events) and
notification_delivery (the outbox: each event for each subscription, and how sending it went)
(issue 13)

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-26 06:00:00

The sender reads the due heads of each (subscription, call) queue: ``ix_..._due`` finds the
pending ones due, ``ix_..._queue`` the first pending id of a queue. No foreign key from a
delivery to its subscription: a subscription removed meanwhile must never fail a record's save.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _text(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def upgrade() -> None:
    op.create_table(
        "notification_subscription",
        sa.Column("id", _PK, primary_key=True, autoincrement=True),
        sa.Column("tenant", _text(32), sa.ForeignKey("tenant.id"), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("events", _text(64), nullable=False),
        sa.Column("masked", sa.Boolean(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.Column("updated", sa.BigInteger(), nullable=False),
        sa.UniqueConstraint("tenant", name="uq_notification_subscription_tenant"),
    )
    op.create_table(
        "notification_delivery",
        sa.Column("id", _PK, primary_key=True, autoincrement=True),
        sa.Column("subscription_id", sa.BigInteger(), nullable=False),
        sa.Column("tenant", _text(32), nullable=False),
        sa.Column("cc_call_id", _text(64), nullable=False),
        sa.Column("event_type", _text(16), nullable=False),
        sa.Column("dedupe_key", _text(96), nullable=False),
        sa.Column("webhook_id", _text(40), nullable=False),
        sa.Column("call_json", sa.Text(), nullable=False),
        sa.Column("masked", sa.Boolean(), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("status", _text(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", _text(255), nullable=True),
        sa.Column("last_attempt_at", sa.BigInteger(), nullable=True),
        sa.Column("next_attempt_at", sa.BigInteger(), nullable=False),
        sa.Column("since", sa.BigInteger(), nullable=False),
        sa.Column("delivered_at", sa.BigInteger(), nullable=True),
        sa.UniqueConstraint(
            "subscription_id", "dedupe_key", name="uq_notification_delivery_dedupe"
        ),
    )
    for name, columns in _INDEXES.items():
        op.create_index(name, "notification_delivery", columns)


_INDEXES = {
    "ix_notification_delivery_due": ["status", "next_attempt_at"],
    "ix_notification_delivery_queue": ["subscription_id", "cc_call_id", "status", "id"],
    "ix_notification_delivery_tenant": ["tenant", "id"],
    "ix_notification_delivery_tenant_status": ["tenant", "status", "id"],
    "ix_notification_delivery_tenant_call": ["tenant", "cc_call_id", "id"],
}


def downgrade() -> None:
    for name in _INDEXES:
        op.drop_index(name, table_name="notification_delivery")
    op.drop_table("notification_delivery")
    op.drop_table("notification_subscription")
