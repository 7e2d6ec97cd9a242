"""The timing of plan changes as a matrix, through GraphQL: quote → checkout → the workspace's
limits now → the renewal applying what was scheduled.

Rows: the plan goes up, stays or goes down, against each limit going up, staying or going
down, from Free and between paid plans. The rule (README, "Timing of plan changes"): no
limit is lowered before the next period. The part applied now is the target plan with each
limit at max(current, target); the exact target follows at renewal. A lower plan, or only
reductions, waits for renewal entirely; from Free a new period starts now with the target.

Some cells cannot exist and are left out: from Free no plan is lower and every paid limit
is above Free's (1,000 email, no messaging); a plan move between Email and Omnichannel
always moves messaging (Email has none, Omnichannel at least 1,000).

Each workspace is a German consumer with 1,500.00 on its balance, 10 days into a period of
30 (2026-11-10 09:30 to 2026-12-10 09:30), and pays with its balance.
"""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple

import pytest

from gateway.services.renewal import RenewalStatus, renew_due

from helpers import billing, card

QUOTE = """mutation($input: QuoteInput!) { quote(input: $input) { __typename
  ... on UserError { code field message }
  ... on Quote { kind emailCredits messagingCredits expiresAt monthlySubtotal { amount }
    changes { timing effectiveAt plan { code } emailCredits messagingCredits }
    dueNow { total { amount } } dueAtRenewal { subtotal { amount } } } } }"""
CHECKOUT = """mutation($input: CheckoutInput!) { checkout(input: $input) { __typename
  ... on UserError { code field message } ... on CheckoutSuccess { kind } } }"""
TOP_UP = """mutation($input: TopUpInput!) { topUpBalance(input: $input) { __typename } }"""
WORKSPACE = """{ workspace { ... on Workspace {
  plan { code } emailCredits messagingCredits period { start end }
  scheduledChange { plan { code } emailCredits messagingCredits effectiveAt } } } }"""

Config = tuple[str, int, int]  # plan code, email credits, messaging credits

FREE: Config = ("free", 1000, 0)
EMAIL: Config = ("email", 50000, 0)
OMNI: Config = ("omnichannel", 50000, 10000)


class Row(NamedTuple):
    current: Config
    target: Config
    kind: str
    now: Config | None  # the part applied at checkout
    at_renewal: Config | None  # the part scheduled for the next period


ROWS = {
    # From Free: a new period starts now with the target as asked.
    "free, plan up, email up, messaging same": Row(
        FREE, ("email", 10000, 0), "NEW_PERIOD", ("email", 10000, 0), None
    ),
    "free, plan up, email up, messaging up": Row(
        FREE, ("omnichannel", 20000, 5000), "NEW_PERIOD", ("omnichannel", 20000, 5000), None
    ),
    "free, plan same, limits same": Row(FREE, FREE, "NONE", None, None),
    # Same paid plan: each limit up, same or down.
    "same plan, email up, messaging up": Row(
        OMNI, ("omnichannel", 100000, 20000), "UPGRADE", ("omnichannel", 100000, 20000), None
    ),
    "same plan, email up, messaging same": Row(
        OMNI, ("omnichannel", 100000, 10000), "UPGRADE", ("omnichannel", 100000, 10000), None
    ),
    "same plan, email up, messaging down": Row(
        OMNI,
        ("omnichannel", 100000, 5000),
        "SPLIT",
        ("omnichannel", 100000, 10000),
        ("omnichannel", 100000, 5000),
    ),
    "same plan, email same, messaging up": Row(
        OMNI, ("omnichannel", 50000, 20000), "UPGRADE", ("omnichannel", 50000, 20000), None
    ),
    "same plan, email same, messaging same": Row(OMNI, OMNI, "NONE", None, None),
    "same plan, email same, messaging down": Row(
        OMNI, ("omnichannel", 50000, 5000), "DOWNGRADE", None, ("omnichannel", 50000, 5000)
    ),
    "same plan, email down, messaging up": Row(
        OMNI,
        ("omnichannel", 20000, 20000),
        "SPLIT",
        ("omnichannel", 50000, 20000),
        ("omnichannel", 20000, 20000),
    ),
    "same plan, email down, messaging same": Row(
        OMNI, ("omnichannel", 20000, 10000), "DOWNGRADE", None, ("omnichannel", 20000, 10000)
    ),
    "same plan, email down, messaging down": Row(
        OMNI, ("omnichannel", 20000, 5000), "DOWNGRADE", None, ("omnichannel", 20000, 5000)
    ),
    # Plan up, Email → Omnichannel (messaging always goes up).
    "plan up, email up": Row(
        EMAIL, ("omnichannel", 100000, 5000), "UPGRADE", ("omnichannel", 100000, 5000), None
    ),
    "plan up, email same": Row(
        EMAIL, ("omnichannel", 50000, 5000), "UPGRADE", ("omnichannel", 50000, 5000), None
    ),
    "plan up, email down": Row(
        EMAIL,
        ("omnichannel", 20000, 5000),
        "SPLIT",
        ("omnichannel", 50000, 5000),
        ("omnichannel", 20000, 5000),
    ),
    # Issue 9's report: Email with 100,000 credits kept its 100,000 only on the same plan.
    "plan up, email down to the minimum": Row(
        ("email", 100000, 0),
        ("omnichannel", 5000, 20000),
        "SPLIT",
        ("omnichannel", 100000, 20000),
        ("omnichannel", 5000, 20000),
    ),
    # Omnichannel keeping 500,000 email credits (423.00) costs less than Email's 500,000
    # (442.50): applying it now would be a refund, so all of it waits for renewal.
    "plan up, cheaper even with the limits kept": Row(
        ("email", 500000, 0), ("omnichannel", 5000, 1000), "DOWNGRADE", None, ("omnichannel", 5000, 1000)
    ),
    # Plan down, Omnichannel → Email (messaging always goes down): all at renewal.
    "plan down, email up": Row(OMNI, ("email", 100000, 0), "DOWNGRADE", None, ("email", 100000, 0)),
    "plan down, email same": Row(OMNI, ("email", 50000, 0), "DOWNGRADE", None, ("email", 50000, 0)),
    "plan down, email down": Row(OMNI, ("email", 20000, 0), "DOWNGRADE", None, ("email", 20000, 0)),
    "plan down to free": Row(OMNI, FREE, "DOWNGRADE", None, FREE),
}


def change(timing: str, at: str, config: Config) -> dict:
    plan, email, messaging = config
    return {
        "timing": timing,
        "effectiveAt": at,
        "plan": {"code": plan},
        "emailCredits": email,
        "messagingCredits": messaging if plan == "omnichannel" else None,  # null: the plan has none
    }


def config_of(node: dict) -> Config:
    """A workspace's or a scheduled change's plan and limits. A scheduled change shows null for a
    credit kind its plan lacks (the deprecated Workspace fields 0): the rows write 0."""
    messaging = node["messagingCredits"]
    if messaging is None:
        assert node["plan"]["code"] != "omnichannel"
    return (node["plan"]["code"], node["emailCredits"], 0 if messaging is None else messaging)


@pytest.mark.parametrize("row", ROWS.values(), ids=ROWS.keys())
def test_plan_change_matrix(graphql, gateway, clock, make_workspace, row: Row) -> None:
    plan, email, messaging = row.current
    member = make_workspace("Matrix", plan_code=plan, email_credits=email, messaging_credits=messaging)
    billing(graphql, member)
    method = {"method": "card", "newCard": card()}
    top_up = {"amount": "1500.00", "paymentMethod": method, "idempotencyKey": "top-up"}
    assert graphql(TOP_UP, {"input": top_up}, key=member.key)["topUpBalance"]["__typename"] == "TopUpSuccess"
    now = clock.advance(days=10)
    before = graphql(WORKSPACE, key=member.key)["workspace"]
    assert config_of(before) == row.current
    period_end = before["period"]["end"]

    target_plan, target_email, target_messaging = row.target
    sliders = {"planCode": target_plan, "emailCredits": target_email, "messagingCredits": target_messaging}
    offer = graphql(QUOTE, {"input": sliders}, key=member.key)["quote"]

    # The quote shows each part with its date.
    assert offer["__typename"] == "Quote", offer
    assert offer["kind"] == row.kind
    expected = []
    if row.now is not None:
        expected.append(change("IMMEDIATE", now.isoformat(), row.now))
    if row.at_renewal is not None:
        expected.append(change("AT_RENEWAL", period_end, row.at_renewal))
    assert offer["changes"] == expected
    assert Decimal(offer["dueNow"]["total"]["amount"]) >= 0  # never a refund
    assert offer["dueAtRenewal"]["subtotal"] == offer["monthlySubtotal"] or row.kind == "NONE"

    done = graphql(
        CHECKOUT,
        {
            "input": {
                **sliders,
                "expectedTotal": offer["dueNow"]["total"]["amount"],
                "quoteExpiresAt": offer["expiresAt"],
                "paymentMethod": {"method": "balance"},
                "idempotencyKey": "checkout",
            }
        },
        key=member.key,
    )["checkout"]
    if row.kind == "NONE":
        assert (done["__typename"], done["code"]) == ("PaymentRejected", "NOTHING_TO_CHANGE")
    else:
        assert done == {"__typename": "CheckoutSuccess", "kind": row.kind}

    # Now: the part applied now, which never lowers a limit the workspace has.
    after = graphql(WORKSPACE, key=member.key)["workspace"]
    assert config_of(after) == (row.now or row.current)
    assert after["emailCredits"] >= before["emailCredits"]
    assert after["messagingCredits"] >= before["messagingCredits"]
    scheduled = after["scheduledChange"]
    if row.at_renewal is None:
        assert scheduled is None
    else:
        assert (config_of(scheduled), scheduled["effectiveAt"]) == (row.at_renewal, period_end)

    # At renewal: exactly the target.
    boundary = after["period"]["end"]
    results = renew_due(gateway, clock.advance(days=40))
    assert [r.status for r in results][:1] in ([RenewalStatus.RENEWED], [RenewalStatus.FREE])
    assert results[0].applied_change is (row.at_renewal is not None)
    assert results[0].period_start is not None and results[0].period_start.isoformat() == boundary
    renewed = graphql(WORKSPACE, key=member.key)["workspace"]
    assert config_of(renewed) == (row.current if row.kind == "NONE" else row.target)
    assert renewed["scheduledChange"] is None


RECORD = """mutation($input: RecordUsageInput!) { recordUsage(input: $input) {
  __typename ... on UserError { code } } }"""
USAGE = """{ workspace { ... on Workspace { plan { code } usage { credits { kind used included } } } } }"""


def test_the_reported_case_keeps_its_email_credits_usable_until_renewal(
    graphql, gateway, clock, make_workspace
):
    """Issue 9: on Email with 100,000 credits and 50,000 used, moving to Omnichannel with 5,000
    email credits left 50,000 used of 5,000 and refused the next email."""
    member = make_workspace("Reported", plan_code="email", email_credits=100000)
    billing(graphql, member)
    method = {"method": "card", "newCard": card()}
    sent = graphql(RECORD, {"input": {"messageType": "EMAIL", "quantity": 50000}}, key=member.key)
    assert sent["recordUsage"]["__typename"] == "UsageRecorded"
    clock.advance(days=10)
    sliders = {"planCode": "omnichannel", "emailCredits": 5000, "messagingCredits": 20000}
    offer = graphql(QUOTE, {"input": sliders}, key=member.key)["quote"]
    assert offer["kind"] == "SPLIT"
    checkout = {
        **sliders,
        "expectedTotal": offer["dueNow"]["total"]["amount"],
        "quoteExpiresAt": offer["expiresAt"],
        "paymentMethod": method,
        "idempotencyKey": "checkout",
    }
    assert graphql(CHECKOUT, {"input": checkout}, key=member.key)["checkout"]["kind"] == "SPLIT"

    assert graphql(USAGE, key=member.key)["workspace"] == {
        "plan": {"code": "omnichannel"},
        "usage": {
            "credits": [
                {"kind": "EMAIL", "used": "50000", "included": "100000"},
                {"kind": "MESSAGING", "used": "0", "included": "20000"},
            ]
        },
    }
    sent = graphql(RECORD, {"input": {"messageType": "EMAIL", "quantity": 1}}, key=member.key)
    assert sent["recordUsage"]["__typename"] == "UsageRecorded"
