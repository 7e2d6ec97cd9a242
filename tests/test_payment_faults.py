"""Money at the processor boundary: failures injected before, during and after the call.

The payment method here stands in for an outside processor: it remembers every charge by
idempotency key (the money taken from the customer), and can be told to fail before it
charges (a connection refused) or after (a read timeout once the money was taken). Commit
failures are injected with SQLAlchemy session events on the real database. Whatever fails,
three things must hold: never a charge without a record, never a plan change without a
charge, never two charges for one order.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session
from test_checkout import CHECKOUT, quote
from test_renewal import BOUNDARY

from gateway.core.money import Money
from gateway.plugin_api import (
    Capability,
    ChargeRequest,
    FailureCode,
    Ledger,
    PaymentResult,
    PaymentStatus,
)
from gateway.services.payflow import ANSWER_GRACE
from gateway.services.renewal import RenewalStatus, renew_due
from gateway.services.settlement import reconcile
from gateway.storage.db import Invoice, Payment, Workspace

from helpers import billing, events, rows


@dataclass
class Processor:
    """The outside world: what the customer was charged, by key."""

    charges: dict[str, Money] = field(default_factory=dict)
    refunds: dict[str, Money] = field(default_factory=dict)
    fail_before: bool = False  # refuse the connection: nothing charged, the outcome unknown
    fail_after: bool = False  # time out after taking the money: the outcome unknown
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def taken(self) -> int:
        """Minor units taken from the customer, net of refunds."""
        return sum(m.minor_units for m in self.charges.values()) - sum(
            m.minor_units for m in self.refunds.values()
        )


class ProcessorMethod:
    code = "processor"
    label = "Outside processor"
    capabilities = frozenset({Capability.PAY_NOW, Capability.OFF_SESSION, Capability.REFUND})

    def __init__(self, processor: Processor) -> None:
        self.processor = processor

    def charge(self, request: ChargeRequest, ledger: Ledger) -> PaymentResult:
        if self.processor.fail_before:
            raise ConnectionRefusedError("injected: the processor refused the connection")
        with self.processor.lock:
            self.processor.charges.setdefault(request.idempotency_key, request.amount)  # idempotent per key
        if self.processor.fail_after:
            raise TimeoutError("injected: the processor took the money, then the read timed out")
        return PaymentResult(PaymentStatus.SUCCEEDED, reference=f"ch_{request.idempotency_key[-12:]}")

    def status(self, request: ChargeRequest, reference: str | None, ledger: Ledger) -> PaymentResult:
        if request.idempotency_key in self.processor.charges:
            return PaymentResult(PaymentStatus.SUCCEEDED, reference=f"ch_{request.idempotency_key[-12:]}")
        return PaymentResult(
            PaymentStatus.FAILED, failure=FailureCode.PROCESSING_ERROR, message="no such charge"
        )

    def confirm(self, request: ChargeRequest, reference: str, response: str | None) -> PaymentResult:
        return self.status(request, reference, ledger=None)  # type: ignore[arg-type]

    def cancel(self, request: ChargeRequest, reference: str | None, ledger: Ledger) -> PaymentResult:
        return self.status(request, reference, ledger)

    def refund(
        self, request: ChargeRequest, reference: str, amount: Money, key: str, ledger: Ledger
    ) -> PaymentResult:
        with self.processor.lock:
            self.processor.refunds.setdefault(key, amount)
        return PaymentResult(PaymentStatus.SUCCEEDED, reference=f"re_{key[-12:]}")


@pytest.fixture
def processor(gateway) -> Processor:
    processor = Processor()
    gateway.registry.payment_methods["processor"] = ProcessorMethod(processor)
    return processor


@dataclass
class CommitFault:
    """Fails the commit (``before_commit``) or the moment after it (``after_commit``) of the
    first transaction that writes a payment with one of ``statuses``."""

    statuses: frozenset[str]
    after: bool = False
    armed: bool = False
    fired: int = 0
    _pending: set[int] = field(default_factory=set)

    def before_commit(self, session: Session) -> None:
        if not self.armed:
            return
        # Flushed rows are in the identity map, not in ``new``: look at both.
        touched = [o for o in (*session.new, *session.identity_map.values()) if isinstance(o, Payment)]
        if any(p.status in self.statuses for p in touched):
            if self.after:
                self._pending.add(id(session))
                return
            self.armed = False
            self.fired += 1
            raise RuntimeError("injected: the commit failed")

    def after_commit(self, session: Session) -> None:
        if id(session) in self._pending:
            self._pending.discard(id(session))
            self.armed = False
            self.fired += 1
            raise RuntimeError("injected: the process died right after the commit")


@pytest.fixture
def commit_fault() -> Iterator[CommitFault]:
    fault = CommitFault(frozenset())
    event.listen(Session, "before_commit", fault.before_commit)
    event.listen(Session, "after_commit", fault.after_commit)
    yield fault
    event.remove(Session, "before_commit", fault.before_commit)
    event.remove(Session, "after_commit", fault.after_commit)


@pytest.fixture
def customer(graphql, make_workspace):
    member = make_workspace("Fault Ltd")
    billing(graphql, member)
    return member


def attempt(client, member, offer, key="order-1") -> dict:
    """Checkout over HTTP, returning the whole GraphQL response (errors included)."""
    variables = {
        "input": {
            "planCode": "omnichannel",
            "paymentMethod": {"method": "processor"},
            "idempotencyKey": key,
            "expectedTotal": offer["dueNow"]["total"]["amount"],
            "quoteExpiresAt": offer["expiresAt"],
            "emailCredits": offer["emailCredits"],
            "messagingCredits": offer["messagingCredits"],
        }
    }
    response = client.post(
        "/graphql",
        json={"query": CHECKOUT, "variables": variables},
        headers={"Authorization": f"Bearer {member.key}"},
    )
    return response.json()


def state(gateway, member) -> tuple[str, list[str], list[str]]:
    """The plan, the payments' statuses and the invoices' statuses."""
    with gateway.sessions() as session:
        plan = session.get(Workspace, member.id).plan_code
    payments = [p.status for p in rows(gateway, Payment, member)]
    invoices = [i.status for i in rows(gateway, Invoice, member)]
    return plan, payments, invoices


def settle_later(gateway, clock) -> None:
    """The reconciliation run, once the grace for unanswered payments has passed."""
    clock.advance(minutes=3)
    reconcile(gateway, clock())


PAID = ("omnichannel", ["succeeded"], ["paid"])
DUE = 11305  # minor units: Free -> Omnichannel at its defaults, German VAT included


def test_no_fault_charges_once_and_applies(gateway, graphql, client, clock, processor, customer):
    offer = quote(graphql, customer, "omnichannel")
    assert attempt(client, customer, offer)["data"]["checkout"]["__typename"] == "CheckoutSuccess"
    assert state(gateway, customer) == PAID and processor.taken == DUE


def test_commit_of_the_pending_payment_fails(
    gateway, graphql, client, clock, processor, customer, commit_fault
):
    """Before the call: the record of the payment never commits, so the processor is never asked."""
    offer = quote(graphql, customer, "omnichannel")
    commit_fault.statuses, commit_fault.armed = frozenset({"pending"}), True

    failed = attempt(client, customer, offer)

    assert commit_fault.fired == 1 and failed.get("errors"), failed
    assert state(gateway, customer) == ("free", [], []) and processor.taken == 0
    # The same key again, the database back: one charge, the order applied.
    assert attempt(client, customer, offer)["data"]["checkout"]["__typename"] == "CheckoutSuccess"
    assert state(gateway, customer) == PAID and processor.taken == DUE


def test_crash_before_the_call(gateway, graphql, client, clock, processor, customer):
    """The payment is recorded, then the processor is never reached: pending, nothing taken,
    and reconciliation finds out that nothing was charged."""
    offer = quote(graphql, customer, "omnichannel")
    processor.fail_before = True

    answer = attempt(client, customer, offer)["data"]["checkout"]

    assert answer["__typename"] == "PaymentPending", answer
    assert state(gateway, customer) == ("free", ["pending"], []) and processor.taken == 0
    reconcile(gateway, clock())  # within the grace: a request may still be asking
    assert state(gateway, customer) == ("free", ["pending"], [])
    settle_later(gateway, clock)
    assert state(gateway, customer) == ("free", ["failed"], []) and processor.taken == 0
    assert [t for _, t, _ in events(gateway, customer)] == ["payment.failed"]
    processor.fail_before = False
    retried = attempt(client, customer, offer)["data"]["checkout"]
    assert retried["__typename"] == "PaymentDeclined" and processor.taken == 0  # the key's answer stands


def test_crash_after_the_call_before_the_answer_is_recorded(
    gateway, graphql, client, clock, processor, customer
):
    """The processor took the money and the answer was lost: pending, then reconciliation
    asks the processor and applies the order once."""
    offer = quote(graphql, customer, "omnichannel")
    processor.fail_after = True

    answer = attempt(client, customer, offer)["data"]["checkout"]

    assert answer["__typename"] == "PaymentPending"
    assert state(gateway, customer) == ("free", ["pending"], []) and processor.taken == DUE
    settle_later(gateway, clock)
    assert state(gateway, customer) == PAID and processor.taken == DUE
    processor.fail_after = False
    assert attempt(client, customer, offer)["data"]["checkout"]["__typename"] == "CheckoutSuccess"
    settle_later(gateway, clock)
    assert state(gateway, customer) == PAID and processor.taken == DUE


def test_commit_of_the_answer_fails(gateway, graphql, client, clock, processor, customer, commit_fault):
    """The processor answered SUCCEEDED and the transaction recording it failed: the charge
    has its pending record, and reconciliation applies the order exactly once."""
    offer = quote(graphql, customer, "omnichannel")
    commit_fault.statuses, commit_fault.armed = frozenset({"succeeded"}), True

    failed = attempt(client, customer, offer)

    assert commit_fault.fired == 1 and failed.get("errors"), failed
    assert state(gateway, customer) == ("free", ["pending"], []) and processor.taken == DUE
    settle_later(gateway, clock)
    assert state(gateway, customer) == PAID and processor.taken == DUE
    assert attempt(client, customer, offer)["data"]["checkout"]["__typename"] == "CheckoutSuccess"
    assert processor.taken == DUE


def test_crash_right_after_the_commit(gateway, graphql, client, clock, processor, customer, commit_fault):
    """Everything committed, then the answer was lost: a retry with the key answers the
    success that happened, and charges nothing more."""
    offer = quote(graphql, customer, "omnichannel")
    commit_fault.statuses, commit_fault.after, commit_fault.armed = frozenset({"succeeded"}), True, True

    failed = attempt(client, customer, offer)

    assert commit_fault.fired == 1 and failed.get("errors"), failed
    assert state(gateway, customer) == PAID and processor.taken == DUE
    retried = attempt(client, customer, offer)["data"]["checkout"]
    assert retried["__typename"] == "CheckoutSuccess" and retried["payment"]["status"] == "succeeded"
    settle_later(gateway, clock)
    assert state(gateway, customer) == PAID and processor.taken == DUE


def test_a_renewal_whose_answer_was_lost_is_completed_by_reconciliation(
    gateway, graphql, processor, make_workspace
):
    member = make_workspace("Renewing", plan_code="email", email_credits=10000)
    billing(graphql, member)
    with gateway.sessions.begin() as session:
        session.get(Workspace, member.id).renewal_payment = "processor"
    processor.fail_after = True

    [result] = renew_due(gateway, BOUNDARY)

    assert result.status is RenewalStatus.PAYMENT_PENDING
    assert [i.status for i in rows(gateway, Invoice, member)] == ["open"]
    assert processor.taken == result.amount.minor_units
    steps = reconcile(gateway, BOUNDARY + ANSWER_GRACE * 2)
    assert [s.after for s in steps] == ["succeeded"]
    assert [i.status for i in rows(gateway, Invoice, member)] == ["paid"]
    assert processor.taken == result.amount.minor_units  # asked again by key: charged once
    assert [t for _, t, _ in events(gateway, member)][-1] == "renewal.completed"
    with gateway.sessions() as session:
        assert session.get(Workspace, member.id).status == "active"


def test_top_up_and_renewal_work_with_any_off_session_method(gateway, graphql, processor, make_workspace):
    from test_checkout import top_up

    member = make_workspace("Any method", plan_code="email", email_credits=10000)
    billing(graphql, member)
    done = top_up(graphql, member, "25.00", key="t1", method="processor")
    assert done["__typename"] == "TopUpSuccess" and done["balance"]["amount"] == "25.00"
    with gateway.sessions.begin() as session:
        session.get(Workspace, member.id).renewal_payment = "processor"
    [result] = renew_due(gateway, BOUNDARY)
    assert result.status is RenewalStatus.RENEWED
    assert processor.taken == 2500 + result.amount.minor_units
