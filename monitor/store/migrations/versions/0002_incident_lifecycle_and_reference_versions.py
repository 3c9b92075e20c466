"""incident flapping and re-fire state, ticket reminders, reference versions

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 21:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("flapping", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("changed_at", sa.DateTime(), nullable=True))
    with op.batch_alter_table("alert_groups", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ticket_repeat_interval_s", sa.Integer(), nullable=True))
    op.execute("UPDATE alert_groups SET ticket_repeat_interval_s = 86400")  # the new default
    op.create_table(
        "reference_versions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("applies_from", sa.DateTime(), nullable=False),
        sa.Column("origin", sa.String(length=20), nullable=False),
        sa.Column("period_start", sa.DateTime(), nullable=True),
        sa.Column("period_end", sa.DateTime(), nullable=True),
        sa.Column("accepted", sa.JSON(), nullable=True),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("reference_versions", schema=None) as batch_op:
        batch_op.create_index(
            "uq_reference_versions_model_version", ["model", "version"], unique=True
        )


def downgrade() -> None:
    op.drop_table("reference_versions")
    with op.batch_alter_table("alert_groups", schema=None) as batch_op:
        batch_op.drop_column("ticket_repeat_interval_s")
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_column("changed_at")
        batch_op.drop_column("flapping")
