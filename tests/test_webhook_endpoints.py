"""Webhook endpoint management under concurrency, and what database errors leave in the log."""

from __future__ import annotations

import logging
import types

from sqlalchemy import func, select

from gateway.events import endpoints
from gateway.storage.db import WebhookEndpoint

from helpers import post, race

CREATE = """mutation($url: String!) { createWebhookEndpoint(input: {url: $url}) {
    __typename ... on UserError { code } } }"""


def endpoint_count(gateway, workspace_id: str) -> int:
    with gateway.sessions() as session:
        return session.scalar(
            select(func.count())
            .select_from(WebhookEndpoint)
            .where(WebhookEndpoint.workspace_id == workspace_id)
        )


def test_concurrent_creates_never_pass_the_limit(gateway, make_workspace):
    """40 creates at once, from 40 clients: exactly MAX_ENDPOINTS are stored, the rest refused."""
    member = make_workspace()

    def create(index: int, client) -> str:
        answer = post(client, member, CREATE, {"url": f"https://93.184.215.14/hooks/{index}"})
        return answer["createWebhookEndpoint"]["__typename"]

    results = race(gateway, 40, create)

    assert results.count("WebhookEndpointCreated") == endpoints.MAX_ENDPOINTS
    assert results.count("WebhookEndpointLimitReached") == 40 - endpoints.MAX_ENDPOINTS
    assert endpoint_count(gateway, member.id) == endpoints.MAX_ENDPOINTS


def test_a_database_error_logs_no_sql_parameters(client, gateway, make_workspace, monkeypatch, caplog):
    """The insert fails (a duplicate key): the log has the error and the statement, never the
    values, which include the endpoint's signing secret."""
    member = make_workspace()
    taken = "f" * 32
    post(client, member, CREATE, {"url": "https://93.184.215.14/first"})
    with gateway.write_sessions.begin() as session:
        session.execute(WebhookEndpoint.__table__.update().values(id=taken))
    marker = "whsec_" + "S" * 43 + "="
    monkeypatch.setattr(endpoints, "new_secret", lambda: marker)
    monkeypatch.setattr(endpoints, "secrets", types.SimpleNamespace(token_hex=lambda n: taken))

    with caplog.at_level(logging.DEBUG):
        answer = client.post(
            "/graphql",
            json={"query": CREATE, "variables": {"url": "https://93.184.215.14/second"}},
            headers={"Authorization": f"Bearer {member.key}"},
        ).json()

    assert not answer.get("data") and answer["errors"]
    assert "IntegrityError" in caplog.text and "INSERT INTO webhook_endpoints" in caplog.text
    assert "parameters hidden" in caplog.text
    assert marker not in caplog.text and marker not in str(answer)
    assert endpoint_count(gateway, member.id) == 1
