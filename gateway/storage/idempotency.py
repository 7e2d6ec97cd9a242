"""Idempotency keys: a retried request replays the first result and charges nothing more.

A request first *claims* its key in a short transaction of its own. The work then
runs in a second transaction that also stores the response on the key, so the
result and its record commit together. A concurrent request with the same key
waits for that response instead of doing the work again; the same key with a
different request is refused. Requests that fail validation release their claim,
as nothing was attempted (the same rule Stripe follows).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import delete, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from gateway.core.errors import DomainError, ErrorCode
from gateway.core.statuses import IdempotencyKeyStatus
from gateway.storage.db import IdempotencyKey, transaction_memo

KEY_TTL = timedelta(hours=24)  # keys are kept at least this long
WAIT_SECONDS = 15.0  # how long a concurrent retry waits for the first request's result
# A claim older than this was abandoned (its process died). The work under a claim is short: it
# may wait WAIT_SECONDS for another checkout's payment, then runs one transaction, which completes
# the key before any payment method is asked. A lease that runs out early costs nothing: the work
# that commits second rolls back (:class:`AlreadyCompleted`), so no money moves twice.
CLAIM_TIMEOUT = timedelta(seconds=2 * WAIT_SECONDS)
# Lock conflicts worth another try (PostgreSQL SQLSTATEs; SQLite's busy and locked results), as
# opposed to an outage, which is answered at once (DATABASE_UNAVAILABLE, not "in progress").
_CONTENDED_STATES = frozenset({"55P03", "40P01", "40001", "57014"})
MAX_KEY_LENGTH = 255


FIELD = ("idempotency_key",)


class IdempotencyKeyReused(DomainError):
    """The key was first used for a different operation or input."""

    code = ErrorCode.IDEMPOTENCY_KEY_REUSED

    def __init__(self, message: str) -> None:
        super().__init__(message, FIELD)


class IdempotencyKeyInProgress(DomainError):
    """Another request with this key is still running (and did not finish in time)."""

    code = ErrorCode.IDEMPOTENCY_KEY_IN_PROGRESS

    def __init__(self, message: str) -> None:
        super().__init__(message, FIELD)


class InvalidIdempotencyKey(DomainError):
    code = ErrorCode.INVALID_IDEMPOTENCY_KEY

    def __init__(self, message: str) -> None:
        super().__init__(message, FIELD)


class AlreadyCompleted(Exception):
    """The key was completed by another request while this one worked (it had taken over a
    claim it thought abandoned). Raised inside the work transaction, so it rolls back."""


def check_key(key: str) -> None:
    """Raise :class:`InvalidIdempotencyKey` for a key a client cannot use."""
    if not key.strip() or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidIdempotencyKey(f"idempotency keys are 1 to {MAX_KEY_LENGTH} printable characters")


def request_hash(operation: str, payload: dict[str, Any]) -> str:
    canonical = json.dumps([operation, payload], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def claim(
    sessions: sessionmaker,
    workspace_id: str,
    key: str,
    operation: str,
    fingerprint: str,
    now: datetime,
    wait: float = WAIT_SECONDS,
) -> dict[str, Any] | None:
    """Own ``key`` for this request (None) or get the stored response of the first one.

    Raises :class:`IdempotencyKeyInProgress` after ``wait`` seconds of a claim held by a live
    request (a claim past its lease is taken over, the time waited counted in), and the
    database's own error when it cannot be reached: an outage is not a request in progress."""
    started = time.monotonic()
    deadline = started + wait
    while True:
        now_here = now + timedelta(seconds=time.monotonic() - started)  # the clock moves while we wait
        try:
            with sessions.begin() as session:
                return take(session, workspace_id, key, operation, fingerprint, now, now_here)
        except KeyInProgress:
            pass  # look again in a moment
        except IntegrityError:
            pass  # a concurrent request inserted the key first: look again
        except OperationalError as error:
            if not _contended(error):
                raise  # the database is unavailable: say so, not "in progress"
        if time.monotonic() >= deadline:
            raise IdempotencyKeyInProgress(f"a request with idempotency key {key!r} is still in progress")
        time.sleep(0.02)


_CLAIM = "idempotency claim"  # transaction_memo: the row of a key claimed in the transaction


class KeyInProgress(Exception):
    """The key is claimed by a request still running (its lease has not run out)."""


def take(
    session: Session,
    workspace_id: str,
    key: str,
    operation: str,
    fingerprint: str,
    now: datetime,
    now_here: datetime | None = None,
) -> dict[str, Any] | None:
    """Claim ``key`` in ``session``'s transaction (None) or get the stored response of the
    request that completed it. Raises :class:`IdempotencyKeyReused` for another request's key
    and :class:`KeyInProgress` for a claim still held by a running request (one past its lease,
    at ``now_here``, is taken over).

    :func:`claim` takes a key in a short transaction of its own. A request that also does its
    work in one transaction holding the workspace's lock (checkout) takes it there instead: a
    concurrent retry waits for that lock, then finds the key completed; a refusal rolls the
    claim back with everything else, so nothing has to release it."""
    row = session.execute(
        select(IdempotencyKey)
        .where(IdempotencyKey.workspace_id == workspace_id, IdempotencyKey.key == key)
        .with_for_update()
    ).scalar_one_or_none()
    if row is not None and row.expires_at <= now:
        session.delete(row)
        session.flush()
        row = None
    if row is None:
        row = IdempotencyKey(
            workspace_id=workspace_id,
            key=key,
            operation=operation,
            request_hash=fingerprint,
            status=IdempotencyKeyStatus.IN_PROGRESS,
            response=None,
            created_at=now,
            locked_until=now + CLAIM_TIMEOUT,
            expires_at=now + KEY_TTL,
        )
        session.add(row)
    elif row.operation != operation or row.request_hash != fingerprint:
        raise IdempotencyKeyReused(
            f"idempotency key {key!r} was used for a different {row.operation} request"
        )
    elif row.status == IdempotencyKeyStatus.COMPLETED:
        return row.response
    elif row.locked_until <= (now_here or now):  # the first request died mid-way: take over
        row.locked_until = (now_here or now) + CLAIM_TIMEOUT
    else:
        raise KeyInProgress(key)
    # Held for the rest of the transaction (the identity map holds rows weakly): the work reads
    # when the key was claimed (claimed_at) from it, not from the database again.
    transaction_memo(session)[_CLAIM, workspace_id, key] = row
    return None


def _contended(error: OperationalError) -> bool:
    """Whether ``error`` is a lock conflict (retry) rather than an outage."""
    if error.connection_invalidated:
        return False
    orig = error.orig
    if getattr(orig, "sqlstate", None) in _CONTENDED_STATES:
        return True
    return str(getattr(orig, "sqlite_errorname", "")).startswith(("SQLITE_BUSY", "SQLITE_LOCKED"))


def complete(session: Session, workspace_id: str, key: str, response: dict[str, Any]) -> None:
    """Store the response, inside the transaction that did the work.

    Raises :class:`AlreadyCompleted` (rolling the work back) if another request
    completed the key first: a key's work commits once, whatever the timing.
    """
    # One statement: the UPDATE takes the row's lock and, on PostgreSQL, sees a completion that
    # committed while it waited for the lock (its WHERE is checked again on the new row).
    completed = cast(
        "CursorResult[Any]",
        session.execute(
            update(IdempotencyKey)
            .where(
                IdempotencyKey.workspace_id == workspace_id,
                IdempotencyKey.key == key,
                IdempotencyKey.status != IdempotencyKeyStatus.COMPLETED,
            )
            .values(status=IdempotencyKeyStatus.COMPLETED, response=response)
        ),
    )
    if completed.rowcount == 1:
        return
    row = session.get(IdempotencyKey, (workspace_id, key), populate_existing=True)
    if row is None or row.status != IdempotencyKeyStatus.COMPLETED:
        # cannot happen while the claim is held; refuse to lose the record silently
        raise RuntimeError(f"idempotency key {key!r} lost its claim")
    raise AlreadyCompleted(key)


def release(sessions: sessionmaker, workspace_id: str, key: str) -> dict[str, Any] | None:
    """Give up a claim whose request changed nothing, so the key can be used again.

    If another request completed the key meanwhile, its response is returned instead.
    """
    with sessions.begin() as session:
        row = session.get(IdempotencyKey, (workspace_id, key), with_for_update=True)
        if row is None:
            return None
        if row.status == IdempotencyKeyStatus.COMPLETED:
            return row.response
        session.delete(row)
        return None


def run_once(
    sessions: sessionmaker,
    workspace_id: str,
    key: str,
    operation: str,
    fingerprint: dict[str, Any],
    now: datetime,
    work: Callable[[], Any],
    to_response: Callable[[Any], dict[str, Any]],
    from_response: Callable[[dict[str, Any]], Any],
    stored: tuple[type, ...],
) -> Any:
    """Run ``work`` once per idempotency key: replay a stored outcome, refuse a reused key.

    ``work`` stores its outcome with :func:`complete` inside its own transaction when the
    outcome is one of ``stored``; other outcomes (refusals that changed nothing) release
    the key. Whatever the timing, the answer is the one outcome that committed.
    """
    check_key(key)
    replay = claim(sessions, workspace_id, key, operation, request_hash(operation, fingerprint), now)
    if replay is not None:
        return from_response(replay)
    try:
        outcome = work()
    except AlreadyCompleted:
        outcome = None
    except DomainError:  # refused, nothing written: free the key, unless another request completed it
        first = release(sessions, workspace_id, key)
        if first is not None:
            return from_response(first)
        raise
    except BaseException:
        release(sessions, workspace_id, key)
        raise
    if outcome is None or not isinstance(outcome, stored):
        first = release(sessions, workspace_id, key)
        if first is not None:
            return from_response(first)
    return outcome


def purge_expired(session: Session, now: datetime) -> int:
    # An UPDATE or DELETE without RETURNING gives a CursorResult (it has rowcount), which
    # Session.execute's signature cannot promise; SQLAlchemy points to a cast (sqlalchemy#12913).
    result = cast(
        "CursorResult[Any]", session.execute(delete(IdempotencyKey).where(IdempotencyKey.expires_at <= now))
    )
    return result.rowcount or 0


def claimed_at(session: Session, workspace_id: str, key: str) -> datetime:
    """When ``key`` was first claimed: the same for every retry while the key lives, and new
    once it expired and is used again (so work derived from it is new work)."""
    row = session.get(IdempotencyKey, (workspace_id, key))
    if row is None:  # cannot happen while the claim is held
        raise RuntimeError(f"idempotency key {key!r} lost its claim")
    return row.created_at
