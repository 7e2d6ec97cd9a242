"""Events, written to the outbox in the same transaction as the change they report.

Only committed rows are ever delivered, so integrators never hear of a change
that was rolled back. Each workspace numbers its events 1, 2, 3, ... without gaps
(the counter lives on the workspace row, which the writer has locked).
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from gateway.events import notify
from gateway.events.routing import enqueue_deliveries
from gateway.events.types import PAYLOAD_VERSION, EventType, config_payload
from gateway.storage.db import OutboxEvent, Workspace


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
    enqueue_deliveries(session, event)  # webhooks and in-process listeners, in this same transaction
    return event


__all__ = ["PAYLOAD_VERSION", "EventType", "config_payload", "emit"]
