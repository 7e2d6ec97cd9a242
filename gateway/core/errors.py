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

    def __init__(self, period_end: datetime) -> None:
        super().__init__("the current period has ended; its renewal runs first")
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
