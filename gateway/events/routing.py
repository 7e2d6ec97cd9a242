"""Routing: who gets each committed event.

:func:`enqueue_deliveries` runs inside :func:`gateway.events.outbox.emit`, in the transaction
that writes the event: one ``deliveries`` row per enabled webhook endpoint of the workspace that
subscribes to the event's type, and one per registered in-process event listener. A rolled-back
change therefore enqueues nothing, and the delivery state lives in the database: a restart loses
nothing. The listener codes come from the gateway's registry, which :func:`attach_event_listeners`
(called when the gateway is built) puts into the ``info`` of its session factories; sessions made
elsewhere enqueue webhook deliveries only. :mod:`gateway.events.delivery` sends what is queued.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Protocol

from sqlalchemy import select, true
from sqlalchemy.orm import Session, sessionmaker

from gateway.core.statuses import DeliveryStatus
from gateway.plugin_api.events import EventListener
from gateway.storage.db import Delivery, OutboxEvent, WebhookEndpoint, transaction_memo

LISTENERS_KEY = "billing_gateway.event_listeners"  # Session.info: the registry's event listeners


class Routed(Protocol):
    """The gateway as routing sees it: its session factories and its event listeners."""

    @property
    def sessions(self) -> sessionmaker[Session]: ...

    @property
    def write_sessions(self) -> sessionmaker[Session]: ...

    @property
    def event_listeners(self) -> Mapping[str, EventListener]: ...


def attach_event_listeners(deps: Routed) -> None:
    """Let ``emit`` in the gateway's sessions queue a delivery per registered event listener.

    The registry's dict is shared, not copied: a listener registered later (a test) is routed
    too. Sessions not made by these factories queue webhook deliveries only.
    """
    for maker in (deps.sessions, deps.write_sessions):
        maker.configure(info={**maker.kw.get("info", {}), LISTENERS_KEY: deps.event_listeners})


def new_delivery(
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


_ENDPOINTS = "webhook endpoints"


def forget_endpoints(session: Session) -> None:
    """After a change to webhook endpoints: events written later in the same transaction are
    routed to the endpoints as they are now."""
    memo = transaction_memo(session)
    for key in [k for k in memo if k[0] == _ENDPOINTS]:
        del memo[key]


def enqueue_deliveries(session: Session, event: OutboxEvent) -> list[Delivery]:
    """Queue ``event`` (just added to ``session``) for every subscribed endpoint and listener.

    Runs in the transaction that writes the event, so it commits or rolls back with it.
    """
    listeners: Mapping[str, EventListener] = session.info.get(LISTENERS_KEY, {})
    # Read once per transaction and workspace: a checkout writes several events. Creating,
    # updating or deleting an endpoint holds the workspace's lock, as writing events does, so the
    # list stays true until this transaction ends (forget_endpoints: a change in this one). The
    # delivery worker may disable an endpoint meanwhile; its deliveries then wait, as any do.
    memo = transaction_memo(session)
    endpoints = memo.get((_ENDPOINTS, event.workspace_id))
    if endpoints is None:
        with session.no_autoflush:  # emit flushes nothing early (Delivery.event orders the inserts)
            endpoints = memo[_ENDPOINTS, event.workspace_id] = session.execute(
                select(WebhookEndpoint.id, WebhookEndpoint.event_types)
                .where(WebhookEndpoint.workspace_id == event.workspace_id, WebhookEndpoint.enabled == true())
                .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
            ).all()
    rows = [
        new_delivery(event, event.occurred_at, endpoint_id=endpoint_id)
        for endpoint_id, types in endpoints
        if subscribes(types, event.type)
    ]
    rows += [new_delivery(event, event.occurred_at, listener=code) for code in sorted(listeners)]
    session.add_all(rows)
    return rows
