"""The shared helpers can fail: a snapshot sees every table and every kind of write."""

from __future__ import annotations

from sqlalchemy import update

from gateway.storage.db import Base, Workspace

from helpers import snapshot


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
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())
    assert snapshot(gateway) == empty
