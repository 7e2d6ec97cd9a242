"""Webhook endpoint management: each operation one transaction, refusals write nothing.

The rules (URL checks, event types, limits, secrets) are in :mod:`gateway.events.webhooks`;
these use cases own the transactions around them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from gateway.events import webhooks as hooks
from gateway.services.deps import Deps
from gateway.storage.db import Delivery, OutboxEvent, WebhookEndpoint


def create_endpoint(
    deps: Deps, workspace_id: str, url: str, event_types: Sequence[str], now: datetime
) -> WebhookEndpoint:
    """A new endpoint; its ``secret`` is shown to the caller this once."""
    with deps.write_sessions.begin() as session:
        return hooks.create_endpoint(session, workspace_id, url, event_types, now)


def update_endpoint(
    deps: Deps,
    workspace_id: str,
    endpoint_id: str,
    now: datetime,
    *,
    url: str | None = None,
    event_types: Sequence[str] | None = None,
    enabled: bool | None = None,
) -> WebhookEndpoint:
    with deps.write_sessions.begin() as session:
        return hooks.update_endpoint(
            session, workspace_id, endpoint_id, now, url=url, event_types=event_types, enabled=enabled
        )


def rotate_secret(deps: Deps, workspace_id: str, endpoint_id: str, now: datetime) -> WebhookEndpoint:
    with deps.write_sessions.begin() as session:
        return hooks.rotate_secret(session, workspace_id, endpoint_id, now)


def delete_endpoint(deps: Deps, workspace_id: str, endpoint_id: str) -> None:
    with deps.write_sessions.begin() as session:
        hooks.delete_endpoint(session, workspace_id, endpoint_id)


def redeliver(
    deps: Deps, workspace_id: str, event_id: str, endpoint_id: str | None, now: datetime
) -> tuple[OutboxEvent, list[Delivery]]:
    """Queue the event again, due now; the event and its new deliveries."""
    with deps.write_sessions.begin() as session:
        deliveries = hooks.redeliver(session, workspace_id, event_id, endpoint_id, now)
        event = session.get(OutboxEvent, event_id)
        assert event is not None, "redeliver checked the event exists"
        return event, deliveries
