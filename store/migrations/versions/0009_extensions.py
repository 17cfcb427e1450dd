"""extension: a 400 number's extension bound to one line (unique per number and extension
across every tenant), and the call query's main_num/ext_num indexes (issue 13)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26 04:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FILTERS = ("main_num", "ext_num")


def upgrade() -> None:
    op.create_table(
        "extension",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("tenant", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("main_num", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("ext_num", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("agent", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("phone", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("updated", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["tenant"], ["tenant.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("main_num", "ext_num", name="uq_extension_main_ext"),
    )
    op.create_index("ix_extension_tenant_main", "extension", ["tenant", "main_num"])
    with op.batch_alter_table("call_record") as batch:
        for name in _FILTERS:
            batch.create_index(f"ix_call_record_tenant_{name}", ["tenant", name, "created", "id"])


def downgrade() -> None:
    with op.batch_alter_table("call_record") as batch:
        for name in _FILTERS:
            batch.drop_index(f"ix_call_record_tenant_{name}")
    # Its indexes go with it (MariaDB will not drop ix_extension_tenant_main alone: the
    # tenant foreign key uses it).
    op.drop_table("extension")
