"""Checkout: re-price the confirmed quote, take the payment, apply or schedule the
change, record the invoice and the events — all in one transaction.

A request claims its idempotency key first (see :mod:`gateway.storage.idempotency`);
outcomes that moved or tried to move money are stored on the key and replayed,
while validation failures release it. The transaction holds the workspace's lock
(``FOR UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), so concurrent
checkouts of one workspace run one after the other and can never spend the same
balance twice.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.core import pricing
from gateway.core.money import Money
from gateway.core.tax import InvalidTaxId
from gateway.events.outbox import EventType, config_payload, emit
from gateway.plugin_api.payments import (
    CardDetails,
    CardError,
    CardPaymentMethod,
    FailureCode,
    PaymentKind,
    PaymentMethod,
    PaymentStatus,
    StoredCard,
)
from gateway.services import billing_details
from gateway.services.charging import stored_card, take_payment
from gateway.services.invoices import create_invoice
from gateway.services.workspaces import subscription_of
from gateway.storage import idempotency
from gateway.storage.db import BillingDetails, Card, Payment, ScheduledChange, Workspace
from gateway.storage.ledger import SqlLedger
from gateway.storage.locks import lock_workspace

QUOTE_TTL = timedelta(minutes=30)

# ------------------------------------------------------------------ requests


@dataclass(frozen=True)
class PaymentChoice:
    method: str  # a payment method code: "balance", "card", ...
    card_id: str | None = None  # a saved card
    new_card: CardDetails | None = None
    save_card: bool = False

    def fingerprint(self, token: StoredCard | None = None) -> dict[str, Any]:
        """What identifies the choice for idempotency; never the card number or CVC.

        A new card is identified by ``token``'s fingerprint (the processor's, the same for the
        same number), so that another card with the same last four digits and expiry is
        another input; without a token (not a card method), by what the customer typed but
        the number and CVC.
        """
        card = self.new_card
        new_card = (
            None
            if card is None
            else card_fingerprint(token)
            if token is not None
            else [card.number[-4:], card.exp_month, card.exp_year]
        )
        return {
            "method": self.method,
            "card_id": self.card_id,
            "save_card": self.save_card,
            "new_card": new_card,
        }


def card_fingerprint(token: StoredCard) -> list[Any]:
    """A tokenized card as idempotency fingerprints see it."""
    return [token.fingerprint, token.exp_month, token.exp_year]


def tokenize(
    method: PaymentMethod | None,
    choice: PaymentChoice,
    today: Any,
    path: tuple[str, ...] = ("paymentMethod", "newCard"),
) -> StoredCard | Rejected | None:
    """The new card of ``choice`` tokenized by ``method`` if it is a card method, before the
    request claims its idempotency key; None when there is no new card to tokenize."""
    if (
        choice.card_id is not None
        or choice.new_card is None
        or method is None
        or method.kind is not PaymentKind.CARD
    ):
        return None
    assert isinstance(method, CardPaymentMethod)
    try:
        return method.tokenize(choice.new_card, today)
    except CardError as error:
        return Rejected(f"CARD_{error.code.name}", error.message, (*path, error.field), error=error)


@dataclass(frozen=True)
class CheckoutRequest:
    plan_code: str
    email_credits: int | None
    messaging_credits: int | None
    expected_total: Decimal  # the due-now total the customer saw
    quote_expires_at: datetime  # from the quote the customer confirmed
    payment: PaymentChoice
    idempotency_key: str

    def fingerprint(self, token: StoredCard | None = None) -> dict[str, Any]:
        return {
            "plan": self.plan_code,
            "email": self.email_credits,
            "messaging": self.messaging_credits,
            "total": str(self.expected_total),
            "expires": self.quote_expires_at.isoformat(),
            "payment": self.payment.fingerprint(token),
        }


# ------------------------------------------------------------------ outcomes


@dataclass(frozen=True)
class Completed:
    kind: pricing.ChangeKind
    invoice_id: str | None
    payment_id: str | None


@dataclass(frozen=True)
class PaymentFailed:
    payment_id: str
    failure: FailureCode
    message: str


@dataclass(frozen=True)
class ActionRequired:
    payment_id: str
    next_action: str


@dataclass(frozen=True)
class QuoteMismatch:
    expired: bool  # True: the quote expired; False: the total changed
    order: pricing.PricedOrder


@dataclass(frozen=True)
class InsufficientBalance:
    balance: Money
    required: Money

    @property
    def shortfall(self) -> Money:
        return self.required - self.balance


@dataclass(frozen=True)
class Rejected:
    """A request refused before anything was attempted: nothing was written."""

    code: str  # BILLING_DETAILS_INCOMPLETE, NOTHING_TO_CHANGE, UNKNOWN_CARD, ...
    message: str
    field: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    error: Exception | None = None


Outcome = Completed | PaymentFailed | ActionRequired | QuoteMismatch | InsufficientBalance | Rejected
STORED = (Completed, PaymentFailed, ActionRequired)  # outcomes kept on the idempotency key


def _to_response(outcome: Outcome) -> dict[str, Any]:
    if isinstance(outcome, Completed):
        return {
            "type": "completed",
            "kind": outcome.kind.value,
            "invoice_id": outcome.invoice_id,
            "payment_id": outcome.payment_id,
        }
    if isinstance(outcome, PaymentFailed):
        return {
            "type": "payment_failed",
            "payment_id": outcome.payment_id,
            "failure": outcome.failure.value,
            "message": outcome.message,
        }
    assert isinstance(outcome, ActionRequired)
    return {"type": "action_required", "payment_id": outcome.payment_id, "next_action": outcome.next_action}


def _from_response(response: dict[str, Any]) -> Outcome:
    if response["type"] == "completed":
        return Completed(pricing.ChangeKind(response["kind"]), response["invoice_id"], response["payment_id"])
    if response["type"] == "payment_failed":
        return PaymentFailed(response["payment_id"], FailureCode(response["failure"]), response["message"])
    return ActionRequired(response["payment_id"], response["next_action"])


# ------------------------------------------------------------------ checkout


def checkout(gateway: Any, workspace_id: str, request: CheckoutRequest) -> Outcome:
    now = gateway.clock()
    # A new card is tokenized first (outside any lock): its fingerprint tells one card from another.
    token = tokenize(
        gateway.registry.payment_methods.get(request.payment.method), request.payment, now.date()
    )
    if isinstance(token, Rejected):
        return token
    return idempotency.run_once(
        gateway.write_sessions,
        workspace_id,
        request.idempotency_key,
        "checkout",
        request.fingerprint(token),
        now,
        lambda: _checkout(gateway, workspace_id, request, now, token),
        _to_response,
        _from_response,
        STORED,
    )


def _checkout(
    gateway: Any, workspace_id: str, request: CheckoutRequest, now: datetime, token: StoredCard | None
) -> Outcome:
    with gateway.write_sessions.begin() as session:
        workspace = lock_workspace(session, workspace_id)
        assert workspace is not None, "authenticated workspaces exist"
        outcome = _priced_checkout(gateway, session, workspace, request, now, token)
        if isinstance(outcome, STORED):
            idempotency.complete(session, workspace_id, request.idempotency_key, _to_response(outcome))
        else:  # refusals happen before anything is written
            assert not (session.new or session.dirty or session.deleted), "a refusal wrote something"
        return outcome


def _priced_checkout(
    gateway: Any,
    session: Session,
    workspace: Workspace,
    request: CheckoutRequest,
    now: datetime,
    token: StoredCard | None,
) -> Outcome:
    catalog = gateway.catalog
    plan = catalog.plan(request.plan_code)
    if plan is None:
        return Rejected("UNKNOWN_PLAN", f"there is no plan {request.plan_code!r}", ("planCode",))
    details = session.get(BillingDetails, workspace.id)
    missing = billing_details.missing_fields(details)
    if missing:
        return Rejected(
            "BILLING_DETAILS_INCOMPLETE",
            "checkout needs complete billing details: missing " + ", ".join(missing),
            ("billingDetails",),
            tuple(missing),
        )
    subscription = subscription_of(workspace, catalog, now)
    if now >= subscription.period_end:
        return Rejected("RENEWAL_PENDING", "the current period has ended; its renewal runs first")
    try:
        target = pricing.configure(
            plan, catalog, subscription.configuration, request.email_credits, request.messaging_credits
        )
        order = pricing.price_order(
            subscription,
            target,
            now,
            customer=billing_details.tax_customer(details),
            tax=gateway.tax,
            seller_country=gateway.settings.seller_country,
        )
    except pricing.PricingError as error:
        return Rejected(error.code, str(error), error.field, error=error)
    except InvalidTaxId as error:
        return Rejected("INVALID_VAT_ID", str(error), ("billingDetails", "vatId"), error=error)
    if order.kind is pricing.ChangeKind.NONE:
        return Rejected("NOTHING_TO_CHANGE", "the workspace already has this plan and these limits")
    expires = request.quote_expires_at
    if expires.tzinfo is None:  # an ISO time without an offset: the quote's times are UTC
        expires = expires.replace(tzinfo=UTC)
    if not (now <= expires <= now + QUOTE_TTL):
        return QuoteMismatch(True, order)
    amount = order.due_now.total
    if not request.expected_total.is_finite() or amount.amount != request.expected_total:
        return QuoteMismatch(False, order)

    payment: Payment | None = None
    card_row: Card | None = None
    if amount:
        method = gateway.registry.payment_methods.get(request.payment.method)
        if method is None:
            return Rejected(
                "UNKNOWN_PAYMENT_METHOD",
                f"no payment method {request.payment.method!r}",
                ("paymentMethod", "method"),
            )
        card = _card(session, workspace, method, request.payment, token)
        if isinstance(card, Rejected):
            return card
        card_value, card_row = card
        if method.kind is PaymentKind.BALANCE:
            balance = SqlLedger(session, workspace, now).balance()
            if balance < amount:
                return InsufficientBalance(balance, amount)
        taken = take_payment(
            session,
            workspace,
            method,
            amount,
            purpose="checkout",
            description=f"{pricing.describe(target)}: {order.kind.value}",
            idempotency_key=f"checkout:{workspace.id}:{request.idempotency_key}",
            now=now,
            card=card_value,
            card_id=card_row.id if card_row is not None else None,
        )
        payment = taken.payment
        if taken.result.status is PaymentStatus.FAILED:  # a declined new card is not saved
            return PaymentFailed(
                payment.id,
                taken.result.failure or FailureCode.PROCESSING_ERROR,
                taken.result.message or "the payment failed",
            )
        to_save = card_value if card_row is None and request.payment.save_card else None
        if taken.result.status is PaymentStatus.REQUIRES_ACTION:  # the card is saved once authenticated
            payment.pending = {
                "order": _order_snapshot(order),
                "base": base_snapshot(workspace),
                "save_card": card_snapshot(to_save),
            }
            return ActionRequired(payment.id, taken.result.next_action or "")
        if to_save is not None:
            card_row = save_card(session, workspace, to_save, now)
            payment.card_id = card_row.id
    invoice_id = apply_order(
        session,
        workspace,
        order,
        payment,
        card_row,
        details,
        now,
        target_description=pricing.describe(target),
    )
    return Completed(order.kind, invoice_id, payment.id if payment else None)


def _card(
    session: Session,
    workspace: Workspace,
    method: PaymentMethod,
    choice: PaymentChoice,
    token: StoredCard | None,
) -> tuple[StoredCard | None, Card | None] | Rejected:
    """The card to charge (and its saved row, if any) for a card method; ``token`` is the
    new card, tokenized already (see :func:`tokenize`)."""
    if method.kind is not PaymentKind.CARD:
        return None, None
    if choice.card_id is not None:
        row = session.get(Card, choice.card_id)
        if row is None or row.workspace_id != workspace.id or row.removed_at is not None:
            return Rejected("UNKNOWN_CARD", f"no saved card {choice.card_id!r}", ("paymentMethod", "cardId"))
        return stored_card(row), row
    if choice.new_card is None:
        return Rejected("CARD_REQUIRED", "choose a saved card or enter a new one", ("paymentMethod",))
    assert token is not None, "a new card for a card method is tokenized before checkout starts"
    return token, None  # saved only once the payment went through


def save_card(session: Session, workspace: Workspace, card: StoredCard, now: datetime) -> Card:
    """Save ``card`` for the workspace (whose row the caller has locked), with a ``card.added``
    event; the same card (fingerprint and expiry) already saved is returned as it is."""
    same = session.scalar(
        select(Card)
        .where(
            Card.workspace_id == workspace.id,
            Card.fingerprint == card.fingerprint,
            Card.exp_month == card.exp_month,
            Card.exp_year == card.exp_year,
            Card.removed_at.is_(None),
        )
        .order_by(Card.created_at, Card.id)
        .limit(1)
    )
    if same is not None:
        return same
    row = Card(
        id=secrets.token_hex(16),
        workspace_id=workspace.id,
        token=card.token,
        brand=card.brand,
        last4=card.last4,
        exp_month=card.exp_month,
        exp_year=card.exp_year,
        fingerprint=card.fingerprint,
        created_at=now,
        removed_at=None,
    )
    session.add(row)
    emit(
        session,
        workspace,
        EventType.CARD_ADDED,
        {"card_id": row.id, "brand": row.brand, "last4": row.last4},
        now,
    )
    return row


def card_snapshot(card: StoredCard | None) -> dict[str, Any] | None:
    """A card to save once its payment is authenticated (3-D Secure): the token and what
    identifies the card to a person, never its number or CVC."""
    if card is None:
        return None
    return {
        "token": card.token,
        "brand": card.brand,
        "last4": card.last4,
        "exp_month": card.exp_month,
        "exp_year": card.exp_year,
        "fingerprint": card.fingerprint,
    }


def save_pending_card(session: Session, workspace: Workspace, payment: Payment, now: datetime) -> Card | None:
    """Save the card a payment that needed authentication was asked to save, now that it succeeded."""
    snapshot = (payment.pending or {}).get("save_card")
    if snapshot is None:
        return None
    row = save_card(session, workspace, StoredCard(**snapshot), now)
    payment.card_id = row.id
    return row


def base_snapshot(workspace: Workspace) -> dict[str, Any]:
    return {
        **config_payload(workspace.plan_code, workspace.email_credits, workspace.messaging_credits),
        "period_start": workspace.period_start.isoformat(),
    }


def _order_snapshot(order: pricing.PricedOrder) -> dict[str, Any]:
    """Enough of a priced order to apply it later exactly as it was paid (3-D Secure)."""
    return {
        "kind": order.kind.value,
        "changes": [
            {
                "timing": c.timing.value,
                "effective_at": c.effective_at.isoformat(),
                **config_payload(
                    c.configuration.plan.code,
                    c.configuration.email_credits,
                    c.configuration.messaging_credits,
                ),
            }
            for c in order.changes
        ],
        "period_start": order.period_start.isoformat(),
        "period_end": order.period_end.isoformat(),
        "target": config_payload(
            order.target.plan.code, order.target.email_credits, order.target.messaging_credits
        ),
    }


def apply_order(
    session: Session,
    workspace: Workspace,
    order: pricing.PricedOrder,
    payment: Payment | None,
    card_row: Card | None,
    details: BillingDetails | None,
    now: datetime,
    *,
    target_description: str,
) -> str | None:
    """Apply what was paid for: the immediate part now, the rest scheduled; invoice and events."""
    credits_reset = False
    for change in order.changes:
        config = change.configuration
        if change.timing is pricing.Timing.IMMEDIATE:
            before = config_payload(workspace.plan_code, workspace.email_credits, workspace.messaging_credits)
            workspace.plan_code = config.plan.code
            workspace.email_credits, workspace.messaging_credits = (
                config.email_credits,
                config.messaging_credits,
            )
            if order.kind is pricing.ChangeKind.NEW_PERIOD:
                workspace.period_anchor = workspace.period_start = order.period_start
                workspace.period_end = order.period_end
                credits_reset = True
            emit(
                session,
                workspace,
                EventType.PLAN_CHANGE_APPLIED,
                {
                    "from": before,
                    "to": config_payload(config.plan.code, config.email_credits, config.messaging_credits),
                    "effective_at": change.effective_at.isoformat(),
                    "reason": "checkout",
                },
                now,
            )
    if credits_reset:  # a new paid period starts with fresh allowances, as at renewal
        emit(
            session,
            workspace,
            EventType.CREDITS_RESET,
            {
                "period_start": workspace.period_start.isoformat(),
                "period_end": workspace.period_end.isoformat(),
                "plan": workspace.plan_code,
                "email_credits": workspace.email_credits,
                "messaging_credits": workspace.messaging_credits,
            },
            now,
        )
    scheduled = next((c for c in order.changes if c.timing is pricing.Timing.AT_RENEWAL), None)
    existing = session.get(ScheduledChange, workspace.id)
    if existing is not None:
        session.delete(existing)
        emit(
            session,
            workspace,
            EventType.PLAN_CHANGE_CANCELLED,
            {
                **config_payload(existing.plan_code, existing.email_credits, existing.messaging_credits),
                "effective_at": existing.effective_at.isoformat(),
                "reason": "superseded by a new order",
            },
            now,
        )
        session.flush()
    if scheduled is not None:
        config = scheduled.configuration
        session.add(
            ScheduledChange(
                workspace_id=workspace.id,
                plan_code=config.plan.code,
                email_credits=config.email_credits,
                messaging_credits=config.messaging_credits,
                effective_at=scheduled.effective_at,
                created_at=now,
            )
        )
        emit(
            session,
            workspace,
            EventType.PLAN_CHANGE_SCHEDULED,
            {
                **config_payload(config.plan.code, config.email_credits, config.messaging_credits),
                "effective_at": scheduled.effective_at.isoformat(),
            },
            now,
        )
    invoice = None
    if payment is not None:
        invoice = create_invoice(
            session,
            workspace_id=workspace.id,
            kind="checkout",
            status="paid",
            charge=order.due_now,
            billing=billing_details.snapshot(details) if details else {},
            payment_id=payment.id,
            now=now,
            period_start=order.period_start,
            period_end=order.period_end,
        )
        workspace.renewal_payment = (
            "balance"
            if payment.method == "balance"
            else (f"card:{card_row.id}" if card_row is not None else workspace.renewal_payment)
        )
    emit(
        session,
        workspace,
        EventType.CHECKOUT_COMPLETED,
        {
            "kind": order.kind.value,
            "order": target_description,
            "total": str(order.due_now.total.amount),
            "currency": order.due_now.total.currency,
            "invoice_id": invoice.id if invoice else None,
            "invoice_number": invoice.number if invoice else None,
            "payment_id": payment.id if payment else None,
            "payment_method": payment.method if payment else None,
        },
        now,
    )
    return invoice.id if invoice else None
