"""sent once: the update that claimed a send, so that it carries on after a crash

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 21:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sent_once", schema=None) as batch_op:
        batch_op.add_column(sa.Column("update_id", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sent_once", schema=None) as batch_op:
        batch_op.drop_column("update_id")
