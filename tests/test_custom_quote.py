"""requestCustomQuote: records the request, emits custom_quote.requested and returns the
sales contact address; invalid fields are typed errors and nothing is written."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from gateway.storage.db import CustomQuoteRequest, OutboxEvent

from helpers import assert_events_as_documented, snapshot

REQUEST = """mutation($input: RequestCustomQuoteInput!) { requestCustomQuote(input: $input) {
  __typename
  ... on CustomQuoteRequested { requestId salesContact }
  ... on InvalidQuoteRequest { problems { field message } }
  ... on UserError { code field message }
} }"""
VALID = {
    "contactName": "Ada Lovelace",
    "email": "ada@example.com",
    "company": "Analytical Engines Ltd",
    "expectedEmailCredits": 2_000_000,
    "expectedMessagingCredits": 750_000,
    "message": "We send 2M emails a month.\nCan we talk about SLAs?",
}


@pytest.fixture
def member(make_workspace):
    return make_workspace("Acme", plan_code="omnichannel")


def test_a_request_is_recorded_announced_and_answered_with_the_sales_contact(graphql, gateway, member, clock):
    result = graphql(REQUEST, {"input": {**VALID, "contactName": "  Ada   Lovelace "}}, key=member.key)[
        "requestCustomQuote"
    ]

    assert result["__typename"] == "CustomQuoteRequested"
    assert result["salesContact"] == "sales@contact.center"
    with gateway.sessions() as session:
        row = session.get(CustomQuoteRequest, result["requestId"])
        [event] = session.scalars(select(OutboxEvent).where(OutboxEvent.workspace_id == member.id))
    assert (
        row.workspace_id,
        row.contact_name,
        row.email,
        row.company,
        row.expected_email_credits,
        row.expected_messaging_credits,
        row.message,
        row.created_at,
    ) == (
        member.id,
        "Ada Lovelace",
        "ada@example.com",
        "Analytical Engines Ltd",
        2_000_000,
        750_000,
        "We send 2M emails a month.\nCan we talk about SLAs?",
        clock.now,
    )
    assert (event.sequence, event.type) == (1, "custom_quote.requested")
    assert assert_events_as_documented(gateway, member) == {"custom_quote.requested"}
    assert event.payload == {
        "request_id": row.id,
        "contact_name": "Ada Lovelace",
        "email": "ada@example.com",
        "company": "Analytical Engines Ltd",
        "expected_email_credits": 2_000_000,
        "expected_messaging_credits": 750_000,
        "message": row.message,
        "current_plan": "omnichannel",
    }


def test_volumes_and_message_are_optional(graphql, gateway, member):
    result = graphql(
        REQUEST,
        {"input": {"contactName": "Ada", "email": "ada@example.com", "company": "AE"}},
        key=member.key,
    )["requestCustomQuote"]
    with gateway.sessions() as session:
        row = session.get(CustomQuoteRequest, result["requestId"])
    assert (row.expected_email_credits, row.expected_messaging_credits, row.message) == (None, None, "")


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"contactName": ""}, "contactName", "is required"),
        ({"contactName": "   "}, "contactName", "is required"),
        ({"contactName": "x" * 201}, "contactName", "at most 200 characters"),
        ({"contactName": "Ada\u0000"}, "contactName", "control characters"),
        ({"email": "ada"}, "email", "is not an email address"),
        ({"email": ""}, "email", "is required"),
        ({"email": "a" * 250 + "@x.de"}, "email", "at most 254 characters"),
        ({"company": ""}, "company", "is required"),
        ({"company": "x" * 201}, "company", "at most 200 characters"),
        ({"expectedEmailCredits": -1}, "expectedEmailCredits", "between 0 and"),
        ({"expectedMessagingCredits": -(2**31)}, "expectedMessagingCredits", "between 0 and"),
        ({"message": "x" * 4001}, "message", "at most 4000 characters"),
        ({"message": "hello\u0000"}, "message", "control characters"),
    ],
)
def test_each_invalid_field_is_a_typed_error_and_writes_nothing(
    graphql, gateway, member, change, field, message
):
    before = snapshot(gateway)
    result = graphql(REQUEST, {"input": {**VALID, **change}}, key=member.key)["requestCustomQuote"]
    assert (result["__typename"], result["code"], result["field"]) == (
        "InvalidQuoteRequest",
        "INVALID_QUOTE_REQUEST",
        [field],
    )
    assert [p["field"] for p in result["problems"]] == [[field]]
    assert message in result["problems"][0]["message"]
    assert snapshot(gateway) == before


def test_every_problem_is_listed(graphql, gateway, member):
    result = graphql(
        REQUEST,
        {"input": {"contactName": "", "email": "nope", "company": "", "expectedEmailCredits": -5}},
        key=member.key,
    )["requestCustomQuote"]
    assert [p["field"] for p in result["problems"]] == [
        ["contactName"],
        ["email"],
        ["company"],
        ["expectedEmailCredits"],
    ]


@pytest.mark.parametrize("key", [None, "bgw_000000000000_wrong"])
def test_requesting_needs_a_key(client, gateway, key):
    before = snapshot(gateway)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    response = client.post(
        "/graphql", json={"query": REQUEST, "variables": {"input": VALID}}, headers=headers
    )
    assert response.json()["data"]["requestCustomQuote"]["code"] == "AUTHENTICATION_REQUIRED"
    assert snapshot(gateway) == before


@pytest.mark.parametrize(
    "change",
    [{"contactName": None}, {"expectedEmailCredits": 2**31}, {"expectedEmailCredits": "lots"}, {"budget": 5}],
)
def test_malformed_input_is_a_request_error(client, gateway, member, change):
    before = snapshot(gateway)
    response = client.post(
        "/graphql",
        json={"query": REQUEST, "variables": {"input": {**VALID, **change}}},
        headers={"Authorization": f"Bearer {member.key}", "Accept": "application/graphql-response+json"},
    )
    assert response.status_code == 400 and "data" not in response.json()
    assert snapshot(gateway) == before
