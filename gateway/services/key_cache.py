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
        self._checking = False  # a request is checking the keys now

    def identify(self, token: str) -> keys.Caller | None:
        """Who ``token`` speaks for (as :func:`gateway.services.keys.identify`), or None. Reads
        the database only for a token not seen lately, or once per check interval."""
        digest = keys.token_digest(token)
        generation = keys.revocations()
        with self._lock:
            if self._generation != generation:
                self._forget(generation)
            # While one request checks, the others use what is kept: its check, under way,
            # bounds how old that is (without this, every request in flight when the interval
            # ran out checked, each in a session of its own).
            fresh = self._checking or self._clock() - self._checked < self._interval
            caller = self._entries.get(digest) if fresh else None
            if caller is not None:
                self._entries.move_to_end(digest)
                return caller
            checks = not fresh
            if checks:
                self._checking = True
        try:
            with self._sessions() as session:  # one connection, returned before the request's work
                if checks:
                    self._check(session)
                    with self._lock:  # nothing changed: what is kept still holds
                        caller = self._entries.get(digest)
                if caller is None:
                    caller = keys.identify(session, token)
        finally:
            if checks:
                with self._lock:
                    self._checking = False
        if caller is not None:
            with self._lock:
                if self._generation != keys.revocations():
                    return caller  # a revocation committed meanwhile: keep nothing read before it
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
                self._counts = counts
            self._checked = started

    def _forget(self, generation: int) -> None:
        self._entries.clear()
        self._generation = generation
