"""Billing: details, balance ledger, cards, payments, invoices, scheduled changes,
outbox events, idempotency keys, usage, renewals, custom quote requests, counters.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

from gateway.storage.db import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _workspace_fk(primary_key: bool = False) -> sa.Column:
    return sa.Column(
        "workspace_id",
        sa.String(32),
        sa.ForeignKey("workspaces.id", ondelete="CASCADE"),
        primary_key=primary_key,
        nullable=False,
    )


def upgrade() -> None:
    with op.batch_alter_table("workspaces") as batch:
        batch.add_column(sa.Column("status", sa.String(16), nullable=False, server_default="active"))
        batch.add_column(sa.Column("currency", sa.String(3), nullable=False, server_default="EUR"))
        batch.add_column(sa.Column("balance_minor", sa.BigInteger(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("event_sequence", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("renewal_payment", sa.String(64), nullable=True))

    op.create_table(
        "billing_details",
        _workspace_fk(primary_key=True),
        sa.Column("customer_type", sa.String(16), nullable=True),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("company_name", sa.String(200), nullable=True),
        sa.Column("address_line1", sa.String(200), nullable=True),
        sa.Column("address_line2", sa.String(200), nullable=True),
        sa.Column("city", sa.String(100), nullable=True),
        sa.Column("postal_code", sa.String(20), nullable=True),
        sa.Column("region", sa.String(100), nullable=True),
        sa.Column("country", sa.String(2), nullable=True),
        sa.Column("vat_id", sa.String(32), nullable=True),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "ledger_entries",
        sa.Column("id", sa.String(32), primary_key=True),
        _workspace_fk(),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("balance_after_minor", sa.BigInteger(), nullable=False),
        sa.Column("reference", sa.String(64), nullable=True),
        sa.Column("description", sa.String(200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_ledger_entries_workspace_id", "ledger_entries", ["workspace_id"])
    op.create_table(
        "cards",
        sa.Column("id", sa.String(32), primary_key=True),
        _workspace_fk(),
        sa.Column("token", sa.String(128), nullable=False),
        sa.Column("brand", sa.String(32), nullable=False),
        sa.Column("last4", sa.String(4), nullable=False),
        sa.Column("exp_month", sa.Integer(), nullable=False),
        sa.Column("exp_year", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("removed_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_cards_workspace_id", "cards", ["workspace_id"])
    op.create_table(
        "payments",
        sa.Column("id", sa.String(32), primary_key=True),
        _workspace_fk(),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("method", sa.String(32), nullable=False),
        sa.Column("card_id", sa.String(32), nullable=True),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("failure_code", sa.String(32), nullable=True),
        sa.Column("failure_message", sa.String(200), nullable=True),
        sa.Column("reference", sa.String(128), nullable=True),
        sa.Column("pending", sa.JSON(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_payments_workspace_id", "payments", ["workspace_id"])
    op.create_table(
        "invoices",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("number", sa.String(32), nullable=False, unique=True),
        _workspace_fk(),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("issued_at", UTCDateTime(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("subtotal_minor", sa.BigInteger(), nullable=False),
        sa.Column("tax_minor", sa.BigInteger(), nullable=False),
        sa.Column("total_minor", sa.BigInteger(), nullable=False),
        sa.Column("lines", sa.JSON(), nullable=False),
        sa.Column("tax_lines", sa.JSON(), nullable=False),
        sa.Column("billing", sa.JSON(), nullable=False),
        sa.Column("payment_id", sa.String(32), sa.ForeignKey("payments.id"), nullable=True),
        sa.Column("period_start", UTCDateTime(), nullable=True),
        sa.Column("period_end", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_invoices_workspace_id", "invoices", ["workspace_id"])
    op.create_table(
        "scheduled_changes",
        _workspace_fk(primary_key=True),
        sa.Column("plan_code", sa.String(32), nullable=False),
        sa.Column("email_credits", sa.Integer(), nullable=False),
        sa.Column("messaging_credits", sa.Integer(), nullable=False),
        sa.Column("effective_at", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "outbox_events",
        sa.Column("id", sa.String(32), primary_key=True),
        _workspace_fk(),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("workspace_id", "sequence", name="uq_outbox_workspace_sequence"),
    )
    op.create_index("ix_outbox_events_workspace_id", "outbox_events", ["workspace_id"])
    op.create_table(
        "idempotency_keys",
        _workspace_fk(primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("operation", sa.String(32), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("response", sa.JSON(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("locked_until", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_idempotency_keys_expires_at", "idempotency_keys", ["expires_at"])
    op.create_table(
        "usage_counters",
        _workspace_fk(primary_key=True),
        sa.Column("period_start", UTCDateTime(), primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("used", sa.Numeric(20, 4), nullable=False),
    )
    op.create_table(
        "usage_records",
        sa.Column("id", sa.String(32), primary_key=True),
        _workspace_fk(),
        sa.Column("period_start", UTCDateTime(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("message_type", sa.String(32), nullable=False),
        sa.Column("country", sa.String(2), nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("credits", sa.Numeric(20, 4), nullable=False),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_usage_records_workspace_id", "usage_records", ["workspace_id"])
    op.create_table(
        "renewals",
        _workspace_fk(primary_key=True),
        sa.Column("period_start", UTCDateTime(), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("invoice_id", sa.String(32), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "custom_quote_requests",
        sa.Column("id", sa.String(32), primary_key=True),
        _workspace_fk(),
        sa.Column("contact_name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("company", sa.String(200), nullable=False),
        sa.Column("expected_email_credits", sa.BigInteger(), nullable=True),
        sa.Column("expected_messaging_credits", sa.BigInteger(), nullable=True),
        sa.Column("message", sa.String(4000), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_custom_quote_requests_workspace_id", "custom_quote_requests", ["workspace_id"])
    op.create_table(
        "counters",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    for table in (
        "counters",
        "custom_quote_requests",
        "renewals",
        "usage_records",
        "usage_counters",
        "idempotency_keys",
        "outbox_events",
        "scheduled_changes",
        "invoices",
        "payments",
        "cards",
        "ledger_entries",
        "billing_details",
    ):
        op.drop_table(table)
    with op.batch_alter_table("workspaces") as batch:
        for column in ("renewal_payment", "event_sequence", "balance_minor", "currency", "status"):
            batch.drop_column(column)
