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

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from gateway.core import pricing
from gateway.core.errors import (
    BillingDetailsIncomplete,
    DomainError,
    ErrorCode,
    InsufficientBalance,
    NothingToChange,
    PaymentActionRequired,
    PaymentDeclined,
    PaymentRefused,
)
from gateway.core.money import Money
from gateway.core.statuses import PaymentPurpose
from gateway.plugin_api.payments import (
    FailureCode,
    PaymentKind,
    PaymentMethod,
    PaymentStatus,
    StoredCard,
)
from gateway.services import billing_details
from gateway.services.cards import (
    PaymentChoice,
    card_snapshot,
    require_card,
    save_card,
    saved_card,
    tokenize,
)
from gateway.services.charging import Taken, stored_card, take_payment
from gateway.services.deps import Deps
from gateway.services.orders import (
    OrderRequest,
    apply_order,
    balance_of,
    base_snapshot,
    order_snapshot,
    plan_to_buy,
    price_for_workspace,
)
from gateway.storage import idempotency
from gateway.storage.db import BillingDetails, Card, Payment, Workspace
from gateway.storage.ledger import SqlLedger
from gateway.storage.locks import lock_workspace

QUOTE_TTL = timedelta(minutes=30)

# ------------------------------------------------------------------ requests


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


class QuoteChanged(DomainError):
    """The confirmed quote expired, or its total is no longer the price: ``order`` is the new quote."""

    code = ErrorCode.QUOTE_CHANGED

    def __init__(
        self, order: pricing.PricedOrder, balance: Money, expected_total: Decimal, *, expired: bool
    ) -> None:
        if expired:
            super().__init__("the quote expired; confirm the new one", ("quote_expires_at",))
        else:
            super().__init__(
                f"the total is now {order.due_now.total}; confirm the new quote", ("expected_total",)
            )
        self.order, self.balance, self.expected_total, self.expired = order, balance, expected_total, expired

    @property
    def error_code(self) -> ErrorCode:
        return ErrorCode.QUOTE_EXPIRED if self.expired else ErrorCode.QUOTE_CHANGED


@dataclass(frozen=True)
class Completed:
    kind: pricing.ChangeKind
    invoice_id: str | None
    payment_id: str | None


# What checkout answers: done, or a payment that failed or waits for the customer (both
# recorded). Refusals that wrote nothing are raised as DomainErrors.
Outcome = Completed | PaymentDeclined | PaymentActionRequired
STORED = (Completed, PaymentDeclined, PaymentActionRequired)  # outcomes kept on the idempotency key


def to_response(outcome: Outcome) -> dict[str, Any]:
    """An outcome as the idempotency key stores it (and :func:`from_response` reads it back)."""
    if isinstance(outcome, Completed):
        return {
            "type": "completed",
            "kind": outcome.kind.value,
            "invoice_id": outcome.invoice_id,
            "payment_id": outcome.payment_id,
        }
    if isinstance(outcome, PaymentDeclined):
        return {
            "type": "payment_failed",
            "payment_id": outcome.payment_id,
            "failure": outcome.decline_code,
            "message": outcome.message,
        }
    return {"type": "action_required", "payment_id": outcome.payment_id, "next_action": outcome.next_action}


def from_response(response: dict[str, Any]) -> Outcome:
    if response["type"] == "completed":
        return Completed(pricing.ChangeKind(response["kind"]), response["invoice_id"], response["payment_id"])
    return payment_outcome_from(response)


def payment_outcome_from(response: dict[str, Any]) -> PaymentDeclined | PaymentActionRequired:
    """A stored failed or waiting payment (checkout and top-up store them alike)."""
    if response["type"] == "payment_failed":
        return PaymentDeclined(response["payment_id"], response["failure"], response["message"])
    return PaymentActionRequired(response["payment_id"], response["next_action"])


# ------------------------------------------------------------------ checkout


def checkout(deps: Deps, workspace_id: str, request: CheckoutRequest) -> Outcome:
    """Checkout Now. Returns what happened to the payment, or raises a DomainError when the
    request was refused and nothing was written. Idempotent per ``request.idempotency_key``."""
    idempotency.check_key(request.idempotency_key)
    now = deps.clock()
    # A new card is tokenized first (outside any lock): its fingerprint tells one card from another.
    token = tokenize(deps.payment_methods.get(request.payment.method), request.payment, now.date())
    outcome: Outcome = idempotency.run_once(
        deps.write_sessions,
        workspace_id,
        request.idempotency_key,
        "checkout",
        request.fingerprint(token),
        now,
        lambda: _checkout(deps, workspace_id, request, now, token),
        to_response,
        from_response,
        STORED,
    )
    return outcome


def _checkout(
    deps: Deps, workspace_id: str, request: CheckoutRequest, now: datetime, token: StoredCard | None
) -> Outcome:
    with deps.write_sessions.begin() as session:
        workspace = lock_workspace(session, workspace_id)
        assert workspace is not None, "authenticated workspaces exist"
        outcome = _priced_checkout(deps, session, workspace, request, now, token)
        idempotency.complete(session, workspace_id, request.idempotency_key, to_response(outcome))
        return outcome


def _priced_checkout(
    deps: Deps,
    session: Session,
    workspace: Workspace,
    request: CheckoutRequest,
    now: datetime,
    token: StoredCard | None,
) -> Outcome:
    plan = plan_to_buy(deps, request.plan_code)
    details = session.get(BillingDetails, workspace.id)
    missing = billing_details.missing_fields(details)
    if missing:
        raise BillingDetailsIncomplete(missing)
    order = price_for_workspace(
        deps,
        workspace,
        plan,
        OrderRequest(request.plan_code, request.email_credits, request.messaging_credits),
        billing_details.tax_customer(details),
        now,
    )
    if order.kind is pricing.ChangeKind.NONE:
        raise NothingToChange()
    expires = request.quote_expires_at
    if expires.tzinfo is None:  # an ISO time without an offset: the quote's times are UTC
        expires = expires.replace(tzinfo=UTC)
    if not (now <= expires <= now + QUOTE_TTL):
        raise QuoteChanged(order, balance_of(workspace), request.expected_total, expired=True)
    amount = order.due_now.total
    if not request.expected_total.is_finite() or amount.amount != request.expected_total:
        raise QuoteChanged(order, balance_of(workspace), request.expected_total, expired=False)

    payment: Payment | None = None
    card_row: Card | None = None
    if amount:
        method = deps.payment_methods.get(request.payment.method)
        if method is None:
            raise PaymentRefused(
                ErrorCode.UNKNOWN_PAYMENT_METHOD,
                f"no payment method {request.payment.method!r}",
                ("payment_method", "method"),
            )
        card_value, card_row = _card(session, workspace, method, request.payment, token)
        if method.kind is PaymentKind.BALANCE:
            balance = SqlLedger(session, workspace, now).balance()
            if balance < amount:
                raise InsufficientBalance(balance, amount)
        taken = take_payment(
            session,
            workspace,
            method,
            amount,
            purpose=PaymentPurpose.CHECKOUT,
            description=f"{pricing.describe(order.target)}: {order.kind.value}",
            idempotency_key=f"checkout:{workspace.id}:{request.idempotency_key}",
            now=now,
            card=card_value,
            card_id=card_row.id if card_row is not None else None,
        )
        payment = taken.payment
        if taken.result.status is PaymentStatus.FAILED:  # a declined new card is not saved
            return declined(taken)
        to_save = card_value if card_row is None and request.payment.save_card else None
        if taken.result.status is PaymentStatus.REQUIRES_ACTION:  # the card is saved once authenticated
            payment.pending = {
                "order": order_snapshot(order),
                "base": base_snapshot(workspace),
                "save_card": card_snapshot(to_save),
            }
            return PaymentActionRequired(payment.id, taken.result.next_action or "")
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
        target_description=pricing.describe(order.target),
    )
    return Completed(order.kind, invoice_id, payment.id if payment else None)


def declined(taken: Taken, fallback: str = "the payment failed") -> PaymentDeclined:
    """The failure of a payment the method refused (its record is kept); ``fallback`` is the
    message when the method gave none."""
    failure = taken.result.failure or FailureCode.PROCESSING_ERROR
    return PaymentDeclined(taken.payment.id, failure.value, taken.result.message or fallback)


def _card(
    session: Session,
    workspace: Workspace,
    method: PaymentMethod,
    choice: PaymentChoice,
    token: StoredCard | None,
) -> tuple[StoredCard | None, Card | None]:
    """The card to charge (and its saved row, if any) for a card method; ``token`` is the
    new card, tokenized already (see :func:`tokenize`)."""
    if method.kind is not PaymentKind.CARD:
        return None, None
    if choice.card_id is not None:
        row = saved_card(session, workspace.id, choice.card_id)
        return stored_card(row), row
    require_card(choice, token)
    return token, None  # saved only once the payment went through
