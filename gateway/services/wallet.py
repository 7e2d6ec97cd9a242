"""Saved cards and balance top-ups."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from gateway.core.errors import (
    ErrorCode,
    PaymentActionRequired,
    PaymentDeclined,
    PaymentPending,
    PaymentRefused,
)
from gateway.core.money import CURRENCY_EXPONENTS, Money
from gateway.core.statuses import PaymentPurpose
from gateway.plugin_api.payments import Capability, CardDetails, CardMethod, StoredCard
from gateway.services import payflow, settlement
from gateway.services.cards import (
    PaymentChoice,
    card_fingerprint,
    renewal_card_id,
    renewal_choice,
    save_card,
    saved_card,
    tokenize,
)
from gateway.services.checkout import begin_customer_payment
from gateway.services.deps import Deps
from gateway.services.settlement import ToppedUp
from gateway.storage import idempotency
from gateway.storage.locks import lock_workspace

__all__ = ["CardAdded", "ToppedUp", "add_card", "card_method", "remove_card", "top_up"]


def card_method(deps: Deps) -> CardMethod | None:
    """The method that saves cards: the one with code "card", else the only CARDS method."""
    cards = {
        code: method
        for code, method in deps.payment_methods.items()
        if Capability.CARDS in method.capabilities and isinstance(method, CardMethod)
    }
    if "card" in cards:
        return cards["card"]
    return next(iter(cards.values())) if len(cards) == 1 else None


# ------------------------------------------------------------------ cards


@dataclass(frozen=True)
class CardAdded:
    card_id: str


def add_card(
    deps: Deps, workspace_id: str, card: CardDetails, idempotency_key: str, use_for_renewal: bool = False
) -> CardAdded:
    """Save a card (tokenized by the card method), optionally as the renewal method.
    Idempotent per key; the same card saved before is not saved twice."""
    idempotency.check_key(idempotency_key)
    now = deps.clock()
    method = card_method(deps)
    if method is None:
        raise PaymentRefused(ErrorCode.UNKNOWN_PAYMENT_METHOD, "no card payment method is installed")
    # Tokenized before the key is claimed (and outside any lock: it may call a processor), so
    # that the processor's fingerprint tells this card from another with the same last digits.
    token = tokenize(deps, method, PaymentChoice(method.code, new_card=card), now.date(), ("card",))
    assert token is not None
    fingerprint = {"card": card_fingerprint(token), "renewal": use_for_renewal}
    added: CardAdded = idempotency.run_once(
        deps.write_sessions,
        workspace_id,
        idempotency_key,
        "add_card",
        fingerprint,
        now,
        lambda: _add_card(deps, method, workspace_id, token, idempotency_key, use_for_renewal, now),
        lambda outcome: {"type": "card_added", "card_id": outcome.card_id},
        lambda response: CardAdded(response["card_id"]),
        (CardAdded,),
    )
    return added


def _add_card(
    deps: Deps,
    method: CardMethod,
    workspace_id: str,
    token: StoredCard,
    key: str,
    use_for_renewal: bool,
    now: datetime,
) -> CardAdded:
    with deps.write_sessions.begin() as session:
        workspace = lock_workspace(session, workspace_id)
        assert workspace is not None
        row = save_card(session, workspace, token, now)  # the same card saved before is not saved twice
        renews = Capability.OFF_SESSION in method.capabilities
        if renews and (use_for_renewal or workspace.renewal_payment is None):
            workspace.renewal_payment = renewal_choice(method.code, row.id)
        idempotency.complete(session, workspace_id, key, {"type": "card_added", "card_id": row.id})
        return CardAdded(row.id)


def remove_card(deps: Deps, workspace_id: str, card_id: str) -> None:
    """Remove a saved card (it stops being the renewal method), or :class:`PaymentRefused`."""
    now = deps.clock()
    with deps.write_sessions.begin() as session:
        workspace = lock_workspace(session, workspace_id)
        assert workspace is not None, "authenticated workspaces exist"
        row = saved_card(session, workspace_id, card_id, field=("card_id",))
        row.removed_at = now
        if renewal_card_id(workspace.renewal_payment) == card_id:
            workspace.renewal_payment = None


# ------------------------------------------------------------------ top-up


TopUpOutcome = ToppedUp | PaymentDeclined | PaymentActionRequired | PaymentPending
_STORED = (ToppedUp, PaymentDeclined, PaymentActionRequired, PaymentPending)


def _to_response(outcome: TopUpOutcome) -> dict[str, Any]:
    return {"type": "payment", "payment_id": outcome.payment_id}


def top_up(
    deps: Deps, workspace_id: str, amount: Decimal, payment: PaymentChoice, idempotency_key: str
) -> TopUpOutcome:
    """Add money to the prepaid balance, paid with any method that does not spend that
    balance itself. Idempotent per key."""
    idempotency.check_key(idempotency_key)
    now = deps.clock()
    # First, as for checkout: the new card's fingerprint tells cards apart.
    token = tokenize(deps, deps.payment_methods.get(payment.method), payment, now.date())
    fingerprint = {"amount": str(amount), "payment": payment.fingerprint(token)}
    outcome: TopUpOutcome = idempotency.run_once(
        deps.write_sessions,
        workspace_id,
        idempotency_key,
        "top_up",
        fingerprint,
        now,
        lambda: _top_up(deps, workspace_id, amount, payment, token, idempotency_key, now),
        _to_response,
        lambda response: settlement.read_outcome(deps, response["payment_id"], wait=idempotency.WAIT_SECONDS),
        _STORED,
    )
    return outcome


def _money(deps: Deps, amount: Decimal) -> Money:
    """The top-up amount, or :class:`PaymentRefused` (INVALID_AMOUNT)."""
    low, high = deps.top_up_limits
    currency = deps.catalog.currency
    exponent = CURRENCY_EXPONENTS[currency]
    # Finite and in range first: quantizing Infinity, a NaN or 1E+30 raises.
    if not amount.is_finite() or not low <= amount <= high:
        raise PaymentRefused(
            ErrorCode.INVALID_AMOUNT, f"top-ups must be between {low} and {high} {currency}", ("amount",)
        )
    if amount != amount.quantize(Decimal(1).scaleb(-exponent)):
        raise PaymentRefused(
            ErrorCode.INVALID_AMOUNT, f"amounts in {currency} have at most {exponent} decimals", ("amount",)
        )
    return Money(amount, currency)


def _top_up(
    deps: Deps,
    workspace_id: str,
    amount: Decimal,
    choice: PaymentChoice,
    token: StoredCard | None,
    key: str,
    now: datetime,
) -> TopUpOutcome:
    money = _money(deps, amount)
    method = deps.payment_methods.get(choice.method)
    if method is None:
        raise PaymentRefused(
            ErrorCode.UNKNOWN_PAYMENT_METHOD,
            f"no payment method {choice.method!r}",
            ("payment_method", "method"),
        )
    if Capability.PREPAID_BALANCE in method.capabilities:
        raise PaymentRefused(
            ErrorCode.PAYMENT_METHOD_NOT_ALLOWED,
            f"{method.label} cannot pay a top-up of the balance it spends",
            ("payment_method", "method"),
        )
    with deps.write_sessions.begin() as session:
        workspace = lock_workspace(session, workspace_id)
        assert workspace is not None
        payment = begin_customer_payment(
            session,
            workspace,
            method,
            money,
            choice,
            token,
            purpose=PaymentPurpose.TOP_UP,
            description=f"Balance top-up of {money}",
            client_key=key,
            now=now,
        )
        request = payflow.request_of(payment)
    outcome = settlement.charge_and_settle(deps, method, request)
    assert isinstance(outcome, _STORED), f"a top-up's payment ends as a top-up outcome, not {outcome!r}"
    return outcome
