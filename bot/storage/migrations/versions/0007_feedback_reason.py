"""feedback reason: why a 👎 answer missed (wrong, other question, incomplete, outdated)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 18:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("question", schema=None) as batch_op:
        batch_op.add_column(sa.Column("feedback_reason", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("question", schema=None) as batch_op:
        batch_op.drop_column("feedback_reason")
