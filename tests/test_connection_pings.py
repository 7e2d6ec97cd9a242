"""PostgreSQL connections are pinged before use only after they sat in the pool for a while
(gateway.storage.db.ping_when_idle): a connection returned a moment ago goes out as it is, an
idle one is pinged, and one the database dropped is replaced before any statement meets it."""

from __future__ import annotations

import os
import time

import psycopg
import pytest
from sqlalchemy import exc, text

from gateway.storage import db


@pytest.fixture
def postgres_url() -> str:
    url = os.environ.get("BILLING_GATEWAY_TEST_DATABASE_URL", "")
    if not url.startswith(("postgresql:", "postgresql+", "postgres:")):
        pytest.skip("needs BILLING_GATEWAY_TEST_DATABASE_URL pointing at PostgreSQL (SQLite is never pinged)")
    return url


@pytest.fixture
def engine_of(postgres_url, monkeypatch):
    """An engine of one connection with an idle window of ``window`` seconds, and the count of
    its pings."""
    engines = []

    def make(window: float):
        monkeypatch.setattr(db, "PING_AFTER_IDLE", window)
        engine = db.create_db_engine(postgres_url, pool_size=1, max_overflow=0)
        engines.append(engine)
        count: list[int] = []
        ping = engine.dialect.do_ping
        monkeypatch.setattr(engine.dialect, "do_ping", lambda connection: count.append(1) or ping(connection))
        return engine, count

    yield make
    for engine in engines:
        engine.dispose()


def backend_pid(engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


def terminate(postgres_url: str, pid: int) -> None:
    url = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    time.sleep(0.05)  # the backend is gone


def test_a_connection_returned_a_moment_ago_is_not_pinged_and_an_idle_one_is(engine_of):
    engine, count = engine_of(0.05)
    first = backend_pid(engine)  # a new connection: no ping
    assert backend_pid(engine) == first and count == []  # back a moment ago: none either
    time.sleep(0.1)
    assert backend_pid(engine) == first and count == [1]  # idle past the window: pinged, alive


def test_an_idle_connection_the_database_dropped_is_replaced_before_use(engine_of, postgres_url):
    engine, count = engine_of(0.05)
    dropped = backend_pid(engine)
    terminate(postgres_url, dropped)
    time.sleep(0.1)
    assert backend_pid(engine) != dropped  # the ping failed: a new connection answered
    assert count == [1]


def test_within_the_window_a_dropped_connection_fails_once_and_the_pool_is_renewed(engine_of, postgres_url):
    """The trade against pinging every checkout: a database that went away a moment after a
    connection's last use fails that connection's first statement (the request is answered
    DATABASE_UNAVAILABLE, nothing done); the pool is renewed, and the next request works."""
    engine, count = engine_of(60.0)
    dropped = backend_pid(engine)
    terminate(postgres_url, dropped)
    with pytest.raises(exc.OperationalError) as failed:  # within a minute of its return
        backend_pid(engine)
    assert failed.value.connection_invalidated
    assert backend_pid(engine) != dropped
    assert count == []
