"""Shared fixtures: a real database (SQLite, or PostgreSQL when a URL is set),
a gateway with a controllable clock, and a GraphQL client over real HTTP handling."""

from __future__ import annotations

import copy
import dataclasses
import importlib.metadata
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from starlette.testclient import TestClient

from gateway.core.catalog import Catalog, load_catalog
from gateway.core.rate_limits import parse_rules
from gateway.plugin_api import registry as plugin_registry
from gateway.plugin_api.registry import Registry
from gateway.server.app import Gateway, build_gateway
from gateway.server.http import create_app
from gateway.server.settings import Settings
from gateway.services.keys import issue_api_key
from gateway.services.workspaces import create_workspace
from gateway.storage.db import Base, create_db_engine, migrate

from helpers import BUILT_IN_PLUGINS, empty_tables, registry_of

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


@pytest.fixture(autouse=True)
def discovered_plugins(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Entry-point discovery in every test sees the built-ins and the distributions that tests
    lay out in their tmp_path, never the others installed beside the gateway: the tests of
    start-up (the CLI, build_gateway without a registry, load_plugins()) then load the same
    plugins wherever the suite runs. The rest of the suite does not discover at all: it
    builds its registries from BUILT_IN_PLUGINS (``registry_of``)."""
    built_in = {(name, module.__name__) for name, module in BUILT_IN_PLUGINS.items()}
    test_made = tmp_path_factory.getbasetemp().resolve()

    def visible(ep: importlib.metadata.EntryPoint) -> bool:
        if (ep.name, ep.value) in built_in:
            return True
        return ep.dist is not None and Path(str(ep.dist.locate_file(""))).resolve().is_relative_to(test_made)

    def entry_points(*, group: str) -> importlib.metadata.EntryPoints:
        return importlib.metadata.EntryPoints(filter(visible, importlib.metadata.entry_points(group=group)))

    monkeypatch.setattr(plugin_registry, "entry_points", entry_points)


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
def settings(database_url: str, request: pytest.FixtureRequest) -> Settings:
    """The gateway's defaults on the test database; rate limits off for a test marked
    ``without_rate_limits`` (a volume test whose subject is something else)."""
    if request.node.get_closest_marker("without_rate_limits") is not None:
        return Settings(database_url=database_url, rate_limits=parse_rules("off"))
    return Settings(database_url=database_url)


class BuiltOnce:
    """The parts of a gateway that no test changes, built once per run and passed to every
    ``gateway`` fixture's build_gateway (building them per test was most of its time). The
    GraphQL schema is built once per process anyway (``build_schema`` is cached).

    Each part is kept by the settings (and plugin environment) it is built from, so a
    module that overrides the ``settings`` or ``plugin_env`` fixture still gets parts that
    match them. What a test may change is per test: the registry (of the built-in plugins,
    whatever else is installed) is copied for each gateway (tests register event listeners
    in it); settings, clock, sessions and the rest of the Gateway are new for each test.
    Tests of start-up itself (plugin, catalog and settings errors) call build_gateway
    without these parts and so build everything.
    """

    def __init__(self) -> None:
        self._catalogs: dict[Path | None, Catalog] = {}
        self._registries: dict[tuple[frozenset[str], frozenset[tuple[str, str]]], Registry] = {}
        self._engines: dict[str, Engine] = {}

    def parts(self, settings: Settings, plugin_env: dict[str, str] | None = None) -> dict[str, Any]:
        """The keyword arguments for build_gateway(settings), with plugins loaded while
        ``plugin_env`` is set (their own settings are environment variables)."""
        if settings.catalog_path not in self._catalogs:
            self._catalogs[settings.catalog_path] = load_catalog(settings.catalog_path)
        key = (settings.disabled_plugins, frozenset((plugin_env or {}).items()))
        if key not in self._registries:
            with pytest.MonkeyPatch.context() as env:  # set only while the hooks run
                for name, value in (plugin_env or {}).items():
                    env.setenv(name, value)
                self._registries[key] = registry_of(disabled=settings.disabled_plugins)
        if settings.database_url not in self._engines:
            self._engines[settings.database_url] = create_db_engine(settings.database_url)
        registry = self._registries[key]
        return {
            "catalog": self._catalogs[settings.catalog_path],  # frozen
            # A copy of each of its lists and dicts: what one test registers is gone in the next.
            # The providers in them are shared; the built-in plugins' providers keep no state.
            "registry": Registry(
                **{f.name: copy.copy(getattr(registry, f.name)) for f in dataclasses.fields(registry)}
            ),
            # One pool for the run: no new connection (and no new SQL compilation cache) per test.
            "engine": self._engines[settings.database_url],
        }

    def close(self) -> None:
        for engine in self._engines.values():
            engine.dispose()


@pytest.fixture(scope="session")
def built_once() -> Iterator[BuiltOnce]:
    parts = BuiltOnce()
    yield parts
    parts.close()


@pytest.fixture
def plugin_env() -> dict[str, str]:
    """The environment variables the plugins see when they load (a plugin's own settings,
    such as BILLING_GATEWAY_VAT_TERRITORIES): none. A module overrides this fixture to test
    plugins configured; the variables are set only while the plugins load."""
    return {}


@pytest.fixture
def gateway(settings: Settings, clock: Clock, built_once: BuiltOnce, plugin_env: dict[str, str]) -> Gateway:
    # No gateway.close() after the test: that disposes the engine, which is the run's
    # (built_once disposes it at the end).
    parts = built_once.parts(settings, plugin_env)
    gateway = build_gateway(settings, clock=clock, run_migrations=False, **parts)
    with gateway.engine.begin() as conn:  # every test starts from empty tables
        empty_tables(conn)
    return gateway


@pytest.fixture
def client(gateway: Gateway) -> TestClient:
    with TestClient(create_app(gateway)) as client:
        yield client


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, database_url: str, gateway: Gateway) -> None:
    """The command line (gateway.server.cli.main) on the test database, from empty tables
    (the ``gateway`` fixture empties them)."""
    monkeypatch.setenv("BILLING_GATEWAY_DATABASE_URL", database_url)


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
