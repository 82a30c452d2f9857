"""delivery: follow-up posting state, replies that could not be sent, sends made once

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 14:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("followup", schema=None) as batch_op:
        batch_op.add_column(sa.Column("post_attempts", sa.Integer(), nullable=False,
                                      server_default="0"))
        batch_op.add_column(sa.Column("post_error", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("post_after", sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table("question", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reply_error", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("reply_failed_at", sa.DateTime(timezone=True),
                                      nullable=True))
        batch_op.create_index("ix_question_reply_failed_at", ["reply_failed_at"], unique=False)

    op.create_table(
        "sent_once",
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=True),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )


def downgrade() -> None:
    op.drop_table("sent_once")
    with op.batch_alter_table("question", schema=None) as batch_op:
        batch_op.drop_index("ix_question_reply_failed_at")
        batch_op.drop_column("reply_failed_at")
        batch_op.drop_column("reply_error")
    with op.batch_alter_table("followup", schema=None) as batch_op:
        batch_op.drop_column("post_after")
        batch_op.drop_column("post_error")
        batch_op.drop_column("post_attempts")
