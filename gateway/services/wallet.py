"""Saved cards and balance top-ups (paid by card)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from gateway.core.errors import ErrorCode, PaymentActionRequired, PaymentDeclined, PaymentRefused
from gateway.core.money import CURRENCY_EXPONENTS, Money
from gateway.core.statuses import PaymentPurpose, PaymentStatus
from gateway.plugin_api.payments import (
    CardDetails,
    CardPaymentMethod,
    PaymentKind,
    StoredCard,
)
from gateway.services.cards import (
    PaymentChoice,
    card_fingerprint,
    card_snapshot,
    renewal_by_card,
    require_card,
    save_card,
    saved_card,
    tokenize,
)
from gateway.services.charging import credit_top_up, stored_card, take_payment
from gateway.services.checkout import declined, payment_outcome_from
from gateway.services.checkout import to_response as checkout_response
from gateway.services.deps import Deps
from gateway.storage import idempotency
from gateway.storage.locks import lock_workspace


def card_method(deps: Deps) -> CardPaymentMethod | None:
    """The card payment method: the one with code "card", else the only card-kind one."""
    methods = deps.payment_methods
    card = methods.get("card")
    if isinstance(card, CardPaymentMethod) and card.kind is PaymentKind.CARD:
        return card
    cards = [m for m in methods.values() if isinstance(m, CardPaymentMethod) and m.kind is PaymentKind.CARD]
    return cards[0] if len(cards) == 1 else None


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
    token = tokenize(method, PaymentChoice(method.code, new_card=card), now.date(), ("card",))
    assert token is not None
    fingerprint = {"card": card_fingerprint(token), "renewal": use_for_renewal}
    added: CardAdded = idempotency.run_once(
        deps.write_sessions,
        workspace_id,
        idempotency_key,
        "add_card",
        fingerprint,
        now,
        lambda: _add_card(deps, workspace_id, token, idempotency_key, use_for_renewal, now),
        lambda outcome: {"type": "card_added", "card_id": outcome.card_id},
        lambda response: CardAdded(response["card_id"]),
        (CardAdded,),
    )
    return added


def _add_card(
    deps: Deps, workspace_id: str, token: StoredCard, key: str, use_for_renewal: bool, now: datetime
) -> CardAdded:
    with deps.write_sessions.begin() as session:
        workspace = lock_workspace(session, workspace_id)
        assert workspace is not None
        row = save_card(session, workspace, token, now)  # the same card saved before is not saved twice
        if use_for_renewal or workspace.renewal_payment is None:
            workspace.renewal_payment = renewal_by_card(row.id)
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
        if workspace.renewal_payment == renewal_by_card(card_id):
            workspace.renewal_payment = None


# ------------------------------------------------------------------ top-up


@dataclass(frozen=True)
class ToppedUp:
    payment_id: str
    amount: Money


TopUpOutcome = ToppedUp | PaymentDeclined | PaymentActionRequired


def _to_response(outcome: TopUpOutcome) -> dict[str, Any]:
    if isinstance(outcome, ToppedUp):
        return {
            "type": "topped_up",
            "payment_id": outcome.payment_id,
            "amount": str(outcome.amount.amount),
            "currency": outcome.amount.currency,
        }
    return checkout_response(outcome)


def _from_response(response: dict[str, Any]) -> TopUpOutcome:
    if response["type"] == "topped_up":
        return ToppedUp(response["payment_id"], Money(response["amount"], response["currency"]))
    return payment_outcome_from(response)


def top_up(
    deps: Deps, workspace_id: str, amount: Decimal, payment: PaymentChoice, idempotency_key: str
) -> TopUpOutcome:
    """Add money to the prepaid balance, paid by card. Idempotent per key."""
    idempotency.check_key(idempotency_key)
    now = deps.clock()
    method = card_method(deps)
    token = (
        tokenize(method, payment, now.date())
        if method is not None and payment.method in ("card", method.code)
        else None
    )  # first, as for checkout: the fingerprint tells cards apart
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
        _from_response,
        (ToppedUp, PaymentDeclined, PaymentActionRequired),
    )
    return outcome


def _top_up(
    deps: Deps,
    workspace_id: str,
    amount: Decimal,
    choice: PaymentChoice,
    token: StoredCard | None,
    key: str,
    now: datetime,
) -> TopUpOutcome:
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
    method = card_method(deps)
    if method is None or (choice.method not in ("card", method.code)):
        raise PaymentRefused(
            ErrorCode.UNKNOWN_PAYMENT_METHOD, "top-ups are paid by card", ("payment_method", "method")
        )
    money = Money(amount, currency)
    if choice.card_id is None:
        require_card(choice, token)
    with deps.write_sessions.begin() as session:
        workspace = lock_workspace(session, workspace_id)
        assert workspace is not None
        card_row = None
        if choice.card_id is not None:
            card_row = saved_card(session, workspace_id, choice.card_id)
            token = stored_card(card_row)
        taken = take_payment(
            session,
            workspace,
            method,
            money,
            purpose=PaymentPurpose.TOP_UP,
            description=f"Balance top-up of {money}",
            idempotency_key=f"top_up:{workspace_id}:{key}",
            now=now,
            card=token,
            card_id=card_row.id if card_row else None,
        )
        outcome: TopUpOutcome
        if taken.result.status is PaymentStatus.FAILED:
            outcome = declined(taken, fallback="declined")
        else:
            to_save = token if card_row is None and choice.save_card else None
            if taken.result.status is PaymentStatus.REQUIRES_ACTION:  # the card is saved once authenticated
                taken.payment.pending = {
                    "purpose": PaymentPurpose.TOP_UP.value,
                    "save_card": card_snapshot(to_save),
                }
                outcome = PaymentActionRequired(taken.payment.id, taken.result.next_action or "")
            else:
                if to_save is not None:
                    card_row = save_card(session, workspace, to_save, now)
                    taken.payment.card_id = card_row.id
                credit_top_up(session, workspace, taken.payment, now)
                outcome = ToppedUp(taken.payment.id, money)
        idempotency.complete(session, workspace_id, key, _to_response(outcome))
        return outcome
