"""Payment methods: the contract payment plugins implement.

The core decides *what* to charge and *when*, and drives one state machine for every
method (see :class:`PaymentStatus`)::

    pending ──► requires_action ──► succeeded ──► refunded (or refund_failed, for an operator)
       │      ◄──┘       │
       ├──► succeeded    ├──► failed
       ├──► failed       └──► expired ──► succeeded (money that arrived late: refunded, not applied)
       └──► expired

A method says what it can do with :attr:`PaymentMethod.capabilities`; the core names no
kinds of method and never calls a member for a capability the method did not declare.

**The processor boundary.** The core commits the payment as ``pending`` *before* it calls
:meth:`PaymentMethod.charge`, calls the method outside any database transaction, and
applies the answer in a second transaction. A crash or an exception between the two
leaves a ``pending`` payment that the reconciliation run settles by asking
:meth:`PaymentMethod.status`. Every call carries the payment's idempotency key: a method
must never move money twice for one key.

Card numbers and CVCs exist only in :class:`CardDetails` on their way to
:meth:`CardMethod.tokenize`: its ``repr`` hides them, and nothing in the core stores or
logs one.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Protocol, runtime_checkable

from gateway.core.money import Money
from gateway.core.statuses import PaymentStatus

__all__ = [
    "HARD_DECLINES",
    "Capability",
    "CardDetails",
    "CardError",
    "CardErrorCode",
    "CardMethod",
    "ChargeRequest",
    "FailureCode",
    "InvalidNotification",
    "Ledger",
    "LedgerEntryKind",
    "NotifiedPaymentMethod",
    "PaymentMethod",
    "PaymentResult",
    "PaymentStatus",
    "StoredCard",
]


class Capability(enum.StrEnum):
    """What a payment method can do. The core relies on nothing a method did not declare."""

    PAY_NOW = "pay_now"
    """``charge`` may answer SUCCEEDED at once."""
    CUSTOMER_ACTION = "customer_action"
    """``charge`` may answer REQUIRES_ACTION with a ``next_action`` (3-D Secure, a redirect);
    the core then calls ``confirm`` once the customer acted, or ``cancel`` when the wait expires."""
    SETTLE_LATER = "settle_later"
    """``charge`` may answer PENDING with ``instructions`` (a bank transfer, pay by invoice);
    the payment settles through ``status``, a notification or an operator, or expires."""
    OFF_SESSION = "off_session"
    """Can be charged with the customer away (``ChargeRequest.off_session``): renewals."""
    REFUND = "refund"
    """``refund`` gives back (part of) a succeeded payment."""
    CARDS = "cards"
    """Takes card details: the method is a :class:`CardMethod` and charges saved cards."""
    PREPAID_BALANCE = "prepaid_balance"
    """Spends the workspace's prepaid balance (through the :class:`Ledger`): the core refuses a
    checkout the balance does not cover before anything is recorded, shows the balance after the
    purchase, and never lets the method pay a top-up of that same balance."""


class FailureCode(enum.StrEnum):
    """Why a payment failed. Methods may use any of these; the core adds EXPIRED."""

    CARD_DECLINED = "card_declined"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    EXPIRED_CARD = "expired_card"
    INCORRECT_CVC = "incorrect_cvc"
    PROCESSING_ERROR = "processing_error"
    AUTHENTICATION_FAILED = "authentication_failed"
    AUTHENTICATION_REQUIRED = "authentication_required"  # an off-session charge asked for an action
    INSUFFICIENT_BALANCE = "insufficient_balance"
    EXPIRED = "expired"  # nobody acted (or paid) in time
    CANCELED = "canceled"
    LOST_CARD = "lost_card"
    STOLEN_CARD = "stolen_card"
    ACCOUNT_CLOSED = "account_closed"


# Declines that asking again cannot fix: dunning does not retry them on the same method.
HARD_DECLINES = frozenset(
    {
        FailureCode.EXPIRED_CARD,
        FailureCode.LOST_CARD,
        FailureCode.STOLEN_CARD,
        FailureCode.ACCOUNT_CLOSED,
        FailureCode.AUTHENTICATION_REQUIRED,
    }
)


class LedgerEntryKind(enum.StrEnum):
    TOP_UP = "top_up"
    CHARGE = "charge"
    REFUND = "refund"
    ADJUSTMENT = "adjustment"


@dataclass(frozen=True, slots=True)
class CardDetails:
    """A card as typed by the customer. Never stored, never logged: see ``__repr__``."""

    number: str = field(repr=False)
    exp_month: int
    exp_year: int
    cvc: str = field(repr=False)
    holder_name: str | None = None

    def __repr__(self) -> str:
        return (
            f"CardDetails(number='…{self.number[-4:]}', exp={self.exp_month:02d}/{self.exp_year}, cvc='***')"
        )

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class StoredCard:
    """What may be kept of a card: the processor's token and what a person recognises it by."""

    token: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    fingerprint: str  # the same card gives the same fingerprint (duplicate detection)


class CardErrorCode(enum.Enum):
    INVALID_NUMBER = "invalid_number"  # not digits, wrong length or failed the Luhn check
    INVALID_EXPIRY = "invalid_expiry"  # month not 1-12, or year implausible
    EXPIRED_CARD = "expired_card"
    INVALID_CVC = "invalid_cvc"


class CardError(ValueError):
    """A card rejected before any charge: carries a code and the offending field, named as the
    :class:`CardDetails` attribute (``number``, ``exp_month``, ``exp_year``, ``cvc``)."""

    def __init__(self, code: CardErrorCode, field: str, message: str) -> None:
        super().__init__(message)
        self.code, self.field, self.message = code, field, message


@dataclass(frozen=True, slots=True)
class ChargeRequest:
    """One payment, as every call about it sees it (``charge``, ``status``, ``confirm``...)."""

    payment_id: str  # the gateway's id; safe to show the customer (e.g. in a transfer reference)
    workspace_id: str
    amount: Money  # positive, rounded to the currency's minor unit
    description: str
    idempotency_key: str  # one per payment, at most 64 characters; never move money twice for one key
    requested_at: datetime  # the gateway's clock when the payment was created (UTC)
    off_session: bool = False  # the customer is away (a renewal): no action can be asked for
    card: StoredCard | None = None  # the saved card to charge, for CARDS methods


@dataclass(frozen=True, slots=True)
class PaymentResult:
    """A method's answer. Only SUCCEEDED, FAILED, REQUIRES_ACTION and PENDING are answers a
    method gives; the core sets EXPIRED and REFUNDED (a refund answers SUCCEEDED or FAILED)."""

    status: PaymentStatus
    # The processor's id for the payment (or the refund). Required with REQUIRES_ACTION and
    # PENDING: the gateway confirms, polls, cancels and matches notifications by it.
    reference: str | None = None
    failure: FailureCode | None = None  # FAILED: why
    message: str | None = None  # human-readable, safe to show to the customer; never card data
    next_action: str | None = None  # REQUIRES_ACTION: what the customer must do (a 3-D Secure URL)
    instructions: Mapping[str, str] | None = None  # PENDING: how to pay (IBAN, reference, amount...)
    expires_at: datetime | None = None  # REQUIRES_ACTION or PENDING: when the method gives the payment up
    # The amount the processor reports as paid, when it reports one (a bank's notice of funds):
    # the gateway settles a payment only on its own amount and leaves any other for an operator.
    amount: Money | None = None


class Ledger(Protocol):
    """The workspace's prepaid balance, for methods with ``PREPAID_BALANCE``.

    Each call is a short transaction of its own that holds the workspace's lock: a balance
    read and the entry that follows cannot interleave with another payment. Entries are
    idempotent by ``key``: the same key twice gives the first entry and moves nothing more.
    """

    currency: str

    def balance(self) -> Money:
        """The balance now: the sum of every entry so far."""
        ...

    def debit(self, amount: Money, key: str, description: str) -> str | None:
        """Take ``amount`` if the balance covers it and return the entry's id; None (nothing
        taken) if it does not. A key seen before returns that entry's id."""
        ...

    def credit(self, amount: Money, key: str, description: str) -> str:
        """Give ``amount`` back (a refund) and return the entry's id."""
        ...

    def entry(self, key: str) -> str | None:
        """The id of the debit made with ``key``, if any (what ``status`` asks)."""
        ...


@runtime_checkable
class PaymentMethod(Protocol):
    """A way to pay. One instance serves every request of a process: keep no per-payment state
    in memory (several gateway processes may share nothing but the database).

    Every member may raise when the outcome is unknown (a timeout, a 5xx): the payment then
    stays ``pending`` and the reconciliation run asks :meth:`status` later. Return FAILED
    only when no money moved.
    """

    code: str  # stable identifier used in the API and stored on payments, e.g. "balance"
    label: str  # what the Checkout page shows, e.g. "My balance"
    capabilities: frozenset[Capability]

    def charge(self, request: ChargeRequest, ledger: Ledger) -> PaymentResult:
        """Take ``request.amount``. Answer SUCCEEDED, FAILED, REQUIRES_ACTION (only with
        CUSTOMER_ACTION, never when ``off_session``) or PENDING (only with SETTLE_LATER)."""
        ...

    def status(self, request: ChargeRequest, reference: str | None, ledger: Ledger) -> PaymentResult:
        """Where the payment made with ``request.idempotency_key`` stands now (``reference`` is
        the one the method gave, if it answered before). A payment the method never saw is
        FAILED: nothing moved. Used by reconciliation after a crash and to poll PENDING ones."""
        ...

    def confirm(self, request: ChargeRequest, reference: str, response: str | None) -> PaymentResult:
        """Finish a payment that answered REQUIRES_ACTION, after the customer acted
        (CUSTOMER_ACTION only). Confirming again answers the same and never charges twice."""
        ...

    def cancel(self, request: ChargeRequest, reference: str | None, ledger: Ledger) -> PaymentResult:
        """Give up a payment that waited too long (REQUIRES_ACTION or PENDING): answer FAILED
        once nothing can be taken any more, or SUCCEEDED if the money arrived first."""
        ...

    def refund(
        self, request: ChargeRequest, reference: str, amount: Money, key: str, ledger: Ledger
    ) -> PaymentResult:
        """Give back ``amount`` (positive, rounded, at most what was paid) of a succeeded
        payment (REFUND only). Idempotent per ``key``; SUCCEEDED carries the refund's reference."""
        ...


@runtime_checkable
class CardMethod(PaymentMethod, Protocol):
    """A method with the CARDS capability also turns typed card details into a storable token."""

    def tokenize(self, card: CardDetails, today: date) -> StoredCard:
        """Validate (Luhn, expiry, CVC) and tokenize; raise :class:`CardError` for a bad card."""
        ...


@runtime_checkable
class NotifiedPaymentMethod(PaymentMethod, Protocol):
    """A method whose processor tells the gateway when a payment settles (a bank's notice of
    incoming funds, a processor's webhook), posted to ``/payments/<code>/notifications``."""

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> tuple[str, PaymentResult]:
        """Verify the notification's signature and return the payment's ``reference`` and its
        new result; raise :class:`InvalidNotification` for anything not verifiably from the
        processor (the gateway answers 400 and changes nothing)."""
        ...


class InvalidNotification(ValueError):
    """A payment notification that is malformed or not signed by the processor."""
