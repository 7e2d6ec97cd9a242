"""The renewal method through GraphQL: setDefaultPaymentMethod, Workspace.renewalPayment and
CheckoutSuccess.renewalPayment, and that what they predict is what renewal then does.

A German consumer buys Email with 5,000 credits from Free: 15.00 + 19 % VAT = 17.85 a month.
The clock starts at 2026-11-10 09:30 UTC, so the paid period ends (and renews) 2026-12-10 09:30.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.plugin_api import Capability
from gateway.services.renewal import RenewalStatus, renew_due
from gateway.storage.db import Workspace
from gateway.storage.locks import lock_workspace

from helpers import assert_events_as_documented, billing, card, eur_json, events, race, snapshot

RENEWS_AT = datetime(2026, 12, 10, 9, 30, tzinfo=UTC)
MASTERCARD = "5555555555554444"

RENEWAL_PAYMENT = """renewalPayment { method { code label } chosen card { id brand last4 isRenewalMethod }
  nextRenewalAt nextRenewalAmount { amount currency } nothingToPay canPayNextRenewal problem message }"""
WORKSPACE = f"{{ workspace {{ ... on Workspace {{ status {RENEWAL_PAYMENT} }} }} }}"
QUOTE = """mutation($input: QuoteInput!) { quote(input: $input) {
  ... on Quote { expiresAt emailCredits messagingCredits dueNow { total { amount } } } } }"""
CHECKOUT = f"""mutation($input: CheckoutInput!) {{ checkout(input: $input) {{ __typename
  ... on UserError {{ code field message }}
  ... on CheckoutSuccess {{ workspace {{ {RENEWAL_PAYMENT} }} {RENEWAL_PAYMENT} }} }} }}"""
SET_DEFAULT = f"""mutation($input: SetDefaultPaymentMethodInput!) {{ setDefaultPaymentMethod(input: $input) {{
  __typename ... on UserError {{ code field message }} ... on Workspace {{ {RENEWAL_PAYMENT} }} }} }}"""
ADD_CARD = """mutation($input: AddCardInput!) { addCard(input: $input) { __typename
  ... on CardAdded { card { id isRenewalMethod } } ... on UserError { code field message } } }"""
REMOVE_CARD = """mutation($id: ID!) { removeCard(cardId: $id) { __typename
  ... on Workspace { renewalPayment { method { code } chosen canPayNextRenewal problem } } } }"""


# ------------------------------------------------------------------ helpers


class Transfer:
    """A method that settles later and cannot charge with the customer away. Only its
    capabilities are read: setDefaultPaymentMethod refuses it before asking it anything."""

    code = "transfer"
    label = "Transfer"
    capabilities = frozenset({Capability.SETTLE_LATER})


def renewal_payment(graphql, member) -> dict:
    return graphql(WORKSPACE, key=member.key)["workspace"]["renewalPayment"]


def buy_email(graphql, member, payment: dict) -> dict:
    """Checkout Now for Email with 5,000 credits (17.85), paid as ``payment`` says."""
    offer = graphql(QUOTE, {"input": {"planCode": "email", "emailCredits": 5000}}, key=member.key)["quote"]
    done = graphql(
        CHECKOUT,
        {
            "input": {
                "planCode": "email",
                "emailCredits": 5000,
                "expectedTotal": offer["dueNow"]["total"]["amount"],
                "quoteExpiresAt": offer["expiresAt"],
                "paymentMethod": payment,
                "idempotencyKey": "checkout-1",
            }
        },
        key=member.key,
    )["checkout"]
    assert done["__typename"] == "CheckoutSuccess", done
    assert done["renewalPayment"] == done["workspace"]["renewalPayment"]
    return done["renewalPayment"]


def add_card(graphql, member, number: str = "4242424242424242", key: str = "card-1", **expiry) -> str:
    added = graphql(
        ADD_CARD, {"input": {"card": card(number, **expiry), "idempotencyKey": key}}, key=member.key
    )
    assert added["addCard"]["__typename"] == "CardAdded", added
    return added["addCard"]["card"]["id"]


def set_default(graphql, member, method: str, card_id: str | None = None) -> dict:
    variables = {"input": {"method": method, **({"cardId": card_id} if card_id is not None else {})}}
    return graphql(SET_DEFAULT, variables, key=member.key)["setDefaultPaymentMethod"]


def renewal_choice(gateway, member) -> str | None:
    with gateway.sessions() as session:
        return session.get(Workspace, member.id).renewal_payment


def renew(gateway, member) -> RenewalStatus:
    [result] = [r for r in renew_due(gateway, RENEWS_AT) if r.workspace_id == member.id]
    return result.status


@pytest.fixture
def member(graphql, make_workspace):
    """A Free workspace with complete (German consumer) billing details."""
    member = make_workspace("Acme")
    billing(graphql, member)
    return member


@pytest.fixture
def unsaved(graphql, member):
    """The workspace after buying Email with a card it did not save."""
    buy_email(graphql, member, {"method": "card", "newCard": card()})
    return member


# ------------------------------------------------------------------ what the checkout answer says


def test_an_unsaved_card_leaves_the_renewal_to_an_empty_balance_and_says_so(graphql, gateway, member):
    answer = buy_email(graphql, member, {"method": "card", "newCard": card()})

    assert answer == {
        "method": {"code": "balance", "label": "My balance"},
        "chosen": False,
        "card": None,
        "nextRenewalAt": RENEWS_AT.isoformat(),
        "nextRenewalAmount": eur_json("17.85"),
        "nothingToPay": False,
        "canPayNextRenewal": False,
        "problem": "INSUFFICIENT_BALANCE",
        "message": "The renewal of 17.85 EUR on 2026-12-10 will be charged to My balance, as no other "
        "method is chosen, which holds 0.00 EUR: top up the balance or choose a saved card.",
    }
    assert renewal_payment(graphql, member) == answer
    assert renew(gateway, member) is RenewalStatus.PAYMENT_FAILED  # as it said
    assert graphql(WORKSPACE, key=member.key)["workspace"]["status"] == "PAST_DUE"


def test_a_saved_card_pays_the_renewal(graphql, gateway, member):
    answer = buy_email(graphql, member, {"method": "card", "newCard": card(), "saveCard": True})

    saved = answer["card"]
    assert (saved["brand"], saved["last4"], saved["isRenewalMethod"]) == ("visa", "4242", True)
    assert answer["method"] == {"code": "card", "label": "Credit card"}
    assert (answer["chosen"], answer["canPayNextRenewal"], answer["problem"]) == (True, True, None)
    assert answer["message"] == (
        "The renewal of 17.85 EUR on 2026-12-10 will be charged to Credit card (visa •••• 4242)."
    )
    assert renew(gateway, member) is RenewalStatus.RENEWED


def test_paying_by_balance_renews_from_the_balance_while_it_covers_it(graphql, gateway, member):
    set_default(graphql, member, "card", add_card(graphql, member))
    graphql(
        """mutation($input: TopUpInput!) { topUpBalance(input: $input) { __typename } }""",
        {
            "input": {
                "amount": "40.00",
                "paymentMethod": {"method": "card", "newCard": card()},
                "idempotencyKey": "t",
            }
        },
        key=member.key,
    )
    answer = buy_email(graphql, member, {"method": "balance"})  # 40.00 - 17.85 = 22.15 left
    assert (answer["method"]["code"], answer["chosen"], answer["canPayNextRenewal"]) == (
        "balance",
        True,
        True,
    )
    assert answer["message"] == "The renewal of 17.85 EUR on 2026-12-10 will be charged to My balance."
    assert renew(gateway, member) is RenewalStatus.RENEWED


def test_a_free_plan_has_nothing_to_pay(graphql, member):
    answer = renewal_payment(graphql, member)
    assert answer["nothingToPay"] is True and answer["canPayNextRenewal"] is True
    assert answer["nextRenewalAmount"] == eur_json("0.00") and answer["problem"] is None
    assert answer["message"] == "Nothing to pay: Free renews on 2026-12-10 free of charge."


def test_a_scheduled_downgrade_to_free_leaves_nothing_to_pay(graphql, gateway, unsaved):
    offer = graphql(QUOTE, {"input": {"planCode": "free"}}, key=unsaved.key)["quote"]
    done = graphql(
        CHECKOUT,
        {
            "input": {
                "planCode": "free",
                "expectedTotal": offer["dueNow"]["total"]["amount"],
                "quoteExpiresAt": offer["expiresAt"],
                "paymentMethod": {"method": "balance"},
                "idempotencyKey": "down",
            }
        },
        key=unsaved.key,
    )["checkout"]
    assert done["renewalPayment"]["nothingToPay"] is True
    assert done["renewalPayment"]["canPayNextRenewal"] is True


# ------------------------------------------------------------------ fixing it


def test_set_default_payment_method_fixes_it_and_emits_an_event(graphql, gateway, unsaved):
    card_id = add_card(graphql, unsaved)  # the first card saved becomes the renewal method
    assert renewal_payment(graphql, unsaved)["canPayNextRenewal"] is True

    to_balance = set_default(graphql, unsaved, "balance")
    assert to_balance["__typename"] == "Workspace"
    assert (to_balance["renewalPayment"]["chosen"], to_balance["renewalPayment"]["problem"]) == (
        True,
        "INSUFFICIENT_BALANCE",
    )
    assert "as no other method is chosen" not in to_balance["renewalPayment"]["message"]
    back = set_default(graphql, unsaved, "card", card_id)["renewalPayment"]
    assert (back["method"]["code"], back["card"]["id"], back["canPayNextRenewal"]) == ("card", card_id, True)
    again = set_default(graphql, unsaved, "card", card_id)  # the same choice: nothing changes
    assert again["renewalPayment"] == back

    changes = [
        payload for _, kind, payload in events(gateway, unsaved) if kind == "payment_method.default_changed"
    ]
    assert changes == [
        {"method": "balance", "card_id": None, "previous_method": "card", "previous_card_id": card_id},
        {"method": "card", "card_id": card_id, "previous_method": "balance", "previous_card_id": None},
    ]
    assert renewal_choice(gateway, unsaved) == f"card:{card_id}"
    assert renew(gateway, unsaved) is RenewalStatus.RENEWED
    assert {"payment_method.default_changed", "renewal.completed"} <= assert_events_as_documented(
        gateway, unsaved
    )


def test_removing_the_default_card_falls_back_to_the_balance(graphql, gateway, unsaved):
    card_id = add_card(graphql, unsaved)
    removed = graphql(REMOVE_CARD, {"id": card_id}, key=unsaved.key)["removeCard"]["renewalPayment"]
    assert removed == {
        "method": {"code": "balance"},
        "chosen": False,
        "canPayNextRenewal": False,
        "problem": "INSUFFICIENT_BALANCE",
    }
    assert renewal_choice(gateway, unsaved) is None


def test_a_card_that_expires_before_the_renewal_cannot_pay_it(graphql, gateway, unsaved):
    add_card(graphql, unsaved, month=11, year=2026)  # valid through 2026-11-30; renewal 2026-12-10
    answer = renewal_payment(graphql, unsaved)
    assert (answer["method"]["code"], answer["canPayNextRenewal"], answer["problem"]) == (
        "card",
        False,
        "CARD_EXPIRES",
    )
    assert answer["message"] == (
        "The card ending 4242 expires in 11/2026, before the renewal of 17.85 EUR on 2026-12-10: "
        "choose another method."
    )


def test_a_method_whose_plugin_is_gone_cannot_pay(graphql, gateway, unsaved):
    with gateway.write_sessions.begin() as session:
        lock_workspace(session, unsaved.id).renewal_payment = "sepa"
    answer = renewal_payment(graphql, unsaved)
    assert (answer["method"], answer["chosen"], answer["canPayNextRenewal"], answer["problem"]) == (
        None,
        True,
        False,
        "PAYMENT_METHOD_UNAVAILABLE",
    )
    assert "sepa" in answer["message"]
    assert renew(gateway, unsaved) is RenewalStatus.PAYMENT_FAILED


def test_incomplete_billing_details_cannot_be_invoiced(graphql, make_workspace):
    member = make_workspace("Moved in", plan_code="email", email_credits=5000)
    answer = renewal_payment(graphql, member)
    assert (answer["canPayNextRenewal"], answer["problem"]) == (False, "BILLING_DETAILS_INCOMPLETE")


# ------------------------------------------------------------------ refusals


@pytest.mark.parametrize(
    ("method", "card_id", "code", "field"),
    [
        ("cash", None, "UNKNOWN_PAYMENT_METHOD", ["method"]),
        ("transfer", None, "PAYMENT_METHOD_NOT_ALLOWED", ["method"]),  # cannot charge off-session
        ("balance", "SAVED", "PAYMENT_METHOD_NOT_ALLOWED", ["cardId"]),
        ("card", None, "CARD_REQUIRED", ["cardId"]),
        ("card", "nope", "UNKNOWN_CARD", ["cardId"]),
        ("card", "REMOVED", "UNKNOWN_CARD", ["cardId"]),
        ("card", "OTHER", "UNKNOWN_CARD", ["cardId"]),  # another workspace's card
    ],
)
def test_refusals_write_nothing(graphql, gateway, make_workspace, unsaved, method, card_id, code, field):
    gateway.registry.payment_methods["transfer"] = Transfer()  # this test's copy of the registry
    saved = add_card(graphql, unsaved)
    removed = add_card(graphql, unsaved, MASTERCARD, key="card-2")
    graphql(REMOVE_CARD, {"id": removed}, key=unsaved.key)
    other = make_workspace("Other")
    theirs = add_card(graphql, other, key="theirs")
    card_id = {"SAVED": saved, "REMOVED": removed, "OTHER": theirs}.get(card_id, card_id)
    before = snapshot(gateway)

    refused = set_default(graphql, unsaved, method, card_id)

    assert (refused["__typename"], refused["code"], refused["field"]) == ("PaymentRejected", code, field)
    assert snapshot(gateway) == before
    assert renewal_choice(gateway, unsaved) == f"card:{saved}"


def test_an_expired_card_is_refused(graphql, gateway, clock, unsaved):
    card_id = add_card(graphql, unsaved, month=11, year=2026)
    set_default(graphql, unsaved, "balance")
    clock.advance(days=21)  # 2026-12-01: the card has expired
    before = snapshot(gateway)
    refused = set_default(graphql, unsaved, "card", card_id)
    assert (refused["code"], refused["field"]) == ("CARD_EXPIRED_CARD", ["cardId"])
    assert refused["message"] == "the card ending 4242 expired in 11/2026"
    assert snapshot(gateway) == before


def test_signing_in_is_required(graphql):
    answer = graphql(SET_DEFAULT, {"input": {"method": "balance"}})["setDefaultPaymentMethod"]
    assert answer["__typename"] == "AuthenticationRequired"


# ------------------------------------------------------------------ concurrency


def test_concurrent_choices_end_consistent(graphql, gateway, unsaved):
    """Each request locks the workspace: the choice left is the last one made, and the events
    chain from one choice to the next with nothing lost or repeated."""
    card_id = add_card(graphql, unsaved)
    choices = [("balance", None), ("card", card_id)] * 4

    def choose(index: int, client) -> str:
        method, card = choices[index]
        variables = {"input": {"method": method, **({"cardId": card} if card else {})}}
        body = client.post(
            "/graphql",
            json={"query": SET_DEFAULT, "variables": variables},
            headers={"Authorization": f"Bearer {unsaved.key}"},
        ).json()
        return body["data"]["setDefaultPaymentMethod"]["__typename"]

    assert race(gateway, len(choices), choose) == ["Workspace"] * len(choices)

    changes = [
        payload for _, kind, payload in events(gateway, unsaved) if kind == "payment_method.default_changed"
    ]
    previous = ("card", card_id)  # what addCard chose
    for change in changes:
        assert (change["previous_method"], change["previous_card_id"]) == previous
        previous = (change["method"], change["card_id"])
        assert previous in choices
    final = renewal_choice(gateway, unsaved)
    assert final == (previous[0] if previous[1] is None else f"{previous[0]}:{previous[1]}")
