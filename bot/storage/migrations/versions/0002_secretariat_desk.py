"""secretariat desk: follow-up posts and history, audit log

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 08:05:57.326505
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "admin_action",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.BigInteger(), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("allowed", sa.Boolean(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("admin_action", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_admin_action_action"), ["action"], unique=False)
        batch_op.create_index(batch_op.f("ix_admin_action_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_admin_action_person_id"), ["person_id"], unique=False)

    op.create_table(
        "followup_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("followup_id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("author_id", sa.BigInteger(), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("group_message_id", sa.BigInteger(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["followup_id"],
            ["followup.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("followup_event", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_followup_event_followup_id"), ["followup_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_followup_event_group_message_id"), ["group_message_id"], unique=False
        )

    with op.batch_alter_table("followup", schema=None) as batch_op:
        batch_op.add_column(sa.Column("group_message_id", sa.BigInteger(), nullable=True))
        batch_op.add_column(
            sa.Column("kb_gap", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("closed_by", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_followup_group_message_id"), ["group_message_id"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("followup", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_followup_group_message_id"))
        batch_op.drop_column("closed_at")
        batch_op.drop_column("closed_by")
        batch_op.drop_column("kb_gap")
        batch_op.drop_column("group_message_id")

    with op.batch_alter_table("followup_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_followup_event_group_message_id"))
        batch_op.drop_index(batch_op.f("ix_followup_event_followup_id"))

    op.drop_table("followup_event")
    with op.batch_alter_table("admin_action", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_admin_action_person_id"))
        batch_op.drop_index(batch_op.f("ix_admin_action_at"))
        batch_op.drop_index(batch_op.f("ix_admin_action_action"))

    op.drop_table("admin_action")
