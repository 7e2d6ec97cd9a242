"""Named counters that never skip or repeat a number, also across replicas."""

from __future__ import annotations

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from gateway.storage.db import Counter


def next_value(session: Session, name: str) -> int:
    """Add one to counter ``name`` (starting at 1) and return it.

    An upsert on the counter's row: the row stays locked until the transaction ends, so a
    concurrent caller waits and gets the next number, and a rollback gives the number back.
    """
    dialect = session.get_bind().dialect.name
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(Counter)
    statement = (
        insert.values(name=name, value=1)
        .on_conflict_do_update(index_elements=[Counter.name], set_={"value": Counter.value + 1})
        .returning(Counter.value)
    )
    with session.no_autoflush:  # the counters table holds nothing pending; what is, is written once, later
        return int(session.execute(statement).scalar_one())
