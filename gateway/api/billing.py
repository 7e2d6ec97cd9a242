"""Billing details, usage, scheduled changes and Custom plan quote requests.

Each mutation needs the workspace's API key, refuses bad input with a typed error
(a code and the offending field) and then writes nothing. The work runs in the
services (:mod:`gateway.services.billing_details`, :mod:`gateway.services.usage`,
:mod:`gateway.services.renewal`, :mod:`gateway.services.custom_quotes`), each in its own transaction.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

import strawberry

from gateway.api import errors as e
from gateway.api import types as t
from gateway.api.common import Info, current_workspace
from gateway.api.workspace import Workspace, billing_details_of, usage_of
from gateway.core.tax import CustomerKind
from gateway.services import billing_details as details
from gateway.services import billing_views as views
from gateway.services import custom_quotes, renewal, usage

# ------------------------------------------------------------------ inputs


@strawberry.input(
    description=(
        "A partial update of the billing details: fields left out keep their value, null clears an optional "
        "field. Checkout needs customerType, name, addressLine1, city, postalCode, country and email, and "
        "companyName for a company."
    )
)
class UpdateBillingDetailsInput:
    customer_type: t.CustomerType | None = strawberry.field(
        default=strawberry.UNSET, description="A person or a company; decides the tax treatment."
    )
    name: str | None = strawberry.field(default=strawberry.UNSET, description="The buyer's full name.")
    company_name: str | None = strawberry.field(
        default=strawberry.UNSET, description="The company's legal name; required for a company."
    )
    address_line1: str | None = strawberry.field(default=strawberry.UNSET, description="The street address.")
    address_line2: str | None = strawberry.field(
        default=strawberry.UNSET, description="More of the address (floor, suite)."
    )
    city: str | None = strawberry.field(default=strawberry.UNSET, description="The city.")
    postal_code: str | None = strawberry.field(default=strawberry.UNSET, description="The postal code.")
    region: str | None = strawberry.field(
        default=strawberry.UNSET, description="The region, state or province, where the address needs one."
    )
    country: str | None = strawberry.field(
        default=strawberry.UNSET, description="ISO 3166-1 alpha-2 code, e.g. DE."
    )
    vat_id: str | None = strawberry.field(
        default=strawberry.UNSET, description="Checked against the country."
    )
    email: str | None = strawberry.field(default=strawberry.UNSET, description="Where invoices are sent.")


@strawberry.input(description="Messages sent, to count against the period's allowance.")
class RecordUsageInput:
    message_type: str = strawberry.field(
        description="A code from `messageTypes`: EMAIL, SMS, WHATSAPP_MARKETING, ..."
    )
    quantity: int = strawberry.field(description=f"Messages sent, 1 to {usage.MAX_QUANTITY:,}.")
    country: str | None = strawberry.field(
        default=None, description="Destination; required except for EMAIL."
    )
    sample_text: str | None = strawberry.field(
        default=None, description="SMS: the text sent, priced per segment; left out: one segment per message."
    )
    idempotency_key: str | None = strawberry.field(
        default=None, description="Retries with the same key get the first answer and are counted once."
    )


@strawberry.input(description="Who asks for a Custom plan quote, and what they expect to send.")
class RequestCustomQuoteInput:
    contact_name: str = strawberry.field(description="The person sales should contact.")
    email: str = strawberry.field(description="Where sales should write.")
    company: str = strawberry.field(description="The company asking.")
    expected_email_credits: int | None = strawberry.field(default=None, description="Per month.")
    expected_messaging_credits: int | None = strawberry.field(default=None, description="Per month.")
    message: str | None = strawberry.field(
        default=None, description=f"At most {custom_quotes.MAX_MESSAGE} characters."
    )


# ------------------------------------------------------------------ results


@strawberry.type(description="Usage counted against this period's allowance.")
class UsageRecorded:
    record_id: strawberry.ID = strawberry.field(description="Identifies the usage record.")
    message_type: t.MessageType = strawberry.field(description="The message type counted.")
    country: str | None = strawberry.field(description="The destination; null for an email.")
    quantity: int = strawberry.field(description="Messages counted, as sent.")
    segments: int = strawberry.field(description="SMS segments per message; 1 for other types.")
    credit_kind: t.CreditKind = strawberry.field(description="The credits spent.")
    credits_per_message: Decimal = strawberry.field(description="All segments of one message.")
    credits: Decimal = strawberry.field(
        description="Credits this request used: a Decimal, as every credit quantity of usage (see CreditUsage)."
    )
    usage: t.Usage = strawberry.field(description="The period's usage after this request.")


@strawberry.type(description="The request was recorded; sales will get in touch.")
class CustomQuoteRequested:
    request_id: strawberry.ID = strawberry.field(
        description="Identifies the request, for sales and the custom_quote.requested event."
    )
    sales_contact: str = strawberry.field(description="Where to write to sales directly.")


UpdateBillingDetailsResult = Annotated[
    t.BillingDetails | e.InvalidBillingDetails | e.AuthenticationRequired | e.ScopeRequired,
    strawberry.union(
        "UpdateBillingDetailsResult",
        description="The saved billing details, or InvalidBillingDetails listing every invalid field (nothing saved).",
    ),
]
RecordUsageResult = Annotated[
    UsageRecorded
    | e.AllowanceExceeded
    | e.ChannelNotInPlan
    | e.InvalidVolume
    | e.UnknownMessageType
    | e.MessageTypeNotOffered
    | e.UnknownCountry
    | e.TextTooLong
    | e.IdempotencyKeyRejected
    | e.RenewalPending
    | e.WorkspaceSuspended
    | e.AuthenticationRequired
    | e.ScopeRequired,
    strawberry.union(
        "RecordUsageResult",
        description="UsageRecorded, or why nothing was counted.",
    ),
]
CancelScheduledChangeResult = Annotated[
    Workspace | e.NoScheduledChange | e.AuthenticationRequired | e.ScopeRequired,
    strawberry.union(
        "CancelScheduledChangeResult",
        description="The workspace without its scheduled change, or NoScheduledChange.",
    ),
]
RequestCustomQuoteResult = Annotated[
    CustomQuoteRequested | e.InvalidQuoteRequest | e.AuthenticationRequired | e.ScopeRequired,
    strawberry.union(
        "RequestCustomQuoteResult",
        description="CustomQuoteRequested, or InvalidQuoteRequest listing every invalid field.",
    ),
]


# ------------------------------------------------------------------ helpers


def _recorded(recorded: usage.Recorded) -> UsageRecorded:
    u = recorded.usage
    return UsageRecorded(
        record_id=strawberry.ID(recorded.record_id),
        message_type=t.MessageType.of(u.offer),
        country=u.country,
        quantity=u.quantity,
        segments=u.segments,
        credit_kind=u.kind,
        credits_per_message=usage.normal(u.credits_per_message),
        credits=usage.normal(u.credits),
        usage=usage_of(recorded.period),
    )


# ---------------------------------------------------------------- mutations


@strawberry.type
class BillingMutation:
    @strawberry.mutation(
        description=(
            "Save billing details (Edit billing details on the Checkout page): a partial update, every field "
            "checked first, the VAT ID against the country. Nothing is saved if any field is invalid."
        )
    )
    def update_billing_details(
        self,
        info: Info,
        input: Annotated[
            UpdateBillingDetailsInput,
            strawberry.argument(description="The fields to change; others keep their value."),
        ],
    ) -> UpdateBillingDetailsResult:
        changes: dict[str, Any] = {}
        for name in details.FIELD_ORDER:
            value = getattr(input, name)
            if value is not strawberry.UNSET:
                changes[name] = value.value if isinstance(value, CustomerKind) else value
        ctx = info.context
        return e.signed_in(
            info,
            lambda workspace_id: billing_details_of(
                views.billing_details_view(
                    details.update_billing_details(ctx.gateway, workspace_id, changes, ctx.now)
                )
            ),
        )

    @strawberry.mutation(
        description=(
            "Count sent emails or messages against this period's allowance. Refused whole, with nothing counted, "
            "when it would go past the allowance or the plan has no credits for the channel."
        )
    )
    def record_usage(
        self,
        info: Info,
        input: Annotated[RecordUsageInput, strawberry.argument(description="The messages sent.")],
    ) -> RecordUsageResult:
        ctx = info.context
        request = usage.UsageRequest(
            input.message_type, input.quantity, input.country, input.sample_text, input.idempotency_key
        )
        return e.signed_in(
            info,
            lambda workspace_id: _recorded(usage.record_usage(ctx.gateway, workspace_id, request, ctx.now)),
        )

    @strawberry.mutation(description="Cancel the downgrade or limit reduction scheduled for the next period.")
    def cancel_scheduled_change(self, info: Info) -> CancelScheduledChangeResult:
        ctx = info.context

        def work(workspace_id: str) -> Workspace:
            renewal.cancel_scheduled_change(ctx.gateway, workspace_id, ctx.now)
            row = current_workspace(info)
            assert row is not None
            return Workspace.of(info, row)

        return e.signed_in(info, work)

    @strawberry.mutation(
        description=(
            "Request a quote for the Custom plan: records the request for sales and returns their address."
        )
    )
    def request_custom_quote(
        self,
        info: Info,
        input: Annotated[RequestCustomQuoteInput, strawberry.argument(description="Who asks, and for what.")],
    ) -> RequestCustomQuoteResult:
        ctx = info.context
        request = custom_quotes.QuoteRequest(
            input.contact_name,
            input.email,
            input.company,
            input.expected_email_credits,
            input.expected_messaging_credits,
            input.message,
        )

        def work(workspace_id: str) -> CustomQuoteRequested:
            requested = custom_quotes.request_custom_quote(ctx.gateway, workspace_id, request, ctx.now)
            return CustomQuoteRequested(
                request_id=strawberry.ID(requested.request_id), sales_contact=requested.sales_contact
            )

        return e.signed_in(info, work)
