"""Secrets the gateway makes for itself: created once, then shared by every replica that
uses the same database, so that what one replica signs another verifies without any
configuration. A setting may provide the secret instead (see ``gateway.server.app``)."""

from __future__ import annotations

import base64
import secrets

from sqlalchemy.engine import Engine

SECRET_BYTES = 32


def shared_secret(engine: Engine, name: str) -> bytes:
    """The secret ``name``: the stored one, or a new random one stored first.

    Race-safe across processes: gateways starting together each try to insert their own
    candidate (``ON CONFLICT DO NOTHING``, which waits for a concurrent insert of the same
    name) and then read the row back, so all of them end up with the one that committed
    first. A start-up that finds the secret writes nothing.

    The statements run on the driver's own connection, past SQLAlchemy's statement log: an
    operator who turns that log on (``echo``) sees parameters and rows, and never this value.
    """
    sqlite = engine.dialect.name == "sqlite"
    mark = "?" if sqlite else "%s"  # the drivers' parameter styles: sqlite3's, psycopg's
    read = f"SELECT value FROM gateway_secrets WHERE name = {mark}"
    connection = engine.raw_connection()  # from the pool: its settings (busy timeout) apply
    try:
        cursor = connection.cursor()
        cursor.execute(read, (name,))
        row = cursor.fetchone()
        if row is None:
            candidate = base64.urlsafe_b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")
            if sqlite:  # the gateway's SQLite connections begin their transactions themselves
                cursor.execute("BEGIN IMMEDIATE")
            cursor.execute(
                f"INSERT INTO gateway_secrets (name, value) VALUES ({mark}, {mark}) ON CONFLICT (name) DO NOTHING",
                (name, candidate),
            )
            cursor.execute(read, (name,))
            row = cursor.fetchone()
            if sqlite:
                cursor.execute("COMMIT")
            else:
                connection.commit()
        else:
            connection.rollback()  # end the read (a PostgreSQL driver began a transaction)
        cursor.close()
    finally:
        connection.close()  # back to the pool, which rolls back anything left open
    assert row is not None, "the secret was stored or found"
    return base64.urlsafe_b64decode(row[0])
