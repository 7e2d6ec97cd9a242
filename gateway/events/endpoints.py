"""Webhook endpoints: their rules (URL, event types, how many, secrets) and their management
inside the caller's transaction; a refusal is a DomainError and writes nothing."""

from __future__ import annotations

import base64
import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import String, func, select, type_coerce
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified

from gateway.core.errors import DomainError, ErrorCode
from gateway.events.egress import (
    GENERIC_REFUSAL,
    EgressPolicy,
    EgressRefused,
    HostSpellingError,
    Unresolvable,
    canonical_host,
)
from gateway.events.routing import forget_endpoints, new_delivery, subscribes
from gateway.events.types import EventType
from gateway.storage.db import Delivery, OutboxEvent, WebhookEndpoint
from gateway.storage.encryption import keyring
from gateway.storage.locks import lock_workspace

logger = logging.getLogger("gateway.webhooks")

MAX_URL = 2000
MAX_ENDPOINTS = 20  # per workspace
SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32


def event_type_names() -> list[str]:
    return [t.value for t in EventType]


class WebhookError(DomainError):
    """An expected failure of endpoint management; nothing was written."""


class InvalidWebhookUrl(WebhookError):
    code = ErrorCode.INVALID_WEBHOOK_URL

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"invalid webhook URL: {reason}", ("url",))
        self.url = url


class WebhookUrlRefused(WebhookError):
    """The URL's host is, or resolves to, an address the egress policy refuses. The message is
    the same whatever the reason (it must not map the operator's network); the log has it."""

    code = ErrorCode.WEBHOOK_URL_REFUSED

    def __init__(self, url: str) -> None:
        super().__init__(GENERIC_REFUSAL, ("url",))
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
    try:
        canonical_host(parts.hostname)
    except HostSpellingError as error:
        raise InvalidWebhookUrl(url, str(error)) from None
    return text


@dataclass(frozen=True)
class Target:
    """Where a stored webhook URL points: what a connection needs."""

    https: bool
    host: str  # canonical (egress.canonical_host): a DNS name or an IP address
    port: int
    path: str  # with the query
    host_header: str  # as the URL wrote it (the Host header, and the name TLS verifies)


def target_of(url: str) -> Target:
    """The parts of a URL that :func:`validate_url` accepted."""
    parts = urlsplit(url)
    https = parts.scheme.lower() == "https"
    hostname = parts.hostname or ""
    return Target(
        https=https,
        host=canonical_host(hostname),
        port=parts.port or (443 if https else 80),
        path=(parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
        host_header=hostname,
    )


def check_destination(policy: EgressPolicy, workspace_id: str, url: str, timeout: float) -> str:
    """:func:`validate_url`, then the egress policy on the host and on what it resolves to now
    (outside any transaction: this may wait for DNS, ``timeout`` seconds at most). A name that
    does not resolve yet is accepted: every send checks again, on that send's own answer."""
    text = validate_url(url)
    where = target_of(text)
    try:
        policy.resolve(where.host, where.port, timeout)
    except EgressRefused as error:
        logger.warning(
            "workspace %s: webhook URL refused by the egress policy: %s", workspace_id, error.reason
        )
        raise WebhookUrlRefused(url) from None
    except Unresolvable as error:
        logger.info("workspace %s: webhook URL accepted unresolved: %s", workspace_id, error.reason)
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
    # The workspace row, locked: concurrent creates count one after another, never past the limit.
    lock_workspace(session, workspace_id)
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
    forget_endpoints(session)
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
    resumes its pending deliveries; disabling pauses them (events meanwhile are not queued).
    Holds the workspace's lock, as a transaction writing events does: that one routes all its
    events to the endpoints as they were when it read them (see routing.enqueue_deliveries)."""
    lock_workspace(session, workspace_id)
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
    forget_endpoints(session)
    return row


def rotate_secret(
    session: Session, workspace_id: str, endpoint_id: str, now: datetime, grace: timedelta
) -> WebhookEndpoint:
    """A new secret, effective at once. The one it replaces still signs for ``grace`` (every
    attempt meanwhile carries both signatures, so the receiver can switch over), then stops; a
    secret replaced earlier stops at once."""
    row = endpoint_of(session, workspace_id, endpoint_id)
    row.previous_secret = row.secret if grace > timedelta(0) else None
    row.previous_secret_until = now + grace if grace > timedelta(0) else None
    row.secret = new_secret()
    row.updated_at = now
    session.flush()
    return row


def signing_secrets(row: WebhookEndpoint, now: datetime) -> tuple[str, ...]:
    """The secrets that sign an attempt at ``now``: the current one, and the previous one
    during its grace period."""
    until = row.previous_secret_until
    if row.previous_secret is not None and until is not None and now < until:
        return (row.secret, row.previous_secret)
    return (row.secret,)


def delete_endpoint(session: Session, workspace_id: str, endpoint_id: str) -> None:
    """Delete the endpoint with its deliveries and their attempts (the database cascades). Holds
    the workspace's lock, as :func:`update_endpoint` does: a transaction writing events never
    routes one to an endpoint deleted meanwhile."""
    lock_workspace(session, workspace_id)
    row = endpoint_of(session, workspace_id, endpoint_id)
    session.delete(row)
    session.flush()
    forget_endpoints(session)


def redeliver(
    session: Session, workspace_id: str, event_id: str, endpoint_id: str | None, now: datetime
) -> list[Delivery]:
    """Queue the event again, due now: to ``endpoint_id`` (whatever types it subscribes to), or to
    every enabled endpoint subscribed to its type. Receivers see the same ``webhook-id``."""
    event = session.get(OutboxEvent, event_id)
    if event is None or event.workspace_id != workspace_id:
        raise UnknownEvent(event_id)
    if endpoint_id is not None:
        endpoint = endpoint_of(session, workspace_id, endpoint_id, "endpoint_id")
        if not endpoint.enabled:
            raise EndpointDisabled(endpoint_id)
        targets = [endpoint]
    else:
        targets = [
            e
            for e in endpoints_of(session, workspace_id)
            if e.enabled and subscribes(e.event_types, event.type)
        ]
    rows = [new_delivery(event, now, endpoint_id=target.id) for target in targets]
    session.add_all(rows)
    session.flush()
    return rows


def reencrypt_secrets(session: Session) -> tuple[int, int]:
    """Encrypt every stored endpoint secret with the newest key (the first configured); the
    number changed and the number already under it. The secrets themselves do not change."""
    table = WebhookEndpoint.__table__
    raw = select(
        table.c.id, type_coerce(table.c.secret, String), type_coerce(table.c.previous_secret, String)
    )
    changed = unchanged = 0
    for endpoint_id, secret, previous in session.execute(raw).all():
        if keyring.is_current(secret) and (previous is None or keyring.is_current(previous)):
            unchanged += 1
            continue
        row = session.get_one(WebhookEndpoint, endpoint_id)
        # Assigned anew (the same values, decrypted): written through EncryptedText, so under the newest key.
        row.secret, row.previous_secret = keyring.decrypt(secret), previous and keyring.decrypt(previous)
        flag_modified(row, "secret")
        flag_modified(row, "previous_secret")
        changed += 1
    session.flush()
    return changed, unchanged
