"""Payments that settle later: signed notifications, an operator's command, and what is refused."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import timedelta

import pytest
from test_checkout import quote

from gateway.core.money import Money
from gateway.plugin_api import (
    Capability,
    ChargeRequest,
    FailureCode,
    InvalidNotification,
    Ledger,
    PaymentResult,
    PaymentStatus,
)
from gateway.server.cli import main
from gateway.services.settlement import reconcile
from gateway.storage.db import Invoice, Payment, Workspace

from helpers import assert_events_as_documented, billing, events, rows

SECRET = b"test-notification-secret"
CHECKOUT = """mutation($input: CheckoutInput!) { checkout(input: $input) { __typename
  ... on UserError { code message }
  ... on PaymentPending { paymentId reference instructions { name value } expiresAt }
  ... on CheckoutSuccess { kind } } }"""


class Transfer:
    """A minimal settle-later method: instructions now, the money by a signed notification."""

    code = "transfer"
    label = "Transfer"
    capabilities = frozenset({Capability.SETTLE_LATER})

    @staticmethod
    def reference(request: ChargeRequest) -> str:
        return "TR-" + hashlib.sha256(request.idempotency_key.encode()).hexdigest()[:10].upper()

    def charge(self, request: ChargeRequest, ledger: Ledger) -> PaymentResult:
        return PaymentResult(
            PaymentStatus.PENDING,
            reference=self.reference(request),
            instructions={"iban": "DE89370400440532013000", "reference": self.reference(request)},
            expires_at=request.requested_at + timedelta(days=3),
        )

    def status(self, request: ChargeRequest, reference: str | None, ledger: Ledger) -> PaymentResult:
        return self.charge(request, ledger)

    def confirm(self, request: ChargeRequest, reference: str, response: str | None) -> PaymentResult:
        return PaymentResult(PaymentStatus.FAILED, failure=FailureCode.PROCESSING_ERROR)

    def cancel(self, request: ChargeRequest, reference: str | None, ledger: Ledger) -> PaymentResult:
        return PaymentResult(PaymentStatus.FAILED, failure=FailureCode.CANCELED)

    def refund(
        self, request: ChargeRequest, reference: str, amount: Money, key: str, ledger: Ledger
    ) -> PaymentResult:
        return PaymentResult(PaymentStatus.FAILED, failure=FailureCode.PROCESSING_ERROR)

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> tuple[str, PaymentResult]:
        expected = hmac.new(SECRET, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(headers.get("x-signature", ""), expected):
            raise InvalidNotification("bad signature")
        try:
            notice = json.loads(body)
            amount = Money(notice["amount"], notice["currency"])
        except (ValueError, KeyError, TypeError) as error:
            raise InvalidNotification(f"malformed: {error}") from None
        return notice["reference"], PaymentResult(
            PaymentStatus.SUCCEEDED, reference=notice["reference"], amount=amount
        )


def notify(client, body: dict, signature: str | None = None) -> tuple[int, dict]:
    raw = json.dumps(body).encode()
    sig = signature if signature is not None else hmac.new(SECRET, raw, hashlib.sha256).hexdigest()
    response = client.post("/payments/transfer/notifications", content=raw, headers={"x-signature": sig})
    return response.status_code, response.json()


@pytest.fixture
def customer(gateway, graphql, make_workspace):
    gateway.registry.payment_methods["transfer"] = Transfer()
    member = make_workspace("Wire Ltd")
    billing(graphql, member)
    return member


def pending_checkout(graphql, member, key="wire-1") -> dict:
    offer = quote(graphql, member, "omnichannel")
    variables = {
        "input": {
            "planCode": "omnichannel",
            "paymentMethod": {"method": "transfer"},
            "idempotencyKey": key,
            "expectedTotal": offer["dueNow"]["total"]["amount"],
            "quoteExpiresAt": offer["expiresAt"],
        }
    }
    answer = graphql(CHECKOUT, variables, key=member.key)["checkout"]
    assert answer["__typename"] == "PaymentPending", answer
    return answer


def plan_of(gateway, member) -> str:
    with gateway.sessions() as session:
        return session.get(Workspace, member.id).plan_code


def test_checkout_answers_instructions_and_applies_once_the_money_arrives(gateway, graphql, client, customer):
    pending = pending_checkout(graphql, customer)
    assert pending["reference"].startswith("TR-")
    assert {i["name"]: i["value"] for i in pending["instructions"]}["reference"] == pending["reference"]
    assert plan_of(gateway, customer) == "free"
    assert [t for _, t, _ in events(gateway, customer)] == ["payment.pending"]

    assert (
        notify(client, {"reference": pending["reference"], "amount": "113.05", "currency": "EUR"})[0] == 200
    )

    assert plan_of(gateway, customer) == "omnichannel"
    assert [i.status for i in rows(gateway, Invoice, customer)] == ["paid"]
    # The bank repeats itself: nothing more happens.
    assert (
        notify(client, {"reference": pending["reference"], "amount": "113.05", "currency": "EUR"})[0] == 200
    )
    assert len(rows(gateway, Invoice, customer)) == 1
    # The checkout's key answers where its payment stands now.
    replay = graphql(
        CHECKOUT,
        {
            "input": {
                "planCode": "omnichannel",
                "paymentMethod": {"method": "transfer"},
                "idempotencyKey": "wire-1",
                "expectedTotal": "113.05",
                "quoteExpiresAt": quote(graphql, customer, "omnichannel")["expiresAt"],
            }
        },
        key=customer.key,
    )["checkout"]
    assert replay == {"__typename": "CheckoutSuccess", "kind": "NEW_PERIOD"}


@pytest.mark.parametrize(
    ("body", "signature", "status"),
    [
        ({"reference": "TR-X", "amount": "113.05", "currency": "EUR"}, "forged", 400),
        ({"reference": "TR-UNKNOWN", "amount": "113.05", "currency": "EUR"}, None, 404),
        ({"reference": "TR-X", "amount": "lots", "currency": "EUR"}, None, 400),
    ],
)
def test_unverifiable_or_unknown_notifications_change_nothing(
    gateway, graphql, client, customer, body, signature, status
):
    pending = pending_checkout(graphql, customer)
    body = {**body, "reference": pending["reference"] if body["reference"] == "TR-X" else body["reference"]}
    assert notify(client, body, signature)[0] == status
    assert plan_of(gateway, customer) == "free"
    assert [p.status for p in rows(gateway, Payment, customer)] == ["pending"]


def test_a_notification_for_another_amount_settles_nothing(gateway, graphql, client, customer):
    pending = pending_checkout(graphql, customer)
    assert notify(client, {"reference": pending["reference"], "amount": "13.05", "currency": "EUR"})[0] == 200
    assert plan_of(gateway, customer) == "free"
    assert [p.status for p in rows(gateway, Payment, customer)] == ["pending"]


def test_notifications_to_a_method_that_takes_none_are_not_found(client, customer):
    response = client.post("/payments/card/notifications", content=b"{}")
    assert response.status_code == 404


def test_an_oversized_notification_is_refused(client, customer):
    response = client.post("/payments/transfer/notifications", content=b"x" * (64 * 1024 + 1))
    assert response.status_code == 413


def test_an_operator_marks_a_transfer_paid(cli_env, capsys, gateway, graphql, customer, monkeypatch):
    pending = pending_checkout(graphql, customer)
    # The command builds its own gateway from the entry points: give it the test's method.
    import gateway.server.app as app

    real = app.build_gateway

    def with_transfer(*args, **kwargs):
        built = real(*args, **kwargs)
        built.registry.payment_methods["transfer"] = Transfer()
        return built

    monkeypatch.setattr(app, "build_gateway", with_transfer)
    assert main(["payments", "mark-paid", pending["paymentId"], "--note", "statement line 42"]) == 0
    assert plan_of(gateway, customer) == "omnichannel"
    assert main(["payments", "mark-paid", pending["paymentId"]]) == 1  # not pending any more
    assert "not pending" in capsys.readouterr().err


def test_an_unpaid_transfer_expires(gateway, graphql, clock, customer):
    pending = pending_checkout(graphql, customer)
    assert reconcile(gateway, clock.advance(days=2)) == []  # polled: still waiting
    [step] = reconcile(gateway, clock.advance(days=1, minutes=1))
    assert (step.action, step.after) == ("expired", "expired")
    assert plan_of(gateway, customer) == "free"
    assert [t for _, t, _ in events(gateway, customer)] == ["payment.pending", "payment.expired"]
    assert assert_events_as_documented(gateway, customer) == {"payment.pending", "payment.expired"}
    assert pending["paymentId"] == rows(gateway, Payment, customer)[0].id


def test_money_that_arrives_after_expiry_is_recorded_for_an_operator(
    gateway, graphql, client, clock, customer
):
    pending = pending_checkout(graphql, customer)
    reconcile(gateway, clock.advance(days=3, minutes=1))
    assert [p.status for p in rows(gateway, Payment, customer)] == ["expired"]

    assert (
        notify(client, {"reference": pending["reference"], "amount": "113.05", "currency": "EUR"})[0] == 200
    )

    # Not applied; the method cannot refund, so the payment says an operator must give it back.
    assert plan_of(gateway, customer) == "free"
    [payment] = rows(gateway, Payment, customer)
    assert payment.status == "refund_failed"
    assert payment.failure_message == (
        "the money arrived after the payment expired; the refund failed and needs an operator"
    )
    assert [t for _, t, _ in events(gateway, customer)] == [
        "payment.pending",
        "payment.expired",
        "payment.failed",
    ]
