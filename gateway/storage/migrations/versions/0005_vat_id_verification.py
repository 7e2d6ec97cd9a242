"""Billing details remember what a tax ID register (VIES) said of the VAT ID.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

from gateway.storage.db import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("billing_details") as batch:
        batch.add_column(sa.Column("vat_id_status", sa.String(16), nullable=True))
        batch.add_column(sa.Column("vat_id_checked_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("billing_details") as batch:
        batch.drop_column("vat_id_checked_at")
        batch.drop_column("vat_id_status")
