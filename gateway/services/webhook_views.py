"""What the API shows of a workspace's webhooks, read for it: the endpoints and, per endpoint,
its most recent deliveries with every attempt.

Read models, as in :mod:`gateway.services.billing_views`: frozen copies of the rows, each
function a fixed number of statements. The deliveries of many endpoints come in two statements
(deliveries with their events, then the attempts), not two per endpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.events.endpoints import endpoints_of
from gateway.storage.db import Delivery, DeliveryAttempt, OutboxEvent, WebhookEndpoint


@dataclass(frozen=True)
class EndpointView:
    id: str
    url: str
    event_types: tuple[str, ...]  # empty: every type
    enabled: bool
    disabled_reason: str | None
    created_at: datetime
    updated_at: datetime
    previous_secret_expires_at: datetime | None  # the rotated-out secret signs until then


def endpoint_view(row: WebhookEndpoint) -> EndpointView:
    """The read model of a row at hand (also one just written, in its own transaction)."""
    return EndpointView(
        id=row.id,
        url=row.url,
        event_types=tuple(row.event_types),
        enabled=row.enabled,
        disabled_reason=row.disabled_reason,
        created_at=row.created_at,
        updated_at=row.updated_at,
        previous_secret_expires_at=row.previous_secret_until if row.previous_secret is not None else None,
    )


def endpoints(session: Session, workspace_id: str) -> list[EndpointView]:
    """The workspace's endpoints, oldest first."""
    return [endpoint_view(row) for row in endpoints_of(session, workspace_id)]


@dataclass(frozen=True)
class AttemptView:
    attempted_at: datetime
    status_code: int | None  # None: no HTTP answer
    duration_ms: int
    response_excerpt: str | None
    error: str | None


@dataclass(frozen=True)
class DeliveryView:
    id: str
    event_id: str
    event_type: str
    sequence: int  # the event's number in the workspace
    status: str  # pending | delivered | failed
    attempt_count: int  # since it was (re)queued
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime
    attempts: tuple[AttemptView, ...]  # oldest first


def _delivery(row: Delivery, event: OutboxEvent, attempts: Sequence[AttemptView]) -> DeliveryView:
    return DeliveryView(
        id=row.id,
        event_id=event.id,
        event_type=event.type,
        sequence=event.sequence,
        status=row.status,
        attempt_count=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        delivered_at=row.delivered_at,
        created_at=row.created_at,
        attempts=tuple(attempts),
    )


def recent_deliveries(
    session: Session, endpoint_ids: Sequence[str], limit: int
) -> dict[str, list[DeliveryView]]:
    """The ``limit`` most recent deliveries of each endpoint, newest first, with their attempts.

    Two statements for any number of endpoints: a window function ranks each endpoint's
    deliveries, and both the deliveries and their attempts are read for the top ``limit`` ranks.
    """
    found: dict[str, list[DeliveryView]] = {endpoint_id: [] for endpoint_id in endpoint_ids}
    if not endpoint_ids or limit <= 0:
        return found
    newest_first = (Delivery.created_at.desc(), OutboxEvent.sequence.desc(), Delivery.id)
    ranked = (
        select(
            Delivery.id.label("delivery_id"),
            func.row_number().over(partition_by=Delivery.endpoint_id, order_by=newest_first).label("rank"),
        )
        .join(OutboxEvent, OutboxEvent.id == Delivery.event_id)
        .where(Delivery.endpoint_id.in_(endpoint_ids))
        .subquery()
    )
    recent = select(ranked.c.delivery_id).where(ranked.c.rank <= limit)
    rows = session.execute(
        select(Delivery, OutboxEvent)
        .join(OutboxEvent, OutboxEvent.id == Delivery.event_id)
        .where(Delivery.id.in_(recent))
        .order_by(*newest_first)
    ).all()
    attempts: dict[str, list[AttemptView]] = {}
    for attempt in session.scalars(
        select(DeliveryAttempt)
        .where(DeliveryAttempt.delivery_id.in_(recent))
        .order_by(DeliveryAttempt.attempted_at, DeliveryAttempt.id)
    ):
        attempts.setdefault(attempt.delivery_id, []).append(
            AttemptView(
                attempted_at=attempt.attempted_at,
                status_code=attempt.status_code,
                duration_ms=attempt.duration_ms,
                response_excerpt=attempt.response_excerpt,
                error=attempt.error,
            )
        )
    for delivery, event in rows:
        assert delivery.endpoint_id is not None  # the ranking selected endpoints' deliveries only
        found[delivery.endpoint_id].append(_delivery(delivery, event, attempts.get(delivery.id, ())))
    return found


def redelivered(session: Session, event_id: str, rows: Sequence[Delivery]) -> list[DeliveryView]:
    """The read models of deliveries just queued for ``event_id`` (no attempts yet)."""
    event = session.get(OutboxEvent, event_id)  # read by the redelivery: no statement
    assert event is not None
    return [_delivery(row, event, ()) for row in rows]
