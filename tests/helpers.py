"""Helpers shared by the test modules: one home for what several of them need.

Fixtures stay in conftest.py; this module holds plain functions and constants, imported
by name (``from helpers import snapshot``): pytest puts this folder on ``sys.path``
because conftest.py lives here.
"""

from __future__ import annotations

from sqlalchemy import inspect, text

# ------------------------------------------------------------------ the database


def snapshot(gateway) -> dict[str, list[str]]:
    """Every row of every table in the database, by table name, to prove that an operation
    wrote nothing (``assert snapshot(gateway) == before``).

    The tables come from the database itself, not from the models, so a write to a table
    that no model maps would show too; values are as stored (no type conversion), rows in
    a fixed order.
    """
    with gateway.engine.connect() as connection:
        tables = inspect(connection).get_table_names()
        return {t: sorted(map(repr, connection.execute(text(f'SELECT * FROM "{t}"')).all())) for t in tables}
