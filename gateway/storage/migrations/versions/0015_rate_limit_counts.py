"""Rate-limit counts shared by the replicas (BILLING_GATEWAY_RATE_LIMIT_STORE=database).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_limit_counts",
        sa.Column("rule", sa.String(64), primary_key=True),
        sa.Column("subject", sa.String(128), primary_key=True),
        sa.Column("window_index", sa.BigInteger(), primary_key=True),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("expires", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_rate_limit_counts_expires", "rate_limit_counts", ["expires"])


def downgrade() -> None:
    op.drop_index("ix_rate_limit_counts_expires", table_name="rate_limit_counts")
    op.drop_table("rate_limit_counts")
