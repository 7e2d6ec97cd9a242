"""cancelScheduledChange: removes the change waiting for renewal, with an event."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from gateway.storage.db import OutboxEvent, ScheduledChange

from helpers import snapshot

CANCEL = """mutation { cancelScheduledChange {
  __typename
  ... on Workspace { plan { code } emailCredits scheduledChange { plan { code } } }
  ... on UserError { code field message }
} }"""
SCHEDULED = """{ workspace { ... on Workspace {
  scheduledChange { plan { code } emailCredits effectiveAt } } } }"""
BOUNDARY = datetime(2026, 12, 10, 9, 30, tzinfo=UTC)


@pytest.fixture
def member(make_workspace):
    return make_workspace("Acme", plan_code="email", email_credits=20000)


def schedule(gateway, member, email: int = 10000) -> None:
    with gateway.write_sessions.begin() as session:
        session.add(
            ScheduledChange(
                workspace_id=member.id,
                plan_code="email",
                email_credits=email,
                messaging_credits=0,
                effective_at=BOUNDARY,
                created_at=gateway.clock(),
            )
        )


def test_cancelling_removes_the_change_and_says_so(graphql, gateway, member):
    schedule(gateway, member)
    assert graphql(SCHEDULED, key=member.key)["workspace"]["scheduledChange"] == {
        "plan": {"code": "email"},
        "emailCredits": 10000,
        "effectiveAt": BOUNDARY.isoformat(),
    }

    result = graphql(CANCEL, key=member.key)["cancelScheduledChange"]

    assert result == {
        "__typename": "Workspace",
        "plan": {"code": "email"},
        "emailCredits": 20000,
        "scheduledChange": None,
    }
    assert graphql(SCHEDULED, key=member.key)["workspace"]["scheduledChange"] is None
    with gateway.sessions() as session:
        [event] = session.scalars(select(OutboxEvent).where(OutboxEvent.workspace_id == member.id))
    assert (event.sequence, event.type, event.payload) == (
        1,
        "plan_change.cancelled",
        {
            "plan": "email",
            "email_credits": 10000,
            "messaging_credits": 0,
            "effective_at": BOUNDARY.isoformat(),
            "reason": "cancelled by the customer",
        },
    )


def test_a_change_scheduled_through_checkout_can_be_cancelled(graphql, gateway, make_workspace):
    member = make_workspace("Acme", plan_code="omnichannel")
    graphql(
        """mutation { updateBillingDetails(input: {customerType: PERSON, name: "Erika",
        addressLine1: "Weg 1", city: "Köln", postalCode: "50667", country: "DE", email: "e@example.de"}) {
        __typename } }""",
        key=member.key,
    )
    quote = graphql(
        """mutation { quote(input: {planCode: "free"}) {
        ... on Quote { kind dueNow { total { amount } } expiresAt } } }""",
        key=member.key,
    )["quote"]
    assert quote["kind"] == "DOWNGRADE"
    checkout = {
        "planCode": "free",
        "expectedTotal": quote["dueNow"]["total"]["amount"],
        "quoteExpiresAt": quote["expiresAt"],
        "paymentMethod": {"method": "balance"},
        "idempotencyKey": "to-free",
    }
    done = graphql(
        "mutation($input: CheckoutInput!) { checkout(input: $input) { __typename } }",
        {"input": checkout},
        key=member.key,
    )["checkout"]
    assert done["__typename"] == "CheckoutSuccess"
    assert graphql(SCHEDULED, key=member.key)["workspace"]["scheduledChange"]["plan"] == {"code": "free"}

    result = graphql(CANCEL, key=member.key)["cancelScheduledChange"]

    assert (result["plan"], result["scheduledChange"]) == ({"code": "omnichannel"}, None)
    with gateway.sessions() as session:
        types = list(
            session.scalars(
                select(OutboxEvent.type)
                .where(OutboxEvent.workspace_id == member.id)
                .order_by(OutboxEvent.sequence)
            )
        )
    assert types[-1] == "plan_change.cancelled" and "plan_change.scheduled" in types


def test_nothing_to_cancel_is_a_typed_error(graphql, gateway, member):
    before = snapshot(gateway)
    result = graphql(CANCEL, key=member.key)["cancelScheduledChange"]
    assert (result["__typename"], result["code"], result["field"]) == (
        "NoScheduledChange",
        "NO_SCHEDULED_CHANGE",
        [],
    )
    assert snapshot(gateway) == before


def test_cancelling_twice(graphql, gateway, member):
    schedule(gateway, member)
    assert graphql(CANCEL, key=member.key)["cancelScheduledChange"]["__typename"] == "Workspace"
    assert graphql(CANCEL, key=member.key)["cancelScheduledChange"]["code"] == "NO_SCHEDULED_CHANGE"


def test_only_the_callers_change_is_cancelled(graphql, gateway, member, make_workspace):
    other = make_workspace("Other Ltd", plan_code="email", email_credits=20000)
    schedule(gateway, other)
    assert graphql(CANCEL, key=member.key)["cancelScheduledChange"]["code"] == "NO_SCHEDULED_CHANGE"
    assert graphql(SCHEDULED, key=other.key)["workspace"]["scheduledChange"] is not None


@pytest.mark.parametrize("key", [None, "bgw_000000000000_wrong"])
def test_cancelling_needs_a_key(client, gateway, member, key):
    schedule(gateway, member)
    before = snapshot(gateway)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    response = client.post("/graphql", json={"query": CANCEL}, headers=headers)
    assert response.json()["data"]["cancelScheduledChange"]["code"] == "AUTHENTICATION_REQUIRED"
    assert snapshot(gateway) == before
