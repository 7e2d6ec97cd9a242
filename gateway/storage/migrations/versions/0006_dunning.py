"""Dunning: the collection state of open invoices.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

from gateway.storage.db import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("invoices") as batch:
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("next_retry_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("first_failed_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("dunning_method", sa.String(64), nullable=True))
        batch.add_column(sa.Column("hard_declined", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_index("ix_invoices_next_retry_at", "invoices", ["next_retry_at"])
    # Open invoices from before: unpaid since they were issued; the next dunning run retries them.
    op.execute(
        "UPDATE invoices SET first_failed_at = issued_at, attempts = 1, next_retry_at = issued_at "
        "WHERE status = 'open'"
    )


def downgrade() -> None:
    op.drop_index("ix_invoices_next_retry_at", "invoices")
    with op.batch_alter_table("invoices") as batch:
        for column in ("hard_declined", "dunning_method", "first_failed_at", "next_retry_at", "attempts"):
            batch.drop_column(column)
