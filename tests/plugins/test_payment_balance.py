"""The payment_balance plugin, exercised through its hook against an in-memory ledger."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

import billing_gateway_payment_balance as plugin
from gateway.core.money import Money, money_sum
from gateway.plugin_api.payments import (
    ChargeRequest,
    FailureCode,
    Ledger,
    LedgerEntryKind,
    PaymentKind,
    PaymentMethod,
    PaymentStatus,
)

from helpers import eur


@dataclass(frozen=True)
class Entry:
    id: str
    kind: LedgerEntryKind
    amount: Money
    reference: str | None
    description: str


class MemoryLedger:
    """A faithful in-memory :class:`gateway.plugin_api.payments.Ledger`: append-only, balance = sum of entries."""

    def __init__(self, currency: str = "EUR") -> None:
        self.currency = currency
        self.entries: list[Entry] = []

    def balance(self) -> Money:
        return money_sum((e.amount for e in self.entries), self.currency)

    def append(self, kind: LedgerEntryKind, amount: Money, reference: str | None, description: str) -> str:
        if amount.currency != self.currency:
            raise ValueError(f"a {self.currency} ledger cannot take {amount.currency}")
        entry = Entry(f"le_{len(self.entries) + 1}", kind, amount, reference, description)
        self.entries.append(entry)
        return entry.id


@pytest.fixture
def method() -> PaymentMethod:
    registered: list[PaymentMethod] = []
    plugin.register_payment_methods(register=registered.append)
    assert len(registered) == 1
    return registered[0]


def ledger_with(top_up: str) -> MemoryLedger:
    ledger = MemoryLedger()
    ledger.append(LedgerEntryKind.TOP_UP, eur(top_up), "topup-1", "Top-up")
    return ledger


def request(amount: str, key: str = "checkout-1") -> ChargeRequest:
    return ChargeRequest(
        workspace_id="ws_1", amount=eur(amount), description="Email plan", idempotency_key=key
    )


def test_hook_registers_the_balance_method(method: PaymentMethod) -> None:
    assert isinstance(method, PaymentMethod)
    assert (method.code, method.label, method.kind) == ("balance", "My balance", PaymentKind.BALANCE)


def test_the_in_memory_ledger_is_the_sum_of_its_entries() -> None:
    ledger: Ledger = ledger_with("50.00")
    ledger.append(LedgerEntryKind.CHARGE, eur("-12.50"), None, "x")
    assert ledger.balance() == eur("37.50")
    assert MemoryLedger("EUR").balance() == Money.zero("EUR")


def test_charge_within_balance_appends_a_negative_entry(method: PaymentMethod) -> None:
    ledger = ledger_with("50.00")
    result = method.charge(request("20.00"), ledger)
    assert result.status is PaymentStatus.SUCCEEDED
    assert result.failure is None
    charge = ledger.entries[-1]
    assert len(ledger.entries) == 2
    assert result.reference == charge.id
    assert (charge.kind, charge.amount, charge.reference, charge.description) == (
        LedgerEntryKind.CHARGE,
        eur("-20.00"),
        "checkout-1",
        "Email plan",
    )
    assert ledger.balance() == eur("30.00")


def test_charge_of_exactly_the_balance_succeeds(method: PaymentMethod) -> None:
    ledger = ledger_with("20.00")
    result = method.charge(request("20.00"), ledger)
    assert result.status is PaymentStatus.SUCCEEDED
    assert ledger.balance() == Money.zero("EUR")


@pytest.mark.parametrize(("top_up", "amount"), [("20.00", "20.01"), ("0.00", "0.01"), ("19.99", "100.00")])
def test_charge_above_the_balance_fails_and_appends_nothing(
    method: PaymentMethod, top_up: str, amount: str
) -> None:
    ledger = ledger_with(top_up)
    before = list(ledger.entries)
    result = method.charge(request(amount), ledger)
    assert result.status is PaymentStatus.FAILED
    assert result.failure is FailureCode.INSUFFICIENT_BALANCE
    assert result.message and top_up in result.message and amount in result.message
    assert ledger.entries == before
    assert ledger.balance() == eur(top_up)


def test_charge_on_an_empty_ledger_fails(method: PaymentMethod) -> None:
    ledger = MemoryLedger()
    result = method.charge(request("1.00"), ledger)
    assert result.failure is FailureCode.INSUFFICIENT_BALANCE
    assert ledger.entries == []


def test_successive_charges_spend_the_balance_down(method: PaymentMethod) -> None:
    ledger = ledger_with("30.00")
    assert method.charge(request("20.00", "k1"), ledger).status is PaymentStatus.SUCCEEDED
    assert method.charge(request("20.00", "k2"), ledger).failure is FailureCode.INSUFFICIENT_BALANCE
    assert method.charge(request("10.00", "k3"), ledger).status is PaymentStatus.SUCCEEDED
    assert ledger.balance() == Money.zero("EUR")
    assert [e.kind for e in ledger.entries] == [
        LedgerEntryKind.TOP_UP,
        LedgerEntryKind.CHARGE,
        LedgerEntryKind.CHARGE,
    ]


def test_refund_appends_a_positive_entry(method: PaymentMethod) -> None:
    ledger = ledger_with("50.00")
    charged = method.charge(request("20.00"), ledger)
    assert charged.reference is not None
    result = method.refund(charged.reference, eur("5.00"), ledger)
    assert result.status is PaymentStatus.SUCCEEDED
    refund = ledger.entries[-1]
    assert result.reference == refund.id != charged.reference
    assert (refund.kind, refund.amount, refund.reference) == (
        LedgerEntryKind.REFUND,
        eur("5.00"),
        charged.reference,
    )
    assert ledger.balance() == eur("35.00")


def test_confirm_is_refused_because_balance_payments_need_no_action(method: PaymentMethod) -> None:
    result = method.confirm("le_1", "authenticated")
    assert result.status is PaymentStatus.FAILED
    assert result.failure is FailureCode.PROCESSING_ERROR
