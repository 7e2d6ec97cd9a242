"""Operator keys and the operators' refundPayment mutation, through GraphQL over HTTP.

An operator key (bgo_) reaches refundPayment and no workspace's data; a workspace's API key
(bgw_) never reaches refundPayment. The refund itself is the CLI's service (test_refunds.py),
whose payment (113.05 by card for Omnichannel) these tests refund too.
"""

from __future__ import annotations

import hashlib
import re

import pytest
from alembic import command
from sqlalchemy import inspect, select
from test_refunds import credit_notes, pay_by_card

from gateway.server.cli import main
from gateway.services import event_feed
from gateway.services.keys import issue_operator_key
from gateway.storage.db import (
    Invoice,
    LedgerEntry,
    OperatorKey,
    Payment,
    Refund,
    Workspace,
    alembic_config,
    create_db_engine,
    migrate,
)

from helpers import eur_json, events, race, rows, snapshot

REFUND = """mutation($input: RefundPaymentInput!) { refundPayment(input: $input) { __typename
  ... on Refund { id paymentId amount { amount currency } destination status failureMessage
                  creditNoteId creditNoteNumber }
  ... on RefundExceedsPayment { refundable { amount currency } }
  ... on UserError { code message field } } }"""
WORKSPACE = "{ workspace { __typename ... on UserError { code message field } } }"


@pytest.fixture
def operator(gateway) -> str:
    """The secret of a fresh operator key."""
    with gateway.sessions.begin() as session:
        return issue_operator_key(session, gateway.clock(), "ops").secret


@pytest.fixture
def paid(graphql, make_workspace):
    return pay_by_card(graphql, make_workspace)


def refund_input(payment_id: str, key: str = "r-1", **fields) -> dict:
    return {
        "input": {
            "paymentId": payment_id,
            "destination": "METHOD",
            "reason": "goodwill",
            "idempotencyKey": key,
            **fields,
        }
    }


def refund(graphql, key: str | None, payment_id: str, idempotency_key: str = "r-1", **fields) -> dict:
    return graphql(REFUND, refund_input(payment_id, idempotency_key, **fields), key=key)["refundPayment"]


def test_a_full_refund_to_the_card(graphql, gateway, operator, paid):
    member, payment_id = paid
    answer = refund(graphql, operator, payment_id)
    [note] = credit_notes(gateway, member)
    [row] = rows(gateway, Refund, member)
    assert answer == {
        "__typename": "Refund",
        "id": row.id,
        "paymentId": payment_id,
        "amount": eur_json("113.05"),
        "destination": "METHOD",
        "status": "SUCCEEDED",
        "failureMessage": None,
        "creditNoteId": note.id,
        "creditNoteNumber": "CN-2026-000001",
    }
    assert note.total_minor == -11305 and note.number == "CN-2026-000001"
    [payment] = [p for p in rows(gateway, Payment, member) if p.id == payment_id]
    assert payment.status == "refunded" and payment.refund_reference.startswith("re_sandbox_")
    [(_, _, payload)] = [e for e in events(gateway, member) if e[1] == "payment.refunded"]
    assert payload["full"] is True and payload["destination"] == "method"
    assert rows(gateway, LedgerEntry, member) == []  # the card got it back, not the balance


def test_a_partial_refund_to_the_balance(graphql, gateway, operator, paid):
    member, payment_id = paid
    answer = refund(graphql, operator, payment_id, amount="10.00", destination="BALANCE")
    assert (answer["status"], answer["amount"], answer["destination"]) == (
        "SUCCEEDED",
        eur_json("10.00"),
        "BALANCE",
    )
    assert [(e.kind, e.amount_minor, e.reference) for e in rows(gateway, LedgerEntry, member)] == [
        ("refund", 1000, answer["id"])
    ]
    with gateway.sessions() as session:
        assert session.get(Workspace, member.id).balance_minor == 1000
    [note] = credit_notes(gateway, member)
    assert (note.id, note.number, note.total_minor) == (
        answer["creditNoteId"],
        answer["creditNoteNumber"],
        -1000,
    )
    [(_, _, payload)] = [e for e in events(gateway, member) if e[1] == "payment.refunded"]
    assert (payload["refunded"], payload["full"], payload["refund_id"]) == ("10.00", False, answer["id"])
    [payment] = [p for p in rows(gateway, Payment, member) if p.id == payment_id]
    assert payment.status == "succeeded"  # 103.05 is left to refund


def test_more_than_is_left_is_a_typed_error_and_changes_nothing(graphql, gateway, operator, paid):
    _, payment_id = paid
    assert refund(graphql, operator, payment_id, "p-1", amount="100.00", destination="BALANCE")["status"] == (
        "SUCCEEDED"
    )
    before = snapshot(gateway)
    assert refund(graphql, operator, payment_id, "p-2", amount="13.06", destination="BALANCE") == {
        "__typename": "RefundExceedsPayment",
        "code": "REFUND_EXCEEDS_PAYMENT",
        "field": ["amount"],
        "message": "at most 13.05 EUR of this payment can still be refunded",
        "refundable": eur_json("13.05"),
    }
    assert snapshot(gateway) == before


@pytest.mark.parametrize(
    ("fields", "typename", "code", "field"),
    [
        ({"amount": "0.001"}, "PaymentRejected", "INVALID_AMOUNT", ["amount"]),
        ({"amount": "0"}, "PaymentRejected", "INVALID_AMOUNT", ["amount"]),
        ({"amount": "-5.00"}, "PaymentRejected", "INVALID_AMOUNT", ["amount"]),
        ({"amount": "NaN"}, "PaymentRejected", "INVALID_AMOUNT", ["amount"]),
        ({"amount": "1E+40"}, "RefundExceedsPayment", "REFUND_EXCEEDS_PAYMENT", ["amount"]),
        ({"reason": "x" * 201}, "TextTooLong", "TEXT_TOO_LONG", ["reason"]),
        (
            {"idempotencyKey": "k" * 65},
            "IdempotencyKeyRejected",
            "INVALID_IDEMPOTENCY_KEY",
            ["idempotencyKey"],
        ),
        ({"idempotencyKey": " "}, "IdempotencyKeyRejected", "INVALID_IDEMPOTENCY_KEY", ["idempotencyKey"]),
        ({"paymentId": "nope"}, "PaymentRejected", "UNKNOWN_PAYMENT", ["paymentId"]),
    ],
)
def test_refusals_are_typed_and_write_nothing(
    graphql, gateway, operator, paid, fields, typename, code, field
):
    _, payment_id = paid
    before = snapshot(gateway)
    answer = graphql(REFUND, {"input": {**refund_input(payment_id)["input"], **fields}}, key=operator)
    result = answer["refundPayment"]
    assert (result["__typename"], result["code"], result["field"]) == (typename, code, field), result
    assert snapshot(gateway) == before


def test_a_payment_refunded_in_full_is_not_refundable(graphql, operator, paid):
    _, payment_id = paid
    assert refund(graphql, operator, payment_id, "all")["status"] == "SUCCEEDED"
    again = refund(graphql, operator, payment_id, "more", amount="1.00", destination="BALANCE")
    assert (again["__typename"], again["code"], again["field"]) == (
        "PaymentRejected",
        "PAYMENT_NOT_REFUNDABLE",
        ["paymentId"],
    )


def test_the_same_key_twice_refunds_once(graphql, gateway, operator, paid):
    member, payment_id = paid
    first = refund(graphql, operator, payment_id, "once", amount="20.00", destination="BALANCE")
    second = refund(graphql, operator, payment_id, "once", amount="20.00", destination="BALANCE")
    assert first == second and first["status"] == "SUCCEEDED"
    assert len(rows(gateway, Refund, member)) == 1 and len(credit_notes(gateway, member)) == 1
    assert [e.amount_minor for e in rows(gateway, LedgerEntry, member)] == [2000]
    before = snapshot(gateway)
    other = refund(graphql, operator, payment_id, "once", amount="30.00", destination="BALANCE")
    assert (other["__typename"], other["code"]) == ("IdempotencyKeyRejected", "IDEMPOTENCY_KEY_REUSED")
    assert snapshot(gateway) == before


def test_concurrent_refunds_never_exceed_what_was_paid(gateway, operator, paid):
    """Four refunds of 60.00 of a 113.05 payment at once, each with its own key: one succeeds."""
    member, payment_id = paid

    def work(index: int, client) -> str:
        response = client.post(
            "/graphql",
            json={
                "query": REFUND,
                "variables": refund_input(payment_id, f"c-{index}", amount="60.00", destination="BALANCE"),
            },
            headers={"Authorization": f"Bearer {operator}"},
        )
        body = response.json()
        assert response.status_code == 200 and "errors" not in body, body
        return body["data"]["refundPayment"]["__typename"]

    assert sorted(race(gateway, 4, work)) == ["Refund"] + ["RefundExceedsPayment"] * 3
    assert [r.amount_minor for r in rows(gateway, Refund, member)] == [6000]
    with gateway.sessions() as session:
        assert session.get(Workspace, member.id).balance_minor == 6000
    assert len(credit_notes(gateway, member)) == 1


def test_the_payment_method_is_asked_holding_no_connection(graphql, gateway, operator, paid, monkeypatch):
    """The request's key lookup is closed before the refund runs, and the refund asks the
    card method outside any transaction."""
    _, payment_id = paid
    method = gateway.payment_methods["card"]
    held: list[int] = []
    asked = method.refund

    def watched(*args, **kwargs):
        held.append(gateway.engine.pool.checkedout())
        return asked(*args, **kwargs)

    monkeypatch.setattr(method, "refund", watched)
    assert refund(graphql, operator, payment_id)["status"] == "SUCCEEDED"
    assert held == [0]


# ------------------------------------------------------------------ who may refund


@pytest.mark.parametrize(
    ("caller", "message"),
    [
        ("workspace", "a workspace API key cannot do this: it needs an operator key"),
        ("none", "this needs an operator key: send Authorization: Bearer <operator key>"),
        ("wrong", "the operator key is not valid"),
        ("revoked", "the operator key is not valid"),
    ],
)
def test_only_a_valid_operator_key_refunds(graphql, gateway, operator, paid, caller, message):
    member, payment_id = paid
    if caller == "revoked":
        with gateway.sessions.begin() as session:
            session.scalar(select(OperatorKey)).revoked_at = gateway.clock()
    key = {
        "workspace": member.key,
        "none": None,
        "wrong": operator[:-1] + ("A" if operator[-1] != "A" else "B"),
        "revoked": operator,
    }[caller]
    before = snapshot(gateway)
    assert refund(graphql, key, payment_id) == {
        "__typename": "OperatorKeyRequired",
        "code": "OPERATOR_KEY_REQUIRED",
        "field": [],
        "message": message,
    }
    assert snapshot(gateway) == before


def test_an_operator_key_reaches_no_workspace(graphql, client, gateway, operator, paid):
    member, _ = paid
    refused = {
        "__typename": "AuthenticationRequired",
        "code": "AUTHENTICATION_REQUIRED",
        "field": [],
        "message": "an operator key has no workspace: this needs a workspace API key",
    }
    assert graphql(WORKSPACE, key=operator)["workspace"] == refused
    quoted = graphql(
        'mutation { quote(input: {planCode: "email"}) { __typename ... on UserError { code message field } } }',
        key=operator,
    )
    assert quoted["quote"] == refused
    assert graphql("{ plans { code } }", key=operator)["plans"]  # public fields answer as to anyone
    [invoice] = [i for i in rows(gateway, Invoice, member) if i.kind == "checkout"]
    pdf = client.get(f"/invoices/{invoice.id}.pdf", headers={"Authorization": f"Bearer {operator}"})
    assert pdf.status_code == 401
    assert event_feed.workspace_of_key(gateway, operator) is None  # subscriptions' connection_init: 4403


def test_operator_keys_are_stored_hashed(gateway, operator):
    with gateway.sessions() as session:
        [row] = session.scalars(select(OperatorKey)).all()
    assert operator.startswith(f"bgo_{row.prefix}_")
    assert row.key_hash == hashlib.sha256(operator.encode()).hexdigest()
    assert operator not in repr(snapshot(gateway))


def test_the_operator_keys_commands(cli_env, capsys, graphql, gateway, paid):
    _, payment_id = paid
    assert main(["operator-keys", "create", "--name", "Ops team"]) == 0
    out = capsys.readouterr().out
    secret = re.search(r"shown once: (bgo_\S+)", out).group(1)
    assert refund(graphql, secret, payment_id, amount="1.00", destination="BALANCE")["status"] == "SUCCEEDED"
    with gateway.sessions() as session:
        row = session.scalar(select(OperatorKey))
    assert row.name == "Ops team" and f"operator key {row.prefix} (id {row.id})" in out
    assert main(["operator-keys", "revoke", row.prefix]) == 0
    assert f"revoked operator key {row.prefix}" in capsys.readouterr().out
    assert refund(graphql, secret, payment_id, "r-2")["__typename"] == "OperatorKeyRequired"
    assert main(["operator-keys", "revoke", secret]) == 2  # already revoked
    assert capsys.readouterr().err == f"error: no active operator key 'bgo_{row.prefix}'\n"  # not its secret
    # A second key, revoked by its id; a workspace key's prefix is not an operator key's.
    assert main(["operator-keys", "create", "--name", "second"]) == 0
    capsys.readouterr()
    with gateway.sessions() as session:
        second = session.scalar(select(OperatorKey).where(OperatorKey.name == "second"))
    assert main(["operator-keys", "revoke", second.id]) == 0
    with pytest.raises(SystemExit):
        main(["operator-keys", "create"])  # --name is required


def test_the_migration_adds_and_drops_the_operator_keys_table(tmp_path):
    engine = create_db_engine(f"sqlite:///{tmp_path / 'operator_keys.db'}")
    try:
        migrate(engine)
        tables = set(inspect(engine).get_table_names())
        assert "operator_keys" in tables
        command.downgrade(alembic_config(engine), "0010")  # the revision before operator keys
        assert "operator_keys" not in set(inspect(engine).get_table_names())
        migrate(engine)
        assert set(inspect(engine).get_table_names()) == tables
    finally:
        engine.dispose()
