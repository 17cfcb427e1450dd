"""provision (vendor resources the platform operator gives a tenant: line ids and 400 main
numbers) and the tenant's own quotas (issue 20)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 07:00:00

Every line and every main number with extensions that a tenant has today is provisioned to
that tenant, so nothing an honest tenant set up stops working.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("tenant", sa.Column("max_lines", sa.Integer(), nullable=True))
    op.add_column("tenant", sa.Column("max_live_calls", sa.Integer(), nullable=True))
    op.add_column("tenant", sa.Column("calls_per_minute", sa.Integer(), nullable=True))
    op.create_table(
        "provision",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("tenant", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("resource", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("stay_signed_in", sa.Boolean(), nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["tenant"], ["tenant.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kind", "channel", "resource", name="uq_provision_resource"),
    )
    op.create_index("ix_provision_tenant", "provision", ["tenant", "kind", "id"])
    op.execute(
        "INSERT INTO provision (tenant, kind, channel, resource, stay_signed_in, created) "
        "SELECT tenant, 'line', channel, agent, false, 0 FROM agent_line"
    )
    op.execute(
        "INSERT INTO provision (tenant, kind, channel, resource, stay_signed_in, created) "
        "SELECT MIN(tenant), 'main_num', '', main_num, false, 0 FROM extension GROUP BY main_num"
    )


def downgrade() -> None:
    op.drop_index("ix_provision_tenant", table_name="provision")
    op.drop_table("provision")
    op.drop_column("tenant", "calls_per_minute")
    op.drop_column("tenant", "max_live_calls")
    op.drop_column("tenant", "max_lines")
