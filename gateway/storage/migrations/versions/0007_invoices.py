"""Invoices keep the seller's identity as it was on their date; invoice numbers get a series.

The counters of invoice numbers were named ``invoice:YYYY``; they are now named after the
series, ``document:INV:YYYY`` (gateway.core.numbering), so the INV series goes on where it
stopped. Invoices issued before keep no seller (null): it was never recorded.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("invoices") as batch:
        batch.add_column(sa.Column("seller", sa.JSON(), nullable=True))
    op.execute(
        "UPDATE counters SET name = 'document:INV:' || substr(name, 9) WHERE name LIKE 'invoice:%'"
    )


def downgrade() -> None:
    op.execute(
        "UPDATE counters SET name = 'invoice:' || substr(name, 14) WHERE name LIKE 'document:INV:%'"
    )
    with op.batch_alter_table("invoices") as batch:
        batch.drop_column("seller")
