"""Races on one workspace answered typed, on both databases: more concurrent requests than the
pool has connections (a request holds one connection at a time, so they queue and never
deadlock), concurrent first saves of billing details, checkouts across a period boundary."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text

from gateway.core.money import Money
from gateway.plugin_api.payments import LedgerEntryKind
from gateway.server.app import build_gateway
from gateway.services.renewal import RenewalStatus, renew_due
from gateway.storage.db import BillingDetails, create_db_engine
from gateway.storage.ledger import SqlLedger
from gateway.storage.locks import lock_workspace

from helpers import GERMAN_PERSON, UPDATE_BILLING_DETAILS, billing, card, race

ROTATE = """mutation($id: ID!) { rotateWebhookSecret(id: $id) { __typename ... on UserError { code } } }"""
DELETE = """mutation($id: ID!) { deleteWebhookEndpoint(id: $id) { __typename ... on UserError { code } } }"""
CHECKOUT = """mutation($input: CheckoutInput!) { checkout(input: $input) { __typename
  ... on UserError { code message } } }"""
TOP_UP = """mutation($input: TopUpInput!) { topUpBalance(input: $input) { __typename
  ... on UserError { code } } }"""
WORKSPACE = "{ workspace { __typename ... on Workspace { name billingDetails { name } } } }"

POOL_SIZE = 2  # connections the test's engine may open
REQUESTS = 60  # concurrent requests, thirty times that


def _send(client, key: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    response = client.post(
        "/graphql", json={"query": query, "variables": variables}, headers={"Authorization": f"Bearer {key}"}
    )
    body = response.json()
    assert response.status_code == 200 and "errors" not in body, body
    return body["data"]


@pytest.fixture
def small_pool(settings, clock, built_once, database_url):
    """A gateway whose engine opens at most POOL_SIZE connections and waits at most 20 s for one
    (a request that held two would wait forever for the second: DATABASE_UNAVAILABLE)."""
    engine = create_db_engine(database_url, pool_size=POOL_SIZE, max_overflow=0, pool_timeout=20)
    parts = {**built_once.parts(settings), "engine": engine}
    yield build_gateway(settings, clock=clock, run_migrations=False, **parts)
    engine.dispose()


def test_more_concurrent_mutations_than_connections_all_answer_typed(
    graphql, gateway, make_workspace, small_pool, database_url
):
    member = make_workspace("Pool Co", plan_code="email", email_credits=10000)
    billing(graphql, member)

    def one(index: int, client) -> str:
        kind = index % 6
        if kind == 0:
            return _send(client, member.key, ROTATE, {"id": f"whe_unknown_{index}"})["rotateWebhookSecret"][
                "code"
            ]
        if kind == 1:
            return _send(client, member.key, DELETE, {"id": f"whe_unknown_{index}"})["deleteWebhookEndpoint"][
                "code"
            ]
        if kind == 2:
            answer = _send(
                client,
                member.key,
                CHECKOUT,
                {
                    "input": {
                        "quoteToken": "not-a-token",
                        "paymentMethod": {"method": "balance"},
                        "idempotencyKey": f"pool-{index}",
                    }
                },
            )["checkout"]
            return answer["code"]
        if kind == 3:
            answer = _send(
                client,
                member.key,
                TOP_UP,
                {
                    "input": {
                        "amount": "10.00",
                        "paymentMethod": {"method": "card", "newCard": card()},
                        "idempotencyKey": f"top-up-{index}",
                    }
                },
            )["topUpBalance"]
            return answer["__typename"]
        if kind == 4:
            details = {"input": {**GERMAN_PERSON, "name": f"Erika {index}"}}
            return _send(client, member.key, UPDATE_BILLING_DETAILS, details)["updateBillingDetails"][
                "__typename"
            ]
        return _send(client, member.key, WORKSPACE)["workspace"]["__typename"]

    answers = race(small_pool, REQUESTS, one)

    expected = {
        0: "UNKNOWN_WEBHOOK_ENDPOINT",
        1: "UNKNOWN_WEBHOOK_ENDPOINT",
        2: "INVALID_QUOTE_TOKEN",
        3: "TopUpSuccess",
        4: "BillingDetails",
        5: "Workspace",
    }
    assert answers == [expected[index % 6] for index in range(REQUESTS)]
    if database_url.startswith("postgresql"):
        # None left idle in transaction. A snapshot may catch a live transaction between two of
        # its statements (the app's delivery worker, another test's pool): a leak stays.
        held = text(
            "SELECT pid, xact_start, application_name, left(query, 200) FROM pg_stat_activity"
            " WHERE datname = current_database() AND state LIKE 'idle in transaction%'"
        )
        # Each snapshot in a transaction of its own: PostgreSQL keeps one snapshot of
        # pg_stat_activity per transaction. A leak is still there, the same transaction, 5 s later.
        with gateway.engine.connect() as connection:
            leaked = set(connection.execute(held).all())
        deadline = time.monotonic() + 5
        while leaked and time.monotonic() < deadline:
            time.sleep(0.25)
            with gateway.engine.connect() as connection:
                leaked &= set(connection.execute(held).all())
        assert leaked == set()


def test_concurrent_first_saves_of_billing_details_all_succeed(graphql, gateway, make_workspace):
    member = make_workspace("First Save Co")
    names = [f"Erika {index}" for index in range(10)]

    def save(index: int, client) -> str:
        details = {"input": {**GERMAN_PERSON, "name": names[index]}}
        return _send(client, member.key, UPDATE_BILLING_DETAILS, details)["updateBillingDetails"][
            "__typename"
        ]

    assert race(gateway, len(names), save) == ["BillingDetails"] * len(names)
    with gateway.sessions() as session:
        saved = list(session.scalars(select(BillingDetails).where(BillingDetails.workspace_id == member.id)))
    assert len(saved) == 1 and saved[0].name in names  # one row: the last save wins
    shown = graphql(WORKSPACE, key=member.key)["workspace"]["billingDetails"]
    assert shown == {"name": saved[0].name}


# ------------------------------------------------------------------ checkouts across a period boundary

BOUNDARY = datetime(2026, 12, 10, 9, 30, tzinfo=UTC)  # the end of the first period (START + 1 month)
QUOTE = """mutation($input: QuoteInput!) { quote(input: $input) { __typename ... on Quote { token } } }"""
CHECKOUTS = 48


def _renewable(graphql, gateway, make_workspace):
    """A workspace paying renewals from a funded balance, a quote token made a second before its
    period ends, and the clock left there: each checkout reads that instant."""
    member = make_workspace("Boundary Co", plan_code="email", email_credits=10000)
    billing(graphql, member)
    with gateway.write_sessions.begin() as session:
        workspace = lock_workspace(session, member.id)
        workspace.renewal_payment = "balance"
        SqlLedger(session, workspace, gateway.clock()).append(
            LedgerEntryKind.TOP_UP, Money("500.00", "EUR"), None, "test top-up"
        )
    gateway.clock.now = BOUNDARY - timedelta(seconds=1)
    quote = graphql(QUOTE, {"input": {"planCode": "email", "emailCredits": 15000}}, key=member.key)["quote"]
    return member, quote["token"]


def _checkout(client, member, token: str, key: str) -> dict[str, Any]:
    variables = {
        "input": {"quoteToken": token, "paymentMethod": {"method": "balance"}, "idempotencyKey": key}
    }
    return _send(client, member.key, CHECKOUT, variables)["checkout"]


def test_a_checkout_read_before_a_renewal_that_ran_first_is_told_to_retry(
    graphql, gateway, client, make_workspace
):
    member, token = _renewable(graphql, gateway, make_workspace)
    [renewed] = renew_due(gateway, BOUNDARY + timedelta(seconds=1))  # another replica's later clock
    assert renewed.status is RenewalStatus.RENEWED
    answer = _checkout(client, member, token, "stale")
    assert answer["code"] == "RENEWAL_PENDING", answer


@pytest.mark.without_rate_limits  # 48 concurrent checkouts of one key: over payments_per_key, and the subject is the race
def test_concurrent_checkouts_across_a_renewal_all_answer_typed(graphql, gateway, make_workspace):
    member, token = _renewable(graphql, gateway, make_workspace)

    def one(index: int, client) -> str:
        if index == 0:
            [renewed] = renew_due(gateway, BOUNDARY + timedelta(seconds=1))
            return renewed.status.name
        return _checkout(client, member, token, f"boundary-{index}")["__typename"]

    answers = race(gateway, CHECKOUTS, one)
    assert answers[0] == "RENEWED"
    # Each is a member of CheckoutResult (no `errors`): one success at most, the others refused.
    assert set(answers[1:]) <= {"CheckoutSuccess", "RenewalPending", "QuoteChanged", "PaymentRejected"}
    assert answers.count("CheckoutSuccess") <= 1
