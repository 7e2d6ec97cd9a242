"""No card number and no CVC anywhere: not in any column of any table (JSON included),
not in an outbox event, not in the logs (every logger at DEBUG, SQL statements and their
parameters included), not in an API answer.

Every card flow runs once — addCard, top-ups with a new card saved and not saved, with a
saved card, checkout with a new card, every decline, 3-D Secure passed and failed, cards
refused before any charge — each card with its own distinctive CVC; then everything is
searched for each number (digits only, with spaces, with dashes) and each CVC (as a whole
value or word: tokens and ids are random hex, so a bare substring search would find
three-digit runs by chance).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from gateway.storage.db import Base, Card, OutboxEvent, Payment

from helpers import GERMAN_PERSON

# (number, CVC): a distinct CVC for every card used.
ADDED = ("4242424242424242", "739")
TOP_UP_SAVED = ("5555555555554444", "582")
TOP_UP_NOT_SAVED = ("4000056655665556", "417")
CHECKOUT_SAVED = ("5200828282828210", "903")
DECLINES = [
    ("4000000000000002", "264"),
    ("4000000000009995", "615"),
    ("4000000000000069", "358"),
    ("4000000000000127", "871"),
    ("4000000000000119", "146"),
]
THREE_DS = ("4000002760003184", "927")
DECLINES_LATER = ("4000000000000341", "538")
REFUSED = [("4242424242424241", "694"), ("6011111111111117", "8163")]  # bad Luhn; a CVC too long
ALL_CARDS = [
    ADDED,
    TOP_UP_SAVED,
    TOP_UP_NOT_SAVED,
    CHECKOUT_SAVED,
    *DECLINES,
    THREE_DS,
    DECLINES_LATER,
    *REFUSED,
]

UPDATE_DETAILS = """mutation($input: UpdateBillingDetailsInput!) { updateBillingDetails(input: $input) {
  __typename } }"""
ADD_CARD = """mutation($input: AddCardInput!) { addCard(input: $input) { __typename
  ... on CardAdded { card { id brand last4 expMonth expYear fingerprint } } ... on UserError { code message } } }"""
TOP_UP = """mutation($input: TopUpInput!) { topUpBalance(input: $input) { __typename
  ... on UserError { code message field } ... on TopUpSuccess { payment { id card { id last4 } } }
  ... on PaymentActionRequired { paymentId nextAction } ... on PaymentDeclined { paymentId declineCode } } }"""
QUOTE = """mutation($plan: String!, $email: Int) { quote(input: {planCode: $plan, emailCredits: $email}) {
  ... on Quote { emailCredits messagingCredits dueNow { total { amount } } expiresAt } } }"""
CHECKOUT = """mutation($input: CheckoutInput!) { checkout(input: $input) { __typename
  ... on UserError { code message field } ... on CheckoutSuccess { invoice { number paymentMethod }
                                                                  payment { id card { id last4 } } }
  ... on PaymentActionRequired { paymentId nextAction } ... on PaymentDeclined { paymentId declineCode } } }"""
CONFIRM = """mutation($id: ID!, $answer: String) { confirmPayment(paymentId: $id, challengeResponse: $answer) {
  __typename ... on UserError { code message } ... on PaymentDeclined { declineCode }
  ... on CheckoutSuccess { invoice { number } } ... on TopUpSuccess { balance { amount } } } }"""
WORKSPACE = """{ workspace { ... on Workspace { cards { id brand last4 fingerprint } balance { amount }
  invoices { number paymentMethod billingDetails lines { description } } } } }"""


def new_card(number: str, cvc: str) -> dict:
    return {"number": number, "expMonth": 12, "expYear": 2030, "cvc": cvc, "holderName": "Erika Mustermann"}


def spellings(number: str) -> list[str]:
    groups = [number[i : i + 4] for i in range(0, len(number), 4)]
    return [number, " ".join(groups), "-".join(groups)]


def cvc_pattern(cvc: str) -> re.Pattern[str]:
    """The CVC as a value or word of its own (not inside a hex id, a longer number or an amount,
    nor the length SQLAlchemy's log gives a truncated parameter: "... (264 chars)")."""
    return re.compile(rf"(?<![\w.]){cvc}(?![\w.]| chars\))")


@pytest.fixture
def all_logs(caplog) -> Iterator[pytest.LogCaptureFixture]:
    """Every record of every logger, at DEBUG (SQLAlchemy then logs each statement and its parameters)."""
    caplog.set_level(logging.DEBUG)
    changed = []
    for _name, logger in list(logging.root.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger):
            changed.append((logger, logger.level, logger.propagate))
            logger.setLevel(logging.DEBUG)
            logger.propagate = True
    try:
        yield caplog
    finally:
        for logger, level, propagate in changed:
            logger.setLevel(level)
            logger.propagate = propagate


def record_text(record: logging.LogRecord) -> str:
    parts = [record.getMessage(), repr(record.args), record.exc_text or ""]
    if record.exc_info and record.exc_info[1] is not None:
        parts.append(repr(record.exc_info[1]))
    return "\n".join(parts)


def database_text(gateway) -> dict[str, list[str]]:
    """Every value of every column of every table, as text (JSON columns as JSON)."""
    found: dict[str, list[str]] = {}
    with gateway.engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            values = []
            for row in connection.execute(table.select()).mappings():
                for column, value in row.items():
                    text = json.dumps(value, default=str) if isinstance(value, (dict, list)) else str(value)
                    values.append(f"{table.name}.{column}={text}")
            found[table.name] = values
    return found


def run_every_card_flow(graphql, make_workspace) -> tuple[list[dict], Any]:
    member = make_workspace("Acme")
    answers: list[dict] = []

    def call(query: str, variables: dict) -> dict:
        data = graphql(query, variables, key=member.key)
        answers.append(data)
        return next(iter(data.values()))

    call(UPDATE_DETAILS, {"input": GERMAN_PERSON})
    assert (
        call(ADD_CARD, {"input": {"card": new_card(*ADDED), "idempotencyKey": "add"}})["__typename"]
        == "CardAdded"
    )
    assert (
        call(ADD_CARD, {"input": {"card": new_card(*DECLINES_LATER), "idempotencyKey": "add-2"}})[
            "__typename"
        ]
        == "CardAdded"
    )
    saved = call(
        TOP_UP,
        {
            "input": {
                "amount": "200.00",
                "idempotencyKey": "t1",
                "paymentMethod": {"method": "card", "newCard": new_card(*TOP_UP_SAVED), "saveCard": True},
            }
        },
    )
    assert saved["__typename"] == "TopUpSuccess" and saved["payment"]["card"]["last4"] == "4444"
    assert (
        call(
            TOP_UP,
            {
                "input": {
                    "amount": "25.00",
                    "idempotencyKey": "t2",
                    "paymentMethod": {"method": "card", "newCard": new_card(*TOP_UP_NOT_SAVED)},
                }
            },
        )["__typename"]
        == "TopUpSuccess"
    )
    assert (
        call(
            TOP_UP,
            {
                "input": {
                    "amount": "25.00",
                    "idempotencyKey": "t3",
                    "paymentMethod": {"method": "card", "cardId": saved["payment"]["card"]["id"]},
                }
            },
        )["__typename"]
        == "TopUpSuccess"
    )
    for i, (number, cvc) in enumerate(DECLINES):
        declined = call(
            TOP_UP,
            {
                "input": {
                    "amount": "10.00",
                    "idempotencyKey": f"td{i}",
                    "paymentMethod": {"method": "card", "newCard": new_card(number, cvc), "saveCard": True},
                }
            },
        )
        assert declined["__typename"] == "PaymentDeclined"
    for i, (number, cvc) in enumerate(REFUSED):
        refused = call(
            TOP_UP,
            {
                "input": {
                    "amount": "10.00",
                    "idempotencyKey": f"tr{i}",
                    "paymentMethod": {"method": "card", "newCard": new_card(number, cvc)},
                }
            },
        )
        assert refused["__typename"] == "PaymentRejected"
        refused = call(ADD_CARD, {"input": {"card": new_card(number, cvc), "idempotencyKey": f"ar{i}"}})
        assert refused["__typename"] == "PaymentRejected"
    pending = call(
        TOP_UP,
        {
            "input": {
                "amount": "10.00",
                "idempotencyKey": "t3ds",
                "paymentMethod": {"method": "card", "newCard": new_card(*THREE_DS), "saveCard": True},
            }
        },
    )
    assert call(CONFIRM, {"id": pending["paymentId"], "answer": "nope"})["__typename"] == "PaymentDeclined"

    def quote(plan: str, email: int | None = None) -> dict:
        return call(QUOTE, {"plan": plan, "email": email})

    def checkout(plan: str, offer: dict, key: str, payment: dict) -> dict:
        return call(
            CHECKOUT,
            {
                "input": {
                    "planCode": plan,
                    "emailCredits": offer["emailCredits"],
                    "expectedTotal": offer["dueNow"]["total"]["amount"],
                    "quoteExpiresAt": offer["expiresAt"],
                    "paymentMethod": payment,
                    "idempotencyKey": key,
                }
            },
        )

    offer = quote("email")
    for i, (number, cvc) in enumerate(DECLINES):
        declined = checkout(
            "email", offer, f"cd{i}", {"method": "card", "newCard": new_card(number, cvc), "saveCard": True}
        )
        assert declined["__typename"] == "PaymentDeclined"
    for i, (number, cvc) in enumerate(REFUSED):
        assert (
            checkout("email", offer, f"cr{i}", {"method": "card", "newCard": new_card(number, cvc)})[
                "__typename"
            ]
            == "PaymentRejected"
        )
    later = call(WORKSPACE, {})["cards"]
    declines_later = next(c for c in later if c["last4"] == "0341")
    assert (
        checkout("email", offer, "cl", {"method": "card", "cardId": declines_later["id"]})["__typename"]
        == "PaymentDeclined"
    )
    pending = checkout(
        "email", offer, "c3ds", {"method": "card", "newCard": new_card(*THREE_DS), "saveCard": True}
    )
    assert pending["__typename"] == "PaymentActionRequired"
    assert (
        call(CONFIRM, {"id": pending["paymentId"], "answer": "authenticated"})["__typename"]
        == "CheckoutSuccess"
    )
    offer = quote("email", 20000)
    done = checkout(
        "email", offer, "c-new", {"method": "card", "newCard": new_card(*CHECKOUT_SAVED), "saveCard": True}
    )
    assert done["__typename"] == "CheckoutSuccess" and done["payment"]["card"]["last4"] == "8210"
    offer = quote("omnichannel")
    assert (
        checkout(
            "omnichannel", offer, "c-saved", {"method": "card", "cardId": done["payment"]["card"]["id"]}
        )["__typename"]
        == "CheckoutSuccess"
    )
    call(WORKSPACE, {})
    return answers, member


@pytest.mark.without_rate_limits  # every card flow, more than cards_per_key allows a minute
def test_no_card_number_or_cvc_is_stored_logged_or_sent(graphql, gateway, make_workspace, all_logs):
    answers, _member = run_every_card_flow(graphql, make_workspace)

    stored = database_text(gateway)
    with gateway.sessions() as session:  # the flows did run
        assert session.query(Card).count() == 5 and session.query(Payment).count() == 18
    logs = [record_text(record) for record in all_logs.records]
    assert any("INSERT INTO cards" in text for text in logs), (
        "SQL was not logged: the scan would prove nothing"
    )
    sources = {
        "database": [v for values in stored.values() for v in values],
        "logs": logs,
        "answers": [json.dumps(answer, ensure_ascii=False) for answer in answers],
    }
    for where, texts in sources.items():
        for number, cvc in ALL_CARDS:
            pattern = cvc_pattern(cvc)
            for text in texts:
                for spelling in spellings(number):
                    assert spelling not in text, f"card number {spelling} in the {where}: {text[:300]}"
                assert not pattern.search(text), f"CVC {cvc} in the {where}: {text[:300]}"
            # A CVC never travels as a value of its own, whatever its length.
            for text in texts:
                assert f'"cvc": "{cvc}"' not in text and f"'cvc': '{cvc}'" not in text
    for where, texts in sources.items():
        assert not any(re.search(r"\bcvc\b\W+\d", text, re.IGNORECASE) for text in texts), where


@pytest.mark.without_rate_limits  # every card flow, more than cards_per_key allows a minute
def test_events_carry_only_what_identifies_a_card(graphql, gateway, make_workspace):
    _, member = run_every_card_flow(graphql, make_workspace)
    with gateway.sessions() as session:
        payloads = [
            (e.type, e.payload)
            for e in session.scalars(
                select(OutboxEvent)
                .where(OutboxEvent.workspace_id == member.id)
                .order_by(OutboxEvent.sequence)
            )
        ]
    card_events = [payload for kind, payload in payloads if kind == "card.added"]
    assert [set(p) for p in card_events] == [{"card_id", "brand", "last4"}] * len(card_events)
    assert sorted(p["last4"] for p in card_events) == ["0341", "3184", "4242", "4444", "8210"]
    text = json.dumps(payloads)
    for number, _ in ALL_CARDS:
        assert number not in text and number[:6] + number[-4:] not in text


ADD_CARD = "mutation($input: AddCardInput!) { addCard(input: $input) { __typename } }"
MISPLACED = ("4111111111111111", "486")


@pytest.mark.parametrize(
    "sent",
    [
        # A field the input does not have: graphql-core quoted the whole input after "found:".
        {"card": {"number": MISPLACED[0], "expMonth": 12, "expYear": 2030, "cvc": MISPLACED[1]}, "bogus": 1},
        # The number where a month goes: "Int cannot represent non-integer value: '4111...'".
        {"card": {"number": "1", "expMonth": MISPLACED[0], "expYear": 2030, "cvc": MISPLACED[1]}},
        # The number as a JSON number: "String cannot represent a non string value: 4111...".
        {"card": {"number": int(MISPLACED[0]), "expMonth": 12, "expYear": 2030, "cvc": MISPLACED[1]}},
        # A misspelt field: "Did you mean 'cvc'? Found: {...}" quoted the input, the CVC in it.
        {"card": {"number": MISPLACED[0], "expMonth": 12, "expYear": 2030, "cvc": "1", "cvv": MISPLACED[1]}},
        # The CVC as a number where a string goes, the number spaced where the month goes.
        {
            "card": {
                "number": "4111 1111 1111 1111",
                "expMonth": "4111 1111 1111 1111",
                "expYear": 2030,
                "cvc": 486,
            }
        },
    ],
    ids=["unknown-field", "number-as-month", "number-as-int", "misspelt-field", "cvc-as-int"],
)
def test_variable_errors_do_not_echo_card_data(client, make_workspace, sent, all_logs):
    member = make_workspace()
    response = client.post(
        "/graphql",
        json={"query": ADD_CARD, "variables": {"input": {**sent, "idempotencyKey": "k"}}},
        headers={"Authorization": f"Bearer {member.key}"},
    )
    body = response.text
    errors = response.json()["errors"]
    assert errors and all(e["message"].startswith("Variable '$input'") for e in errors)  # what and where
    digits = re.sub(r"\D", "", body)
    assert MISPLACED[0] not in digits and "4111111111111111" not in digits
    assert not re.search(rf"\b{MISPLACED[1]}\b", body)
    logged = all_logs.text
    assert MISPLACED[0] not in re.sub(r"\D", "", logged) and not re.search(rf"\b{MISPLACED[1]}\b", logged)


LITERAL = f'number: "{MISPLACED[0]}", expMonth: 12, expYear: 2030, cvc: "{MISPLACED[1]}"'


@pytest.mark.parametrize(
    ("document", "says"),
    [
        # Card data written into the document, where validation and the parser quoted it.
        (
            f'mutation {{ addCard(input: {{card: {{{LITERAL}, cvv: "{MISPLACED[1]}"}}, idempotencyKey: "k"}})'
            " { __typename } }",
            "Expected value of type 'CardInput' not to include unknown field 'cvv'. Did you mean 'cvc'?",
        ),
        (
            f'mutation {{ addCard(input: {{card: {{number: "1", expMonth: "{MISPLACED[0]}", expYear: 2030,'
            f' cvc: {MISPLACED[1]}}}, idempotencyKey: "k"}}) {{ __typename }} }}',
            "Int cannot represent non-integer value.",
        ),
        (
            f'mutation {{ topUpBalance(input: {{amount: "{MISPLACED[0]} {MISPLACED[1]}", idempotencyKey: "k",'
            ' paymentMethod: {method: "card"}}) { __typename } }',
            "Value cannot represent a Decimal.",
        ),
        (f"{{ plans {{ code }} {MISPLACED[0]} }}", "Syntax Error: Expected Name, found Int."),
    ],
    ids=["misspelt-field", "number-as-month", "card-as-amount", "syntax-error"],
)
def test_request_errors_do_not_echo_card_data_written_in_the_document(client, make_workspace, document, says):
    member = make_workspace()
    response = client.post(
        "/graphql", json={"query": document}, headers={"Authorization": f"Bearer {member.key}"}
    )
    body = response.text
    assert says in [error["message"] for error in response.json()["errors"]]  # why, and (locations) where
    assert MISPLACED[0] not in re.sub(r"\D", "", body) and not re.search(rf"\b{MISPLACED[1]}\b", body)
