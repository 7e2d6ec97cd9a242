"""Orders for a workspace: pricing one (the one function behind quote, checkout and the
confirmation of a 3-D Secure payment, so all three see the same price and report the same
failures the same way) and applying one once it is paid (checkout, or its confirmation)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from gateway.core import pricing
from gateway.core.catalog import Plan
from gateway.core.errors import InvalidVatId, RenewalPending, UnknownPlan
from gateway.core.money import Money
from gateway.core.seller import Seller
from gateway.core.statuses import InvoiceKind, InvoiceStatus
from gateway.core.tax import InvalidTaxId, TaxCustomer
from gateway.events.outbox import EventType, config_payload, emit
from gateway.services import billing_details
from gateway.services.deps import Deps
from gateway.services.invoices import create_invoice
from gateway.services.workspaces import emit_credits_reset, subscription_of
from gateway.storage.db import BillingDetails, Payment, ScheduledChange, Workspace


@dataclass(frozen=True)
class OrderRequest:
    """A plan and its limits as the customer set them; a limit left out keeps the
    current one on the same plan, else the plan's default."""

    plan_code: str
    email_credits: int | None = None
    messaging_credits: int | None = None


def price_for_workspace(
    deps: Deps,
    workspace: Workspace,
    plan: Plan,
    order: OrderRequest,
    customer: TaxCustomer | None,
    now: datetime,
) -> pricing.PricedOrder:
    """The order for ``plan`` (the callers looked it up first with :func:`plan_to_buy`, so a
    mistyped plan is what a client hears first) priced against the workspace's subscription
    at ``now``.

    Raises :class:`RenewalPending` (the period ended and was not renewed yet: no honest
    effective date exists; or it was renewed after the request read its clock, on a replica whose
    clock is ahead: the same answer, retry), a pricing error for limits the plan does not offer, or
    :class:`InvalidVatId` when the tax calculator refuses the billing details' VAT ID.
    """
    subscription = subscription_of(workspace, deps.catalog, now)
    if not now < subscription.period_end:
        raise RenewalPending(subscription.period_end)
    if now < subscription.period_start:
        raise RenewalPending(
            subscription.period_start, "the period was renewed while this request ran; quote again"
        )
    if plan.code == subscription.configuration.plan.code:
        # Staying on the plan (new limits) keeps the price version the workspace bought: a
        # subscriber on an earlier price is not moved by customizing it (see price_changes).
        plan = subscription.configuration.plan
    target = pricing.configure(
        plan, deps.catalog, subscription.configuration, order.email_credits, order.messaging_credits
    )
    try:
        return pricing.price_order(
            subscription, target, now, customer=customer, tax=deps.tax, seller_country=deps.seller_country
        )
    except InvalidTaxId as error:
        raise InvalidVatId(error.tax_id, str(error), ("billing_details", "vat_id")) from None


def plan_to_buy(deps: Deps, plan_code: str, now: datetime) -> Plan:
    """The catalog's plan ``plan_code`` at the price on sale at ``now``, or :class:`UnknownPlan`:
    checked before anything else about an order, so a mistyped plan is what the client hears first."""
    plan = deps.catalog.plan_on(plan_code, now)
    if plan is None:
        raise UnknownPlan(plan_code)
    return plan


def balance_of(workspace: Workspace) -> Money:
    return Money.from_minor_units(workspace.balance_minor, workspace.currency)


# ------------------------------------------------------------ applying a paid order


def base_snapshot(workspace: Workspace) -> dict[str, Any]:
    return {
        **config_payload(workspace.plan_code, workspace.email_credits, workspace.messaging_credits),
        "period_start": workspace.period_start.isoformat(),
    }


def order_snapshot(order: pricing.PricedOrder) -> dict[str, Any]:
    """Enough of a priced order to apply it later exactly as it was paid (3-D Secure)."""
    return {
        "kind": order.kind.value,
        "changes": [
            {
                "timing": c.timing.value,
                "effective_at": c.effective_at.isoformat(),
                **config_payload(
                    c.configuration.plan.code,
                    c.configuration.email_credits,
                    c.configuration.messaging_credits,
                ),
            }
            for c in order.changes
        ],
        "period_start": order.period_start.isoformat(),
        "period_end": order.period_end.isoformat(),
        "target": config_payload(
            order.target.plan.code, order.target.email_credits, order.target.messaging_credits
        ),
    }


def apply_order(
    session: Session,
    workspace: Workspace,
    order: pricing.PricedOrder,
    payment: Payment | None,
    renewal_payment: str | None,
    details: BillingDetails | None,
    now: datetime,
    *,
    target_description: str,
    seller: Seller,
) -> str | None:
    """Apply what was paid for: the immediate part now, the rest scheduled; invoice and events.
    ``renewal_payment``, if given, becomes the workspace's renewal method (the one that paid)."""
    # Read before anything is changed: the read would flush the workspace's row, which the
    # events below change again (one UPDATE of it instead of two).
    existing = session.get(ScheduledChange, workspace.id)
    credits_reset = False
    for change in order.changes:
        config = change.configuration
        if change.timing is pricing.Timing.IMMEDIATE:
            before = config_payload(workspace.plan_code, workspace.email_credits, workspace.messaging_credits)
            workspace.plan_code = config.plan.code
            workspace.price_version = config.plan.price_version
            workspace.email_credits, workspace.messaging_credits = (
                config.email_credits,
                config.messaging_credits,
            )
            if order.kind is pricing.ChangeKind.NEW_PERIOD:
                workspace.period_anchor = workspace.period_start = order.period_start
                workspace.period_end = order.period_end
                credits_reset = True
            emit(
                session,
                workspace,
                EventType.PLAN_CHANGE_APPLIED,
                {
                    "from": before,
                    "to": config_payload(config.plan.code, config.email_credits, config.messaging_credits),
                    "effective_at": change.effective_at.isoformat(),
                    "reason": "checkout",
                },
                now,
            )
    if credits_reset:  # a new paid period starts with fresh allowances, as at renewal
        emit_credits_reset(session, workspace, now)
    scheduled = next((c for c in order.changes if c.timing is pricing.Timing.AT_RENEWAL), None)
    if existing is not None:
        session.delete(existing)
        emit(
            session,
            workspace,
            EventType.PLAN_CHANGE_CANCELLED,
            {
                **config_payload(existing.plan_code, existing.email_credits, existing.messaging_credits),
                "effective_at": existing.effective_at.isoformat(),
                "reason": "superseded by a new order",
            },
            now,
        )
        session.flush()
    if scheduled is not None:
        config = scheduled.configuration
        session.add(
            ScheduledChange(
                workspace_id=workspace.id,
                plan_code=config.plan.code,
                email_credits=config.email_credits,
                messaging_credits=config.messaging_credits,
                price_version=config.plan.price_version,
                effective_at=scheduled.effective_at,
                created_at=now,
            )
        )
        emit(
            session,
            workspace,
            EventType.PLAN_CHANGE_SCHEDULED,
            {
                **config_payload(config.plan.code, config.email_credits, config.messaging_credits),
                "effective_at": scheduled.effective_at.isoformat(),
            },
            now,
        )
    invoice = None
    if payment is not None:
        invoice = create_invoice(
            session,
            workspace_id=workspace.id,
            kind=InvoiceKind.CHECKOUT,
            status=InvoiceStatus.PAID,
            charge=order.due_now,
            billing=billing_details.snapshot(details) if details else {},
            seller=seller,
            payment_id=payment.id,
            now=now,
            period_start=order.period_start,
            period_end=order.period_end,
        )
        if renewal_payment is not None:
            workspace.renewal_payment = renewal_payment
    emit(
        session,
        workspace,
        EventType.CHECKOUT_COMPLETED,
        {
            "kind": order.kind.value,
            "order": target_description,
            "total": str(order.due_now.total.amount),
            "currency": order.due_now.total.currency,
            "invoice_id": invoice.id if invoice else None,
            "invoice_number": invoice.number if invoice else None,
            "payment_id": payment.id if payment else None,
            "payment_method": payment.method if payment else None,
        },
        now,
    )
    return invoice.id if invoice else None
