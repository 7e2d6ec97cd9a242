"""Events, written to the outbox in the same transaction as the change they report.

Only committed rows are ever delivered, so integrators never hear of a change
that was rolled back. Each workspace numbers its events 1, 2, 3, ... without gaps
(the counter lives on the workspace row, which the writer has locked).
"""

from __future__ import annotations

import enum
import secrets
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from gateway.events import notify
from gateway.storage.db import OutboxEvent, Workspace


class EventType(enum.Enum):
    PLAN_CHANGE_SCHEDULED = "plan_change.scheduled"
    PLAN_CHANGE_APPLIED = "plan_change.applied"
    PLAN_CHANGE_CANCELLED = "plan_change.cancelled"
    CHECKOUT_COMPLETED = "checkout.completed"
    PAYMENT_FAILED = "payment.failed"
    BALANCE_TOPPED_UP = "balance.topped_up"
    CREDITS_RESET = "credits.reset"
    RENEWAL_COMPLETED = "renewal.completed"
    RENEWAL_FAILED = "renewal.failed"
    CUSTOM_QUOTE_REQUESTED = "custom_quote.requested"
    CARD_ADDED = "card.added"


PAYLOAD_VERSION = (
    1  # bump per type when a payload changes incompatibly; documented in gateway/events/catalog.py
)


def emit(
    session: Session, workspace: Workspace, type: EventType, payload: dict[str, Any], now: datetime
) -> OutboxEvent:
    """Append an event for ``workspace`` (whose row the caller has locked)."""
    workspace.event_sequence += 1
    event = OutboxEvent(
        id=secrets.token_hex(16),
        workspace_id=workspace.id,
        sequence=workspace.event_sequence,
        type=type.value,
        version=PAYLOAD_VERSION,
        payload=payload,
        occurred_at=now,
    )
    session.add(event)
    notify.announce(session, workspace.id)  # wakes readers on commit (NOTIFY on PostgreSQL); not on rollback
    from gateway.events.webhooks import enqueue_deliveries

    enqueue_deliveries(session, event)  # webhooks and in-process listeners, in this same transaction
    return event


def config_payload(plan_code: str, email: int, messaging: int) -> dict[str, Any]:
    """A plan configuration as event payloads spell it."""
    return {"plan": plan_code, "email_credits": email, "messaging_credits": messaging}
