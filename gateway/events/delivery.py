"""Delivery: the worker that sends queued deliveries to webhooks and in-process listeners.

:func:`deliver_due` claims due deliveries in a short write transaction (``SELECT ... FOR
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

Fairness: :func:`_claim` takes the workspaces round-robin, and one workspace has at most
``per_workspace`` webhook requests in flight (lanes in a batch, slots in :class:`DeliveryWorker`),
so that one tenant's slow endpoints delay its own deliveries only.

Every attempt is logged in ``delivery_attempts`` (time, status, duration, response excerpt, error).
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import itertools
import json
import logging
import math
import random
import secrets
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, cast

import anyio
import anyio.to_thread
from sqlalchemy import func, or_, select, true, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session
from standardwebhooks import Webhook

from gateway.core.statuses import DeliveryStatus
from gateway.events import endpoints
from gateway.events.catalog import event_of, webhook_envelope
from gateway.events.egress import EgressPolicy, EgressRefused, IPAddress, Unresolvable
from gateway.events.notify import Notifier
from gateway.events.routing import Routed, forget_endpoints
from gateway.plugin_api.events import Event, EventListener
from gateway.storage.db import Delivery, DeliveryAttempt, OutboxEvent, WebhookEndpoint

logger = logging.getLogger("gateway.webhooks")  # logger names are stable: operators filter on them

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
PER_WORKSPACE = 4  # webhook requests of one workspace in flight at once (and in one batch)
EXCERPT = 500  # characters of the response body kept per attempt
USER_AGENT = "billing-gateway-webhooks/1"


class DeliveryDeps(Routed, Protocol):
    """What delivering events needs from the running gateway, beyond routing's sessions and
    listeners (a live mapping: listeners added later are delivered to as well)."""

    @property
    def clock(self) -> Callable[[], datetime]: ...

    @property
    def webhook_timeout(self) -> float: ...

    @property
    def egress(self) -> EgressPolicy: ...

    @property
    def notifier(self) -> Notifier: ...


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
    secrets: tuple[str, ...]  # that sign (two during a rotation's grace period); none for a listener
    listener: str | None


@dataclass(frozen=True)
class _Result:
    ok: bool
    status_code: int | None = None
    excerpt: str | None = None
    error: str | None = None
    duration_ms: int = 0
    gone: bool = False  # 410: stop, and disable the endpoint
    cause: str | None = None  # why there was no HTTP answer: for the operator's log, not the tenant


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


def _claim(
    deps: DeliveryDeps,
    now: datetime,
    limit: int,
    lease: timedelta,
    listener_codes: Sequence[str],
    *,
    per_workspace: int = PER_WORKSPACE,
    busy: Mapping[str, int] | None = None,
) -> list[_Claim]:
    """Lease up to ``limit`` due deliveries, fairly: round-robin over the workspaces (each one's
    earliest first), at most ``per_workspace`` webhook requests of one workspace, counting its
    ``busy`` ones (in flight in this worker), and as many of each listener's queue."""
    busy = busy or {}
    full = [workspace for workspace, count in busy.items() if count >= per_workspace]
    with deps.sessions() as session:  # usually nothing is due: look before taking a write lock
        if session.execute(_due(now, listener_codes).limit(1)).first() is None:
            return []
    lease_end = now + lease
    # Each workspace's webhooks, and each of its listener queues, ranked by when they are due;
    # the first of every workspace come before any second one.
    ranked = (
        _due(now, listener_codes)
        .where(or_(Delivery.listener.is_not(None), Delivery.workspace_id.not_in(full)))
        .with_only_columns(
            Delivery.id,
            Delivery.workspace_id,
            Delivery.next_attempt_at,
            func.row_number()
            .over(
                partition_by=(Delivery.workspace_id, Delivery.listener),
                order_by=(Delivery.next_attempt_at, OutboxEvent.sequence, Delivery.id),
            )
            .label("rank"),
        )
        .subquery()
    )
    candidates = (
        select(ranked.c.id)
        .where(ranked.c.rank <= per_workspace)
        .order_by(ranked.c.rank, ranked.c.next_attempt_at, ranked.c.id)
        .limit(limit + sum(busy.values()))
    )
    with deps.write_sessions.begin() as session:
        locked = session.execute(
            _due(now, listener_codes)
            .where(Delivery.id.in_(candidates))
            .with_for_update(skip_locked=True, of=Delivery)
        ).all()
        order = {row.id: index for index, row in enumerate(session.execute(candidates))}
        rows, taken = [], dict(busy)
        for d, e, w in sorted(locked, key=lambda row: order.get(row[0].id, len(order))):
            if d.endpoint_id is not None:
                if taken.get(d.workspace_id, 0) >= per_workspace:
                    continue
                taken[d.workspace_id] = taken.get(d.workspace_id, 0) + 1
            rows.append((d, e, w))
        rows = rows[:limit]
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
                    event_of(event),
                    delivery.endpoint_id,
                    endpoint.url if endpoint else None,
                    endpoints.signing_secrets(endpoint, now) if endpoint else (),
                    delivery.listener,
                )
            )
    return claims


def webhook_body(event: Event) -> str:
    """The signed JSON body: the envelope ``docs/events.md`` documents, compact."""
    return json.dumps(webhook_envelope(event), separators=(",", ":"))


def signed_headers(signing: Sequence[str], msg_id: str, body: str, timestamp: datetime) -> dict[str, str]:
    """The Standard Webhooks headers for one attempt: one signature per secret, space-separated
    (``v1,<new> v1,<old>``; a receiver accepts the request if any signature verifies)."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(math.floor(timestamp.timestamp())),
        "webhook-signature": " ".join(Webhook(secret).sign(msg_id, timestamp, body) for secret in signing),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the addresses the egress policy checked, never to a second lookup's answer;
    the Host header still names the URL's host."""

    def __init__(self, host: str, port: int, timeout: float, addresses: Sequence[IPAddress]) -> None:
        super().__init__(host, port, timeout=timeout)
        self.addresses = tuple(addresses)

    def connect(self) -> None:
        self.sock = _connect(self.addresses, self.port or 80, self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """As :class:`_PinnedHTTPConnection`, with TLS: SNI and certificate verification for the
    URL's host name, whichever checked address the connection went to."""

    def __init__(
        self,
        host: str,
        port: int,
        timeout: float,
        addresses: Sequence[IPAddress],
        context: ssl.SSLContext | None = None,
    ) -> None:
        self.tls = context or ssl.create_default_context()
        super().__init__(host, port, timeout=timeout, context=self.tls)
        self.addresses = tuple(addresses)

    def connect(self) -> None:
        sock = _connect(self.addresses, self.port or 443, self.timeout)
        try:
            self.sock = self.tls.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise


def _connect(addresses: Sequence[IPAddress], port: int, timeout: float | None) -> socket.socket:
    """A TCP connection to the first of ``addresses`` that answers, in ``timeout`` seconds in all."""
    deadline = time.monotonic() + (timeout or 0)
    failure: OSError = OSError("no address to connect to")
    for address in addresses:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("connecting took longer than the time limit")
        try:
            sock = socket.create_connection((str(address), port), timeout=left)
        except OSError as error:
            failure = error
            continue
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock
    raise failure


# What a tenant sees of every attempt that got no HTTP answer. Connection refused, a time limit,
# DNS and the egress policy read alike, so that webhooks cannot map the operator's network
# (which ports are open, which names exist); the operator's log has the cause.
NO_RESPONSE = "no HTTP response: could not connect, or no answer in time"


def post(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    timeout: float,
    policy: EgressPolicy,
    *,
    context: ssl.SSLContext | None = None,
) -> _Result:
    """POST without following redirects, ``timeout`` seconds for the whole exchange (the DNS
    lookup included), to an address of the URL's host that ``policy`` allows, checked now.

    The per-operation socket timeout alone would let a server that drips bytes hold the worker
    for ever; a timer shuts the socket down at the deadline. ``error`` of a result without an
    HTTP answer is :data:`NO_RESPONSE`; ``cause`` says why, for the log.
    """
    started = time.monotonic()
    where = endpoints.target_of(url)
    try:
        destination = policy.resolve(where.host, where.port, timeout)
    except (EgressRefused, Unresolvable) as error:
        return _no_response(error.reason, started)
    left = timeout - (time.monotonic() - started)
    connection: http.client.HTTPConnection = (
        _PinnedHTTPSConnection(where.host_header, where.port, left, destination.addresses, context)
        if where.https
        else _PinnedHTTPConnection(where.host_header, where.port, left, destination.addresses)
    )

    def shut_down() -> None:
        sock = connection.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    timer = threading.Timer(left, shut_down)
    timer.daemon = True
    timer.start()
    try:
        connection.request("POST", where.path, body=body, headers=dict(headers))
        response = connection.getresponse()
        raw = response.read(EXCERPT * 4)
        status = response.status
    except (OSError, http.client.HTTPException) as error:
        late = time.monotonic() - started >= timeout or isinstance(error, TimeoutError)
        return _no_response(
            f"timed out after {timeout:g}s" if late else f"{type(error).__name__}: {error}", started
        )
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


def _no_response(cause: str, started: float) -> _Result:
    return _Result(
        ok=False,
        error=NO_RESPONSE,
        cause=cause[:EXCERPT],
        duration_ms=round((time.monotonic() - started) * 1000),
    )


def _send(claim: _Claim, timeout: float, policy: EgressPolicy) -> _Result:
    body = webhook_body(claim.event)
    assert claim.url is not None and claim.secrets
    headers = signed_headers(claim.secrets, claim.event.id, body, datetime.now(UTC))
    result = post(claim.url, body.encode("utf-8"), headers, timeout, policy)
    if result.cause is not None:
        logger.info(
            "delivery %s of event %s to endpoint %s (workspace %s): %s",
            claim.delivery_id,
            claim.event.id,
            claim.endpoint_id,
            claim.event.workspace_id,
            result.cause,
        )
    return result


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
            forget_endpoints(session)
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


class _Work:
    """What sending claimed deliveries takes: one unit of work per webhook delivery, and one per
    listener queue (a workspace's deliveries to one listener, in sequence order)."""

    def __init__(
        self,
        deps: DeliveryDeps,
        timeout: float,
        rng: random.Random,
        at: Callable[[], datetime],
        listeners: Mapping[str, EventListener],
    ) -> None:
        self.deps, self.timeout, self.rng, self.at, self.listeners = deps, timeout, rng, at, listeners

    def units(self, claims: Sequence[_Claim]) -> list[tuple[_Claim, Callable[[], DeliveryCounts]]]:
        """The units of work, each with its first claim (which says whose it is)."""
        queues: dict[tuple[str, str], list[_Claim]] = {}
        units: list[tuple[_Claim, Callable[[], DeliveryCounts]]] = []
        for claim in claims:
            if claim.listener is not None:
                queues.setdefault((claim.event.workspace_id, claim.listener), []).append(claim)
            else:
                units.append((claim, functools.partial(self._guarded, self._webhook, claim)))
        units += [
            (members[0], functools.partial(self._guarded, self._queue, members))
            for members in queues.values()
        ]
        return units

    def _webhook(self, claim: _Claim) -> DeliveryCounts:
        return _finish(self.deps, claim, _send(claim, self.timeout, self.deps.egress), self.at(), self.rng)

    def _queue(self, claims: list[_Claim]) -> DeliveryCounts:
        counts = DeliveryCounts()
        for index, claim in enumerate(claims):
            result = _call(self.listeners.get(claim.listener or ""), claim)
            counts += _finish(self.deps, claim, result, self.at(), self.rng)
            if not result.ok:
                return counts + _release(self.deps, claim, claims[index + 1 :], self.at())
        return counts

    @staticmethod
    def _guarded(work: Callable[[Any], DeliveryCounts], arg: Any) -> DeliveryCounts:
        try:
            return work(arg)
        except Exception:  # the database, most likely: the lease runs out and the delivery is retried
            logger.exception("delivery worker failed; the deliveries are retried after their lease")
            return DeliveryCounts()


def _lanes(
    units: Sequence[tuple[_Claim, Callable[[], DeliveryCounts]]], per_workspace: int
) -> list[Callable[[], DeliveryCounts]]:
    """A batch's units in lanes: each workspace's webhook deliveries in at most ``per_workspace``
    lanes, one after another in a lane (so that one workspace holds at most that many of the
    pool's threads), and each listener queue a lane of its own; the lanes of the workspaces
    interleaved, so that the pool starts every workspace's first lane before anyone's second."""
    lanes: dict[str, list[list[Callable[[], DeliveryCounts]]]] = {}  # per workspace
    webhook_lanes: dict[str, list[list[Callable[[], DeliveryCounts]]]] = {}
    sent: dict[str, int] = {}
    for claim, unit in units:
        workspace = claim.event.workspace_id
        own = lanes.setdefault(workspace, [])
        if claim.listener is not None:
            own.append([unit])
            continue
        webhooks = webhook_lanes.setdefault(workspace, [])
        index = sent[workspace] = sent.get(workspace, -1) + 1
        if index < per_workspace:
            webhooks.append([])
            own.append(webhooks[-1])
        webhooks[index % per_workspace].append(unit)
    interleaved = [lane for group in itertools.zip_longest(*lanes.values()) for lane in group if lane]

    def run(lane: list[Callable[[], DeliveryCounts]]) -> Callable[[], DeliveryCounts]:
        return lambda: sum((unit() for unit in lane), DeliveryCounts())

    return [run(lane) for lane in interleaved]


def deliver_due(
    deps: DeliveryDeps,
    now: datetime | None = None,
    limit: int = 100,
    *,
    timeout: float | None = None,
    rng: random.Random | None = None,
    concurrency: int = CONCURRENCY,
    per_workspace: int = PER_WORKSPACE,
    lease: timedelta | None = None,
) -> DeliveryCounts:
    """Deliver up to ``limit`` deliveries due at ``now``; safe to run in several workers at once.

    ``timeout``: seconds per webhook request (default: the setting). ``rng``: for the jitter.
    ``concurrency`` requests at once, at most ``per_workspace`` of them of one workspace, and
    the workspaces' deliveries interleaved: one workspace's backlog or slow endpoints do not
    hold back another's. ``lease``: how long a claim is exclusive; by default long enough for
    the whole batch. The ``webhook-timestamp`` is the real time of sending (receivers check it
    against their clock); ``now`` and the time spent since decide what is due, attempt times
    and retries.
    """
    now = now or deps.clock()
    timeout = timeout if timeout is not None else deps.webhook_timeout
    rng = rng or _rng
    per_workspace = max(1, min(per_workspace, concurrency))
    rounds = math.ceil(limit / concurrency) + math.ceil(limit / per_workspace)
    lease = lease or timedelta(seconds=timeout * rounds + 60)
    listeners = dict(deps.event_listeners)
    # Round-robin over the workspaces, but no cap on one workspace's share of a batch: the lanes
    # below cap how many of its requests are in flight at once.
    claims = _claim(deps, now, limit, lease, sorted(listeners), per_workspace=limit)
    if not claims:
        return DeliveryCounts()
    started = time.monotonic()

    def at() -> datetime:
        return now + timedelta(seconds=time.monotonic() - started)

    lanes = _lanes(_Work(deps, timeout, rng, at, listeners).units(claims), per_workspace)
    total = DeliveryCounts(claimed=len(claims))
    with ThreadPoolExecutor(
        max_workers=min(concurrency, len(lanes)), thread_name_prefix="webhook-delivery"
    ) as pool:
        for counts in pool.map(lambda lane: lane(), lanes):
            total += counts
    return total


_rng = random.Random()


class DeliveryWorker:
    """The server's delivery loop: keeps up to ``concurrency`` deliveries in flight, at most
    ``per_workspace`` webhook requests of one workspace, and claims more as soon as one
    finishes, when events commit, and every ``interval`` seconds.

    A workspace whose endpoints are slow (or time out) therefore holds ``per_workspace`` slots
    at most: another workspace's deliveries go out in the free ones meanwhile, not after a batch.
    The worker wakes itself through the gateway's notifier (:mod:`gateway.events.notify`)
    whenever events commit, in this process or, on PostgreSQL, on another replica. :meth:`wake`
    may also be called directly, from any thread or from the event loop; it never blocks.
    """

    def __init__(
        self,
        deps: DeliveryDeps,
        interval: float,
        *,
        concurrency: int = 16,
        per_workspace: int = PER_WORKSPACE,
        on_counts: Callable[[DeliveryCounts], object] | None = None,
    ) -> None:
        self.deps, self.interval = deps, interval
        self.concurrency, self.per_workspace = concurrency, max(1, min(per_workspace, concurrency))
        self.on_counts = on_counts  # told what each delivery did (the server's metrics)
        self._woken = threading.Event()
        self._lock = threading.Lock()
        self._in_flight = 0
        self._busy: dict[str, int] = {}  # webhook requests in flight per workspace
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="webhook-delivery")

    def wake(self, *_: object) -> None:
        self._woken.set()

    def run_once(self) -> DeliveryCounts:
        """Deliver what is due now, in this thread (tests, and operators through the CLI), and
        report it as the running worker does."""
        counts = deliver_due(self.deps, self.deps.clock(), per_workspace=self.per_workspace)
        if self.on_counts is not None:
            self.on_counts(counts)
        return counts

    def pump(self) -> int:
        """Claim what fits into the free slots and start it; the number of deliveries claimed."""
        with self._lock:
            free, busy = self.concurrency - self._in_flight, dict(self._busy)
        if free <= 0:
            return 0
        timeout = self.deps.webhook_timeout
        listeners = dict(self.deps.event_listeners)
        claims = _claim(
            self.deps,
            self.deps.clock(),
            free,
            timedelta(seconds=timeout * free + 60),  # a listener queue may hold them all
            sorted(listeners),
            per_workspace=self.per_workspace,
            busy=busy,
        )
        for claim, unit in _Work(self.deps, timeout, _rng, self.deps.clock, listeners).units(claims):
            workspace = claim.event.workspace_id if claim.listener is None else None
            with self._lock:
                self._in_flight += 1
                if workspace is not None:
                    self._busy[workspace] = self._busy.get(workspace, 0) + 1
            self._pool.submit(self._run, unit, workspace)
        return len(claims)

    def _run(self, unit: Callable[[], DeliveryCounts], workspace: str | None) -> None:
        try:
            counts = unit()
            if self.on_counts is not None:
                self.on_counts(counts)
            if counts.failed:
                logger.info("deliveries: %d failed for good", counts.failed)
        finally:
            with self._lock:
                self._in_flight -= 1
                if workspace is not None:
                    self._busy[workspace] -= 1
                    if not self._busy[workspace]:
                        del self._busy[workspace]
            self.wake()  # a free slot: claim what is waiting

    def close(self) -> None:
        """Wait for the deliveries in flight (each bounded by the request time limit)."""
        self._pool.shutdown(wait=True)

    async def run(self) -> None:
        """Until cancelled; the deliveries in flight finish first."""
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
                    await anyio.to_thread.run_sync(self.pump)
                except Exception:
                    logger.exception("delivery run failed; the next run is in %s seconds", self.interval)
        finally:
            if stop_listening is not None:
                stop_listening()
            self._woken.set()  # an abandoned wait returns at once
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self.close)
