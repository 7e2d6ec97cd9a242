"""Settling payments: applying a method's answer, and what each purpose does with it.

A payment's answer is applied in a transaction of its own, after the method was asked
outside any transaction (see :mod:`gateway.services.payflow`). What follows a success
depends on what the payment was for:

* a **checkout** applies its order, priced again exactly as at checkout (the core is pure:
  the same inputs and ``now`` give the same order). If the subscription changed in the
  meantime the order no longer applies: the payment is refunded (``ORDER_SUPERSEDED``);
* a **top-up** adds the money to the balance;
* a **renewal** marks its open invoice paid (or, on failure, leaves the workspace past due).

Answers arrive from the request that made the payment, a 3-D Secure confirmation, a
processor's notification, an operator, or :func:`reconcile`, which the CLI and the
server's periodic task run: it asks methods about payments they never answered (a crash,
a timeout), polls those that settle later, expires those nobody completed in time
(cancelling them at the method) and makes the refunds owed. Every path goes through
:func:`settle`, which locks the workspace, so an answer is applied once whoever brings it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from gateway.core import pricing
from gateway.core.errors import (
    DomainError,
    ErrorCode,
    PaymentActionRequired,
    PaymentDeclined,
    PaymentPending,
    PaymentRefused,
)
from gateway.core.money import Money
from gateway.core.statuses import (
    InvoiceStatus,
    PaymentPurpose,
    PaymentStatus,
    RenewalRecordStatus,
    WorkspaceStatus,
)
from gateway.events.outbox import EventType, emit
from gateway.plugin_api.payments import (
    HARD_DECLINES,
    Capability,
    ChargeRequest,
    FailureCode,
    NotifiedPaymentMethod,
    PaymentMethod,
    PaymentResult,
    StoredCard,
)
from gateway.services import billing_details, payflow
from gateway.services.cards import renewal_choice, save_card
from gateway.services.charging import credit_top_up
from gateway.services.deps import Deps
from gateway.services.invoices import record_collection_failure, settle_workspace_status
from gateway.services.orders import OrderRequest, apply_order, base_snapshot, plan_to_buy, price_for_workspace
from gateway.storage.db import BillingDetails, Card, Invoice, Payment, Renewal, Workspace, transaction_memo
from gateway.storage.locks import lock_workspace

logger = logging.getLogger("gateway.payments")

SUPERSEDED = "the subscription changed before the payment was confirmed; "


@dataclass(frozen=True)
class Completed:
    """A checkout applied its order (paid, or nothing was due)."""

    kind: pricing.ChangeKind
    invoice_id: str | None
    payment_id: str | None


@dataclass(frozen=True)
class ToppedUp:
    payment_id: str
    amount: Money


@dataclass(frozen=True)
class InvoicePaid:
    """An open invoice was paid (payInvoice, or a dunning retry)."""

    payment_id: str
    invoice_id: str


@dataclass(frozen=True)
class RenewalSettled:
    """A renewal's payment came to an end: paid, or failed (the workspace is past due)."""

    payment_id: str
    paid: bool


# Where a payment stands, as its requester sees it.
PaymentOutcome = (
    Completed
    | ToppedUp
    | InvoicePaid
    | RenewalSettled
    | PaymentDeclined
    | PaymentActionRequired
    | PaymentPending
    | PaymentRefused
)


_INVOICE_OF = "invoice of payment"  # transaction_memo: the invoice a checkout's payment made


def outcome_of(session: Session, payment: Payment) -> PaymentOutcome:
    """What ``payment`` means for whoever asked for it, now."""
    status = PaymentStatus(payment.status)
    amount = Money.from_minor_units(payment.amount_minor, payment.currency)
    if status is PaymentStatus.SUCCEEDED and not payment.refund_due:
        if payment.purpose == PaymentPurpose.TOP_UP:
            return ToppedUp(payment.id, amount)
        if payment.purpose == PaymentPurpose.RENEWAL:
            return RenewalSettled(payment.id, paid=True)
        if payment.purpose == PaymentPurpose.INVOICE:
            return InvoicePaid(payment.id, (payment.pending or {})["invoice_id"])
        invoice_id = transaction_memo(session).get((_INVOICE_OF, payment.id))
        if invoice_id is None:
            invoice_id = session.scalar(select(Invoice.id).where(Invoice.payment_id == payment.id))
        kind = pricing.ChangeKind((payment.pending or {})["order"]["kind"])
        return Completed(kind, invoice_id, payment.id)
    if status in (PaymentStatus.SUCCEEDED, PaymentStatus.REFUNDED, PaymentStatus.REFUND_FAILED):
        return PaymentRefused(
            ErrorCode.ORDER_SUPERSEDED, payment.failure_message or SUPERSEDED + "refunded", ("payment_id",)
        )
    if status is PaymentStatus.REQUIRES_ACTION:
        return PaymentActionRequired(payment.id, payment.next_action or "", payment.expires_at)
    if status is PaymentStatus.PENDING:
        return PaymentPending(
            payment.id, payment.reference, dict(payment.instructions or {}), payment.expires_at
        )
    if payment.purpose == PaymentPurpose.RENEWAL:
        return RenewalSettled(payment.id, paid=False)
    return PaymentDeclined(
        payment.id,
        payment.failure_code or FailureCode.PROCESSING_ERROR.value,
        payment.failure_message or "the payment failed",
    )


def read_outcome(deps: Deps, payment_id: str, *, wait: float = 0.0) -> PaymentOutcome:
    """Where ``payment_id`` stands. With ``wait``, a payment its method is still being asked
    about is waited for, up to ``wait`` seconds (a retry of the request that made it)."""
    deadline = time.monotonic() + wait
    while True:
        with deps.sessions() as session:
            payment = session.get(Payment, payment_id)
            assert payment is not None, "payments are never deleted"
            unanswered = payment.status == PaymentStatus.PENDING and payment.answered_at is None
            if not unanswered or time.monotonic() >= deadline:
                return outcome_of(session, payment)
        time.sleep(0.02)


def settle(
    deps: Deps, payment_id: str, result: PaymentResult | None, *, workspace_id: str | None = None
) -> PaymentOutcome:
    """Apply ``result`` (None: the outcome is unknown, nothing changes) and the purpose's
    follow-up in one transaction; then make the refund it may owe. Returns where the payment
    stands, however often the same answer arrives. ``workspace_id``, the payment's, when the
    caller has it at hand (it saves a statement)."""
    now = deps.clock()
    with deps.write_sessions.begin() as session:
        if workspace_id is None:
            workspace_id = session.scalar(select(Payment.workspace_id).where(Payment.id == payment_id))
            assert workspace_id is not None, "payments are never deleted"
        workspace = lock_workspace(session, workspace_id)
        assert workspace is not None
        payment = session.get(Payment, payment_id, populate_existing=True)
        assert payment is not None
        if payment.workspace_id != workspace_id:  # the caller's mistake: nothing is changed
            raise ValueError(f"payment {payment_id} is not workspace {workspace_id}'s")
        if result is not None:
            before = PaymentStatus(payment.status)
            new = payflow.record(
                session,
                workspace,
                payment,
                result,
                now,
                action_timeout=deps.payment_action_timeout,
                settle_timeout=deps.payment_settle_timeout,
            )
            if new is PaymentStatus.SUCCEEDED and before is PaymentStatus.EXPIRED:
                # The money arrived after the payment expired (a late transfer): what it was for
                # is not applied; it is given back, or left to an operator if it cannot be.
                logger.warning("payment %s: money arrived after it expired; refunding it", payment.id)
                payment.refund_due = True
                payment.failure_message = "the money arrived after the payment expired; refunded"
            elif new is PaymentStatus.SUCCEEDED:
                _succeeded(deps, session, workspace, payment, now)
            elif new in (PaymentStatus.FAILED, PaymentStatus.EXPIRED):
                _ended_unpaid(deps, session, workspace, payment, now)
        outcome = outcome_of(session, payment)
        refund_due = payment.refund_due
    if refund_due:
        return refund_owed(deps, payment_id)
    return outcome


def charge_and_settle(deps: Deps, method: PaymentMethod, request: ChargeRequest) -> PaymentOutcome:
    """Ask ``method`` for the payment ``request`` describes, outside any transaction (the caller
    committed it as pending), then :func:`settle` its answer."""
    result = payflow.charge(deps, method, request)
    return settle(deps, request.payment_id, result, workspace_id=request.workspace_id)


# ------------------------------------------------------------------ follow-ups


def _succeeded(deps: Deps, session: Session, workspace: Workspace, payment: Payment, now: datetime) -> None:
    if payment.purpose == PaymentPurpose.TOP_UP:
        _save_pending_card(session, workspace, payment, now)
        credit_top_up(session, workspace, payment, now)
    elif payment.purpose == PaymentPurpose.RENEWAL:
        _renewal_ended(deps, session, workspace, payment, now, paid=True)
    elif payment.purpose == PaymentPurpose.INVOICE:
        _invoice_paid(session, workspace, payment, now)
    else:
        _checkout_paid(deps, session, workspace, payment, now)


def _ended_unpaid(
    deps: Deps, session: Session, workspace: Workspace, payment: Payment, now: datetime
) -> None:
    follow_up = payment.pending or {}
    if payment.purpose == PaymentPurpose.RENEWAL:
        _renewal_ended(deps, session, workspace, payment, now, paid=False)
    elif payment.purpose == PaymentPurpose.INVOICE and follow_up.get("retry"):
        invoice = session.get(Invoice, follow_up["invoice_id"])
        assert invoice is not None
        if invoice.status == InvoiceStatus.OPEN:
            code = payment.failure_code or FailureCode.PROCESSING_ERROR.value
            record_collection_failure(
                session,
                workspace,
                invoice,
                reason=code,
                message=payment.failure_message or "the payment failed",
                method=follow_up.get("method"),
                hard=code in HARD_DECLINES,
                schedule=deps.dunning_schedule,
                now=now,
            )


def _invoice_paid(session: Session, workspace: Workspace, payment: Payment, now: datetime) -> None:
    """An open invoice paid later: paid, its renewal renewed, the workspace active once nothing
    is left open. An invoice paid twice (two payments raced) gives the second one back."""
    invoice = session.get(Invoice, (payment.pending or {})["invoice_id"])
    assert invoice is not None
    if invoice.status != InvoiceStatus.OPEN:
        payment.refund_due = True
        payment.failure_message = "the invoice was already paid; refunded"
        return
    _save_pending_card(session, workspace, payment, now)
    invoice.status = InvoiceStatus.PAID
    invoice.payment_id = payment.id
    invoice.next_retry_at = None
    renewal = session.scalar(select(Renewal).where(Renewal.invoice_id == invoice.id))
    if renewal is not None and renewal.status != RenewalRecordStatus.RENEWED:
        renewal.status = RenewalRecordStatus.RENEWED
    emit(
        session,
        workspace,
        EventType.INVOICE_PAID,
        {
            "invoice_id": invoice.id,
            "invoice_number": invoice.number,
            "amount": str(Money.from_minor_units(invoice.total_minor, invoice.currency).amount),
            "currency": invoice.currency,
            "payment_id": payment.id,
            "payment_method": payment.method,
            "attempts": invoice.attempts + 1,
        },
        now,
    )
    settle_workspace_status(session, workspace, now)


def _checkout_paid(
    deps: Deps, session: Session, workspace: Workspace, payment: Payment, now: datetime
) -> None:
    details = session.get(BillingDetails, workspace.id)
    order = _reprice_pending(deps, workspace, payment, details)
    if order is None:
        payment.refund_due = True  # refunded right after this transaction commits
        payment.failure_message = SUPERSEDED + "refunded"
        return
    card_row = _save_pending_card(session, workspace, payment, now)
    if card_row is None and payment.card_id:
        card_row = session.get(Card, payment.card_id)
    method = deps.payment_methods.get(payment.method)
    renews = method is not None and Capability.OFF_SESSION in method.capabilities
    renewal = renewal_choice(payment.method, card_row.id if card_row else None) if renews else None
    if method is not None and Capability.CARDS in method.capabilities and card_row is None:
        renewal = None  # an unsaved card cannot pay the renewals
    invoice_id = apply_order(
        session,
        workspace,
        order,
        payment,
        renewal,
        details,
        now,
        target_description=pricing.describe(order.target),
        seller=deps.seller,
    )
    transaction_memo(session)[_INVOICE_OF, payment.id] = invoice_id  # for outcome_of: no read


def _reprice_pending(
    deps: Deps, workspace: Workspace, payment: Payment, details: BillingDetails | None
) -> pricing.PricedOrder | None:
    """The paid order, priced again as at checkout (for the customer ``details`` describe);
    None if it no longer applies."""
    pending = payment.pending or {}
    base, target = pending.get("base", {}), pending.get("order", {}).get("target", {})
    if base != base_snapshot(workspace):
        return None
    request = OrderRequest(
        target.get("plan", ""), target.get("email_credits"), target.get("messaging_credits")
    )
    try:
        plan = plan_to_buy(deps, request.plan_code, payment.created_at)
        order = price_for_workspace(
            deps, workspace, plan, request, billing_details.tax_customer(details), payment.created_at
        )
    except DomainError:  # the plan or its limits are gone, or the VAT ID no longer checks out
        return None
    if order.due_now.total.minor_units != payment.amount_minor:
        return None
    return order


def _save_pending_card(
    session: Session, workspace: Workspace, payment: Payment, now: datetime
) -> Card | None:
    """Save the card the customer asked to save, now that its payment succeeded."""
    pending = payment.pending or {}
    if not pending.get("save_card") or not pending.get("card"):
        return None
    row = save_card(session, workspace, StoredCard(**pending["card"]), now)
    payment.card_id = row.id
    return row


def _renewal_ended(
    deps: Deps, session: Session, workspace: Workspace, payment: Payment, now: datetime, *, paid: bool
) -> None:
    """Finish the renewal a payment was for: its invoice paid, or the workspace past due."""
    follow_up = (payment.pending or {})["renewal"]
    invoice = session.get(Invoice, follow_up["invoice_id"])
    renewal = session.get(Renewal, (workspace.id, datetime.fromisoformat(follow_up["period_start"])))
    assert invoice is not None and renewal is not None, "a renewal's payment keeps its invoice and period"
    payload = {**follow_up["payload"], "payment_id": payment.id, "payment_method": payment.method}
    if paid:
        invoice.status = InvoiceStatus.PAID
        invoice.payment_id = payment.id
        finish_renewal(session, workspace, renewal, invoice, payload, now)
    else:
        failure = (
            payment.failure_code or FailureCode.PROCESSING_ERROR.value,
            payment.failure_message or "the payment failed",
        )
        finish_renewal(
            session,
            workspace,
            renewal,
            invoice,
            payload,
            now,
            failure=failure,
            dunning=(deps.dunning_schedule, workspace.renewal_payment, failure[0] in HARD_DECLINES),
        )


def finish_renewal(
    session: Session,
    workspace: Workspace,
    renewal: Renewal,
    invoice: Invoice,
    payload: dict[str, object],
    now: datetime,
    *,
    failure: tuple[str, str] | None = None,
    dunning: tuple[Sequence[timedelta], str | None, bool] = ((), None, False),
) -> None:
    """A renewal's end: paid (the workspace active unless other invoices are open,
    ``renewal.completed``), or not (``failure`` is the reason and message: past due,
    ``renewal.failed``, and the open invoice enters dunning: ``dunning`` is the retry schedule,
    the renewal method that failed and whether it was a hard decline)."""
    if failure is None:
        renewal.status = RenewalRecordStatus.RENEWED
        emit(session, workspace, EventType.RENEWAL_COMPLETED, payload, now)
        settle_workspace_status(session, workspace, now)
        return
    reason, message = failure
    renewal.status = RenewalRecordStatus.PAYMENT_FAILED
    if workspace.status != WorkspaceStatus.SUSPENDED:  # suspended stays suspended until it pays
        workspace.status = WorkspaceStatus.PAST_DUE
    emit(
        session,
        workspace,
        EventType.RENEWAL_FAILED,
        {**payload, "reason": reason, "message": message, "status": workspace.status},
        now,
    )
    schedule, method, hard = dunning
    record_collection_failure(
        session,
        workspace,
        invoice,
        reason=reason,
        message=message,
        method=method,
        hard=hard,
        schedule=schedule,
        now=now,
    )


# ------------------------------------------------------------------ refunds


def refund_owed(deps: Deps, payment_id: str) -> PaymentOutcome:
    """Give back a payment whose order no longer applied, outside any transaction, and record
    it. A refund whose outcome is unknown stays owed: the next :func:`reconcile` tries again
    with the same key."""
    with deps.sessions() as session:
        payment = session.get(Payment, payment_id)
        assert payment is not None
        if not payment.refund_due or payment.status != PaymentStatus.SUCCEEDED:
            return outcome_of(session, payment)
        request = payflow.request_of(payment)
        reference, method_code = payment.reference, payment.method
    method = deps.payment_methods.get(method_code)
    result: PaymentResult | None
    if method is None or Capability.REFUND not in method.capabilities or reference is None:
        result = PaymentResult(
            PaymentStatus.FAILED, message=f"the payment method {method_code!r} cannot refund"
        )
    else:
        key = payflow.payment_key("refund", f"refund:{request.idempotency_key}")
        result = payflow.ask(
            method,
            request,
            "refund",
            lambda: method.refund(request, reference, request.amount, key, payflow.ledger_for(deps, request)),
        )
    now = deps.clock()
    with deps.write_sessions.begin() as session:
        workspace = lock_workspace(session, request.workspace_id)
        assert workspace is not None
        payment = session.get(Payment, payment_id, populate_existing=True)
        assert payment is not None
        if result is not None and payment.refund_due and payment.status == PaymentStatus.SUCCEEDED:
            payment.refund_due = False
            payment.updated_at = now
            reason = (payment.failure_message or SUPERSEDED + "refunded").removesuffix("refunded")
            if result.status is PaymentStatus.SUCCEEDED:
                payment.status = PaymentStatus.REFUNDED
                payment.refund_reference = (result.reference or "")[:128] or None
                payment.failure_message = reason + "refunded"
                emit(
                    session,
                    workspace,
                    EventType.PAYMENT_REFUNDED,
                    {
                        **payflow.payment_payload(payment),
                        "refund_reference": payment.refund_reference,
                        "refund_id": None,
                        "refunded": str(
                            Money.from_minor_units(payment.amount_minor, payment.currency).amount
                        ),
                        "destination": "method",
                        "full": True,
                        "credit_note_id": None,
                        "credit_note_number": None,
                    },
                    now,
                )
            else:
                payment.status = PaymentStatus.REFUND_FAILED
                payment.failure_message = reason + "the refund failed and needs an operator"
                payflow.emit_payment_failed(
                    session, workspace, payment, PaymentStatus.REFUND_FAILED.value, now
                )
        return outcome_of(session, payment)


# ------------------------------------------------------------------ reconciliation


@dataclass(frozen=True)
class Reconciled:
    payment_id: str
    method: str
    before: str
    after: str
    action: str  # "asked", "expired", "refunded"

    def describe(self) -> str:
        return f"payment {self.payment_id} ({self.method}): {self.action}: {self.before} -> {self.after}"


def reconcile(deps: Deps, now: datetime, limit: int = 500) -> list[Reconciled]:
    """Settle what is left open: payments a method never answered (asked again with the same
    key after :data:`~gateway.services.payflow.ANSWER_GRACE`), payments that settle later
    (polled), payments past their expiry (cancelled at the method, then EXPIRED unless the
    money arrived first), and refunds owed. One payment's trouble never stops the others."""
    with deps.sessions() as session:
        open_rows = session.execute(
            select(Payment.id, Payment.status, Payment.answered_at, Payment.expires_at, Payment.created_at)
            .where(
                or_(
                    Payment.status.in_((PaymentStatus.PENDING.value, PaymentStatus.REQUIRES_ACTION.value)),
                    Payment.refund_due.is_(True),
                )
            )
            .order_by(Payment.created_at, Payment.id)
            .limit(limit)
        ).all()
    done: list[Reconciled] = []
    for payment_id, status, answered_at, expires_at, created_at in open_rows:
        try:
            step = _reconcile_one(deps, payment_id, status, answered_at, expires_at, created_at, now)
        except Exception:  # logged with its traceback; tried again on the next run
            logger.exception("reconciling payment %s failed", payment_id)
            continue
        if step is not None:
            done.append(step)
    return done


def _reconcile_one(
    deps: Deps,
    payment_id: str,
    status: str,
    answered_at: datetime | None,
    expires_at: datetime | None,
    created_at: datetime,
    now: datetime,
) -> Reconciled | None:
    with deps.sessions() as session:
        payment = session.get(Payment, payment_id)
        assert payment is not None
        request = payflow.request_of(payment)
        reference, method_code, refund_due = payment.reference, payment.method, payment.refund_due
    method = deps.payment_methods.get(method_code)
    if method is None:
        logger.warning("payment %s: its method %r is not loaded; left open", payment_id, method_code)
        return None
    if refund_due:
        refund_owed(deps, payment_id)
        return Reconciled(payment_id, method_code, status, _status_of(deps, payment_id), "refunded")
    if expires_at is not None and expires_at <= now:
        expire(deps, payment_id, method, request, reference, PaymentStatus(status))
        return Reconciled(payment_id, method_code, status, _status_of(deps, payment_id), "expired")
    if status != PaymentStatus.PENDING or (answered_at is None and created_at > now - payflow.ANSWER_GRACE):
        return None  # waiting for the customer, or still being answered
    result = payflow.ask(
        method,
        request,
        "status",
        lambda: method.status(request, reference, payflow.ledger_for(deps, request)),
    )
    if result is None or (result.status.value == status and answered_at is not None):
        return None  # nothing new (a payment never answered records even a PENDING answer)
    settle(deps, payment_id, result)
    return Reconciled(payment_id, method_code, status, _status_of(deps, payment_id), "asked")


def expire(
    deps: Deps,
    payment_id: str,
    method: PaymentMethod,
    request: ChargeRequest,
    reference: str | None,
    status: PaymentStatus,
) -> PaymentOutcome:
    """Give up a payment past its expiry: cancel it at the method (outside any transaction),
    then record it EXPIRED (``payment.expired``; what it paid for is not applied), unless the
    method says the money arrived first. A cancellation whose outcome is unknown leaves the
    payment open for the next run."""
    result = payflow.ask(
        method,
        request,
        "cancel",
        lambda: method.cancel(request, reference, payflow.ledger_for(deps, request)),
    )
    if result is not None and result.status is not PaymentStatus.SUCCEEDED:
        result = PaymentResult(
            PaymentStatus.EXPIRED, failure=FailureCode.EXPIRED, message=_expired_message(status)
        )
    return settle(deps, payment_id, result)


def _expired_message(status: PaymentStatus) -> str:
    if status == PaymentStatus.REQUIRES_ACTION:
        return "the customer did not complete the payment in time"
    return "the money did not arrive in time"


def _status_of(deps: Deps, payment_id: str) -> str:
    with deps.sessions() as session:
        return str(session.scalar(select(Payment.status).where(Payment.id == payment_id)))


# ------------------------------------------------------------------ settling later


class CannotSettle(LookupError):
    """A notification or an operator named a payment that cannot be settled that way."""


def notified(deps: Deps, method_code: str, headers: dict[str, str], body: bytes) -> PaymentOutcome:
    """Apply a payment method's signed notification (a bank's notice of incoming funds, a
    processor's webhook). Raises :class:`~gateway.plugin_api.payments.InvalidNotification`
    for one the method does not verify, :class:`CannotSettle` for an unknown payment."""
    method = deps.payment_methods.get(method_code)
    if not isinstance(method, NotifiedPaymentMethod):
        raise CannotSettle(f"the payment method {method_code!r} takes no notifications")
    reference, result = method.parse_notification(headers, body)  # raises InvalidNotification
    with deps.sessions() as session:
        matches = list(
            session.scalars(
                select(Payment.id)
                .where(Payment.method == method_code, Payment.reference == reference)
                .limit(2)
            )
        )
    if not matches:
        raise CannotSettle(f"no {method_code} payment with reference {reference!r}")
    if len(matches) > 1:  # a method that reuses references: never guess whose money it is
        raise CannotSettle(f"several {method_code} payments have the reference {reference!r}")
    return settle(deps, matches[0], result)


def mark_paid(deps: Deps, payment_id: str, note: str) -> PaymentOutcome:
    """An operator saw the money of a payment that settles later (a bank transfer) arrive. For a
    payment that had expired, the money is refunded instead of applied."""
    with deps.sessions() as session:
        payment = session.get(Payment, payment_id)
        if payment is None:
            raise CannotSettle(f"no payment {payment_id!r}")
        method = deps.payment_methods.get(payment.method)
        if method is None or Capability.SETTLE_LATER not in method.capabilities:
            raise CannotSettle(
                f"payment {payment_id} is paid by {payment.method}, which does not settle later"
            )
        if payment.status not in (PaymentStatus.PENDING, PaymentStatus.EXPIRED):
            raise CannotSettle(f"payment {payment_id} is {payment.status}, not pending")
    logger.info("payment %s marked paid by an operator: %s", payment_id, note)
    return settle(deps, payment_id, PaymentResult(PaymentStatus.SUCCEEDED, message=note[:200] or None))
