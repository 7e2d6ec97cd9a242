"""Rate limits (issue 11, part 5): per API key and per client address, stricter for checkout,
top-ups, addCard and failed sign-ins; a refusal is a 429 with Retry-After and the typed error
RATE_LIMITED, and changes nothing. Counted in memory by default, or in the database, shared by
replicas: both are tested, concurrently, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from gateway.api import trusted
from gateway.core.rate_limits import DEFAULT_RULES, Rule, Subject, Window, admits, parse_rules, retry_after
from gateway.server.app import Gateway, build_gateway
from gateway.server.http import create_app
from gateway.server.settings import Settings, SettingsError
from gateway.storage.db import Card, LedgerEntry, Payment, create_db_engine
from gateway.storage.rate_limits import DatabaseStore, MemoryStore, RateLimiter

from helpers import VISA, card

ADD_CARD = """mutation($input: AddCardInput!) { addCard(input: $input) { __typename } }"""
TWO_CARDS = """mutation($a: AddCardInput!, $b: AddCardInput!) {
  first: addCard(input: $a) { __typename } second: addCard(input: $b) { __typename } }"""
TOP_UP = """mutation($input: TopUpInput!) { topUpBalance(input: $input) { __typename } }"""
WORKSPACE = "{ workspace { ... on Workspace { id } } }"
PROTOCOL = "graphql-transport-ws"


@pytest.fixture
def limited(built_once, database_url, clock) -> Callable[..., Gateway]:
    """A gateway whose settings set these rate limits (BILLING_GATEWAY_RATE_LIMITS syntax)."""

    def build(spec: str, store: str = "memory") -> Gateway:
        settings = Settings(database_url=database_url, rate_limits=parse_rules(spec), rate_limit_store=store)
        return build_gateway(settings, clock=clock, run_migrations=False, **built_once.parts(settings))

    return build


@pytest.fixture
def client_of() -> Iterator[Callable[..., TestClient]]:
    clients: list[TestClient] = []

    def open_(gateway: Gateway, address: str = "203.0.113.7") -> TestClient:
        client = TestClient(create_app(gateway), client=(address, 40000))
        clients.append(client.__enter__())
        return client

    yield open_
    for client in clients:
        client.__exit__(None, None, None)


def send(client: TestClient, query: str, variables: dict[str, Any] | None = None, key: str | None = None):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)


def add_card(client: TestClient, key: str, number: int) -> Any:
    return send(client, ADD_CARD, {"input": {"card": card(VISA), "idempotencyKey": f"card-{number}"}}, key)


def assert_rate_limited(response: Any, rule: str) -> dict[str, Any]:
    assert response.status_code == 429, response.text
    retry = int(response.headers["Retry-After"])
    assert retry >= 1
    body = response.json()
    assert "data" not in body
    [error] = body["errors"]
    assert error["extensions"] == {"code": "RATE_LIMITED", "rule": rule, "retryAfter": retry}
    assert f"retry after {retry} seconds" in error["message"]
    return error


def count(gateway: Gateway, model: Any, workspace_id: str) -> int:
    with gateway.sessions() as session:
        return session.scalar(
            select(func.count()).select_from(model).where(model.workspace_id == workspace_id)
        )


# ------------------------------------------------------------------ per key, stricter for cards and payments


def test_add_card_over_the_keys_limit_is_429_and_saves_nothing(limited, client_of, make_workspace, clock):
    gateway = limited("cards_per_key=2/1m")
    client = client_of(gateway)
    member = make_workspace()
    for number in range(2):
        assert add_card(client, member.key, number).json()["data"]["addCard"]["__typename"] == "CardAdded"
    cards_before = count(gateway, Card, member.id)

    assert_rate_limited(add_card(client, member.key, 2), "cards_per_key")
    assert count(gateway, Card, member.id) == cards_before

    # Another workspace (another key) is not held back by this one's count.
    other = make_workspace("Other")
    assert add_card(client, other.key, 0).json()["data"]["addCard"]["__typename"] == "CardAdded"

    # Waiting as long as Retry-After says is enough (the sliding window of the previous minute).
    retry = int(add_card(client, member.key, 3).headers["Retry-After"])
    clock.advance(seconds=retry)
    assert add_card(client, member.key, 4).json()["data"]["addCard"]["__typename"] == "CardAdded"


def test_aliases_count_once_each_and_a_refused_document_runs_no_field(limited, client_of, make_workspace):
    gateway = limited("cards_per_key=1/1m")
    client = client_of(gateway)
    member = make_workspace()
    inputs = {
        "a": {"card": card(VISA), "idempotencyKey": "a"},
        "b": {"card": card("5555555555554444"), "idempotencyKey": "b"},
    }
    assert_rate_limited(send(client, TWO_CARDS, inputs, member.key), "cards_per_key")
    assert count(gateway, Card, member.id) == 0
    # The refused request counted nothing: one card still fits.
    assert add_card(client, member.key, 0).json()["data"]["addCard"]["__typename"] == "CardAdded"


def test_top_ups_over_the_payments_limit_charge_nothing(limited, client_of, make_workspace):
    gateway = limited("payments_per_key=1/1m")
    client = client_of(gateway)
    member = make_workspace()

    def top_up(number: int) -> Any:
        payment = {"method": "card", "newCard": card(VISA)}
        variables = {"input": {"amount": "20.00", "paymentMethod": payment, "idempotencyKey": f"t-{number}"}}
        return send(client, TOP_UP, variables, member.key)

    assert top_up(0).json()["data"]["topUpBalance"]["__typename"] == "TopUpSuccess"
    payments, entries = count(gateway, Payment, member.id), count(gateway, LedgerEntry, member.id)
    assert_rate_limited(top_up(1), "payments_per_key")
    assert (count(gateway, Payment, member.id), count(gateway, LedgerEntry, member.id)) == (payments, entries)


def test_payments_per_address_holds_across_keys(limited, client_of, make_workspace):
    """Card testing spread over many workspaces from one address meets the address's limit."""
    gateway = limited("cards_per_key=10/1m, cards_per_address=3/1m")
    client = client_of(gateway, "198.51.100.9")
    members = [make_workspace(f"W{number}") for number in range(4)]
    for number, member in enumerate(members[:3]):
        assert add_card(client, member.key, number).status_code == 200
    assert_rate_limited(add_card(client, members[3].key, 3), "cards_per_address")
    # Another address is counted on its own.
    assert add_card(client_of(gateway, "198.51.100.10"), members[3].key, 4).status_code == 200


def test_requests_per_key_limit_every_operation_and_legacy_json_gets_429_too(
    limited, client_of, make_workspace
):
    gateway = limited("requests_per_key=3/1m")
    client = client_of(gateway)
    member = make_workspace()
    for _ in range(3):
        assert send(client, WORKSPACE, key=member.key).status_code == 200
    error = assert_rate_limited(send(client, WORKSPACE, key=member.key), "requests_per_key")
    legacy = client.post(
        "/graphql",
        json={"query": WORKSPACE},
        headers={"Authorization": f"Bearer {member.key}", "Accept": "application/json"},
    )
    assert (
        legacy.status_code == 429
        and legacy.json()["errors"][0]["extensions"]["code"] == error["extensions"]["code"]
    )
    # The metrics count refusals by rule.
    assert 'billing_gateway_rate_limited_total{rule="requests_per_key"} 2.0' in client.get("/metrics").text


# The Billing page's Order Preview, a trusted document: only those are answered on the event loop.
QUOTE = next(d.text for d in trusted.registry().values() if d.operation == "OrderPreview")


@pytest.mark.parametrize("kept", [True, False], ids=["rows kept", "rows read each time"])
def test_a_quote_answered_on_the_event_loop_or_after_it_counts_once(limited, client_of, make_workspace, kept):
    """A quote is answered on the event loop when the workspace's rows are kept, else it starts
    there and a worker thread answers it (gateway.server.http): either way each request counts
    once against its key and its address."""
    gateway = limited("requests_per_key=3/1m, requests_per_address=4/1m")
    client = client_of(gateway)
    member = make_workspace()
    order = {"input": {"planCode": "omnichannel", "emailCredits": 50000}}
    for _ in range(3):
        if not kept:
            gateway.workspace_cache.forget()  # the next quote must read the database
        answer = client.post(
            "/graphql",
            json={"query": QUOTE, "operationName": "OrderPreview", "variables": order},
            headers={"Authorization": f"Bearer {member.key}"},
        )
        assert answer.status_code == 200 and answer.json()["data"]["quote"]["__typename"] == "Quote", (
            answer.text
        )
    refused = client.post(
        "/graphql",
        json={"query": QUOTE, "operationName": "OrderPreview", "variables": order},
        headers={"Authorization": f"Bearer {member.key}"},
    )
    assert refused.status_code == 429, refused.text
    assert (
        'billing_gateway_graphql_requests_total{operation="quote",outcome="ok"} 3.0'
        in client.get("/metrics").text
    )
    assert 'billing_gateway_rate_limited_total{rule="requests_per_key"} 1.0' in client.get("/metrics").text


def test_requests_per_address_are_refused_before_the_document_is_read(limited, client_of):
    gateway = limited("requests_per_address=2/1m")
    client = client_of(gateway)
    for _ in range(2):
        assert send(client, "{ plans { code } }").status_code == 200
    assert_rate_limited(
        client.post("/graphql", content=b"{not json", headers={"Content-Type": "application/json"}),
        "requests_per_address",
    )


# ------------------------------------------------------------------ failed sign-ins


def test_wrong_keys_lock_the_address_out_even_with_a_valid_key(limited, client_of, make_workspace, caplog):
    gateway = limited("failed_sign_ins_per_address=5/5m")
    attacker = client_of(gateway, "192.0.2.66")
    member = make_workspace()
    wrong = "bgk_" + "x" * 8 + "_" + "y" * 40
    for _ in range(5):  # answered as before: the key is wrong (an auth error, not a 429)
        assert send(attacker, WORKSPACE, key=wrong).status_code == 200
    assert_rate_limited(send(attacker, WORKSPACE, key=wrong), "failed_sign_ins_per_address")
    assert_rate_limited(send(attacker, WORKSPACE, key=member.key), "failed_sign_ins_per_address")
    pdf = attacker.get("/invoices/x.pdf", headers={"Authorization": f"Bearer {member.key}"})
    assert pdf.status_code == 429 and pdf.json()["code"] == "RATE_LIMITED" and "Retry-After" in pdf.headers
    assert any("failed_sign_ins_per_address" in record.getMessage() for record in caplog.records)
    # The workspace's own address still signs in, and requests without a key are not sign-ins.
    assert send(client_of(gateway, "192.0.2.10"), WORKSPACE, key=member.key).json()["data"]["workspace"]
    assert send(attacker, "{ plans { code } }").status_code == 200


def test_wrong_keys_over_websocket_count_and_close_with_4429(limited, client_of, make_workspace):
    gateway = limited("failed_sign_ins_per_address=2/5m")
    client = client_of(gateway)
    member = make_workspace()

    def connection_init(key: str) -> int | None:
        """The close code of a socket that signs in with ``key`` (None: acknowledged)."""
        with client.websocket_connect("/graphql", subprotocols=[PROTOCOL]) as ws:
            ws.send_json({"type": "connection_init", "payload": {"authorization": f"Bearer {key}"}})
            try:
                message = ws.receive_json()
            except WebSocketDisconnect as closed:
                return closed.code
            assert message["type"] == "connection_ack", message
            return None

    assert connection_init("bgk_wrong_key") == 4403
    assert connection_init("bgk_wrong_key") == 4403
    assert connection_init(member.key) == 4429
    assert_rate_limited(send(client, WORKSPACE, key=member.key), "failed_sign_ins_per_address")


def test_subscribe_messages_count_against_the_key(limited, client_of, make_workspace):
    gateway = limited("requests_per_key=3/1m")  # connection_init's sign-in, then two subscribes
    client = client_of(gateway)
    member = make_workspace()
    with client.websocket_connect("/graphql", subprotocols=[PROTOCOL]) as ws:
        ws.send_json({"type": "connection_init", "payload": {"apiKey": member.key}})
        assert ws.receive_json()["type"] == "connection_ack"
        for id_ in ("1", "2"):
            ws.send_json(
                {"id": id_, "type": "subscribe", "payload": {"query": "subscription { events { id } }"}}
            )
        ws.send_json({"id": "3", "type": "subscribe", "payload": {"query": "subscription { events { id } }"}})
        message = ws.receive_json()
        assert message["id"] == "3" and message["type"] == "error", message
        assert message["payload"][0]["extensions"]["code"] == "RATE_LIMITED"


# ------------------------------------------------------------------ shared by replicas, and concurrent


def test_the_database_store_is_shared_by_replicas(limited, client_of, make_workspace):
    first = limited("cards_per_key=2/1m", store="database")
    second = limited("cards_per_key=2/1m", store="database")
    member = make_workspace()
    assert add_card(client_of(first), member.key, 0).status_code == 200
    assert add_card(client_of(second), member.key, 1).status_code == 200
    assert_rate_limited(add_card(client_of(first), member.key, 2), "cards_per_key")
    assert_rate_limited(add_card(client_of(second), member.key, 3), "cards_per_key")


@pytest.mark.parametrize("store", ["memory", "database"])
def test_concurrent_takes_never_admit_more_than_the_limit(gateway, store):
    """40 threads take from one subject at once: exactly the limit gets through, on both
    stores and both databases (the database store counts under the row's lock)."""
    rule = Rule("cards_per_key", Subject.KEY, 7, 60, "cards")
    limiter = RateLimiter(
        (rule,),
        MemoryStore() if store == "memory" else DatabaseStore(gateway.engine),
        clock=lambda: 1_800_000_000.0,
    )
    start = threading.Barrier(40)

    def take(_: int) -> bool:
        start.wait()
        return limiter.take("cards_per_key", "key:k") is None

    with ThreadPoolExecutor(40) as pool:
        admitted = sum(pool.map(take, range(40)))
    assert admitted == 7


def test_a_failing_store_admits_and_warns(caplog):
    broken = create_db_engine("postgresql://nobody@127.0.0.1:1/none?connect_timeout=1")
    limiter = RateLimiter(DEFAULT_RULES, DatabaseStore(broken), clock=lambda: 1_800_000_000.0)
    try:
        assert limiter.take("cards_per_key", "key:k") is None
    finally:
        broken.dispose()
    assert any("its store failed" in record.getMessage() for record in caplog.records)


def test_expired_counts_are_purged(gateway):
    rule = Rule("cards_per_key", Subject.KEY, 5, 60, "cards")
    now = [1_800_000_000.0]
    limiter = RateLimiter((rule,), DatabaseStore(gateway.engine), clock=lambda: now[0])
    limiter.take("cards_per_key", "key:a")
    assert limiter.purge() == 0
    now[0] += 180  # two windows later the count no longer weighs on anything
    assert limiter.purge() == 1


# ------------------------------------------------------------------ the setting


@pytest.mark.parametrize(
    "raw",
    [
        "cards=1/1m",
        "cards_per_key=0/1m",
        "cards_per_key=5",
        "cards_per_key=5/2d",
        "cards_per_key=1/1m,cards_per_key=2/1m",
    ],
)
def test_a_bad_setting_is_refused_at_start_up_naming_the_variable(raw):
    with pytest.raises(SettingsError, match="BILLING_GATEWAY_RATE_LIMITS"):
        Settings.from_env({"BILLING_GATEWAY_RATE_LIMITS": raw})


def test_the_setting_overrides_named_rules_and_can_turn_them_off():
    rules = {
        r.name: r
        for r in Settings.from_env(
            {"BILLING_GATEWAY_RATE_LIMITS": "cards_per_key=3/10m; payments_per_key=off"}
        ).rate_limits
    }
    assert (rules["cards_per_key"].limit, rules["cards_per_key"].period) == (3, 600)
    assert not rules["payments_per_key"].enabled
    assert rules["requests_per_key"] == next(r for r in DEFAULT_RULES if r.name == "requests_per_key")
    assert not any(r.enabled for r in Settings.from_env({"BILLING_GATEWAY_RATE_LIMITS": "off"}).rate_limits)
    with pytest.raises(SettingsError, match="RATE_LIMIT_STORE"):
        Settings.from_env({"BILLING_GATEWAY_RATE_LIMIT_STORE": "redis"})


# ------------------------------------------------------------------ the arithmetic


@settings(max_examples=300, deadline=None)
@given(
    limit=st.integers(1, 50),
    period=st.sampled_from([1, 10, 60, 3600]),
    gaps=st.lists(st.floats(0, 5, allow_nan=False), min_size=1, max_size=200),
    cost=st.integers(1, 3),
)
def test_never_more_than_the_limit_in_one_window_and_retry_after_is_enough(limit, period, gaps, cost):
    store, rule = MemoryStore(), Rule("r", Subject.KEY, limit, period, "units")
    now = 1_800_000_000.0
    admitted: dict[int, int] = {}
    for gap in gaps:
        now += gap * period / 5
        refusal = store.take(rule, "s", cost, now)
        if refusal is None:
            index = Window.at(now, period).index
            admitted[index] = admitted.get(index, 0) + cost
        elif cost <= limit:
            # Nothing else counted meanwhile: after Retry-After, the same take fits.
            later = MemoryStore()
            later._counts = store._counts.copy()
            assert later.take(rule, "s", cost, now + refusal.retry_after) is None
    assert all(units <= limit for units in admitted.values())


@given(
    previous=st.integers(0, 100),
    current=st.integers(0, 100),
    elapsed=st.floats(0, 0.999, allow_nan=False),
    limit=st.integers(1, 100),
)
def test_retry_after_is_never_zero_and_a_check_agrees_with_a_take(previous, current, elapsed, limit):
    window = Window(10, elapsed)
    if not admits(previous, current, 1, limit, window):
        assert retry_after(previous, current, 1, limit, window, 60) >= 1
    assert admits(previous, current, 0, limit, window) >= admits(previous, current, 1, limit, window)
