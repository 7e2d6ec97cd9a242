"""Wake-ups for the readers of the outbox, in this process and across replicas.

The outbox is the source of truth; a notification only says "workspace W may have
new events, read the outbox again". Losing one therefore delays delivery but never
loses an event, and a spurious one costs a read.

* In one process: :func:`announce` (called by ``emit``) remembers, on the session,
  the workspaces that got events; once the transaction **commits** (SQLAlchemy's
  ``after_commit``) every running :class:`Notifier` on that database is woken, from
  whichever thread committed (``loop.call_soon_threadsafe``). A rollback forgets them.
* Across replicas (PostgreSQL): ``announce`` also runs ``NOTIFY billing_gateway_events,
  '<workspace id>'`` inside the writing transaction, which PostgreSQL delivers only if
  that transaction commits. Each notifier keeps one connection of its own that
  ``LISTEN``\\s on the channel (reconnecting after a failure, and then waking every
  reader, since notifications may have been missed meanwhile).
* The same LISTEN connection receives ``billing_gateway_workspaces``, which triggers notify
  when a workspace or its billing details change: the workspace caches of this process
  (:mod:`gateway.storage.workspace_cache`) drop that workspace, and drop everything whenever
  the connection is (re-)established.
* Readers also re-read the outbox every :attr:`Notifier.poll_interval` seconds, so even a
  lost notification only delays an event by that much.

On SQLite there is no NOTIFY: the same API works within the one process.

Usage from the event loop::

    with gateway.notifier.listen(workspace_id) as wake:   # None: every workspace
        while True:
            wake.clear()
            ...read the outbox past the last sequence seen (in a worker thread)...
            await wake.wait(gateway.notifier.poll_interval)

or, for a worker that just needs a nudge, ``gateway.notifier.on_event(callback)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

import anyio
import anyio.abc
from sqlalchemy import event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session

from gateway.storage import workspace_cache
from gateway.storage.db import normalise_url

logger = logging.getLogger("gateway.notify")  # logger names are stable: operators filter on them

CHANNEL = "billing_gateway_events"
POLL_INTERVAL = 5.0  # seconds: readers re-read the outbox at least this often
_PENDING = (
    "gateway.events.notify.workspaces"  # Session.info key: workspaces that got events in this transaction
)
APPLICATION_NAME = "billing-gateway notifier"  # of the LISTEN connections, as pg_stat_activity shows
_NOTIFY = text("SELECT pg_notify(:channel, :workspace)")

Callback = Callable[[str | None], None]


_key = workspace_cache.database_key  # one database, however its URL was spelled


# ------------------------------------------------------------- the writing side


def announce(session: Session, workspace_id: str) -> None:
    """Wake readers of ``workspace_id`` once ``session``'s transaction commits.

    Called by ``emit``, inside the transaction that writes the event.
    """
    pending = session.info.setdefault(_PENDING, set())
    if workspace_id in pending:
        return  # this transaction announces the workspace already: one NOTIFY wakes its readers
    pending.add(workspace_id)
    if session.get_bind().dialect.name == "postgresql":
        # Delivered at commit, to every listening connection; dropped on rollback. session.connection(),
        # not session.execute(): no autoflush from here.
        session.connection().execute(_NOTIFY, {"channel": CHANNEL, "workspace": workspace_id})


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.in_nested_transaction():  # a savepoint released: the transaction has not committed
        return
    workspaces = session.info.pop(_PENDING, None)
    if workspaces:
        # get_bind() is an Engine or a Connection; both have .engine, whose URL is the key
        committed(session.get_bind().engine.url, workspaces)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)


@event.listens_for(Session, "after_transaction_end")
def _after_transaction_end(session: Session, transaction: Any) -> None:
    # Also a transaction closed without commit or rollback (Session.close): its NOTIFY was not
    # sent, so the session's next transaction must send its own.
    if transaction.parent is None:
        session.info.pop(_PENDING, None)


_running: dict[str, set[Notifier]] = {}  # database key -> notifiers started in this process
_running_lock = threading.Lock()


def committed(database_url: str | URL, workspace_ids: Iterable[str]) -> None:
    """Events of ``workspace_ids`` committed on that database: wake this process's notifiers.

    Safe to call from any thread.
    """
    with _running_lock:
        notifiers = list(_running.get(_key(database_url), ()))
    ids = tuple(workspace_ids)
    for notifier in notifiers:
        notifier.wake(ids)


# ------------------------------------------------------------- the reading side


def _release(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _wake_all(listeners: list[Listener]) -> None:
    for listener in listeners:
        listener._wake()


def _call_on(loop: asyncio.AbstractEventLoop, function: Callable[..., object], *args: object) -> None:
    """Run ``function(*args)`` on ``loop``: now if this thread runs it, else soon (thread-safe)."""
    try:
        current = asyncio.get_running_loop()
    except RuntimeError:
        current = None
    if current is loop:
        function(*args)
        return
    with contextlib.suppress(RuntimeError):  # that loop has closed: nobody left there to wake
        loop.call_soon_threadsafe(function, *args)


class Listener:
    """Set when events of its workspace (of any workspace for ``None``) may have committed.

    Bound to the event loop that created it; woken from any thread. A flag and, while a reader
    waits, a future of the loop's: with 200 subscribers every commit wakes 200 of these, and an
    asyncio.Event in an anyio cancel scope cost several times as much per wait."""

    def __init__(self, notifier: Notifier, workspace_id: str | None) -> None:
        self.notifier, self.workspace_id = notifier, workspace_id
        self.loop = asyncio.get_running_loop()
        self._set = False
        self._waiters: list[asyncio.Future[None]] = []  # one per wait() in progress (usually one)

    def set(self) -> None:
        _call_on(self.loop, self._wake)

    def _wake(self) -> None:  # on the loop
        self._set = True
        for waiter in self._waiters:
            _release(waiter)

    def clear(self) -> None:
        """Call before each read of the outbox: a wake-up during the read is kept for the next wait."""
        self._set = False

    def is_set(self) -> bool:
        return self._set

    async def wait(self, timeout: float | None = None) -> bool:
        """Wait for a wake-up, at most ``timeout`` seconds; whether one came."""
        if self._set:
            return True
        waiter = self.loop.create_future()
        self._waiters.append(waiter)
        timer = self.loop.call_later(timeout, _release, waiter) if timeout is not None else None
        try:
            await waiter
        finally:
            if timer is not None:
                timer.cancel()
            self._waiters.remove(waiter)
        return self._set

    def __enter__(self) -> Listener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.notifier._remove(self)


class Notifier:
    """Wakes this process's readers of the outbox when events commit, here or on another replica.

    :meth:`run` (a task of the server's lifespan) makes it receive this process's commits
    and, on PostgreSQL, the other replicas' notifications. :meth:`listen` and
    :meth:`on_event` are called on an event loop; :meth:`wake` from any thread.
    Several apps (each with its own loop) may share one notifier.
    """

    def __init__(
        self,
        database_url: str,
        *,
        poll_interval: float = POLL_INTERVAL,
        reconnect_delay: float = 1.0,
        health_interval: float = 30.0,
    ) -> None:
        self.database_url = normalise_url(database_url)
        self.key = _key(self.database_url)
        self.postgres = make_url(self.database_url).get_backend_name() == "postgresql"
        self.poll_interval = poll_interval
        self.reconnect_delay = reconnect_delay
        self.health_interval = health_interval  # an idle LISTEN connection is checked this often
        self._lock = threading.Lock()
        self._listeners: dict[str | None, set[Listener]] = {}
        self._callbacks: list[tuple[asyncio.AbstractEventLoop, Callback]] = []
        self._runs = 0
        self._listening = 0

    @property
    def listening(self) -> bool:
        """PostgreSQL: whether a LISTEN connection is up."""
        return self._listening > 0

    # -------------------------------------------------------------- subscribe

    def listen(self, workspace_id: str | None = None) -> Listener:
        """A listener for one workspace's events (``None``: every workspace); use it in ``with``."""
        listener = Listener(self, workspace_id)
        with self._lock:
            self._listeners.setdefault(workspace_id, set()).add(listener)
        return listener

    def _remove(self, listener: Listener) -> None:
        with self._lock:
            listeners = self._listeners.get(listener.workspace_id)
            if listeners is not None:
                listeners.discard(listener)
                if not listeners:
                    del self._listeners[listener.workspace_id]

    def on_event(self, callback: Callback) -> Callable[[], None]:
        """Call ``callback(workspace_id)`` on this event loop whenever that workspace may have new
        committed events, here or on another replica; ``callback(None)`` means any workspace may
        (after the LISTEN connection was re-established). It must return quickly and not block:
        set an event, start a task. Returns a function that removes the callback."""
        entry = (asyncio.get_running_loop(), callback)
        with self._lock:
            self._callbacks.append(entry)

        def remove() -> None:
            with self._lock, contextlib.suppress(ValueError):
                self._callbacks.remove(entry)

        return remove

    # ------------------------------------------------------------------- wake

    def wake(self, workspace_ids: Iterable[str | None]) -> None:
        """Wake the readers of these workspaces (``None`` in them: every reader). Any thread."""
        ids = frozenset(workspace_ids)
        everyone = None in ids
        with self._lock:
            listeners = [
                listener
                for workspace_id, group in self._listeners.items()
                if everyone or workspace_id is None or workspace_id in ids
                for listener in group
            ]
            callbacks = list(self._callbacks)
        # One call per event loop for all its listeners: a commit's thread no longer writes to the
        # loop's wake-up pipe once per subscriber.
        by_loop: dict[asyncio.AbstractEventLoop, list[Listener]] = {}
        for listener in listeners:
            by_loop.setdefault(listener.loop, []).append(listener)
        for loop, group in by_loop.items():
            _call_on(loop, _wake_all, group)
        for loop, callback in callbacks:
            for workspace_id in (None,) if everyone else ids:
                _call_on(loop, self._call, callback, workspace_id)

    @staticmethod
    def _call(callback: Callback, workspace_id: str | None) -> None:
        try:
            callback(workspace_id)
        except Exception:
            logger.exception("event callback %r failed", callback)

    # -------------------------------------------------------------------- run

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Receive wake-ups until cancelled. Reports started at once on SQLite; on PostgreSQL once
        the first attempt to LISTEN has succeeded or failed (readers poll until it succeeds)."""
        with _running_lock:
            self._runs += 1
            _running.setdefault(self.key, set()).add(self)
        try:
            if self.postgres:
                await self._listen(task_status)
            else:
                task_status.started()
                await anyio.sleep_forever()
        finally:
            with _running_lock:
                self._runs -= 1
                if not self._runs:
                    notifiers = _running.get(self.key, set())
                    notifiers.discard(self)
                    if not notifiers:
                        _running.pop(self.key, None)

    async def _listen(self, task_status: anyio.abc.TaskStatus[None]) -> None:
        import psycopg

        url = make_url(self.database_url).set(drivername="postgresql")
        conninfo = url.render_as_string(hide_password=False)
        started, delay = False, self.reconnect_delay
        while True:
            try:
                connection = await psycopg.AsyncConnection.connect(
                    conninfo,
                    autocommit=True,
                    connect_timeout=10,
                    application_name=APPLICATION_NAME,
                    keepalives=1,
                    keepalives_idle=30,
                    keepalives_interval=10,
                    keepalives_count=3,
                )
            except (psycopg.Error, OSError) as error:
                logger.warning("cannot LISTEN for events (%s); retrying in %.0f s", error, delay)
            else:
                try:
                    await connection.execute(f"LISTEN {CHANNEL}")
                    await connection.execute(f"LISTEN {workspace_cache.CHANNEL}")
                    # Changes may have been missed while nobody listened: the caches start empty.
                    workspace_cache.changed(self.key, None)
                    with self._lock:
                        self._listening += 1
                    try:
                        if started:  # notifications may have been missed while it was down
                            logger.info("listening for events again")
                            self.wake((None,))
                        else:
                            started = True
                            task_status.started()
                        delay = self.reconnect_delay
                        await self._pump(connection)
                    finally:
                        with self._lock:
                            self._listening -= 1
                except (psycopg.Error, OSError, TimeoutError) as error:
                    logger.warning("lost the LISTEN connection (%s); reconnecting in %.0f s", error, delay)
                finally:
                    # Not `async with connection`: when cancelled, its rollback would be cancelled
                    # too and the connection left open. Closing sends nothing to wait for.
                    with anyio.CancelScope(shield=True):
                        await connection.close()
            if not started:
                started = True
                task_status.started()  # serve anyway: readers poll until the database is back
            await anyio.sleep(delay)
            delay = min(delay * 2, 30.0)

    async def _pump(self, connection: Any) -> None:
        while True:
            async with contextlib.aclosing(connection.notifies(timeout=self.health_interval)) as notifies:
                async for notification in notifies:
                    if notification.channel == workspace_cache.CHANNEL:  # a row changed (a trigger)
                        workspace_cache.changed(
                            self.key, (notification.payload,) if notification.payload else None
                        )
                    else:
                        self.wake((notification.payload or None,))
            with anyio.fail_after(10):  # idle for a while: is the connection still there?
                await connection.execute("SELECT 1")
