"""Invoices: gap-free numbers and an immutable record of what was charged."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.core.pricing import Charge, Line
from gateway.core.statuses import InvoiceStatus
from gateway.storage.counters import next_value
from gateway.storage.db import Invoice


def next_number(session: Session, now: datetime) -> str:
    """The next invoice number of the year, e.g. INV-2026-000042.

    The counter row stays locked until the transaction ends, so numbers are
    gap-free and never issued twice, also across replicas.
    """
    value = next_value(session, f"invoice:{now.year}")
    return f"INV-{now.year}-{value:06d}"


def _line(line: Line) -> dict[str, Any]:
    return {
        "kind": line.kind.value,
        "description": line.description,
        "quantity": line.quantity,
        "unit_price": str(line.unit_price.amount) if line.unit_price is not None else None,
        "amount": str(line.amount.amount),
    }


def create_invoice(
    session: Session,
    *,
    workspace_id: str,
    kind: str,
    status: str,
    charge: Charge,
    billing: dict[str, Any],
    payment_id: str | None,
    now: datetime,
    period_start: datetime | None,
    period_end: datetime | None,
) -> Invoice:
    currency = charge.total.currency
    invoice = Invoice(
        id=secrets.token_hex(16),
        number=next_number(session, now),
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
        payment_id=payment_id,
        period_start=period_start,
        period_end=period_end,
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
