"""Webhook signing secrets encrypted at rest, and a previous secret that signs during a rotation's
grace period.

The secrets written before are encrypted here: with the first key of
BILLING_GATEWAY_ENCRYPTION_KEYS when it is set, else with a key the gateway makes and keeps in the
new ``encryption_keys`` table (see gateway/storage/encryption.py). Downgrading decrypts them.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-10
"""

import os
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from gateway.storage.db import UTCDateTime
from gateway.storage.encryption import Keyring, new_key

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

ENV = "BILLING_GATEWAY_ENCRYPTION_KEYS"

keys_table = sa.table(
    "encryption_keys",
    sa.column("id", sa.String),
    sa.column("key", sa.String),
    sa.column("created_at", UTCDateTime()),
)
endpoints = sa.table("webhook_endpoints", sa.column("id", sa.String), sa.column("secret", sa.String))


def _keyring(connection: sa.Connection, create: bool) -> Keyring:
    keys = [k.strip() for k in os.environ.get(ENV, "").split(",") if k.strip()]
    stored = connection.execute(sa.select(keys_table.c.key).where(keys_table.c.id == "gateway")).scalar()
    if stored is None and not keys and create:
        stored = new_key()
        connection.execute(sa.insert(keys_table).values(id="gateway", key=stored, created_at=datetime.now(UTC)))
    ring = Keyring()
    ring.configure(keys + ([stored] if stored else []))
    return ring


def upgrade() -> None:
    op.create_table(
        "encryption_keys",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.alter_column("secret", type_=sa.String(512), existing_type=sa.String(64), existing_nullable=False)
        batch.add_column(sa.Column("previous_secret", sa.String(512), nullable=True))
        batch.add_column(sa.Column("previous_secret_until", UTCDateTime(), nullable=True))
    connection = op.get_bind()
    rows = connection.execute(sa.select(endpoints.c.id, endpoints.c.secret)).all()
    if not rows:
        return
    ring = _keyring(connection, create=True)
    for endpoint_id, secret in rows:
        connection.execute(
            sa.update(endpoints).where(endpoints.c.id == endpoint_id).values(secret=ring.encrypt(ring.decrypt(secret)))
        )


def downgrade() -> None:
    connection = op.get_bind()
    rows = connection.execute(sa.select(endpoints.c.id, endpoints.c.secret)).all()
    if rows:
        ring = _keyring(connection, create=False)
        for endpoint_id, secret in rows:
            connection.execute(
                sa.update(endpoints).where(endpoints.c.id == endpoint_id).values(secret=ring.decrypt(secret))
            )
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.drop_column("previous_secret_until")
        batch.drop_column("previous_secret")
        batch.alter_column("secret", type_=sa.String(64), existing_type=sa.String(512), existing_nullable=False)
    op.drop_table("encryption_keys")
