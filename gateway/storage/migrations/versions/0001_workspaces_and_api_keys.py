"""Workspaces with their subscription, and hashed API keys.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

import gateway.storage.db

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workspaces",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", gateway.storage.db.UTCDateTime(), nullable=False),
        sa.Column("plan_code", sa.String(32), nullable=False),
        sa.Column("email_credits", sa.Integer(), nullable=False),
        sa.Column("messaging_credits", sa.Integer(), nullable=False),
        sa.Column("period_anchor", gateway.storage.db.UTCDateTime(), nullable=False),
        sa.Column("period_start", gateway.storage.db.UTCDateTime(), nullable=False),
        sa.Column("period_end", gateway.storage.db.UTCDateTime(), nullable=False),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "workspace_id", sa.String(32), sa.ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("prefix", sa.String(16), nullable=False, unique=True),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", gateway.storage.db.UTCDateTime(), nullable=False),
        sa.Column("revoked_at", gateway.storage.db.UTCDateTime(), nullable=True),
    )
    op.create_index("ix_api_keys_workspace_id", "api_keys", ["workspace_id"])


def downgrade() -> None:
    op.drop_index("ix_api_keys_workspace_id", "api_keys")
    op.drop_table("api_keys")
    op.drop_table("workspaces")
