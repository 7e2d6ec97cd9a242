"""Price versions: the version each subscription and scheduled change is priced at, and the
price changes subscribers were given notice of.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

from gateway.storage.db import UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL reads as the plan's first price version: what every existing subscriber bought.
    with op.batch_alter_table("workspaces") as batch:
        batch.add_column(sa.Column("price_version", sa.String(32), nullable=True))
    with op.batch_alter_table("scheduled_changes") as batch:
        batch.add_column(sa.Column("price_version", sa.String(32), nullable=True))
    op.create_table(
        "price_changes",
        sa.Column(
            "workspace_id",
            sa.String(32),
            sa.ForeignKey("workspaces.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("plan_code", sa.String(32), nullable=False),
        sa.Column("from_version", sa.String(32), nullable=True),
        sa.Column("to_version", sa.String(32), nullable=False),
        sa.Column("noticed_at", UTCDateTime(), nullable=False),
        sa.Column("effective_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("price_changes")
    with op.batch_alter_table("scheduled_changes") as batch:
        batch.drop_column("price_version")
    with op.batch_alter_table("workspaces") as batch:
        batch.drop_column("price_version")
