"""Every status the gateway stores, in one place.

They are ``StrEnum``s: the database keeps their values as plain strings, and a
string read back compares equal to its member (``row.status == PaymentStatus.PAID``).
"""

from __future__ import annotations

import enum


class WorkspaceStatus(enum.StrEnum):
    ACTIVE = "active"
    PAST_DUE = "past_due"  # the last renewal payment failed; an open invoice is waiting


class PaymentStatus(enum.StrEnum):
    """Where a payment stands. A payment method's ``charge`` and ``confirm`` answer with one of
    SUCCEEDED, FAILED or REQUIRES_ACTION; the others are set by the gateway."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REQUIRES_ACTION = "requires_action"  # e.g. 3-D Secure: confirm after the customer authenticates
    CANCELED = "canceled"  # given up: an off-session renewal that asked for 3-D Secure
    REFUNDED = "refunded"  # paid, then given back (its order no longer applied)
    REFUND_FAILED = "refund_failed"  # as REFUNDED, but the refund failed: an operator must act


class InvoiceStatus(enum.StrEnum):
    PAID = "paid"
    OPEN = "open"  # not paid yet: a failed renewal


class InvoiceKind(enum.StrEnum):
    CHECKOUT = "checkout"
    RENEWAL = "renewal"


class PaymentPurpose(enum.StrEnum):
    CHECKOUT = "checkout"
    TOP_UP = "top_up"
    RENEWAL = "renewal"


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
