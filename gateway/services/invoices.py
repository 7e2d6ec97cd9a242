"""Invoices: gap-free numbers and an immutable record of what was charged, by whom, to whom.

An invoice copies what it must show as it was on its date: the lines and tax lines, the
buyer's billing details and the seller's identity. Later changes to either change no invoice.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.core.money import Money
from gateway.core.numbering import counter_name, document_number
from gateway.core.pricing import Charge, Line
from gateway.core.seller import Seller
from gateway.core.statuses import InvoiceStatus, WorkspaceStatus
from gateway.events.outbox import EventType, emit
from gateway.storage.counters import next_value
from gateway.storage.db import Invoice, Workspace


def next_number(session: Session, series: str, now: datetime) -> str:
    """The next number of ``series`` in ``now``'s year, e.g. INV-2026-000042 (the format and
    the counter's name: :mod:`gateway.core.numbering`). Credit notes use the same with their
    own series.

    The counter row stays locked until the transaction ends, so numbers are
    gap-free and never issued twice, also across replicas; a rollback gives the number back.
    """
    return document_number(series, now.year, next_value(session, counter_name(series, now.year)))


def _line(line: Line) -> dict[str, Any]:
    return {
        "kind": line.kind.value,
        "description": line.description,
        "quantity": line.quantity,
        "unit_price": str(line.unit_price.amount) if line.unit_price is not None else None,
        "amount": str(line.amount.amount),
        "price_version": line.price_version,
    }


def create_invoice(
    session: Session,
    *,
    workspace_id: str,
    kind: str,
    status: str,
    charge: Charge,
    billing: dict[str, Any],
    seller: Seller,
    payment_id: str | None,
    now: datetime,
    period_start: datetime | None,
    period_end: datetime | None,
) -> Invoice:
    currency = charge.total.currency
    invoice = Invoice(
        id=secrets.token_hex(16),
        number=next_number(session, seller.invoice_series, now),
        workspace_id=workspace_id,
        kind=kind,
        status=status,
        issued_at=now,
        currency=currency,
        subtotal_minor=charge.subtotal.minor_units,
        tax_minor=charge.tax.minor_units,
        total_minor=charge.total.minor_units,
        lines=[_line(line) for line in charge.lines],
        tax_lines=[
            {
                "name": t.name,
                "jurisdiction": t.jurisdiction,
                "rate": str(t.rate),
                "base": str(t.base.amount),
                "amount": str(t.amount.amount),
                "treatment": t.treatment.value,
                "note": t.note,
            }
            for t in charge.tax_lines
        ],
        billing=billing,
        seller=seller.snapshot(),
        payment_id=payment_id,
        period_start=period_start,
        period_end=period_end,
        attempts=0,
        hard_declined=False,
    )
    session.add(invoice)
    return invoice


def open_invoices(session: Session, workspace_id: str) -> list[Invoice]:
    return list(
        session.scalars(
            select(Invoice)
            .where(Invoice.workspace_id == workspace_id, Invoice.status == InvoiceStatus.OPEN)
            .order_by(Invoice.issued_at)
        )
    )


# ------------------------------------------------------------------ collecting open invoices


def record_collection_failure(
    session: Session,
    workspace: Workspace,
    invoice: Invoice,
    *,
    reason: str,
    message: str,
    method: str | None,
    hard: bool,
    schedule: Sequence[timedelta],
    now: datetime,
) -> None:
    """An attempt to collect ``invoice`` failed (its renewal's payment, or a dunning retry):
    count it, schedule the next retry from the first failure (none after a hard decline, which
    waits for another method), and emit ``invoice.payment_failed`` — the event an integrator
    uses to ask the customer for another payment method, from the first failure on."""
    if invoice.first_failed_at is None:
        invoice.first_failed_at = now
    invoice.attempts += 1
    invoice.dunning_method = method
    invoice.hard_declined = hard
    retries_done = invoice.attempts - 1
    invoice.next_retry_at = (
        None if hard or retries_done >= len(schedule) else invoice.first_failed_at + schedule[retries_done]
    )
    emit(
        session,
        workspace,
        EventType.INVOICE_PAYMENT_FAILED,
        {
            "invoice_id": invoice.id,
            "invoice_number": invoice.number,
            "amount_due": str(Money.from_minor_units(invoice.total_minor, invoice.currency).amount),
            "currency": invoice.currency,
            "attempt": invoice.attempts,
            "reason": reason,
            "message": message,
            "payment_method": method,
            "hard_decline": hard,
            "next_retry_at": invoice.next_retry_at.isoformat() if invoice.next_retry_at else None,
        },
        now,
    )


def amount_due(session: Session, workspace_id: str) -> Money | None:
    """What the workspace's open invoices add up to, or None when none is open."""
    rows = open_invoices(session, workspace_id)
    if not rows:
        return None
    return Money.from_minor_units(sum(row.total_minor for row in rows), rows[0].currency)


def settle_workspace_status(session: Session, workspace: Workspace, now: datetime) -> None:
    """After an invoice was paid: a workspace with no open invoice left is active again
    (``workspace.reactivated`` if it was past due or suspended); one that still owes stays as it is."""
    session.flush()
    if open_invoices(session, workspace.id) or workspace.status == WorkspaceStatus.ACTIVE:
        return
    before = workspace.status
    workspace.status = WorkspaceStatus.ACTIVE
    emit(session, workspace, EventType.WORKSPACE_REACTIVATED, {"previous_status": before}, now)
