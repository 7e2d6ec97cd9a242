"""The event types the gateway emits, and how payloads spell a plan configuration."""

from __future__ import annotations

import enum
from typing import Any


class EventType(enum.Enum):
    PLAN_CHANGE_SCHEDULED = "plan_change.scheduled"
    PLAN_CHANGE_APPLIED = "plan_change.applied"
    PLAN_CHANGE_CANCELLED = "plan_change.cancelled"
    CHECKOUT_COMPLETED = "checkout.completed"
    PAYMENT_FAILED = "payment.failed"
    PAYMENT_PENDING = "payment.pending"
    PAYMENT_EXPIRED = "payment.expired"
    PAYMENT_REFUNDED = "payment.refunded"
    REFUND_FAILED = "refund.failed"
    INVOICE_PAYMENT_FAILED = "invoice.payment_failed"
    INVOICE_PAID = "invoice.paid"
    WORKSPACE_SUSPENDED = "workspace.suspended"
    WORKSPACE_REACTIVATED = "workspace.reactivated"
    BALANCE_TOPPED_UP = "balance.topped_up"
    CREDITS_RESET = "credits.reset"
    RENEWAL_COMPLETED = "renewal.completed"
    RENEWAL_FAILED = "renewal.failed"
    CUSTOM_QUOTE_REQUESTED = "custom_quote.requested"
    CARD_ADDED = "card.added"
    PAYMENT_METHOD_DEFAULT_CHANGED = "payment_method.default_changed"
    TAX_VAT_ID_REJECTED = "tax.vat_id_rejected"
    PRICE_CHANGE_SCHEDULED = "price_change.scheduled"
    PRICE_CHANGE_APPLIED = "price_change.applied"


PAYLOAD_VERSION = (
    1  # bump per type when a payload changes incompatibly; documented in gateway/events/catalog.py
)


def config_payload(plan_code: str, email: int, messaging: int) -> dict[str, Any]:
    """A plan configuration as event payloads spell it."""
    return {"plan": plan_code, "email_credits": email, "messaging_credits": messaging}
