"""Who a bearer token speaks for, without a database read on every request.

Valid keys are kept in memory by the hash of the token (never the token). A revocation must
still take effect at once, on every replica and worker:

* In the process that revokes (``revoke-key``, ``operator-keys revoke``, a test), the commit of a
  revocation clears every cache of the process (:func:`gateway.services.keys.revocations`
  counts them).
* Everywhere else, each cache asks the database at most once per :data:`CHECK_INTERVAL` whether
  the keys changed: a count of keys and of revoked keys, which any revocation or deletion (even
  one made with SQL by hand) changes. So a revoked key signs nobody in one second later.

Wrong keys are not kept: each is looked up (and logged, and counted by the rate limits).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from gateway.services import keys
from gateway.storage.db import ApiKey, OperatorKey

CHECK_INTERVAL = 1.0  # seconds between two checks that the keys did not change
MAX_ENTRIES = 10_000


def _key_counts(session: Session) -> tuple[int, ...]:
    """Numbers that any revocation or deletion of a key changes."""
    row = session.execute(
        select(
            select(func.count()).select_from(ApiKey).scalar_subquery(),
            select(func.count(ApiKey.revoked_at)).scalar_subquery(),
            select(func.count()).select_from(OperatorKey).scalar_subquery(),
            select(func.count(OperatorKey.revoked_at)).scalar_subquery(),
        )
    ).one()
    return tuple(int(value) for value in row)


class KeyCache:
    """Signed-in callers by token hash, for one gateway. Thread-safe."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        check_interval: float = CHECK_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = MAX_ENTRIES,
    ) -> None:
        self._sessions = sessions
        self._interval = check_interval
        self._clock = clock
        self._max = max_entries
        self._entries: OrderedDict[str, keys.Caller] = OrderedDict()
        self._lock = threading.Lock()
        self._generation = keys.revocations()
        self._counts: tuple[int, ...] | None = None
        self._checked = float("-inf")
        self._checking: float | None = None  # when the request checking the keys now began
        self._cleared = 0  # how many times the entries were cleared

    def identify(self, token: str) -> keys.Caller | None:
        """Who ``token`` speaks for (as :func:`gateway.services.keys.identify`), or None. Reads
        the database only for a token not seen lately, or once per check interval."""
        digest = keys.token_digest(token)
        generation = keys.revocations()
        now = self._clock()
        with self._lock:
            if self._generation != generation:
                self._forget(generation)
            # While one request checks (for at most an interval), the others use what is kept:
            # its check, under way, bounds how old that is. Without this, every request in
            # flight when the interval ran out checked, each in a session of its own.
            checking = self._checking is not None and now - self._checking < self._interval
            fresh = checking or now - self._checked < self._interval
            caller = self._entries.get(digest) if fresh else None
            if caller is not None:
                self._entries.move_to_end(digest)
                return caller
            checks = not fresh
            if checks:
                self._checking = now
            cleared = self._cleared  # what is read from now on is kept only if nothing is cleared
        try:
            with self._sessions() as session:  # one connection, returned before the request's work
                if checks:
                    self._check(session)
                    with self._lock:  # nothing changed: what is kept still holds
                        if self._cleared == cleared and self._generation == keys.revocations():
                            caller = self._entries.get(digest)
                if caller is None:
                    caller = keys.identify(session, token)
        finally:
            if checks:
                with self._lock:
                    self._checking = None
        if caller is not None:
            with self._lock:
                if self._generation != keys.revocations() or self._cleared != cleared:
                    return caller  # a revocation was seen meanwhile: keep nothing read before it
                self._entries[digest] = caller
                while len(self._entries) > self._max:
                    self._entries.popitem(last=False)
        return caller

    def _check(self, session: Session) -> None:
        started = self._clock()
        counts = _key_counts(session)
        with self._lock:
            if counts != self._counts:
                self._entries.clear()
                self._cleared += 1
                self._counts = counts
            self._checked = started

    def _forget(self, generation: int) -> None:
        self._entries.clear()
        self._cleared += 1
        self._generation = generation
