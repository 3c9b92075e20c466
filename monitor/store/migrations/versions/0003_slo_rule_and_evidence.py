"""SLO evaluations say which rule decided; SLO states keep the sequential evidence

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 21:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("slo_evaluations") as batch:
        batch.add_column(sa.Column("rule", sa.String(length=20), nullable=True))
    with op.batch_alter_table("slo_states") as batch:
        batch.add_column(sa.Column("rule", sa.String(length=20), nullable=True))
        batch.add_column(sa.Column("cusum", sa.Float(), nullable=True))
        batch.add_column(sa.Column("cusum_block", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("wrong_since", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("slo_states") as batch:
        batch.drop_column("wrong_since")
        batch.drop_column("cusum_block")
        batch.drop_column("cusum")
        batch.drop_column("rule")
    with op.batch_alter_table("slo_evaluations") as batch:
        batch.drop_column("rule")
