"""inbox: every update noted before Telegram counts it delivered

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 14:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "inbox",
        sa.Column("bot_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("update_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("owner", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("bot_id", "update_id"),
    )
    with op.batch_alter_table("inbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_inbox_state"), ["state"], unique=False)
        batch_op.create_index(batch_op.f("ix_inbox_owner"), ["owner"], unique=False)
        batch_op.create_index(batch_op.f("ix_inbox_user_id"), ["user_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("inbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inbox_user_id"))
        batch_op.drop_index(batch_op.f("ix_inbox_owner"))
        batch_op.drop_index(batch_op.f("ix_inbox_state"))
    op.drop_table("inbox")
