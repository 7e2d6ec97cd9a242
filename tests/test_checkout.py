"""Checkout through GraphQL: quote → checkout, paid by My balance or a card; upgrades,
downgrades and splits; refusals that change nothing; declines; 3-D Secure.

Prices (bundled catalog, EUR): Email 15.00/month with 5,000 credits included, 0.0015
per credit up to 50,000; Omnichannel 39.00 with 5,000 email and 1,000 messaging
credits included, 0.0012 per email credit up to 50,000, 0.0095 per messaging credit up
to 20,000. Billing details: a German consumer, so 19 % VAT, computed once on the
order's base and rounded half up. The clock starts at 2026-11-10 09:30 UTC; the first
period ends 2026-12-10 09:30 (30 days). Quotes expire 30 minutes after they are made.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from gateway.storage.db import Card, Invoice, LedgerEntry, Payment, Workspace

from helpers import (
    GERMAN_PERSON,
    INVOICED_DETAILS,
    THREE_DS,
    billing,
    card,
    eur_json,
    events,
    reconcile,
    rows,
    snapshot,
)

START = datetime(2026, 11, 10, 9, 30, tzinfo=UTC)
PERIOD_END = datetime(2026, 12, 10, 9, 30, tzinfo=UTC)


DECLINED = "4000000000000002"

UPDATE_DETAILS = """mutation($input: UpdateBillingDetailsInput!) { updateBillingDetails(input: $input) {
  __typename ... on BillingDetails { missingFields } } }"""
QUOTE = """mutation($input: QuoteInput!) { quote(input: $input) { __typename
  ... on UserError { code field }
  ... on Quote { kind emailCredits messagingCredits expiresAt
    changes { timing effectiveAt plan { code } emailCredits messagingCredits }
    dueNow { ...charge } dueAtRenewal { total { amount } }
    balance { now { amount currency } afterPurchase { amount currency } sufficient } } } }
fragment charge on Charge { lines { kind description quantity unitPrice { amount } amount { amount } }
  subtotal { amount } tax { amount } total { amount currency }
  taxLines { name rate base { amount } amount { amount } } }"""
CHECKOUT = """mutation($input: CheckoutInput!) { checkout(input: $input) { __typename
  ... on UserError { code field message }
  ... on CheckoutSuccess { kind
    workspace { plan { code } emailCredits messagingCredits period { start end } balance { amount currency } }
    invoice { ...invoice }
    payment { id method status amount { amount currency } card { last4 brand isRenewalMethod } } }
  ... on PaymentActionRequired { paymentId nextAction }
  ... on PaymentDeclined { paymentId declineCode }
  ... on InsufficientBalance { balance { amount currency } required { amount currency } shortfall { amount currency } }
  ... on QuoteChanged { expectedTotal quote { kind expiresAt computedAt dueNow { total { amount } }
                                              balance { now { amount } afterPurchase { amount } sufficient } } }
  ... on BillingDetailsIncomplete { missingFields }
  ... on UnknownPlan { planCode }
  ... on PlanNotPurchasable { planCode salesContact }
  ... on PlanNotAdjustable { planCode }
  ... on InvalidVolume { value min max step }
} }
fragment invoice on Invoice { id number kind status issuedAt
  lines { kind description quantity unitPrice { amount currency } amount { amount currency } }
  taxLines { name jurisdiction rate base { amount currency } amount { amount currency } treatment note }
  subtotal { amount currency } tax { amount currency } total { amount currency } paymentMethod
  periodStart periodEnd billingDetails }"""
CONFIRM = """mutation($id: ID!, $answer: String) { confirmPayment(paymentId: $id, challengeResponse: $answer) {
  __typename ... on UserError { code field message }
  ... on CheckoutSuccess { kind workspace { plan { code } emailCredits messagingCredits period { start end } }
                           invoice { id number total { amount } paymentMethod }
                           payment { id method status card { last4 isRenewalMethod } } }
  ... on PaymentDeclined { paymentId declineCode } } }"""
TOP_UP = """mutation($input: TopUpInput!) { topUpBalance(input: $input) { __typename
  ... on UserError { code field message }
  ... on TopUpSuccess { amount { amount currency } balance { amount currency }
                        payment { id method status amount { amount } card { last4 } } } } }"""
ADD_CARD = """mutation($input: AddCardInput!) { addCard(input: $input) { __typename
  ... on CardAdded { card { id last4 isRenewalMethod } } ... on UserError { code field } } }"""
WORKSPACE = """{ workspace { ... on Workspace {
  plan { code } emailCredits messagingCredits period { start end } balance { amount currency } actions
  cards { id last4 }
  scheduledChange { plan { code } emailCredits messagingCredits effectiveAt
                    dueAtRenewal { lines { description amount { amount } } subtotal { amount } tax { amount }
                                   total { amount } } }
  invoices { number total { amount } } } } }"""


# ------------------------------------------------------------------ helpers


def quote(graphql, member, plan: str, **sliders) -> dict:
    result = graphql(QUOTE, {"input": {"planCode": plan, **sliders}}, key=member.key)["quote"]
    assert result["__typename"] == "Quote", result
    return result


def checkout(
    graphql,
    member,
    plan: str,
    offer: dict | None = None,
    *,
    key: str = "checkout-1",
    payment: dict | None = None,
    **fields,
) -> dict:
    """Checkout Now with the total and expiry of ``offer`` (a quote), unless given in ``fields``."""
    input_: dict[str, Any] = {
        "planCode": plan,
        "paymentMethod": payment or {"method": "balance"},
        "idempotencyKey": key,
    }
    if offer is not None:
        input_.update(
            expectedTotal=offer["dueNow"]["total"]["amount"],
            quoteExpiresAt=offer["expiresAt"],
            emailCredits=offer["emailCredits"],
            messagingCredits=offer["messagingCredits"],
        )
    input_.update(fields)
    return graphql(CHECKOUT, {"input": input_}, key=member.key)["checkout"]


def top_up(graphql, member, amount: str, *, key: str = "top-up-1", **payment) -> dict:
    method = {"method": "card", "newCard": card(), **payment}
    result = graphql(
        TOP_UP, {"input": {"amount": amount, "paymentMethod": method, "idempotencyKey": key}}, key=member.key
    )["topUpBalance"]
    return result


def workspace(graphql, member) -> dict:
    return graphql(WORKSPACE, key=member.key)["workspace"]


def ledger(gateway, member) -> list[tuple[str, int, int]]:
    """The workspace's ledger entries in the order they were written: (kind, amount, balance after).

    Entries written at one clock reading are ordered by their chain: each entry's balance
    after, less its amount, is the previous entry's balance after (the first one's is 0).
    """
    with gateway.sessions() as session:
        entries = list(session.scalars(select(LedgerEntry).where(LedgerEntry.workspace_id == member.id)))
    chain, balance = [], 0
    while entries:
        following = [e for e in entries if e.balance_after_minor - e.amount_minor == balance]
        assert following, f"the ledger's running balance breaks after {balance}"
        entry = min(following, key=lambda e: e.created_at)
        entries.remove(entry)
        chain.append((entry.kind, entry.amount_minor, entry.balance_after_minor))
        balance = entry.balance_after_minor
    return chain


def iso(moment: datetime) -> str:
    return moment.isoformat()


# ------------------------------------------------------------------ fixtures


@pytest.fixture
def free(graphql, make_workspace):
    """A Free workspace with complete (German consumer) billing details."""
    member = make_workspace("Free Ltd")
    billing(graphql, member)
    return member


@pytest.fixture
def funded(graphql, free):
    """The Free workspace with 150.00 on its balance (a card top-up)."""
    assert top_up(graphql, free, "150.00", key="fund")["__typename"] == "TopUpSuccess"
    return free


# Free -> Omnichannel at its defaults (20,000 email, 5,000 messaging credits).
OMNI_LINES = [
    {
        "kind": "BASE",
        "description": "Omnichannel plan, monthly base price",
        "quantity": 1,
        "unitPrice": None,
        "amount": eur_json("39.00"),
    },
    {
        "kind": "CREDITS",
        "description": "Email credits 5,001–20,000",
        "quantity": 15000,
        "unitPrice": eur_json("0.0012"),
        "amount": eur_json("18.00"),
    },  # 15,000 x 0.0012
    {
        "kind": "CREDITS",
        "description": "Messaging credits 1,001–5,000",
        "quantity": 4000,
        "unitPrice": eur_json("0.0095"),
        "amount": eur_json("38.00"),
    },  # 4,000 x 0.0095
]  # 95.00; VAT 19 % = 18.05; 113.05
OMNI_VAT = {
    "name": "VAT 19% (DE)",
    "jurisdiction": "DE",
    "rate": "0.19",
    "base": eur_json("95.00"),
    "amount": eur_json("18.05"),
    "treatment": "STANDARD",
    "note": None,
}


# ------------------------------------------------------------------ the full flow


def test_free_to_omnichannel_paid_by_balance(graphql, gateway, clock, free):
    now = clock.advance(days=5)  # 2026-11-15 09:30: the Free period started on the 10th
    new_end = datetime(2026, 12, 15, 9, 30, tzinfo=UTC)

    topped = top_up(graphql, free, "150.00", key="top-up-1")
    assert topped == {
        "__typename": "TopUpSuccess",
        "amount": eur_json("150.00"),
        "balance": eur_json("150.00"),
        "payment": {
            "id": topped["payment"]["id"],
            "method": "card",
            "status": "succeeded",
            "amount": {"amount": "150.00"},
            "card": None,
        },
    }

    offer = quote(graphql, free, "omnichannel")
    assert offer["kind"] == "NEW_PERIOD"
    assert offer["changes"] == [
        {
            "timing": "IMMEDIATE",
            "effectiveAt": iso(now),
            "plan": {"code": "omnichannel"},
            "emailCredits": 20000,
            "messagingCredits": 5000,
        }
    ]
    assert offer["dueNow"] == {
        "lines": [
            {
                **line,
                "unitPrice": {"amount": line["unitPrice"]["amount"]} if line["unitPrice"] else None,
                "amount": {"amount": line["amount"]["amount"]},
            }
            for line in OMNI_LINES
        ],
        "subtotal": {"amount": "95.00"},
        "tax": {"amount": "18.05"},
        "total": eur_json("113.05"),
        "taxLines": [
            {
                "name": "VAT 19% (DE)",
                "rate": "0.19",
                "base": {"amount": "95.00"},
                "amount": {"amount": "18.05"},
            }
        ],
    }
    assert offer["balance"] == {
        "now": eur_json("150.00"),
        "afterPurchase": eur_json("36.95"),
        "sufficient": True,
    }
    assert offer["expiresAt"] == iso(now + timedelta(minutes=30))

    done = checkout(graphql, free, "omnichannel", offer)

    invoice, payment = done["invoice"], done["payment"]
    assert done == {
        "__typename": "CheckoutSuccess",
        "kind": "NEW_PERIOD",
        "workspace": {
            "plan": {"code": "omnichannel"},
            "emailCredits": 20000,
            "messagingCredits": 5000,
            "period": {"start": iso(now), "end": iso(new_end)},
            "balance": eur_json("36.95"),
        },
        "invoice": {
            "id": invoice["id"],
            "number": "INV-2026-000001",
            "kind": "checkout",
            "status": "PAID",
            "issuedAt": iso(now),
            "lines": OMNI_LINES,
            "taxLines": [OMNI_VAT],
            "subtotal": eur_json("95.00"),
            "tax": eur_json("18.05"),
            "total": eur_json("113.05"),
            "paymentMethod": "balance",
            "periodStart": iso(now),
            "periodEnd": iso(new_end),
            "billingDetails": INVOICED_DETAILS,
        },
        "payment": {
            "id": payment["id"],
            "method": "balance",
            "status": "succeeded",
            "amount": eur_json("113.05"),
            "card": None,
        },
    }
    seen = workspace(graphql, free)
    assert (seen["plan"], seen["period"], seen["balance"], seen["actions"], seen["invoices"]) == (
        {"code": "omnichannel"},
        {"start": iso(now), "end": iso(new_end)},
        eur_json("36.95"),
        ["CUSTOMIZE_CURRENT_PLAN", "CHANGE_PLAN"],
        [{"number": "INV-2026-000001", "total": {"amount": "113.05"}}],
    )

    # Reconciliation: the ledger's entries sum to the balance, each one carrying the running balance.
    assert ledger(gateway, free) == [("top_up", 15000, 15000), ("charge", -11305, 3695)]
    assert reconcile(gateway, free) == 3695
    payments = rows(gateway, Payment, free)
    # The frozen clock gives both payments one time: order them by purpose.
    assert sorted((p.id, p.purpose, p.method, p.status, p.amount_minor) for p in payments) == sorted(
        [
            (topped["payment"]["id"], "top_up", "card", "succeeded", 15000),
            (payment["id"], "checkout", "balance", "succeeded", 11305),
        ]
    )
    with gateway.sessions() as session:
        charge_entry = session.scalars(select(LedgerEntry).where(LedgerEntry.kind == "charge")).one()
        [checkout_payment] = [p for p in payments if p.purpose == "checkout"]
        assert checkout_payment.reference == charge_entry.id  # the payment points at its ledger entry
        assert session.get(Invoice, invoice["id"]).payment_id == payment["id"]
        assert session.get(Workspace, free.id).renewal_payment == "balance"

    # The events, numbered 1..n without gaps, written with the changes they report.
    assert events(gateway, free) == [
        (
            1,
            "balance.topped_up",
            {
                "payment_id": topped["payment"]["id"],
                "amount": "150.00",
                "currency": "EUR",
                "balance": "150.00",
            },
        ),
        (
            2,
            "plan_change.applied",
            {
                "from": {"plan": "free", "email_credits": 1000, "messaging_credits": 0},
                "to": {"plan": "omnichannel", "email_credits": 20000, "messaging_credits": 5000},
                "effective_at": iso(now),
                "reason": "checkout",
            },
        ),
        (
            3,
            "credits.reset",
            {  # a new paid period starts with fresh allowances
                "period_start": iso(now),
                "period_end": iso(now.replace(month=now.month + 1)),
                "plan": "omnichannel",
                "email_credits": 20000,
                "messaging_credits": 5000,
            },
        ),
        (
            4,
            "checkout.completed",
            {
                "kind": "new_period",
                "order": "Omnichannel (20,000 email, 5,000 messaging credits)",
                "total": "113.05",
                "currency": "EUR",
                "invoice_id": invoice["id"],
                "invoice_number": "INV-2026-000001",
                "payment_id": payment["id"],
                "payment_method": "balance",
            },
        ),
    ]
    with gateway.sessions() as session:
        assert session.get(Workspace, free.id).event_sequence == 4


# ------------------------------------------------------------------ paid plans: up, down, split


def test_upgrade_between_paid_plans_charges_the_prorated_difference(graphql, gateway, clock, make_workspace):
    member = make_workspace("Mail Co", plan_code="email", email_credits=10000)  # 15 + 7.50 = 22.50 a month
    billing(graphql, member)
    assert top_up(graphql, member, "100.00")["__typename"] == "TopUpSuccess"
    now = clock.advance(days=10)  # 20 of 30 days left

    offer = quote(graphql, member, "omnichannel")
    # Remaining: 95.00 x 20/30 = 63.333.. -> 63.33; unused: 22.50 x 20/30 = 15.00.
    # 48.33 net; VAT 19 % = 9.1827 -> 9.18; 57.51 due now.
    assert offer["kind"] == "UPGRADE"
    assert offer["dueNow"]["lines"] == [
        {
            "kind": "REMAINING_TIME",
            "description": "Remaining time on Omnichannel (20,000 email, 5,000 messaging "
            "credits), 20 of 30 days",
            "quantity": 1,
            "unitPrice": None,
            "amount": {"amount": "63.33"},
        },
        {
            "kind": "UNUSED_TIME",
            "description": "Unused time on Email (10,000 email credits), 20 of 30 days",
            "quantity": 1,
            "unitPrice": None,
            "amount": {"amount": "-15.00"},
        },
    ]
    assert (offer["dueNow"]["subtotal"], offer["dueNow"]["tax"], offer["dueNow"]["total"]) == (
        {"amount": "48.33"},
        {"amount": "9.18"},
        eur_json("57.51"),
    )
    assert offer["balance"] == {
        "now": eur_json("100.00"),
        "afterPurchase": eur_json("42.49"),
        "sufficient": True,
    }

    done = checkout(graphql, member, "omnichannel", offer)

    assert done["__typename"] == "CheckoutSuccess" and done["kind"] == "UPGRADE"
    # The period anchor stays: the same period, now on Omnichannel.
    assert done["workspace"] == {
        "plan": {"code": "omnichannel"},
        "emailCredits": 20000,
        "messagingCredits": 5000,
        "period": {"start": iso(START), "end": iso(PERIOD_END)},
        "balance": eur_json("42.49"),
    }
    invoice = done["invoice"]
    assert [line["amount"]["amount"] for line in invoice["lines"]] == ["63.33", "-15.00"]
    assert (invoice["subtotal"], invoice["tax"], invoice["total"], invoice["issuedAt"]) == (
        eur_json("48.33"),
        eur_json("9.18"),
        eur_json("57.51"),
        iso(now),
    )
    assert (invoice["periodStart"], invoice["periodEnd"]) == (iso(START), iso(PERIOD_END))
    assert done["payment"]["amount"] == eur_json("57.51")
    assert ledger(gateway, member) == [("top_up", 10000, 10000), ("charge", -5751, 4249)]
    assert reconcile(gateway, member) == 4249
    assert [t for _, t, _ in events(gateway, member)] == [
        "balance.topped_up",
        "plan_change.applied",
        "checkout.completed",
    ]


def test_upgrade_paid_by_a_new_card_saves_it_for_renewals(graphql, gateway, clock, make_workspace):
    member = make_workspace("Mail Co", plan_code="email", email_credits=10000)
    billing(graphql, member)
    clock.advance(days=10)
    offer = quote(graphql, member, "email", emailCredits=20000)
    # Remaining 37.50 x 20/30 = 25.00; unused -15.00; 10.00 net + 1.90 VAT.
    assert offer["dueNow"]["total"] == eur_json("11.90")

    done = checkout(
        graphql, member, "email", offer, payment={"method": "card", "newCard": card(), "saveCard": True}
    )

    assert done["__typename"] == "CheckoutSuccess"
    assert done["payment"]["method"] == "card" and done["payment"]["amount"] == eur_json("11.90")
    assert done["payment"]["card"] == {"last4": "4242", "brand": "visa", "isRenewalMethod": True}
    assert done["invoice"]["paymentMethod"] == "card visa •••• 4242"
    assert [c["last4"] for c in workspace(graphql, member)["cards"]] == ["4242"]
    assert ledger(gateway, member) == []  # a card payment does not touch the balance
    assert [t for _, t, _ in events(gateway, member)] == [
        "card.added",
        "plan_change.applied",
        "checkout.completed",
    ]


def test_a_card_already_saved_is_not_saved_twice(graphql, gateway, clock, make_workspace):
    member = make_workspace("Mail Co", plan_code="email", email_credits=10000)
    billing(graphql, member)
    added = graphql(ADD_CARD, {"input": {"card": card(), "idempotencyKey": "add"}}, key=member.key)["addCard"]
    offer = quote(graphql, member, "email", emailCredits=15000)

    done = checkout(
        graphql,
        member,
        "email",
        offer,
        payment={"method": "card", "newCard": card(cvc="582"), "saveCard": True},
    )

    assert done["payment"]["card"]["last4"] == "4242"
    assert workspace(graphql, member)["cards"] == [{"id": added["card"]["id"], "last4": "4242"}]
    assert len(rows(gateway, Card, member)) == 1


def test_downgrade_is_scheduled_and_charges_nothing(graphql, gateway, clock, make_workspace):
    member = make_workspace("Omni Co", plan_code="omnichannel")  # 20,000 / 5,000: 95.00 a month
    billing(graphql, member)
    clock.advance(days=3)
    offer = quote(graphql, member, "email", emailCredits=10000)
    assert offer["kind"] == "DOWNGRADE"
    assert offer["dueNow"]["total"] == eur_json("0.00")
    before = snapshot(gateway)

    done = checkout(graphql, member, "email", offer, payment={"method": "balance"})

    assert done == {
        "__typename": "CheckoutSuccess",
        "kind": "DOWNGRADE",
        "invoice": None,
        "payment": None,
        "workspace": {
            "plan": {"code": "omnichannel"},
            "emailCredits": 20000,
            "messagingCredits": 5000,
            "period": {"start": iso(START), "end": iso(PERIOD_END)},
            "balance": eur_json("0.00"),
        },
    }
    # Email at 10,000: 15.00 + 7.50 = 22.50; VAT 19 % = 4.275 -> 4.28.
    assert workspace(graphql, member)["scheduledChange"] == {
        "plan": {"code": "email"},
        "emailCredits": 10000,
        "messagingCredits": None,  # the Email plan has no messaging credits
        "effectiveAt": iso(PERIOD_END),
        "dueAtRenewal": {
            "lines": [
                {"description": "Email plan, monthly base price", "amount": {"amount": "15.00"}},
                {"description": "Email credits 5,001–10,000", "amount": {"amount": "7.50"}},
            ],
            "subtotal": {"amount": "22.50"},
            "tax": {"amount": "4.28"},
            "total": {"amount": "26.78"},
        },
    }
    after = snapshot(gateway)
    assert after["payments"] == before["payments"] and after["invoices"] == before["invoices"]
    assert after["ledger_entries"] == before["ledger_entries"] == []
    assert events(gateway, member) == [
        (
            1,
            "plan_change.scheduled",
            {
                "plan": "email",
                "email_credits": 10000,
                "messaging_credits": 0,
                "effective_at": iso(PERIOD_END),
            },
        ),
        (
            2,
            "checkout.completed",
            {
                "kind": "downgrade",
                "order": "Email (10,000 email credits)",
                "total": "0.00",
                "currency": "EUR",
                "invoice_id": None,
                "invoice_number": None,
                "payment_id": None,
                "payment_method": None,
            },
        ),
    ]


def test_a_later_upgrade_supersedes_the_scheduled_change(graphql, gateway, clock, make_workspace):
    member = make_workspace("Omni Co", plan_code="omnichannel")
    billing(graphql, member)
    down = checkout(graphql, member, "email", quote(graphql, member, "email"), key="down")
    assert down["kind"] == "DOWNGRADE"
    assert workspace(graphql, member)["scheduledChange"]["plan"] == {"code": "email"}
    assert top_up(graphql, member, "50.00")["__typename"] == "TopUpSuccess"
    clock.advance(days=15)  # 15 of 30 days left

    offer = quote(graphql, member, "omnichannel", emailCredits=30000)
    # Remaining 107.00 x 15/30 = 53.50; unused 95.00 x 15/30 = 47.50; 6.00 + 1.14 VAT.
    assert (offer["kind"], offer["dueNow"]["total"]) == ("UPGRADE", eur_json("7.14"))
    done = checkout(graphql, member, "omnichannel", offer, key="up")

    assert done["__typename"] == "CheckoutSuccess"
    assert (done["workspace"]["emailCredits"], done["workspace"]["balance"]) == (30000, eur_json("42.86"))
    assert workspace(graphql, member)["scheduledChange"] is None
    assert [(s, t) for s, t, _ in events(gateway, member)] == [
        (1, "plan_change.scheduled"),
        (2, "checkout.completed"),
        (3, "balance.topped_up"),
        (4, "plan_change.applied"),
        (5, "plan_change.cancelled"),
        (6, "checkout.completed"),
    ]
    assert events(gateway, member)[4][2] == {
        "plan": "email",
        "email_credits": 10000,
        "messaging_credits": 0,
        "effective_at": iso(PERIOD_END),
        "reason": "superseded by a new order",
    }
    assert reconcile(gateway, member) == 4286


def test_split_applies_the_increase_now_and_schedules_the_reduction(graphql, gateway, clock, make_workspace):
    # Omnichannel 20,000 / 10,000: 39 + 18.00 + 85.50 = 142.50 a month.
    member = make_workspace("Omni Co", plan_code="omnichannel", email_credits=20000, messaging_credits=10000)
    billing(graphql, member)
    assert top_up(graphql, member, "20.00")["__typename"] == "TopUpSuccess"
    now = clock.advance(days=10)

    offer = quote(graphql, member, "omnichannel", emailCredits=30000, messagingCredits=5000)
    # Now: 30,000 / 10,000 = 154.50; remaining 154.50 x 20/30 = 103.00, unused 142.50 x 20/30 = 95.00.
    # 8.00 + 1.52 VAT = 9.52. At renewal: 30,000 / 5,000 = 107.00 + 20.33 VAT = 127.33.
    assert offer["kind"] == "SPLIT"
    assert offer["changes"] == [
        {
            "timing": "IMMEDIATE",
            "effectiveAt": iso(now),
            "plan": {"code": "omnichannel"},
            "emailCredits": 30000,
            "messagingCredits": 10000,
        },
        {
            "timing": "AT_RENEWAL",
            "effectiveAt": iso(PERIOD_END),
            "plan": {"code": "omnichannel"},
            "emailCredits": 30000,
            "messagingCredits": 5000,
        },
    ]
    assert (offer["dueNow"]["total"], offer["dueAtRenewal"]["total"]) == (
        eur_json("9.52"),
        {"amount": "127.33"},
    )

    done = checkout(graphql, member, "omnichannel", offer)

    assert done["__typename"] == "CheckoutSuccess" and done["kind"] == "SPLIT"
    assert (done["workspace"]["emailCredits"], done["workspace"]["messagingCredits"]) == (30000, 10000)
    assert done["invoice"]["total"] == eur_json("9.52")
    scheduled = workspace(graphql, member)["scheduledChange"]
    assert (scheduled["emailCredits"], scheduled["messagingCredits"], scheduled["effectiveAt"]) == (
        30000,
        5000,
        iso(PERIOD_END),
    )
    assert scheduled["dueAtRenewal"]["total"] == {"amount": "127.33"}
    assert [t for _, t, _ in events(gateway, member)] == [
        "balance.topped_up",
        "plan_change.applied",
        "plan_change.scheduled",
        "checkout.completed",
    ]
    assert reconcile(gateway, member) == 2000 - 952


# ------------------------------------------------------------------ refusals change nothing


def _refusal_cases() -> list:
    past = iso(START - timedelta(seconds=1))
    too_far = iso(START + timedelta(minutes=31))
    number = ["paymentMethod", "newCard"]
    return [
        pytest.param(
            {"quoteExpiresAt": past}, "QuoteChanged", "QUOTE_EXPIRED", ["quoteExpiresAt"], id="expired"
        ),
        pytest.param(
            {"quoteExpiresAt": too_far},
            "QuoteChanged",
            "QUOTE_EXPIRED",
            ["quoteExpiresAt"],
            id="expiry-not-from-a-quote",
        ),
        pytest.param(
            {"expectedTotal": "113.04"},
            "QuoteChanged",
            "QUOTE_CHANGED",
            ["expectedTotal"],
            id="total-differs",
        ),
        pytest.param(
            {"expectedTotal": "NaN"}, "QuoteChanged", "QUOTE_CHANGED", ["expectedTotal"], id="total-nan"
        ),
        pytest.param(
            {"paymentMethod": {"method": "card", "cardId": "nope"}},
            "PaymentRejected",
            "UNKNOWN_CARD",
            ["paymentMethod", "cardId"],
            id="unknown-saved-card",
        ),
        pytest.param(
            {"paymentMethod": {"method": "card"}},
            "PaymentRejected",
            "CARD_REQUIRED",
            ["paymentMethod"],
            id="card-method-without-a-card",
        ),
        pytest.param(
            {"paymentMethod": {"method": "bitcoin"}},
            "PaymentRejected",
            "UNKNOWN_PAYMENT_METHOD",
            ["paymentMethod", "method"],
            id="unknown-method",
        ),
        pytest.param(
            {"paymentMethod": {"method": "card", "newCard": card("4242424242424241")}},
            "PaymentRejected",
            "CARD_INVALID_NUMBER",
            [*number, "number"],
            id="luhn",
        ),
        pytest.param(
            {"paymentMethod": {"method": "card", "newCard": card(month=13)}},
            "PaymentRejected",
            "CARD_INVALID_EXPIRY",
            [*number, "expMonth"],
            id="expiry-month",
        ),
        pytest.param(
            {"paymentMethod": {"method": "card", "newCard": card(month=10, year=2026)}},
            "PaymentRejected",
            "CARD_EXPIRED_CARD",
            [*number, "expMonth"],
            id="card-expired",
        ),
        pytest.param(
            {"paymentMethod": {"method": "card", "newCard": card(cvc="73")}},
            "PaymentRejected",
            "CARD_INVALID_CVC",
            [*number, "cvc"],
            id="cvc",
        ),
        pytest.param({"planCode": "gold"}, "UnknownPlan", "UNKNOWN_PLAN", ["planCode"], id="unknown-plan"),
        pytest.param(
            {"planCode": "custom"}, "PlanNotPurchasable", "PLAN_NOT_PURCHASABLE", ["planCode"], id="custom"
        ),
        pytest.param(
            {"planCode": "free", "emailCredits": 5000, "messagingCredits": None},
            "PlanNotAdjustable",
            "PLAN_NOT_ADJUSTABLE",
            ["emailCredits"],
            id="free-with-volumes",
        ),
        pytest.param(
            {"emailCredits": 20001}, "InvalidVolume", "INVALID_VOLUME", ["emailCredits"], id="off-step"
        ),
    ]


@pytest.mark.parametrize(("change", "typename", "code", "field"), _refusal_cases())
def test_refusals_change_nothing(graphql, gateway, funded, change, typename, code, field):
    offer = quote(graphql, funded, "omnichannel")
    before = snapshot(gateway)

    refused = checkout(graphql, funded, "omnichannel", offer, **change)

    assert (refused["__typename"], refused["code"], refused["field"]) == (typename, code, field)
    assert snapshot(gateway) == before
    assert workspace(graphql, funded)["balance"] == eur_json("150.00")
    # The key was released: the same key with the quote as confirmed goes through.
    assert checkout(graphql, funded, "omnichannel", offer)["__typename"] == "CheckoutSuccess"


def test_an_expired_quote_is_refused_with_the_new_one(graphql, gateway, clock, funded):
    offer = quote(graphql, funded, "omnichannel")
    now = clock.advance(minutes=30, seconds=1)
    before = snapshot(gateway)

    refused = checkout(graphql, funded, "omnichannel", offer)

    assert refused == {
        "__typename": "QuoteChanged",
        "code": "QUOTE_EXPIRED",
        "field": ["quoteExpiresAt"],
        "message": "the quote expired; confirm the new one",
        "expectedTotal": "113.05",
        "quote": {
            "kind": "NEW_PERIOD",
            "computedAt": iso(now),
            "expiresAt": iso(now + timedelta(minutes=30)),
            "dueNow": {"total": {"amount": "113.05"}},
            "balance": {
                "now": {"amount": "150.00"},
                "afterPurchase": {"amount": "36.95"},
                "sufficient": True,
            },
        },
    }
    assert snapshot(gateway) == before
    renewed = {**offer, "expiresAt": refused["quote"]["expiresAt"]}
    assert checkout(graphql, funded, "omnichannel", renewed)["__typename"] == "CheckoutSuccess"


def test_a_quote_is_good_until_it_expires(graphql, clock, funded):
    offer = quote(graphql, funded, "omnichannel")
    clock.advance(minutes=30)
    assert checkout(graphql, funded, "omnichannel", offer)["__typename"] == "CheckoutSuccess"


def test_a_changed_total_is_refused_with_the_new_quote(graphql, gateway, clock, make_workspace):
    member = make_workspace("Mail Co", plan_code="email", email_credits=10000)
    billing(graphql, member)
    assert top_up(graphql, member, "100.00")["__typename"] == "TopUpSuccess"
    offer = quote(graphql, member, "omnichannel")  # 30 of 30 days: 95.00 - 22.50 = 72.50 + 13.78 VAT
    assert offer["dueNow"]["total"] == eur_json("86.28")
    clock.advance(days=1)  # a day later (and a new quote time) the proration differs
    offer = {**offer, "expiresAt": iso(clock.now + timedelta(minutes=30))}
    before = snapshot(gateway)

    refused = checkout(graphql, member, "omnichannel", offer)

    # 29 of 30 days: 95.00 x 29/30 = 91.833.. -> 91.83; 22.50 x 29/30 = 21.75; 70.08 + 13.32 VAT.
    assert (refused["__typename"], refused["code"], refused["field"], refused["expectedTotal"]) == (
        "QuoteChanged",
        "QUOTE_CHANGED",
        ["expectedTotal"],
        "86.28",
    )
    assert refused["message"] == "the total is now 83.40 EUR; confirm the new quote"
    assert refused["quote"]["dueNow"] == {"total": {"amount": "83.40"}}
    assert refused["quote"]["balance"] == {
        "now": {"amount": "100.00"},
        "afterPurchase": {"amount": "16.60"},
        "sufficient": True,
    }
    assert snapshot(gateway) == before


@pytest.mark.parametrize(
    ("details", "missing"),
    [
        pytest.param(
            None,
            ["customerType", "name", "addressLine1", "city", "postalCode", "country", "email"],
            id="none",
        ),
        pytest.param(
            {"customerType": "PERSON", "country": "DE", "name": "Erika"},
            ["addressLine1", "city", "postalCode", "email"],
            id="partial",
        ),
        pytest.param(
            {**GERMAN_PERSON, "customerType": "COMPANY"}, ["companyName"], id="company-without-its-name"
        ),
    ],
)
def test_incomplete_billing_details_are_listed(graphql, gateway, make_workspace, details, missing):
    member = make_workspace("Acme")
    if details is not None:
        graphql(UPDATE_DETAILS, {"input": details}, key=member.key)
    assert top_up(graphql, member, "150.00")["__typename"] == "TopUpSuccess"
    offer = quote(graphql, member, "omnichannel")
    before = snapshot(gateway)

    refused = checkout(graphql, member, "omnichannel", offer)

    assert (refused["__typename"], refused["code"], refused["field"], refused["missingFields"]) == (
        "BillingDetailsIncomplete",
        "BILLING_DETAILS_INCOMPLETE",
        ["billingDetails"],
        missing,
    )
    assert snapshot(gateway) == before


def test_insufficient_balance_names_balance_required_and_shortfall(graphql, gateway, free):
    assert top_up(graphql, free, "100.00")["__typename"] == "TopUpSuccess"
    offer = quote(graphql, free, "omnichannel")
    assert offer["balance"] == {
        "now": eur_json("100.00"),
        "afterPurchase": eur_json("-13.05"),
        "sufficient": False,
    }
    before = snapshot(gateway)

    refused = checkout(graphql, free, "omnichannel", offer)

    assert refused == {
        "__typename": "InsufficientBalance",
        "code": "INSUFFICIENT_BALANCE",
        "field": ["paymentMethod"],
        "message": "the balance of 100.00 EUR does not cover 113.05 EUR",
        "balance": eur_json("100.00"),
        "required": eur_json("113.05"),
        "shortfall": eur_json("13.05"),
    }
    assert snapshot(gateway) == before
    assert reconcile(gateway, free) == 10000


def test_an_empty_balance_is_insufficient(graphql, gateway, free):
    offer = quote(graphql, free, "email", emailCredits=5000)  # 15.00 + 2.85 VAT
    before = snapshot(gateway)
    refused = checkout(graphql, free, "email", offer)
    assert (refused["balance"], refused["required"], refused["shortfall"]) == (
        eur_json("0.00"),
        eur_json("17.85"),
        eur_json("17.85"),
    )
    assert snapshot(gateway) == before


@pytest.mark.parametrize(
    ("funds", "outcome", "left"),
    [
        ("17.85", "CheckoutSuccess", "0.00"),  # exactly enough
        ("17.84", "InsufficientBalance", "17.84"),  # a cent short
    ],
)
def test_the_balance_may_be_spent_to_the_last_cent(graphql, gateway, free, funds, outcome, left):
    assert top_up(graphql, free, funds)["__typename"] == "TopUpSuccess"
    offer = quote(graphql, free, "email", emailCredits=5000)  # 15.00 + 2.85 VAT
    assert offer["balance"]["sufficient"] is (outcome == "CheckoutSuccess")
    result = checkout(graphql, free, "email", offer)
    assert result["__typename"] == outcome
    if outcome == "InsufficientBalance":
        assert result["shortfall"] == eur_json("0.01")
    assert workspace(graphql, free)["balance"] == eur_json(left)
    assert reconcile(gateway, free) == int(left.replace(".", ""))


def test_checkout_with_a_saved_card(graphql, gateway, free):
    saved = graphql(
        ADD_CARD, {"input": {"card": card("5555555555554444"), "idempotencyKey": "add"}}, key=free.key
    )["addCard"]["card"]
    offer = quote(graphql, free, "omnichannel")
    done = checkout(graphql, free, "omnichannel", offer, payment={"method": "card", "cardId": saved["id"]})
    assert done["__typename"] == "CheckoutSuccess"
    assert done["payment"]["card"] == {"last4": "4444", "brand": "mastercard", "isRenewalMethod": True}
    assert done["invoice"]["paymentMethod"] == "card mastercard •••• 4444"
    with gateway.sessions() as session:
        assert session.get(Payment, done["payment"]["id"]).card_id == saved["id"]
        assert session.get(Workspace, free.id).renewal_payment == f"card:{saved['id']}"
    assert len(rows(gateway, Card, free)) == 1


def test_nothing_to_change(graphql, gateway, make_workspace):
    member = make_workspace("Mail Co", plan_code="email", email_credits=10000)
    billing(graphql, member)
    before = snapshot(gateway)
    refused = checkout(
        graphql, member, "email", expectedTotal="0.00", quoteExpiresAt=iso(START), emailCredits=10000
    )
    assert (refused["__typename"], refused["code"], refused["field"]) == (
        "PaymentRejected",
        "NOTHING_TO_CHANGE",
        [],
    )
    assert snapshot(gateway) == before


def test_a_removed_or_foreign_card_cannot_pay(graphql, gateway, funded, make_workspace):
    other = make_workspace("Other")
    foreign = graphql(ADD_CARD, {"input": {"card": card(), "idempotencyKey": "a"}}, key=other.key)["addCard"]
    mine = graphql(ADD_CARD, {"input": {"card": card(), "idempotencyKey": "a"}}, key=funded.key)["addCard"]
    graphql(
        "mutation($id: ID!) { removeCard(cardId: $id) { __typename } }",
        {"id": mine["card"]["id"]},
        key=funded.key,
    )
    offer = quote(graphql, funded, "omnichannel")
    before = snapshot(gateway)
    for card_id in (foreign["card"]["id"], mine["card"]["id"]):
        refused = checkout(
            graphql, funded, "omnichannel", offer, payment={"method": "card", "cardId": card_id}
        )
        assert (refused["code"], refused["field"]) == ("UNKNOWN_CARD", ["paymentMethod", "cardId"])
    assert snapshot(gateway) == before


def test_a_quote_time_without_an_offset_is_utc(graphql, funded):
    offer = quote(graphql, funded, "omnichannel")
    naive = offer["expiresAt"].removesuffix("+00:00")
    assert (
        checkout(graphql, funded, "omnichannel", offer, quoteExpiresAt=naive)["__typename"]
        == "CheckoutSuccess"
    )


# ------------------------------------------------------------------ declined cards


@pytest.mark.parametrize(
    ("number", "decline"),
    [
        (DECLINED, "card_declined"),
        ("4000000000009995", "insufficient_funds"),
        ("4000000000000069", "expired_card"),
        ("4000000000000127", "incorrect_cvc"),
        ("4000000000000119", "processing_error"),
    ],
)
def test_a_declined_card_changes_nothing_but_the_failed_payment(graphql, gateway, free, number, decline):
    offer = quote(graphql, free, "omnichannel")
    before = snapshot(gateway)

    refused = checkout(
        graphql,
        free,
        "omnichannel",
        offer,
        payment={"method": "card", "newCard": card(number), "saveCard": True},
    )

    assert (refused["__typename"], refused["code"], refused["field"], refused["declineCode"]) == (
        "PaymentDeclined",
        "PAYMENT_DECLINED",
        ["paymentMethod"],
        decline,
    )
    [payment] = rows(gateway, Payment, free)
    assert (
        payment.id,
        payment.purpose,
        payment.method,
        payment.status,
        payment.failure_code,
        payment.amount_minor,
        payment.card_id,
    ) == (refused["paymentId"], "checkout", "card", "failed", decline, 11305, None)
    assert events(gateway, free) == [
        (
            1,
            "payment.failed",
            {
                "payment_id": payment.id,
                "purpose": "checkout",
                "amount": "113.05",
                "currency": "EUR",
                "method": "card",
                "failure_code": decline,
                "message": refused["message"],
            },
        )
    ]
    after = snapshot(gateway)
    for table in ("payments", "outbox_events", "idempotency_keys", "workspaces"):
        del before[table], after[table]
    assert after == before  # no card saved, no invoice, no ledger entry, no scheduled change
    seen = workspace(graphql, free)
    assert (seen["plan"], seen["cards"], seen["invoices"]) == ({"code": "free"}, [], [])
    with gateway.sessions() as session:
        row = session.get(Workspace, free.id)
        assert (
            row.plan_code,
            row.email_credits,
            row.period_start,
            row.balance_minor,
            row.event_sequence,
            row.renewal_payment,
        ) == ("free", 1000, START, 0, 1, None)


def test_a_saved_card_that_declines(graphql, gateway, funded):
    added = graphql(
        ADD_CARD, {"input": {"card": card("4000000000000341"), "idempotencyKey": "add"}}, key=funded.key
    )["addCard"]
    offer = quote(graphql, funded, "omnichannel")
    refused = checkout(
        graphql, funded, "omnichannel", offer, payment={"method": "card", "cardId": added["card"]["id"]}
    )
    assert (refused["__typename"], refused["declineCode"]) == ("PaymentDeclined", "card_declined")
    assert workspace(graphql, funded)["plan"] == {"code": "free"}
    assert [p.status for p in rows(gateway, Payment, funded) if p.purpose == "checkout"] == ["failed"]


# ------------------------------------------------------------------ 3-D Secure


def test_3ds_checkout_applies_once_authenticated(graphql, gateway, free):
    offer = quote(graphql, free, "omnichannel")

    pending = checkout(
        graphql,
        free,
        "omnichannel",
        offer,
        payment={"method": "card", "newCard": card(THREE_DS), "saveCard": True},
    )

    assert (pending["__typename"], pending["code"], pending["field"]) == (
        "PaymentActionRequired",
        "PAYMENT_ACTION_REQUIRED",
        ["paymentMethod"],
    )
    assert pending["nextAction"].startswith("sandbox-3ds:")
    seen = workspace(graphql, free)
    assert (seen["plan"], seen["cards"], seen["invoices"]) == ({"code": "free"}, [], [])  # nothing yet
    [payment] = rows(gateway, Payment, free)
    assert (payment.id, payment.status) == (pending["paymentId"], "requires_action")
    assert events(gateway, free) == []

    done = graphql(CONFIRM, {"id": pending["paymentId"], "answer": "authenticated"}, key=free.key)[
        "confirmPayment"
    ]

    assert done["__typename"] == "CheckoutSuccess" and done["kind"] == "NEW_PERIOD"
    assert done["workspace"] == {
        "plan": {"code": "omnichannel"},
        "emailCredits": 20000,
        "messagingCredits": 5000,
        "period": {"start": iso(START), "end": iso(PERIOD_END)},
    }
    assert (done["invoice"]["number"], done["invoice"]["total"], done["invoice"]["paymentMethod"]) == (
        "INV-2026-000001",
        {"amount": "113.05"},
        "card visa •••• 3184",
    )
    assert done["payment"] == {
        "id": pending["paymentId"],
        "method": "card",
        "status": "succeeded",
        "card": {"last4": "3184", "isRenewalMethod": True},
    }
    assert [t for _, t, _ in events(gateway, free)] == [
        "card.added",
        "plan_change.applied",
        "credits.reset",
        "checkout.completed",
    ]

    again = graphql(CONFIRM, {"id": pending["paymentId"], "answer": "authenticated"}, key=free.key)[
        "confirmPayment"
    ]
    assert again == done
    assert len(rows(gateway, Invoice, free)) == 1 and len(rows(gateway, Payment, free)) == 1
    assert len(events(gateway, free)) == 4
    # Replaying the checkout answers where its payment stands now (confirmed), never a second charge.
    replay = checkout(
        graphql,
        free,
        "omnichannel",
        offer,
        payment={"method": "card", "newCard": card(THREE_DS), "saveCard": True},
    )
    assert replay["__typename"] == "CheckoutSuccess" and replay["payment"]["id"] == done["payment"]["id"]
    assert len(rows(gateway, Payment, free)) == 1


def test_3ds_checkout_failed_challenge_applies_nothing(graphql, gateway, free):
    offer = quote(graphql, free, "omnichannel")
    pending = checkout(
        graphql,
        free,
        "omnichannel",
        offer,
        payment={"method": "card", "newCard": card(THREE_DS), "saveCard": True},
    )

    declined = graphql(CONFIRM, {"id": pending["paymentId"], "answer": "wrong"}, key=free.key)[
        "confirmPayment"
    ]

    assert (declined["__typename"], declined["paymentId"], declined["declineCode"]) == (
        "PaymentDeclined",
        pending["paymentId"],
        "authentication_failed",
    )
    seen = workspace(graphql, free)
    assert (seen["plan"], seen["cards"], seen["invoices"]) == ({"code": "free"}, [], [])
    assert rows(gateway, Card, free) == []  # the card asked to be saved was never authenticated
    [payment] = rows(gateway, Payment, free)
    assert (payment.status, payment.failure_code) == ("failed", "authentication_failed")
    assert [t for _, t, _ in events(gateway, free)] == ["payment.failed"]
    # Confirming again, even with the right answer, answers the same and applies nothing.
    again = graphql(CONFIRM, {"id": pending["paymentId"], "answer": "authenticated"}, key=free.key)
    assert again["confirmPayment"] == declined
    assert workspace(graphql, free)["plan"] == {"code": "free"}


def test_3ds_payment_is_refunded_if_the_subscription_changed_meanwhile(graphql, gateway, funded):
    offer = quote(graphql, funded, "omnichannel")
    pending = checkout(
        graphql,
        funded,
        "omnichannel",
        offer,
        key="by-card",
        payment={"method": "card", "newCard": card(THREE_DS)},
    )
    assert (
        checkout(graphql, funded, "omnichannel", offer, key="by-balance")["__typename"] == "CheckoutSuccess"
    )

    superseded = graphql(CONFIRM, {"id": pending["paymentId"], "answer": "authenticated"}, key=funded.key)[
        "confirmPayment"
    ]

    assert (superseded["__typename"], superseded["code"]) == ("PaymentRejected", "ORDER_SUPERSEDED")
    with gateway.sessions() as session:
        assert session.get(Payment, pending["paymentId"]).status == "refunded"
    assert len(rows(gateway, Invoice, funded)) == 1  # the balance checkout's only


def test_confirming_an_unknown_or_foreign_payment(graphql, gateway, free, make_workspace):
    other = make_workspace("Other")
    billing(graphql, other)
    pending = checkout(
        graphql,
        other,
        "omnichannel",
        quote(graphql, other, "omnichannel"),
        payment={"method": "card", "newCard": card(THREE_DS)},
    )
    before = snapshot(gateway)
    for payment_id in ("nope", pending["paymentId"]):
        refused = graphql(CONFIRM, {"id": payment_id, "answer": "authenticated"}, key=free.key)[
            "confirmPayment"
        ]
        assert (refused["__typename"], refused["code"], refused["field"]) == (
            "PaymentRejected",
            "UNKNOWN_PAYMENT",
            ["paymentId"],
        )
    assert snapshot(gateway) == before
