"""The caller's workspace: plan, period, allowances, plan actions and payment methods."""

from __future__ import annotations

import pytest

from helpers import snapshot

WORKSPACE = """{ workspace {
  __typename
  ... on Workspace { id name plan { code name } emailCredits messagingCredits period { start end }
                     allowances { kind limit } actions paymentMethods { code label } }
  ... on UserError { code message field }
} }"""

PAYMENT_METHODS = [{"code": "balance", "label": "My balance"}, {"code": "card", "label": "Credit card"}]
PERIOD = {"start": "2026-11-10T09:30:00+00:00", "end": "2026-12-10T09:30:00+00:00"}


def test_free_workspace(graphql, make_workspace):
    member = make_workspace("Free Ltd")
    assert graphql(WORKSPACE, key=member.key)["workspace"] == {
        "__typename": "Workspace",
        "id": member.id,
        "name": "Free Ltd",
        "plan": {"code": "free", "name": "Free"},
        "emailCredits": 1000,
        "messagingCredits": 0,
        "period": PERIOD,
        "allowances": [{"kind": "EMAIL", "limit": 1000}],
        "actions": ["UPGRADE_PLAN"],
        "paymentMethods": PAYMENT_METHODS,
    }


def test_omnichannel_workspace(graphql, make_workspace):
    member = make_workspace("Omni Ltd", plan_code="omnichannel", email_credits=50000, messaging_credits=10000)
    assert graphql(WORKSPACE, key=member.key)["workspace"] == {
        "__typename": "Workspace",
        "id": member.id,
        "name": "Omni Ltd",
        "plan": {"code": "omnichannel", "name": "Omnichannel"},
        "emailCredits": 50000,
        "messagingCredits": 10000,
        "period": PERIOD,
        "allowances": [{"kind": "EMAIL", "limit": 50000}, {"kind": "MESSAGING", "limit": 10000}],
        "actions": ["CUSTOMIZE_CURRENT_PLAN", "CHANGE_PLAN"],
        "paymentMethods": PAYMENT_METHODS,
    }


def test_email_workspace(graphql, make_workspace):
    member = make_workspace("Mail Ltd", plan_code="email")  # default slider position
    result = graphql(WORKSPACE, key=member.key)["workspace"]
    assert result["plan"] == {"code": "email", "name": "Email"}
    assert (result["emailCredits"], result["messagingCredits"]) == (10000, 0)
    assert result["allowances"] == [{"kind": "EMAIL", "limit": 10000}]
    assert result["actions"] == ["CUSTOMIZE_CURRENT_PLAN", "CHANGE_PLAN"]


def test_a_free_period_rolls_forward_monthly(graphql, make_workspace, clock):
    member = make_workspace()
    clock.advance(days=45)  # 2026-12-25
    assert graphql(WORKSPACE, key=member.key)["workspace"]["period"] == {
        "start": "2026-12-10T09:30:00+00:00",
        "end": "2027-01-10T09:30:00+00:00",
    }
    clock.advance(days=400)  # 2028-01-29
    assert graphql(WORKSPACE, key=member.key)["workspace"]["period"] == {
        "start": "2028-01-10T09:30:00+00:00",
        "end": "2028-02-10T09:30:00+00:00",
    }


@pytest.mark.parametrize("days", [0, 1, 29])
def test_a_paid_period_stays_until_renewal(graphql, make_workspace, clock, days):
    member = make_workspace(plan_code="omnichannel")
    clock.advance(days=days)
    assert graphql(WORKSPACE, key=member.key)["workspace"]["period"] == PERIOD


def test_reading_the_workspace_writes_nothing(graphql, make_workspace, gateway, clock):
    members = [make_workspace(), make_workspace(plan_code="omnichannel")]
    clock.advance(days=45)  # also when a free period has rolled forward
    before = snapshot(gateway)
    for member in members:
        graphql(WORKSPACE, key=member.key)
    assert snapshot(gateway) == before
