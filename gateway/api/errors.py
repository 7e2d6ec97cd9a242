"""Typed errors: expected failures are data, returned in result unions."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeAlias

import strawberry
from strawberry.utils.str_converters import to_camel_case

from gateway.api import types as t
from gateway.api.common import Info, quote_of
from gateway.core import errors
from gateway.services.keys import OperatorCaller

# The codes are described beside their definition in the core.
ErrorCode: TypeAlias = errors.ErrorCode
t.graphql_enum(
    errors.ErrorCode,
    errors.ERROR_CODE_DESCRIPTIONS,
    description="Machine-readable error codes: switch on `code`, not on `message`. Each names the "
    "error type that carries it.",
)


@strawberry.interface(description="An expected failure: what went wrong and which input caused it.")
class UserError:
    code: ErrorCode = strawberry.field(description="What failed, for code to act on.")
    message: str = strawberry.field(
        description="What failed, in plain English, with the values at fault: for logs or as a fallback "
        "text; switch on `code` to decide what to show."
    )
    field: list[str] = strawberry.field(description="Path of the offending input field; empty if none.")


@strawberry.type(description="No valid API key was sent: send `Authorization: Bearer <key>`.")
class AuthenticationRequired(UserError):
    pass


@strawberry.type(
    description="An operators' field: send an operator key (`Authorization: Bearer bgo_...`), "
    "not a workspace's API key. Nothing was done."
)
class OperatorKeyRequired(UserError):
    pass


@strawberry.type(
    description="The API key lacks the scope this field needs (`scope`, as `create-key --scope` "
    "spells it): issue a key with it. Nothing was done."
)
class ScopeRequired(UserError):
    scope: str = strawberry.field(
        description="The scope the field needs: read, live, billing, usage or webhooks (see the README's scopes table)."
    )


@strawberry.type(description="No plan of the catalog has this code: `plans` lists them.")
class UnknownPlan(UserError):
    plan_code: str = strawberry.field(description="The plan code sent.")


@strawberry.type(description="The plan is sold by quote: use requestCustomQuote or contact sales.")
class PlanNotPurchasable(UserError):
    plan_code: str = strawberry.field(description="The plan asked for.")
    sales_contact: str = strawberry.field(description="Where to write to sales, e.g. an email address.")


@strawberry.type(description="The plan has fixed limits (the Free plan).")
class PlanNotAdjustable(UserError):
    plan_code: str = strawberry.field(description="The plan asked for.")


@strawberry.type(description="A volume is negative, out of the slider's range or off its step.")
class InvalidVolume(UserError):
    value: int = strawberry.field(description="The value sent.")
    min: int | None = strawberry.field(
        description="The lowest value allowed; null when the value has no such bound."
    )
    max: int | None = strawberry.field(
        description="The highest value allowed; null when the value has no such bound."
    )
    step: int | None = strawberry.field(
        description="Values must be min plus a multiple of it; null when any whole number is allowed."
    )


@strawberry.type(
    description="The country is not a destination with messaging rates, or none was given for a message type that "
    "needs one; `destinations` lists them."
)
class UnknownCountry(UserError):
    country: str | None = strawberry.field(description="The country sent; null when none was given.")


@strawberry.type(
    description="Not a message type: `messageTypes` lists them. A type that exists but not for the "
    "destination is MessageTypeNotOffered."
)
class UnknownMessageType(UserError):
    requested_message_type: str = strawberry.field(description="The message type code sent.")


@strawberry.type(
    description="The message type exists but the destination does not offer it (WhatsApp to China); "
    "`offeredMessageTypes` lists what it offers, as `destinations` does."
)
class MessageTypeNotOffered(UserError):
    message_type: t.MessageType = strawberry.field(description="The message type sent.")
    country: str | None = strawberry.field(
        description="The destination's ISO code; always set here (nullable as `country` is where no "
        "destination applies, such as UsageRecorded's for an email)."
    )
    offered_message_types: list[t.MessageType] = strawberry.field(
        description="The message types the destination offers."
    )


@strawberry.type(description="The VAT ID fails the offline format or checksum check.")
class InvalidVatId(UserError):
    vat_id: str = strawberry.field(description="The VAT ID sent.")


@strawberry.type(description="A text is longer than its field allows; nothing was done.")
class TextTooLong(UserError):
    length: int = strawberry.field(description="The text's length in characters.")
    max_length: int = strawberry.field(description="The most characters the field takes.")


@strawberry.type(description="The current period has ended and its renewal has not run yet.")
class RenewalPending(UserError):
    period_end: datetime = strawberry.field(
        description="The end of the period that has ended (UTC); the renewal runs shortly after, so try again."
    )


# ------------------------------------------ billing details, usage, scheduled changes, custom quotes


@strawberry.type(description="One bad input field and what is wrong with it.")
class InputProblem:
    field: list[str] = strawberry.field(description='Path of the field in the input, e.g. ["vatId"].')
    message: str = strawberry.field(description="What is wrong with the field, in plain English.")


@strawberry.type(description="Some billing details are invalid; `problems` lists each. Nothing was saved.")
class InvalidBillingDetails(UserError):
    problems: list[InputProblem] = strawberry.field(description="Every invalid field, one entry each.")


@strawberry.type(
    description="The usage would go past this period's allowance. Nothing was counted. Credit "
    "quantities are Decimal, as in CreditUsage."
)
class AllowanceExceeded(UserError):
    kind: t.CreditKind = strawberry.field(description="The credit kind whose allowance would be exceeded.")
    used: Decimal = strawberry.field(description="Credits already used this period.")
    included: Decimal = strawberry.field(description="This period's limit, as in CreditUsage.")
    requested: Decimal = strawberry.field(description="Credits the refused request would have used.")
    remaining: Decimal = strawberry.field(description="included - used, never below 0.")


@strawberry.type(
    description="The plan grants no credits for this channel (SMS or WhatsApp on an email plan)."
)
class ChannelNotInPlan(UserError):
    plan_code: str = strawberry.field(description="The workspace's plan.")
    message_type: t.MessageType = strawberry.field(
        description="The message type sent, whose channel the plan does not cover."
    )


@strawberry.type(description="The workspace has no scheduled change to cancel.")
class NoScheduledChange(UserError):
    pass


@strawberry.type(
    description="Some fields of the quote request are invalid; `problems` lists each. Nothing was saved."
)
class InvalidQuoteRequest(UserError):
    problems: list[InputProblem] = strawberry.field(description="Every invalid field, one entry each.")


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
    url: str = strawberry.field(description="The URL sent.")


@strawberry.type(
    description="The URL's host is, or resolves to, an address webhooks may not reach: private, "
    "loopback, link-local, multicast, reserved or a cloud metadata service. The operator may allow "
    "self-hosted receivers (BILLING_GATEWAY_WEBHOOK_ALLOW). Nothing was saved."
)
class WebhookUrlRefused(UserError):
    url: str = strawberry.field(description="The URL sent.")


@strawberry.type(description="Not an event type; `validEventTypes` lists them. Nothing was saved.")
class UnknownEventType(UserError):
    event_type: str = strawberry.field(description="The first unknown event type sent.")
    valid_event_types: list[str] = strawberry.field(
        description="Every event type, as `webhookEventTypes` lists them."
    )


@strawberry.type(description="The workspace has no webhook endpoint with this id.")
class UnknownWebhookEndpoint(UserError):
    endpoint_id: strawberry.ID = strawberry.field(description="The endpoint id sent.")


@strawberry.type(description="The webhook endpoint is disabled: enable it with updateWebhookEndpoint first.")
class WebhookEndpointDisabled(UserError):
    endpoint_id: strawberry.ID = strawberry.field(description="The disabled endpoint.")


@strawberry.type(description="The workspace has as many webhook endpoints as allowed; delete one first.")
class WebhookEndpointLimitReached(UserError):
    limit: int = strawberry.field(description="The most webhook endpoints a workspace can have.")


@strawberry.type(description="The workspace has no event with this id.")
class UnknownEvent(UserError):
    event_id: strawberry.ID = strawberry.field(description="The event id sent.")


# ------------------------------------------------------------------ history (paged lists)


@strawberry.type(
    description="A page was asked for with a negative `first` (INVALID_PAGE_SIZE) or an `after` that is "
    "not a cursor of this list (INVALID_CURSOR)."
)
class InvalidPageRequest(UserError):
    pass


# ------------------------------------------------------------------ payments


@strawberry.type(
    description="The payment asks the customer to act (3-D Secure, a redirect): let them, then call "
    "confirmPayment before `expiresAt`, after which the payment expires and nothing is applied."
)
class PaymentActionRequired(UserError):
    payment_id: strawberry.ID = strawberry.field(description="The payment to pass to confirmPayment.")
    next_action: str = strawberry.field(
        description="What the customer must do, as the payment method describes it (e.g. a 3-D Secure challenge "
        "or a URL to redirect to)."
    )
    expires_at: datetime | None = strawberry.field(
        default=None, description="When the payment expires if nobody confirms it."
    )


@strawberry.type(
    description="The payment is recorded and waits: for the money to arrive (a bank transfer: pay with "
    "`instructions` quoting `reference` before `expiresAt`), or for the payment method's answer. What it "
    "pays for applies once it succeeds (the `payment.pending`, `checkout.completed` and `payment.expired` "
    "events follow it)."
)
class PaymentPending(UserError):
    payment_id: strawberry.ID = strawberry.field(
        description="The pending payment; `workspace.payments` shows where it stands."
    )
    reference: str | None = strawberry.field(
        description="The reference to quote with the transfer; null when the method needs none."
    )
    instructions: list[t.Instruction] = strawberry.field(
        description="How to pay, line by line (IBAN, BIC, amount, ...); empty when the method only has to answer."
    )
    expires_at: datetime | None = strawberry.field(
        description="When the payment expires unpaid and nothing is applied; null when it does not expire."
    )


@strawberry.type(description="The payment failed; nothing changed but the failed payment's record.")
class PaymentDeclined(UserError):
    payment_id: strawberry.ID = strawberry.field(
        description="The failed payment's record (see `workspace.payments`)."
    )
    decline_code: str = strawberry.field(
        description="Why, as the payment method says it, e.g. card_declined or insufficient_funds."
    )


@strawberry.type(description="My balance does not cover what is due now; nothing changed.")
class InsufficientBalance(UserError):
    balance: t.Money = strawberry.field(description="My balance now.")
    required: t.Money = strawberry.field(description="What is due now.")
    shortfall: t.Money = strawberry.field(
        description="required - balance: what a top-up would need to add at least."
    )


@strawberry.type(
    description="The workspace is suspended for unpaid invoices: usage and orders are refused until "
    "every open invoice is paid (payInvoice); nothing changed."
)
class WorkspaceSuspended(UserError):
    amount_due: t.Money = strawberry.field(
        description="The total of the open invoices, to pay with payInvoice."
    )


@strawberry.type(description="The confirmed quote expired or its total changed: here is the new quote.")
class QuoteChanged(UserError):
    quote: t.Quote = strawberry.field(
        description="The new quote, with a new token: show it and let the customer confirm again."
    )
    expected_total: Decimal = strawberry.field(
        description="The total the customer confirmed (the old quote's `dueNow.total.amount`)."
    )


@strawberry.type(
    description="The quote token is not one the gateway signed for this workspace: altered, malformed, "
    "signed with a key no longer configured, or another workspace's (INVALID_QUOTE_TOKEN; ask for a new "
    "quote); or it was sent with the fields it replaces (QUOTE_TOKEN_CONFLICT), or neither a token nor "
    "the quote's fields were sent (QUOTE_REQUIRED). Nothing was done. An expired token is QuoteChanged."
)
class InvalidQuoteToken(UserError):
    pass


@strawberry.type(description="Checkout needs complete billing details (updateBillingDetails).")
class BillingDetailsIncomplete(UserError):
    missing_fields: list[str] = strawberry.field(
        description="The missing fields, as UpdateBillingDetailsInput names them."
    )


@strawberry.type(
    description="The refund asks for more than is left of the payment to refund (what it paid less the "
    "refunds made or under way); nothing was written."
)
class RefundExceedsPayment(UserError):
    refundable: t.Money = strawberry.field(description="What can still be refunded.")


@strawberry.type(
    description="A payment request refused before anything was attempted, or (ORDER_SUPERSEDED) a "
    "confirmed payment whose order no longer applied and was refunded; `code` says which."
)
class PaymentRejected(UserError):
    pass


# ------------------------------------------------------------------ translation

_Builder = Callable[[Any, dict[str, Any], "Info"], UserError]
_BUILDERS: dict[type[errors.DomainError], _Builder] = {}


def _translates(kind: type[errors.DomainError]) -> Callable[[_Builder], _Builder]:
    def register(build: _Builder) -> _Builder:
        _BUILDERS[kind] = build
        return build

    return register


def api_path(field: Sequence[str]) -> list[str]:
    """A use case's field path (snake_case request fields) as the API spells it."""
    return [to_camel_case(part) for part in field]


def translate(error: errors.DomainError, info: Info) -> UserError:
    """The one GraphQL error type of a domain error, whichever operation it came from."""
    common = {"code": error.error_code, "message": error.message, "field": api_path(error.field)}
    for kind in type(error).__mro__:
        build = _BUILDERS.get(kind)
        if build is not None:
            return build(error, common, info)
    raise TypeError(f"no GraphQL type for {type(error).__name__}")  # a bug: tests check every error maps


def has_translation(kind: type[errors.DomainError]) -> bool:
    """Whether errors of this class (or a base of it) have a GraphQL type."""
    return any(k in _BUILDERS for k in kind.__mro__)


def _why(info: Info, other_kind: bool, *, other: str, wrong: str, missing: str) -> str:
    """Why a guard refused: the other kind of key was sent, a key that is not valid, or none."""
    if other_kind:
        return other
    return wrong if info.context.credentials_given else missing


def authentication_required(info: Info) -> AuthenticationRequired:
    message = _why(
        info,
        info.context.operator is not None,
        other="an operator key has no workspace: this needs a workspace API key",
        wrong="the API key is not valid",
        missing="this needs a workspace API key: send Authorization: Bearer <key>",
    )
    return AuthenticationRequired(code=errors.ErrorCode.AUTHENTICATION_REQUIRED, message=message, field=[])


def operator_key_required(info: Info) -> OperatorKeyRequired:
    message = _why(
        info,
        info.context.workspace_id is not None,
        other="a workspace API key cannot do this: it needs an operator key",
        wrong="the operator key is not valid",
        missing="this needs an operator key: send Authorization: Bearer <operator key>",
    )
    return OperatorKeyRequired(code=errors.ErrorCode.OPERATOR_KEY_REQUIRED, message=message, field=[])


def scope_required(scope: str, message: str) -> ScopeRequired:
    return ScopeRequired(code=errors.ErrorCode.SCOPE_REQUIRED, message=message, field=[], scope=scope)


# The guard returns Any: each resolver's result union is an Annotated union of concrete types,
# which mypy cannot relate to the UserError interface; Strawberry checks every answer against
# the union at run time, and the error-model tests exercise every operation's failures.
def signed_in(info: Info, work: Callable[[str], object]) -> Any:
    """The sign-in guard: ``work(workspace_id)`` for a valid API key, else AuthenticationRequired;
    a domain error it raises (or returns) becomes its GraphQL type."""
    workspace_id = info.context.workspace_id
    if workspace_id is None:
        return authentication_required(info)
    return attempt(info, lambda: work(workspace_id))


def as_operator(info: Info, work: Callable[[OperatorCaller], object]) -> Any:
    """The operators' guard: ``work(operator)`` for a valid operator key, else OperatorKeyRequired
    (a workspace's key never passes); a domain error it raises (or returns) becomes its GraphQL type."""
    operator = info.context.operator
    if operator is None:
        return operator_key_required(info)
    return attempt(info, lambda: work(operator))


def attempt(info: Info, work: Callable[[], object]) -> Any:
    """``work()``, with a domain error it raises (or returns) as its GraphQL type.

    The request's read session is closed first: a use case works in its own transaction, and
    what the answer then reads must see what it committed (on SQLite an open read transaction
    keeps its snapshot). A request so holds one connection at a time."""
    info.context.close()
    try:
        result = work()
    except errors.DomainError as error:
        return translate(error, info)
    if isinstance(result, errors.DomainError):
        return translate(result, info)
    return result


def reading(info: Info, work: Callable[[], object]) -> Any:
    """``work()`` on the request's read session (kept open: it only reads), with a domain error
    it raises as its GraphQL type: for fields that refuse bad arguments, such as a page's cursor."""
    try:
        return work()
    except errors.DomainError as error:
        return translate(error, info)


def _invalid_input(error: errors.InvalidInput) -> dict[str, Any]:
    problems = [InputProblem(field=api_path((p.field,)), message=p.message) for p in error.problems]
    return {"problems": problems, "message": "; ".join(f"{p.field[0]} {p.message}" for p in problems)}


def _builder(graphql_type: Callable[..., UserError], extra: Callable[[Any], dict[str, Any]]) -> _Builder:
    def build(error: Any, common: dict[str, Any], info: Info) -> UserError:
        return graphql_type(**{**common, **extra(error)})

    return build


def _register_all() -> None:
    from gateway.core import pricing, quote_tokens
    from gateway.events import endpoints
    from gateway.services import checkout, history, messages, refunds, usage
    from gateway.storage import idempotency

    simple: list[
        tuple[type[errors.DomainError], Callable[..., UserError], Callable[[Any], dict[str, Any]]]
    ] = [
        (
            pricing.PlanNotPurchasable,
            PlanNotPurchasable,
            lambda e: {"plan_code": e.plan.code, "sales_contact": e.sales_contact},
        ),
        (pricing.PlanNotAdjustable, PlanNotAdjustable, lambda e: {"plan_code": e.plan.code}),
        (
            errors.InvalidVolume,
            InvalidVolume,
            lambda e: {"value": e.value, "min": e.min, "max": e.max, "step": e.step},
        ),
        (errors.UnknownPlan, UnknownPlan, lambda e: {"plan_code": e.plan_code}),
        (errors.UnknownCountry, UnknownCountry, lambda e: {"country": e.country}),
        (
            errors.UnknownMessageType,
            UnknownMessageType,
            lambda e: {"requested_message_type": e.message_type},
        ),
        (
            messages.MessageTypeNotOffered,
            MessageTypeNotOffered,
            lambda e: {
                "message_type": t.MessageType.of(e.offer),
                "country": e.destination.country,
                "offered_message_types": [t.MessageType.of(m) for m in e.offered],
            },
        ),
        (errors.InvalidVatId, InvalidVatId, lambda e: {"vat_id": e.vat_id}),
        (errors.TextTooLong, TextTooLong, lambda e: {"length": e.length, "max_length": e.max_length}),
        (errors.RenewalPending, RenewalPending, lambda e: {"period_end": e.period_end}),
        (errors.NoScheduledChange, NoScheduledChange, lambda e: {}),
        (errors.InvalidBillingDetails, InvalidBillingDetails, _invalid_input),
        (errors.InvalidQuoteRequest, InvalidQuoteRequest, _invalid_input),
        (
            errors.BillingDetailsIncomplete,
            BillingDetailsIncomplete,
            lambda e: {"missing_fields": list(e.missing)},
        ),
        (
            errors.InsufficientBalance,
            InsufficientBalance,
            lambda e: {
                "balance": t.Money.of(e.balance),
                "required": t.Money.of(e.required),
                "shortfall": t.Money.of(e.shortfall),
            },
        ),
        (errors.WorkspaceSuspended, WorkspaceSuspended, lambda e: {"amount_due": t.Money.of(e.amount_due)}),
        (
            errors.PaymentDeclined,
            PaymentDeclined,
            lambda e: {"payment_id": e.payment_id, "decline_code": e.decline_code},
        ),
        (
            errors.PaymentActionRequired,
            PaymentActionRequired,
            lambda e: {"payment_id": e.payment_id, "next_action": e.next_action, "expires_at": e.expires_at},
        ),
        (
            errors.PaymentPending,
            PaymentPending,
            lambda e: {
                "payment_id": e.payment_id,
                "reference": e.reference,
                "instructions": [t.Instruction(name=k, value=v) for k, v in e.instructions.items()],
                "expires_at": e.expires_at,
            },
        ),
        (errors.PaymentRefused, PaymentRejected, lambda e: {}),
        (
            refunds.RefundExceedsPayment,
            RefundExceedsPayment,
            lambda e: {"refundable": t.Money.of(e.refundable)},
        ),
        (errors.NothingToChange, PaymentRejected, lambda e: {}),
        (quote_tokens.InvalidQuoteToken, InvalidQuoteToken, lambda e: {}),
        (checkout.QuoteTokenMisused, InvalidQuoteToken, lambda e: {}),
        (idempotency.IdempotencyKeyReused, IdempotencyKeyRejected, lambda e: {}),
        (idempotency.IdempotencyKeyInProgress, IdempotencyKeyRejected, lambda e: {}),
        (idempotency.InvalidIdempotencyKey, IdempotencyKeyRejected, lambda e: {}),
        (
            usage.AllowanceExceeded,
            AllowanceExceeded,
            lambda e: {
                "kind": e.kind,
                "used": usage.normal(e.used),
                "included": Decimal(e.included),
                "requested": usage.normal(e.requested),
                "remaining": usage.normal(e.remaining),
            },
        ),
        (
            usage.ChannelNotInPlan,
            ChannelNotInPlan,
            lambda e: {"plan_code": e.plan_code, "message_type": t.MessageType.of(e.offer)},
        ),
        (endpoints.InvalidWebhookUrl, InvalidWebhookUrl, lambda e: {"url": e.url}),
        (endpoints.WebhookUrlRefused, WebhookUrlRefused, lambda e: {"url": e.url}),
        (
            endpoints.UnknownEventType,
            UnknownEventType,
            lambda e: {"event_type": e.event_type, "valid_event_types": endpoints.event_type_names()},
        ),
        (endpoints.UnknownEndpoint, UnknownWebhookEndpoint, lambda e: {"endpoint_id": e.endpoint_id}),
        (endpoints.EndpointDisabled, WebhookEndpointDisabled, lambda e: {"endpoint_id": e.endpoint_id}),
        (endpoints.EndpointLimitReached, WebhookEndpointLimitReached, lambda e: {"limit": e.limit}),
        (endpoints.UnknownEvent, UnknownEvent, lambda e: {"event_id": e.event_id}),
        (history.InvalidCursor, InvalidPageRequest, lambda e: {}),
        (history.InvalidPageSize, InvalidPageRequest, lambda e: {}),
    ]
    for kind, graphql_type, extra in simple:
        _translates(kind)(_builder(graphql_type, extra))

    @_translates(checkout.QuoteChanged)
    def _quote_changed(error: checkout.QuoteChanged, common: dict[str, Any], info: Info) -> UserError:
        return QuoteChanged(
            **common, quote=quote_of(info, error.order, error.balance), expected_total=error.expected_total
        )


_register_all()
