"""Concurrent checkouts and top-ups against one workspace, over real concurrent
connections (SQLite's write lock; PostgreSQL's row locks): the balance is never spent
twice and never goes below zero, and the ledger always sums to the balance.

Each checkout is a legitimate purchase of its own: a thread raises the Email plan's
limit by one slider step (5,000 credits at 0.0015 = 7.50 a month, the whole month
being left: 7.50 + 19 % VAT 1.43 = 8.93 due now), re-quoting when another thread got
there first. 30.00 covers three of them (26.79) and leaves 3.21.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from gateway.storage.db import Invoice, LedgerEntry, OutboxEvent, Payment, Workspace

from helpers import billing, card, post, race, reconcile

LIMIT = "{ workspace { ... on Workspace { emailCredits } } }"
QUOTE = """mutation($input: QuoteInput!) { quote(input: $input) { __typename
  ... on Quote { kind emailCredits dueNow { total { amount } } expiresAt } ... on UserError { code } } }"""
CHECKOUT = """mutation($input: CheckoutInput!) { checkout(input: $input) { __typename
  ... on UserError { code }
  ... on CheckoutSuccess { workspace { emailCredits } invoice { number total { amount } } payment { id } }
  ... on InsufficientBalance { balance { amount } required { amount } shortfall { amount } } } }"""
TOP_UP = """mutation($input: TopUpInput!) { topUpBalance(input: $input) { __typename
  ... on TopUpSuccess { amount { amount } } ... on UserError { code } } }"""

THREADS = 8  # N concurrent purchases
AFFORDABLE = 3  # K: what the balance covers
STEP_TOTAL = 893  # one slider step, in cents, VAT included
FUNDS = 3000  # 30.00


def ledger_rows(gateway, member) -> list[LedgerEntry]:
    with gateway.sessions() as session:
        return list(session.scalars(select(LedgerEntry).where(LedgerEntry.workspace_id == member.id)))


@pytest.mark.without_rate_limits  # many concurrent checkouts of one key: over payments_per_key, and the subject is the balance
def test_concurrent_checkouts_never_overspend_the_balance(graphql, gateway, make_workspace):
    member = make_workspace("Mail Co", plan_code="email", email_credits=10000)
    billing(graphql, member)
    funded = graphql(
        TOP_UP,
        {
            "input": {
                "amount": "30.00",
                "paymentMethod": {"method": "card", "newCard": card()},
                "idempotencyKey": "fund",
            }
        },
        key=member.key,
    )["topUpBalance"]
    assert funded["__typename"] == "TopUpSuccess"

    def buy_one_step(index: int, client) -> tuple[dict, int]:
        """Raise the limit by one step: quote, checkout; on a stale quote, quote again (bounded)."""
        for attempt in range(1, 60):
            current = post(client, member, LIMIT)["workspace"]["emailCredits"]
            offer = post(
                client, member, QUOTE, {"input": {"planCode": "email", "emailCredits": current + 5000}}
            )["quote"]
            if offer["kind"] != "UPGRADE":  # the limit rose past this target since it was read: read again
                continue
            result = post(
                client,
                member,
                CHECKOUT,
                {
                    "input": {
                        "planCode": "email",
                        "emailCredits": offer["emailCredits"],
                        "expectedTotal": offer["dueNow"]["total"]["amount"],
                        "quoteExpiresAt": offer["expiresAt"],
                        "paymentMethod": {"method": "balance"},
                        "idempotencyKey": f"step-{index}",
                    }
                },
            )["checkout"]
            if result["__typename"] in ("CheckoutSuccess", "InsufficientBalance"):
                return result, attempt
            # Another thread raised the limit between this thread's quote and its checkout.
            assert result.get("code") in ("QUOTE_CHANGED", "NOTHING_TO_CHANGE"), result
        raise AssertionError(f"thread {index} never got a current quote")

    results = race(gateway, THREADS, buy_one_step)

    outcomes = [result for result, _ in results]
    successes = [r for r in outcomes if r["__typename"] == "CheckoutSuccess"]
    refused = [r for r in outcomes if r["__typename"] == "InsufficientBalance"]
    assert len(successes) == AFFORDABLE and len(refused) == THREADS - AFFORDABLE, outcomes
    left = FUNDS - AFFORDABLE * STEP_TOTAL  # 3.21
    for refusal in refused:
        assert refusal == {
            "__typename": "InsufficientBalance",
            "code": "INSUFFICIENT_BALANCE",
            "balance": {"amount": "3.21"},
            "required": {"amount": "8.93"},
            "shortfall": {"amount": "5.72"},
        }
    assert sorted(s["workspace"]["emailCredits"] for s in successes) == [15000, 20000, 25000]
    assert sorted(s["invoice"]["number"] for s in successes) == [
        "INV-2026-000001",
        "INV-2026-000002",
        "INV-2026-000003",
    ]
    assert {s["invoice"]["total"]["amount"] for s in successes} == {"8.93"}

    entries = ledger_rows(gateway, member)
    assert sorted(e.balance_after_minor for e in entries) == [321, 1214, 2107, 3000]
    assert min(e.balance_after_minor for e in entries) >= 0  # never below zero
    assert sorted(e.amount_minor for e in entries) == [-893, -893, -893, 3000]
    assert reconcile(gateway, member) == left
    with gateway.sessions() as session:
        workspace = session.get(Workspace, member.id)
        assert (workspace.email_credits, workspace.event_sequence) == (25000, 7)
        sequences = session.scalars(
            select(OutboxEvent.sequence)
            .where(OutboxEvent.workspace_id == member.id)
            .order_by(OutboxEvent.sequence)
        ).all()
        assert sequences == list(range(1, 8))  # gap-free
        assert len(session.scalars(select(Payment).where(Payment.purpose == "checkout")).all()) == AFFORDABLE
        assert len(session.scalars(select(Invoice)).all()) == AFFORDABLE
    attempts = sum(attempt for _, attempt in results)
    print(
        f"\nconcurrency: N={THREADS} checkouts, K={AFFORDABLE} affordable; {len(successes)} succeeded, "
        f"{len(refused)} InsufficientBalance, {attempts} checkout attempts in all; final balance "
        f"{left / 100:.2f} EUR (ledger sum {reconcile(gateway, member)} cents); database "
        f"{gateway.engine.dialect.name}"
    )


def test_concurrent_top_ups_all_land(graphql, gateway, make_workspace):
    member = make_workspace("Acme")

    def top_up(index: int, client) -> dict:
        return post(
            client,
            member,
            TOP_UP,
            {
                "input": {
                    "amount": "12.34",
                    "idempotencyKey": f"top-up-{index}",
                    "paymentMethod": {"method": "card", "newCard": card()},
                }
            },
        )["topUpBalance"]

    results = race(gateway, THREADS, top_up)

    assert [r["__typename"] for r in results] == ["TopUpSuccess"] * THREADS
    entries = ledger_rows(gateway, member)
    assert sorted(e.balance_after_minor for e in entries) == [1234 * i for i in range(1, THREADS + 1)]
    assert reconcile(gateway, member) == 1234 * THREADS
    assert graphql("{ workspace { ... on Workspace { balance { amount } } } }", key=member.key)[
        "workspace"
    ] == {"balance": {"amount": "98.72"}}
    with gateway.sessions() as session:
        sequences = session.scalars(
            select(OutboxEvent.sequence)
            .where(OutboxEvent.workspace_id == member.id)
            .order_by(OutboxEvent.sequence)
        ).all()
        assert sequences == list(range(1, THREADS + 1))
    print(f"\nconcurrency: {THREADS} top-ups of 12.34 at once; balance {1234 * THREADS / 100:.2f} EUR")


def test_concurrent_checkouts_of_two_workspaces_keep_their_own_books(graphql, gateway, make_workspace):
    members = [make_workspace(name, plan_code="email", email_credits=10000) for name in ("One", "Two")]
    for member in members:
        billing(graphql, member)
        graphql(
            TOP_UP,
            {
                "input": {
                    "amount": "10.00",
                    "paymentMethod": {"method": "card", "newCard": card()},
                    "idempotencyKey": "fund",
                }
            },
            key=member.key,
        )

    def buy(index: int, client) -> dict:
        member = members[index % 2]
        offer = post(client, member, QUOTE, {"input": {"planCode": "email", "emailCredits": 15000}})["quote"]
        return post(
            client,
            member,
            CHECKOUT,
            {
                "input": {
                    "planCode": "email",
                    "emailCredits": 15000,
                    "expectedTotal": offer["dueNow"]["total"]["amount"],
                    "quoteExpiresAt": offer["expiresAt"],
                    "paymentMethod": {"method": "balance"},
                    "idempotencyKey": f"buy-{index}",
                }
            },
        )["checkout"]

    results = race(gateway, 4, buy)

    # Per workspace: one purchase, the other thread finds the limit already raised.
    assert sorted(r["__typename"] for r in results) == [
        "CheckoutSuccess",
        "CheckoutSuccess",
        "PaymentRejected",
        "PaymentRejected",
    ]
    assert sorted(r.get("code", "") for r in results) == ["", "", "NOTHING_TO_CHANGE", "NOTHING_TO_CHANGE"]
    for member in members:
        assert reconcile(gateway, member) == 1000 - STEP_TOTAL
