"""Checkout: re-price the confirmed quote, record the payment, ask the payment method, then
apply or schedule the change with its invoice and events.

A request claims its idempotency key first (see :mod:`gateway.storage.idempotency`). The
first transaction holds the workspace's lock (``FOR UPDATE`` on PostgreSQL, ``BEGIN
IMMEDIATE`` on SQLite) while it prices, checks and records the payment as pending, and
stores the payment on the key; the method is asked outside any transaction; its answer is
applied in a second transaction (:mod:`gateway.services.settlement`), which prices the
order again and refunds the payment if the subscription changed meanwhile. A retry with
the same key answers where that payment stands and never charges again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
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
    PaymentPending,
    PaymentRefused,
)
from gateway.core.money import Money
from gateway.core.quote_tokens import InvalidQuoteToken
from gateway.core.statuses import PaymentPurpose, PaymentStatus
from gateway.plugin_api.payments import Capability, ChargeRequest, PaymentMethod, StoredCard
from gateway.services import billing_details, payflow, settlement
from gateway.services.cards import PaymentChoice, require_card, saved_card, tokenize
from gateway.services.charging import stored_card
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
from gateway.services.quotes import QUOTE_TTL
from gateway.services.settlement import Completed
from gateway.services.usage import refuse_if_suspended
from gateway.storage import idempotency
from gateway.storage.db import BillingDetails, Card, Payment, Workspace
from gateway.storage.locks import lock_workspace

__all__ = ["QUOTE_TTL", "CheckoutRequest", "Completed", "QuoteChanged", "QuoteTokenMisused", "checkout"]

# ------------------------------------------------------------------ requests


@dataclass(frozen=True)
class CheckoutRequest:
    """Checkout Now on a confirmed quote: its ``quote_token`` (recommended), or the quote's
    inputs sent back (``plan_code``, the credits, ``expected_total``, ``quote_expires_at``),
    never both (see :func:`confirmed_quote`)."""

    plan_code: str | None
    email_credits: int | None
    messaging_credits: int | None
    expected_total: Decimal | None  # the due-now total the customer saw
    quote_expires_at: datetime | None  # from the quote the customer confirmed
    payment: PaymentChoice
    idempotency_key: str
    quote_token: str | None = None  # Quote.token: binds all of the above, signed by the gateway

    def fingerprint(self, token: StoredCard | None = None) -> dict[str, Any]:
        fields = {
            "plan": self.plan_code,
            "email": self.email_credits,
            "messaging": self.messaging_credits,
            "total": str(self.expected_total),
            "expires": self.quote_expires_at.isoformat() if self.quote_expires_at is not None else None,
            "payment": self.payment.fingerprint(token),
        }
        if self.quote_token is not None:  # only then: keys taken before tokens keep their hash
            fields["quote_token"] = self.quote_token
        return fields


@dataclass(frozen=True)
class ConfirmedQuote:
    """What the customer confirmed, however it was sent."""

    order: OrderRequest
    total: Decimal
    currency: str | None  # known from a token; the sent total is in the catalog's currency
    expires_at: datetime
    signed: bool  # from a verified quote token (errors then name the token's field)


class QuoteTokenMisused(DomainError):
    """A token sent together with the fields it replaces (QUOTE_TOKEN_CONFLICT), or neither a
    token nor the quote's fields (QUOTE_REQUIRED). Nothing was done."""

    code = ErrorCode.QUOTE_TOKEN_CONFLICT

    def __init__(self, code: ErrorCode, message: str, field: tuple[str, ...]) -> None:
        super().__init__(message, field)
        self._code = code

    @property
    def error_code(self) -> ErrorCode:
        return self._code


_QUOTE_FIELDS = ("plan_code", "email_credits", "messaging_credits", "expected_total", "quote_expires_at")


def confirmed_quote(deps: Deps, workspace_id: str, request: CheckoutRequest) -> ConfirmedQuote:
    """The quote the request confirms. A token must verify (any configured key) and be this
    workspace's; its expiry is checked when the order is priced. Without a token, the sent
    fields are taken as before, and ``quote_expires_at`` at most ``QUOTE_TTL`` from now: the
    server cannot know when such a quote was made, which only a token proves."""
    if request.quote_token is not None:
        mixed = [name for name in _QUOTE_FIELDS if getattr(request, name) is not None]
        if mixed:
            raise QuoteTokenMisused(
                ErrorCode.QUOTE_TOKEN_CONFLICT,
                "send the quote token alone: it already holds the plan, credits, total and expiry",
                (mixed[0],),
            )
        claims = deps.quote_keys.verify(request.quote_token)
        if claims.workspace_id != workspace_id:
            raise InvalidQuoteToken("it was made for another workspace")
        order = OrderRequest(claims.plan_code, claims.email_credits, claims.messaging_credits)
        return ConfirmedQuote(order, claims.total.amount, claims.total.currency, claims.expires_at, True)
    if request.plan_code is None or request.expected_total is None or request.quote_expires_at is None:
        raise QuoteTokenMisused(
            ErrorCode.QUOTE_REQUIRED,
            "send the confirmed quote's token (or its plan, expected total and expiry)",
            ("quote_token",),
        )
    expires = request.quote_expires_at
    if expires.tzinfo is None:  # an ISO time without an offset: the quote's times are UTC
        expires = expires.replace(tzinfo=UTC)
    order = OrderRequest(request.plan_code, request.email_credits, request.messaging_credits)
    return ConfirmedQuote(order, request.expected_total, None, expires, False)


# ------------------------------------------------------------------ outcomes


class QuoteChanged(DomainError):
    """The confirmed quote expired, or its total is no longer the price: ``order`` is the new quote."""

    code = ErrorCode.QUOTE_CHANGED

    def __init__(
        self,
        order: pricing.PricedOrder,
        balance: Money,
        expected_total: Decimal,
        *,
        expired: bool,
        signed: bool = False,
    ) -> None:
        if expired:
            message, field = "the quote expired; confirm the new one", "quote_expires_at"
        else:
            message, field = (
                f"the total is now {order.due_now.total}; confirm the new quote",
                "expected_total",
            )
        super().__init__(message, ("quote_token",) if signed else (field,))
        self.order, self.balance, self.expected_total, self.expired = order, balance, expected_total, expired

    @property
    def error_code(self) -> ErrorCode:
        return ErrorCode.QUOTE_EXPIRED if self.expired else ErrorCode.QUOTE_CHANGED


# What checkout answers: done, or a payment that failed, waits for the customer or for the
# money (all recorded), or was refunded because its order no longer applied. Refusals that
# wrote nothing are raised as DomainErrors.
Outcome = Completed | PaymentDeclined | PaymentActionRequired | PaymentPending | PaymentRefused
STORED = (Completed, PaymentDeclined, PaymentActionRequired, PaymentPending, PaymentRefused)


def to_response(outcome: Completed | DomainError) -> dict[str, Any]:
    """An outcome as the idempotency key stores it. A payment is stored by its id: a retry
    answers where the payment stands *then* (it may have succeeded since)."""
    if isinstance(outcome, Completed) and outcome.payment_id is None:
        return {"type": "completed", "kind": outcome.kind.value, "invoice_id": None, "payment_id": None}
    payment_id = getattr(outcome, "payment_id", None)
    assert payment_id is not None, f"{outcome!r} is not a recorded outcome"
    return {"type": "payment", "payment_id": payment_id}


def from_response(deps: Deps, response: dict[str, Any]) -> Any:
    """The outcome a stored response stands for now (see :func:`to_response`)."""
    if response["type"] == "completed" and response.get("payment_id") is None:
        return Completed(pricing.ChangeKind(response["kind"]), response["invoice_id"], None)
    return settlement.read_outcome(deps, response["payment_id"], wait=idempotency.WAIT_SECONDS)


# ------------------------------------------------------------------ checkout


def checkout(deps: Deps, workspace_id: str, request: CheckoutRequest) -> Outcome:
    """Checkout Now. Returns what happened to the payment, or raises a DomainError when the
    request was refused and nothing was written. Idempotent per ``request.idempotency_key``."""
    idempotency.check_key(request.idempotency_key)
    confirmed = confirmed_quote(deps, workspace_id, request)  # a forged token never claims a key
    now = deps.clock()
    # A new card is tokenized first (outside any lock): its fingerprint tells one card from another.
    token = tokenize(deps, deps.payment_methods.get(request.payment.method), request.payment, now.date())
    fingerprint = idempotency.request_hash("checkout", request.fingerprint(token))
    # 1. Claim the key, price, check and record the payment as pending, in one transaction
    #    committed before the method is asked (a refusal rolls the claim back with the rest).
    #    Another checkout of the workspace being asked for its money is waited for, so that
    #    concurrent checkouts run one after the other as they did under one lock; so is a
    #    request still holding the key (see idempotency.take).
    started = time.monotonic()
    deadline = started + idempotency.WAIT_SECONDS
    while True:
        try:
            begun = _begin_checkout(deps, workspace_id, request, confirmed, now, token, fingerprint, started)
            break
        except (_Busy, idempotency.KeyInProgress, IntegrityError) as busy:
            # IntegrityError: a request of another kind inserted the same key first; look again.
            if time.monotonic() < deadline:
                time.sleep(0.02)
                continue
            if isinstance(busy, _Busy):
                raise PaymentRefused(
                    ErrorCode.PAYMENT_IN_PROGRESS,
                    "another checkout's payment is being processed; try again in a moment",
                    ("payment_method",),
                ) from None
            raise idempotency.IdempotencyKeyInProgress(
                f"a request with idempotency key {request.idempotency_key!r} is still in progress"
            ) from None
    if isinstance(begun, _Replay):
        replayed: Outcome = from_response(deps, begun.response)
        return replayed
    if isinstance(begun, Completed):
        return begun
    # 2. Ask the method, outside any transaction; 3. apply its answer in a transaction of its own.
    return _charge(deps, *begun)


def _charge(deps: Deps, method_code: str, charge_request: ChargeRequest) -> Outcome:
    outcome = settlement.charge_and_settle(deps, deps.payment_methods[method_code], charge_request)
    assert isinstance(outcome, STORED), f"a checkout's payment ends as a checkout outcome, not {outcome!r}"
    return outcome


class _Busy(Exception):
    """Another checkout's payment of the workspace is being asked for (rolls the attempt back)."""


@dataclass(frozen=True)
class _Replay:
    """The key was completed by an earlier request: its stored response."""

    response: dict[str, Any]


def _begin_checkout(
    deps: Deps,
    workspace_id: str,
    request: CheckoutRequest,
    confirmed: ConfirmedQuote,
    now: datetime,
    token: StoredCard | None,
    fingerprint: str,
    started: float,
) -> _Replay | Completed | tuple[str, ChargeRequest]:
    with deps.write_sessions.begin() as session:
        workspace = lock_workspace(session, workspace_id)
        assert workspace is not None, "authenticated workspaces exist"
        # The clock moves while a retry waits (for a lease that ran out meanwhile).
        now_here = now + timedelta(seconds=time.monotonic() - started)
        replay = idempotency.take(
            session, workspace_id, request.idempotency_key, "checkout", fingerprint, now, now_here
        )
        if replay is not None:
            return _Replay(replay)
        session.flush()  # the claim: its row is what the payment's key is derived from
        priced = _priced_checkout(deps, session, workspace, request, confirmed, now, token)
        if isinstance(priced, Completed):  # nothing due now: applied already
            idempotency.complete(session, workspace_id, request.idempotency_key, to_response(priced))
            return priced
        return priced.method, payflow.request_of(priced)


def _priced_checkout(
    deps: Deps,
    session: Session,
    workspace: Workspace,
    request: CheckoutRequest,
    confirmed: ConfirmedQuote,
    now: datetime,
    token: StoredCard | None,
) -> Completed | Payment:
    _wait_if_in_flight(session, workspace, now)  # its order may change what this one costs
    refuse_if_suspended(session, workspace)
    plan = plan_to_buy(deps, confirmed.order.plan_code, now)
    details = session.get(BillingDetails, workspace.id)
    missing = billing_details.missing_fields(details)
    if missing:
        raise BillingDetailsIncomplete(missing)
    order = price_for_workspace(
        deps,
        workspace,
        plan,
        confirmed.order,
        billing_details.tax_customer(details),
        now,
    )
    if order.kind is pricing.ChangeKind.NONE:
        raise NothingToChange()
    expected = confirmed.total
    # A signed expiry is the server's own; a sent one is believed up to QUOTE_TTL from now.
    latest = confirmed.expires_at if confirmed.signed else now + QUOTE_TTL
    if not (now <= confirmed.expires_at <= latest):
        raise QuoteChanged(order, balance_of(workspace), expected, expired=True, signed=confirmed.signed)
    amount = order.due_now.total
    same_currency = confirmed.currency in (None, amount.currency)
    if not expected.is_finite() or amount.amount != expected or not same_currency:
        raise QuoteChanged(order, balance_of(workspace), expected, expired=False, signed=confirmed.signed)
    description = f"{pricing.describe(order.target)}: {order.kind.value}"
    if not amount:
        invoice_id = apply_order(
            session,
            workspace,
            order,
            None,
            None,
            details,
            now,
            target_description=pricing.describe(order.target),
            seller=deps.seller,
        )
        return Completed(order.kind, invoice_id, None)

    method = deps.payment_methods.get(request.payment.method)
    if method is None:
        raise PaymentRefused(
            ErrorCode.UNKNOWN_PAYMENT_METHOD,
            f"no payment method {request.payment.method!r}",
            ("payment_method", "method"),
        )
    return begin_customer_payment(
        session,
        workspace,
        method,
        amount,
        request.payment,
        token,
        purpose=PaymentPurpose.CHECKOUT,
        description=description,
        client_key=request.idempotency_key,
        now=now,
        follow_up={"order": order_snapshot(order), "base": base_snapshot(workspace)},
    )


def begin_customer_payment(
    session: Session,
    workspace: Workspace,
    method: PaymentMethod,
    amount: Money,
    choice: PaymentChoice,
    token: StoredCard | None,
    *,
    purpose: PaymentPurpose,
    description: str,
    client_key: str,
    now: datetime,
    follow_up: dict[str, Any] | None = None,
) -> Payment:
    """A payment the customer asked for (checkout, top-up, payInvoice), in the caller's
    transaction holding the workspace's lock: the card to charge, a balance that does not cover
    ``amount`` refused (nothing written), the pending record (a new card is saved once paid, if
    asked), and the client's idempotency key completed with it."""
    card_value, card_row = card_to_charge(session, workspace, method, choice, token)
    if Capability.PREPAID_BALANCE in method.capabilities and balance_of(workspace) < amount:
        raise InsufficientBalance(balance_of(workspace), amount)
    payment = payflow.begin(
        session,
        workspace,
        method,
        amount,
        purpose=purpose,
        description=description,
        idempotency_key=payflow.request_key(session, purpose, workspace.id, client_key),
        now=now,
        card=card_value,
        card_id=card_row.id if card_row is not None else None,
        follow_up={
            **(follow_up or {}),
            "save_card": card_row is None and card_value is not None and choice.save_card,
        },
    )
    idempotency.complete(session, workspace.id, client_key, {"type": "payment", "payment_id": payment.id})
    return payment


def _wait_if_in_flight(session: Session, workspace: Workspace, now: datetime) -> None:
    """Raise :class:`_Busy` while another checkout's payment is being asked for (recorded,
    not answered yet, and recent): both would be charged, and one refunded."""
    busy = session.scalar(
        select(Payment.id)
        .where(
            Payment.workspace_id == workspace.id,
            Payment.purpose == PaymentPurpose.CHECKOUT,
            Payment.status == PaymentStatus.PENDING,
            Payment.answered_at.is_(None),
            Payment.created_at > now - payflow.ANSWER_GRACE,
        )
        .limit(1)
    )
    if busy is not None:
        raise _Busy()


def card_to_charge(
    session: Session,
    workspace: Workspace,
    method: PaymentMethod,
    choice: PaymentChoice,
    token: StoredCard | None,
) -> tuple[StoredCard | None, Card | None]:
    """The card to charge (and its saved row, if any) for a CARDS method; ``token`` is the
    new card, tokenized already (see :func:`tokenize`)."""
    if Capability.CARDS not in method.capabilities:
        return None, None
    if choice.card_id is not None:
        row = saved_card(session, workspace.id, choice.card_id)
        return stored_card(row), row
    require_card(choice, token)
    return token, None  # saved only once the payment went through
