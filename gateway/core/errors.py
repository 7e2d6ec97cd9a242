"""The one error model: expected failures are :class:`DomainError` values.

Every refusal (bad input, a state that does not allow the operation) and every
payment that did not go through is a ``DomainError`` carrying an :class:`ErrorCode`
and the path of the input field at fault. Use cases raise them when nothing was
written (the transaction rolls back) and return them when the failure itself was
recorded (a declined payment keeps its payment row). The API translates each
class to one GraphQL error type in ``gateway.api.errors``, so the same failure
reads the same in every operation.

Field paths name the use case's own request fields in snake_case
(``("billing_details", "vat_id")``); the API spells them its own way. Errors here
are those several use cases share; the others live beside the code that raises
them (pricing, usage, webhooks, idempotency), all subclasses of ``DomainError``.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from gateway.core.money import Money


class ErrorCode(enum.Enum):
    """Machine-readable error codes, one per kind of failure."""

    AUTHENTICATION_REQUIRED = "AUTHENTICATION_REQUIRED"
    OPERATOR_KEY_REQUIRED = "OPERATOR_KEY_REQUIRED"
    SCOPE_REQUIRED = "SCOPE_REQUIRED"
    UNKNOWN_PLAN = "UNKNOWN_PLAN"
    PLAN_NOT_PURCHASABLE = "PLAN_NOT_PURCHASABLE"
    PLAN_NOT_ADJUSTABLE = "PLAN_NOT_ADJUSTABLE"
    INVALID_VOLUME = "INVALID_VOLUME"
    UNKNOWN_COUNTRY = "UNKNOWN_COUNTRY"
    UNKNOWN_MESSAGE_TYPE = "UNKNOWN_MESSAGE_TYPE"
    MESSAGE_TYPE_NOT_OFFERED = "MESSAGE_TYPE_NOT_OFFERED"
    INVALID_VAT_ID = "INVALID_VAT_ID"
    TEXT_TOO_LONG = "TEXT_TOO_LONG"
    RENEWAL_PENDING = "RENEWAL_PENDING"
    # checkout, cards and top-ups
    BILLING_DETAILS_INCOMPLETE = "BILLING_DETAILS_INCOMPLETE"
    QUOTE_EXPIRED = "QUOTE_EXPIRED"
    QUOTE_CHANGED = "QUOTE_CHANGED"
    INVALID_QUOTE_TOKEN = "INVALID_QUOTE_TOKEN"
    QUOTE_TOKEN_CONFLICT = "QUOTE_TOKEN_CONFLICT"
    QUOTE_REQUIRED = "QUOTE_REQUIRED"
    NOTHING_TO_CHANGE = "NOTHING_TO_CHANGE"
    INSUFFICIENT_BALANCE = "INSUFFICIENT_BALANCE"
    PAYMENT_DECLINED = "PAYMENT_DECLINED"
    PAYMENT_ACTION_REQUIRED = "PAYMENT_ACTION_REQUIRED"
    PAYMENT_PENDING = "PAYMENT_PENDING"
    PAYMENT_METHOD_NOT_ALLOWED = "PAYMENT_METHOD_NOT_ALLOWED"
    PAYMENT_IN_PROGRESS = "PAYMENT_IN_PROGRESS"
    UNKNOWN_INVOICE = "UNKNOWN_INVOICE"
    INVOICE_NOT_OPEN = "INVOICE_NOT_OPEN"
    WORKSPACE_SUSPENDED = "WORKSPACE_SUSPENDED"
    PAYMENT_NOT_REFUNDABLE = "PAYMENT_NOT_REFUNDABLE"
    REFUND_EXCEEDS_PAYMENT = "REFUND_EXCEEDS_PAYMENT"
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
    WEBHOOK_URL_REFUSED = "WEBHOOK_URL_REFUSED"
    UNKNOWN_EVENT_TYPE = "UNKNOWN_EVENT_TYPE"
    UNKNOWN_WEBHOOK_ENDPOINT = "UNKNOWN_WEBHOOK_ENDPOINT"
    WEBHOOK_ENDPOINT_DISABLED = "WEBHOOK_ENDPOINT_DISABLED"
    WEBHOOK_ENDPOINT_LIMIT_REACHED = "WEBHOOK_ENDPOINT_LIMIT_REACHED"
    UNKNOWN_EVENT = "UNKNOWN_EVENT"
    # history (paged lists)
    INVALID_CURSOR = "INVALID_CURSOR"
    INVALID_PAGE_SIZE = "INVALID_PAGE_SIZE"


# One sentence or two per code, shown in the published schema on the GraphQL enum: what failed and
# which error type answers with it. A new code needs its line here (tests/test_schema_descriptions.py).
ERROR_CODE_DESCRIPTIONS: dict[ErrorCode, str] = {
    ErrorCode.AUTHENTICATION_REQUIRED: "No valid workspace API key was sent (AuthenticationRequired).",
    ErrorCode.OPERATOR_KEY_REQUIRED: "The operation is for operators and no valid operator key was sent "
    "(OperatorKeyRequired).",
    ErrorCode.SCOPE_REQUIRED: "The API key lacks the scope the field needs; nothing was done "
    "(ScopeRequired, naming the scope).",
    ErrorCode.UNKNOWN_PLAN: "No plan of the catalog has this code (UnknownPlan).",
    ErrorCode.PLAN_NOT_PURCHASABLE: "The plan is sold by quote and cannot be bought or priced "
    "(PlanNotPurchasable).",
    ErrorCode.PLAN_NOT_ADJUSTABLE: "Credits were sent for a plan with fixed limits (PlanNotAdjustable).",
    ErrorCode.INVALID_VOLUME: "A credit limit or quantity is negative, out of range or off its step "
    "(InvalidVolume).",
    ErrorCode.UNKNOWN_COUNTRY: "The country is not a destination with rates, or none was given where one is "
    "needed (UnknownCountry).",
    ErrorCode.UNKNOWN_MESSAGE_TYPE: "The message type code is not one of `messageTypes` (UnknownMessageType).",
    ErrorCode.MESSAGE_TYPE_NOT_OFFERED: "The message type exists but the destination does not offer it "
    "(MessageTypeNotOffered).",
    ErrorCode.INVALID_VAT_ID: "The VAT ID fails the format or checksum check for its country (InvalidVatId).",
    ErrorCode.TEXT_TOO_LONG: "A text is longer than the field allows (TextTooLong).",
    ErrorCode.RENEWAL_PENDING: "The current period has ended and its renewal has not run yet; try again "
    "shortly (RenewalPending).",
    ErrorCode.BILLING_DETAILS_INCOMPLETE: "Checkout needs billing details that are not saved yet "
    "(BillingDetailsIncomplete).",
    ErrorCode.QUOTE_EXPIRED: "The confirmed quote is past its `expiresAt`; the answer carries a new quote "
    "(QuoteChanged).",
    ErrorCode.QUOTE_CHANGED: "The confirmed quote's total no longer holds; the answer carries the new quote "
    "(QuoteChanged).",
    ErrorCode.INVALID_QUOTE_TOKEN: "The quote token was not signed by the gateway for this workspace "
    "(InvalidQuoteToken).",
    ErrorCode.QUOTE_TOKEN_CONFLICT: "A quote token was sent together with the quote fields it replaces "
    "(InvalidQuoteToken).",
    ErrorCode.QUOTE_REQUIRED: "Checkout got neither a quote token nor the quote's fields (InvalidQuoteToken).",
    ErrorCode.NOTHING_TO_CHANGE: "Checkout of the plan and limits the workspace already has (PaymentRejected).",
    ErrorCode.INSUFFICIENT_BALANCE: "My balance holds less than what is due now (InsufficientBalance).",
    ErrorCode.PAYMENT_DECLINED: "The payment method refused the payment (PaymentDeclined).",
    ErrorCode.PAYMENT_ACTION_REQUIRED: "The customer must act on the payment (3-D Secure), then "
    "confirmPayment (PaymentActionRequired).",
    ErrorCode.PAYMENT_PENDING: "The payment waits for the money or the method's answer (PaymentPending).",
    ErrorCode.PAYMENT_METHOD_NOT_ALLOWED: "The payment method cannot be used here, e.g. My balance for a "
    "top-up or a method that cannot pay renewals (PaymentRejected).",
    ErrorCode.PAYMENT_IN_PROGRESS: "Another checkout of the workspace is being paid; try again in a moment "
    "(PaymentRejected).",
    ErrorCode.UNKNOWN_INVOICE: "The workspace has no invoice with this id (PaymentRejected).",
    ErrorCode.INVOICE_NOT_OPEN: "The invoice is already paid (PaymentRejected).",
    ErrorCode.WORKSPACE_SUSPENDED: "The workspace is suspended until its open invoices are paid "
    "(WorkspaceSuspended).",
    ErrorCode.PAYMENT_NOT_REFUNDABLE: "The payment did not succeed, is fully refunded, or its method cannot "
    "refund (PaymentRejected).",
    ErrorCode.REFUND_EXCEEDS_PAYMENT: "The refund asks for more than is left of the payment "
    "(RefundExceedsPayment).",
    ErrorCode.UNKNOWN_PAYMENT_METHOD: "No installed payment method has this code (PaymentRejected).",
    ErrorCode.UNKNOWN_PAYMENT: "The workspace has no payment with this id, or none to confirm "
    "(PaymentRejected).",
    ErrorCode.UNKNOWN_CARD: "The workspace has no saved card with this id, or it was removed "
    "(PaymentRejected).",
    ErrorCode.CARD_REQUIRED: "A card method was chosen without a saved card or a new card (PaymentRejected).",
    ErrorCode.CARD_INVALID_NUMBER: "The card number is not digits, has the wrong length or fails the Luhn "
    "check (PaymentRejected).",
    ErrorCode.CARD_INVALID_EXPIRY: "The card's expiry month is not 1-12 or its year is implausible "
    "(PaymentRejected).",
    ErrorCode.CARD_EXPIRED_CARD: "The card has expired (PaymentRejected).",
    ErrorCode.CARD_INVALID_CVC: "The CVC does not have the digits the card brand asks for (PaymentRejected).",
    ErrorCode.INVALID_AMOUNT: "The amount is not positive, out of the allowed range or has more decimals "
    "than the currency (PaymentRejected).",
    ErrorCode.ORDER_SUPERSEDED: "A confirmed payment's order no longer applied, so the payment was refunded "
    "(PaymentRejected).",
    ErrorCode.IDEMPOTENCY_KEY_REUSED: "The idempotency key was used before for a different request "
    "(IdempotencyKeyRejected).",
    ErrorCode.IDEMPOTENCY_KEY_IN_PROGRESS: "The first request with this idempotency key is still running "
    "(IdempotencyKeyRejected).",
    ErrorCode.INVALID_IDEMPOTENCY_KEY: "The idempotency key is blank, too long or holds unprintable characters "
    "(IdempotencyKeyRejected).",
    ErrorCode.INVALID_BILLING_DETAILS: "Some billing details are invalid (InvalidBillingDetails).",
    ErrorCode.ALLOWANCE_EXCEEDED: "The usage would go past this period's allowance (AllowanceExceeded).",
    ErrorCode.CHANNEL_NOT_IN_PLAN: "The plan grants no credits for the message type's channel "
    "(ChannelNotInPlan).",
    ErrorCode.NO_SCHEDULED_CHANGE: "There is no scheduled change to cancel (NoScheduledChange).",
    ErrorCode.INVALID_QUOTE_REQUEST: "Some fields of the custom quote request are invalid "
    "(InvalidQuoteRequest).",
    ErrorCode.INVALID_WEBHOOK_URL: "The webhook URL is malformed or not http(s) (InvalidWebhookUrl).",
    ErrorCode.WEBHOOK_URL_REFUSED: "The webhook URL reaches an address webhooks may not reach, such as a "
    "private one (WebhookUrlRefused).",
    ErrorCode.UNKNOWN_EVENT_TYPE: "Not an event type of `webhookEventTypes` (UnknownEventType).",
    ErrorCode.UNKNOWN_WEBHOOK_ENDPOINT: "The workspace has no webhook endpoint with this id "
    "(UnknownWebhookEndpoint).",
    ErrorCode.WEBHOOK_ENDPOINT_DISABLED: "The webhook endpoint is disabled (WebhookEndpointDisabled).",
    ErrorCode.WEBHOOK_ENDPOINT_LIMIT_REACHED: "The workspace has as many webhook endpoints as allowed "
    "(WebhookEndpointLimitReached).",
    ErrorCode.UNKNOWN_EVENT: "The workspace has no event with this id (UnknownEvent).",
    ErrorCode.INVALID_CURSOR: "`after` is not a cursor of this list (InvalidPageRequest).",
    ErrorCode.INVALID_PAGE_SIZE: "`first` is negative (InvalidPageRequest).",
}


class DomainError(Exception):
    """An expected failure: what went wrong (``code``, ``message``) and which input caused it."""

    code: ClassVar[ErrorCode]

    def __init__(self, message: str, field: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.field = tuple(field)

    @property
    def error_code(self) -> ErrorCode:
        """The code of this failure (a class's code, or one chosen per instance)."""
        return self.code


# ------------------------------------------------------------------ input


@dataclass(frozen=True)
class FieldProblem:
    field: str  # the request's field name, snake_case
    message: str


class InvalidInput(DomainError):
    """One or more fields are invalid (``problems`` lists each); nothing was written."""

    def __init__(self, problems: Sequence[FieldProblem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems), (problems[0].field,))
        self.problems = list(problems)


class InvalidBillingDetails(InvalidInput):
    code = ErrorCode.INVALID_BILLING_DETAILS


class InvalidQuoteRequest(InvalidInput):
    code = ErrorCode.INVALID_QUOTE_REQUEST


class InvalidVolume(DomainError):
    """A volume (credits, a quantity) is out of range or off its step."""

    code = ErrorCode.INVALID_VOLUME

    def __init__(
        self,
        message: str,
        field: Sequence[str],
        value: int,
        *,
        min: int | None,
        max: int | None,
        step: int | None,
    ) -> None:
        super().__init__(message, field)
        self.value, self.min, self.max, self.step = value, min, max, step


class TextTooLong(DomainError):
    code = ErrorCode.TEXT_TOO_LONG

    def __init__(
        self, field: Sequence[str], length: int, max_length: int, what: str = "sample texts"
    ) -> None:
        super().__init__(f"{what} are limited to {max_length} characters", field)
        self.length, self.max_length = length, max_length


class UnknownCountry(DomainError):
    """Not a country the operation knows; ``country`` is None when none was given."""

    code = ErrorCode.UNKNOWN_COUNTRY

    def __init__(self, country: str | None, message: str, field: Sequence[str] = ("country",)) -> None:
        super().__init__(message, field)
        self.country = country


class UnknownMessageType(DomainError):
    """Not a message type (one that exists but a destination lacks is MessageTypeNotOffered)."""

    code = ErrorCode.UNKNOWN_MESSAGE_TYPE

    def __init__(self, message_type: str, message: str) -> None:
        super().__init__(message, ("message_type",))
        self.message_type = message_type


class InvalidVatId(DomainError):
    code = ErrorCode.INVALID_VAT_ID

    def __init__(self, vat_id: str, message: str, field: Sequence[str]) -> None:
        super().__init__(message, field)
        self.vat_id = vat_id


# ------------------------------------------------------------ subscription


class UnknownPlan(DomainError):
    code = ErrorCode.UNKNOWN_PLAN

    def __init__(self, plan_code: str, field: Sequence[str] = ("plan_code",)) -> None:
        super().__init__(f"there is no plan {plan_code!r}", field)
        self.plan_code = plan_code


class RenewalPending(DomainError):
    """The current period has ended and its renewal has not run: nothing can be priced
    honestly before it does."""

    code = ErrorCode.RENEWAL_PENDING

    def __init__(
        self, period_end: datetime, message: str = "the current period has ended; its renewal runs first"
    ) -> None:
        super().__init__(message)
        self.period_end = period_end


class NothingToChange(DomainError):
    code = ErrorCode.NOTHING_TO_CHANGE

    def __init__(self) -> None:
        super().__init__("the workspace already has this plan and these limits")


class NoScheduledChange(DomainError):
    code = ErrorCode.NO_SCHEDULED_CHANGE

    def __init__(self) -> None:
        super().__init__("there is no scheduled change to cancel")


class BillingDetailsIncomplete(DomainError):
    code = ErrorCode.BILLING_DETAILS_INCOMPLETE

    def __init__(self, missing: Sequence[str]) -> None:
        """``missing``: the fields as clients know them (the API's names), also in the message."""
        super().__init__(
            "checkout needs complete billing details: missing " + ", ".join(missing), ("billing_details",)
        )
        self.missing = tuple(missing)


# ---------------------------------------------------------------- payments


class InsufficientBalance(DomainError):
    code = ErrorCode.INSUFFICIENT_BALANCE

    def __init__(self, balance: Money, required: Money) -> None:
        super().__init__(f"the balance of {balance} does not cover {required}", ("payment_method",))
        self.balance, self.required = balance, required

    @property
    def shortfall(self) -> Money:
        return self.required - self.balance


class PaymentDeclined(DomainError):
    """The payment method refused the payment; its failed payment record is kept."""

    code = ErrorCode.PAYMENT_DECLINED

    def __init__(self, payment_id: str, decline_code: str, message: str) -> None:
        super().__init__(message, ("payment_method",))
        self.payment_id, self.decline_code = payment_id, decline_code


class PaymentActionRequired(DomainError):
    """The customer must act on the payment (3-D Secure, a redirect), then confirm it before
    ``expires_at``."""

    code = ErrorCode.PAYMENT_ACTION_REQUIRED

    def __init__(self, payment_id: str, next_action: str, expires_at: datetime | None = None) -> None:
        super().__init__(
            "the payment asks the customer to act (for example to authenticate)", ("payment_method",)
        )
        self.payment_id, self.next_action, self.expires_at = payment_id, next_action, expires_at


class PaymentPending(DomainError):
    """The payment is recorded and waits for the money (a bank transfer: pay with these
    ``instructions`` before ``expires_at``) or for the method's answer; what it pays for
    applies once it succeeds."""

    code = ErrorCode.PAYMENT_PENDING

    def __init__(
        self,
        payment_id: str,
        reference: str | None,
        instructions: dict[str, str],
        expires_at: datetime | None,
    ) -> None:
        super().__init__(
            "the payment is pending: what it pays for applies once the money arrives"
            if instructions
            else "the payment is being processed: what it pays for applies once it succeeds",
            ("payment_method",),
        )
        self.payment_id, self.reference, self.instructions, self.expires_at = (
            payment_id,
            reference,
            instructions,
            expires_at,
        )


class PaymentRefused(DomainError):
    """A payment request refused before anything was attempted (an unknown card, no card
    given, a card that fails its checks, a bad amount, ...), or a 3-D Secure payment whose order
    no longer applied and was refunded (ORDER_SUPERSEDED); its code says which."""

    def __init__(self, code: ErrorCode, message: str, field: Sequence[str] = ()) -> None:
        super().__init__(message, field)
        self._code = code

    @property
    def error_code(self) -> ErrorCode:
        return self._code


class WorkspaceSuspended(DomainError):
    """The workspace is suspended for unpaid invoices: pay them (payInvoice) to use it again."""

    code = ErrorCode.WORKSPACE_SUSPENDED

    def __init__(self, amount_due: Money) -> None:
        super().__init__(
            f"the workspace is suspended until its open invoices ({amount_due}) are paid; use payInvoice"
        )
        self.amount_due = amount_due
