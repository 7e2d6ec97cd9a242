"""The payment_balance plugin, exercised through its hook against an in-memory ledger that
honours the Ledger protocol (gateway.testing.fakes.MemoryLedger)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

import billing_gateway_payment_balance as plugin
from gateway.core.money import Money
from gateway.plugin_api.payments import (
    Capability,
    ChargeRequest,
    FailureCode,
    LedgerEntryKind,
    PaymentMethod,
    PaymentStatus,
)
from gateway.testing.fakes import MemoryLedger

from helpers import eur

SUCCEEDED, FAILED = PaymentStatus.SUCCEEDED, PaymentStatus.FAILED


@pytest.fixture
def method() -> PaymentMethod:
    registered: list[PaymentMethod] = []
    plugin.register_payment_methods(register=registered.append)
    assert len(registered) == 1
    return registered[0]


def ledger_with(top_up: str) -> MemoryLedger:
    return MemoryLedger("EUR", eur(top_up))


def request(amount: str, key: str = "checkout-1", off_session: bool = False) -> ChargeRequest:
    return ChargeRequest(
        payment_id="pay_1",
        workspace_id="ws_1",
        amount=eur(amount),
        description="Email plan",
        idempotency_key=key,
        requested_at=datetime(2026, 11, 10, 9, 30, tzinfo=UTC),
        off_session=off_session,
    )


def charges(ledger: MemoryLedger) -> list[Money]:
    return [entry.amount for entry in ledger.of_kind(LedgerEntryKind.CHARGE)]


def test_hook_registers_the_balance_method(method: PaymentMethod) -> None:
    assert isinstance(method, PaymentMethod)
    assert (method.code, method.label) == ("balance", "My balance")
    assert method.capabilities == {
        Capability.PAY_NOW,
        Capability.OFF_SESSION,
        Capability.REFUND,
        Capability.PREPAID_BALANCE,
    }
    assert repr(method) == "BalancePaymentMethod()"


def test_the_in_memory_ledger_honours_the_protocol() -> None:
    ledger = ledger_with("50.00")
    first = ledger.debit(eur("12.50"), "k", "x")
    assert first is not None and ledger.debit(eur("12.50"), "k", "x") == first  # idempotent by key
    assert ledger.entry("k") == first and ledger.entry("other") is None
    assert ledger.debit(eur("37.51"), "k2", "x") is None  # does not cover: nothing taken
    assert ledger.balance() == eur("37.50")
    assert MemoryLedger("EUR").balance() == Money.zero("EUR")
    with pytest.raises(ValueError, match="ledger is in EUR"):
        ledger.debit(Money("1.00", "USD"), "k3", "x")


@pytest.mark.parametrize("off_session", [False, True])
def test_charge_within_balance_debits_once(method: PaymentMethod, off_session: bool) -> None:
    ledger = ledger_with("50.00")
    result = method.charge(request("20.00", off_session=off_session), ledger)
    assert result.status is SUCCEEDED and result.failure is None
    [charge] = ledger.of_kind(LedgerEntryKind.CHARGE)
    assert result.reference == charge.id
    assert (charge.amount, charge.key, charge.description) == (eur("-20.00"), "checkout-1", "Email plan")
    assert ledger.balance() == eur("30.00")


def test_charge_of_exactly_the_balance_succeeds(method: PaymentMethod) -> None:
    ledger = ledger_with("20.00")
    assert method.charge(request("20.00"), ledger).status is SUCCEEDED
    assert ledger.balance() == Money.zero("EUR")


@pytest.mark.parametrize(("top_up", "amount"), [("20.00", "20.01"), ("0.00", "0.01"), ("19.99", "100.00")])
def test_charge_above_the_balance_fails_and_takes_nothing(
    method: PaymentMethod, top_up: str, amount: str
) -> None:
    ledger = ledger_with(top_up)
    before = list(ledger.entries)
    result = method.charge(request(amount), ledger)
    assert (result.status, result.failure) == (FAILED, FailureCode.INSUFFICIENT_BALANCE)
    assert result.message and top_up in result.message and amount in result.message
    assert ledger.entries == before and ledger.balance() == eur(top_up)


def test_the_same_key_charges_once_and_answers_the_same(method: PaymentMethod) -> None:
    ledger = ledger_with("50.00")
    first = method.charge(request("20.00"), ledger)
    again = method.charge(request("20.00"), ledger)
    assert again == first
    assert charges(ledger) == [eur("-20.00")] and ledger.balance() == eur("30.00")


def test_successive_charges_spend_the_balance_down(method: PaymentMethod) -> None:
    ledger = ledger_with("30.00")
    assert method.charge(request("20.00", "k1"), ledger).status is SUCCEEDED
    assert method.charge(request("20.00", "k2"), ledger).failure is FailureCode.INSUFFICIENT_BALANCE
    assert method.charge(request("10.00", "k3"), ledger).status is SUCCEEDED
    assert ledger.balance() == Money.zero("EUR")
    assert charges(ledger) == [eur("-20.00"), eur("-10.00")]


def test_status_reports_the_charge_or_that_nothing_moved(method: PaymentMethod) -> None:
    ledger = ledger_with("50.00")
    never = method.status(request("20.00"), None, ledger)
    assert (never.status, never.failure) == (FAILED, FailureCode.PROCESSING_ERROR)
    charged = method.charge(request("20.00"), ledger)
    assert method.status(request("20.00"), charged.reference, ledger) == charged
    assert method.status(request("20.00"), None, ledger) == charged  # after a crash: found by key
    assert ledger.balance() == eur("30.00")


def test_cancel_reports_the_outcome_as_it_stands(method: PaymentMethod) -> None:
    ledger = ledger_with("50.00")
    assert method.cancel(request("20.00"), None, ledger).status is FAILED  # nothing in flight
    charged = method.charge(request("20.00"), ledger)
    assert method.cancel(request("20.00"), charged.reference, ledger) == charged  # a debit is immediate
    assert ledger.balance() == eur("30.00")


def test_refund_credits_once_per_key(method: PaymentMethod) -> None:
    ledger = ledger_with("50.00")
    charged = method.charge(request("20.00"), ledger)
    assert charged.reference is not None
    refund = method.refund(request("20.00"), charged.reference, eur("5.00"), "refund-1", ledger)
    assert refund.status is SUCCEEDED
    [entry] = ledger.of_kind(LedgerEntryKind.REFUND)
    assert refund.reference == entry.id != charged.reference
    assert (entry.amount, entry.key, entry.description) == (eur("5.00"), "refund-1", "Refund: Email plan")
    assert method.refund(request("20.00"), charged.reference, eur("5.00"), "refund-1", ledger) == refund
    assert ledger.balance() == eur("35.00")
    second = method.refund(request("20.00"), charged.reference, eur("5.00"), "refund-2", ledger)
    assert second.status is SUCCEEDED and second.reference != refund.reference
    assert ledger.balance() == eur("40.00")


def test_refund_of_a_payment_the_balance_never_paid_is_refused(method: PaymentMethod) -> None:
    ledger = ledger_with("5.00")
    declined = method.charge(request("20.00"), ledger)
    assert declined.status is FAILED
    result = method.refund(request("20.00"), "le_unknown", eur("20.00"), "refund-1", ledger)
    assert (result.status, result.failure) == (FAILED, FailureCode.PROCESSING_ERROR)
    assert not ledger.of_kind(LedgerEntryKind.REFUND) and ledger.balance() == eur("5.00")


def test_confirm_is_refused_because_balance_payments_need_no_action(method: PaymentMethod) -> None:
    result = method.confirm(request("20.00"), "le_1", "authenticated")
    assert (result.status, result.failure) == (FAILED, FailureCode.PROCESSING_ERROR)
