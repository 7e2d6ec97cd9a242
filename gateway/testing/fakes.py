"""Test doubles and values shared by the conformance suites (and usable in a plugin's own tests)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime

from gateway.core.money import Money, money_sum
from gateway.plugin_api.payments import CardDetails, ChargeRequest, LedgerEntryKind, StoredCard

__all__ = [
    "DEFAULT_ACTION_CARD",
    "DEFAULT_CARD",
    "LedgerEntry",
    "MemoryLedger",
    "card_details",
    "charge_request",
    "fresh_key",
]

DEFAULT_CARD = "4242424242424242"  # succeeds in the usual processors' test modes
DEFAULT_ACTION_CARD = "4000002760003184"  # asks for 3-D Secure in the usual test modes


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    id: str
    kind: LedgerEntryKind
    amount: Money  # signed: a charge is negative
    key: str
    description: str


class MemoryLedger:
    """An in-memory :class:`~gateway.plugin_api.payments.Ledger` that honours the protocol as
    the gateway's own does: entries are idempotent by key (per kind), a debit the balance does
    not cover takes nothing and answers None, and the balance never goes below zero."""

    def __init__(self, currency: str = "EUR", balance: Money | None = None) -> None:
        self.currency = currency
        self.entries: list[LedgerEntry] = []
        if balance is not None and balance.amount:
            self._append(LedgerEntryKind.TOP_UP, balance, f"top-up-{secrets.token_hex(8)}", "Top-up")

    def balance(self) -> Money:
        return money_sum((entry.amount for entry in self.entries), self.currency).rounded()

    def debit(self, amount: Money, key: str, description: str) -> str | None:
        self._check(amount)
        if (found := self._find(LedgerEntryKind.CHARGE, key)) is not None:
            return found
        if self.balance() < amount:
            return None
        return self._append(LedgerEntryKind.CHARGE, -amount, key, description)

    def credit(self, amount: Money, key: str, description: str) -> str:
        self._check(amount)
        if (found := self._find(LedgerEntryKind.REFUND, key)) is not None:
            return found
        return self._append(LedgerEntryKind.REFUND, amount, key, description)

    def entry(self, key: str) -> str | None:
        return self._find(LedgerEntryKind.CHARGE, key)

    def of_kind(self, kind: LedgerEntryKind) -> list[LedgerEntry]:
        return [entry for entry in self.entries if entry.kind is kind]

    def _check(self, amount: Money) -> None:
        if not isinstance(amount, Money) or amount.currency != self.currency:
            raise ValueError(f"the ledger is in {self.currency}, not {amount!r}")
        if amount.amount <= 0 or not amount.is_rounded:
            raise ValueError(f"ledger amounts are positive and rounded, not {amount}")

    def _find(self, kind: LedgerEntryKind, key: str) -> str | None:
        return next((e.id for e in self.entries if e.kind is kind and e.key == key), None)

    def _append(self, kind: LedgerEntryKind, amount: Money, key: str, description: str) -> str:
        entry = LedgerEntry(f"le_{secrets.token_hex(8)}", kind, amount, key, description)
        self.entries.append(entry)
        return entry.id

    def __repr__(self) -> str:
        return f"MemoryLedger({self.balance()}, {len(self.entries)} entries)"


def fresh_key(label: str = "conformance") -> str:
    """An idempotency key no processor has seen (at most 64 characters)."""
    return f"{label[:30]}-{secrets.token_hex(12)}"


def card_details(number: str, today: date, cvc: str | None = None) -> CardDetails:
    """``number`` as a customer would type it: valid for three more years, with a CVC of the
    brand's length (four digits for American Express)."""
    if cvc is None:
        cvc = "7314" if number.startswith(("34", "37")) else "731"
    return CardDetails(
        number=number, exp_month=12, exp_year=today.year + 3, cvc=cvc, holder_name="Ada Lovelace"
    )


def charge_request(
    amount: Money,
    key: str | None = None,
    *,
    off_session: bool = False,
    card: StoredCard | None = None,
    requested_at: datetime | None = None,
) -> ChargeRequest:
    key = key if key is not None else fresh_key()
    return ChargeRequest(
        payment_id=f"pay_{key[-24:]}",
        workspace_id="ws_conformance",
        amount=amount,
        description="Conformance kit: Email plan",
        idempotency_key=key,
        requested_at=requested_at or datetime.now(UTC),
        off_session=off_session,
        card=card,
    )
