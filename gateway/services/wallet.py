"""Saved cards and balance top-ups (paid by card)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from gateway.core.money import CURRENCY_EXPONENTS, Money
from gateway.plugin_api.payments import (
    CardDetails,
    CardPaymentMethod,
    FailureCode,
    PaymentKind,
    PaymentStatus,
    StoredCard,
)
from gateway.services.charging import credit_top_up, stored_card, take_payment
from gateway.services.checkout import (
    ActionRequired,
    PaymentChoice,
    PaymentFailed,
    Rejected,
    card_fingerprint,
    card_snapshot,
    save_card,
    tokenize,
)
from gateway.storage import idempotency
from gateway.storage.db import Card
from gateway.storage.locks import lock_workspace


def card_method(gateway: Any) -> CardPaymentMethod | None:
    """The card payment method: the one with code "card", else the only card-kind one."""
    methods = gateway.registry.payment_methods
    if "card" in methods and methods["card"].kind is PaymentKind.CARD:
        return methods["card"]
    cards = [m for m in methods.values() if m.kind is PaymentKind.CARD]
    return cards[0] if len(cards) == 1 else None


# ------------------------------------------------------------------ cards


@dataclass(frozen=True)
class CardAdded:
    card_id: str


def add_card(
    gateway: Any, workspace_id: str, card: CardDetails, idempotency_key: str, use_for_renewal: bool = False
) -> CardAdded | Rejected:
    now = gateway.clock()
    method = card_method(gateway)
    if method is None:
        return Rejected("UNKNOWN_PAYMENT_METHOD", "no card payment method is installed")
    # Tokenized before the key is claimed (and outside any lock: it may call a processor), so
    # that the processor's fingerprint tells this card from another with the same last digits.
    token = tokenize(method, PaymentChoice(method.code, new_card=card), now.date(), ("card",))
    if isinstance(token, Rejected):
        return token
    assert token is not None
    fingerprint = {"card": card_fingerprint(token), "renewal": use_for_renewal}
    return idempotency.run_once(
        gateway.write_sessions,
        workspace_id,
        idempotency_key,
        "add_card",
        fingerprint,
        now,
        lambda: _add_card(gateway, workspace_id, token, idempotency_key, use_for_renewal, now),
        lambda outcome: {"type": "card_added", "card_id": outcome.card_id},
        lambda response: CardAdded(response["card_id"]),
        (CardAdded,),
    )


def _add_card(
    gateway: Any, workspace_id: str, token: StoredCard, key: str, use_for_renewal: bool, now: datetime
) -> CardAdded | Rejected:
    with gateway.write_sessions.begin() as session:
        workspace = lock_workspace(session, workspace_id)
        assert workspace is not None
        row = save_card(session, workspace, token, now)  # the same card saved before is not saved twice
        if use_for_renewal or workspace.renewal_payment is None:
            workspace.renewal_payment = f"card:{row.id}"
        outcome = CardAdded(row.id)
        idempotency.complete(session, workspace_id, key, {"type": "card_added", "card_id": row.id})
        return outcome


def remove_card(gateway: Any, workspace_id: str, card_id: str) -> bool:
    now = gateway.clock()
    with gateway.write_sessions.begin() as session:
        workspace = lock_workspace(session, workspace_id)
        row = session.get(Card, card_id)
        if workspace is None or row is None or row.workspace_id != workspace_id or row.removed_at is not None:
            return False
        row.removed_at = now
        if workspace.renewal_payment == f"card:{card_id}":
            workspace.renewal_payment = None
        return True


# ------------------------------------------------------------------ top-up


@dataclass(frozen=True)
class ToppedUp:
    payment_id: str
    amount: Money


TopUpOutcome = ToppedUp | PaymentFailed | ActionRequired | Rejected


def top_up(
    gateway: Any, workspace_id: str, amount: Decimal, payment: PaymentChoice, idempotency_key: str
) -> TopUpOutcome:
    now = gateway.clock()
    method = card_method(gateway)
    token = (
        tokenize(method, payment, now.date())
        if method is not None and payment.method in ("card", method.code)
        else None
    )  # first, as for checkout: the fingerprint tells cards apart
    if isinstance(token, Rejected):
        return token
    fingerprint = {"amount": str(amount), "payment": payment.fingerprint(token)}

    def to_response(outcome: Any) -> dict[str, Any]:
        if isinstance(outcome, ToppedUp):
            return {
                "type": "topped_up",
                "payment_id": outcome.payment_id,
                "amount": str(outcome.amount.amount),
                "currency": outcome.amount.currency,
            }
        if isinstance(outcome, PaymentFailed):
            return {
                "type": "payment_failed",
                "payment_id": outcome.payment_id,
                "failure": outcome.failure.value,
                "message": outcome.message,
            }
        return {
            "type": "action_required",
            "payment_id": outcome.payment_id,
            "next_action": outcome.next_action,
        }

    def from_response(response: dict[str, Any]) -> TopUpOutcome:
        if response["type"] == "topped_up":
            return ToppedUp(response["payment_id"], Money(response["amount"], response["currency"]))
        if response["type"] == "payment_failed":
            return PaymentFailed(
                response["payment_id"], FailureCode(response["failure"]), response["message"]
            )
        return ActionRequired(response["payment_id"], response["next_action"])

    def work() -> TopUpOutcome:
        return _top_up(gateway, workspace_id, amount, payment, token, idempotency_key, now, to_response)

    return idempotency.run_once(
        gateway.write_sessions,
        workspace_id,
        idempotency_key,
        "top_up",
        fingerprint,
        now,
        work,
        to_response,
        from_response,
        (ToppedUp, PaymentFailed, ActionRequired),
    )


def _top_up(
    gateway: Any,
    workspace_id: str,
    amount: Decimal,
    choice: PaymentChoice,
    token: StoredCard | None,
    key: str,
    now: datetime,
    to_response: Any,
) -> TopUpOutcome:
    settings = gateway.settings
    currency = gateway.catalog.currency
    exponent = CURRENCY_EXPONENTS[currency]
    # Finite and in range first: quantizing Infinity, a NaN or 1E+30 raises.
    if not amount.is_finite() or not settings.top_up_min <= amount <= settings.top_up_max:
        return Rejected(
            "INVALID_AMOUNT",
            f"top-ups must be between {settings.top_up_min} and {settings.top_up_max} {currency}",
            ("amount",),
        )
    if amount != amount.quantize(Decimal(1).scaleb(-exponent)):
        return Rejected(
            "INVALID_AMOUNT", f"amounts in {currency} have at most {exponent} decimals", ("amount",)
        )
    method = card_method(gateway)
    if method is None or (choice.method not in ("card", method.code)):
        return Rejected("UNKNOWN_PAYMENT_METHOD", "top-ups are paid by card", ("paymentMethod", "method"))
    money = Money(amount, currency)
    if choice.card_id is None:
        if choice.new_card is None:
            return Rejected("CARD_REQUIRED", "choose a saved card or enter a new one", ("paymentMethod",))
        assert token is not None, "a new card is tokenized before the top-up starts"
    with gateway.write_sessions.begin() as session:
        workspace = lock_workspace(session, workspace_id)
        assert workspace is not None
        card_row = None
        if choice.card_id is not None:
            card_row = session.get(Card, choice.card_id)
            if card_row is None or card_row.workspace_id != workspace_id or card_row.removed_at is not None:
                return Rejected(
                    "UNKNOWN_CARD", f"no saved card {choice.card_id!r}", ("paymentMethod", "cardId")
                )
            token = stored_card(card_row)
        taken = take_payment(
            session,
            workspace,
            method,
            money,
            purpose="top_up",
            description=f"Balance top-up of {money}",
            idempotency_key=f"top_up:{workspace_id}:{key}",
            now=now,
            card=token,
            card_id=card_row.id if card_row else None,
        )
        if taken.result.status is PaymentStatus.FAILED:
            outcome: TopUpOutcome = PaymentFailed(
                taken.payment.id,
                taken.result.failure or FailureCode.PROCESSING_ERROR,
                taken.result.message or "declined",
            )
        else:
            to_save = token if card_row is None and choice.save_card else None
            if taken.result.status is PaymentStatus.REQUIRES_ACTION:  # the card is saved once authenticated
                taken.payment.pending = {"purpose": "top_up", "save_card": card_snapshot(to_save)}
                outcome = ActionRequired(taken.payment.id, taken.result.next_action or "")
            else:
                if to_save is not None:
                    card_row = save_card(session, workspace, to_save, now)
                    taken.payment.card_id = card_row.id
                credit_top_up(session, workspace, taken.payment, now)
                outcome = ToppedUp(taken.payment.id, money)
        idempotency.complete(session, workspace_id, key, to_response(outcome))
        return outcome
