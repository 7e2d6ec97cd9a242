"""Signed webhooks and in-process event listeners: who gets each committed event, and the worker
that delivers it.

Routing. :func:`enqueue_deliveries` runs inside :func:`gateway.events.outbox.emit`, in the transaction
that writes the event: one ``deliveries`` row per enabled endpoint of the workspace that subscribes
to the event's type, and one per registered in-process event listener. A rolled-back change
therefore enqueues nothing, and the delivery state lives in the database: a restart loses nothing.
The listener codes come from the gateway's registry, which :func:`attach_event_listeners` (called
when the :class:`~gateway.server.app.Gateway` is built) puts into the ``info`` of its session factories;
sessions made elsewhere enqueue webhook deliveries only.

Delivery. :func:`deliver_due` claims due deliveries in a short write transaction (``SELECT ... FOR
UPDATE SKIP LOCKED`` on PostgreSQL, the BEGIN IMMEDIATE write lock on SQLite) by giving each a
lease (``locked_until``, also its ``next_attempt_at``), commits, sends outside any transaction,
then records the attempt and the new state in another transaction, which only changes the
delivery if it still holds that lease. Two workers (on two replicas) therefore never send one
delivery at the same time; a worker that dies mid-send only causes a retry once the lease ran out.

* Webhooks follow Standard Webhooks: a JSON POST signed with the endpoint's secret
  (``webhook-id`` is the event id, the same on every retry and redelivery, so receivers can
  deduplicate). 2xx is success; 410 Gone disables the endpoint; anything else (another status, a
  network error, the time limit) is retried with exponential backoff and jitter for about three
  days (:data:`RETRY_SCHEDULE`), then the delivery is ``failed``. Redirects are not followed.
* Listeners get ``handle(Event)`` in the worker, in sequence order per workspace: a listener's
  delivery waits while an earlier one of the same workspace is pending (retrying). An exception
  is a failed attempt, retried on the same schedule.

Every attempt is logged in ``delivery_attempts`` (time, status, duration, response excerpt, error).
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import logging
import math
import random
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, cast
from urllib.parse import urlsplit

import anyio
import anyio.to_thread
from sqlalchemy import func, or_, select, true, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session, sessionmaker
from standardwebhooks import Webhook

from gateway.core.errors import DomainError, ErrorCode
from gateway.core.statuses import DeliveryStatus
from gateway.events.notify import Notifier
from gateway.events.types import EventType
from gateway.plugin_api.events import Event, EventListener
from gateway.storage.db import Delivery, DeliveryAttempt, OutboxEvent, WebhookEndpoint

logger = logging.getLogger("gateway.webhooks")

# The wait after the 1st, 2nd, ... failed attempt; after the last one the delivery is failed.
# 12 attempts over about 2.9 days, each wait ±JITTER so that a recovering receiver is not hit by
# every retry at once.
RETRY_SCHEDULE: tuple[timedelta, ...] = tuple(
    timedelta(seconds=s)
    for s in (5, 30, 2 * 60, 10 * 60, 30 * 60, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 24 * 3600, 24 * 3600)
)
MAX_ATTEMPTS = len(RETRY_SCHEDULE) + 1
JITTER = 0.2
CONCURRENCY = 8  # requests (or listener queues) in flight per deliver_due call
EXCERPT = 500  # characters of the response body kept per attempt
MAX_URL = 2000
MAX_ENDPOINTS = 20  # per workspace
SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
USER_AGENT = "billing-gateway-webhooks/1"


class DeliveryDeps(Protocol):
    """What routing and delivering events needs from the running gateway."""

    @property
    def sessions(self) -> sessionmaker[Session]: ...

    @property
    def write_sessions(self) -> sessionmaker[Session]: ...

    @property
    def clock(self) -> Callable[[], datetime]: ...

    @property
    def event_listeners(self) -> Mapping[str, EventListener]:
        """In-process listeners by code; the mapping is live (listeners added later are routed)."""
        ...

    @property
    def webhook_timeout(self) -> float: ...

    @property
    def notifier(self) -> Notifier: ...


def event_type_names() -> list[str]:
    return [t.value for t in EventType]


# ------------------------------------------------------------------ routing

LISTENERS_KEY = "billing_gateway.event_listeners"  # Session.info: the registry's event listeners


def attach_event_listeners(deps: DeliveryDeps) -> None:
    """Let ``emit`` in the gateway's sessions queue a delivery per registered event listener.

    The registry's dict is shared, not copied: a listener registered later (a test) is routed
    too. Sessions not made by these factories queue webhook deliveries only.
    """
    for maker in (deps.sessions, deps.write_sessions):
        maker.configure(info={**maker.kw.get("info", {}), LISTENERS_KEY: deps.event_listeners})


def _new_delivery(
    event: OutboxEvent, now: datetime, *, endpoint_id: str | None = None, listener: str | None = None
) -> Delivery:
    return Delivery(
        id=secrets.token_hex(16),
        event=event,
        workspace_id=event.workspace_id,
        endpoint_id=endpoint_id,
        listener=listener,
        status=DeliveryStatus.PENDING.value,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )


def subscribes(event_types: Sequence[str], event_type: str) -> bool:
    return not event_types or event_type in event_types


def enqueue_deliveries(session: Session, event: OutboxEvent) -> list[Delivery]:
    """Queue ``event`` (just added to ``session``) for every subscribed endpoint and listener.

    Runs in the transaction that writes the event, so it commits or rolls back with it.
    """
    listeners: Mapping[str, EventListener] = session.info.get(LISTENERS_KEY, {})
    with session.no_autoflush:  # emit flushes nothing early (Delivery.event orders the inserts)
        endpoints = session.execute(
            select(WebhookEndpoint.id, WebhookEndpoint.event_types)
            .where(WebhookEndpoint.workspace_id == event.workspace_id, WebhookEndpoint.enabled == true())
            .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
        ).all()
    rows = [
        _new_delivery(event, event.occurred_at, endpoint_id=endpoint_id)
        for endpoint_id, types in endpoints
        if subscribes(types, event.type)
    ]
    rows += [_new_delivery(event, event.occurred_at, listener=code) for code in sorted(listeners)]
    session.add_all(rows)
    return rows


# ------------------------------------------------------------------ endpoint management


class WebhookError(DomainError):
    """An expected failure of endpoint management; nothing was written."""


class InvalidWebhookUrl(WebhookError):
    code = ErrorCode.INVALID_WEBHOOK_URL

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"invalid webhook URL: {reason}", ("url",))
        self.url = url


class UnknownEventType(WebhookError):
    code = ErrorCode.UNKNOWN_EVENT_TYPE

    def __init__(self, event_type: str, index: int) -> None:
        super().__init__(
            f"unknown event type {event_type!r}; valid: {', '.join(event_type_names())}",
            ("event_types", str(index)),
        )
        self.event_type = event_type


class UnknownEndpoint(WebhookError):
    code = ErrorCode.UNKNOWN_WEBHOOK_ENDPOINT

    def __init__(self, endpoint_id: str, field: str = "id") -> None:
        super().__init__(f"there is no webhook endpoint {endpoint_id!r}", (field,))
        self.endpoint_id = endpoint_id


class EndpointDisabled(WebhookError):
    code = ErrorCode.WEBHOOK_ENDPOINT_DISABLED

    def __init__(self, endpoint_id: str) -> None:
        super().__init__(f"webhook endpoint {endpoint_id!r} is disabled; enable it first", ("endpoint_id",))
        self.endpoint_id = endpoint_id


class UnknownEvent(WebhookError):
    code = ErrorCode.UNKNOWN_EVENT

    def __init__(self, event_id: str) -> None:
        super().__init__(f"there is no event {event_id!r}", ("event_id",))
        self.event_id = event_id


class EndpointLimitReached(WebhookError):
    code = ErrorCode.WEBHOOK_ENDPOINT_LIMIT_REACHED

    def __init__(self) -> None:
        super().__init__(f"a workspace has at most {MAX_ENDPOINTS} webhook endpoints; delete one first")
        self.limit = MAX_ENDPOINTS


def validate_url(url: str) -> str:
    """The URL as stored: http or https, a host, ASCII, no credentials, at most MAX_URL characters."""
    text = url.strip()
    if not text or len(text) > MAX_URL:
        raise InvalidWebhookUrl(url, f"a URL has 1 to {MAX_URL} characters")
    if not text.isascii() or any(c.isspace() or not c.isprintable() for c in text):
        raise InvalidWebhookUrl(
            url, "use an ASCII URL without spaces (punycode xn-- for international names)"
        )
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 (raises ValueError for a port out of range)
    except ValueError as error:
        raise InvalidWebhookUrl(url, str(error)) from None
    if parts.scheme.lower() not in ("http", "https"):
        raise InvalidWebhookUrl(url, "only http and https URLs are allowed")
    if not parts.hostname:
        raise InvalidWebhookUrl(url, "the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise InvalidWebhookUrl(url, "credentials in the URL are not supported")
    return text


def validate_event_types(event_types: Iterable[str]) -> list[str]:
    """Known event types, without duplicates, in the order given; an empty list means every type."""
    valid = set(event_type_names())
    chosen: list[str] = []
    for index, raw in enumerate(event_types):
        name = raw.strip()
        if name not in valid:
            raise UnknownEventType(raw, index)
        if name not in chosen:
            chosen.append(name)
    return chosen


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def endpoints_of(session: Session, workspace_id: str) -> list[WebhookEndpoint]:
    return list(
        session.scalars(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.workspace_id == workspace_id)
            .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
        )
    )


def endpoint_of(session: Session, workspace_id: str, endpoint_id: str, field: str = "id") -> WebhookEndpoint:
    row = session.get(WebhookEndpoint, endpoint_id)
    if row is None or row.workspace_id != workspace_id:  # another workspace's endpoint does not exist
        raise UnknownEndpoint(endpoint_id, field)
    return row


def create_endpoint(
    session: Session, workspace_id: str, url: str, event_types: Iterable[str], now: datetime
) -> WebhookEndpoint:
    url, types = validate_url(url), validate_event_types(event_types)
    count = session.scalar(
        select(func.count()).select_from(WebhookEndpoint).where(WebhookEndpoint.workspace_id == workspace_id)
    )
    if (count or 0) >= MAX_ENDPOINTS:
        raise EndpointLimitReached()
    row = WebhookEndpoint(
        id=secrets.token_hex(16),
        workspace_id=workspace_id,
        url=url,
        event_types=types,
        secret=new_secret(),
        enabled=True,
        disabled_reason=None,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    return row


def update_endpoint(
    session: Session,
    workspace_id: str,
    endpoint_id: str,
    now: datetime,
    *,
    url: str | None = None,
    event_types: Iterable[str] | None = None,
    enabled: bool | None = None,
) -> WebhookEndpoint:
    """Change what is given (None: unchanged). Enabling clears the reason it was disabled and
    resumes its pending deliveries; disabling pauses them (events meanwhile are not queued)."""
    row = endpoint_of(session, workspace_id, endpoint_id)
    new_url = validate_url(url) if url is not None else None
    types = validate_event_types(event_types) if event_types is not None else None
    if new_url is not None:
        row.url = new_url
    if types is not None:
        row.event_types = types
    if enabled is not None and enabled != row.enabled:
        row.enabled = enabled
        row.disabled_reason = None if enabled else "disabled through the API"
    row.updated_at = now
    session.flush()
    return row


def rotate_secret(session: Session, workspace_id: str, endpoint_id: str, now: datetime) -> WebhookEndpoint:
    """A new secret, effective at once: every later attempt (retries too) is signed with it only."""
    row = endpoint_of(session, workspace_id, endpoint_id)
    row.secret = new_secret()
    row.updated_at = now
    session.flush()
    return row


def delete_endpoint(session: Session, workspace_id: str, endpoint_id: str) -> None:
    """Delete the endpoint with its deliveries and their attempts (the database cascades)."""
    row = endpoint_of(session, workspace_id, endpoint_id)
    session.delete(row)
    session.flush()


def redeliver(
    session: Session, workspace_id: str, event_id: str, endpoint_id: str | None, now: datetime
) -> list[Delivery]:
    """Queue the event again, due now: to ``endpoint_id`` (whatever types it subscribes to), or to
    every enabled endpoint subscribed to its type. Receivers see the same ``webhook-id``."""
    event = session.get(OutboxEvent, event_id)
    if event is None or event.workspace_id != workspace_id:
        raise UnknownEvent(event_id)
    if endpoint_id is not None:
        endpoint = endpoint_of(session, workspace_id, endpoint_id, "endpointId")
        if not endpoint.enabled:
            raise EndpointDisabled(endpoint_id)
        targets = [endpoint]
    else:
        targets = [
            e
            for e in endpoints_of(session, workspace_id)
            if e.enabled and subscribes(e.event_types, event.type)
        ]
    rows = [_new_delivery(event, now, endpoint_id=target.id) for target in targets]
    session.add_all(rows)
    session.flush()
    return rows


# ------------------------------------------------------------------ operations (the CLI)


@dataclass(frozen=True)
class DeliveryLine:
    id: str
    status: str
    target: str  # the endpoint's URL or "listener:<code>"
    workspace_id: str
    event_type: str
    sequence: int
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None


def list_deliveries(session: Session, statuses: Sequence[str], limit: int = 100) -> list[DeliveryLine]:
    rows = session.execute(
        select(Delivery, OutboxEvent.type, OutboxEvent.sequence, WebhookEndpoint.url)
        .join(OutboxEvent, OutboxEvent.id == Delivery.event_id)
        .outerjoin(WebhookEndpoint, WebhookEndpoint.id == Delivery.endpoint_id)
        .where(Delivery.status.in_(statuses))
        .order_by(Delivery.created_at, Delivery.workspace_id, OutboxEvent.sequence, Delivery.id)
        .limit(limit)
    ).all()
    return [
        DeliveryLine(
            d.id,
            d.status,
            url if d.endpoint_id else f"listener:{d.listener}",
            d.workspace_id,
            type_,
            sequence,
            d.attempts,
            d.next_attempt_at,
            d.last_status_code,
            d.last_error,
        )
        for d, type_, sequence, url in rows
    ]


def replay(session: Session, now: datetime, *, failed: bool = False, ids: Sequence[str] = ()) -> int:
    """Reset deliveries to pending, due now, with a fresh retry schedule: every failed one
    (``failed``) and those named (any status). One being sent right now is left alone."""
    chosen = []
    if failed:
        chosen.append(Delivery.status == DeliveryStatus.FAILED.value)
    if ids:
        chosen.append(Delivery.id.in_(list(ids)))
    if not chosen:
        return 0
    # An UPDATE or DELETE without RETURNING gives a CursorResult (it has rowcount), which
    # Session.execute's signature cannot promise; SQLAlchemy points to a cast (sqlalchemy#12913).
    result = cast(
        "CursorResult[Any]",
        session.execute(
            update(Delivery)
            .where(or_(*chosen), or_(Delivery.locked_until.is_(None), Delivery.locked_until <= now))
            .values(status=DeliveryStatus.PENDING.value, attempts=0, next_attempt_at=now, locked_until=None)
            .execution_options(synchronize_session=False)
        ),
    )
    return result.rowcount


# ------------------------------------------------------------------ the worker


@dataclass(frozen=True)
class DeliveryCounts:
    claimed: int = 0
    delivered: int = 0
    retrying: int = 0  # failed this time, tried again later
    failed: int = 0  # gave up (attempts used up, or 410 Gone)
    released: int = 0  # listener deliveries put back behind an earlier one that failed
    superseded: int = 0  # a late result after the lease ran out: logged, the newer claim decides

    def __add__(self, other: DeliveryCounts) -> DeliveryCounts:
        return DeliveryCounts(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        )


@dataclass(frozen=True)
class _Claim:
    delivery_id: str
    lease: datetime
    event: Event
    endpoint_id: str | None
    url: str | None
    secret: str | None
    listener: str | None


@dataclass(frozen=True)
class _Result:
    ok: bool
    status_code: int | None = None
    excerpt: str | None = None
    error: str | None = None
    duration_ms: int = 0
    gone: bool = False  # 410: stop, and disable the endpoint


def retry_delay(failed_attempts: int, rng: random.Random) -> timedelta | None:
    """The wait after ``failed_attempts`` failed attempts, with jitter; None: give up."""
    if failed_attempts > len(RETRY_SCHEDULE):
        return None
    return RETRY_SCHEDULE[failed_attempts - 1] * rng.uniform(1 - JITTER, 1 + JITTER)


def _due(now: datetime, listener_codes: Sequence[str]) -> Any:
    routed = WebhookEndpoint.enabled == true()
    if listener_codes:
        routed = or_(routed, Delivery.listener.in_(list(listener_codes)))
    return (
        select(Delivery, OutboxEvent, WebhookEndpoint)
        .join(OutboxEvent, OutboxEvent.id == Delivery.event_id)
        .outerjoin(WebhookEndpoint, WebhookEndpoint.id == Delivery.endpoint_id)
        .where(Delivery.status == DeliveryStatus.PENDING.value, Delivery.next_attempt_at <= now, routed)
    )


def _event_of(row: OutboxEvent) -> Event:
    return Event(
        id=row.id,
        type=row.type,
        workspace_id=row.workspace_id,
        sequence=row.sequence,
        occurred_at=row.occurred_at,
        payload=dict(row.payload),
        version=row.version,
    )


def _claim(
    deps: DeliveryDeps, now: datetime, limit: int, lease: timedelta, listener_codes: Sequence[str]
) -> list[_Claim]:
    with deps.sessions() as session:  # usually nothing is due: look before taking a write lock
        if session.execute(_due(now, listener_codes).limit(1)).first() is None:
            return []
    lease_end = now + lease
    with deps.write_sessions.begin() as session:
        rows = session.execute(
            _due(now, listener_codes)
            .order_by(Delivery.next_attempt_at, OutboxEvent.sequence, Delivery.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=Delivery)
        ).all()
        chosen = [(d, e, w) for d, e, w in rows if d.endpoint_id is not None]
        queues: dict[tuple[str, str], list[tuple[Delivery, OutboxEvent]]] = {}
        for d, e, _ in rows:
            if d.listener is not None:
                queues.setdefault((d.workspace_id, d.listener), []).append((d, e))
        for (workspace_id, code), members in queues.items():
            # In sequence order per workspace: not past a pending delivery of an earlier event
            # (retrying, in flight elsewhere, or beyond this batch).
            blocker = session.execute(
                select(OutboxEvent.sequence, Delivery.next_attempt_at, Delivery.locked_until)
                .join(Delivery, Delivery.event_id == OutboxEvent.id)
                .where(
                    Delivery.workspace_id == workspace_id,
                    Delivery.listener == code,
                    Delivery.status == DeliveryStatus.PENDING.value,
                    Delivery.id.not_in([d.id for d, _ in members]),
                )
                .order_by(OutboxEvent.sequence)
                .limit(1)
            ).first()
            for delivery, event in sorted(members, key=lambda m: m[1].sequence):
                if blocker is None or event.sequence < blocker.sequence:
                    chosen.append((delivery, event, None))
                elif blocker.locked_until is None:  # waiting for its retry: so do the ones behind it
                    delivery.next_attempt_at = max(delivery.next_attempt_at or now, blocker.next_attempt_at)
        claims = []
        for delivery, event, endpoint in chosen:
            delivery.locked_until = delivery.next_attempt_at = lease_end
            claims.append(
                _Claim(
                    delivery.id,
                    lease_end,
                    _event_of(event),
                    delivery.endpoint_id,
                    endpoint.url if endpoint else None,
                    endpoint.secret if endpoint else None,
                    delivery.listener,
                )
            )
    return claims


def webhook_body(event: Event) -> str:
    return json.dumps(
        {
            "id": event.id,
            "type": event.type,
            "workspace_id": event.workspace_id,
            "sequence": event.sequence,
            "occurred_at": event.occurred_at.isoformat(),
            "version": event.version,
            "data": dict(event.payload),
        },
        separators=(",", ":"),
    )


def signed_headers(secret: str, msg_id: str, body: str, timestamp: datetime) -> dict[str, str]:
    """The Standard Webhooks headers for one attempt."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(math.floor(timestamp.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, timestamp, body),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


def post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> _Result:
    """POST without following redirects, ``timeout`` seconds for the whole exchange.

    The per-operation socket timeout alone would let a server that drips bytes hold the worker
    for ever; a timer shuts the socket down at the deadline.
    """
    parts = urlsplit(url)
    https = parts.scheme.lower() == "https"
    connection = (http.client.HTTPSConnection if https else http.client.HTTPConnection)(
        parts.hostname or "", parts.port, timeout=timeout
    )
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    started = time.monotonic()

    def shut_down() -> None:
        sock = connection.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    timer = threading.Timer(timeout, shut_down)
    timer.daemon = True
    timer.start()
    try:
        connection.request("POST", target, body=body, headers=dict(headers))
        response = connection.getresponse()
        raw = response.read(EXCERPT * 4)
        status = response.status
    except (OSError, http.client.HTTPException) as error:
        elapsed = time.monotonic() - started
        message = (
            f"timed out after {timeout:g}s"
            if elapsed >= timeout or isinstance(error, TimeoutError)
            else f"{type(error).__name__}: {error}"
        )
        return _Result(ok=False, error=message[:EXCERPT], duration_ms=round(elapsed * 1000))
    finally:
        timer.cancel()
        connection.close()
    duration = round((time.monotonic() - started) * 1000)
    excerpt = raw.decode("utf-8", errors="replace")[:EXCERPT] or None
    if 200 <= status < 300:
        return _Result(ok=True, status_code=status, excerpt=excerpt, duration_ms=duration)
    return _Result(
        ok=False,
        status_code=status,
        excerpt=excerpt,
        duration_ms=duration,
        gone=status == 410,
        error="410 Gone: endpoint disabled" if status == 410 else f"HTTP {status}",
    )


def _send(claim: _Claim, timeout: float) -> _Result:
    body = webhook_body(claim.event)
    assert claim.url is not None and claim.secret is not None
    headers = signed_headers(claim.secret, claim.event.id, body, datetime.now(UTC))
    return post(claim.url, body.encode("utf-8"), headers, timeout)


def _call(listener: EventListener | None, claim: _Claim) -> _Result:
    started = time.monotonic()
    if listener is None:  # unregistered since the claim (cannot happen in one process, but be safe)
        return _Result(ok=False, error=f"no event listener {claim.listener!r} is loaded")
    try:
        listener.handle(claim.event)
    except Exception as error:
        logger.warning(
            "event listener %r failed on event %s (%s #%d)",
            claim.listener,
            claim.event.id,
            claim.event.type,
            claim.event.sequence,
            exc_info=True,
        )
        return _Result(
            ok=False,
            error=f"{type(error).__name__}: {error}"[:EXCERPT],
            duration_ms=round((time.monotonic() - started) * 1000),
        )
    return _Result(ok=True, duration_ms=round((time.monotonic() - started) * 1000))


def _finish(
    deps: DeliveryDeps, claim: _Claim, result: _Result, at: datetime, rng: random.Random
) -> DeliveryCounts:
    """Log the attempt and, if the claim still holds its lease, move the delivery on."""
    with deps.write_sessions.begin() as session:
        counts = _record(session, claim, result, at, rng)
        if claim.listener is not None and (counts.delivered or counts.failed):
            # The next events of this listener's queue were waiting for this one: due now.
            session.execute(
                update(Delivery)
                .where(
                    Delivery.workspace_id == claim.event.workspace_id,
                    Delivery.listener == claim.listener,
                    Delivery.status == DeliveryStatus.PENDING.value,
                    Delivery.locked_until.is_(None),
                    Delivery.next_attempt_at > at,
                )
                .values(next_attempt_at=at)
                .execution_options(synchronize_session=False)
            )
        return counts


def _record(
    session: Session, claim: _Claim, result: _Result, at: datetime, rng: random.Random
) -> DeliveryCounts:
    """Log the attempt and, if the claim still holds its lease, move the delivery on."""
    row = session.execute(
        select(Delivery)
        .where(Delivery.id == claim.delivery_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if row is None:  # its endpoint was deleted meanwhile
        return DeliveryCounts(superseded=1)
    session.add(
        DeliveryAttempt(
            id=secrets.token_hex(16),
            delivery_id=row.id,
            attempted_at=at,
            status_code=result.status_code,
            duration_ms=result.duration_ms,
            response_excerpt=result.excerpt,
            error=result.error,
        )
    )
    if row.status != DeliveryStatus.PENDING.value or row.locked_until != claim.lease:
        logger.warning("delivery %s: result after its lease ran out; another worker took it over", row.id)
        return DeliveryCounts(superseded=1)
    row.attempts += 1
    row.locked_until = None
    row.last_status_code = result.status_code
    row.last_error = result.error
    if result.ok:
        row.status, row.delivered_at, row.next_attempt_at = DeliveryStatus.DELIVERED.value, at, None
        return DeliveryCounts(delivered=1)
    if result.gone and row.endpoint_id is not None:
        endpoint = session.get(WebhookEndpoint, row.endpoint_id)
        if endpoint is not None and endpoint.enabled:
            endpoint.enabled = False
            endpoint.disabled_reason = f"answered 410 Gone at {at.isoformat()}"
            endpoint.updated_at = at
            logger.warning("webhook endpoint %s answered 410 Gone: disabled", endpoint.id)
        row.status, row.next_attempt_at = DeliveryStatus.FAILED.value, None
        return DeliveryCounts(failed=1)
    delay = retry_delay(row.attempts, rng)
    if delay is None:
        row.status, row.next_attempt_at = DeliveryStatus.FAILED.value, None
        logger.warning(
            "delivery %s of event %s failed %d times: given up", row.id, row.event_id, row.attempts
        )
        return DeliveryCounts(failed=1)
    row.next_attempt_at = at + delay
    return DeliveryCounts(retrying=1)


def _release(deps: DeliveryDeps, failed: _Claim, behind: Sequence[_Claim], at: datetime) -> DeliveryCounts:
    """Put claimed listener deliveries back, untried: they wait for the retry of the one before."""
    if not behind:
        return DeliveryCounts()
    with deps.write_sessions.begin() as session:
        head = session.get(Delivery, failed.delivery_id)
        retrying = (
            head is not None and head.status == DeliveryStatus.PENDING.value and head.locked_until is None
        )
        until = head.next_attempt_at if head is not None and retrying and head.next_attempt_at else at
        session.execute(
            update(Delivery)
            .where(
                Delivery.id.in_([c.delivery_id for c in behind]), Delivery.locked_until == failed.lease
            )  # one batch, one lease
            .values(locked_until=None, next_attempt_at=until)
            .execution_options(synchronize_session=False)
        )
    return DeliveryCounts(released=len(behind))


def deliver_due(
    deps: DeliveryDeps,
    now: datetime | None = None,
    limit: int = 100,
    *,
    timeout: float | None = None,
    rng: random.Random | None = None,
    concurrency: int = CONCURRENCY,
    lease: timedelta | None = None,
) -> DeliveryCounts:
    """Deliver up to ``limit`` deliveries due at ``now``; safe to run in several workers at once.

    ``timeout``: seconds per webhook request (default: the setting). ``rng``: for the jitter.
    ``lease``: how long a claim is exclusive; by default long enough for the whole batch.
    The ``webhook-timestamp`` is the real time of sending (receivers check it against their
    clock); ``now`` and the time spent since decide what is due, attempt times and retries.
    """
    now = now or deps.clock()
    timeout = timeout if timeout is not None else deps.webhook_timeout
    rng = rng or _rng
    lease = lease or timedelta(seconds=timeout * math.ceil(limit / concurrency) + 60)
    listeners = dict(deps.event_listeners)
    claims = _claim(deps, now, limit, lease, sorted(listeners))
    if not claims:
        return DeliveryCounts()
    started = time.monotonic()

    def at() -> datetime:
        return now + timedelta(seconds=time.monotonic() - started)

    def webhook(claim: _Claim) -> DeliveryCounts:
        return _finish(deps, claim, _send(claim, timeout), at(), rng)

    def queue(claims: list[_Claim]) -> DeliveryCounts:
        counts = DeliveryCounts()
        for index, claim in enumerate(claims):
            result = _call(listeners.get(claim.listener or ""), claim)
            counts += _finish(deps, claim, result, at(), rng)
            if not result.ok:
                return counts + _release(deps, claim, claims[index + 1 :], at())
        return counts

    def guarded(work: Callable[[Any], DeliveryCounts], arg: Any) -> DeliveryCounts:
        try:
            return work(arg)
        except Exception:  # the database, most likely: the lease runs out and the delivery is retried
            logger.exception("delivery worker failed; the deliveries are retried after their lease")
            return DeliveryCounts()

    queues: dict[tuple[str, str], list[_Claim]] = {}
    for claim in claims:
        if claim.listener is not None:
            queues.setdefault((claim.event.workspace_id, claim.listener), []).append(claim)
    tasks: list[tuple[Callable[[Any], DeliveryCounts], Any]] = [(webhook, c) for c in claims if c.endpoint_id]
    tasks += [(queue, members) for members in queues.values()]
    total = DeliveryCounts(claimed=len(claims))
    with ThreadPoolExecutor(
        max_workers=min(concurrency, len(tasks)), thread_name_prefix="webhook-delivery"
    ) as pool:
        for counts in pool.map(lambda task: guarded(*task), tasks):
            total += counts
    return total


_rng = random.Random()


class DeliveryWorker:
    """The server's delivery loop: :func:`deliver_due` in a worker thread every ``interval``
    seconds, and at once when woken.

    It wakes itself through the gateway's notifier (:mod:`gateway.events.notify`) whenever events
    commit, in this process or, on PostgreSQL, on another replica. :meth:`wake` may also be called
    directly, from any thread or from the event loop; it never blocks.
    """

    def __init__(self, deps: DeliveryDeps, interval: float, *, limit: int = 100) -> None:
        self.deps, self.interval, self.limit = deps, interval, limit
        self._woken = threading.Event()

    def wake(self, *_: object) -> None:
        self._woken.set()

    def run_once(self) -> DeliveryCounts:
        counts = deliver_due(self.deps, self.deps.clock(), self.limit)
        if counts.claimed:
            logger.info(
                "deliveries: %d delivered, %d retrying, %d failed",
                counts.delivered,
                counts.retrying,
                counts.failed,
            )
        return counts

    async def run(self) -> None:
        """Until cancelled; a batch in progress finishes first (bounded by the request time limit)."""
        notifier = getattr(self.deps, "notifier", None)
        stop_listening = notifier.on_event(self.wake) if notifier is not None else None
        waiting = anyio.CapacityLimiter(1)  # the idle wait has a thread of its own, not one of the requests'
        try:
            while True:
                await anyio.to_thread.run_sync(
                    self._woken.wait, self.interval, limiter=waiting, abandon_on_cancel=True
                )
                self._woken.clear()
                try:
                    counts = await anyio.to_thread.run_sync(self.run_once)
                except Exception:
                    logger.exception("delivery run failed; the next run is in %s seconds", self.interval)
                    continue
                if counts.claimed >= self.limit:
                    self._woken.set()  # a backlog: go on at once
        finally:
            if stop_listening is not None:
                stop_listening()
            self._woken.set()  # an abandoned wait returns at once
