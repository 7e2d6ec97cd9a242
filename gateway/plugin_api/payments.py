"""Payment methods: the values and protocols that payment plugins implement.

The core decides *what* to charge and *when*; a payment method only moves the
money. Methods are registered through the ``register_payment_methods`` hook.
Card numbers and CVCs exist only in :class:`CardDetails` on their way to the
processor: its ``repr`` hides them, and nothing in the core stores or logs one.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol, runtime_checkable

from gateway.core.money import Money
from gateway.core.statuses import PaymentStatus

__all__ = ["PaymentStatus"]  # re-exported: a method's results use the one status enum


class PaymentKind(enum.Enum):
    BALANCE = "balance"  # the workspace's prepaid balance
    CARD = "card"  # a card, through a processor


class FailureCode(enum.Enum):
    CARD_DECLINED = "card_declined"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    EXPIRED_CARD = "expired_card"
    INCORRECT_CVC = "incorrect_cvc"
    PROCESSING_ERROR = "processing_error"
    AUTHENTICATION_FAILED = "authentication_failed"
    INSUFFICIENT_BALANCE = "insufficient_balance"


class LedgerEntryKind(enum.Enum):
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
    workspace_id: str
    amount: Money  # rounded, positive
    description: str
    idempotency_key: str  # unique per payment attempt; processors deduplicate on it
    card: StoredCard | None = None  # for card methods


@dataclass(frozen=True, slots=True)
class PaymentResult:
    status: PaymentStatus
    reference: str | None = None  # the processor's charge id, or the ledger entry id
    failure: FailureCode | None = None
    message: str | None = None  # human-readable, safe to show to the customer
    next_action: str | None = None  # for REQUIRES_ACTION: what the customer must do (e.g. a 3DS URL)


class Ledger(Protocol):
    """The workspace's balance ledger, inside the transaction of the payment.

    The core holds the workspace's lock while a method uses it, so a balance read
    and the entry that follows cannot interleave with another payment.
    """

    currency: str

    def balance(self) -> Money:
        """The balance: the sum of every entry so far."""
        ...

    def append(self, kind: LedgerEntryKind, amount: Money, reference: str | None, description: str) -> str:
        """Add an entry (negative for charges) and return its id."""
        ...


@runtime_checkable
class PaymentMethod(Protocol):
    """A way to pay offered at checkout."""

    code: str  # stable identifier used in the API, e.g. "balance"
    label: str  # what the Checkout page shows, e.g. "My balance"
    kind: PaymentKind

    def charge(self, request: ChargeRequest, ledger: Ledger) -> PaymentResult:
        """Take ``request.amount``; FAILED results must not have moved any money."""
        ...

    def confirm(self, reference: str, challenge_response: str | None) -> PaymentResult:
        """Finish a payment that answered REQUIRES_ACTION."""
        ...

    def refund(self, reference: str, amount: Money, ledger: Ledger) -> PaymentResult:
        """Give back (part of) a succeeded payment."""
        ...


@runtime_checkable
class CardPaymentMethod(PaymentMethod, Protocol):
    """A card method can also turn typed card details into a storable token."""

    def tokenize(self, card: CardDetails, today: date) -> StoredCard:
        """Validate (Luhn, expiry, CVC) and tokenize; raise :class:`CardError` for a bad card."""
        ...
