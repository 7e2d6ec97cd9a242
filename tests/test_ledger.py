"""The balance ledger: append-only entries, each with the running balance; the balance
is their sum (reconciliation), never below zero, in the workspace's currency.

The GraphQL flows put entries in; the ledger table itself is read directly, as no API
exposes it.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from gateway.core.money import Money
from gateway.plugin_api.payments import LedgerEntryKind
from gateway.storage.db import LedgerEntry, Payment, Workspace
from gateway.storage.ledger import NegativeBalance, SqlLedger, WorkspaceLedger, ledger_sum
from gateway.storage.locks import lock_workspace

from helpers import billing, card

TOP_UP = """mutation($input: TopUpInput!) { topUpBalance(input: $input) { __typename
  ... on TopUpSuccess { payment { id } } ... on PaymentActionRequired { paymentId }
  ... on PaymentDeclined { paymentId } } }"""
CONFIRM = """mutation($id: ID!) { confirmPayment(paymentId: $id, challengeResponse: "authenticated") {
  __typename } }"""
QUOTE = """mutation($input: QuoteInput!) { quote(input: $input) {
  ... on Quote { emailCredits messagingCredits dueNow { total { amount } } expiresAt } } }"""
CHECKOUT = """mutation($input: CheckoutInput!) { checkout(input: $input) { __typename
  ... on CheckoutSuccess { payment { id } } ... on InsufficientBalance { shortfall { amount } } } }"""
BALANCE = "{ workspace { ... on Workspace { balance { amount currency } } } }"


def entries(gateway, member) -> list[LedgerEntry]:
    """The workspace's entries in the order they were written (following the running balance)."""
    with gateway.sessions() as session:
        left = list(session.scalars(select(LedgerEntry).where(LedgerEntry.workspace_id == member.id)))
    chain, balance = [], 0
    while left:
        following = [e for e in left if e.balance_after_minor - e.amount_minor == balance]
        assert len(following) >= 1, f"the running balance breaks after {balance}"
        entry = min(following, key=lambda e: e.created_at)
        left.remove(entry)
        chain.append(entry)
        balance = entry.balance_after_minor
    return chain


def reconcile(gateway, graphql, member) -> int:
    """Ledger sum == cached balance == the API's balance; every running balance >= 0."""
    with gateway.sessions() as session:
        total = ledger_sum(session, member.id)
        assert session.get(Workspace, member.id).balance_minor == total
    chain = entries(gateway, member)
    assert all(e.balance_after_minor >= 0 for e in chain)
    assert (chain[-1].balance_after_minor if chain else 0) == total
    shown = graphql(BALANCE, key=member.key)["workspace"]["balance"]
    assert shown == {"amount": f"{total / 100:.2f}", "currency": "EUR"}
    return total


@pytest.fixture
def member(graphql, make_workspace):
    member = make_workspace("Acme", plan_code="email", email_credits=10000)
    billing(graphql, member)
    return member


def buy(graphql, member, email: int, key: str) -> dict:
    offer = graphql(QUOTE, {"input": {"planCode": "email", "emailCredits": email}}, key=member.key)["quote"]
    return graphql(
        CHECKOUT,
        {
            "input": {
                "planCode": "email",
                "emailCredits": email,
                "expectedTotal": offer["dueNow"]["total"]["amount"],
                "quoteExpiresAt": offer["expiresAt"],
                "paymentMethod": {"method": "balance"},
                "idempotencyKey": key,
            }
        },
        key=member.key,
    )["checkout"]


def top_up(graphql, member, amount: str, key: str, number: str = "4242424242424242") -> dict:
    return graphql(
        TOP_UP,
        {
            "input": {
                "amount": amount,
                "idempotencyKey": key,
                "paymentMethod": {"method": "card", "newCard": card(number)},
            }
        },
        key=member.key,
    )["topUpBalance"]


# ------------------------------------------------------------------ through the API


def test_the_ledger_reconciles_through_every_kind_of_movement(graphql, gateway, clock, member):
    assert reconcile(gateway, graphql, member) == 0
    topped = top_up(graphql, member, "40.00", "t1")
    declined = top_up(graphql, member, "99.00", "t2", "4000000000000002")  # no entry
    pending = top_up(graphql, member, "12.50", "t3", "4000002760003184")  # an entry only once confirmed
    assert reconcile(gateway, graphql, member) == 4000
    assert (
        graphql(CONFIRM, {"id": pending["paymentId"]}, key=member.key)["confirmPayment"]["__typename"]
        == "TopUpSuccess"
    )
    first = buy(graphql, member, 15000, "b1")  # 7.50 + 1.43 VAT = 8.93
    clock.advance(days=12)  # 18 of 30 days left
    second = buy(graphql, member, 30000, "b2")  # (52.50 - 30.00) x 18/30 = 13.50 + 2.57 VAT = 16.07
    # 30,000 -> 500,000: (442.50 - 52.50) x 18/30 = 234.00 + 44.46 VAT = 278.46, with 27.50 left: no entry.
    refused = buy(graphql, member, 500000, "b3")

    assert declined["__typename"] == "PaymentDeclined"
    assert refused == {"__typename": "InsufficientBalance", "shortfall": {"amount": "250.96"}}
    chain = entries(gateway, member)
    assert [(e.kind, e.amount_minor, e.balance_after_minor) for e in chain] == [
        ("top_up", 4000, 4000),
        ("top_up", 1250, 5250),
        ("charge", -893, 4357),
        ("charge", -1607, 2750),
    ]
    assert reconcile(gateway, graphql, member) == 2750
    with gateway.sessions() as session:
        payments = {
            p.id: p for p in session.scalars(select(Payment).where(Payment.workspace_id == member.id))
        }
    # Top-ups point at their payment; a balance payment points at its charge entry.
    assert [chain[0].reference, chain[1].reference] == [topped["payment"]["id"], pending["paymentId"]]
    assert payments[first["payment"]["id"]].reference == chain[2].id
    assert payments[second["payment"]["id"]].reference == chain[3].id
    assert all(e.currency == "EUR" for e in chain)
    assert [e.description for e in chain] == [
        "Top-up by card",
        "Top-up by card",
        "Email (15,000 email credits): upgrade",
        "Email (30,000 email credits): upgrade",
    ]


def test_entries_are_never_rewritten(graphql, gateway, member):
    top_up(graphql, member, "40.00", "t1")
    buy(graphql, member, 15000, "b1")
    before = [
        (e.id, e.kind, e.amount_minor, e.balance_after_minor, e.reference, e.created_at)
        for e in entries(gateway, member)
    ]

    top_up(graphql, member, "10.00", "t2")
    buy(graphql, member, 20000, "b2")

    after = [
        (e.id, e.kind, e.amount_minor, e.balance_after_minor, e.reference, e.created_at)
        for e in entries(gateway, member)
    ]
    assert after[:2] == before and len(after) == 4


def test_a_long_idempotency_key_fits_the_reference(graphql, gateway, member):
    top_up(graphql, member, "40.00", "t1")
    key = "checkout-" + "x" * 240
    assert buy(graphql, member, 15000, key)["__typename"] == "CheckoutSuccess"
    charge = entries(gateway, member)[-1]
    assert charge.kind == "charge" and len(charge.reference) <= 64
    assert key not in charge.reference


def test_each_workspace_has_its_own_ledger(graphql, gateway, member, make_workspace):
    other = make_workspace("Other")
    top_up(graphql, member, "40.00", "t1")
    top_up(graphql, other, "7.00", "t1")
    assert reconcile(gateway, graphql, member) == 4000
    assert reconcile(gateway, graphql, other) == 700


# ------------------------------------------------------------------ the ledger itself


def test_append_keeps_the_running_balance(gateway, clock, member):
    with gateway.write_sessions.begin() as session:
        workspace = lock_workspace(session, member.id)
        ledger = SqlLedger(session, workspace, clock.now)
        ledger.append(LedgerEntryKind.TOP_UP, Money("25.00", "EUR"), "p1", "Top-up")
        ledger.append(LedgerEntryKind.CHARGE, Money("-10.01", "EUR"), "p2", "Charge")
        ledger.append(LedgerEntryKind.REFUND, Money("2.50", "EUR"), "p2", "Refund")
        assert ledger.balance() == Money("17.49", "EUR")
    with gateway.sessions() as session:
        assert ledger_sum(session, member.id) == 1749
        assert session.get(Workspace, member.id).balance_minor == 1749
    assert [(e.kind, e.amount_minor, e.balance_after_minor) for e in entries(gateway, member)] == [
        ("top_up", 2500, 2500),
        ("charge", -1001, 1499),
        ("refund", 250, 1749),
    ]


def test_the_balance_never_goes_below_zero(gateway, clock, member):
    with gateway.write_sessions.begin() as session:
        workspace = lock_workspace(session, member.id)
        ledger = SqlLedger(session, workspace, clock.now)
        ledger.append(LedgerEntryKind.TOP_UP, Money("5.00", "EUR"), "p1", "Top-up")
        with pytest.raises(NegativeBalance):
            ledger.append(LedgerEntryKind.CHARGE, Money("-5.01", "EUR"), "p2", "Charge")
        assert ledger.balance() == Money("5.00", "EUR")  # the refused entry changed nothing
        ledger.append(LedgerEntryKind.CHARGE, Money("-5.00", "EUR"), "p3", "Charge")  # down to exactly zero
    assert [e.balance_after_minor for e in entries(gateway, member)] == [500, 0]


def test_the_ledger_keeps_one_currency(gateway, clock, member):
    with gateway.write_sessions.begin() as session:
        ledger = SqlLedger(session, lock_workspace(session, member.id), clock.now)
        with pytest.raises(ValueError, match="the ledger is in EUR, not USD"):
            ledger.append(LedgerEntryKind.TOP_UP, Money("5.00", "USD"), "p1", "Top-up")
    assert entries(gateway, member) == []


def test_an_empty_ledger_sums_to_zero(gateway, member):
    with gateway.sessions() as session:
        assert ledger_sum(session, member.id) == 0
        assert ledger_sum(session, "no-such-workspace") == 0


def test_the_workspace_ledger_is_idempotent_by_key_and_never_goes_negative(gateway, make_workspace):
    """The Ledger the balance method gets, on the test database (SQLite or PostgreSQL)."""
    member = make_workspace("Acme", plan_code="email", email_credits=10000)
    with gateway.write_sessions.begin() as session:
        workspace = lock_workspace(session, member.id)
        SqlLedger(session, workspace, gateway.clock()).append(
            LedgerEntryKind.TOP_UP, Money("30.00", "EUR"), "top-up-1", "Top-up"
        )
    ledger = WorkspaceLedger(gateway.write_sessions, member.id, "EUR", gateway.clock())
    first = ledger.debit(Money("20.00", "EUR"), "pay-1", "Email plan")
    assert first is not None and ledger.entry("pay-1") == first
    assert ledger.debit(Money("20.00", "EUR"), "pay-1", "Email plan") == first  # the same key: nothing more
    assert ledger.debit(Money("10.01", "EUR"), "pay-2", "Email plan") is None  # does not cover: nothing taken
    assert ledger.entry("pay-2") is None
    assert ledger.balance() == Money("10.00", "EUR")
    refund = ledger.credit(Money("5.00", "EUR"), "refund-1", "Refund")
    assert ledger.credit(Money("5.00", "EUR"), "refund-1", "Refund") == refund
    assert ledger.balance() == Money("15.00", "EUR")
    with gateway.sessions() as session:
        assert ledger_sum(session, member.id) == 1500
        kinds = session.scalars(select(LedgerEntry.kind).where(LedgerEntry.workspace_id == member.id)).all()
    assert sorted(kinds) == ["charge", "refund", "top_up"]
