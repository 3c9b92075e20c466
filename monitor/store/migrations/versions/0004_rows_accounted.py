"""seen rows, held labels and row outcomes: every row read is accounted for

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 21:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "seen_rows",
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("key", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("ts", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("model", "kind", "key"),
    )
    op.create_index("ix_seen_rows_ts", "seen_rows", ["ts"])
    op.create_table(
        "held_labels",
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("key", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("row_id", sa.JSON(), nullable=False),
        sa.Column("label", sa.JSON(), nullable=True),
        sa.Column("labeled_at", sa.DateTime(), nullable=True),
        sa.Column("held_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("model", "key"),
    )
    with op.batch_alter_table("model_health", schema=None) as batch_op:
        batch_op.add_column(sa.Column("row_outcomes", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("model_health", schema=None) as batch_op:
        batch_op.drop_column("row_outcomes")
    op.drop_table("held_labels")
    op.drop_index("ix_seen_rows_ts", table_name="seen_rows")
    op.drop_table("seen_rows")
