"""Every status the gateway stores, in one place.

They are ``StrEnum``s: the database keeps their values as plain strings, and a
string read back compares equal to its member (``row.status == PaymentStatus.PAID``).
"""

from __future__ import annotations

import enum


class WorkspaceStatus(enum.StrEnum):
    ACTIVE = "active"
    PAST_DUE = "past_due"  # the last renewal payment failed; an open invoice is waiting
    SUSPENDED = "suspended"  # past due beyond the grace: usage and orders refused until it pays


class PaymentStatus(enum.StrEnum):
    """Where a payment stands: one state machine for every payment method.

    A method's ``charge`` answers PENDING, REQUIRES_ACTION, SUCCEEDED or FAILED; the
    gateway records every payment as PENDING before it asks the method, sets EXPIRED
    when a wait ran out, and REFUNDED (or REFUND_FAILED) when it gives the money back.
    """

    PENDING = "pending"  # recorded; the method has not answered yet, or the money is on its way
    REQUIRES_ACTION = "requires_action"  # e.g. 3-D Secure: confirm after the customer authenticates
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # no money moved
    EXPIRED = "expired"  # nobody acted or paid in time; cancelled at the method, nothing moved
    REFUNDED = "refunded"  # paid, then given back (its order no longer applied)
    REFUND_FAILED = "refund_failed"  # as REFUNDED, but the refund failed: an operator must act

    @property
    def is_open(self) -> bool:
        """Still waiting for an outcome."""
        return self in (PaymentStatus.PENDING, PaymentStatus.REQUIRES_ACTION)


# Which status may follow which: the gateway refuses any other transition.
PAYMENT_TRANSITIONS: dict[PaymentStatus, frozenset[PaymentStatus]] = {
    PaymentStatus.PENDING: frozenset(
        {PaymentStatus.REQUIRES_ACTION, PaymentStatus.SUCCEEDED, PaymentStatus.FAILED, PaymentStatus.EXPIRED}
    ),
    PaymentStatus.REQUIRES_ACTION: frozenset(
        {PaymentStatus.PENDING, PaymentStatus.SUCCEEDED, PaymentStatus.FAILED, PaymentStatus.EXPIRED}
    ),
    PaymentStatus.SUCCEEDED: frozenset({PaymentStatus.REFUNDED, PaymentStatus.REFUND_FAILED}),
    PaymentStatus.REFUND_FAILED: frozenset({PaymentStatus.REFUNDED}),
    PaymentStatus.FAILED: frozenset(),
    # Money that arrived after the payment expired (a late bank transfer): recorded, and refunded
    # rather than applied.
    PaymentStatus.EXPIRED: frozenset({PaymentStatus.SUCCEEDED}),
    PaymentStatus.REFUNDED: frozenset(),
}


class InvoiceStatus(enum.StrEnum):
    PAID = "paid"
    OPEN = "open"  # not paid yet: a failed renewal


class InvoiceKind(enum.StrEnum):
    CHECKOUT = "checkout"
    RENEWAL = "renewal"
    CREDIT_NOTE = "credit_note"  # a refund: negative amounts, its own number series


class RefundStatus(enum.StrEnum):
    PENDING = "pending"  # recorded; the payment method has not confirmed it yet
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class RefundDestination(enum.StrEnum):
    METHOD = "method"  # back through the payment method (to the card)
    BALANCE = "balance"  # onto the workspace's prepaid balance, as a ledger entry


class PaymentPurpose(enum.StrEnum):
    CHECKOUT = "checkout"
    TOP_UP = "top_up"
    RENEWAL = "renewal"
    INVOICE = "invoice"  # an open invoice paid later: by the customer (payInvoice) or a dunning retry


class RenewalRecordStatus(enum.StrEnum):
    """A period's renewal record: written first (RENEWING), then what came of it."""

    RENEWING = "renewing"
    FREE = "free"  # a free plan: rolled and reset, nothing charged
    RENEWED = "renewed"
    PAYMENT_FAILED = "payment_failed"


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"  # gave up, or the endpoint answered 410 Gone


class IdempotencyKeyStatus(enum.StrEnum):
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
