"""Shared fixtures: a real database (SQLite, or PostgreSQL when a URL is set),
a gateway with a controllable clock, and a GraphQL client over real HTTP handling."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from starlette.testclient import TestClient

from gateway.server.app import Gateway, build_gateway
from gateway.server.http import create_app
from gateway.server.settings import Settings
from gateway.services.workspaces import create_workspace, issue_api_key
from gateway.storage.db import Base, create_db_engine, migrate

TEST_DATABASE_URL = "BILLING_GATEWAY_TEST_DATABASE_URL"
START = datetime(2026, 11, 10, 9, 30, tzinfo=UTC)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """PostgreSQL when BILLING_GATEWAY_TEST_DATABASE_URL is set, else a SQLite file.

    The schema is built once by the Alembic migrations, from scratch.
    """
    url = os.environ.get(TEST_DATABASE_URL) or f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    engine = create_db_engine(url)
    with engine.begin() as conn:
        Base.metadata.drop_all(conn)
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    migrate(engine)
    engine.dispose()
    return url


@dataclass
class Clock:
    now: datetime = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url)


@pytest.fixture
def gateway(settings: Settings, clock: Clock) -> Gateway:
    gateway = build_gateway(settings, clock=clock, run_migrations=False)
    with gateway.engine.begin() as conn:  # every test starts from empty tables
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
    yield gateway
    gateway.close()


@pytest.fixture
def client(gateway: Gateway) -> TestClient:
    with TestClient(create_app(gateway)) as client:
        yield client


@dataclass
class Member:
    """A workspace and one of its API keys."""

    id: str
    key: str


@pytest.fixture
def make_workspace(gateway: Gateway) -> Callable[..., Member]:
    def make(name: str = "Acme", **plan: Any) -> Member:
        with gateway.sessions.begin() as session:
            workspace = create_workspace(session, gateway.catalog, name, gateway.clock(), **plan)
            key = issue_api_key(session, workspace.id, gateway.clock())
        return Member(workspace.id, key.secret)

    return make


@pytest.fixture
def graphql(client: TestClient) -> Callable[..., dict[str, Any]]:
    """Run one operation; return ``data``, failing the test on any GraphQL error."""

    def run(query: str, variables: dict[str, Any] | None = None, *, key: str | None = None) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        response = client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
        body = response.json()
        assert response.status_code == 200, body
        assert "errors" not in body, body["errors"]
        return body["data"]

    return run
