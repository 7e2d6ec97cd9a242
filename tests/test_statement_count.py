"""The read paths cost a constant number of SQL statements, however many rows they show.

Each test runs the same GraphQL document, over the real HTTP handling, against a small and a
large workspace and counts the statements sent to the database (SQLAlchemy's
``before_cursor_execute``). A resolver that queried once per invoice, payment, card, endpoint or
delivery would make the large count grow with the number of rows.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import event

from gateway.core.money import Money
from gateway.events import delivery as webhook_delivery
from gateway.plugin_api.payments import LedgerEntryKind
from gateway.server.app import Gateway
from gateway.server.settings import Settings
from gateway.services.key_cache import KeyCache
from gateway.services.renewal import renew_workspace
from gateway.storage.db import UsageCounter
from gateway.storage.ledger import SqlLedger
from gateway.storage.locks import lock_workspace

from helpers import checkout_by_quote


@pytest.fixture
def settings(database_url: str) -> Settings:
    # No periodic renewal, delivery or reconciliation run in the server: they would add their
    # own statements to the count at random moments.
    return Settings(
        database_url=database_url,
        renewal_interval=0,
        delivery_interval=0,
        reconcile_interval=0,
        webhook_timeout=2,
        webhook_allow=("127.0.0.1",),  # the receiver below: loopback is refused unless allowed
    )


@pytest.fixture
def gateway(gateway: Gateway) -> Gateway:
    # Signing in reads the database once per second at most (to see revocations), whenever that
    # second ends: on a slow machine, in the middle of one count and not the other. The counts
    # here are the resolvers'; a key cache that checks once an hour keeps sign-in out of them.
    gateway.callers = KeyCache(gateway.sessions, check_interval=3600)
    return gateway


@contextmanager
def statements(engine) -> Iterator[list[str]]:
    """The SQL statements sent through ``engine`` inside the block."""
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


# ------------------------------------------------------------------ the Billing overview

OVERVIEW = """{ workspace { __typename ... on Workspace {
  id name status plan { code name basePrice { amount } } period { start end }
  usage { periodStart periodEnd credits { kind used included remaining } }
  balance { amount currency }
  billingDetails { customerType name country vatId missingFields }
  cards { id brand last4 isRenewalMethod }
  scheduledChange { plan { code } emailCredits messagingCredits effectiveAt
                    dueAtRenewal { total { amount } taxLines { name amount { amount } } } }
  invoices(first: 100) { id number kind status issuedAt
    lines { kind description quantity unitPrice { amount } amount { amount currency } }
    taxLines { name jurisdiction rate base { amount } amount { amount } treatment note }
    subtotal { amount } tax { amount } total { amount } paymentMethod periodStart periodEnd
    billingDetails }
} } }"""

DETAILS = """mutation { updateBillingDetails(input: {customerType: PERSON, name: "Erika Mustermann",
  addressLine1: "Heidestraße 17", city: "Köln", postalCode: "51147", country: "DE",
  email: "erika@example.de"}) { __typename } }"""
ADD_CARD = """mutation($input: AddCardInput!) { addCard(input: $input) {
  __typename ... on CardAdded { card { id } } } }"""
RECORD_USAGE = """mutation { recordUsage(input: {messageType: "EMAIL", quantity: 120}) { __typename } }"""


def billed_workspace(graphql, make_workspace, gateway, clock, invoices: int):
    """A workspace with billing details, a saved card used for renewals, usage this period, a
    downgrade scheduled for the end of it and ``invoices`` invoices, all paid by the card: the
    first by checkout (Free to Omnichannel), the others by monthly renewals."""
    member = make_workspace(f"Acme {invoices}")
    assert graphql(DETAILS, key=member.key)["updateBillingDetails"]["__typename"] == "BillingDetails"
    card = {"number": "4242424242424242", "expMonth": 12, "expYear": 2040, "cvc": "739"}
    added = graphql(
        ADD_CARD, {"input": {"card": card, "useForRenewal": True, "idempotencyKey": "card"}}, key=member.key
    )["addCard"]
    card_id = added["card"]["id"]
    paid_by_card = {"method": "card", "cardId": card_id}
    assert checkout_by_quote(graphql, member.key, "omnichannel", paid_by_card, "upgrade") == "NEW_PERIOD"
    if invoices > 1:  # each renewal invoices one more period, paid by the renewal card
        clock.advance(days=31 * (invoices - 1))
        results = renew_workspace(gateway, member.id, clock())
        assert [r.status.value for r in results] == ["renewed"] * (invoices - 1), results
    assert graphql(RECORD_USAGE, key=member.key)["recordUsage"]["__typename"] == "UsageRecorded"
    downgrade = checkout_by_quote(
        graphql, member.key, "omnichannel", paid_by_card, "down", emailCredits=10000
    )
    assert downgrade == "DOWNGRADE"
    return member


def overview_statements(graphql, gateway, member, invoices: int) -> list[str]:
    with statements(gateway.engine) as seen:
        shown = graphql(OVERVIEW, key=member.key)["workspace"]
    # The document really showed every part of the page, so every resolver ran.
    assert shown["__typename"] == "Workspace"
    assert shown["usage"]["credits"][0]["used"] == "120"
    assert shown["billingDetails"]["missingFields"] == []
    assert len(shown["cards"]) == 1 and shown["cards"][0]["isRenewalMethod"]
    assert shown["scheduledChange"]["emailCredits"] == 10000
    assert len(shown["invoices"]) == invoices
    assert {i["paymentMethod"] for i in shown["invoices"]} == {"card visa •••• 4242"}
    assert all(i["lines"] and i["taxLines"] for i in shown["invoices"])
    return seen


def test_the_billing_overview_costs_the_same_statements_for_1_and_50_invoices(
    graphql, make_workspace, gateway, clock
):
    # The small workspace is read before the clock moves on for the large one's renewals.
    small = billed_workspace(graphql, make_workspace, gateway, clock, invoices=1)
    one = overview_statements(graphql, gateway, small, 1)
    large = billed_workspace(graphql, make_workspace, gateway, clock, invoices=50)
    fifty = overview_statements(graphql, gateway, large, 50)
    print(f"Billing overview: {len(one)} statements with 1 invoice, {len(fifty)} with 50")
    assert len(fifty) == len(one), "\n".join(fifty)


# ------------------------------------------------------------------ webhook endpoints

ENDPOINTS = """{ webhookEndpoints { __typename ... on WebhookEndpoints { endpoints {
  id url eventTypes enabled disabledReason createdAt updatedAt
  deliveries(limit: 20) { id eventId eventType sequence status attemptCount nextAttemptAt lastStatusCode
    lastError deliveredAt createdAt
    attempts { attemptedAt statusCode durationMs responseExcerpt error } }
} } } }"""
CREATE_ENDPOINT = """mutation($url: String!) { createWebhookEndpoint(input: {url: $url}) {
  __typename ... on WebhookEndpointCreated { endpoint { id } } } }"""
TOP_UP = """mutation($key: String!) { topUpBalance(input: {amount: "10.00", idempotencyKey: $key,
  paymentMethod: {method: "card", newCard: {number: "4242424242424242", expMonth: 12, expYear: 2040,
  cvc: "739"}}}) { __typename } }"""


@pytest.fixture
def failing_receiver() -> Iterator[str]:
    """A URL on 127.0.0.1 that answers every webhook with 503, so each try is a logged attempt."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            self.send_response(503)
            self.send_header("content-length", "11")
            self.end_headers()
            self.wfile.write(b"unavailable")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks"
    server.shutdown()
    server.server_close()
    thread.join(5)


def endpoints_with_deliveries(graphql, make_workspace, gateway, clock, url: str, endpoints: int):
    """A workspace with ``endpoints`` endpoints, each with deliveries of the same events, and
    two failed attempts per delivery."""
    member = make_workspace(f"Hooks {endpoints}")
    for _ in range(endpoints):
        created = graphql(CREATE_ENDPOINT, {"url": url}, key=member.key)["createWebhookEndpoint"]
        assert created["__typename"] == "WebhookEndpointCreated"
    for n in range(2):  # each top-up emits events, queued to every endpoint
        assert graphql(TOP_UP, {"key": f"top-up-{n}"}, key=member.key)["topUpBalance"]["__typename"] == (
            "TopUpSuccess"
        )
    for _ in range(2):
        webhook_delivery.deliver_due(gateway, clock())
        clock.advance(minutes=5)  # past the first retry's backoff
    return member


def endpoints_statements(graphql, gateway, member, endpoints: int) -> list[str]:
    with statements(gateway.engine) as seen:
        shown = graphql(ENDPOINTS, key=member.key)["webhookEndpoints"]
    listed = shown["endpoints"]
    assert len(listed) == endpoints
    assert all(len(e["deliveries"]) >= 2 for e in listed)  # two top-ups' events at least
    assert all(len(d["attempts"]) == 2 for e in listed for d in e["deliveries"])
    assert {a["statusCode"] for e in listed for d in e["deliveries"] for a in d["attempts"]} == {503}
    return seen


def test_webhook_endpoints_cost_the_same_statements_for_1_and_10_endpoints(
    graphql, make_workspace, gateway, clock, failing_receiver
):
    # The small workspace is read before the worker runs again (for the large one) and adds attempts.
    small = endpoints_with_deliveries(graphql, make_workspace, gateway, clock, failing_receiver, 1)
    one = endpoints_statements(graphql, gateway, small, 1)
    large = endpoints_with_deliveries(graphql, make_workspace, gateway, clock, failing_receiver, 10)
    ten = endpoints_statements(graphql, gateway, large, 10)
    print(f"webhookEndpoints: {len(one)} statements with 1 endpoint, {len(ten)} with 10")
    assert len(ten) == len(one), "\n".join(ten)


# ------------------------------------------------------------------ history, a page at a time

BARE = "{ workspace { ... on Workspace { id } } }"
HISTORY = """{ workspace { ... on Workspace { id
  invoiceHistory(first: 20) { ... on InvoiceConnection { edges { cursor node { id number
    lines { description amount { amount } } taxLines { name amount { amount } } paymentMethod } }
    pageInfo { hasNextPage endCursor } } }
  payments(first: 20) { ... on PaymentConnection { edges { cursor node { id purpose method status
    amount { amount } card { id last4 isRenewalMethod } invoiceId } } pageInfo { hasNextPage endCursor } } }
  balanceTransactions(first: 20) { ... on BalanceTransactionConnection { edges { cursor node { id kind
    amount { amount } balanceAfter { amount } } } pageInfo { hasNextPage endCursor } } }
  usageHistory(first: 20) { ... on UsagePeriodConnection { edges { cursor node { periodStart current
    credits { kind used } } } pageInfo { hasNextPage endCursor } } }
  events(first: 20) { ... on EventConnection { edges { cursor node { id sequence type payload } }
    pageInfo { hasNextPage endCursor } } }
} } }"""


def with_history(graphql, make_workspace, gateway, clock, invoices: int):
    """billed_workspace, plus as many ledger entries and periods with usage as invoices."""
    member = billed_workspace(graphql, make_workspace, gateway, clock, invoices)
    with gateway.write_sessions.begin() as session:
        workspace = lock_workspace(session, member.id)
        for n in range(invoices):
            SqlLedger(session, workspace, clock()).append(
                LedgerEntryKind.ADJUSTMENT, Money("1", "EUR"), None, ""
            )
            start = workspace.period_start - timedelta(days=31 * (n + 1))
            session.add(UsageCounter(workspace_id=member.id, period_start=start, kind="email", used=n + 1))
    return member


def history_statements(graphql, gateway, member, rows: int) -> tuple[int, int]:
    """The statements of a page of every history connection, and of the bare workspace."""
    with statements(gateway.engine) as bare:
        graphql(BARE, key=member.key)
    with statements(gateway.engine) as seen:
        shown = graphql(HISTORY, key=member.key)["workspace"]
    for field in ("invoiceHistory", "payments", "balanceTransactions", "usageHistory", "events"):
        assert min(rows, 20) <= len(shown[field]["edges"]) <= 20, field
    return len(seen), len(bare)


def test_a_page_of_each_history_connection_is_one_statement_for_1_or_25_rows_and_more(
    graphql, make_workspace, gateway, clock
):
    small = with_history(graphql, make_workspace, gateway, clock, invoices=1)
    one, bare = history_statements(graphql, gateway, small, 1)
    large = with_history(graphql, make_workspace, gateway, clock, invoices=25)
    many, _ = history_statements(graphql, gateway, large, 25)
    print(f"history pages: {one} statements with 1 row each, {many} with 20 of 25 or more")
    assert one == many == bare + 5  # one statement per connection


# ------------------------------------------------------------------ Checkout Now


@contextmanager
def transactions(engine) -> Iterator[list[list[tuple[str, Any]]]]:
    """The statements sent through ``engine`` inside the block, with their parameters, one list
    per transaction: a transaction is what one connection sends until its commit or rollback."""
    seen: list[list[tuple[str, Any]]] = []
    open_: dict[int, list[tuple[str, Any]]] = {}  # by DBAPI connection

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        key = id(conn.connection.dbapi_connection)
        if key not in open_:
            open_[key] = []
            seen.append(open_[key])
        open_[key].append((statement, parameters))

    def end(conn) -> None:
        open_.pop(id(conn.connection.dbapi_connection), None)

    listeners = [("before_cursor_execute", record), ("commit", end), ("rollback", end)]
    for name, listener in listeners:
        event.listen(engine, name, listener)
    try:
        yield seen
    finally:
        for name, listener in listeners:
            event.remove(engine, name, listener)


QUOTE_TOKEN = """query($input: QuoteInput!) { quote(input: $input) { __typename ... on Quote { token } } }"""
FUNDS = """mutation { topUpBalance(input: {amount: "500.00", idempotencyKey: "funds",
  paymentMethod: {method: "card", newCard: {number: "4242424242424242", expMonth: 12, expYear: 2040,
  cvc: "739"}}}) { __typename } }"""


def test_checkout_now_reads_no_row_twice_in_a_transaction(graphql, make_workspace, gateway: Gateway) -> None:
    """The Billing page's Checkout Now (its trusted document, whose CheckoutSuccess shows the
    whole Billing overview) pays from the balance. No transaction of it, the answer's reads
    included, sends the same read twice: the answer's fields ask for the workspace, its billing
    details, scheduled change and price notice several times each, and a checkout writes two
    events, each routed to the workspace's webhook endpoints and announced to subscribers."""
    from gateway.api.trusted import registry

    [document] = [d.text for d in registry().values() if d.operation == "CheckoutNow"]
    member = make_workspace("Acme", plan_code="omnichannel", email_credits=50_000, messaging_credits=20_000)
    assert graphql(DETAILS, key=member.key)["updateBillingDetails"]["__typename"] == "BillingDetails"
    assert graphql(FUNDS, key=member.key)["topUpBalance"]["__typename"] == "TopUpSuccess"
    order = {"planCode": "omnichannel", "emailCredits": 50_000, "messagingCredits": 21_000}
    quote = graphql(QUOTE_TOKEN, {"input": order}, key=member.key)["quote"]
    payment = {"quoteToken": quote["token"], "paymentMethod": {"method": "balance"}, "idempotencyKey": "now"}
    with transactions(gateway.engine) as seen:
        done = graphql(document, {"input": payment}, key=member.key)["checkout"]
    assert done["__typename"] == "CheckoutSuccess"
    assert {"kind": "MESSAGING", "limit": 21_000} in done["workspace"]["allowances"]
    assert done["workspace"]["renewalPayment"]["nextRenewalAmount"]["amount"]
    for statements_of_one in seen:
        reads = [(s, repr(p)) for s, p in statements_of_one if s.lstrip().upper().startswith("SELECT")]
        repeated = {read for read in reads if reads.count(read) > 1}
        assert not repeated, "\n".join(s for s, _ in repeated)
        # The workspace's row is written once per transaction (its events' sequence and its new
        # limits together), and the invoice the checkout wrote is not read back for its id.
        updates = [s for s, _ in statements_of_one if s.lstrip().upper().startswith("UPDATE WORKSPACES")]
        assert len(updates) <= 1, updates
        assert not [s for s, _ in statements_of_one if s.startswith("SELECT invoices.id \nFROM")]
    total = sum(1 for t in seen for s, _ in t if not s.startswith("BEGIN"))  # SQLite's BEGIN is one
    # 49 statements on PostgreSQL before the answer's session remembered its reads, 37 before the
    # settling transaction wrote the workspace once and kept its invoice's id (now 34)
    assert total <= 35, "\n".join(s for t in seen for s, _ in t)
