"""Payments that wait for the customer expire: cancelled at the method, an event, nothing applied."""

from __future__ import annotations

from datetime import datetime, timedelta

from test_checkout import quote

from gateway.server.cli import main
from gateway.server.settings import Settings
from gateway.services.settlement import reconcile
from gateway.storage.db import Payment, Workspace

from helpers import THREE_DS, billing, card, events, rows

CHECKOUT = """mutation($input: CheckoutInput!) { checkout(input: $input) { __typename
  ... on UserError { code message }
  ... on PaymentActionRequired { paymentId nextAction expiresAt } } }"""
TOP_UP = """mutation($input: TopUpInput!) { topUpBalance(input: $input) { __typename
  ... on UserError { code message }
  ... on PaymentActionRequired { paymentId nextAction expiresAt } } }"""
CONFIRM = """mutation($id: ID!, $answer: String) { confirmPayment(paymentId: $id, challengeResponse: $answer) {
  __typename ... on UserError { code message } ... on PaymentDeclined { paymentId declineCode } } }"""


def three_ds_checkout(graphql, member, key="3ds-1") -> dict:
    offer = quote(graphql, member, "omnichannel")
    variables = {
        "input": {
            "planCode": "omnichannel",
            "paymentMethod": {"method": "card", "newCard": card(THREE_DS), "saveCard": True},
            "idempotencyKey": key,
            "expectedTotal": offer["dueNow"]["total"]["amount"],
            "quoteExpiresAt": offer["expiresAt"],
        }
    }
    answer = graphql(CHECKOUT, variables, key=member.key)["checkout"]
    assert answer["__typename"] == "PaymentActionRequired", answer
    return answer


def payment_row(gateway, payment_id) -> Payment:
    with gateway.sessions() as session:
        payment = session.get(Payment, payment_id)
        session.expunge(payment)
        return payment


def plan_of(gateway, member) -> str:
    with gateway.sessions() as session:
        return session.get(Workspace, member.id).plan_code


def test_an_unconfirmed_3ds_checkout_expires_and_applies_nothing(gateway, graphql, clock, make_workspace):
    member = make_workspace("Waiting")
    billing(graphql, member)
    pending = three_ds_checkout(graphql, member)
    assert datetime.fromisoformat(pending["expiresAt"]) == clock() + timedelta(hours=1)

    assert reconcile(gateway, clock.advance(minutes=59)) == []  # still within its hour
    [step] = reconcile(gateway, clock.advance(minutes=2))

    assert (step.action, step.before, step.after) == ("expired", "requires_action", "expired")
    payment = payment_row(gateway, pending["paymentId"])
    assert (payment.status, payment.failure_code, payment.expires_at) == ("expired", "expired", None)
    assert plan_of(gateway, member) == "free"
    [(_, kind, payload)] = events(gateway, member)
    assert kind == "payment.expired" and payload["payment_id"] == pending["paymentId"]
    assert payload["failure_code"] == "expired"
    # Confirming afterwards changes nothing: the payment stays expired, the plan free.
    late = graphql(CONFIRM, {"id": pending["paymentId"], "answer": "authenticated"}, key=member.key)
    assert late["confirmPayment"] == {
        "__typename": "PaymentDeclined",
        "code": "PAYMENT_DECLINED",
        "message": "the customer did not complete the payment in time",
        "paymentId": pending["paymentId"],
        "declineCode": "expired",
    }
    assert plan_of(gateway, member) == "free" and len(events(gateway, member)) == 1
    assert reconcile(gateway, clock.advance(hours=1)) == []  # nothing left open


def test_a_confirmation_after_the_deadline_expires_the_payment(gateway, graphql, clock, make_workspace):
    member = make_workspace("Late")
    billing(graphql, member)
    pending = three_ds_checkout(graphql, member)
    clock.advance(hours=1, seconds=1)

    late = graphql(CONFIRM, {"id": pending["paymentId"], "answer": "authenticated"}, key=member.key)

    assert late["confirmPayment"]["declineCode"] == "expired"
    assert payment_row(gateway, pending["paymentId"]).status == "expired"
    assert plan_of(gateway, member) == "free"
    assert [kind for _, kind, _ in events(gateway, member)] == ["payment.expired"]


def test_an_unconfirmed_3ds_top_up_expires_and_credits_nothing(gateway, graphql, clock, make_workspace):
    member = make_workspace("Top-up")
    variables = {
        "input": {
            "amount": "50.00",
            "paymentMethod": {"method": "card", "newCard": card(THREE_DS)},
            "idempotencyKey": "t-1",
        }
    }
    pending = graphql(TOP_UP, variables, key=member.key)["topUpBalance"]
    assert pending["__typename"] == "PaymentActionRequired"
    reconcile(gateway, clock.advance(hours=2))
    assert payment_row(gateway, pending["paymentId"]).status == "expired"
    with gateway.sessions() as session:
        assert session.get(Workspace, member.id).balance_minor == 0


def test_the_wait_is_configurable(gateway, graphql, clock, make_workspace):
    gateway.settings = Settings(database_url=gateway.settings.database_url, payment_action_timeout=600)
    member = make_workspace("Quick")
    billing(graphql, member)
    pending = three_ds_checkout(graphql, member)
    assert datetime.fromisoformat(pending["expiresAt"]) == clock() + timedelta(minutes=10)


def test_the_reconcile_command_expires_overdue_payments(
    cli_env, capsys, gateway, graphql, clock, make_workspace
):
    member = make_workspace("Command")
    billing(graphql, member)
    pending = three_ds_checkout(graphql, member)
    later = (clock() + timedelta(hours=2)).isoformat()

    assert main(["payments", "reconcile", "--now", later]) == 0

    out = capsys.readouterr().out
    assert f"payment {pending['paymentId']} (card): expired: requires_action -> expired" in out
    assert "1 payment settled or changed" in out
    assert [p.status for p in rows(gateway, Payment, member)] == ["expired"]
