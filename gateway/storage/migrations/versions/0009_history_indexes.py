"""Indexes for the history connections: a workspace's rows in (time, id) order.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_invoices_history", "invoices", ["workspace_id", "issued_at", "id"])
    op.create_index("ix_payments_history", "payments", ["workspace_id", "created_at", "id"])
    op.create_index("ix_ledger_entries_history", "ledger_entries", ["workspace_id", "created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_ledger_entries_history", "ledger_entries")
    op.drop_index("ix_payments_history", "payments")
    op.drop_index("ix_invoices_history", "invoices")
