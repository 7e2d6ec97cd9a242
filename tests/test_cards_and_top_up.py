"""Saved cards (addCard, removeCard, workspace.cards) and balance top-ups paid by card
(topUpBalance), with 3-D Secure (confirmPayment). Only a token, the brand, the last four
digits, the expiry and a fingerprint are kept of a card."""

from __future__ import annotations

import pytest

from gateway.storage.db import Card, LedgerEntry, Payment, Workspace

from helpers import THREE_DS, VISA, assert_events_as_documented, card, events, reconcile, rows, snapshot

MASTERCARD = "5555555555554444"

ADD_CARD = """mutation($input: AddCardInput!) { addCard(input: $input) { __typename
  ... on CardAdded { card { id brand last4 expMonth expYear fingerprint isRenewalMethod } }
  ... on UserError { code field message } } }"""
REMOVE_CARD = """mutation($id: ID!) { removeCard(cardId: $id) { __typename
  ... on Workspace { cards { id } } ... on UserError { code field } } }"""
CARDS = "{ workspace { ... on Workspace { cards { id brand last4 expMonth expYear isRenewalMethod } } } }"
TOP_UP = """mutation($input: TopUpInput!) { topUpBalance(input: $input) { __typename
  ... on UserError { code field message }
  ... on TopUpSuccess { amount { amount currency } balance { amount currency }
                        payment { id method status amount { amount currency } card { id last4 } } }
  ... on PaymentActionRequired { paymentId nextAction }
  ... on PaymentDeclined { paymentId declineCode } } }"""
CONFIRM = """mutation($id: ID!, $answer: String) { confirmPayment(paymentId: $id, challengeResponse: $answer) {
  __typename ... on UserError { code field }
  ... on TopUpSuccess { amount { amount } balance { amount } payment { id status card { last4 } } }
  ... on PaymentDeclined { paymentId declineCode } } }"""
BALANCE = "{ workspace { ... on Workspace { balance { amount currency } } } }"


@pytest.fixture
def member(make_workspace):
    return make_workspace("Acme")


@pytest.fixture
def add_card(graphql, member):
    def run(number: str = VISA, key: str = "card-1", who=None, **fields) -> dict:
        input_ = {
            "card": card(number, **{k: v for k, v in fields.items() if k in ("month", "year", "cvc")}),
            "idempotencyKey": key,
            **{k: v for k, v in fields.items() if k == "useForRenewal"},
        }
        return graphql(ADD_CARD, {"input": input_}, key=(who or member).key)["addCard"]

    return run


@pytest.fixture
def top_up(graphql, member):
    def run(amount: str = "50.00", key: str = "top-up-1", who=None, **payment) -> dict:
        method = {"method": "card", **(payment or {"newCard": card()})}
        return graphql(
            TOP_UP,
            {"input": {"amount": amount, "paymentMethod": method, "idempotencyKey": key}},
            key=(who or member).key,
        )["topUpBalance"]

    return run


# ------------------------------------------------------------------ cards


def test_add_card_keeps_only_what_identifies_the_card(graphql, gateway, member, add_card):
    added = add_card()

    saved = added["card"]
    assert added == {
        "__typename": "CardAdded",
        "card": {
            "id": saved["id"],
            "brand": "visa",
            "last4": "4242",
            "expMonth": 12,
            "expYear": 2030,
            "fingerprint": saved["fingerprint"],
            "isRenewalMethod": True,
        },
    }  # the first card pays renewals
    assert len(saved["fingerprint"]) == 32 and VISA not in saved["fingerprint"]
    [row] = rows(gateway, Card, member)
    assert (row.id, row.brand, row.last4, row.exp_month, row.exp_year, row.fingerprint, row.removed_at) == (
        saved["id"],
        "visa",
        "4242",
        12,
        2030,
        saved["fingerprint"],
        None,
    )
    assert row.token.startswith("tok_sandbox_succeeds_")
    assert events(gateway, member) == [
        (1, "card.added", {"card_id": saved["id"], "brand": "visa", "last4": "4242"})
    ]
    with gateway.sessions() as session:
        assert session.get(Workspace, member.id).renewal_payment == f"card:{saved['id']}"


def test_a_second_card_pays_renewals_only_if_asked(graphql, gateway, member, add_card):
    first = add_card()["card"]
    second = add_card(MASTERCARD, key="card-2")["card"]
    assert (second["brand"], second["isRenewalMethod"]) == ("mastercard", False)
    third = add_card("378282246310005", key="card-3", cvc="7391", useForRenewal=True)["card"]
    assert (third["brand"], third["last4"], third["isRenewalMethod"]) == ("amex", "0005", True)
    listed = graphql(CARDS, key=member.key)["workspace"]["cards"]
    assert {c["id"]: c["isRenewalMethod"] for c in listed} == {
        first["id"]: False,
        second["id"]: False,
        third["id"]: True,
    }


def test_adding_the_same_card_again_returns_it(gateway, member, add_card):
    first = add_card()
    again = add_card(key="card-2", cvc="582")  # another key, the same card
    assert again == first
    assert len(rows(gateway, Card, member)) == 1
    assert [t for _, t, _ in events(gateway, member)] == ["card.added"]
    renewed = add_card(key="card-3", month=1, year=2031)  # a renewed card: new expiry, new entry
    assert renewed["card"]["id"] != first["card"]["id"]


def test_a_card_that_declines_later_can_still_be_saved(add_card):
    assert add_card("4000000000000341")["card"]["last4"] == "0341"


@pytest.mark.parametrize(
    ("fields", "code", "field"),
    [
        ({"number": "4242424242424241"}, "CARD_INVALID_NUMBER", ["card", "number"]),
        ({"number": "4242 4242 abcd 4242"}, "CARD_INVALID_NUMBER", ["card", "number"]),
        ({"number": "4242"}, "CARD_INVALID_NUMBER", ["card", "number"]),
        ({"expMonth": 0}, "CARD_INVALID_EXPIRY", ["card", "expMonth"]),
        ({"expYear": 2099}, "CARD_INVALID_EXPIRY", ["card", "expYear"]),
        ({"expMonth": 10, "expYear": 2026}, "CARD_EXPIRED_CARD", ["card", "expMonth"]),
        ({"expYear": 2025}, "CARD_EXPIRED_CARD", ["card", "expYear"]),
        ({"cvc": "7391"}, "CARD_INVALID_CVC", ["card", "cvc"]),
        ({"cvc": "7a9"}, "CARD_INVALID_CVC", ["card", "cvc"]),
    ],
)
def test_invalid_cards_are_refused_and_nothing_is_saved(graphql, gateway, member, fields, code, field):
    before = snapshot(gateway)
    refused = graphql(
        ADD_CARD, {"input": {"card": {**card(), **fields}, "idempotencyKey": "k"}}, key=member.key
    )["addCard"]
    assert (refused["__typename"], refused["code"], refused["field"]) == ("PaymentRejected", code, field)
    assert "4242" not in refused["message"]  # messages name the problem, never the value
    assert snapshot(gateway) == before


def test_spaces_and_dashes_in_the_number_are_forgiven(add_card):
    assert add_card("4242 4242-4242 4242")["card"]["last4"] == "4242"


def test_remove_card(graphql, gateway, member, add_card):
    saved = add_card()["card"]
    other = add_card(MASTERCARD, key="card-2")["card"]

    removed = graphql(REMOVE_CARD, {"id": saved["id"]}, key=member.key)["removeCard"]

    assert removed == {"__typename": "Workspace", "cards": [{"id": other["id"]}]}
    with gateway.sessions() as session:
        assert session.get(Card, saved["id"]).removed_at is not None  # kept for the payments that used it
        assert session.get(Workspace, member.id).renewal_payment is None  # it paid renewals
    again = graphql(REMOVE_CARD, {"id": saved["id"]}, key=member.key)["removeCard"]
    assert (again["__typename"], again["code"], again["field"]) == (
        "PaymentRejected",
        "UNKNOWN_CARD",
        ["cardId"],
    )


def test_another_workspaces_card_cannot_be_removed_or_used(
    graphql, gateway, member, add_card, top_up, make_workspace
):
    other = make_workspace("Other")
    theirs = add_card(who=other)["card"]
    before = snapshot(gateway)
    refused = graphql(REMOVE_CARD, {"id": theirs["id"]}, key=member.key)["removeCard"]
    assert refused["code"] == "UNKNOWN_CARD"
    used = top_up(cardId=theirs["id"])
    assert (used["code"], used["field"]) == ("UNKNOWN_CARD", ["paymentMethod", "cardId"])
    assert snapshot(gateway) == before
    assert graphql(CARDS, key=member.key)["workspace"]["cards"] == []


# ------------------------------------------------------------------ top-ups


def test_top_up_with_a_new_card_not_saved(graphql, gateway, member, top_up):
    topped = top_up("50.00")

    payment_id = topped["payment"]["id"]
    assert topped == {
        "__typename": "TopUpSuccess",
        "amount": {"amount": "50.00", "currency": "EUR"},
        "balance": {"amount": "50.00", "currency": "EUR"},
        "payment": {
            "id": payment_id,
            "method": "card",
            "status": "succeeded",
            "amount": {"amount": "50.00", "currency": "EUR"},
            "card": None,
        },
    }
    assert graphql(CARDS, key=member.key)["workspace"]["cards"] == []
    [entry] = rows(gateway, LedgerEntry, member)
    assert (entry.kind, entry.amount_minor, entry.balance_after_minor, entry.reference, entry.currency) == (
        "top_up",
        5000,
        5000,
        payment_id,
        "EUR",
    )
    assert events(gateway, member) == [
        (
            1,
            "balance.topped_up",
            {"payment_id": payment_id, "amount": "50.00", "currency": "EUR", "balance": "50.00"},
        )
    ]
    assert assert_events_as_documented(gateway, member) == {"balance.topped_up"}


def test_top_up_with_a_new_card_saved_then_with_the_saved_card(graphql, gateway, member, top_up):
    first = top_up("20.00", newCard=card(), saveCard=True)
    saved = first["payment"]["card"]
    assert saved["last4"] == "4242"
    assert [c["id"] for c in graphql(CARDS, key=member.key)["workspace"]["cards"]] == [saved["id"]]

    second = top_up("30.55", key="top-up-2", cardId=saved["id"])

    assert second["payment"]["card"] == saved
    assert second["balance"] == {"amount": "50.55", "currency": "EUR"}
    assert reconcile(gateway, member) == 5055
    assert [t for _, t, _ in events(gateway, member)] == [
        "card.added",
        "balance.topped_up",
        "balance.topped_up",
    ]


@pytest.mark.parametrize(
    ("number", "decline"),
    [
        ("4000000000000002", "card_declined"),
        ("4000000000009995", "insufficient_funds"),
        ("4000000000000069", "expired_card"),
        ("4000000000000127", "incorrect_cvc"),
        ("4000000000000119", "processing_error"),
    ],
)
def test_a_declined_top_up_credits_nothing(graphql, gateway, member, top_up, number, decline):
    refused = top_up("25.00", newCard=card(number), saveCard=True)

    assert (refused["__typename"], refused["code"], refused["declineCode"]) == (
        "PaymentDeclined",
        "PAYMENT_DECLINED",
        decline,
    )
    [payment] = rows(gateway, Payment, member)
    assert (payment.id, payment.purpose, payment.status, payment.failure_code, payment.card_id) == (
        refused["paymentId"],
        "top_up",
        "failed",
        decline,
        None,
    )
    assert rows(gateway, LedgerEntry, member) == [] and rows(gateway, Card, member) == []
    assert [t for _, t, _ in events(gateway, member)] == ["payment.failed"]
    assert graphql(BALANCE, key=member.key)["workspace"]["balance"] == {"amount": "0.00", "currency": "EUR"}


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("4.99", "top-ups must be between 5.00 and 10000.00 EUR"),
        ("10000.01", "top-ups must be between 5.00 and 10000.00 EUR"),
        ("0", "top-ups must be between 5.00 and 10000.00 EUR"),
        ("-20.00", "top-ups must be between 5.00 and 10000.00 EUR"),
        ("Infinity", "top-ups must be between 5.00 and 10000.00 EUR"),
        ("NaN", "top-ups must be between 5.00 and 10000.00 EUR"),
        ("sNaN", "top-ups must be between 5.00 and 10000.00 EUR"),
        ("1E+30", "top-ups must be between 5.00 and 10000.00 EUR"),
        ("10.001", "amounts in EUR have at most 2 decimals"),
    ],
)
def test_invalid_top_up_amounts(gateway, member, top_up, amount, message):
    before = snapshot(gateway)
    refused = top_up(amount)
    assert (refused["__typename"], refused["code"], refused["field"], refused["message"]) == (
        "PaymentRejected",
        "INVALID_AMOUNT",
        ["amount"],
        message,
    )
    assert snapshot(gateway) == before


def test_the_limits_are_inclusive(gateway, member, top_up):
    assert top_up("5.00")["balance"]["amount"] == "5.00"
    assert top_up("10000.00", key="top-up-2")["balance"]["amount"] == "10005.00"
    assert top_up("20.10", key="top-up-3")["amount"]["amount"] == "20.10"
    assert reconcile(gateway, member) == 1002510


@pytest.mark.parametrize(
    ("payment", "code", "field"),
    [
        ({"method": "balance"}, "PAYMENT_METHOD_NOT_ALLOWED", ["paymentMethod", "method"]),
        ({"method": "card"}, "CARD_REQUIRED", ["paymentMethod"]),
        ({"method": "card", "cardId": "nope"}, "UNKNOWN_CARD", ["paymentMethod", "cardId"]),
        (
            {"method": "card", "newCard": card("4242424242424241")},
            "CARD_INVALID_NUMBER",
            ["paymentMethod", "newCard", "number"],
        ),
        (
            {"method": "card", "newCard": card(month=13)},
            "CARD_INVALID_EXPIRY",
            ["paymentMethod", "newCard", "expMonth"],
        ),
        (
            {"method": "card", "newCard": card(cvc="12")},
            "CARD_INVALID_CVC",
            ["paymentMethod", "newCard", "cvc"],
        ),
    ],
)
def test_top_up_refusals_write_nothing(graphql, gateway, member, payment, code, field):
    before = snapshot(gateway)
    refused = graphql(
        TOP_UP,
        {"input": {"amount": "50.00", "paymentMethod": payment, "idempotencyKey": "k"}},
        key=member.key,
    )["topUpBalance"]
    assert (refused["__typename"], refused["code"], refused["field"]) == ("PaymentRejected", code, field)
    assert snapshot(gateway) == before


def test_a_removed_card_cannot_top_up(graphql, gateway, member, add_card, top_up):
    saved = add_card()["card"]
    graphql(REMOVE_CARD, {"id": saved["id"]}, key=member.key)
    before = snapshot(gateway)
    assert top_up(cardId=saved["id"])["code"] == "UNKNOWN_CARD"
    assert snapshot(gateway) == before


# ------------------------------------------------------------------ 3-D Secure top-ups


def test_3ds_top_up_credits_once_authenticated(graphql, gateway, member, top_up):
    pending = top_up("40.00", newCard=card(THREE_DS), saveCard=True)

    assert (pending["__typename"], pending["code"]) == ("PaymentActionRequired", "PAYMENT_ACTION_REQUIRED")
    assert pending["nextAction"].startswith("sandbox-3ds:")
    assert graphql(BALANCE, key=member.key)["workspace"]["balance"]["amount"] == "0.00"
    assert rows(gateway, Card, member) == [] and rows(gateway, LedgerEntry, member) == []
    assert events(gateway, member) == []

    done = graphql(CONFIRM, {"id": pending["paymentId"], "answer": "authenticated"}, key=member.key)[
        "confirmPayment"
    ]

    assert done == {
        "__typename": "TopUpSuccess",
        "amount": {"amount": "40.00"},
        "balance": {"amount": "40.00"},
        "payment": {"id": pending["paymentId"], "status": "succeeded", "card": {"last4": "3184"}},
    }
    assert [c["last4"] for c in graphql(CARDS, key=member.key)["workspace"]["cards"]] == ["3184"]
    assert [t for _, t, _ in events(gateway, member)] == ["card.added", "balance.topped_up"]
    again = graphql(CONFIRM, {"id": pending["paymentId"], "answer": "authenticated"}, key=member.key)
    assert again["confirmPayment"] == done
    assert reconcile(gateway, member) == 4000
    assert len(rows(gateway, LedgerEntry, member)) == 1


def test_3ds_top_up_failed_challenge_credits_nothing(graphql, gateway, member, top_up):
    pending = top_up("40.00", newCard=card(THREE_DS), saveCard=True)

    declined = graphql(CONFIRM, {"id": pending["paymentId"], "answer": None}, key=member.key)[
        "confirmPayment"
    ]

    assert declined == {
        "__typename": "PaymentDeclined",
        "code": "PAYMENT_DECLINED",
        "field": ["paymentMethod"],
        "paymentId": pending["paymentId"],
        "declineCode": "authentication_failed",
    }
    assert rows(gateway, Card, member) == [] and rows(gateway, LedgerEntry, member) == []
    assert [t for _, t, _ in events(gateway, member)] == ["payment.failed"]
    again = graphql(CONFIRM, {"id": pending["paymentId"], "answer": "authenticated"}, key=member.key)
    assert again["confirmPayment"] == declined
    assert reconcile(gateway, member) == 0


def test_a_3ds_top_up_with_a_saved_card(graphql, gateway, member, add_card, top_up):
    saved = add_card(THREE_DS)["card"]
    pending = top_up("15.00", cardId=saved["id"])
    assert pending["__typename"] == "PaymentActionRequired"
    done = graphql(CONFIRM, {"id": pending["paymentId"], "answer": "authenticated"}, key=member.key)
    assert done["confirmPayment"]["payment"]["card"] == {"last4": "3184"}
    assert len(rows(gateway, Card, member)) == 1
