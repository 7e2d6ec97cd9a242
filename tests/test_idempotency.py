"""Idempotency keys on checkout, topUpBalance and addCard: a retry replays the first
result and never charges twice, also when the retries run at the same time; the same
key with a different input is refused; a refused request releases its key; keys are
kept 24 hours.

Free -> Omnichannel at its defaults costs 95.00 + 19 % VAT = 113.05 (a German consumer).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from gateway.services import cards, payflow
from gateway.services import checkout as co
from gateway.storage import idempotency
from gateway.storage.db import Card, IdempotencyKey, Invoice, LedgerEntry, OutboxEvent, Payment
from gateway.storage.ledger import ledger_sum

from helpers import billing, card, post, race, snapshot

QUOTE = """mutation($input: QuoteInput!) { quote(input: $input) {
  ... on Quote { emailCredits messagingCredits dueNow { total { amount } } expiresAt } } }"""
CHECKOUT = """mutation($input: CheckoutInput!) { checkout(input: $input) { __typename
  ... on UserError { code field }
  ... on CheckoutSuccess { kind workspace { plan { code } balance { amount } } invoice { id number }
                           payment { id status } }
  ... on PaymentDeclined { paymentId declineCode }
  ... on PaymentActionRequired { paymentId nextAction }
  ... on InsufficientBalance { shortfall { amount } }
  ... on QuoteChanged { quote { dueNow { total { amount } } expiresAt } } } }"""
TOP_UP = """mutation($input: TopUpInput!) { topUpBalance(input: $input) { __typename
  ... on UserError { code field }
  ... on TopUpSuccess { amount { amount } payment { id status } }
  ... on PaymentDeclined { paymentId declineCode } } }"""
ADD_CARD = """mutation($input: AddCardInput!) { addCard(input: $input) { __typename
  ... on CardAdded { card { id last4 expMonth expYear } } ... on UserError { code field } } }"""


def count(gateway, model, member) -> int:
    with gateway.sessions() as session:
        return len(session.scalars(select(model).where(model.workspace_id == member.id)).all())


def balance(gateway, member) -> int:
    with gateway.sessions() as session:
        return ledger_sum(session, member.id)


@pytest.fixture
def member(graphql, make_workspace):
    member = make_workspace("Acme")
    billing(graphql, member)
    return member


@pytest.fixture
def offer(graphql, member) -> dict:
    return graphql(QUOTE, {"input": {"planCode": "omnichannel"}}, key=member.key)["quote"]


def checkout_input(offer: dict, key: str = "order-1", **fields) -> dict:
    return {
        "planCode": "omnichannel",
        "expectedTotal": offer["dueNow"]["total"]["amount"],
        "quoteExpiresAt": offer["expiresAt"],
        "paymentMethod": {"method": "balance"},
        "idempotencyKey": key,
        **fields,
    }


def top_up_input(amount: str = "150.00", key: str = "top-up-1", **payment) -> dict:
    return {
        "amount": amount,
        "paymentMethod": {"method": "card", "newCard": card(), **payment},
        "idempotencyKey": key,
    }


@pytest.fixture
def checkout(graphql, member):
    def run(input_: dict, who=None) -> dict:
        return graphql(CHECKOUT, {"input": input_}, key=(who or member).key)["checkout"]

    return run


@pytest.fixture
def top_up(graphql, member):
    def run(input_: dict, who=None) -> dict:
        return graphql(TOP_UP, {"input": input_}, key=(who or member).key)["topUpBalance"]

    return run


@pytest.fixture
def funded(top_up, member):
    assert top_up(top_up_input(key="fund"))["__typename"] == "TopUpSuccess"
    return member


# ------------------------------------------------------------------ checkout


def test_a_retried_checkout_replays_the_first_result_and_charges_once(gateway, checkout, funded, offer):
    first = checkout(checkout_input(offer))
    assert first["__typename"] == "CheckoutSuccess"
    events = count(gateway, OutboxEvent, funded)

    again = checkout(checkout_input(offer))

    assert again == first
    assert count(gateway, Payment, funded) == 2  # the funding top-up and one checkout
    assert count(gateway, Invoice, funded) == 1
    assert count(gateway, LedgerEntry, funded) == 2  # the top-up and one charge
    assert count(gateway, OutboxEvent, funded) == events
    assert balance(gateway, funded) == 15000 - 11305


def test_the_same_key_with_another_input_is_refused(gateway, checkout, funded, offer):
    first = checkout(checkout_input(offer))
    before = snapshot(gateway)

    for change in (
        {"planCode": "email", "expectedTotal": "17.85"},
        {"emailCredits": 25000},
        {"paymentMethod": {"method": "card", "newCard": card()}},
    ):
        refused = checkout(checkout_input(offer, **change))
        assert (refused["__typename"], refused["code"], refused["field"]) == (
            "IdempotencyKeyRejected",
            "IDEMPOTENCY_KEY_REUSED",
            ["idempotencyKey"],
        )

    assert snapshot(gateway) == before
    assert checkout(checkout_input(offer)) == first


def test_a_key_belongs_to_its_workspace(gateway, graphql, checkout, top_up, funded, offer, make_workspace):
    other = make_workspace("Other")
    billing(graphql, other)
    assert top_up(top_up_input(key="fund"), other)["__typename"] == "TopUpSuccess"
    mine = checkout(checkout_input(offer, key="shared"))
    theirs = checkout(checkout_input(offer, key="shared"), other)
    assert mine["__typename"] == theirs["__typename"] == "CheckoutSuccess"
    assert mine["payment"]["id"] != theirs["payment"]["id"]


def test_a_declined_checkout_replays_the_decline(gateway, checkout, member, offer):
    declined_card = {"method": "card", "newCard": card("4000000000000002")}
    first = checkout(checkout_input(offer, paymentMethod=declined_card))
    assert (first["__typename"], first["declineCode"]) == ("PaymentDeclined", "card_declined")

    again = checkout(checkout_input(offer, paymentMethod=declined_card))

    assert again == first
    assert count(gateway, Payment, member) == 1
    assert count(gateway, OutboxEvent, member) == 1
    # Another card needs another key: this one is spent on the decline.
    other_card = {"method": "card", "newCard": card()}
    reused = checkout(checkout_input(offer, paymentMethod=other_card))
    assert reused["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert (
        checkout(checkout_input(offer, key="order-2", paymentMethod=other_card))["__typename"]
        == "CheckoutSuccess"
    )


def test_a_refused_checkout_releases_its_key(gateway, checkout, funded, offer):
    wrong = checkout(checkout_input(offer, expectedTotal="100.00"))
    assert wrong["code"] == "QUOTE_CHANGED"
    with gateway.sessions() as session:
        assert session.scalars(select(IdempotencyKey).where(IdempotencyKey.key == "order-1")).all() == []

    corrected = checkout(checkout_input(offer, expectedTotal=wrong["quote"]["dueNow"]["total"]["amount"]))

    assert corrected["__typename"] == "CheckoutSuccess"


def test_insufficient_balance_releases_the_key_for_after_the_top_up(gateway, checkout, top_up, member, offer):
    short = checkout(checkout_input(offer))
    assert (short["__typename"], short["shortfall"]) == ("InsufficientBalance", {"amount": "113.05"})
    assert top_up(top_up_input())["__typename"] == "TopUpSuccess"

    assert checkout(checkout_input(offer))["__typename"] == "CheckoutSuccess"
    assert balance(gateway, member) == 15000 - 11305


def test_a_pending_3ds_checkout_replays_the_action(gateway, checkout, member, offer):
    three_ds = {"method": "card", "newCard": card("4000002760003184")}
    first = checkout(checkout_input(offer, paymentMethod=three_ds))
    assert first["__typename"] == "PaymentActionRequired"
    assert checkout(checkout_input(offer, paymentMethod=three_ds)) == first
    assert count(gateway, Payment, member) == 1


def test_a_checkout_is_replayed_for_24_hours(gateway, clock, checkout, funded, offer):
    first = checkout(checkout_input(offer))
    clock.advance(hours=23, minutes=59)  # the quote expired long ago, the answer stands
    assert checkout(checkout_input(offer)) == first
    assert count(gateway, Payment, funded) == 2
    with gateway.sessions() as session:
        key = session.get(IdempotencyKey, (funded.id, "order-1"))
        assert key.expires_at - key.created_at == timedelta(hours=24)


def test_after_24_hours_the_key_is_new_again(gateway, clock, checkout, funded, offer):
    assert checkout(checkout_input(offer))["__typename"] == "CheckoutSuccess"
    clock.advance(hours=24)
    # Not replayed but run afresh: the workspace already has the plan.
    refused = checkout(checkout_input(offer))
    assert (refused["__typename"], refused["code"]) == ("PaymentRejected", "NOTHING_TO_CHANGE")
    assert count(gateway, Payment, funded) == 2


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("6f1c1b0e-2b8e-4c47-9b55-3f0d2c1a7e11", id="uuid"),
        pytest.param("k" * 255, id="longest"),
    ],
)
def test_long_keys_work_on_every_database(gateway, checkout, top_up, member, offer, key):
    """The key reaches the payment method (and the ledger's 64-character reference) in a bounded form."""
    assert top_up(top_up_input(key="t" + key[1:]))["__typename"] == "TopUpSuccess"
    first = checkout(checkout_input(offer, key=key))
    assert first["__typename"] == "CheckoutSuccess"
    assert checkout(checkout_input(offer, key=key)) == first
    assert balance(gateway, member) == 15000 - 11305


@pytest.mark.parametrize("key", ["", "   ", "k" * 256, "tab\there"])
def test_malformed_keys_are_refused(gateway, checkout, top_up, graphql, member, offer, key):
    before = snapshot(gateway)
    for result in (
        checkout(checkout_input(offer, key=key)),
        top_up(top_up_input(key=key)),
        graphql(ADD_CARD, {"input": {"card": card(), "idempotencyKey": key}}, key=member.key)["addCard"],
    ):
        assert (result["__typename"], result["code"], result["field"]) == (
            "IdempotencyKeyRejected",
            "INVALID_IDEMPOTENCY_KEY",
            ["idempotencyKey"],
        )
    assert snapshot(gateway) == before


# ------------------------------------------------------------------ top-up and addCard


def test_a_retried_top_up_charges_once(gateway, top_up, member):
    first = top_up(top_up_input())
    assert first["__typename"] == "TopUpSuccess"
    assert top_up(top_up_input()) == first
    assert count(gateway, Payment, member) == 1
    assert count(gateway, LedgerEntry, member) == 1
    assert balance(gateway, member) == 15000

    before = snapshot(gateway)
    for changed in (
        top_up_input("150.01"),
        top_up_input(saveCard=True),
        top_up_input(newCard=card(month=11)),
    ):
        refused = top_up(changed)
        assert (refused["__typename"], refused["code"], refused["field"]) == (
            "IdempotencyKeyRejected",
            "IDEMPOTENCY_KEY_REUSED",
            ["idempotencyKey"],
        )
    assert snapshot(gateway) == before


def test_a_declined_top_up_replays_the_decline(gateway, top_up, member):
    first = top_up(top_up_input(newCard=card("4000000000009995")))
    assert (first["__typename"], first["declineCode"]) == ("PaymentDeclined", "insufficient_funds")
    assert top_up(top_up_input(newCard=card("4000000000009995"))) == first
    assert count(gateway, Payment, member) == 1
    assert balance(gateway, member) == 0


def test_a_refused_top_up_releases_its_key(gateway, top_up, member):
    refused = top_up(top_up_input("4.99"))
    assert refused["code"] == "INVALID_AMOUNT"
    assert top_up(top_up_input("5.00"))["__typename"] == "TopUpSuccess"


def test_top_up_keys_are_kept_24_hours(gateway, clock, top_up, member):
    first = top_up(top_up_input())
    clock.advance(hours=23)
    assert top_up(top_up_input()) == first
    assert count(gateway, Payment, member) == 1
    clock.advance(hours=1)  # 24 hours after the first: the key has expired and is used afresh
    second = top_up(top_up_input())
    assert second["__typename"] == "TopUpSuccess" and second["payment"]["id"] != first["payment"]["id"]
    assert balance(gateway, member) == 30000


def test_a_retried_add_card_saves_once(gateway, graphql, member):
    add = {"card": card(), "idempotencyKey": "card-1"}
    first = graphql(ADD_CARD, {"input": add}, key=member.key)["addCard"]
    assert first["__typename"] == "CardAdded"
    assert graphql(ADD_CARD, {"input": add}, key=member.key)["addCard"] == first
    assert count(gateway, Card, member) == 1

    before = snapshot(gateway)
    for changed in ({"card": card("5555555555554444")}, {"card": card(month=11)}, {"useForRenewal": True}):
        refused = graphql(ADD_CARD, {"input": {**add, **changed}}, key=member.key)["addCard"]
        assert (refused["__typename"], refused["code"], refused["field"]) == (
            "IdempotencyKeyRejected",
            "IDEMPOTENCY_KEY_REUSED",
            ["idempotencyKey"],
        )
    assert snapshot(gateway) == before


# Another valid card with the same last four digits and expiry as 4242 4242 4242 4242.
LOOKALIKE = "4000000000024242"


def test_another_card_with_the_same_last_digits_is_another_input(
    gateway, graphql, checkout, top_up, funded, offer
):
    add = {"card": card(), "idempotencyKey": "card"}
    assert graphql(ADD_CARD, {"input": add}, key=funded.key)["addCard"]["__typename"] == "CardAdded"
    assert top_up(top_up_input(key="top-up"))["__typename"] == "TopUpSuccess"
    by_card = {"method": "card", "newCard": card()}
    assert (
        checkout(checkout_input(offer, key="order", paymentMethod=by_card))["__typename"] == "CheckoutSuccess"
    )
    before = snapshot(gateway)

    refused = [
        graphql(ADD_CARD, {"input": {**add, "card": card(LOOKALIKE)}}, key=funded.key)["addCard"],
        top_up(top_up_input(key="top-up", newCard=card(LOOKALIKE))),
        checkout(checkout_input(offer, key="order", paymentMethod={**by_card, "newCard": card(LOOKALIKE)})),
    ]

    assert [(r["__typename"], r["code"]) for r in refused] == [
        ("IdempotencyKeyRejected", "IDEMPOTENCY_KEY_REUSED")
    ] * 3
    assert snapshot(gateway) == before
    # The same card with another CVC is the same input: replayed.
    replay = graphql(ADD_CARD, {"input": {**add, "card": card(cvc="582")}}, key=funded.key)["addCard"]
    assert replay["__typename"] == "CardAdded"


def test_a_refused_add_card_releases_its_key(gateway, graphql, member):
    bad = graphql(
        ADD_CARD, {"input": {"card": card("4242424242424241"), "idempotencyKey": "k"}}, key=member.key
    )["addCard"]
    assert (bad["code"], bad["field"]) == ("CARD_INVALID_NUMBER", ["card", "number"])
    good = graphql(ADD_CARD, {"input": {"card": card(), "idempotencyKey": "k"}}, key=member.key)["addCard"]
    assert good["__typename"] == "CardAdded"


def test_keys_are_per_operation(gateway, graphql, checkout, top_up, funded, offer):
    assert checkout(checkout_input(offer, key="same"))["__typename"] == "CheckoutSuccess"
    refused = top_up(top_up_input(key="same"))
    assert refused["code"] == "IDEMPOTENCY_KEY_REUSED"


# ------------------------------------------------------------------ concurrent retries


def test_concurrent_checkouts_with_one_key_charge_once(gateway, funded, offer):
    input_ = checkout_input(offer, key="double-click")

    results = race(
        gateway, 8, lambda _, client: post(client, funded, CHECKOUT, {"input": input_})["checkout"]
    )

    assert results[0]["__typename"] == "CheckoutSuccess"
    assert all(result == results[0] for result in results), results
    assert count(gateway, Payment, funded) == 2  # the funding top-up and one checkout
    assert count(gateway, Invoice, funded) == 1
    assert count(gateway, LedgerEntry, funded) == 2
    assert balance(gateway, funded) == 15000 - 11305
    print(
        f"\nconcurrent checkouts with one key: 8 requests, 1 charge of 113.05, "
        f"invoice {results[0]['invoice']['number']}"
    )


def test_a_checkout_key_held_by_a_running_request_is_waited_for_then_taken_over(
    gateway, funded, offer, clock, monkeypatch
):
    """A checkout claims its key in the transaction that records its payment, so a claim of
    another request is only ever seen if that request runs elsewhere (a gateway of an earlier
    version, claiming in a transaction of its own) or died. It is waited for, and answered
    IDEMPOTENCY_KEY_IN_PROGRESS while its lease runs; once the lease ran out the key is taken
    over, and the payment's key is derived from the first claim, as a retry of that request's
    own would be."""
    monkeypatch.setattr(idempotency, "WAIT_SECONDS", 0.1)
    request = co.CheckoutRequest(
        "omnichannel",
        None,
        None,
        Decimal(offer["dueNow"]["total"]["amount"]),
        datetime.fromisoformat(offer["expiresAt"]),
        cards.PaymentChoice("balance"),
        "held",
    )
    fingerprint = idempotency.request_hash("checkout", request.fingerprint(None))
    claimed = clock.now
    assert (
        idempotency.claim(gateway.write_sessions, funded.id, "held", "checkout", fingerprint, claimed) is None
    )
    with pytest.raises(idempotency.IdempotencyKeyInProgress):
        co.checkout(gateway, funded.id, request)
    assert count(gateway, Payment, funded) == 1  # the funding top-up only

    clock.advance(seconds=idempotency.CLAIM_TIMEOUT.total_seconds() + 1)
    done = co.checkout(gateway, funded.id, request)
    assert isinstance(done, co.Completed)
    with gateway.sessions() as session:
        payment = session.get(Payment, done.payment_id)
        first_claim = f"checkout:{funded.id}:held:{claimed.astimezone(UTC):%Y%m%dT%H%M%S%fZ}"
        assert payment is not None and payment.idempotency_key == payflow.payment_key("checkout", first_claim)
    assert co.checkout(gateway, funded.id, request) == done  # and a retry replays it
    assert balance(gateway, funded) == 15000 - 11305


def test_concurrent_top_ups_with_one_key_charge_once(gateway, member):
    input_ = top_up_input("75.00", key="double-click")

    results = race(
        gateway, 8, lambda _, client: post(client, member, TOP_UP, {"input": input_})["topUpBalance"]
    )

    assert results[0]["__typename"] == "TopUpSuccess"
    assert all(result == results[0] for result in results), results
    assert count(gateway, Payment, member) == 1
    assert balance(gateway, member) == 7500


def test_concurrent_add_cards_with_one_key_save_once(gateway, member):
    input_ = {"card": card(), "idempotencyKey": "double-click"}

    results = race(gateway, 6, lambda _, client: post(client, member, ADD_CARD, {"input": input_})["addCard"])

    assert results[0]["__typename"] == "CardAdded"
    assert all(result == results[0] for result in results), results
    assert count(gateway, Card, member) == 1
    assert count(gateway, OutboxEvent, member) == 1


def test_concurrent_service_calls_with_one_key_charge_once(gateway, funded, offer):
    """The same race straight through the checkout service, with no HTTP layer in between."""
    request = co.CheckoutRequest(
        "omnichannel",
        None,
        None,
        Decimal(offer["dueNow"]["total"]["amount"]),
        datetime.fromisoformat(offer["expiresAt"]),
        cards.PaymentChoice("balance"),
        "svc",
    )
    barrier = threading.Barrier(6)
    outcomes: list[Any] = []

    def worker() -> None:
        barrier.wait(timeout=10)
        outcomes.append(co.checkout(gateway, funded.id, request))

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(outcomes) == 6
    assert isinstance(outcomes[0], co.Completed)
    assert all(outcome == outcomes[0] for outcome in outcomes)
    assert count(gateway, Invoice, funded) == 1
    assert balance(gateway, funded) == 15000 - 11305


def test_a_request_still_running_makes_a_retry_wait_then_give_up(gateway, funded):
    """A claim that is in progress (its request still running) is not taken over."""
    now = gateway.clock()
    fingerprint = idempotency.request_hash("top_up", {"x": 1})
    assert idempotency.claim(gateway.write_sessions, funded.id, "busy", "top_up", fingerprint, now) is None
    with pytest.raises(idempotency.IdempotencyKeyInProgress):
        idempotency.claim(gateway.write_sessions, funded.id, "busy", "top_up", fingerprint, now, wait=0.1)
    # Once its lease ran out, the request is taken to have died: the key can be taken over.
    later = now + idempotency.CLAIM_TIMEOUT
    assert idempotency.claim(gateway.write_sessions, funded.id, "busy", "top_up", fingerprint, later) is None


def test_a_request_that_took_over_a_stale_claim_never_moves_money_twice(gateway, make_workspace, clock):
    """A stalls past the claim timeout; B takes the key over and completes it; when A's work
    finally reaches its commit it must roll back, not credit the top-up a second time."""
    from gateway.plugin_api.payments import CardDetails
    from gateway.services import wallet

    member = make_workspace("Stalled")
    choice = cards.PaymentChoice("card", new_card=CardDetails("4242424242424242", 12, 2030, "123"))
    key = "stale-claim"
    token = cards.tokenize(gateway, gateway.registry.payment_methods["card"], choice, clock.now.date())
    fingerprint = idempotency.request_hash(
        "top_up", {"amount": "50.00", "payment": choice.fingerprint(token)}
    )
    assert (
        idempotency.claim(gateway.write_sessions, member.id, key, "top_up", fingerprint, clock.now) is None
    )  # A

    clock.advance(minutes=3)  # A looks abandoned
    first = wallet.top_up(gateway, member.id, Decimal("50.00"), choice, key)  # B takes over and completes
    assert isinstance(first, wallet.ToppedUp)

    with pytest.raises(idempotency.AlreadyCompleted):  # A's work, late: its transaction rolls back
        wallet._top_up(
            gateway,
            member.id,
            Decimal("50.00"),
            choice,
            token,
            key,
            clock.now,
        )
    with gateway.sessions() as session:
        assert ledger_sum(session, member.id) == 5000
        assert len(session.scalars(select(Payment).where(Payment.workspace_id == member.id)).all()) == 1
    # and a retry of A through the public path replays B's answer
    again = wallet.top_up(gateway, member.id, Decimal("50.00"), choice, key)
    assert again == first


def test_the_periodic_run_purges_keys_older_than_their_ttl(gateway, make_workspace, clock):
    from gateway.server.http import renew

    member = make_workspace("Purge")
    assert idempotency.claim(gateway.write_sessions, member.id, "old", "top_up", "h", clock.now) is None
    clock.advance(hours=2)
    assert idempotency.claim(gateway.write_sessions, member.id, "young", "top_up", "h", clock.now) is None
    clock.advance(hours=22, minutes=30)  # "old" is 24.5 h old, "young" 22.5 h
    renew(gateway)
    with gateway.sessions() as session:
        assert session.scalars(select(IdempotencyKey.key)).all() == ["young"]


def test_a_retry_after_a_crash_takes_the_key_over_within_half_a_minute(client, make_workspace, clock):
    """The first request claimed the key and its process died (nothing released the claim): a
    retry half a minute later does the work instead of answering IDEMPOTENCY_KEY_IN_PROGRESS."""
    from gateway.plugin_api.payments import CardDetails

    member = make_workspace("Crashed")
    choice = cards.PaymentChoice("card", new_card=CardDetails("4242424242424242", 12, 2030, "123"))
    gateway = client.app.state.gateway
    token = cards.tokenize(gateway, gateway.registry.payment_methods["card"], choice, clock.now.date())
    fingerprint = idempotency.request_hash(
        "top_up", {"amount": "50.00", "payment": choice.fingerprint(token)}
    )
    sessions = client.app.state.gateway.write_sessions
    assert idempotency.claim(sessions, member.id, "crashed", "top_up", fingerprint, clock.now) is None

    clock.advance(seconds=31)
    variables = {
        "input": {
            "amount": "50.00",
            "paymentMethod": {"method": "card", "newCard": card("4242424242424242", 12, 2030, "123")},
            "idempotencyKey": "crashed",
        }
    }
    answer = post(client, member, TOP_UP_ANSWER, variables)["topUpBalance"]
    assert answer["__typename"] == "TopUpSuccess", answer


TOP_UP_ANSWER = """mutation($input: TopUpInput!) { topUpBalance(input: $input) { __typename
  ... on UserError { code } } }"""


def test_an_outage_while_claiming_is_the_database_error_not_in_progress(clock):
    """A database that refuses connections is reported as such (the API answers it with
    DATABASE_UNAVAILABLE), never as another request holding the key."""
    from sqlalchemy.orm import sessionmaker
    from test_database_faults import refused_url

    from gateway.storage import faults
    from gateway.storage.db import create_db_engine

    engine = create_db_engine(refused_url())
    try:
        with pytest.raises(Exception) as raised:  # the driver's error, whatever its class
            idempotency.claim(sessionmaker(engine), "ws", "key", "top_up", "h", clock.now)
    finally:
        engine.dispose()
    assert not isinstance(raised.value, idempotency.IdempotencyKeyInProgress)
    assert faults.unavailable(raised.value)
