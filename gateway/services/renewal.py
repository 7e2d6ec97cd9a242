"""Renewal: what happens at each period boundary, and cancelling a scheduled change.

For every workspace whose period has ended, one period at a time, each in a transaction
of its own holding the workspace's lock:

1. A ``Renewal`` row for the new period start is inserted first. It exists once per
   workspace and period, so renewing a period twice (a second run, another replica,
   a usage request that renewed it on its way) does nothing the second time.
2. The scheduled change, if it takes effect by the boundary, is applied
   (``plan_change.applied``) and removed.
3. The period rolls forward from the anchor (``add_months(anchor, n)``, never from the
   previous end, so a period anchored on the 31st comes back to the 31st).
4. Credits reset: usage is counted per period start, so the new period starts from
   zero and unused credits do not roll over (``credits.reset``).
5. A paid plan is invoiced (open) for the configuration now in force, with the VAT in
   force on the renewal date, and its payment is recorded as pending, to be paid by
   ``workspace.renewal_payment`` (any method that can charge off-session: ``"balance"``,
   ``"card:<saved card id>"``, a partner's method code; without one, the prepaid balance).
   The transaction commits, the method is asked outside it, and the answer settles the
   invoice in another (:mod:`gateway.services.settlement`). Success: the invoice is paid,
   ``renewal.completed``. Failure (declined, the balance too low, no payment method,
   incomplete billing details): the workspace is ``past_due``, the open invoice records
   what is owed, ``renewal.failed`` says why, and no money moved. A payment whose answer is
   unknown (a crash, a timeout) or that settles later keeps the invoice open until the
   reconciliation run settles it. The period still rolls and the credits still reset:
   the customer keeps service while the debt is chased (dunning), and nothing is lost
   because the open invoice keeps the amount.

   A saved VAT ID that the tax calculator now refuses does not stop the renewal: it is
   taxed as the customer is without the ID (never untaxed) and ``tax.vat_id_rejected``
   says why, before the payment is asked for.

   Free plans roll and reset (``credits.reset``) and are never charged or invoiced.

A workspace that is past due stays so while it has open invoices: a later renewal
that succeeds is paid and invoiced, but does not settle older open invoices (settling
them, and retrying failed renewals, is left for a dunning process to come).

Renewals run from ``billing-gateway renew`` and from the server's periodic task
(``BILLING_GATEWAY_RENEWAL_INTERVAL``). ``now`` is always passed in, so tests drive
the clock.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.core import pricing
from gateway.core.errors import NoScheduledChange
from gateway.core.money import Money
from gateway.core.periods import period_containing
from gateway.core.statuses import (
    InvoiceKind,
    InvoiceStatus,
    PaymentPurpose,
    PaymentStatus,
    RenewalRecordStatus,
)
from gateway.core.tax import InvalidTaxId, TaxCustomer
from gateway.events.outbox import EventType, config_payload, emit
from gateway.plugin_api.payments import Capability, ChargeRequest, PaymentMethod, StoredCard
from gateway.services import billing_details, payflow, price_changes, settlement
from gateway.services.cards import parse_renewal_choice
from gateway.services.charging import stored_card
from gateway.services.deps import Deps
from gateway.services.invoices import create_invoice
from gateway.services.workspaces import emit_credits_reset
from gateway.storage.db import BillingDetails, Card, Payment, Renewal, ScheduledChange, Workspace
from gateway.storage.locks import lock_workspace

logger = logging.getLogger("gateway.renewal")  # logger names are stable: operators filter on them


class RenewalStatus(enum.Enum):
    RENEWED = "renewed"  # a paid plan, paid
    FREE = "free"  # a free plan: rolled and reset, nothing charged
    PAYMENT_FAILED = "payment_failed"  # rolled and reset, past due, an open invoice
    PAYMENT_PENDING = "payment_pending"  # rolled and reset; the invoice is open until the payment settles
    ALREADY_RENEWED = "already_renewed"  # the period's Renewal row exists: nothing done
    ERROR = "error"  # an unexpected error: that period's transaction was rolled back


class FailureReason(enum.Enum):
    """Why a renewal was not paid, besides a payment method's own failure codes
    (``card_declined``, ``insufficient_balance``, ...)."""

    NO_PAYMENT_METHOD = "no_payment_method"  # none chosen, or the saved card was removed
    PAYMENT_METHOD_UNAVAILABLE = "payment_method_unavailable"  # its plugin is not loaded
    BILLING_DETAILS_INCOMPLETE = "billing_details_incomplete"
    AUTHENTICATION_REQUIRED = "authentication_required"  # 3-D Secure: impossible with the customer away


@dataclass(frozen=True)
class RenewalResult:
    workspace_id: str
    status: RenewalStatus
    period_start: datetime | None = None  # the new period
    period_end: datetime | None = None
    plan_code: str | None = None
    amount: Money | None = None  # charged (RENEWED) or owed (PAYMENT_FAILED)
    invoice_id: str | None = None
    invoice_number: str | None = None
    reason: str | None = None  # PAYMENT_FAILED: a FailureReason or payment failure code
    message: str | None = None
    applied_change: bool = False

    def describe(self) -> str:
        """One line for the operator."""
        if self.status is RenewalStatus.ERROR:
            return f"{self.workspace_id}: error: {self.message}"
        period = (
            f"{self.period_start:%Y-%m-%d %H:%M} to {self.period_end:%Y-%m-%d %H:%M}"
            if self.period_start and self.period_end
            else ""
        )
        change = ", scheduled change applied" if self.applied_change else ""
        if self.status is RenewalStatus.RENEWED:
            return (
                f"{self.workspace_id}: renewed {self.plan_code} for {period}{change}: "
                f"charged {self.amount}, invoice {self.invoice_number}"
            )
        if self.status is RenewalStatus.FREE:
            return (
                f"{self.workspace_id}: renewed {self.plan_code} for {period}{change}: credits reset, "
                "nothing charged"
            )
        if self.status is RenewalStatus.PAYMENT_PENDING:
            return (
                f"{self.workspace_id}: renewal for {period}{change}: payment of {self.amount} pending, "
                f"invoice {self.invoice_number} open until it settles"
            )
        if self.status is RenewalStatus.PAYMENT_FAILED:
            return (
                f"{self.workspace_id}: renewal for {period}{change} NOT PAID "
                f"({self.reason}: {self.message}); past due, open invoice {self.invoice_number} "
                f"for {self.amount}"
            )
        return f"{self.workspace_id}: period starting {self.period_start:%Y-%m-%d %H:%M} was already renewed"


# ------------------------------------------------------------------ running


def renew_due(deps: Deps, now: datetime) -> list[RenewalResult]:
    """Renew every workspace whose period ended at or before ``now``.

    One workspace's failure never stops the others: an unexpected error is logged and
    reported as an ERROR result, and that period is retried on the next run.
    """
    with deps.sessions() as session:
        due = list(
            session.scalars(
                select(Workspace.id)
                .where(Workspace.period_end <= now)
                .order_by(Workspace.period_end, Workspace.id)
            )
        )
    results: list[RenewalResult] = []
    for workspace_id in due:
        results.extend(renew_workspace(deps, workspace_id, now))
    return results


def renew_workspace(deps: Deps, workspace_id: str, now: datetime) -> list[RenewalResult]:
    """Renew one workspace period by period until its period contains ``now``.

    Each period is claimed, rolled and invoiced in one transaction, which also records the
    renewal's payment as pending; the payment method is asked after it commits, and its
    answer settles the invoice in another (see :mod:`gateway.services.settlement`).
    """
    results: list[RenewalResult] = []
    while True:
        try:
            with deps.write_sessions.begin() as session:
                workspace = lock_workspace(session, workspace_id)
                if workspace is None or workspace.period_end > now:
                    break  # nothing (more) to do, or another process renewed it first
                step = _renew_period(deps, session, workspace, now)
            result = _charge(deps, step) if isinstance(step, _Charge) else step
        except Exception as error:  # logged with its traceback; the period is retried next run
            logger.exception("renewal of workspace %s failed", workspace_id)
            results.append(
                RenewalResult(workspace_id, RenewalStatus.ERROR, message=f"{type(error).__name__}: {error}")
            )
            break
        results.append(result)
        if result.status is RenewalStatus.ALREADY_RENEWED:
            logger.warning(
                "workspace %s: period starting %s was already renewed but its period did not "
                "move on; left as it is",
                workspace_id,
                result.period_start,
            )
            break
    return results


@dataclass(frozen=True)
class _Charge:
    """A renewal whose payment is recorded and must now be asked for, outside the transaction."""

    method: PaymentMethod
    request: ChargeRequest
    invoice_number: str
    result: dict[str, Any]


def _charge(deps: Deps, step: _Charge) -> RenewalResult:
    payment_id = step.request.payment_id
    settlement.charge_and_settle(deps, step.method, step.request)
    with deps.sessions() as session:
        payment = session.get(Payment, payment_id)
        assert payment is not None
        status, failure, message = payment.status, payment.failure_code, payment.failure_message
    common = {
        "amount": step.request.amount,
        "invoice_id": step.result.pop("invoice_id"),
        "invoice_number": step.invoice_number,
        **step.result,
    }
    if status == PaymentStatus.SUCCEEDED:
        return RenewalResult(status=RenewalStatus.RENEWED, **common)
    if status in (PaymentStatus.FAILED, PaymentStatus.EXPIRED):
        return RenewalResult(status=RenewalStatus.PAYMENT_FAILED, reason=failure, message=message, **common)
    return RenewalResult(
        status=RenewalStatus.PAYMENT_PENDING,
        message="the payment is pending; the invoice is paid once it succeeds",
        **common,
    )


def _renew_period(
    deps: Deps, session: Session, workspace: Workspace, now: datetime
) -> RenewalResult | _Charge:
    boundary = workspace.period_end
    if session.get(Renewal, (workspace.id, boundary)) is not None:
        return RenewalResult(workspace.id, RenewalStatus.ALREADY_RENEWED, period_start=boundary)
    renewal = Renewal(
        workspace_id=workspace.id,
        period_start=boundary,
        status=RenewalRecordStatus.RENEWING,
        invoice_id=None,
        created_at=now,
    )
    session.add(renewal)
    session.flush()  # claims the period: a concurrent insert fails here instead of renewing twice

    applied = _apply_scheduled_change(deps, session, workspace, boundary, now)
    price_changes.apply_at_renewal(deps, session, workspace, boundary, now)
    workspace.period_start = boundary
    workspace.period_end = period_containing(workspace.period_anchor, boundary)[1]
    emit_credits_reset(session, workspace, now)

    plan = deps.catalog.plan_version(workspace.plan_code, workspace.price_version)
    if plan is None:
        raise LookupError(
            f"workspace {workspace.id} is on plan {workspace.plan_code!r} at price version "
            f"{workspace.price_version!r}, which the catalog no longer has"
        )
    result: dict[str, Any] = {
        "workspace_id": workspace.id,
        "period_start": workspace.period_start,
        "period_end": workspace.period_end,
        "plan_code": plan.code,
        "applied_change": applied,
    }
    if plan.is_free:
        renewal.status = RenewalRecordStatus.FREE
        return RenewalResult(status=RenewalStatus.FREE, **result)
    config = pricing.Configuration(plan, workspace.email_credits, workspace.messaging_credits)
    return _charge_renewal(deps, session, workspace, renewal, config, now, result)


def _apply_scheduled_change(
    deps: Deps, session: Session, workspace: Workspace, boundary: datetime, now: datetime
) -> bool:
    change = session.get(ScheduledChange, workspace.id, with_for_update=True)
    if change is None or change.effective_at > boundary:
        return False
    if price_changes.scheduled_plan(deps.catalog, change) is None:
        logger.error(
            "workspace %s: the scheduled change to plan %r at price version %r cannot apply, the "
            "catalog no longer has it; kept for an operator",
            workspace.id,
            change.plan_code,
            change.price_version,
        )
        return False
    before = config_payload(workspace.plan_code, workspace.email_credits, workspace.messaging_credits)
    workspace.plan_code = change.plan_code
    workspace.price_version = change.price_version
    workspace.email_credits, workspace.messaging_credits = change.email_credits, change.messaging_credits
    emit(
        session,
        workspace,
        EventType.PLAN_CHANGE_APPLIED,
        {
            "from": before,
            "to": config_payload(change.plan_code, change.email_credits, change.messaging_credits),
            "effective_at": boundary.isoformat(),
            "reason": "renewal",
        },
        now,
    )
    session.delete(change)
    return True


def price_renewal(
    deps: Deps, config: pricing.Configuration, customer: TaxCustomer | None, on: datetime
) -> tuple[pricing.Charge, InvalidTaxId | None]:
    """What renewing ``config`` costs on ``on``, with the tax in force then for ``customer``.

    A VAT ID that checked out when it was saved may be refused now (a stricter tax plugin,
    a checksum rule it did not apply before): the renewal is then taxed as the customer is
    without that ID, never left untaxed (under tax_vat a company without a valid VAT ID pays
    its country's VAT, like a consumer: no reverse charge), and the refusal comes with the
    charge so that renewal can say why (``tax.vat_id_rejected``). Used by renewal itself and
    by the Billing page's preview of a scheduled change, so both show one price.
    """
    try:
        charge = pricing.renewal_charge(
            config, customer=customer, tax=deps.tax, seller_country=deps.seller_country, on=on
        )
    except InvalidTaxId as error:
        assert customer is not None, "only a customer's tax ID can be refused"
        without_id = replace(customer, tax_id=None)
        charge = pricing.renewal_charge(
            config, customer=without_id, tax=deps.tax, seller_country=deps.seller_country, on=on
        )
        return charge, error
    return charge, None


def _charge_renewal(
    deps: Deps,
    session: Session,
    workspace: Workspace,
    renewal: Renewal,
    config: pricing.Configuration,
    now: datetime,
    result: dict[str, Any],
) -> RenewalResult | _Charge:
    """Invoice the new period (open until paid) and record its payment as pending; or, when
    it cannot be charged at all, leave the workspace past due with the open invoice."""
    period_start, period_end = workspace.period_start, workspace.period_end
    details = session.get(BillingDetails, workspace.id)
    complete = not billing_details.missing_fields(details)
    customer = billing_details.tax_customer(details) if complete else None
    failure: RenewalFailure | None = None
    charge, refused = price_renewal(deps, config, customer, period_start)
    if not complete:
        missing = ", ".join(billing_details.missing_fields(details))
        failure = RenewalFailure(
            FailureReason.BILLING_DETAILS_INCOMPLETE.value, f"billing details are incomplete: {missing}"
        )
    amount = charge.total
    payer = renewal_payer(deps, session, workspace) if failure is None and amount else None
    if isinstance(payer, RenewalFailure):
        failure, payer = payer, None
    invoice = create_invoice(
        session,
        workspace_id=workspace.id,
        kind=InvoiceKind.RENEWAL,
        status=InvoiceStatus.PAID if failure is None and payer is None else InvoiceStatus.OPEN,
        charge=charge,
        billing=billing_details.snapshot(details) if details is not None else {},
        seller=deps.seller,
        payment_id=None,
        now=now,
        period_start=period_start,
        period_end=period_end,
    )
    renewal.invoice_id = invoice.id
    if refused is not None and customer is not None:  # the refusal says why it was taxed so
        emit(
            session,
            workspace,
            EventType.TAX_VAT_ID_REJECTED,
            {
                "vat_id": refused.tax_id,
                "reason": refused.reason,
                "customer_type": customer.kind.value,
                "country": customer.country,
                "context": "renewal",
                "invoice_id": invoice.id,
                "invoice_number": invoice.number,
                "tax": str(charge.tax.amount),
                "currency": charge.tax.currency,
            },
            now,
        )
    payload = {
        "period_start": period_start.isoformat(),
        "period_end": period_end.isoformat(),
        **config_payload(config.plan.code, config.email_credits, config.messaging_credits),
        "total": str(amount.amount),
        "currency": amount.currency,
        "tax_calculated": charge.tax_calculated,
        "invoice_id": invoice.id,
        "invoice_number": invoice.number,
    }
    if payer is not None:
        payment = payflow.begin(
            session,
            workspace,
            payer.method,
            amount,
            purpose=PaymentPurpose.RENEWAL,
            description=f"Renewal of {pricing.describe(config)}, {period_start:%Y-%m-%d} to "
            f"{period_end:%Y-%m-%d}",
            idempotency_key=renewal_key(workspace.id, period_start),
            now=now,
            card=payer.card,
            card_id=payer.card_id,
            follow_up={
                "renewal": {
                    "invoice_id": invoice.id,
                    "period_start": period_start.isoformat(),
                    "payload": payload,
                }
            },
        )
        return _Charge(
            payer.method, payflow.request_of(payment), invoice.number, {**result, "invoice_id": invoice.id}
        )
    payload = {**payload, "payment_id": None, "payment_method": None}
    if failure is None:  # nothing to pay
        settlement.finish_renewal(session, workspace, renewal, invoice, payload, now)
        return RenewalResult(
            status=RenewalStatus.RENEWED,
            amount=amount,
            invoice_id=invoice.id,
            invoice_number=invoice.number,
            **result,
        )
    settlement.finish_renewal(
        session,
        workspace,
        renewal,
        invoice,
        payload,
        now,
        failure=(failure.reason, failure.message),
        dunning=(deps.dunning_schedule, workspace.renewal_payment, False),
    )
    return RenewalResult(
        status=RenewalStatus.PAYMENT_FAILED,
        amount=amount,
        invoice_id=invoice.id,
        invoice_number=invoice.number,
        reason=failure.reason,
        message=failure.message,
        **result,
    )


@dataclass(frozen=True)
class RenewalFailure:
    reason: str  # a FailureReason value or a payment method's failure code
    message: str


@dataclass(frozen=True)
class RenewalPayer:
    method: PaymentMethod
    card: StoredCard | None = None
    card_id: str | None = None


def renewal_payer(deps: Deps, session: Session, workspace: Workspace) -> RenewalPayer | RenewalFailure:
    """The method (and saved card) that pays the renewal: ``workspace.renewal_payment``.

    A workspace that never chose one (it paid its checkout with a card it did not save, or
    by a method that cannot charge with the customer away) renews from its prepaid balance,
    the one method that needs nothing stored.
    """
    methods = deps.payment_methods
    choice = workspace.renewal_payment
    if choice is None:
        prepaid = sorted(
            code
            for code, method in methods.items()
            if {Capability.PREPAID_BALANCE, Capability.OFF_SESSION} <= method.capabilities
        )
        if not prepaid:
            return RenewalFailure(
                FailureReason.NO_PAYMENT_METHOD.value, "no payment method is chosen for renewals"
            )
        choice = prepaid[0]
    code, card_id = parse_renewal_choice(choice)
    method = methods.get(code)
    if method is None:
        return RenewalFailure(
            FailureReason.PAYMENT_METHOD_UNAVAILABLE.value, f"the {code} payment method is not installed"
        )
    if Capability.OFF_SESSION not in method.capabilities:
        return RenewalFailure(
            FailureReason.NO_PAYMENT_METHOD.value, f"{method.label} cannot charge with the customer away"
        )
    if Capability.CARDS not in method.capabilities:
        return RenewalPayer(method)
    card = session.get(Card, card_id) if card_id is not None else None
    if card is None or card.workspace_id != workspace.id or card.removed_at is not None:
        return RenewalFailure(
            FailureReason.NO_PAYMENT_METHOD.value, "the card chosen for renewals was removed"
        )
    return RenewalPayer(method, stored_card(card), card.id)


def renewal_key(workspace_id: str, period_start: datetime) -> str:
    """The payment's idempotency key: one per workspace and period, so a retried renewal
    can never charge twice. Compact (57 characters), as the balance method keeps it as the
    ledger entry's reference (64 characters at most)."""
    return f"renewal:{workspace_id}:{period_start.astimezone(UTC):%Y%m%dT%H%M%SZ}"


# ------------------------------------------------------------ scheduled change


@dataclass(frozen=True)
class CancelledChange:
    plan_code: str
    email_credits: int
    messaging_credits: int
    effective_at: datetime


def cancel_scheduled_change(deps: Deps, workspace_id: str, now: datetime) -> CancelledChange:
    """Remove the workspace's scheduled change (``plan_change.cancelled``), or raise
    :class:`NoScheduledChange` if it has none."""
    with deps.write_sessions.begin() as session:
        workspace = lock_workspace(session, workspace_id)
        assert workspace is not None, "authenticated workspaces exist"
        change = session.get(ScheduledChange, workspace_id, with_for_update=True)
        if change is None:
            raise NoScheduledChange()
        cancelled = CancelledChange(
            change.plan_code, change.email_credits, change.messaging_credits, change.effective_at
        )
        session.delete(change)
        emit(
            session,
            workspace,
            EventType.PLAN_CHANGE_CANCELLED,
            {
                **config_payload(change.plan_code, change.email_credits, change.messaging_credits),
                "effective_at": change.effective_at.isoformat(),
                "reason": "cancelled by the customer",
            },
            now,
        )
        return cancelled
