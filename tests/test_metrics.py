"""Prometheus metrics at /metrics: what GraphQL requests, checkouts, payments and deliveries
did, and the state of the delivery backlog and the connection pool."""

from __future__ import annotations

import socket
from datetime import UTC, datetime

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient
from test_checkout import DECLINED, checkout, quote, top_up

from gateway.server.app import build_gateway
from gateway.server.http import create_app, renew
from gateway.server.settings import Settings

from helpers import billing, card

BOUNDARY = datetime(2026, 12, 10, 9, 30, tzinfo=UTC)


@pytest.fixture
def settings(database_url):
    # The tests run the delivery worker and renewals themselves.
    # The endpoint below is on loopback, which the egress policy refuses unless allowed.
    return Settings(
        database_url=database_url,
        delivery_interval=0,
        renewal_interval=0,
        reconcile_interval=0,
        webhook_allow=("127.0.0.1",),
    )


def scrape(client, **headers) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics, by name and labels."""
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_graphql_requests_are_counted_by_root_field_and_outcome(client, graphql, make_workspace):
    member = make_workspace()
    quote(graphql, member, "omnichannel")
    graphql('mutation { quote(input: {planCode: "nope"}) { __typename } }', key=member.key)
    graphql("{ plans { code } workspace { __typename } }", key=member.key)
    client.post("/graphql", json={"query": "{ noSuchField }"})
    client.post("/graphql", json={"query": "{ plans { code } a: plans { noSuchField } }"})
    client.post("/graphql", json={"query": "{ __typename }"})

    samples = scrape(client)
    requests = "billing_gateway_graphql_requests_total"
    assert value(samples, requests, operation="quote", outcome="ok") == 1
    assert value(samples, requests, operation="quote", outcome="user_error") == 1
    assert value(samples, requests, operation="plans", outcome="ok") == 1
    assert value(samples, requests, operation="workspace", outcome="ok") == 1
    # Invalid documents did not run: the names they ask for that the schema lacks count as other.
    assert value(samples, requests, operation="other", outcome="error") == 1
    assert value(samples, requests, operation="plans", outcome="error") == 2
    assert value(samples, requests, operation="other", outcome="ok") == 1  # __typename
    assert value(samples, "billing_gateway_graphql_request_duration_seconds_count", operation="quote") == 2
    assert not any("noSuchField" in str(labels) for _, labels in samples)


def test_checkouts_and_declines_are_counted(client, graphql, make_workspace):
    member = make_workspace()
    billing(graphql, member)
    declined = checkout(
        graphql,
        member,
        "omnichannel",
        quote(graphql, member, "omnichannel"),
        payment={"method": "card", "newCard": card(DECLINED)},
    )
    assert declined["__typename"] == "PaymentDeclined"
    short = checkout(graphql, member, "omnichannel", quote(graphql, member, "omnichannel"), key="checkout-2")
    assert short["__typename"] == "InsufficientBalance"
    done = checkout(
        graphql,
        member,
        "omnichannel",
        quote(graphql, member, "omnichannel"),
        key="checkout-3",
        payment={"method": "card", "newCard": card()},
    )
    assert done["__typename"] == "CheckoutSuccess"

    samples = scrape(client)
    for outcome in ("PaymentDeclined", "InsufficientBalance", "CheckoutSuccess"):
        assert value(samples, "billing_gateway_checkouts_total", outcome=outcome) == 1
    assert value(samples, "billing_gateway_payment_failures_total", purpose="checkout") == 2
    assert (
        value(samples, "billing_gateway_graphql_requests_total", operation="checkout", outcome="user_error")
        == 2
    )


def test_renewal_payment_failures_are_counted(client, gateway, graphql, make_workspace, clock):
    member = make_workspace("Acme", plan_code="email", email_credits=10000)
    billing(graphql, member)  # renewals fall back to an empty balance: the payment fails
    clock.now = BOUNDARY
    renew(gateway, client.app.state.metrics)
    assert value(scrape(client), "billing_gateway_payment_failures_total", purpose="renewal") == 1


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


CREATE_ENDPOINT = """mutation($url: String!) { createWebhookEndpoint(input: {url: $url}) {
  __typename ... on UserError { code message } } }"""


def test_the_delivery_backlog_and_failures(client, graphql, make_workspace):
    member = make_workspace()
    created = graphql(CREATE_ENDPOINT, {"url": f"http://127.0.0.1:{closed_port()}/hook"}, key=member.key)
    assert created["createWebhookEndpoint"]["__typename"] == "WebhookEndpointCreated", created
    assert value(scrape(client), "billing_gateway_delivery_backlog") == 0
    top_up(graphql, member, "10.00")  # its events are queued for the endpoint
    before = value(scrape(client), "billing_gateway_delivery_backlog")
    assert before >= 1

    counts = client.app.state.delivery_worker.run_once()  # nothing listens: every attempt fails
    samples = scrape(client)
    assert counts.retrying >= 1
    assert value(samples, "billing_gateway_delivery_failures_total", outcome="retrying") == counts.retrying
    assert value(samples, "billing_gateway_delivery_backlog") == before  # still pending, to be retried


def test_pool_gauges(client):
    samples = scrape(client)
    assert value(samples, "billing_gateway_db_pool_size") > 0
    assert ("billing_gateway_db_pool_connections", (("state", "checked_out"),)) in samples


def test_the_pool_has_the_configured_size(database_url, clock, built_once):
    """BILLING_GATEWAY_DB_POOL_SIZE and _DB_MAX_OVERFLOW size the pool a gateway opens."""
    settings = Settings.from_env(
        {"BILLING_GATEWAY_DB_POOL_SIZE": "7", "BILLING_GATEWAY_DB_MAX_OVERFLOW": "3"},
        database_url=database_url,
        renewal_interval=0,
    )
    parts = built_once.parts(settings)
    del parts["engine"]  # its own engine, from these settings
    gateway = build_gateway(settings, clock=clock, run_migrations=False, **parts)
    try:
        with TestClient(create_app(gateway)) as client:
            assert value(scrape(client), "billing_gateway_db_pool_size") == 7
    finally:
        gateway.close()


class TestToken:
    @pytest.fixture
    def settings(self, database_url):
        return Settings(database_url=database_url, metrics_token="s3cret-scraper", renewal_interval=0)

    def test_metrics_need_the_token_when_one_is_set(self, client):
        refused = client.get("/metrics")
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert scrape(client, Authorization="Bearer s3cret-scraper")


def test_each_app_has_its_own_registry(gateway, graphql, make_workspace):
    with TestClient(create_app(gateway)) as first, TestClient(create_app(gateway)) as second:
        first.post("/graphql", json={"query": "{ plans { code } }"})
        assert (
            value(scrape(first), "billing_gateway_graphql_requests_total", operation="plans", outcome="ok")
            == 1
        )
        assert (
            value(scrape(second), "billing_gateway_graphql_requests_total", operation="plans", outcome="ok")
            == 0
        )
