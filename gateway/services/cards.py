"""Cards: the customer's payment choice, tokenizing a new card, saved cards, and the
renewal method that may name one ("card:<id>")."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.core.errors import ErrorCode, PaymentRefused
from gateway.events.outbox import EventType, emit
from gateway.plugin_api.payments import (
    Capability,
    CardDetails,
    CardError,
    CardMethod,
    PaymentMethod,
    StoredCard,
)
from gateway.services.deps import Deps
from gateway.storage.db import Card, Workspace


def renewal_choice(method_code: str, card_id: str | None = None) -> str:
    """``Workspace.renewal_payment`` for a method, with the saved card it charges if any:
    ``"balance"``, ``"card:<card id>"``, ``"sepa"``..."""
    return f"{method_code}:{card_id}" if card_id is not None else method_code


def parse_renewal_choice(renewal_payment: str) -> tuple[str, str | None]:
    """The method code and saved card id a ``Workspace.renewal_payment`` names."""
    method_code, _, card_id = renewal_payment.partition(":")
    return method_code, card_id or None


def renewal_card_id(renewal_payment: str | None) -> str | None:
    """The saved card a renewal method names, or None."""
    return parse_renewal_choice(renewal_payment)[1] if renewal_payment else None


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


def keyed_fingerprint(key: bytes, fingerprint: str) -> str:
    """The processor's card fingerprint under this installation's own key: what is stored and
    shown (``SavedCard.fingerprint``). A processor's fingerprint may be derivable from the card
    number (the sandbox's is an HMAC under a public constant, so a number was recoverable from
    it and the last four digits); without the key, this one is not."""
    return hmac.new(key, b"card-fingerprint\x00" + fingerprint.encode(), hashlib.sha256).hexdigest()[:32]


def tokenize(
    deps: Deps,
    method: PaymentMethod | None,
    choice: PaymentChoice,
    today: date,
    path: tuple[str, ...] = ("payment_method", "new_card"),
) -> StoredCard | None:
    """The new card of ``choice`` tokenized by ``method`` if it is a card method, before the
    request claims its idempotency key; None when there is no new card to tokenize. Its
    fingerprint is the :func:`keyed_fingerprint`. A card that fails the method's checks is a
    :class:`PaymentRefused` naming the field."""
    if (
        choice.card_id is not None
        or choice.new_card is None
        or method is None
        or Capability.CARDS not in method.capabilities
    ):
        return None
    assert isinstance(method, CardMethod), "the registry checks that CARDS methods tokenize"
    try:
        token = method.tokenize(choice.new_card, today)
    except CardError as error:
        raise PaymentRefused(
            ErrorCode[f"CARD_{error.code.name}"], error.message, (*path, error.field)
        ) from None
    return dataclasses.replace(
        token, fingerprint=keyed_fingerprint(deps.card_fingerprint_key, token.fingerprint)
    )


def saved_card(
    session: Session, workspace_id: str, card_id: str, field: tuple[str, ...] = ("payment_method", "card_id")
) -> Card:
    """The workspace's saved card ``card_id``, or :class:`PaymentRefused` (UNKNOWN_CARD)."""
    row = session.get(Card, card_id)
    if row is None or row.workspace_id != workspace_id or row.removed_at is not None:
        raise PaymentRefused(ErrorCode.UNKNOWN_CARD, f"no saved card {card_id!r}", field)
    return row


def require_card(choice: PaymentChoice, token: StoredCard | None) -> StoredCard:
    """The new card of a choice without a saved one, or :class:`PaymentRefused` (CARD_REQUIRED)."""
    if choice.new_card is None:
        raise PaymentRefused(
            ErrorCode.CARD_REQUIRED, "choose a saved card or enter a new one", ("payment_method",)
        )
    assert token is not None, "a new card for a card method is tokenized before the request starts"
    return token


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
