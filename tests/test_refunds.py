"""Operator refunds: full or partial, to the card or to the balance, with credit notes."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from test_checkout import checkout, quote

from gateway.core.errors import DomainError
from gateway.core.statuses import RefundDestination
from gateway.server.cli import main
from gateway.services.refunds import refund_payment
from gateway.storage.db import Invoice, LedgerEntry, Payment, Refund, Workspace

from helpers import assert_events_as_documented, billing, card, events, rows

METHOD, BALANCE = RefundDestination.METHOD, RefundDestination.BALANCE


@pytest.fixture
def paid(graphql, make_workspace):
    return pay_by_card(graphql, make_workspace)


def pay_by_card(graphql, make_workspace):
    """Free → Omnichannel paid by card: 113.05 (95.00 + 18.05 VAT); the workspace and payment id."""
    member = make_workspace("Refund Ltd")
    billing(graphql, member)
    offer = quote(graphql, member, "omnichannel")
    done = checkout(graphql, member, "omnichannel", offer, payment={"method": "card", "newCard": card()})
    assert done["__typename"] == "CheckoutSuccess", done
    return member, done["payment"]["id"]


def credit_notes(gateway, member) -> list[Invoice]:
    return [i for i in rows(gateway, Invoice, member) if i.kind == "credit_note"]


def test_a_full_refund_to_the_card_makes_a_credit_note(gateway, paid):
    member, payment_id = paid
    outcome = refund_payment(gateway, payment_id, None, METHOD, "goodwill", "r-1")
    assert (outcome.status, outcome.amount.amount, outcome.credit_note_number) == (
        "succeeded",
        Decimal("113.05"),
        f"CN-{gateway.clock().year}-000001",
    )
    [payment] = [p for p in rows(gateway, Payment, member) if p.id == payment_id]
    assert payment.status == "refunded" and payment.refund_reference.startswith("re_sandbox_")
    [note] = credit_notes(gateway, member)
    [invoice] = [i for i in rows(gateway, Invoice, member) if i.kind == "checkout"]
    assert (note.subtotal_minor, note.tax_minor, note.total_minor) == (-9500, -1805, -11305)
    assert note.credited_invoice_id == invoice.id and invoice.status == "paid"
    assert "Credit for invoice" in note.lines[0]["description"]
    [(_, _, payload)] = [e for e in events(gateway, member) if e[1] == "payment.refunded"]
    assert payload["full"] is True and payload["credit_note_number"] == note.number
    # The same key again: the same refund, nothing more.
    again = refund_payment(gateway, payment_id, None, METHOD, "goodwill", "r-1")
    assert again == outcome and len(rows(gateway, Refund, member)) == 1
    with pytest.raises(DomainError) as refused:
        refund_payment(gateway, payment_id, Decimal("1.00"), METHOD, "more", "r-2")
    assert refused.value.error_code.value == "PAYMENT_NOT_REFUNDABLE"


def test_a_refund_the_card_processor_refuses_gives_nothing_back(gateway, paid):
    member, payment_id = paid
    with gateway.sessions.begin() as session:  # the processor no longer knows the charge
        session.get(Payment, payment_id).reference = "ch_unknown"
    outcome = refund_payment(gateway, payment_id, Decimal("10.00"), METHOD, "goodwill", "r-1")
    assert (outcome.status, outcome.credit_note_number) == ("failed", None)
    assert credit_notes(gateway, member) == []
    [(_, _, payload)] = [e for e in events(gateway, member) if e[1] == "refund.failed"]
    assert payload == {
        "refund_id": rows(gateway, Refund, member)[0].id,
        "payment_id": payment_id,
        "amount": "10.00",
        "currency": "EUR",
        "message": "The payment is unknown to the sandbox processor.",
    }
    assert "refund.failed" in assert_events_as_documented(gateway, member)
    [payment] = [p for p in rows(gateway, Payment, member) if p.id == payment_id]
    assert payment.status == "succeeded"  # still the customer's payment, refundable later


def test_partial_refunds_to_the_balance_never_exceed_the_payment(gateway, paid):
    member, payment_id = paid
    first = refund_payment(gateway, payment_id, Decimal("10.00"), BALANCE, "partial", "p-1")
    assert first.status == "succeeded"
    [note] = credit_notes(gateway, member)
    assert (note.subtotal_minor, note.tax_minor, note.total_minor) == (-840, -160, -1000)
    with gateway.sessions() as session:
        assert session.get(Workspace, member.id).balance_minor == 1000
    assert [(e.kind, e.amount_minor) for e in rows(gateway, LedgerEntry, member)] == [("refund", 1000)]
    with pytest.raises(DomainError) as refused:
        refund_payment(gateway, payment_id, Decimal("103.06"), BALANCE, "too much", "p-2")
    assert refused.value.error_code.value == "REFUND_EXCEEDS_PAYMENT"
    assert len(rows(gateway, Refund, member)) == 1  # the refusal wrote nothing
    last = refund_payment(gateway, payment_id, Decimal("103.05"), BALANCE, "the rest", "p-3")
    assert last.status == "succeeded"
    [payment] = [p for p in rows(gateway, Payment, member) if p.id == payment_id]
    assert payment.status == "refunded"
    assert sum(n.total_minor for n in credit_notes(gateway, member)) == -11305
    numbers = sorted(n.number for n in credit_notes(gateway, member))
    assert [n[-6:] for n in numbers] == ["000001", "000002"]  # gap-free, their own series


def test_concurrent_refunds_never_exceed_what_was_paid(gateway, paid):
    member, payment_id = paid
    barrier = threading.Barrier(4)
    outcomes: list[object] = []

    def refund(index: int) -> None:
        barrier.wait()
        try:
            outcomes.append(
                refund_payment(gateway, payment_id, Decimal("60.00"), BALANCE, "race", f"c-{index}")
            )
        except DomainError as error:
            outcomes.append(error.error_code.value)

    threads = [threading.Thread(target=refund, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(o if isinstance(o, str) else "ok" for o in outcomes) == [
        "REFUND_EXCEEDS_PAYMENT",
        "REFUND_EXCEEDS_PAYMENT",
        "REFUND_EXCEEDS_PAYMENT",
        "ok",
    ]
    with gateway.sessions() as session:
        assert session.get(Workspace, member.id).balance_minor == 6000


def test_refusals(gateway):
    with pytest.raises(DomainError) as unknown:
        refund_payment(gateway, "nope", None, METHOD, "", "x")
    assert unknown.value.error_code.value == "UNKNOWN_PAYMENT"


def test_the_refund_command(cli_env, capsys, gateway, paid):
    member, payment_id = paid
    assert (
        main(["payments", "refund", payment_id, "--amount", "5.00", "--to", "balance", "--reason", "late"])
        == 0
    )
    out = capsys.readouterr().out
    assert "5.00 EUR to balance: succeeded, credit note CN-" in out
    assert main(["payments", "refund", payment_id, "--amount", "500.00"]) == 1
    assert "can still be refunded" in capsys.readouterr().err
    assert len(rows(gateway, Refund, member)) == 1
