"""SLO evaluations keep the threshold that applied (a relative objective's, resolved)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 21:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("slo_evaluations") as batch:
        batch.add_column(sa.Column("threshold", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("slo_evaluations") as batch:
        batch.drop_column("threshold")
