"""Payments: one state machine for every method (pending, expiry, settle later, refunds owed).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

from gateway.storage.db import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("payments") as batch:
        batch.add_column(sa.Column("idempotency_key", sa.String(64), nullable=True))
        batch.add_column(sa.Column("answered_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("expires_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("next_action", sa.String(2048), nullable=True))
        batch.add_column(sa.Column("instructions", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("refund_due", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("refund_reference", sa.String(128), nullable=True))
        batch.create_unique_constraint("uq_payments_workspace_key", ["workspace_id", "idempotency_key"])
    op.create_index("ix_payments_open", "payments", ["status", "expires_at"])
    op.create_index("ix_payments_method_reference", "payments", ["method", "reference"])
    # Payments before this revision had all answered; "canceled" (an off-session renewal that
    # asked for 3-D Secure) is now a failure with its reason.
    op.execute("UPDATE payments SET answered_at = updated_at")
    op.execute(
        "UPDATE payments SET status = 'failed', failure_code = 'authentication_required' "
        "WHERE status = 'canceled'"
    )


def downgrade() -> None:
    op.drop_index("ix_payments_method_reference", "payments")
    op.drop_index("ix_payments_open", "payments")
    with op.batch_alter_table("payments") as batch:
        batch.drop_constraint("uq_payments_workspace_key", type_="unique")
        for column in (
            "refund_reference",
            "refund_due",
            "instructions",
            "next_action",
            "expires_at",
            "answered_at",
            "idempotency_key",
        ):
            batch.drop_column(column)
