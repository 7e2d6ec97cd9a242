"""Card fingerprints under the installation's own key: a processor's fingerprint may be
derivable from the card number (the sandbox's was an HMAC under a public constant), so the
stored one becomes HMAC-SHA256(card_fingerprint_key, "card-fingerprint\\0" + it), as
gateway.services.cards.keyed_fingerprint computes for new cards. The key is made here if no
gateway made it yet, as gateway.storage.secrets.shared_secret would.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

import base64
import hashlib
import hmac
import secrets

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

KEY_NAME = "card_fingerprint_key"
KEY_BYTES = 32

secrets_table = sa.table("gateway_secrets", sa.column("name", sa.String), sa.column("value", sa.String))
cards = sa.table("cards", sa.column("id", sa.String), sa.column("fingerprint", sa.String))


def upgrade() -> None:
    connection = op.get_bind()
    if connection.execute(sa.select(sa.func.count()).select_from(cards)).scalar_one() == 0:
        return  # nothing to re-key: the key is made by the first gateway that needs it
    read = sa.select(secrets_table.c.value).where(secrets_table.c.name == KEY_NAME)
    value = connection.execute(read).scalar_one_or_none()
    if value is None:
        value = base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")
        connection.execute(sa.insert(secrets_table).values(name=KEY_NAME, value=value))
    key = base64.urlsafe_b64decode(value)
    for card_id, fingerprint in connection.execute(sa.select(cards.c.id, cards.c.fingerprint)).all():
        keyed = hmac.new(key, b"card-fingerprint\x00" + fingerprint.encode(), hashlib.sha256).hexdigest()[:32]
        connection.execute(sa.update(cards).where(cards.c.id == card_id).values(fingerprint=keyed))


def downgrade() -> None:
    pass  # a keyed fingerprint cannot be turned back; it stays as good for spotting duplicates
