"""API key scopes: what each workspace key may do. Keys made before scopes get every scope,
so nothing that worked stops working.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

# Every scope there was when scopes came (gateway.services.keys.Scope), as the model stores them;
# spelled out: a migration must not change when the code's list grows.
EVERY_SCOPE = "billing live read usage webhooks"


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("scopes", sa.String(200), nullable=False, server_default=EVERY_SCOPE))
    with op.batch_alter_table("api_keys") as batch:  # new keys say their scopes themselves
        batch.alter_column("scopes", server_default=None, existing_type=sa.String(200), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("scopes")
