"""Taking a payment through a payment method, with its record, inside the caller's
transaction (which holds the workspace's lock)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from gateway.core.money import Money
from gateway.events.outbox import EventType, emit
from gateway.plugin_api.payments import (
    ChargeRequest,
    LedgerEntryKind,
    PaymentMethod,
    PaymentResult,
    PaymentStatus,
    StoredCard,
)
from gateway.storage.db import Card, Payment, Workspace
from gateway.storage.ledger import SqlLedger

MAX_PAYMENT_KEY = 64  # the balance method keeps the key as its ledger entry's reference (64 characters)


def payment_key(purpose: str, idempotency_key: str) -> str:
    """The key a payment method deduplicates on, at most :data:`MAX_PAYMENT_KEY` characters.

    Callers build keys from the workspace id and the client's idempotency key (up to
    255 characters), which can be far longer than the ledger's reference column or a
    processor's key limit. A long key is replaced by a digest of itself: still one per
    request, and the same on every retry, so the method's deduplication keeps working.
    """
    if len(idempotency_key) <= MAX_PAYMENT_KEY:
        return idempotency_key
    return f"{purpose[:16]}:{hashlib.sha256(idempotency_key.encode()).hexdigest()[:40]}"


def stored_card(card: Card) -> StoredCard:
    return StoredCard(card.token, card.brand, card.last4, card.exp_month, card.exp_year, card.fingerprint)


@dataclass(frozen=True)
class Taken:
    payment: Payment
    result: PaymentResult


def take_payment(
    session: Session,
    workspace: Workspace,
    method: PaymentMethod,
    amount: Money,
    *,
    purpose: str,
    description: str,
    idempotency_key: str,
    now: datetime,
    card: StoredCard | None = None,
    card_id: str | None = None,
) -> Taken:
    """Charge ``amount`` and record the payment, whatever its outcome.

    A FAILED payment also gets a ``payment.failed`` event. Nothing else changes:
    the caller applies what was paid for only when the payment SUCCEEDED.
    """
    ledger = SqlLedger(session, workspace, now)
    key = payment_key(purpose, idempotency_key)
    result = method.charge(ChargeRequest(workspace.id, amount, description, key, card), ledger)
    payment = Payment(
        id=secrets.token_hex(16),
        workspace_id=workspace.id,
        purpose=purpose,
        method=method.code,
        card_id=card_id,
        amount_minor=amount.minor_units,
        currency=amount.currency,
        status=result.status.value,
        failure_code=result.failure.value if result.failure else None,
        failure_message=(result.message or "")[:200] or None,
        reference=result.reference,
        pending=None,
        created_at=now,
        updated_at=now,
    )
    session.add(payment)
    if result.status is PaymentStatus.FAILED:
        emit_payment_failed(session, workspace, payment, payment.failure_code, now)
    return Taken(payment, result)


def emit_payment_failed(
    session: Session, workspace: Workspace, payment: Payment, failure_code: str | None, now: datetime
) -> None:
    """``payment.failed`` for a payment that did not go through (or whose refund failed)."""
    emit(
        session,
        workspace,
        EventType.PAYMENT_FAILED,
        {
            "payment_id": payment.id,
            "purpose": payment.purpose,
            "amount": str(Money.from_minor_units(payment.amount_minor, payment.currency).amount),
            "currency": payment.currency,
            "method": payment.method,
            "failure_code": failure_code,
            "message": payment.failure_message,
        },
        now,
    )


def credit_top_up(session: Session, workspace: Workspace, payment: Payment, now: datetime) -> None:
    """Add a paid top-up to the ledger, with its event."""
    amount = Money.from_minor_units(payment.amount_minor, payment.currency)
    SqlLedger(session, workspace, now).append(
        LedgerEntryKind.TOP_UP, amount, payment.id, f"Top-up by {payment.method}"
    )
    emit(
        session,
        workspace,
        EventType.BALANCE_TOPPED_UP,
        {
            "payment_id": payment.id,
            "amount": str(amount.amount),
            "currency": amount.currency,
            "balance": str(Money.from_minor_units(workspace.balance_minor, workspace.currency).amount),
        },
        now,
    )
