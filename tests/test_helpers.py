"""The shared helpers can fail: a snapshot sees every table and every kind of write; the
gateway parts that conftest builds once per run are shared, the registry is not."""

from __future__ import annotations

import dataclasses

from sqlalchemy import update

from gateway.server.app import build_gateway
from gateway.storage.db import Base, Workspace

from helpers import empty_tables, snapshot


def test_a_snapshot_covers_every_table_of_the_models_and_the_migrations(gateway):
    tables = set(snapshot(gateway))
    assert {table.name for table in Base.metadata.sorted_tables} <= tables
    assert "alembic_version" in tables  # tables no model maps are compared too


def test_a_snapshot_changes_with_an_insert_an_update_and_a_delete(gateway, make_workspace):
    empty = snapshot(gateway)
    member = make_workspace("Acme")
    added = snapshot(gateway)
    assert added != empty
    with gateway.engine.begin() as connection:
        connection.execute(update(Workspace).where(Workspace.id == member.id).values(name="Acme 2"))
    changed = snapshot(gateway)
    assert changed != added and changed["workspaces"] != added["workspaces"]
    with gateway.engine.begin() as connection:
        empty_tables(connection)
    assert snapshot(gateway) == empty


def test_gateways_share_the_parts_built_once_but_not_the_registry(built_once, settings, clock):
    first, second = (
        build_gateway(settings, clock=clock, run_migrations=False, **built_once.parts(settings))
        for _ in range(2)
    )
    assert first.catalog is second.catalog and first.engine is second.engine
    first.registry.event_listeners["audit"] = object()  # as tests of event listeners do
    assert "audit" not in second.registry.event_listeners
    assert "audit" not in built_once.parts(settings)["registry"].event_listeners
    assert first.registry.payment_methods == second.registry.payment_methods


def test_parts_built_once_follow_the_settings(built_once, settings):
    without_cards = dataclasses.replace(settings, disabled_plugins=frozenset({"payment_card"}))
    assert "card" in built_once.parts(settings)["registry"].payment_methods
    assert "card" not in built_once.parts(without_cards)["registry"].payment_methods
