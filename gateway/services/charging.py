"""What a succeeded top-up does, and a saved card as payment methods see it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from gateway.core.money import Money
from gateway.events.outbox import EventType, emit
from gateway.plugin_api.payments import LedgerEntryKind, StoredCard
from gateway.storage.db import Card, Payment, Workspace
from gateway.storage.ledger import SqlLedger


def stored_card(card: Card) -> StoredCard:
    return StoredCard(card.token, card.brand, card.last4, card.exp_month, card.exp_year, card.fingerprint)


def credit_top_up(session: Session, workspace: Workspace, payment: Payment, now: datetime) -> None:
    """Add a paid top-up to the ledger (in the caller's transaction, which holds the
    workspace's lock), with its event."""
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
