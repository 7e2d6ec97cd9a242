"""Where rate-limit counts live: in the process (the default) or in the gateway's database,
shared by every replica (``BILLING_GATEWAY_RATE_LIMIT_STORE=database``).

Both keep two counts per rule and subject (this window's and the previous one's) and weigh them
with :mod:`gateway.core.rate_limits`. A refused request is not counted: a client that waits as
long as ``Retry-After`` says gets through. Failed sign-ins are the exception: each one is
recorded, and a subject over that rule's limit is refused before its key is even looked up.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from gateway.core.rate_limits import Rule, Window, admits, retry_after
from gateway.storage.db import WRITE_LOCK, RateLimitCount

logger = logging.getLogger("gateway.rate_limits")

STORES = ("memory", "database")
MAX_SUBJECTS = 100_000  # the memory store's bound: the least recently seen are forgotten first


@dataclass(frozen=True)
class Refusal:
    """A request over a rule's limit: which rule, and whole seconds until it would fit."""

    rule: Rule
    retry_after: int


class CountStore(Protocol):
    def take(self, rule: Rule, subject: str, cost: int, now: float) -> Refusal | None:
        """Count ``cost`` units unless they would exceed the rule (cost 0: only check that the
        subject is under it); the refusal if so, counting nothing."""
        ...

    def record(self, rule: Rule, subject: str, now: float) -> None:
        """Count one unit whatever the limit (a failed sign-in)."""
        ...

    def purge(self, now: float) -> int:
        """Forget windows that no longer count; how many were forgotten."""
        ...


class MemoryStore:
    """Counts in this process, for one server (each worker process counts on its own)."""

    def __init__(self, max_subjects: int = MAX_SUBJECTS) -> None:
        self._counts: OrderedDict[tuple[str, str], tuple[int, int, int]] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_subjects

    def _counts_at(self, key: tuple[str, str], window: Window) -> tuple[int, int]:
        """(previous, current) for ``window``, from what is kept (held under the lock)."""
        kept = self._counts.get(key)
        if kept is None:
            return 0, 0
        index, previous, current = kept
        if index == window.index:
            return previous, current
        if index == window.index - 1:
            return current, 0
        return 0, 0

    def _keep(self, key: tuple[str, str], window: Window, previous: int, current: int) -> None:
        self._counts[key] = (window.index, previous, current)
        self._counts.move_to_end(key)
        while len(self._counts) > self._max:
            self._counts.popitem(last=False)

    def take(self, rule: Rule, subject: str, cost: int, now: float) -> Refusal | None:
        window = Window.at(now, rule.period)
        key = (rule.name, subject)
        with self._lock:
            previous, current = self._counts_at(key, window)
            if not admits(previous, current, cost, rule.limit, window):
                return Refusal(rule, retry_after(previous, current, cost, rule.limit, window, rule.period))
            if cost:
                self._keep(key, window, previous, current + cost)
        return None

    def record(self, rule: Rule, subject: str, now: float) -> None:
        window = Window.at(now, rule.period)
        key = (rule.name, subject)
        with self._lock:
            previous, current = self._counts_at(key, window)
            self._keep(key, window, previous, current + 1)

    def purge(self, now: float) -> int:
        return 0  # bounded by MAX_SUBJECTS instead


class DatabaseStore:
    """Counts in the gateway's database (table ``rate_limit_counts``), shared by the replicas.
    One short transaction per check, on a connection of its own that is returned before the
    request's work begins. The row's lock (PostgreSQL) or the write lock (SQLite) makes a
    count and its check one step, so replicas never admit more than the limit together."""

    def __init__(self, engine: Engine) -> None:
        self._reads = engine
        self._engine = engine.execution_options(**{WRITE_LOCK: True})
        self._insert = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert

    def _add(self, connection: object, rule: Rule, subject: str, window: Window, cost: int) -> int:
        """Add ``cost`` to this window's count (creating it); the new count."""
        table = RateLimitCount
        statement = (
            self._insert(table)
            .values(
                rule=rule.name,
                subject=subject,
                window_index=window.index,
                units=cost,
                expires=(window.index + 2) * rule.period,
            )
            .on_conflict_do_update(
                index_elements=["rule", "subject", "window_index"], set_={"units": table.units + cost}
            )
            .returning(table.units)
        )
        return int(connection.execute(statement).scalar_one())  # type: ignore[attr-defined]

    def _count(self, connection: object, rule: Rule, subject: str, index: int) -> int:
        table = RateLimitCount
        found = connection.execute(  # type: ignore[attr-defined]
            select(table.units).where(
                table.rule == rule.name, table.subject == subject, table.window_index == index
            )
        ).scalar_one_or_none()
        return int(found or 0)

    def take(self, rule: Rule, subject: str, cost: int, now: float) -> Refusal | None:
        window = Window.at(now, rule.period)
        table = RateLimitCount
        if cost == 0:  # a check: reads only, without the write lock
            with self._reads.connect() as connection:
                previous = self._count(connection, rule, subject, window.index - 1)
                current = self._count(connection, rule, subject, window.index)
            if admits(previous, current, 0, rule.limit, window):
                return None
            return Refusal(rule, retry_after(previous, current, 0, rule.limit, window, rule.period))
        with self._engine.begin() as connection:
            previous = self._count(connection, rule, subject, window.index - 1)
            # Count first: the row stays locked until commit, so no other replica counts between
            # this check and the count; a refusal takes its units back in the same transaction.
            current = self._add(connection, rule, subject, window, cost)
            if admits(previous, current - cost, cost, rule.limit, window):
                return None
            connection.execute(
                update(table)
                .where(
                    table.rule == rule.name,
                    table.subject == subject,
                    table.window_index == window.index,
                )
                .values(units=table.units - cost)
            )
            return Refusal(rule, retry_after(previous, current - cost, cost, rule.limit, window, rule.period))

    def record(self, rule: Rule, subject: str, now: float) -> None:
        with self._engine.begin() as connection:
            self._add(connection, rule, subject, Window.at(now, rule.period), 1)

    def purge(self, now: float) -> int:
        table = RateLimitCount
        with self._engine.begin() as connection:
            return connection.execute(delete(table).where(table.expires < now)).rowcount


class RateLimiter:
    """The configured rules over a store. A store that fails (the database is down) admits the
    request, with a warning: the limits protect the gateway, they must not become its outage."""

    def __init__(
        self, rules: tuple[Rule, ...], store: CountStore, clock: Callable[[], float] = time.time
    ) -> None:
        self.rules = {rule.name: rule for rule in rules}
        self.store = store
        self.clock = clock

    def take(self, name: str, subject: str, cost: int = 1) -> Refusal | None:
        """Count ``cost`` units of rule ``name`` for ``subject``, or the refusal (counting nothing)."""
        rule = self.rules[name]
        if not rule.enabled or cost < 0:
            return None
        try:
            return self.store.take(rule, subject, cost, self.clock())
        except Exception:
            logger.warning("rate limit %s not checked: its store failed", name, exc_info=True)
            return None

    def check(self, name: str, subject: str) -> Refusal | None:
        """Whether ``subject`` is over rule ``name`` already, counting nothing."""
        return self.take(name, subject, 0)

    def record(self, name: str, subject: str) -> None:
        rule = self.rules[name]
        if not rule.enabled:
            return
        try:
            self.store.record(rule, subject, self.clock())
        except Exception:
            logger.warning("rate limit %s not recorded: its store failed", name, exc_info=True)

    def purge(self) -> int:
        return self.store.purge(self.clock())


def store_for(name: str, engine: Engine) -> CountStore:
    """The store a ``BILLING_GATEWAY_RATE_LIMIT_STORE`` value names."""
    if name == "database":
        return DatabaseStore(engine)
    return MemoryStore()
