"""Webhook endpoints: manage them, see their recent deliveries and attempts, redeliver events.

Every field needs the workspace's API key and only ever sees that workspace's endpoints and
events (another workspace's ids answer as unknown). Mutations call the use cases of
:mod:`gateway.services.webhooks`, each in its own transaction; a refused input writes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, TypeAlias

import strawberry

from gateway.api import errors as e
from gateway.api import types as t
from gateway.api.common import Info
from gateway.api.context import Context
from gateway.core import statuses
from gateway.events import endpoints
from gateway.services import webhook_views as views
from gateway.services import webhooks

MAX_DELIVERIES = 100  # per endpoint and request

# ------------------------------------------------------------------ types


DeliveryStatus: TypeAlias = statuses.DeliveryStatus
t.graphql_enum(
    statuses.DeliveryStatus,
    {
        statuses.DeliveryStatus.PENDING: "Not delivered yet: the next attempt is due at `nextAttemptAt`.",
        statuses.DeliveryStatus.DELIVERED: "The endpoint answered 2xx.",
        statuses.DeliveryStatus.FAILED: "Given up after the last retry, or the endpoint answered 410 Gone; "
        "redeliverEvent sends it again.",
    },
    description="Where a delivery stands.",
)


@strawberry.type(description="One try to deliver an event to an endpoint.")
class DeliveryAttempt:
    attempted_at: datetime = strawberry.field(description="When the request was sent (UTC).")
    status_code: int | None = strawberry.field(
        description="The HTTP status; null when none came (time limit, connection refused, ...)."
    )
    duration_ms: int = strawberry.field(description="How long the attempt took, in milliseconds.")
    response_excerpt: str | None = strawberry.field(
        description="The first 500 characters of the response body."
    )
    error: str | None = strawberry.field(
        description="Why the attempt failed, in plain English; null when the endpoint answered 2xx."
    )

    @classmethod
    def of(cls, attempt: views.AttemptView) -> DeliveryAttempt:
        return cls(
            attempted_at=attempt.attempted_at,
            status_code=attempt.status_code,
            duration_ms=attempt.duration_ms,
            response_excerpt=attempt.response_excerpt,
            error=attempt.error,
        )


@strawberry.type(
    description="One event on its way to one endpoint. Retried with exponential backoff for "
    "about three days, then FAILED; a 410 answer fails it at once and disables the "
    "endpoint."
)
class WebhookDelivery:
    id: strawberry.ID = strawberry.field(description="Identifies the delivery.")
    event_id: strawberry.ID = strawberry.field(
        description="Also the `webhook-id` header, the same on every attempt and redelivery."
    )
    event_type: str = strawberry.field(description="The event's type, e.g. checkout.completed.")
    sequence: int = strawberry.field(description="The event's number in the workspace (1, 2, 3, ...).")
    status: DeliveryStatus = strawberry.field(description="Where the delivery stands.")
    attempt_count: int = strawberry.field(description="Attempts since the delivery was queued.")
    next_attempt_at: datetime | None = strawberry.field(
        description="When the next try is due (UTC); null once DELIVERED or FAILED."
    )
    last_status_code: int | None = strawberry.field(
        description="The HTTP status of the latest attempt; null before the first or when none came."
    )
    last_error: str | None = strawberry.field(
        description="Why the latest attempt failed; null before the first attempt and after a success."
    )
    delivered_at: datetime | None = strawberry.field(
        description="When an attempt succeeded (UTC); null until then."
    )
    created_at: datetime = strawberry.field(description="When the delivery was queued (UTC).")
    attempts: list[DeliveryAttempt] = strawberry.field(description="Every attempt, oldest first.")

    @classmethod
    def of(cls, delivery: views.DeliveryView) -> WebhookDelivery:
        return cls(
            id=strawberry.ID(delivery.id),
            event_id=strawberry.ID(delivery.event_id),
            event_type=delivery.event_type,
            sequence=delivery.sequence,
            status=DeliveryStatus(delivery.status),
            attempt_count=delivery.attempt_count,
            next_attempt_at=delivery.next_attempt_at,
            last_status_code=delivery.last_status_code,
            last_error=delivery.last_error,
            delivered_at=delivery.delivered_at,
            created_at=delivery.created_at,
            attempts=[DeliveryAttempt.of(a) for a in delivery.attempts],
        )


class _RecentDeliveries:
    """The recent deliveries of the endpoints of one answer, read for all of them together the
    first time one endpoint's are asked for (once per ``limit`` asked): listing ten endpoints
    with their deliveries then costs the statements of listing one. The schema runs with
    ``execute_sync``, resolvers one after another, so Strawberry's (async) DataLoader does not
    apply and no lock is needed."""

    def __init__(self, endpoint_ids: Sequence[str]) -> None:
        self.endpoint_ids = list(endpoint_ids)
        self.loaded: dict[int, dict[str, list[views.DeliveryView]]] = {}

    def of(self, context: Context, endpoint_id: str, limit: int) -> list[views.DeliveryView]:
        if limit not in self.loaded:
            self.loaded[limit] = views.recent_deliveries(context.session, self.endpoint_ids, limit)
        return self.loaded[limit][endpoint_id]


@strawberry.type(description="Where the workspace's events are POSTed, signed per Standard Webhooks.")
class WebhookEndpoint:
    id: strawberry.ID = strawberry.field(
        description="Identifies the endpoint; send it as `id` to update, rotate or delete it."
    )
    url: str = strawberry.field(description="Where events are POSTed.")
    event_types: list[str] = strawberry.field(description="The event types sent; empty: every type.")
    enabled: bool = strawberry.field(
        description="False when paused (updateWebhookEndpoint) or disabled by a 410 answer."
    )
    disabled_reason: str | None = strawberry.field(
        description="Why it was disabled (a 410 answer, or the API)."
    )
    created_at: datetime = strawberry.field(description="When it was created (UTC).")
    updated_at: datetime = strawberry.field(description="When it was last changed (UTC).")
    previous_secret_expires_at: datetime | None = strawberry.field(
        description="After rotateWebhookSecret: until then the previous secret signs too (each "
        "request carries both signatures); null: only the current secret signs."
    )
    recent: strawberry.Private[_RecentDeliveries]  # shared by the endpoints of one answer

    @classmethod
    def of(cls, endpoint: views.EndpointView, recent: _RecentDeliveries | None = None) -> WebhookEndpoint:
        """From a read model (a mutation's endpoint is alone in its answer)."""
        return cls(
            id=strawberry.ID(endpoint.id),
            url=endpoint.url,
            event_types=list(endpoint.event_types),
            enabled=endpoint.enabled,
            disabled_reason=endpoint.disabled_reason,
            created_at=endpoint.created_at,
            updated_at=endpoint.updated_at,
            previous_secret_expires_at=endpoint.previous_secret_expires_at,
            recent=recent if recent is not None else _RecentDeliveries([endpoint.id]),
        )

    @strawberry.field(description=f"The most recent deliveries, newest first (at most {MAX_DELIVERIES}).")
    def deliveries(
        self,
        info: Info,
        limit: Annotated[
            int,
            strawberry.argument(
                description=f"How many to return: at most {MAX_DELIVERIES}; below 0 counts as 0."
            ),
        ] = 20,
    ) -> list[WebhookDelivery]:
        found = self.recent.of(info.context, str(self.id), max(0, min(limit, MAX_DELIVERIES)))
        return [WebhookDelivery.of(delivery) for delivery in found]


@strawberry.type(description="The workspace's webhook endpoints.")
class WebhookEndpoints:
    endpoints: list[WebhookEndpoint] = strawberry.field(
        description="Every endpoint of the workspace, oldest first."
    )


@strawberry.type(
    description="The endpoint was created. `secret` is shown this once: keep it to verify "
    "signatures (the standardwebhooks libraries take it as is)."
)
class WebhookEndpointCreated:
    endpoint: WebhookEndpoint = strawberry.field(description="The new endpoint.")
    secret: str = strawberry.field(description="The signing secret (whsec_ and base64); not shown again.")


@strawberry.type(
    description="The endpoint has a new secret, shown this once. It signs every later attempt, "
    "retries included; the previous secret signs beside it until `endpoint.previousSecretExpiresAt` "
    "(the operator's grace period, 24 hours by default), so receivers can switch over without "
    "rejecting a request."
)
class WebhookSecretRotated:
    endpoint: WebhookEndpoint = strawberry.field(
        description="The endpoint, with `previousSecretExpiresAt` set."
    )
    secret: str = strawberry.field(description="The new signing secret (whsec_ and base64); not shown again.")


@strawberry.type(description="The endpoint is deleted, with its deliveries and their attempts.")
class WebhookEndpointDeleted:
    id: strawberry.ID = strawberry.field(description="The id of the endpoint deleted.")


@strawberry.type(description="The event is queued again, due now.")
class EventRedelivered:
    deliveries: list[WebhookDelivery] = strawberry.field(
        description="The deliveries queued, one per endpoint."
    )


# ------------------------------------------------------------------ inputs


@strawberry.input(description="A new webhook endpoint.")
class CreateWebhookEndpointInput:
    url: str = strawberry.field(description="http or https.")
    event_types: list[str] = strawberry.field(
        default_factory=list, description="Types from `webhookEventTypes`; empty or left out: every type."
    )


@strawberry.input(description="Fields left out (or null) keep their value.")
class UpdateWebhookEndpointInput:
    url: str | None = strawberry.field(
        default=None, description="The new URL: http or https, checked as createWebhookEndpoint's."
    )
    event_types: list[str] | None = strawberry.field(default=None, description="Empty: every type.")
    enabled: bool | None = strawberry.field(
        default=None,
        description="false pauses deliveries (events meanwhile are not queued); true resumes "
        "the pending ones, also after a 410 disabled the endpoint.",
    )


# ------------------------------------------------------------------ results

WebhookEndpointsResult = Annotated[
    WebhookEndpoints | e.AuthenticationRequired | e.ScopeRequired,
    strawberry.union(
        "WebhookEndpointsResult",
        description="The endpoints, or AuthenticationRequired without a valid workspace API key.",
    ),
]
CreateWebhookEndpointResult = Annotated[
    WebhookEndpointCreated
    | e.InvalidWebhookUrl
    | e.WebhookUrlRefused
    | e.UnknownEventType
    | e.WebhookEndpointLimitReached
    | e.AuthenticationRequired
    | e.ScopeRequired,
    strawberry.union(
        "CreateWebhookEndpointResult",
        description="The endpoint with its secret, or why nothing was saved.",
    ),
]
UpdateWebhookEndpointResult = Annotated[
    WebhookEndpoint
    | e.UnknownWebhookEndpoint
    | e.InvalidWebhookUrl
    | e.WebhookUrlRefused
    | e.UnknownEventType
    | e.AuthenticationRequired
    | e.ScopeRequired,
    strawberry.union(
        "UpdateWebhookEndpointResult",
        description="The endpoint as changed, or why nothing was changed.",
    ),
]
RotateWebhookSecretResult = Annotated[
    WebhookSecretRotated | e.UnknownWebhookEndpoint | e.AuthenticationRequired | e.ScopeRequired,
    strawberry.union(
        "RotateWebhookSecretResult",
        description="The endpoint with its new secret, or UnknownWebhookEndpoint.",
    ),
]
DeleteWebhookEndpointResult = Annotated[
    WebhookEndpointDeleted | e.UnknownWebhookEndpoint | e.AuthenticationRequired | e.ScopeRequired,
    strawberry.union(
        "DeleteWebhookEndpointResult",
        description="The id deleted, or UnknownWebhookEndpoint.",
    ),
]
RedeliverEventResult = Annotated[
    EventRedelivered
    | e.UnknownEvent
    | e.UnknownWebhookEndpoint
    | e.WebhookEndpointDisabled
    | e.AuthenticationRequired
    | e.ScopeRequired,
    strawberry.union(
        "RedeliverEventResult",
        description="The deliveries queued, or why none was.",
    ),
]


# ------------------------------------------------------------------ queries and mutations


@strawberry.type
class WebhooksQuery:
    @strawberry.field(description="The workspace's webhook endpoints, with their recent deliveries.")
    def webhook_endpoints(self, info: Info) -> WebhookEndpointsResult:
        def work(workspace_id: str) -> WebhookEndpoints:
            listed = views.endpoints(info.context.session, workspace_id)
            recent = _RecentDeliveries([endpoint.id for endpoint in listed])
            return WebhookEndpoints(endpoints=[WebhookEndpoint.of(endpoint, recent) for endpoint in listed])

        return e.signed_in(info, work)

    @strawberry.field(description="The event types an endpoint can subscribe to.")
    def webhook_event_types(self) -> list[str]:
        return endpoints.event_type_names()


@strawberry.type
class WebhooksMutation:
    @strawberry.mutation(
        description="Add a webhook endpoint. Its signing secret is in the answer, this once."
    )
    def create_webhook_endpoint(
        self,
        info: Info,
        input: Annotated[
            CreateWebhookEndpointInput,
            strawberry.argument(description="The URL and the event types to send."),
        ],
    ) -> CreateWebhookEndpointResult:
        ctx = info.context

        def work(workspace_id: str) -> WebhookEndpointCreated:
            endpoint, secret = webhooks.create_endpoint(
                ctx.gateway, workspace_id, input.url, input.event_types, ctx.now
            )
            return WebhookEndpointCreated(endpoint=WebhookEndpoint.of(endpoint), secret=secret)

        return e.signed_in(info, work)

    @strawberry.mutation(description="Change an endpoint's URL, event types or whether it is enabled.")
    def update_webhook_endpoint(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The endpoint's `id`.")],
        input: Annotated[UpdateWebhookEndpointInput, strawberry.argument(description="What to change.")],
    ) -> UpdateWebhookEndpointResult:
        ctx = info.context

        def work(workspace_id: str) -> WebhookEndpoint:
            row = webhooks.update_endpoint(
                ctx.gateway,
                workspace_id,
                str(id),
                ctx.now,
                url=input.url,
                event_types=input.event_types,
                enabled=input.enabled,
            )
            return WebhookEndpoint.of(row)

        return e.signed_in(info, work)

    @strawberry.mutation(
        description="Replace an endpoint's signing secret; the old one still signs, beside the new "
        "one, for a grace period."
    )
    def rotate_webhook_secret(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The endpoint's `id`.")],
    ) -> RotateWebhookSecretResult:
        ctx = info.context

        def work(workspace_id: str) -> WebhookSecretRotated:
            endpoint, secret = webhooks.rotate_secret(ctx.gateway, workspace_id, str(id), ctx.now)
            return WebhookSecretRotated(endpoint=WebhookEndpoint.of(endpoint), secret=secret)

        return e.signed_in(info, work)

    @strawberry.mutation(
        description="Delete an endpoint with its delivery log; pending deliveries are dropped."
    )
    def delete_webhook_endpoint(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The endpoint's `id`.")],
    ) -> DeleteWebhookEndpointResult:
        def work(workspace_id: str) -> WebhookEndpointDeleted:
            webhooks.delete_endpoint(info.context.gateway, workspace_id, str(id))
            return WebhookEndpointDeleted(id=id)

        return e.signed_in(info, work)

    @strawberry.mutation(
        description=(
            "Send an event again, now: to `endpointId` (whatever types it subscribes to), or to every enabled "
            "endpoint subscribed to the event's type. Receivers get the same `webhook-id` as before."
        )
    )
    def redeliver_event(
        self,
        info: Info,
        event_id: Annotated[
            strawberry.ID,
            strawberry.argument(description="The event's `id` (as Event.id or WebhookDelivery.eventId)."),
        ],
        endpoint_id: Annotated[
            strawberry.ID | None,
            strawberry.argument(
                description="Only to this endpoint; null: to every enabled endpoint subscribed to the type."
            ),
        ] = None,
    ) -> RedeliverEventResult:
        ctx = info.context

        def work(workspace_id: str) -> EventRedelivered:
            queued = webhooks.redeliver(
                ctx.gateway,
                workspace_id,
                str(event_id),
                str(endpoint_id) if endpoint_id is not None else None,
                ctx.now,
            )
            return EventRedelivered(deliveries=[WebhookDelivery.of(delivery) for delivery in queued])

        return e.signed_in(info, work)
