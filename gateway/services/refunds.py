"""Operator refunds: give back a succeeded payment in full or in part, with a credit note.

Like a charge, a refund crosses the processor boundary in three steps: it is recorded as
pending under the workspace's lock (which also checks that the refunds of a payment never
exceed what it paid, whatever runs at the same time), the payment method is asked outside
any transaction with the refund's key, and the answer is applied in a second transaction,
with its credit note and event. A refund to the balance needs no outside call: its ledger
entry is written in that second transaction. A refund whose answer is unknown stays pending;
asking again with the same key finishes it and never refunds twice.

Credit notes are invoices of kind ``credit_note`` with negative amounts, numbered gap-free in
their own series (``CN-2026-000001`` for the seller's ``INV`` series, ``<series>CN`` for
another), naming the invoice they credit; the tax is given back in the proportion it had on it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.core.errors import ErrorCode, PaymentRefused, TextTooLong
from gateway.core.money import Money
from gateway.core.pricing import LineKind
from gateway.core.statuses import (
    InvoiceKind,
    InvoiceStatus,
    PaymentStatus,
    RefundDestination,
    RefundStatus,
)
from gateway.events.outbox import EventType, emit
from gateway.plugin_api.payments import Capability, ChargeRequest, LedgerEntryKind, PaymentResult
from gateway.services import payflow
from gateway.services.deps import Deps
from gateway.services.invoices import next_number
from gateway.storage.db import Invoice, Payment, Refund, Workspace
from gateway.storage.idempotency import IdempotencyKeyReused, InvalidIdempotencyKey
from gateway.storage.ledger import SqlLedger
from gateway.storage.locks import lock_workspace

MAX_REASON = 200  # characters: the reason is printed on the credit note
MAX_KEY = 64  # characters of an idempotency key, as stored on the refund


class RefundExceedsPayment(PaymentRefused):
    """The amount is more than what is left of the payment to refund; nothing was written."""

    def __init__(self, refundable: Money) -> None:
        super().__init__(
            ErrorCode.REFUND_EXCEEDS_PAYMENT,
            f"at most {refundable} of this payment can still be refunded",
            ("amount",),
        )
        self.refundable = refundable


@dataclass(frozen=True)
class RefundOutcome:
    refund_id: str
    payment_id: str
    amount: Money
    destination: str
    status: str  # a RefundStatus
    credit_note_number: str | None
    message: str | None = None
    credit_note_id: str | None = None

    def describe(self) -> str:
        note = f", credit note {self.credit_note_number}" if self.credit_note_number else ""
        why = f": {self.message}" if self.message else ""
        return f"refund {self.refund_id} of payment {self.payment_id}: {self.amount} to {self.destination}: {self.status}{note}{why}"


def credit_series(invoice_series: str) -> str:
    return "CN" if invoice_series == "INV" else f"{invoice_series}CN"[:16]


def refund_payment(
    deps: Deps,
    payment_id: str,
    amount: Decimal | None,
    destination: RefundDestination,
    reason: str,
    idempotency_key: str,
) -> RefundOutcome:
    """Refund ``amount`` (all that is left when None) of a succeeded payment. Raises
    :class:`PaymentRefused` (nothing written) for a payment that cannot be refunded that way,
    an amount that is not a positive amount of its currency or (:class:`RefundExceedsPayment`)
    one above what is left, :class:`TextTooLong` for a reason longer than ``MAX_REASON``; the
    same key again answers the same refund, and refuses another amount or destination
    (:class:`IdempotencyKeyReused`)."""
    if len(reason) > MAX_REASON:
        raise TextTooLong(("reason",), len(reason), MAX_REASON, "refund reasons")
    if not idempotency_key.strip() or len(idempotency_key) > MAX_KEY or not idempotency_key.isprintable():
        raise InvalidIdempotencyKey(f"refund idempotency keys are 1 to {MAX_KEY} printable characters")
    now = deps.clock()
    refund_id, request, reference, method_code = _record(
        deps, payment_id, amount, destination, reason, idempotency_key, now
    )
    result: PaymentResult | None = None
    if destination is RefundDestination.METHOD:
        method = deps.payment_methods[method_code]
        assert reference is not None
        key = payflow.payment_key("refund", f"refund:{refund_id}")
        money = _refund_money(deps, refund_id)
        result = payflow.ask(
            method,
            request,
            "refund",
            lambda: method.refund(request, reference, money, key, payflow.ledger_for(deps, request)),
        )
    return _apply(deps, refund_id, result, deps.clock())


def _record(
    deps: Deps,
    payment_id: str,
    amount: Decimal | None,
    destination: RefundDestination,
    reason: str,
    key: str,
    now: datetime,
) -> tuple[str, ChargeRequest, str | None, str]:
    with deps.write_sessions.begin() as session:
        workspace_id = session.scalar(select(Payment.workspace_id).where(Payment.id == payment_id))
        if workspace_id is None:
            raise PaymentRefused(ErrorCode.UNKNOWN_PAYMENT, f"no payment {payment_id!r}", ("payment_id",))
        workspace = lock_workspace(session, workspace_id)
        payment = session.get(Payment, payment_id, populate_existing=True)
        assert workspace is not None and payment is not None
        existing = session.scalar(
            select(Refund).where(Refund.payment_id == payment_id, Refund.idempotency_key == key[:64])
        )
        if existing is not None:
            first = Money.from_minor_units(existing.amount_minor, existing.currency)
            if existing.destination != destination or (amount is not None and amount != first.amount):
                raise IdempotencyKeyReused(
                    f"the key {key!r} was used for another refund: {first} to {existing.destination}"
                )
            return existing.id, payflow.request_of(payment), payment.reference, payment.method
        if payment.status != PaymentStatus.SUCCEEDED or payment.refund_due:
            raise PaymentRefused(
                ErrorCode.PAYMENT_NOT_REFUNDABLE,
                f"payment {payment_id} is {payment.status}; only a succeeded payment can be refunded",
                ("payment_id",),
            )
        if destination is RefundDestination.METHOD:
            method = deps.payment_methods.get(payment.method)
            if method is None or Capability.REFUND not in method.capabilities or payment.reference is None:
                raise PaymentRefused(
                    ErrorCode.PAYMENT_NOT_REFUNDABLE,
                    f"the {payment.method} payment method cannot refund; refund to the balance instead",
                    ("destination",),
                )
        left = Money.from_minor_units(
            max(payment.amount_minor - _committed(session, payment_id), 0), payment.currency
        )
        minor = _requested(amount, left)
        refund = Refund(
            id=secrets.token_hex(16),
            workspace_id=workspace_id,
            payment_id=payment_id,
            idempotency_key=key[:64],
            amount_minor=minor,
            currency=payment.currency,
            destination=destination,
            status=RefundStatus.PENDING,
            reason=(reason or "refund")[:200],
            reference=None,
            failure_message=None,
            credit_note_id=None,
            created_at=now,
            updated_at=now,
        )
        session.add(refund)
        return refund.id, payflow.request_of(payment), payment.reference, payment.method


def _requested(amount: Decimal | None, left: Money) -> int:
    """Minor units of the amount asked for (all that is ``left`` when None)."""
    if amount is not None and (not amount.is_finite() or amount <= 0):
        raise PaymentRefused(ErrorCode.INVALID_AMOUNT, "the amount must be positive", ("amount",))
    if not left or (amount is not None and amount > left.amount):
        raise RefundExceedsPayment(left)
    if amount is None:
        return left.minor_units
    try:
        return Money(amount, left.currency).minor_units
    except ValueError:  # more decimals than the currency has
        raise PaymentRefused(
            ErrorCode.INVALID_AMOUNT, "the amount must be rounded to the minor unit", ("amount",)
        ) from None


def _committed(session: Session, payment_id: str) -> int:
    """Minor units of the payment's refunds that succeeded or may still succeed."""
    total = session.scalar(
        select(func.coalesce(func.sum(Refund.amount_minor), 0)).where(
            Refund.payment_id == payment_id, Refund.status != RefundStatus.FAILED
        )
    )
    return int(total or 0)


def _refund_money(deps: Deps, refund_id: str) -> Money:
    with deps.sessions() as session:
        refund = session.get(Refund, refund_id)
        assert refund is not None
        return Money.from_minor_units(refund.amount_minor, refund.currency)


def _apply(deps: Deps, refund_id: str, result: PaymentResult | None, now: datetime) -> RefundOutcome:
    with deps.write_sessions.begin() as session:
        workspace_id = session.scalar(select(Refund.workspace_id).where(Refund.id == refund_id))
        workspace = lock_workspace(session, str(workspace_id))
        refund = session.get(Refund, refund_id, populate_existing=True)
        assert workspace is not None and refund is not None
        payment = session.get(Payment, refund.payment_id, populate_existing=True)
        assert payment is not None
        amount = Money.from_minor_units(refund.amount_minor, refund.currency)
        if refund.status == RefundStatus.PENDING:
            if refund.destination == RefundDestination.BALANCE:
                entry = SqlLedger(session, workspace, now).append(
                    LedgerEntryKind.REFUND, amount, refund.id, f"Refund of payment {payment.id}"
                )
                _succeeded(session, workspace, payment, refund, entry, now)
            elif result is not None and result.status is PaymentStatus.SUCCEEDED:
                _succeeded(session, workspace, payment, refund, result.reference, now)
            elif result is not None:
                refund.status = RefundStatus.FAILED
                refund.failure_message = (result.message or "the payment method refused the refund")[:200]
                refund.updated_at = now
                emit(
                    session,
                    workspace,
                    EventType.REFUND_FAILED,
                    {
                        "refund_id": refund.id,
                        "payment_id": payment.id,
                        "amount": str(amount.amount),
                        "currency": amount.currency,
                        "message": refund.failure_message,
                    },
                    now,
                )
        credit_note = session.get(Invoice, refund.credit_note_id) if refund.credit_note_id else None
        return RefundOutcome(
            refund.id,
            payment.id,
            amount,
            refund.destination,
            refund.status,
            credit_note.number if credit_note else None,
            refund.failure_message,
            credit_note.id if credit_note else None,
        )


def _succeeded(
    session: Session,
    workspace: Workspace,
    payment: Payment,
    refund: Refund,
    reference: str | None,
    now: datetime,
) -> None:
    refund.status = RefundStatus.SUCCEEDED
    refund.reference = (reference or "")[:128] or None
    refund.updated_at = now
    session.flush()
    full = _committed(session, payment.id) >= payment.amount_minor
    if full:
        payment.status = PaymentStatus.REFUNDED
        payment.refund_reference = refund.reference
        payment.updated_at = now
    credit_note = _credit_note(session, payment, refund, now)
    refund.credit_note_id = credit_note.id if credit_note else None
    amount = Money.from_minor_units(refund.amount_minor, refund.currency)
    emit(
        session,
        workspace,
        EventType.PAYMENT_REFUNDED,
        {
            **payflow.payment_payload(payment),
            "refund_reference": refund.reference,
            "refund_id": refund.id,
            "refunded": str(amount.amount),
            "destination": refund.destination,
            "full": full,
            "credit_note_id": credit_note.id if credit_note else None,
            "credit_note_number": credit_note.number if credit_note else None,
        },
        now,
    )


def _credit_note(session: Session, payment: Payment, refund: Refund, now: datetime) -> Invoice | None:
    """The credit note for ``refund``: the part of the paid invoice given back, its tax in the
    invoice's proportion. None when the payment had no invoice (a top-up)."""
    invoice = session.scalar(
        select(Invoice).where(Invoice.payment_id == payment.id, Invoice.kind != InvoiceKind.CREDIT_NOTE)
    )
    if invoice is None:
        return None
    total = refund.amount_minor
    tax = (
        (total * invoice.tax_minor * 2 + invoice.total_minor) // (invoice.total_minor * 2)
        if invoice.total_minor
        else 0
    )
    net = total - tax
    currency = invoice.currency

    def amount(minor: int) -> str:
        return str(Money.from_minor_units(minor, currency).amount)

    remaining_tax = tax
    tax_lines = []
    for index, line in enumerate(invoice.tax_lines):
        share = remaining_tax if index == len(invoice.tax_lines) - 1 else 0
        remaining_tax -= share
        tax_lines.append({**line, "base": amount(-net), "amount": amount(-share)})
    series = credit_series((invoice.seller or {}).get("invoice_series", "INV"))
    note = Invoice(
        id=secrets.token_hex(16),
        number=next_number(session, series, now),
        workspace_id=invoice.workspace_id,
        kind=InvoiceKind.CREDIT_NOTE,
        status=InvoiceStatus.PAID,
        issued_at=now,
        currency=currency,
        subtotal_minor=-net,
        tax_minor=-tax,
        total_minor=-total,
        lines=[
            {
                "kind": LineKind.REFUND.value,
                "description": f"Credit for invoice {invoice.number}: {refund.reason}"[:200],
                "quantity": 1,
                "unit_price": None,
                "amount": amount(-net),
            }
        ],
        tax_lines=tax_lines,
        billing=invoice.billing,
        seller=invoice.seller,
        payment_id=None,
        period_start=invoice.period_start,
        period_end=invoice.period_end,
        attempts=0,
        hard_declined=False,
        credited_invoice_id=invoice.id,
    )
    session.add(note)
    return note
