"""Typed errors: expected failures are data, returned in result unions."""

from __future__ import annotations

import enum
from decimal import Decimal

import strawberry

from gateway.api import types as t
from gateway.core import pricing


@strawberry.enum(description="Machine-readable error codes.")
class ErrorCode(enum.Enum):
    AUTHENTICATION_REQUIRED = "AUTHENTICATION_REQUIRED"
    UNKNOWN_PLAN = "UNKNOWN_PLAN"
    PLAN_NOT_PURCHASABLE = "PLAN_NOT_PURCHASABLE"
    PLAN_NOT_ADJUSTABLE = "PLAN_NOT_ADJUSTABLE"
    INVALID_VOLUME = "INVALID_VOLUME"
    UNKNOWN_COUNTRY = "UNKNOWN_COUNTRY"
    UNKNOWN_MESSAGE_TYPE = "UNKNOWN_MESSAGE_TYPE"
    INVALID_VAT_ID = "INVALID_VAT_ID"
    TEXT_TOO_LONG = "TEXT_TOO_LONG"
    RENEWAL_PENDING = "RENEWAL_PENDING"
    # checkout, cards and top-ups
    BILLING_DETAILS_INCOMPLETE = "BILLING_DETAILS_INCOMPLETE"
    QUOTE_EXPIRED = "QUOTE_EXPIRED"
    QUOTE_CHANGED = "QUOTE_CHANGED"
    NOTHING_TO_CHANGE = "NOTHING_TO_CHANGE"
    INSUFFICIENT_BALANCE = "INSUFFICIENT_BALANCE"
    PAYMENT_DECLINED = "PAYMENT_DECLINED"
    PAYMENT_ACTION_REQUIRED = "PAYMENT_ACTION_REQUIRED"
    UNKNOWN_PAYMENT_METHOD = "UNKNOWN_PAYMENT_METHOD"
    UNKNOWN_PAYMENT = "UNKNOWN_PAYMENT"
    UNKNOWN_CARD = "UNKNOWN_CARD"
    CARD_REQUIRED = "CARD_REQUIRED"
    CARD_INVALID_NUMBER = "CARD_INVALID_NUMBER"
    CARD_INVALID_EXPIRY = "CARD_INVALID_EXPIRY"
    CARD_EXPIRED_CARD = "CARD_EXPIRED_CARD"
    CARD_INVALID_CVC = "CARD_INVALID_CVC"
    INVALID_AMOUNT = "INVALID_AMOUNT"
    ORDER_SUPERSEDED = "ORDER_SUPERSEDED"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
    IDEMPOTENCY_KEY_IN_PROGRESS = "IDEMPOTENCY_KEY_IN_PROGRESS"
    INVALID_IDEMPOTENCY_KEY = "INVALID_IDEMPOTENCY_KEY"
    # billing details, usage, scheduled changes, custom quotes
    INVALID_BILLING_DETAILS = "INVALID_BILLING_DETAILS"
    ALLOWANCE_EXCEEDED = "ALLOWANCE_EXCEEDED"
    CHANNEL_NOT_IN_PLAN = "CHANNEL_NOT_IN_PLAN"
    NO_SCHEDULED_CHANGE = "NO_SCHEDULED_CHANGE"
    INVALID_QUOTE_REQUEST = "INVALID_QUOTE_REQUEST"
    # webhooks
    INVALID_WEBHOOK_URL = "INVALID_WEBHOOK_URL"
    UNKNOWN_EVENT_TYPE = "UNKNOWN_EVENT_TYPE"
    UNKNOWN_WEBHOOK_ENDPOINT = "UNKNOWN_WEBHOOK_ENDPOINT"
    WEBHOOK_ENDPOINT_DISABLED = "WEBHOOK_ENDPOINT_DISABLED"
    WEBHOOK_ENDPOINT_LIMIT_REACHED = "WEBHOOK_ENDPOINT_LIMIT_REACHED"
    UNKNOWN_EVENT = "UNKNOWN_EVENT"


@strawberry.interface(description="An expected failure: what went wrong and which input caused it.")
class UserError:
    code: ErrorCode
    message: str
    field: list[str] = strawberry.field(description="Path of the offending input field; empty if none.")


@strawberry.type(description="No valid API key was sent: send `Authorization: Bearer <key>`.")
class AuthenticationRequired(UserError):
    pass


@strawberry.type
class UnknownPlan(UserError):
    plan_code: str


@strawberry.type(description="The plan is sold by quote: use requestCustomQuote or contact sales.")
class PlanNotPurchasable(UserError):
    plan_code: str
    sales_contact: str


@strawberry.type(description="The plan has fixed limits (the Free plan).")
class PlanNotAdjustable(UserError):
    plan_code: str


@strawberry.type(description="A volume is negative, out of the slider's range or off its step.")
class InvalidVolume(UserError):
    value: int
    min: int | None
    max: int | None
    step: int | None


@strawberry.type
class UnknownCountry(UserError):
    country: str


@strawberry.type(description="Unknown message type, or one not offered to the destination.")
class UnknownMessageType(UserError):
    message_type: str


@strawberry.type(description="The VAT ID fails the offline format or checksum check.")
class InvalidVatId(UserError):
    vat_id: str


@strawberry.type
class TextTooLong(UserError):
    length: int
    max_length: int


@strawberry.type(description="The current period has ended and its renewal has not run yet.")
class RenewalPending(UserError):
    period_end: str


def authentication_required(context_has_credentials: bool) -> AuthenticationRequired:
    message = (
        "the API key is not valid"
        if context_has_credentials
        else "this needs a workspace API key: send Authorization: Bearer <key>"
    )
    return AuthenticationRequired(code=ErrorCode.AUTHENTICATION_REQUIRED, message=message, field=[])


def from_pricing_error(error: pricing.PricingError) -> UserError:
    """Translate a pricing-core error into its GraphQL type."""
    field = list(error.field)
    if isinstance(error, pricing.PlanNotPurchasable):
        return PlanNotPurchasable(
            code=ErrorCode.PLAN_NOT_PURCHASABLE,
            message=str(error),
            field=field,
            plan_code=error.plan.code,
            sales_contact=error.sales_contact,
        )
    if isinstance(error, pricing.PlanNotAdjustable):
        return PlanNotAdjustable(
            code=ErrorCode.PLAN_NOT_ADJUSTABLE, message=str(error), field=field, plan_code=error.plan.code
        )
    if isinstance(error, pricing.InvalidVolume):
        option = error.option
        return InvalidVolume(
            code=ErrorCode.INVALID_VOLUME,
            message=str(error),
            field=field,
            value=error.value,
            min=option.min if option else None,
            max=option.max if option else None,
            step=option.step if option else None,
        )
    raise TypeError(f"no GraphQL type for {type(error).__name__}")  # a bug: every core error maps


# ------------------------------------------ billing details, usage, scheduled changes, custom quotes


@strawberry.type(description="One bad input field and what is wrong with it.")
class InputProblem:
    field: list[str] = strawberry.field(description='Path of the field in the input, e.g. ["vatId"].')
    message: str


@strawberry.type(description="Some billing details are invalid; `problems` lists each. Nothing was saved.")
class InvalidBillingDetails(UserError):
    problems: list[InputProblem]


@strawberry.type(description="The usage would go past this period's allowance. Nothing was counted.")
class AllowanceExceeded(UserError):
    kind: t.CreditKind
    used: Decimal = strawberry.field(description="Credits already used this period.")
    included: int = strawberry.field(description="This period's limit.")
    requested: Decimal = strawberry.field(description="Credits the refused request would have used.")
    remaining: Decimal


@strawberry.type(
    description="The plan grants no credits for this channel (SMS or WhatsApp on an email plan)."
)
class ChannelNotInPlan(UserError):
    plan_code: str
    message_type: str


@strawberry.type(description="The workspace has no scheduled change to cancel.")
class NoScheduledChange(UserError):
    pass


@strawberry.type(
    description="Some fields of the quote request are invalid; `problems` lists each. Nothing was saved."
)
class InvalidQuoteRequest(UserError):
    problems: list[InputProblem]


@strawberry.type(
    description="The idempotency key is malformed, was used for a different request, or the "
    "first request with it is still running. Nothing was done."
)
class IdempotencyKeyRejected(UserError):
    pass


# ------------------------------------------------------------------ webhooks


@strawberry.type(
    description="Webhook URLs are http or https, ASCII, without credentials, at most 2000 "
    "characters. Nothing was saved."
)
class InvalidWebhookUrl(UserError):
    url: str


@strawberry.type(description="Not an event type; `validEventTypes` lists them. Nothing was saved.")
class UnknownEventType(UserError):
    event_type: str
    valid_event_types: list[str]


@strawberry.type(description="The workspace has no webhook endpoint with this id.")
class UnknownWebhookEndpoint(UserError):
    endpoint_id: str


@strawberry.type(description="The webhook endpoint is disabled: enable it with updateWebhookEndpoint first.")
class WebhookEndpointDisabled(UserError):
    endpoint_id: str


@strawberry.type(description="The workspace has as many webhook endpoints as allowed; delete one first.")
class WebhookEndpointLimitReached(UserError):
    limit: int


@strawberry.type(description="The workspace has no event with this id.")
class UnknownEvent(UserError):
    event_id: str
