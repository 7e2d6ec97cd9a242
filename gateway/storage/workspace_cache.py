"""A workspace's rows that the Order Preview prices against, kept in memory between writes.

The Billing page re-prices on every slider move: each ``quote`` reads the workspace and its
billing details, and nothing else from the database. Reading them took half of a quote's time
over HTTP (a pool checkout, a transaction, the ORM), so each gateway keeps them, by workspace,
in a :class:`WorkspaceCache`, and serves an entry only while no commit can have changed it:

* **SQLite** (one database file, perhaps several processes: ``serve --workers``, the command
  line, a hand-written UPDATE): ``PRAGMA data_version`` of a connection of the cache's own
  changes whenever another connection commits, in any process. An entry keeps the version read
  before its rows were; a lookup that finds another version misses. So any commit anywhere
  empties the cache, in effect: the embedded default saves the reads between writes.
* **PostgreSQL** (replicas): triggers on ``workspaces`` and ``billing_details`` (migration
  0017) ``NOTIFY`` :data:`CHANNEL` with the workspace's id, delivered at commit to every
  replica's notifier (:mod:`gateway.events.notify`), which drops that entry
  (:func:`changed`); the triggers see every write, hand-written SQL included. A commit made
  through this process's sessions drops its workspaces' entries at once (SQLAlchemy's
  ``after_commit``), before its notification comes back. The cache serves nothing while the
  notifier's LISTEN connection is down, forgets everything when it is up again (notifications
  may have been missed), and never serves an entry older than :data:`MAX_AGE` seconds.
* Either way, rows read by a request that began before an invalidation are not kept (an epoch
  counter): they may predate the commit that invalidated them.

Entries are detached ORM objects shared by threads: read them, never change or re-attach them.
An in-memory SQLite database (one per connection) is never cached.
"""

from __future__ import annotations

import functools
import sqlite3
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import chain
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.orm import ORMExecuteState, Session

from gateway.storage.db import BillingDetails, Workspace, normalise_url

CHANNEL = "billing_gateway_workspaces"  # the triggers' NOTIFY channel (migration 0017)
MAX_ENTRIES = 10_000
MAX_AGE = 60.0  # seconds: on PostgreSQL, an entry is read again at least this often
_PENDING = "gateway.storage.workspace_cache.changed"  # Session.info: workspaces written, None: any


@dataclass(frozen=True)
class Rows:
    """What a quote prices against: the workspace and its billing details (None: none saved)."""

    workspace: Workspace
    details: BillingDetails | None


@dataclass(frozen=True)
class Stamp:
    """Taken before the rows are read: what the cache must still be at when they are kept."""

    epoch: int
    version: int | None  # SQLite's data_version; None on PostgreSQL


class _Closed(Exception):
    """The version cannot be read now without waiting (the cache was closed, the database is
    busy): serve and keep nothing this time."""


class _DataVersion:
    """``PRAGMA data_version`` on a SQLite connection of its own: it changes whenever any other
    connection (this process's pool included) commits to the file."""

    def __init__(self, database: str) -> None:
        # timeout=0: it is read on the event loop (gateway.server.http), which must never wait
        # for a lock; a busy database is a miss (:class:`_Closed`), never a wait.
        self._connection = sqlite3.connect(database, check_same_thread=False, isolation_level=None, timeout=0)
        self._lock = threading.Lock()

    def read(self) -> int:
        # Held for the few microseconds of the pragma: with timeout=0 it never waits inside.
        with self._lock:
            try:
                return int(self._connection.execute("PRAGMA data_version").fetchone()[0])
            except sqlite3.Error:  # busy, or closed meanwhile
                raise _Closed from None

    def close(self) -> None:
        with self._lock:
            self._connection.close()


@functools.lru_cache(maxsize=64)
def database_key(url: str | URL) -> str:
    """One database, however its URL was spelled (driver, password shown or not)."""
    if isinstance(url, URL):
        url = url.render_as_string(hide_password=False)
    return make_url(normalise_url(url)).render_as_string(hide_password=True)


_caches: dict[str, weakref.WeakSet[WorkspaceCache]] = {}  # database key -> this process's caches
_caches_lock = threading.Lock()


class WorkspaceCache:
    """The :class:`Rows` of workspaces, by id, for one gateway. Thread-safe.

    ``listening`` says whether notifications of changes arrive (PostgreSQL: the notifier's
    LISTEN connection is up); the cache serves nothing while it is false."""

    def __init__(
        self,
        engine: Engine,
        *,
        listening: Callable[[], bool] | None = None,
        max_entries: int = MAX_ENTRIES,
        max_age: float = MAX_AGE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[Stamp, float, Rows]] = OrderedDict()
        self._epoch = 0
        self._max, self._max_age, self._clock = max_entries, max_age, clock
        self._version: _DataVersion | None = None
        self.hits = self.misses = 0
        url = make_url(engine.url)
        self._sqlite = url.get_backend_name() == "sqlite"
        if self._sqlite:
            database = url.database or ""
            in_memory = database in ("", ":memory:") or url.query.get("mode") == "memory"
            self.enabled = not in_memory
            if self.enabled:
                self._version = _DataVersion(database)
                # A gateway dropped without close() (a test's) still closes its connection.
                weakref.finalize(self, self._version.close)
            self._listening: Callable[[], bool] = lambda: True
        else:
            self.enabled = listening is not None  # without notifications, nothing could be kept
            self._listening = listening or (lambda: False)
        self._key = database_key(engine.url)
        with _caches_lock:
            _caches.setdefault(self._key, weakref.WeakSet()).add(self)

    def close(self) -> None:
        with _caches_lock:
            caches = _caches.get(self._key)
            if caches is not None:
                caches.discard(self)
        if self._version is not None:
            self._version.close()
            self._version = None
        self.enabled = False
        self.forget()

    def _serving(self) -> bool:
        return self.enabled and self._listening()

    def _data_version(self) -> int | None:
        """SQLite's data_version now; None on PostgreSQL. Raises _Closed once closed."""
        reader = self._version  # close() may run meanwhile, in another thread
        if reader is None:
            if self._sqlite:
                raise _Closed
            return None
        return reader.read()

    def lookup(self, workspace_id: str) -> tuple[Rows | None, Stamp | None]:
        """The workspace's rows if nothing can have changed them since they were kept, else
        None and the stamp to :meth:`put` the rows read next with (None: do not keep them).
        Every call counts as a hit or a miss."""
        version: int | None = None
        serving = self._serving()
        if serving:
            try:
                version = self._data_version()  # before the caller's read, as a stamp must be
            except _Closed:
                serving = False
        now = self._clock()
        with self._lock:
            entry = self._entries.get(workspace_id) if serving else None
            if entry is not None:
                stamp, kept_at, rows = entry
                if stamp.version == version and now - kept_at < self._max_age:
                    self._entries.move_to_end(workspace_id)
                    self.hits += 1
                    return rows, None
                del self._entries[workspace_id]
            self.misses += 1
            return None, Stamp(self._epoch, version) if serving else None

    def put(self, workspace_id: str, rows: Rows, stamp: Stamp | None) -> None:
        """Keep rows read after ``stamp`` was taken, unless something was invalidated since."""
        if stamp is None:
            return
        with self._lock:
            if stamp.epoch != self._epoch or not self.enabled:
                return
            self._entries[workspace_id] = (stamp, self._clock(), rows)
            self._entries.move_to_end(workspace_id)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def forget(self, workspace_ids: Iterable[str] | None = None) -> None:
        """Drop these workspaces' entries (None: every entry); reads in flight keep nothing."""
        with self._lock:
            self._epoch += 1
            if workspace_ids is None:
                self._entries.clear()
            else:
                for workspace_id in workspace_ids:
                    self._entries.pop(workspace_id, None)

    def __len__(self) -> int:
        return len(self._entries)


def changed(database: Engine | str, workspace_ids: Iterable[str] | None) -> None:
    """Workspaces changed in that database (an engine, or its :func:`database_key`; None: any
    may have): every cache of this process on it forgets them. Safe from any thread."""
    key = database if isinstance(database, str) else database_key(database.url)
    with _caches_lock:
        caches = list(_caches.get(key, ()))
    ids = None if workspace_ids is None else tuple(workspace_ids)
    for cache in caches:
        cache.forget(ids)


# ------------------------------------------------------- this process's own commits


@event.listens_for(Session, "after_flush")
def _flushed(session: Session, _context: Any) -> None:
    written = set()
    for instance in chain(session.new, session.dirty, session.deleted):
        if isinstance(instance, Workspace):
            written.add(instance.id)
        elif isinstance(instance, BillingDetails):
            written.add(instance.workspace_id)
    if written and session.info.get(_PENDING, set()) is not None:
        session.info.setdefault(_PENDING, set()).update(written)


_TABLES = frozenset({Workspace.__tablename__, BillingDetails.__tablename__})


@event.listens_for(Session, "do_orm_execute")
def _bulk(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        table = getattr(state.statement, "table", None)
        if getattr(table, "name", None) in _TABLES:  # update(Workspace)...: which rows is unknown
            state.session.info[_PENDING] = None


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    # SQLAlchemy also calls after_commit when a savepoint is released: the outer transaction
    # has not committed yet, so what it wrote stays pending until it does.
    if _PENDING in session.info and not session.in_nested_transaction():
        written = session.info.pop(_PENDING)
        changed(session.get_bind().engine, written)


@event.listens_for(Session, "after_transaction_end")
def _ended(session: Session, transaction: Any) -> None:
    if transaction.parent is None:  # rolled back or closed without a commit: nothing changed
        session.info.pop(_PENDING, None)
