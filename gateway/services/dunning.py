"""Collecting open invoices: the customer pays one (``payInvoice``), failed renewals are
retried on a schedule, and a workspace past due beyond the grace is suspended.

Every failed attempt to collect an invoice (the renewal's own payment, then each retry) is
counted on the invoice and emits ``invoice.payment_failed``: the event an integrator uses to
ask the customer for another payment method, from the first failure on. Retries are due
``BILLING_GATEWAY_DUNNING_SCHEDULE`` days after the first failure (1, 3, 5 and 7 by default),
charged off-session to the workspace's renewal method; a hard decline (an expired, lost or
stolen card, a closed account, a card that needs the customer present) is not retried on the
same method, but as soon as the renewal method changes the next run tries the new one.
``BILLING_GATEWAY_DUNNING_GRACE_DAYS`` after the first failure (14 by default) a workspace
still past due is suspended (``workspace.suspended``): usage and checkouts are refused; reading,
billing details, cards, top-ups and paying invoices still work. Paying every open invoice makes
it active again (``workspace.reactivated``).

Each retry is a payment like any other (:mod:`gateway.services.payflow`): recorded as pending
with a key per invoice and attempt, so concurrent runs (two replicas, the CLI beside the
server) never charge one attempt twice; the invoice's state changes under the workspace's lock.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select

from gateway.core.errors import (
    ErrorCode,
    PaymentActionRequired,
    PaymentDeclined,
    PaymentPending,
    PaymentRefused,
)
from gateway.core.money import Money
from gateway.core.statuses import InvoiceStatus, PaymentPurpose, WorkspaceStatus
from gateway.events.outbox import EventType, emit
from gateway.plugin_api.payments import StoredCard
from gateway.services import payflow, settlement
from gateway.services.cards import PaymentChoice, renewal_choice, tokenize
from gateway.services.checkout import begin_customer_payment
from gateway.services.deps import Deps
from gateway.services.invoices import record_collection_failure
from gateway.services.renewal import RenewalFailure, renewal_payer
from gateway.services.settlement import InvoicePaid
from gateway.storage import idempotency
from gateway.storage.db import Invoice, Workspace
from gateway.storage.locks import lock_workspace

logger = logging.getLogger("gateway.dunning")

PayInvoiceOutcome = InvoicePaid | PaymentDeclined | PaymentActionRequired | PaymentPending | PaymentRefused
_STORED = (InvoicePaid, PaymentDeclined, PaymentActionRequired, PaymentPending, PaymentRefused)


# ------------------------------------------------------------------ the customer pays


def pay_invoice(
    deps: Deps, workspace_id: str, invoice_id: str, payment: PaymentChoice, idempotency_key: str
) -> PayInvoiceOutcome:
    """Pay one of the workspace's open invoices with any payment method. Idempotent per key."""
    idempotency.check_key(idempotency_key)
    now = deps.clock()
    token = tokenize(deps, deps.payment_methods.get(payment.method), payment, now.date())
    outcome: PayInvoiceOutcome = idempotency.run_once(
        deps.write_sessions,
        workspace_id,
        idempotency_key,
        "pay_invoice",
        {"invoice": invoice_id, "payment": payment.fingerprint(token)},
        now,
        lambda: _pay_invoice(deps, workspace_id, invoice_id, payment, token, idempotency_key, now),
        lambda outcome: {"type": "payment", "payment_id": outcome.payment_id},
        lambda response: settlement.read_outcome(deps, response["payment_id"], wait=idempotency.WAIT_SECONDS),
        _STORED,
    )
    return outcome


def _pay_invoice(
    deps: Deps,
    workspace_id: str,
    invoice_id: str,
    choice: PaymentChoice,
    token: StoredCard | None,
    key: str,
    now: datetime,
) -> PayInvoiceOutcome:
    method = deps.payment_methods.get(choice.method)
    if method is None:
        raise PaymentRefused(
            ErrorCode.UNKNOWN_PAYMENT_METHOD,
            f"no payment method {choice.method!r}",
            ("payment_method", "method"),
        )
    with deps.write_sessions.begin() as session:
        workspace = lock_workspace(session, workspace_id)
        assert workspace is not None
        invoice = session.get(Invoice, invoice_id)
        if invoice is None or invoice.workspace_id != workspace_id:
            raise PaymentRefused(ErrorCode.UNKNOWN_INVOICE, f"no invoice {invoice_id!r}", ("invoice_id",))
        if invoice.status != InvoiceStatus.OPEN:
            raise PaymentRefused(
                ErrorCode.INVOICE_NOT_OPEN, f"invoice {invoice.number} is {invoice.status}", ("invoice_id",)
            )
        payment = begin_customer_payment(
            session,
            workspace,
            method,
            Money.from_minor_units(invoice.total_minor, invoice.currency),
            choice,
            token,
            purpose=PaymentPurpose.INVOICE,
            description=f"Invoice {invoice.number}",
            client_key=key,
            now=now,
            follow_up={"invoice_id": invoice.id},
        )
        request = payflow.request_of(payment)
    outcome = settlement.charge_and_settle(deps, method, request)
    assert isinstance(outcome, _STORED), f"an invoice's payment ends as an invoice outcome, not {outcome!r}"
    return outcome


# ------------------------------------------------------------------ retries and suspension


@dataclass(frozen=True)
class DunningStep:
    workspace_id: str
    invoice_id: str | None
    action: str  # "retried", "suspended"
    outcome: str

    def describe(self) -> str:
        what = f"invoice {self.invoice_id}" if self.invoice_id else "workspace"
        return f"{self.workspace_id}: {what}: {self.action}: {self.outcome}"


def run_dunning(deps: Deps, now: datetime, limit: int = 500) -> list[DunningStep]:
    """Retry the open invoices that are due, then suspend the workspaces past due beyond the
    grace. One invoice's trouble never stops the others; a second run at the same time does
    nothing twice."""
    steps: list[DunningStep] = []
    with deps.sessions() as session:
        due = list(
            session.execute(
                select(Invoice.id, Invoice.workspace_id)
                .join(Workspace, Workspace.id == Invoice.workspace_id)
                .where(Invoice.status == InvoiceStatus.OPEN, _retry_due(now))
                .order_by(Invoice.issued_at, Invoice.id)
                .limit(limit)
            ).all()
        )
    for invoice_id, workspace_id in due:
        try:
            step = _retry(deps, workspace_id, invoice_id, now)
        except Exception:  # logged with its traceback; tried again on the next run
            logger.exception("dunning retry of invoice %s failed", invoice_id)
            continue
        if step is not None:
            steps.append(step)
    cutoff = now - deps.dunning_grace
    with deps.sessions() as session:
        overdue = list(
            session.scalars(
                select(Workspace.id)
                .join(Invoice, Invoice.workspace_id == Workspace.id)
                .where(
                    Workspace.status == WorkspaceStatus.PAST_DUE,
                    Invoice.status == InvoiceStatus.OPEN,
                    Invoice.first_failed_at <= cutoff,
                )
                .distinct()
                .limit(limit)
            )
        )
    for workspace_id in overdue:
        if (step := _suspend(deps, workspace_id, cutoff, now)) is not None:
            steps.append(step)
    return steps


def _retry_due(now: datetime) -> Any:
    """Due: its retry time has come; or a hard decline whose renewal method changed since."""
    changed = or_(Invoice.dunning_method.is_(None), Workspace.renewal_payment != Invoice.dunning_method)
    return or_(
        Invoice.next_retry_at <= now,
        and_(Invoice.hard_declined.is_(True), Invoice.next_retry_at.is_(None), changed),
    )


def _retry(deps: Deps, workspace_id: str, invoice_id: str, now: datetime) -> DunningStep | None:
    with deps.write_sessions.begin() as session:
        workspace = lock_workspace(session, workspace_id)
        invoice = session.get(Invoice, invoice_id, populate_existing=True)
        assert workspace is not None and invoice is not None
        still_due = session.scalar(
            select(func.count())
            .select_from(Invoice)
            .join(Workspace, Workspace.id == Invoice.workspace_id)
            .where(Invoice.id == invoice_id, Invoice.status == InvoiceStatus.OPEN, _retry_due(now))
        )
        if not still_due:
            return None  # another run took it, or it was paid
        payer = renewal_payer(deps, session, workspace)
        if isinstance(payer, RenewalFailure):  # no method can be charged: count it and wait for one
            record_collection_failure(
                session,
                workspace,
                invoice,
                reason=payer.reason,
                message=payer.message,
                method=workspace.renewal_payment,
                hard=False,
                schedule=deps.dunning_schedule,
                now=now,
            )
            return DunningStep(workspace_id, invoice_id, "retried", payer.reason)
        invoice.next_retry_at = None  # in flight: the answer schedules the next one
        invoice.hard_declined = False
        method = payer.method
        choice = renewal_choice(method.code, payer.card_id)
        payment = payflow.begin(
            session,
            workspace,
            method,
            Money.from_minor_units(invoice.total_minor, invoice.currency),
            purpose=PaymentPurpose.INVOICE,
            description=f"Invoice {invoice.number}, attempt {invoice.attempts + 1}",
            idempotency_key=f"dunning:{invoice.id}:{invoice.attempts}",
            now=now,
            card=payer.card,
            card_id=payer.card_id,
            follow_up={"invoice_id": invoice.id, "retry": True, "off_session": True, "method": choice},
        )
        request = payflow.request_of(payment)
    outcome = settlement.charge_and_settle(deps, method, request)
    return DunningStep(workspace_id, invoice_id, "retried", type(outcome).__name__)


def _suspend(deps: Deps, workspace_id: str, cutoff: datetime, now: datetime) -> DunningStep | None:
    with deps.write_sessions.begin() as session:
        workspace = lock_workspace(session, workspace_id)
        assert workspace is not None
        if workspace.status != WorkspaceStatus.PAST_DUE:
            return None  # paid meanwhile, or another run suspended it
        overdue = list(
            session.scalars(
                select(Invoice).where(
                    Invoice.workspace_id == workspace_id,
                    Invoice.status == InvoiceStatus.OPEN,
                    Invoice.first_failed_at <= cutoff,
                )
            )
        )
        if not overdue:
            return None
        workspace.status = WorkspaceStatus.SUSPENDED
        total = sum(invoice.total_minor for invoice in overdue)
        emit(
            session,
            workspace,
            EventType.WORKSPACE_SUSPENDED,
            {
                "invoice_ids": [invoice.id for invoice in overdue],
                "amount_due": str(Money.from_minor_units(total, overdue[0].currency).amount),
                "currency": overdue[0].currency,
                "past_due_since": min(i.first_failed_at for i in overdue if i.first_failed_at).isoformat(),
            },
            now,
        )
        return DunningStep(workspace_id, None, "suspended", f"{len(overdue)} open invoice(s)")
