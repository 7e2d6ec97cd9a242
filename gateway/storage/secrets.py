"""Secrets the gateway makes for itself: created once, then shared by every replica that
uses the same database, so that what one replica signs another verifies without any
configuration. A setting may provide the secret instead (see ``gateway.server.app``)."""

from __future__ import annotations

import base64
import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from gateway.storage.db import GatewaySecret

SECRET_BYTES = 32


def shared_secret(sessions: sessionmaker[Session], name: str, now: datetime) -> bytes:
    """The secret ``name``: the stored one, or a new random one stored first.

    Race-safe across processes: gateways starting together each try to insert their own
    candidate (``ON CONFLICT DO NOTHING``) and then read the row back, so all of them end up
    with the one that committed first. A start-up that finds the secret writes nothing.
    """
    with sessions() as session:
        stored = session.scalar(select(GatewaySecret.value).where(GatewaySecret.name == name))
    if stored is None:
        with sessions.begin() as session:  # short, on its own; waits for a concurrent insert
            dialect = session.get_bind().dialect.name
            insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(GatewaySecret)
            candidate = base64.urlsafe_b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")
            session.execute(
                insert.values(name=name, value=candidate, created_at=now).on_conflict_do_nothing(
                    index_elements=[GatewaySecret.name]
                )
            )
            stored = session.scalars(select(GatewaySecret.value).where(GatewaySecret.name == name)).one()
    return base64.urlsafe_b64decode(stored)
