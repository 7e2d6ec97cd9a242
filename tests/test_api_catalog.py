"""The public catalog: plans, Select a Plan, message types and destinations."""

from __future__ import annotations

import pytest

from helpers import eur_json, snapshot

NOW = "2026-11-10T09:30:00+00:00"
PERIOD_END = "2026-12-10T09:30:00+00:00"

PLANS = """{ plans {
  code name description tier channels purchasable adjustable requiresQuote
  basePrice { amount currency }
  emailCredits { ...option } messagingCredits { ...option }
} }
fragment option on CreditOption {
  kind included min max step default adjustable
  tiers { fromCredits upTo unitPrice { amount currency } }
}"""

SELECT = """mutation($code: String!) { selectPlan(planCode: $code) {
  __typename
  ... on PlanSelection { plan { code } adjustable requiresQuote salesContact emailCredits messagingCredits
                         change effectiveAt }
  ... on UserError { code message field }
  ... on UnknownPlan { planCode }
  ... on RenewalPending { periodEnd }
} }"""


def tier(start: int, up_to: int | None, price: str) -> dict:
    return {"fromCredits": start, "upTo": up_to, "unitPrice": eur_json(price)}


EXPECTED_PLANS = [
    {
        "code": "free",
        "name": "Free",
        "description": "Use the product with basic limits.",
        "tier": 0,
        "channels": ["EMAIL"],
        "purchasable": True,
        "adjustable": False,
        "requiresQuote": False,
        "basePrice": eur_json("0.00"),
        "emailCredits": {
            "kind": "EMAIL",
            "included": 1000,
            "min": 1000,
            "max": 1000,
            "step": 1,
            "default": 1000,
            "adjustable": False,
            "tiers": [],
        },
        "messagingCredits": None,
    },
    {
        "code": "email",
        "name": "Email",
        "description": "For teams whose primary channel is email.",
        "tier": 1,
        "channels": ["EMAIL"],
        "purchasable": True,
        "adjustable": True,
        "requiresQuote": False,
        "basePrice": eur_json("15.00"),
        "emailCredits": {
            "kind": "EMAIL",
            "included": 5000,
            "min": 5000,
            "max": 500000,
            "step": 5000,
            "default": 10000,
            "adjustable": True,
            "tiers": [
                tier(5001, 50000, "0.0015"),
                tier(50001, 200000, "0.0010"),
                tier(200001, None, "0.0007"),
            ],
        },
        "messagingCredits": None,
    },
    {
        "code": "omnichannel",
        "name": "Omnichannel",
        "description": "Email, SMS and WhatsApp in one workspace, with cross-channel automations.",
        "tier": 2,
        "channels": ["EMAIL", "SMS", "WHATSAPP"],
        "purchasable": True,
        "adjustable": True,
        "requiresQuote": False,
        "basePrice": eur_json("39.00"),
        "emailCredits": {
            "kind": "EMAIL",
            "included": 5000,
            "min": 5000,
            "max": 1000000,
            "step": 5000,
            "default": 20000,
            "adjustable": True,
            "tiers": [
                tier(5001, 50000, "0.0012"),
                tier(50001, 250000, "0.0009"),
                tier(250001, None, "0.0006"),
            ],
        },
        "messagingCredits": {
            "kind": "MESSAGING",
            "included": 1000,
            "min": 1000,
            "max": 500000,
            "step": 1000,
            "default": 5000,
            "adjustable": True,
            "tiers": [
                tier(1001, 20000, "0.0095"),
                tier(20001, 100000, "0.0090"),
                tier(100001, None, "0.0085"),
            ],
        },
    },
    {
        "code": "custom",
        "name": "Custom",
        "description": "Advanced or enterprise requirements: volumes, terms and support tailored with our "
        "sales team.",
        "tier": 3,
        "channels": ["EMAIL", "SMS", "WHATSAPP"],
        "purchasable": False,
        "adjustable": False,
        "requiresQuote": True,
        "basePrice": None,
        "emailCredits": None,
        "messagingCredits": None,
    },
]


@pytest.fixture
def key_of(make_workspace):
    """API keys by workspace kind: free, a paid Email and a paid Omnichannel workspace."""
    return {
        "free": make_workspace("Free Ltd").key,
        "email": make_workspace("Mail Ltd", plan_code="email", email_credits=10000).key,
        "omnichannel": make_workspace(
            "Omni Ltd", plan_code="omnichannel", email_credits=50000, messaging_credits=10000
        ).key,
    }


# -------------------------------------------------------------------------- plans


def test_plans_lists_the_catalog_lowest_tier_first(graphql):
    assert graphql(PLANS)["plans"] == EXPECTED_PLANS


def test_plans_list_their_features_as_the_catalog_orders_them(graphql, gateway):
    plans = graphql("{ plans { code features } }")["plans"]
    assert {p["code"]: p["features"] for p in plans} == {
        plan.code: list(plan.features) for plan in gateway.catalog.plans
    }
    omnichannel = next(p for p in plans if p["code"] == "omnichannel")
    assert omnichannel["features"][:4] == [
        "Use email and messaging channels in one workspace",
        "Send large-scale email marketing campaigns",
        "Launch SMS and WhatsApp campaigns",
        "Build cross-channel automations",
    ]
    assert all(p["features"] for p in plans)


def test_plans_need_no_key_and_ignore_a_wrong_one(client):
    for headers in ({}, {"Authorization": "Bearer bgw_000000000000_nope"}):
        response = client.post("/graphql", json={"query": "{ plans { code } }"}, headers=headers)
        assert response.json() == {
            "data": {"plans": [{"code": c} for c in ("free", "email", "omnichannel", "custom")]}
        }


def test_tier_boundaries_are_contiguous_and_prices_are_decimal_strings(graphql):
    for plan in graphql(PLANS)["plans"]:
        for option in (plan["emailCredits"], plan["messagingCredits"]):
            if option is None:
                continue
            expected_start = option["included"] + 1
            for position, t in enumerate(option["tiers"]):
                assert t["fromCredits"] == expected_start
                assert isinstance(t["unitPrice"]["amount"], str)
                if t["upTo"] is None:
                    assert position == len(option["tiers"]) - 1
                else:
                    expected_start = t["upTo"] + 1
            assert option["min"] <= option["default"] <= option["max"]
            assert (option["default"] - option["min"]) % option["step"] == 0


# ---------------------------------------------------------------------- messageTypes


def test_message_types_email_first(graphql):
    assert graphql("{ messageTypes { code name channel creditKind segmented } }")["messageTypes"] == [
        {"code": "EMAIL", "name": "Email", "channel": "EMAIL", "creditKind": "EMAIL", "segmented": False},
        {"code": "SMS", "name": "SMS", "channel": "SMS", "creditKind": "MESSAGING", "segmented": True},
        {
            "code": "WHATSAPP_MARKETING",
            "name": "WhatsApp Marketing",
            "channel": "WHATSAPP",
            "creditKind": "MESSAGING",
            "segmented": False,
        },
        {
            "code": "WHATSAPP_UTILITY",
            "name": "WhatsApp Utility",
            "channel": "WHATSAPP",
            "creditKind": "MESSAGING",
            "segmented": False,
        },
        {
            "code": "WHATSAPP_AUTHENTICATION",
            "name": "WhatsApp Authentication",
            "channel": "WHATSAPP",
            "creditKind": "MESSAGING",
            "segmented": False,
        },
    ]


def test_destinations_sorted_by_name_with_unique_codes(graphql):
    destinations = graphql("{ destinations { country name } }")["destinations"]
    names = [d["name"] for d in destinations]
    codes = [d["country"] for d in destinations]
    assert names == sorted(names)
    assert len(set(codes)) == len(codes) > 50
    assert all(len(c) == 2 and c.isascii() and c.isupper() for c in codes)
    for pair in (
        {"country": "DE", "name": "Germany"},
        {"country": "CN", "name": "China"},
        {"country": "US", "name": "United States"},
        {"country": "IN", "name": "India"},
    ):
        assert pair in destinations


def test_each_destination_lists_the_message_types_it_offers(graphql, gateway):
    destinations = graphql("{ destinations { country messageTypes { code } } }")["destinations"]
    offered = {d["country"]: [m["code"] for m in d["messageTypes"]] for d in destinations}
    assert offered["CN"] == ["SMS"]  # the rate card has no WhatsApp rate for China
    assert offered["DE"] == ["SMS", "WHATSAPP_MARKETING", "WHATSAPP_UTILITY", "WHATSAPP_AUTHENTICATION"]
    for country, codes in offered.items():  # exactly the types the rate provider prices there
        assert codes == [
            m.code
            for m in gateway.rates.message_types()
            if gateway.rates.credits_per_message(country, m.code)
        ], country


# ----------------------------------------------------------------------- selectPlan


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (
            "free",
            {
                "plan": {"code": "free"},
                "adjustable": False,
                "requiresQuote": False,
                "salesContact": None,
                "emailCredits": 1000,
                "messagingCredits": None,  # the plan has no messaging credits
            },
        ),
        (
            "email",
            {
                "plan": {"code": "email"},
                "adjustable": True,
                "requiresQuote": False,
                "salesContact": None,
                "emailCredits": 10000,
                "messagingCredits": None,
            },
        ),
        (
            "omnichannel",
            {
                "plan": {"code": "omnichannel"},
                "adjustable": True,
                "requiresQuote": False,
                "salesContact": None,
                "emailCredits": 20000,
                "messagingCredits": 5000,
            },
        ),
        (
            "custom",
            {
                "plan": {"code": "custom"},
                "adjustable": False,
                "requiresQuote": True,
                "salesContact": "sales@contact.center",
                "emailCredits": None,  # sold by quote: no slider
                "messagingCredits": None,
            },
        ),
    ],
)
def test_select_plan_anonymous(graphql, code, expected):
    result = graphql(SELECT, {"code": code})["selectPlan"]
    assert result == {"__typename": "PlanSelection", **expected, "change": None, "effectiveAt": None}


@pytest.mark.parametrize(
    ("workspace", "code", "sliders", "change", "effective_at"),
    [
        # From Free: a paid plan starts a new period now; staying is no change.
        ("free", "free", (1000, None), "NONE", None),
        ("free", "email", (10000, None), "NEW_PERIOD", NOW),
        ("free", "omnichannel", (20000, 5000), "NEW_PERIOD", NOW),
        # A paid Email workspace: Omnichannel at its defaults costs more, so it is an upgrade now.
        ("email", "email", (10000, None), "NONE", None),
        ("email", "omnichannel", (20000, 5000), "UPGRADE", NOW),
        ("email", "free", (1000, None), "DOWNGRADE", PERIOD_END),
        # A paid Omnichannel workspace: its own plan starts at its current limits; lower tiers wait.
        ("omnichannel", "omnichannel", (50000, 10000), "NONE", None),
        ("omnichannel", "email", (10000, None), "DOWNGRADE", PERIOD_END),
        ("omnichannel", "free", (1000, None), "DOWNGRADE", PERIOD_END),
    ],
)
def test_select_plan_authenticated(graphql, key_of, workspace, code, sliders, change, effective_at):
    result = graphql(SELECT, {"code": code}, key=key_of[workspace])["selectPlan"]
    assert result["__typename"] == "PlanSelection"
    assert result["plan"] == {"code": code}
    assert (result["emailCredits"], result["messagingCredits"]) == sliders
    assert result["change"] == change
    assert result["effectiveAt"] == effective_at


@pytest.mark.parametrize("workspace", ["free", "email", "omnichannel"])
def test_select_custom_needs_a_quote_request(graphql, key_of, workspace):
    result = graphql(SELECT, {"code": "custom"}, key=key_of[workspace])["selectPlan"]
    assert result == {
        "__typename": "PlanSelection",
        "plan": {"code": "custom"},
        "adjustable": False,
        "requiresQuote": True,
        "salesContact": "sales@contact.center",
        "emailCredits": None,  # sold by quote: no slider
        "messagingCredits": None,
        "change": None,
        "effectiveAt": None,
    }


@pytest.mark.parametrize("code", ["enterprise", "", "FREE", "Omnichannel", " email", "email ", "x" * 500])
@pytest.mark.parametrize("workspace", [None, "free", "omnichannel"])
def test_select_unknown_plan(graphql, key_of, code, workspace):
    key = key_of[workspace] if workspace else None
    result = graphql(SELECT, {"code": code}, key=key)["selectPlan"]
    assert result == {
        "__typename": "UnknownPlan",
        "code": "UNKNOWN_PLAN",
        "field": ["planCode"],
        "message": f"there is no plan {code!r}",
        "planCode": code,
    }


def test_select_plan_follows_the_clock_within_the_period(graphql, key_of, clock):
    clock.advance(days=12, hours=3)
    result = graphql(SELECT, {"code": "omnichannel"}, key=key_of["free"])["selectPlan"]
    assert (result["change"], result["effectiveAt"]) == ("NEW_PERIOD", "2026-11-22T12:30:00+00:00")
    result = graphql(SELECT, {"code": "email"}, key=key_of["omnichannel"])["selectPlan"]
    assert (result["change"], result["effectiveAt"]) == ("DOWNGRADE", PERIOD_END)


def test_select_plan_after_the_period_ended_waits_for_renewal(graphql, key_of, clock):
    clock.advance(days=30)  # exactly the period end of the paid workspaces
    result = graphql(SELECT, {"code": "email"}, key=key_of["omnichannel"])["selectPlan"]
    assert result == {
        "__typename": "RenewalPending",
        "code": "RENEWAL_PENDING",
        "field": [],
        "message": "the current period has ended; its renewal runs first",
        "periodEnd": PERIOD_END,
    }
    # A free plan has nothing to renew: its period rolls forward.
    result = graphql(SELECT, {"code": "email"}, key=key_of["free"])["selectPlan"]
    assert (result["change"], result["effectiveAt"]) == ("NEW_PERIOD", PERIOD_END)


def test_select_plan_writes_nothing(graphql, key_of, gateway):
    before = snapshot(gateway)
    for code in ("free", "email", "omnichannel", "custom", "nope"):
        for key in (None, *key_of.values()):
            graphql(SELECT, {"code": code}, key=key)
    assert snapshot(gateway) == before
