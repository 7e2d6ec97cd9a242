"""One workspace's key never reaches another workspace's payments, cards or billing history,
through the use cases or the read models behind the Billing pages."""

from __future__ import annotations

from helpers import THREE_DS, billing, card, snapshot

TOP_UP = """mutation($input: TopUpInput!) { topUpBalance(input: $input) { __typename
  ... on TopUpSuccess { payment { id } }
  ... on PaymentActionRequired { paymentId }
  ... on UserError { code field } } }"""
CONFIRM = """mutation($id: ID!) { confirmPayment(paymentId: $id, challengeResponse: "authenticated") {
  __typename ... on UserError { code field } } }"""
REMOVE_CARD = (
    """mutation($id: ID!) { removeCard(cardId: $id) { __typename ... on UserError { code field } } }"""
)
OVERVIEW = """{ workspace { ... on Workspace { id balance { amount }
  cards { id } invoices { id number } billingDetails { name } } } }"""


def _top_up(graphql, member, number: str, key: str, save: bool = False) -> dict:
    payment = {"method": "card", "newCard": card(number), "saveCard": save}
    variables = {"input": {"amount": "40.00", "paymentMethod": payment, "idempotencyKey": key}}
    return graphql(TOP_UP, variables, key=member.key)["topUpBalance"]


def test_another_workspaces_payment_cannot_be_confirmed(graphql, make_workspace, gateway):
    alice, mallory = make_workspace("Alice"), make_workspace("Mallory")
    waiting = _top_up(graphql, alice, THREE_DS, "alice-3ds")
    assert waiting["__typename"] == "PaymentActionRequired"
    before = snapshot(gateway)
    stolen = graphql(CONFIRM, {"id": waiting["paymentId"]}, key=mallory.key)["confirmPayment"]
    assert (stolen["__typename"], stolen["code"], stolen["field"]) == (
        "PaymentRejected",
        "UNKNOWN_PAYMENT",
        ["paymentId"],
    )
    assert snapshot(gateway) == before  # Alice's payment still waits for her
    mine = graphql(CONFIRM, {"id": waiting["paymentId"]}, key=alice.key)["confirmPayment"]
    assert mine["__typename"] == "TopUpSuccess"


def test_another_workspaces_billing_history_is_never_shown(graphql, make_workspace):
    alice, mallory = make_workspace("Alice"), make_workspace("Mallory")
    billing(graphql, alice)
    assert (
        _top_up(graphql, alice, "4242424242424242", "alice-visa", save=True)["__typename"] == "TopUpSuccess"
    )
    seen = graphql(OVERVIEW, key=mallory.key)["workspace"]
    assert seen["id"] == mallory.id
    assert (seen["cards"], seen["invoices"], seen["billingDetails"], seen["balance"]["amount"]) == (
        [],
        [],
        None,
        "0.00",
    )
    alices = graphql(OVERVIEW, key=alice.key)["workspace"]
    assert len(alices["cards"]) == 1 and alices["balance"]["amount"] == "40.00"
    taken = graphql(REMOVE_CARD, {"id": alices["cards"][0]["id"]}, key=mallory.key)["removeCard"]
    assert (taken["__typename"], taken["code"], taken["field"]) == (
        "PaymentRejected",
        "UNKNOWN_CARD",
        ["cardId"],
    )
    assert len(graphql(OVERVIEW, key=alice.key)["workspace"]["cards"]) == 1
