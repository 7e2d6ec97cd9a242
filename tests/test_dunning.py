"""Dunning: retries of failed renewals, hard declines, suspension, and paying open invoices."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from test_renewal import BOUNDARY, RECORD, add_card, pay_renewals_with, top_up

from gateway.services.dunning import run_dunning
from gateway.services.renewal import RenewalStatus, renew_due
from gateway.storage.db import Invoice, Payment, Workspace

from helpers import billing, card, events, rows

PAY = """mutation($input: PayInvoiceInput!) { payInvoice(input: $input) { __typename
  ... on UserError { code field message }
  ... on InvoicePaid { invoice { number status } workspace { status } payment { method status } } } }"""
CHECKOUT_FREE = """mutation($input: CheckoutInput!) { checkout(input: $input) { __typename
  ... on UserError { code message } ... on WorkspaceSuspended { amountDue { amount } } } }"""
DUE = 2678  # minor units: an Email renewal at 10,000 credits, German VAT included


@pytest.fixture
def failed(gateway, graphql, make_workspace, clock):
    """An Email workspace whose renewal failed at BOUNDARY: the balance (0.00) did not cover it."""
    member = make_workspace("Dunned", plan_code="email", email_credits=10000)
    billing(graphql, member)
    pay_renewals_with(gateway, member, "balance")
    clock.now = BOUNDARY
    [result] = renew_due(gateway, BOUNDARY)
    assert result.status is RenewalStatus.PAYMENT_FAILED
    return member


def invoice_of(gateway, member) -> Invoice:
    [invoice] = [i for i in rows(gateway, Invoice, member) if i.status == "open"] or rows(
        gateway, Invoice, member
    )
    return invoice


def status_of(gateway, member) -> str:
    with gateway.sessions() as session:
        return session.get(Workspace, member.id).status


def kinds(gateway, member) -> list[str]:
    return [kind for _, kind, _ in events(gateway, member)]


def test_the_first_failure_schedules_retries_and_says_so(gateway, failed):
    invoice = invoice_of(gateway, failed)
    assert (invoice.attempts, invoice.first_failed_at, invoice.next_retry_at) == (
        1,
        BOUNDARY,
        BOUNDARY + timedelta(days=1),
    )
    [payload] = [p for _, kind, p in events(gateway, failed) if kind == "invoice.payment_failed"]
    assert payload["attempt"] == 1 and payload["reason"] == "insufficient_balance"
    assert payload["hard_decline"] is False
    assert payload["next_retry_at"] == (BOUNDARY + timedelta(days=1)).isoformat()


def test_retries_follow_the_schedule_and_a_later_success_reactivates(gateway, failed, clock):
    assert run_dunning(gateway, BOUNDARY + timedelta(hours=23)) == []  # not due yet
    clock.now = BOUNDARY + timedelta(days=1)
    [step] = run_dunning(gateway, clock.now)
    assert (step.action, step.outcome) == ("retried", "PaymentDeclined")
    invoice = invoice_of(gateway, failed)
    assert (invoice.attempts, invoice.next_retry_at) == (2, BOUNDARY + timedelta(days=3))
    assert status_of(gateway, failed) == "past_due"

    top_up(gateway, failed, "30.00")
    clock.now = BOUNDARY + timedelta(days=3)
    [step] = run_dunning(gateway, clock.now)
    assert step.outcome == "InvoicePaid"
    invoice = invoice_of(gateway, failed)
    assert (invoice.status, invoice.next_retry_at) == ("paid", None)
    assert status_of(gateway, failed) == "active"
    assert kinds(gateway, failed)[-2:] == ["invoice.paid", "workspace.reactivated"]
    retries = [p for p in rows(gateway, Payment, failed) if p.purpose == "invoice"]
    assert [p.status for p in retries] == ["failed", "succeeded"]
    assert run_dunning(gateway, BOUNDARY + timedelta(days=10)) == []  # nothing left to collect


def test_a_hard_decline_is_not_retried_on_the_same_method(gateway, graphql, make_workspace, clock):
    member = make_workspace("Expired card", plan_code="email", email_credits=10000)
    billing(graphql, member)
    add_card(graphql, member, "4000000000000069")  # saves fine, every charge: expired_card
    clock.now = BOUNDARY
    [result] = renew_due(gateway, BOUNDARY)
    assert result.reason == "expired_card"
    invoice = invoice_of(gateway, member)
    assert (invoice.hard_declined, invoice.next_retry_at) == (True, None)
    assert run_dunning(gateway, BOUNDARY + timedelta(days=8)) == []
    # The customer adds another card for renewals: the next run tries it.
    add_card(graphql, member, "4242424242424242")
    clock.now = BOUNDARY + timedelta(days=8)
    [step] = run_dunning(gateway, clock.now)
    assert step.outcome == "InvoicePaid"
    assert status_of(gateway, member) == "active"


def test_past_due_beyond_the_grace_suspends_and_paying_reactivates(gateway, graphql, failed, clock):
    for day in (1, 3, 5, 7):
        clock.now = BOUNDARY + timedelta(days=day)
        run_dunning(gateway, clock.now)
    assert invoice_of(gateway, failed).attempts == 5 and invoice_of(gateway, failed).next_retry_at is None
    clock.now = BOUNDARY + timedelta(days=14)
    [step] = run_dunning(gateway, clock.now)
    assert step.action == "suspended" and status_of(gateway, failed) == "suspended"
    assert run_dunning(gateway, clock.now) == []  # idempotent
    [suspended] = [p for _, kind, p in events(gateway, failed) if kind == "workspace.suspended"]
    assert suspended["amount_due"] == "26.78"

    # What is refused: usage and orders; what still works: reading and paying.
    refused = graphql(RECORD, {"input": {"messageType": "EMAIL", "quantity": 1}}, key=failed.key)
    assert refused["recordUsage"]["__typename"] == "WorkspaceSuspended"
    invoice = invoice_of(gateway, failed)
    paid = graphql(
        PAY,
        {
            "input": {
                "invoiceId": invoice.id,
                "paymentMethod": {"method": "card", "newCard": card()},
                "idempotencyKey": "pay-1",
            }
        },
        key=failed.key,
    )["payInvoice"]
    assert paid["__typename"] == "InvoicePaid", paid
    assert paid["invoice"]["status"] == "PAID" and paid["workspace"]["status"] == "ACTIVE"
    assert kinds(gateway, failed)[-2:] == ["invoice.paid", "workspace.reactivated"]
    allowed = graphql(RECORD, {"input": {"messageType": "EMAIL", "quantity": 1}}, key=failed.key)
    assert allowed["recordUsage"]["__typename"] == "UsageRecorded"


def test_pay_invoice_refusals_change_nothing(gateway, graphql, failed, make_workspace):
    other = make_workspace("Other")
    invoice = invoice_of(gateway, failed)

    def pay(member, invoice_id, key, method=None):
        method = method or {"method": "card", "newCard": card()}
        variables = {"input": {"invoiceId": invoice_id, "paymentMethod": method, "idempotencyKey": key}}
        return graphql(PAY, variables, key=member.key)["payInvoice"]

    assert pay(other, invoice.id, "x")["code"] == "UNKNOWN_INVOICE"  # another workspace's invoice
    assert pay(failed, "nope", "y")["code"] == "UNKNOWN_INVOICE"
    short = pay(failed, invoice.id, "z", {"method": "balance"})
    assert short["__typename"] == "InsufficientBalance"
    assert [p.purpose for p in rows(gateway, Payment, failed)] == ["renewal"]
    first = pay(failed, invoice.id, "pay-1")
    assert first["__typename"] == "InvoicePaid"
    assert pay(failed, invoice.id, "pay-1") == first  # the same key: the same answer, no new payment
    assert pay(failed, invoice.id, "pay-2")["code"] == "INVOICE_NOT_OPEN"
    assert len([p for p in rows(gateway, Payment, failed) if p.purpose == "invoice"]) == 1


def test_concurrent_dunning_runs_retry_once(gateway, failed, clock):
    clock.now = BOUNDARY + timedelta(days=1)
    barrier = threading.Barrier(4)
    results: list[list] = []

    def run() -> None:
        barrier.wait()
        results.append(run_dunning(gateway, clock.now))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sum(len(steps) for steps in results) == 1
    assert len([p for p in rows(gateway, Payment, failed) if p.purpose == "invoice"]) == 1
    assert invoice_of(gateway, failed).attempts == 2
