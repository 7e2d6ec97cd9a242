"""Webhook endpoint management: each operation one transaction, refusals write nothing.

The rules (URL checks, event types, limits, secrets) are in :mod:`gateway.events.endpoints`;
these use cases own the transactions around them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from gateway.events import endpoints
from gateway.services import webhook_views as views
from gateway.services.deps import Deps


def create_endpoint(
    deps: Deps, workspace_id: str, url: str, event_types: Sequence[str], now: datetime
) -> tuple[views.EndpointView, str]:
    """A new endpoint and its signing secret, which is shown to the caller this once."""
    url = endpoints.check_destination(
        deps.egress, workspace_id, url, deps.webhook_timeout
    )  # DNS: no transaction
    with deps.write_sessions.begin() as session:
        row = endpoints.create_endpoint(session, workspace_id, url, event_types, now)
        return views.endpoint_view(row), row.secret


def update_endpoint(
    deps: Deps,
    workspace_id: str,
    endpoint_id: str,
    now: datetime,
    *,
    url: str | None = None,
    event_types: Sequence[str] | None = None,
    enabled: bool | None = None,
) -> views.EndpointView:
    if url is not None:
        url = endpoints.check_destination(deps.egress, workspace_id, url, deps.webhook_timeout)
    with deps.write_sessions.begin() as session:
        return views.endpoint_view(
            endpoints.update_endpoint(
                session, workspace_id, endpoint_id, now, url=url, event_types=event_types, enabled=enabled
            )
        )


def rotate_secret(
    deps: Deps, workspace_id: str, endpoint_id: str, now: datetime
) -> tuple[views.EndpointView, str]:
    """The endpoint with a new signing secret, and the secret; the old one still signs for the
    grace period (the setting), then stops."""
    with deps.write_sessions.begin() as session:
        row = endpoints.rotate_secret(session, workspace_id, endpoint_id, now, deps.webhook_secret_grace)
        return views.endpoint_view(row), row.secret


def delete_endpoint(deps: Deps, workspace_id: str, endpoint_id: str) -> None:
    with deps.write_sessions.begin() as session:
        endpoints.delete_endpoint(session, workspace_id, endpoint_id)


def redeliver(
    deps: Deps, workspace_id: str, event_id: str, endpoint_id: str | None, now: datetime
) -> list[views.DeliveryView]:
    """Queue the event again, due now; its new deliveries."""
    with deps.write_sessions.begin() as session:
        deliveries = endpoints.redeliver(session, workspace_id, event_id, endpoint_id, now)
        return views.redelivered(session, event_id, deliveries)
