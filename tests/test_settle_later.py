"""A payment method that settles later (a bank transfer), as the core drives it: the payment
waits with instructions, and integrators hear about it (``payment.pending``).

The method here is a stub registered in the test's own registry; the partner example
(examples/payment_bank_transfer) is tested end to end in test_example_bank_transfer.py.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from gateway.plugin_api import Capability, ChargeRequest, Ledger, Money, PaymentResult, PaymentStatus
from gateway.services.settlement import reconcile
from gateway.storage.db import Payment

from helpers import billing, events

QUOTE = """mutation($input: QuoteInput!) { quote(input: $input) { __typename
  ... on Quote { expiresAt dueNow { total { amount } } } } }"""
CHECKOUT = """mutation($input: CheckoutInput!) { checkout(input: $input) { __typename
  ... on PaymentPending { paymentId reference instructions { name value } expiresAt } } }"""


class Transfer:
    """Answers PENDING with instructions, as a bank transfer does; nothing else."""

    code = "transfer"
    label = "Transfer"
    capabilities = frozenset({Capability.SETTLE_LATER})

    def pending(self, request: ChargeRequest) -> PaymentResult:
        return PaymentResult(
            PaymentStatus.PENDING,
            reference=f"REF-{request.payment_id[:8]}",
            instructions={"iban": "DE89370400440532013000", "amount": str(request.amount.amount)},
            expires_at=request.requested_at + timedelta(days=3),
        )

    def charge(self, request: ChargeRequest, ledger: Ledger) -> PaymentResult:
        return self.pending(request)

    def status(self, request: ChargeRequest, reference: str | None, ledger: Ledger) -> PaymentResult:
        return self.pending(request)

    def confirm(self, request: ChargeRequest, reference: str, response: str | None) -> PaymentResult:
        return PaymentResult(PaymentStatus.FAILED)

    def cancel(self, request: ChargeRequest, reference: str | None, ledger: Ledger) -> PaymentResult:
        return PaymentResult(PaymentStatus.FAILED)

    def refund(
        self, request: ChargeRequest, reference: str, amount: Money, key: str, ledger: Ledger
    ) -> PaymentResult:
        return PaymentResult(PaymentStatus.FAILED)


@pytest.fixture
def member(gateway, graphql, make_workspace):
    gateway.registry.payment_methods["transfer"] = Transfer()  # this test's copy of the registry
    member = make_workspace()
    billing(graphql, member)
    return member


def test_a_checkout_that_waits_for_its_money_emits_payment_pending(graphql, gateway, clock, member):
    quote = graphql(QUOTE, {"input": {"planCode": "omnichannel"}}, key=member.key)["quote"]
    total = quote["dueNow"]["total"]["amount"]
    pending = graphql(
        CHECKOUT,
        {
            "input": {
                "planCode": "omnichannel",
                "expectedTotal": total,
                "quoteExpiresAt": quote["expiresAt"],
                "paymentMethod": {"method": "transfer"},
                "idempotencyKey": "transfer-1",
            }
        },
        key=member.key,
    )["checkout"]
    assert pending["__typename"] == "PaymentPending"
    expires_at = clock.now + timedelta(days=3)
    assert pending["reference"] == f"REF-{pending['paymentId'][:8]}"
    assert pending["expiresAt"] == expires_at.isoformat()
    # The customer may close the page: the event is how an integrator e-mails the instructions.
    assert [(type_, payload) for _, type_, payload in events(gateway, member)] == [
        (
            "payment.pending",
            {
                "payment_id": pending["paymentId"],
                "purpose": "checkout",
                "amount": total,
                "currency": "EUR",
                "method": "transfer",
                "reference": pending["reference"],
                "instructions": {"iban": "DE89370400440532013000", "amount": total},
                "expires_at": expires_at.isoformat(),
            },
        )
    ]


class LostAnswer(Transfer):
    """The first charge's outcome is unknown (a timeout): it raises; later calls answer."""

    def __init__(self) -> None:
        self.charges = 0

    def charge(self, request: ChargeRequest, ledger: Ledger) -> PaymentResult:
        self.charges += 1
        raise TimeoutError("the bank's API did not answer")


def test_reconciliation_records_the_instructions_of_a_charge_whose_answer_was_lost(
    graphql, gateway, clock, member
):
    gateway.registry.payment_methods["transfer"] = LostAnswer()
    quote = graphql(QUOTE, {"input": {"planCode": "omnichannel"}}, key=member.key)["quote"]
    total = quote["dueNow"]["total"]["amount"]
    checkout_input = {
        "planCode": "omnichannel",
        "expectedTotal": total,
        "quoteExpiresAt": quote["expiresAt"],
        "paymentMethod": {"method": "transfer"},
        "idempotencyKey": "transfer-lost",
    }
    unknown = graphql(CHECKOUT, {"input": checkout_input}, key=member.key)["checkout"]
    assert unknown["__typename"] == "PaymentPending"
    assert (unknown["reference"], unknown["instructions"], unknown["expiresAt"]) == (None, [], None)

    clock.advance(minutes=5)  # past the grace for an unanswered payment: reconciliation asks status()
    steps = reconcile(gateway, clock.now)
    assert [(s.payment_id, s.action) for s in steps] == [(unknown["paymentId"], "asked")]
    with gateway.sessions() as session:
        payment = session.get(Payment, unknown["paymentId"])
        assert payment.status == "pending"
        assert payment.reference == f"REF-{unknown['paymentId'][:8]}"
        assert payment.instructions == {"iban": "DE89370400440532013000", "amount": total}
        assert payment.expires_at is not None  # so that it can expire
    assert [type_ for _, type_, _ in events(gateway, member)] == ["payment.pending"]

    clock.advance(days=3)
    steps = reconcile(gateway, clock.now)
    assert [(s.payment_id, s.action, s.after) for s in steps] == [
        (unknown["paymentId"], "expired", "expired")
    ]
    assert [type_ for _, type_, _ in events(gateway, member)] == ["payment.pending", "payment.expired"]
