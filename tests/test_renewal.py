"""Renewal at the period boundary: scheduled changes, credit reset, the renewal charge,
its invoice and events; idempotent, also concurrently; failures lose nothing.

Prices (bundled catalog, EUR): Email 15.00/month with 5,000 credits included, 0.0015
per credit up to 50,000; Omnichannel 39.00 with 5,000 email and 1,000 messaging
credits included, 0.0012 per email credit up to 50,000, 0.0095 per messaging credit
up to 20,000. The clock starts at 2026-11-10 09:30 UTC, so the first period ends
2026-12-10 09:30. Tests pass ``now`` in; none sleeps.
"""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select

from gateway.core.money import Money
from gateway.plugin_api.payments import LedgerEntryKind
from gateway.server.cli import main
from gateway.server.http import run_periodically
from gateway.server.settings import Settings, SettingsError
from gateway.services.renewal import RenewalStatus, renew_due
from gateway.storage.db import (
    Invoice,
    LedgerEntry,
    Payment,
    Renewal,
    ScheduledChange,
    UsageCounter,
    Workspace,
)
from gateway.storage.ledger import SqlLedger, ledger_sum
from gateway.storage.locks import lock_workspace

from helpers import INVOICED_DETAILS, UPDATE_BILLING_DETAILS, billing, eur, events, rows, snapshot

BOUNDARY = datetime(2026, 12, 10, 9, 30, tzinfo=UTC)
NEXT_END = datetime(2027, 1, 10, 9, 30, tzinfo=UTC)

RECORD = """mutation($input: RecordUsageInput!) { recordUsage(input: $input) {
  __typename ... on UsageRecorded { credits } ... on UserError { code field message } } }"""
ADD_CARD = """mutation($input: AddCardInput!) { addCard(input: $input) {
  __typename ... on CardAdded { card { id isRenewalMethod } } ... on UserError { code field message } } }"""
WORKSPACE = """{ workspace { ... on Workspace {
  status plan { code } emailCredits messagingCredits period { start end } balance { amount }
  usage { periodStart periodEnd credits { kind used included remaining } }
  scheduledChange { plan { code } }
  invoices { number kind status subtotal { amount } tax { amount } total { amount } paymentMethod
             periodStart periodEnd taxLines { name rate base { amount } amount { amount } } billingDetails }
} } }"""


# ------------------------------------------------------------------ helpers


def top_up(gateway, member, amount: str) -> None:
    with gateway.write_sessions.begin() as session:
        workspace = lock_workspace(session, member.id)
        SqlLedger(session, workspace, gateway.clock()).append(
            LedgerEntryKind.TOP_UP, Money(amount, "EUR"), None, "test top-up"
        )


def pay_renewals_with(gateway, member, choice: str | None) -> None:
    with gateway.write_sessions.begin() as session:
        lock_workspace(session, member.id).renewal_payment = choice


def schedule(
    gateway, member, plan: str, email: int, messaging: int, effective_at: datetime = BOUNDARY
) -> None:
    with gateway.write_sessions.begin() as session:
        session.add(
            ScheduledChange(
                workspace_id=member.id,
                plan_code=plan,
                email_credits=email,
                messaging_credits=messaging,
                effective_at=effective_at,
                created_at=gateway.clock(),
            )
        )


def add_card(graphql, member, number: str) -> str:
    card = {"number": number, "expMonth": 12, "expYear": 2030, "cvc": "123"}
    input_ = {"card": card, "useForRenewal": True, "idempotencyKey": f"card-{number}"}
    result = graphql(ADD_CARD, {"input": input_}, key=member.key)["addCard"]
    assert result["__typename"] == "CardAdded", result
    assert result["card"]["isRenewalMethod"] is True
    return result["card"]["id"]


def workspace_row(gateway, member) -> Workspace:
    with gateway.sessions() as session:
        return session.get(Workspace, member.id)


# ------------------------------------------------------------------ the happy path


def test_renewal_applies_the_downgrade_resets_credits_charges_the_balance_and_invoices(
    gateway, graphql, make_workspace, clock
):
    member = make_workspace("Acme", plan_code="omnichannel", email_credits=50000, messaging_credits=10000)
    billing(graphql, member)
    top_up(gateway, member, "200.00")
    pay_renewals_with(gateway, member, "balance")
    assert graphql(RECORD, {"input": {"messageType": "EMAIL", "quantity": 1200}}, key=member.key)
    assert graphql(RECORD, {"input": {"messageType": "SMS", "country": "DE", "quantity": 10}}, key=member.key)
    schedule(gateway, member, "email", 10000, 0)
    clock.advance(days=29)  # the last day of the period: the old usage and the old plan
    before = graphql(WORKSPACE, key=member.key)["workspace"]
    assert before["usage"]["credits"] == [
        {"kind": "EMAIL", "used": "1200", "included": "50000", "remaining": "48800"},
        {"kind": "MESSAGING", "used": "75", "included": "10000", "remaining": "9925"},
    ]
    assert before["scheduledChange"] == {"plan": {"code": "email"}}

    results = renew_due(gateway, BOUNDARY)

    [result] = results
    assert result.status is RenewalStatus.RENEWED and result.applied_change
    assert (result.period_start, result.period_end) == (BOUNDARY, NEXT_END)
    # Email plan, 10,000 credits: 15.00 + 5,000 × 0.0015 = 22.50; VAT 19 % = 4.275 → 4.28; total 26.78
    assert result.amount == eur("26.78")
    clock.now = BOUNDARY
    after = graphql(WORKSPACE, key=member.key)["workspace"]
    assert after["status"] == "ACTIVE"
    assert after["plan"] == {"code": "email"}
    assert (after["emailCredits"], after["messagingCredits"]) == (10000, 0)
    assert after["period"] == {"start": BOUNDARY.isoformat(), "end": NEXT_END.isoformat()}
    assert after["usage"] == {
        "periodStart": BOUNDARY.isoformat(),
        "periodEnd": NEXT_END.isoformat(),
        "credits": [{"kind": "EMAIL", "used": "0", "included": "10000", "remaining": "10000"}],
    }
    assert after["scheduledChange"] is None
    assert after["balance"] == {"amount": "173.22"}
    [invoice] = after["invoices"]
    assert invoice == {
        "number": "INV-2026-000001",
        "kind": "renewal",
        "status": "PAID",
        "subtotal": {"amount": "22.50"},
        "tax": {"amount": "4.28"},
        "total": {"amount": "26.78"},
        "paymentMethod": "balance",
        "periodStart": BOUNDARY.isoformat(),
        "periodEnd": NEXT_END.isoformat(),
        "taxLines": [
            {
                "name": "VAT 19% (DE)",
                "rate": "0.19",
                "base": {"amount": "22.50"},
                "amount": {"amount": "4.28"},
            }
        ],
        "billingDetails": INVOICED_DETAILS,
    }
    [_top, charge] = sorted(rows(gateway, LedgerEntry, member), key=lambda entry: entry.amount_minor)[::-1]
    assert (charge.kind, charge.amount_minor, charge.balance_after_minor) == ("charge", -2678, 17322)
    assert charge.reference == f"renewal:{member.id}:20261210T093000Z"  # the payment's idempotency key
    with gateway.sessions() as session:
        assert ledger_sum(session, member.id) == 17322
    [payment] = rows(gateway, Payment, member)
    assert (payment.purpose, payment.method, payment.status, payment.amount_minor) == (
        "renewal",
        "balance",
        "succeeded",
        2678,
    )
    [renewal] = rows(gateway, Renewal, member)
    assert (renewal.period_start, renewal.status) == (BOUNDARY, "renewed")

    log = events(gateway, member)
    assert [sequence for sequence, _, _ in log] == list(range(1, len(log) + 1))
    assert [(type_, payload) for _, type_, payload in log] == [
        (
            "plan_change.applied",
            {
                "from": {"plan": "omnichannel", "email_credits": 50000, "messaging_credits": 10000},
                "to": {"plan": "email", "email_credits": 10000, "messaging_credits": 0},
                "effective_at": BOUNDARY.isoformat(),
                "reason": "renewal",
            },
        ),
        (
            "credits.reset",
            {
                "period_start": BOUNDARY.isoformat(),
                "period_end": NEXT_END.isoformat(),
                "plan": "email",
                "email_credits": 10000,
                "messaging_credits": 0,
            },
        ),
        (
            "renewal.completed",
            {
                "period_start": BOUNDARY.isoformat(),
                "period_end": NEXT_END.isoformat(),
                "plan": "email",
                "email_credits": 10000,
                "messaging_credits": 0,
                "total": "26.78",
                "currency": "EUR",
                "tax_calculated": True,
                "invoice_id": log[2][2]["invoice_id"],
                "invoice_number": "INV-2026-000001",
                "payment_id": payment.id,
                "payment_method": "balance",
            },
        ),
    ]


def test_a_downgrade_scheduled_through_checkout_applies_at_renewal(gateway, graphql, make_workspace):
    member = make_workspace("Acme", plan_code="omnichannel")
    billing(graphql, member)
    quote = graphql(
        """mutation { quote(input: {planCode: "email", emailCredits: 10000}) {
        ... on Quote { kind dueNow { total { amount } } expiresAt } } }""",
        key=member.key,
    )["quote"]
    assert quote["kind"] == "DOWNGRADE"
    checkout = graphql(
        """mutation($input: CheckoutInput!) { checkout(input: $input) { __typename
        ... on CheckoutSuccess { workspace { plan { code }
                                             scheduledChange { plan { code } effectiveAt } } } } }""",
        {
            "input": {
                "planCode": "email",
                "emailCredits": 10000,
                "expectedTotal": quote["dueNow"]["total"]["amount"],
                "quoteExpiresAt": quote["expiresAt"],
                "paymentMethod": {"method": "balance"},
                "idempotencyKey": "downgrade-1",
            }
        },
        key=member.key,
    )["checkout"]
    assert checkout["workspace"] == {
        "plan": {"code": "omnichannel"},
        "scheduledChange": {"plan": {"code": "email"}, "effectiveAt": BOUNDARY.isoformat()},
    }
    top_up(gateway, member, "50.00")
    pay_renewals_with(gateway, member, "balance")

    [result] = renew_due(gateway, BOUNDARY)

    assert result.status is RenewalStatus.RENEWED and result.applied_change and result.amount == eur("26.78")
    assert workspace_row(gateway, member).plan_code == "email"
    assert rows(gateway, ScheduledChange, member) == []
    types = [type_ for _, type_, _ in events(gateway, member)]
    assert types[-3:] == ["plan_change.applied", "credits.reset", "renewal.completed"]
    assert types[0] == "plan_change.scheduled"


def test_the_invoice_uses_the_vat_rate_in_force_on_the_renewal_date(gateway, graphql, make_workspace, clock):
    # Estonia: 22 % until 2025-06-30, 24 % from 2025-07-01.
    clock.now = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)
    member = make_workspace("Tallinn OÜ", plan_code="email", email_credits=10000)
    billing(graphql, member, country="EE", city="Tallinn", postalCode="10111")
    top_up(gateway, member, "100.00")
    pay_renewals_with(gateway, member, "balance")

    [result] = renew_due(gateway, datetime(2025, 7, 15, 12, 0, tzinfo=UTC))

    assert result.status is RenewalStatus.RENEWED
    [invoice] = rows(gateway, Invoice, member)
    assert (invoice.subtotal_minor, invoice.tax_minor, invoice.total_minor) == (2250, 540, 2790)
    assert [(line["name"], line["rate"]) for line in invoice.tax_lines] == [("VAT 24% (EE)", "0.24")]
    assert workspace_row(gateway, member).balance_minor == 10000 - 2790


def test_a_paid_card_renewal(gateway, graphql, make_workspace):
    member = make_workspace("Acme", plan_code="email", email_credits=10000)
    billing(graphql, member)
    card_id = add_card(graphql, member, "4242424242424242")
    assert workspace_row(gateway, member).renewal_payment == f"card:{card_id}"

    [result] = renew_due(gateway, BOUNDARY)

    assert result.status is RenewalStatus.RENEWED and result.amount == eur("26.78")
    [payment] = [p for p in rows(gateway, Payment, member) if p.purpose == "renewal"]
    assert (payment.method, payment.card_id, payment.status) == ("card", card_id, "succeeded")
    [invoice] = rows(gateway, Invoice, member)
    assert (invoice.status, invoice.payment_id) == ("paid", payment.id)
    assert workspace_row(gateway, member).balance_minor == 0  # the balance is not touched


def test_a_free_plan_rolls_and_resets_without_charge_or_invoice(gateway, graphql, make_workspace, clock):
    member = make_workspace("Free Ltd")
    assert graphql(RECORD, {"input": {"messageType": "EMAIL", "quantity": 900}}, key=member.key)

    [result] = renew_due(gateway, BOUNDARY)

    assert result.status is RenewalStatus.FREE and result.amount is None and result.invoice_id is None
    assert [type_ for _, type_, _ in events(gateway, member)] == ["credits.reset"]
    assert rows(gateway, Invoice, member) == [] and rows(gateway, Payment, member) == []
    [renewal] = rows(gateway, Renewal, member)
    assert renewal.status == "free"
    clock.now = BOUNDARY
    usage = graphql(WORKSPACE, key=member.key)["workspace"]["usage"]
    assert usage["credits"] == [{"kind": "EMAIL", "used": "0", "included": "1000", "remaining": "1000"}]


def test_nothing_is_due_before_the_boundary(gateway, make_workspace):
    make_workspace("Acme", plan_code="omnichannel")
    before = snapshot(gateway)
    assert renew_due(gateway, datetime(2026, 12, 10, 9, 29, 59, tzinfo=UTC)) == []
    assert snapshot(gateway) == before


# ------------------------------------------------------------------ idempotency


def test_running_twice_does_nothing_the_second_time(gateway, graphql, make_workspace):
    member = make_workspace("Acme", plan_code="email", email_credits=10000)
    billing(graphql, member)
    top_up(gateway, member, "100.00")
    pay_renewals_with(gateway, member, "balance")
    make_workspace("Free Ltd")
    assert sorted(r.status.value for r in renew_due(gateway, BOUNDARY)) == ["free", "renewed"]
    after_first = snapshot(gateway)

    assert renew_due(gateway, BOUNDARY) == []
    assert renew_due(gateway, datetime(2027, 1, 10, 9, 29, tzinfo=UTC)) == []
    assert snapshot(gateway) == after_first


def test_two_concurrent_runs_renew_each_period_once(gateway, graphql, make_workspace):
    members = [make_workspace(f"Acme {i}", plan_code="email", email_credits=10000) for i in range(3)]
    for member in members:
        billing(graphql, member)
        top_up(gateway, member, "100.00")
        pay_renewals_with(gateway, member, "balance")
    make_workspace("Free Ltd")
    barrier = threading.Barrier(4)
    results: list = []
    failures: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            results.extend(renew_due(gateway, BOUNDARY))
        except BaseException as error:  # reported below
            failures.append(error)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    assert sorted(r.status.value for r in results) == ["free", "renewed", "renewed", "renewed"]
    for member in members:
        assert len(rows(gateway, Invoice, member)) == 1
        assert len(rows(gateway, Renewal, member)) == 1
        assert [e.amount_minor for e in rows(gateway, LedgerEntry, member) if e.kind == "charge"] == [-2678]
        assert workspace_row(gateway, member).balance_minor == 10000 - 2678
        log = events(gateway, member)
        assert [t for _, t, _ in log] == ["credits.reset", "renewal.completed"]
        assert [s for s, _, _ in log] == [1, 2]


# ------------------------------------------------------------------ failures


def test_a_balance_too_low_leaves_the_workspace_past_due_and_loses_nothing(
    gateway, graphql, make_workspace, clock
):
    member = make_workspace("Acme", plan_code="email", email_credits=10000)
    billing(graphql, member)
    top_up(gateway, member, "10.00")
    pay_renewals_with(gateway, member, "balance")
    assert graphql(RECORD, {"input": {"messageType": "EMAIL", "quantity": 500}}, key=member.key)

    [result] = renew_due(gateway, BOUNDARY)

    assert result.status is RenewalStatus.PAYMENT_FAILED and result.reason == "insufficient_balance"
    assert result.amount == eur("26.78")
    workspace = workspace_row(gateway, member)
    assert workspace.status == "past_due" and workspace.balance_minor == 1000
    assert (workspace.period_start, workspace.period_end) == (BOUNDARY, NEXT_END)  # service goes on
    assert [(e.kind, e.amount_minor) for e in rows(gateway, LedgerEntry, member)] == [("top_up", 1000)]
    [payment] = rows(gateway, Payment, member)
    assert (payment.status, payment.failure_code) == ("failed", "insufficient_balance")
    [invoice] = rows(gateway, Invoice, member)
    assert (invoice.kind, invoice.status, invoice.total_minor, invoice.payment_id) == (
        "renewal",
        "open",
        2678,
        None,
    )
    [renewal] = rows(gateway, Renewal, member)
    assert (renewal.status, renewal.invoice_id) == ("payment_failed", invoice.id)
    log = events(gateway, member)
    assert [(s, t) for s, t, _ in log] == [
        (1, "credits.reset"),
        (2, "payment.failed"),
        (3, "renewal.failed"),
        (4, "invoice.payment_failed"),  # dunning starts: ask the customer for another method
    ]
    failed = log[2][2]
    assert (
        failed["reason"],
        failed["status"],
        failed["total"],
        failed["invoice_number"],
        failed["payment_id"],
    ) == ("insufficient_balance", "past_due", "26.78", invoice.number, payment.id)
    clock.now = BOUNDARY
    view = graphql(WORKSPACE, key=member.key)["workspace"]
    assert view["status"] == "PAST_DUE" and view["balance"] == {"amount": "10.00"}
    assert view["usage"]["credits"][0]["used"] == "0"
    assert [i["status"] for i in view["invoices"]] == ["OPEN"]


def test_a_card_that_fails_later_leaves_the_workspace_past_due(gateway, graphql, make_workspace):
    member = make_workspace("Acme", plan_code="email", email_credits=10000)
    billing(graphql, member)
    card_id = add_card(graphql, member, "4000000000000341")
    top_up(gateway, member, "100.00")  # the balance is not what renewals use here: untouched

    [result] = renew_due(gateway, BOUNDARY)

    assert result.status is RenewalStatus.PAYMENT_FAILED and result.reason == "card_declined"
    workspace = workspace_row(gateway, member)
    assert workspace.status == "past_due" and workspace.balance_minor == 10000
    [payment] = [p for p in rows(gateway, Payment, member) if p.purpose == "renewal"]
    assert (payment.method, payment.card_id, payment.status, payment.failure_code) == (
        "card",
        card_id,
        "failed",
        "card_declined",
    )
    [invoice] = rows(gateway, Invoice, member)
    assert (invoice.status, invoice.total_minor) == ("open", 2678)
    assert [t for _, t, _ in events(gateway, member)][-4:] == [
        "credits.reset",
        "payment.failed",
        "renewal.failed",
        "invoice.payment_failed",
    ]


def test_a_3ds_card_cannot_renew_off_session(gateway, graphql, make_workspace):
    member = make_workspace("Acme", plan_code="email", email_credits=10000)
    billing(graphql, member)
    add_card(graphql, member, "4000002760003184")

    [result] = renew_due(gateway, BOUNDARY)

    assert result.status is RenewalStatus.PAYMENT_FAILED and result.reason == "authentication_required"
    [payment] = [p for p in rows(gateway, Payment, member) if p.purpose == "renewal"]
    assert (payment.status, payment.failure_code) == ("failed", "authentication_required")
    assert workspace_row(gateway, member).status == "past_due"


def test_a_workspace_without_a_renewal_method_renews_from_its_balance(gateway, graphql, make_workspace):
    member = make_workspace("Acme", plan_code="email", email_credits=10000)
    top_up(gateway, member, "100.00")
    billing(graphql, member)
    pay_renewals_with(gateway, member, None)  # e.g. it paid its checkout with a card it did not save

    [result] = renew_due(gateway, BOUNDARY)

    assert result.status is RenewalStatus.RENEWED
    [payment] = rows(gateway, Payment, member)
    assert (payment.method, payment.status, payment.purpose) == ("balance", "succeeded", "renewal")
    # Email 10,000: 15.00 + 5,000 × 0.0015 = 22.50, + 19 % VAT 4.28 = 26.78
    assert payment.amount_minor == 2678 and workspace_row(gateway, member).balance_minor == 10000 - 2678


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        ("removed card", "no_payment_method"),
        ("no details", "billing_details_incomplete"),
        ("incomplete details", "billing_details_incomplete"),
    ],
)
def test_renewal_failures_without_a_payment_attempt(gateway, graphql, make_workspace, setup, reason):
    member = make_workspace("Acme", plan_code="email", email_credits=10000)
    top_up(gateway, member, "100.00")
    if setup != "no details":
        billing(graphql, member)
    if setup == "incomplete details":
        # A company without its name: the details are incomplete.
        graphql(UPDATE_BILLING_DETAILS, {"input": {"customerType": "COMPANY"}}, key=member.key)
    if setup in ("no details", "incomplete details"):
        pay_renewals_with(gateway, member, "balance")
    if setup == "removed card":
        card_id = add_card(graphql, member, "4242424242424242")
        removed = graphql(
            "mutation($id: ID!) { removeCard(cardId: $id) { __typename } }", {"id": card_id}, key=member.key
        )
        assert removed["removeCard"]["__typename"] == "Workspace"
        pay_renewals_with(gateway, member, f"card:{card_id}")

    [result] = renew_due(gateway, BOUNDARY)

    assert result.status is RenewalStatus.PAYMENT_FAILED and result.reason == reason
    assert rows(gateway, Payment, member) == []
    workspace = workspace_row(gateway, member)
    assert workspace.status == "past_due" and workspace.balance_minor == 10000
    [invoice] = rows(gateway, Invoice, member)
    assert invoice.status == "open"
    if reason == "billing_details_incomplete":  # without a tax customer the tax is not known yet
        assert (invoice.subtotal_minor, invoice.tax_minor, invoice.total_minor, invoice.tax_lines) == (
            2250,
            0,
            2250,
            [],
        )
    else:
        assert invoice.total_minor == 2678
    assert [t for _, t, _ in events(gateway, member)][-3:] == [
        "credits.reset",
        "renewal.failed",
        "invoice.payment_failed",
    ]


def test_a_later_successful_renewal_keeps_older_invoices_open(gateway, graphql, make_workspace):
    member = make_workspace("Acme", plan_code="email", email_credits=10000)
    billing(graphql, member)
    pay_renewals_with(gateway, member, "balance")
    [failed] = renew_due(gateway, BOUNDARY)
    assert failed.status is RenewalStatus.PAYMENT_FAILED
    top_up(gateway, member, "100.00")

    [paid] = renew_due(gateway, NEXT_END)

    assert paid.status is RenewalStatus.RENEWED
    assert sorted(i.status for i in rows(gateway, Invoice, member)) == ["open", "paid"]
    assert workspace_row(gateway, member).status == "past_due"  # settling open invoices is left for later


def test_a_past_due_workspace_becomes_active_again_when_nothing_is_open(gateway, graphql, make_workspace):
    member = make_workspace("Acme", plan_code="email", email_credits=10000)
    billing(graphql, member)
    top_up(gateway, member, "100.00")
    pay_renewals_with(gateway, member, "balance")
    with gateway.write_sessions.begin() as session:
        lock_workspace(session, member.id).status = "past_due"  # e.g. its open invoice was settled by hand

    [paid] = renew_due(gateway, BOUNDARY)

    assert paid.status is RenewalStatus.RENEWED
    assert workspace_row(gateway, member).status == "active"


# ------------------------------------------------------------------ catching up


def test_catching_up_several_periods_renews_each_once(gateway, graphql, make_workspace):
    member = make_workspace("Acme", plan_code="omnichannel", email_credits=20000, messaging_credits=5000)
    billing(graphql, member)
    top_up(gateway, member, "500.00")
    pay_renewals_with(gateway, member, "balance")
    schedule(gateway, member, "email", 10000, 0)

    results = renew_due(gateway, datetime(2027, 3, 1, tzinfo=UTC))

    starts = ["2026-12-10", "2027-01-10", "2027-02-10"]
    assert [(r.status, f"{r.period_start:%Y-%m-%d}", r.applied_change, r.amount) for r in results] == [
        (RenewalStatus.RENEWED, start, start == starts[0], eur("26.78")) for start in starts
    ]
    workspace = workspace_row(gateway, member)
    assert (f"{workspace.period_start:%Y-%m-%d}", f"{workspace.period_end:%Y-%m-%d}") == (
        "2027-02-10",
        "2027-03-10",
    )
    assert workspace.balance_minor == 50000 - 3 * 2678
    assert sorted((i.number, i.status) for i in rows(gateway, Invoice, member)) == [
        ("INV-2027-000001", "paid"),
        ("INV-2027-000002", "paid"),
        ("INV-2027-000003", "paid"),
    ]
    assert [t for _, t, _ in events(gateway, member)] == [
        "plan_change.applied",
        "credits.reset",
        "renewal.completed",
        "credits.reset",
        "renewal.completed",
        "credits.reset",
        "renewal.completed",
    ]
    assert renew_due(gateway, datetime(2027, 3, 1, tzinfo=UTC)) == []


def test_periods_anchored_on_the_31st_come_back_to_the_31st(gateway, make_workspace, clock):
    clock.now = datetime(2027, 1, 31, 8, 0, tzinfo=UTC)
    make_workspace("Month End Ltd")

    results = renew_due(gateway, datetime(2027, 4, 1, tzinfo=UTC))

    assert [(f"{r.period_start:%m-%d}", f"{r.period_end:%m-%d}") for r in results] == [
        ("02-28", "03-31"),
        ("03-31", "04-30"),
    ]


def test_a_cancelled_change_does_not_apply(gateway, graphql, make_workspace):
    member = make_workspace("Acme", plan_code="email", email_credits=20000)
    billing(graphql, member)
    top_up(gateway, member, "100.00")
    pay_renewals_with(gateway, member, "balance")
    schedule(gateway, member, "email", 10000, 0)
    cancelled = graphql("mutation { cancelScheduledChange { __typename } }", key=member.key)
    assert cancelled["cancelScheduledChange"]["__typename"] == "Workspace"

    [result] = renew_due(gateway, BOUNDARY)

    assert not result.applied_change
    assert workspace_row(gateway, member).email_credits == 20000
    # 15.00 + 15,000 × 0.0015 = 37.50; VAT 7.125 → 7.13; total 44.63
    assert result.amount == eur("44.63")


def test_a_change_effective_later_waits(gateway, graphql, make_workspace):
    member = make_workspace("Acme", plan_code="email", email_credits=20000)
    billing(graphql, member)
    top_up(gateway, member, "100.00")
    pay_renewals_with(gateway, member, "balance")
    schedule(gateway, member, "email", 10000, 0, effective_at=NEXT_END)

    [first] = renew_due(gateway, BOUNDARY)
    assert not first.applied_change and workspace_row(gateway, member).email_credits == 20000
    [second] = renew_due(gateway, NEXT_END)
    assert second.applied_change and workspace_row(gateway, member).email_credits == 10000


def test_an_unexpected_error_is_reported_rolls_back_and_others_still_renew(
    gateway, graphql, make_workspace, monkeypatch, caplog
):
    broken = make_workspace("Broken", plan_code="email", email_credits=10000)
    fine = make_workspace("Fine")
    with gateway.write_sessions.begin() as session:
        lock_workspace(session, broken.id).plan_code = "discontinued"
    before = snapshot(gateway)

    results = renew_due(gateway, BOUNDARY)

    assert sorted((r.workspace_id == broken.id, r.status.value) for r in results) == [
        (False, "free"),
        (True, "error"),
    ]
    assert "discontinued" in next(r for r in results if r.workspace_id == broken.id).message
    assert any("renewal of workspace" in r.message for r in caplog.records if r.levelname == "ERROR")
    assert rows(gateway, Renewal, broken) == [] and events(gateway, broken) == []
    assert workspace_row(gateway, broken).period_end == BOUNDARY  # retried on the next run
    assert len(rows(gateway, Renewal, fine)) == 1
    assert snapshot(gateway) != before


# ------------------------------------------------------------------ the CLI and the periodic task


def test_the_renew_command(cli_env, capsys, gateway, graphql, make_workspace):
    member = make_workspace("Acme", plan_code="email", email_credits=10000)
    billing(graphql, member)
    top_up(gateway, member, "100.00")
    pay_renewals_with(gateway, member, "balance")
    poor = make_workspace("Poor Ltd", plan_code="email", email_credits=10000)
    make_workspace("Free Ltd")

    assert main(["renew", "--now", "2026-12-10T09:30:00+00:00"]) == 0

    out = capsys.readouterr().out
    assert "renewing periods that ended by 2026-12-10T09:30:00+00:00" in out
    period = "2026-12-10 09:30 to 2027-01-10 09:30"
    assert re.search(
        rf"{member.id}: renewed email for {period}: charged 26\.78 EUR, "
        r"invoice INV-2026-\d{6}",
        out,
    ), out
    assert f"{poor.id}: renewal for {period} NOT PAID (billing_details_incomplete" in out
    assert "1 renewed, 1 free, 1 payment failed" in out
    assert workspace_row(gateway, member).period_start == BOUNDARY

    assert main(["renew", "--now", "2026-12-10T09:30"]) == 0  # no offset: UTC
    assert "nothing to renew" in capsys.readouterr().out


def test_the_renew_command_refuses_a_bad_instant(cli_env, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["renew", "--now", "next tuesday"])
    assert exit_.value.code == 2
    assert "not an ISO 8601 date and time" in capsys.readouterr().err


def test_the_periodic_task_logs_errors_and_keeps_going(caplog):
    import anyio

    calls: list[int] = []
    sleeps: list[float] = []

    def work() -> None:
        calls.append(len(calls))
        if len(calls) == 2:
            raise RuntimeError("database away")

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) > 4:
            raise anyio.get_cancelled_exc_class()()

    async def main_() -> None:
        with pytest.raises(anyio.get_cancelled_exc_class()):
            await run_periodically(work, 300, sleep=sleep)

    anyio.run(main_)
    assert calls == [0, 1, 2, 3] and sleeps == [300] * 5
    assert [r.message for r in caplog.records if r.levelname == "ERROR"] == [
        "periodic task failed; the next run is in 300 seconds"
    ]


def test_the_server_starts_the_periodic_renewal_unless_disabled(gateway, monkeypatch):
    from starlette.testclient import TestClient

    import gateway.server.http as http

    started: list[float] = []

    async def fake(work, interval, **_):
        started.append(interval)

    monkeypatch.setattr(http, "run_periodically", fake)
    with TestClient(http.create_app(gateway)):
        pass
    assert started == [300.0, 60.0]  # renewal, then payment reconciliation
    gateway.settings = Settings(
        database_url=gateway.settings.database_url, renewal_interval=0, reconcile_interval=0
    )
    with TestClient(http.create_app(gateway)):
        pass
    assert started == [300.0, 60.0]


@pytest.mark.parametrize(("raw", "expected"), [("300", 300.0), ("0", 0.0), ("2.5", 2.5), (" 60 ", 60.0)])
def test_the_renewal_interval_setting(raw, expected):
    assert Settings.from_env({"BILLING_GATEWAY_RENEWAL_INTERVAL": raw}).renewal_interval == expected


@pytest.mark.parametrize("raw", ["-1", "soon", "nan", "inf", "1e999"])
def test_a_bad_renewal_interval_stops_start_up(raw):
    with pytest.raises(SettingsError, match="RENEWAL_INTERVAL"):
        Settings.from_env({"BILLING_GATEWAY_RENEWAL_INTERVAL": raw})


def test_usage_at_the_boundary_renews_first(gateway, graphql, make_workspace, clock):
    member = make_workspace("Acme", plan_code="email", email_credits=10000)
    billing(graphql, member)
    top_up(gateway, member, "100.00")
    pay_renewals_with(gateway, member, "balance")
    assert graphql(RECORD, {"input": {"messageType": "EMAIL", "quantity": 9000}}, key=member.key)
    clock.now = BOUNDARY

    recorded = graphql(RECORD, {"input": {"messageType": "EMAIL", "quantity": 2000}}, key=member.key)

    assert recorded["recordUsage"] == {"__typename": "UsageRecorded", "credits": "2000"}
    assert [r.period_start for r in rows(gateway, Renewal, member)] == [BOUNDARY]
    with gateway.sessions() as session:
        counters = {
            (c.period_start, c.kind): c.used
            for c in session.scalars(select(UsageCounter).where(UsageCounter.workspace_id == member.id))
        }
    assert counters == {
        (datetime(2026, 11, 10, 9, 30, tzinfo=UTC), "email"): Decimal(9000),
        (BOUNDARY, "email"): Decimal(2000),
    }
    assert renew_due(gateway, BOUNDARY) == []


def test_a_periodic_run_renews_what_is_due_and_logs_it(gateway, graphql, make_workspace, clock, caplog):
    import logging

    from gateway.server.http import renew

    member = make_workspace("Acme", plan_code="email", email_credits=10000)
    billing(graphql, member)
    make_workspace("Free Ltd")
    clock.now = BOUNDARY
    with caplog.at_level(logging.INFO, logger="gateway.http"):
        renew(gateway)  # what the server's task runs, with the gateway's clock
    assert sorted(r.levelname for r in caplog.records if r.name == "gateway.http") == ["INFO", "WARNING"]
    assert workspace_row(gateway, member).status == "past_due"  # no payment method chosen
    renew(gateway)
    assert len(rows(gateway, Renewal, member)) == 1
