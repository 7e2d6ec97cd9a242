"""Refunds: partial and full refunds of payments, and credit notes.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

from gateway.storage.db import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "refunds",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "workspace_id", sa.String(32), sa.ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("payment_id", sa.String(32), sa.ForeignKey("payments.id"), nullable=False),
        sa.Column("idempotency_key", sa.String(64), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("destination", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("reference", sa.String(128), nullable=True),
        sa.Column("failure_message", sa.String(200), nullable=True),
        sa.Column("credit_note_id", sa.String(32), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("payment_id", "idempotency_key", name="uq_refunds_payment_key"),
    )
    op.create_index("ix_refunds_workspace_id", "refunds", ["workspace_id"])
    op.create_index("ix_refunds_payment_id", "refunds", ["payment_id"])
    with op.batch_alter_table("invoices") as batch:
        batch.add_column(sa.Column("credited_invoice_id", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("invoices") as batch:
        batch.drop_column("credited_invoice_id")
    op.drop_index("ix_refunds_payment_id", "refunds")
    op.drop_index("ix_refunds_workspace_id", "refunds")
    op.drop_table("refunds")
