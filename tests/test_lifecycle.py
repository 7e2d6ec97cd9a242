"""One workspace's year in a few months: the lifecycle a finance team runs, end to end.

Upgrade from Free, a split across plans, a downgrade, a failed renewal, dunning retries,
suspension, paying the open invoice, and a partial refund with its credit note: the events
each step emits, the invoices and credit notes it makes, and the state it leaves.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from test_checkout import checkout, quote
from test_renewal import BOUNDARY, RECORD, add_card

from gateway.core.statuses import RefundDestination
from gateway.services.dunning import run_dunning
from gateway.services.refunds import refund_payment
from gateway.services.renewal import RenewalStatus, renew_due
from gateway.storage.db import Invoice, Payment, Workspace

from helpers import assert_events_as_documented, billing, card, events, rows

PAY = """mutation($input: PayInvoiceInput!) { payInvoice(input: $input) { __typename
  ... on UserError { code message } ... on InvoicePaid { workspace { status } } } }"""


def state(gateway, member) -> tuple[str, str, int, int, int]:
    with gateway.sessions() as session:
        row = session.get(Workspace, member.id)
        return row.status, row.plan_code, row.email_credits, row.messaging_credits, row.balance_minor


def new_events(gateway, member, seen: list[int]) -> list[str]:
    """The event types emitted since the last call."""
    found = events(gateway, member)
    fresh = [kind for sequence, kind, _ in found if sequence > (seen[0] if seen else 0)]
    seen[:] = [found[-1][0]] if found else [0]
    return fresh


def documents(gateway, member) -> list[tuple[str, str, int]]:
    return sorted((i.kind, i.status, i.total_minor) for i in rows(gateway, Invoice, member))


def test_a_year_of_billing(gateway, graphql, make_workspace, clock):
    member = make_workspace("Lifecycle Ltd")
    billing(graphql, member)
    seen: list[int] = []

    # 1. Upgrade from Free: a paid period starts now, paid with a new card that is saved.
    good_card = card()
    offer = quote(graphql, member, "email", emailCredits=100000)
    done = checkout(
        graphql,
        member,
        "email",
        offer,
        key="upgrade",
        payment={"method": "card", "newCard": good_card, "saveCard": True},
    )
    assert (done["__typename"], done["kind"]) == ("CheckoutSuccess", "NEW_PERIOD")
    assert new_events(gateway, member, seen) == [
        "card.added",
        "plan_change.applied",
        "credits.reset",
        "checkout.completed",
    ]
    assert state(gateway, member) == ("active", "email", 100000, 0, 0)

    # 2. Ten days later, Omnichannel with fewer email credits: the email limit stays until renewal.
    clock.advance(days=10)
    offer = quote(graphql, member, "omnichannel", emailCredits=5000, messagingCredits=20000)
    assert offer["kind"] == "SPLIT"
    assert [c["timing"] for c in offer["changes"]] == ["IMMEDIATE", "AT_RENEWAL"]
    split = checkout(
        graphql, member, "omnichannel", offer, key="split", payment={"method": "card", "newCard": good_card}
    )
    assert (split["__typename"], split["kind"]) == ("CheckoutSuccess", "SPLIT")
    assert new_events(gateway, member, seen) == [
        "plan_change.applied",
        "plan_change.scheduled",
        "checkout.completed",
    ]
    assert state(gateway, member) == ("active", "omnichannel", 100000, 20000, 0)
    split_payment = split["payment"]["id"]

    # 3. A downgrade to Email 10,000 instead: nothing due, the scheduled change is replaced.
    offer = quote(graphql, member, "email", emailCredits=10000)
    down = checkout(graphql, member, "email", offer, key="down")
    assert (down["__typename"], down["kind"]) == ("CheckoutSuccess", "DOWNGRADE")
    assert new_events(gateway, member, seen) == [
        "plan_change.cancelled",
        "plan_change.scheduled",
        "checkout.completed",
    ]

    # 4. Renewals now go to a card that is declined: the renewal fails, dunning starts.
    add_card(graphql, member, "4000000000000341")
    new_events(gateway, member, seen)
    clock.now = BOUNDARY
    [renewal] = renew_due(gateway, BOUNDARY)
    assert (renewal.status, renewal.reason) == (RenewalStatus.PAYMENT_FAILED, "card_declined")
    assert new_events(gateway, member, seen) == [
        "plan_change.applied",
        "credits.reset",
        "payment.failed",
        "renewal.failed",
        "invoice.payment_failed",
    ]
    assert state(gateway, member)[:4] == ("past_due", "email", 10000, 0)

    # 5. Retries on days 1, 3, 5 and 7 fail too; 6. day 14: suspended, usage refused.
    for day in (1, 3, 5, 7):
        clock.now = BOUNDARY + timedelta(days=day)
        [step] = run_dunning(gateway, clock.now)
        assert step.outcome == "PaymentDeclined"
    assert new_events(gateway, member, seen) == ["payment.failed", "invoice.payment_failed"] * 4
    clock.now = BOUNDARY + timedelta(days=14)
    [step] = run_dunning(gateway, clock.now)
    assert step.action == "suspended"
    assert new_events(gateway, member, seen) == ["workspace.suspended"]
    refused = graphql(RECORD, {"input": {"messageType": "EMAIL", "quantity": 1}}, key=member.key)
    assert refused["recordUsage"]["__typename"] == "WorkspaceSuspended"

    # 7. The customer pays the open invoice with the good card: active again.
    [open_invoice] = [i for i in rows(gateway, Invoice, member) if i.status == "open"]
    paid = graphql(
        PAY,
        {
            "input": {
                "invoiceId": open_invoice.id,
                "paymentMethod": {"method": "card", "newCard": good_card},
                "idempotencyKey": "pay",
            }
        },
        key=member.key,
    )["payInvoice"]
    assert paid == {"__typename": "InvoicePaid", "workspace": {"status": "ACTIVE"}}
    assert new_events(gateway, member, seen) == ["invoice.paid", "workspace.reactivated"]

    # 8. An operator refunds 10.00 of the split's payment to the balance: a credit note.
    refund = refund_payment(
        gateway, split_payment, Decimal("10.00"), RefundDestination.BALANCE, "goodwill", "r1"
    )
    assert refund.status == "succeeded" and refund.credit_note_number.startswith("CN-")
    assert new_events(gateway, member, seen) == ["payment.refunded"]

    # The books: three paid invoices (two checkouts, one renewal), a credit note, 10.00 on the balance.
    kinds = documents(gateway, member)
    assert [k[:2] for k in kinds] == [
        ("checkout", "paid"),
        ("checkout", "paid"),
        ("credit_note", "paid"),
        ("renewal", "paid"),
    ]
    assert [k[2] for k in kinds if k[0] == "credit_note"] == [-1000]
    assert state(gateway, member) == ("active", "email", 10000, 0, 1000)
    statuses = sorted((p.purpose, p.status) for p in rows(gateway, Payment, member))
    assert statuses.count(("invoice", "failed")) == 4 and ("invoice", "succeeded") in statuses
    # Every event of the year has the fields and JSON types that docs/events.md shows for its type.
    assert assert_events_as_documented(gateway, member) == {
        "card.added",
        "checkout.completed",
        "credits.reset",
        "invoice.paid",
        "invoice.payment_failed",
        "payment.failed",
        "payment.refunded",
        "plan_change.applied",
        "plan_change.cancelled",
        "plan_change.scheduled",
        "renewal.failed",
        "workspace.reactivated",
        "workspace.suspended",
    }
