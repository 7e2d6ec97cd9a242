"""Pricing an order for a workspace: the one function behind quote, checkout and the
confirmation of a 3-D Secure payment, so all three see the same price and report the
same failures the same way."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gateway.core import pricing
from gateway.core.catalog import Plan
from gateway.core.errors import InvalidVatId, RenewalPending, UnknownPlan
from gateway.core.money import Money
from gateway.core.tax import InvalidTaxId, TaxCustomer
from gateway.services.deps import Deps
from gateway.services.workspaces import subscription_of
from gateway.storage.db import Workspace

VAT_ID_FIELD = ("billing_details", "vat_id")


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
    order: OrderRequest,
    customer: TaxCustomer | None,
    now: datetime,
    *,
    vat_id_field: tuple[str, ...] = VAT_ID_FIELD,
) -> pricing.PricedOrder:
    """The order priced against the workspace's subscription at ``now``.

    Raises :class:`UnknownPlan`, :class:`RenewalPending` (the period ended and was not
    renewed yet: no honest effective date exists), a pricing error for limits the plan
    does not offer, or :class:`InvalidVatId` when the tax calculator refuses the VAT ID
    (``vat_id_field`` names where the customer gave it).
    """
    plan = plan_to_buy(deps, order.plan_code)
    subscription = subscription_of(workspace, deps.catalog, now)
    if not now < subscription.period_end:
        raise RenewalPending(subscription.period_end)
    target = pricing.configure(
        plan, deps.catalog, subscription.configuration, order.email_credits, order.messaging_credits
    )
    try:
        return pricing.price_order(
            subscription, target, now, customer=customer, tax=deps.tax, seller_country=deps.seller_country
        )
    except InvalidTaxId as error:
        raise InvalidVatId(error.tax_id, str(error), vat_id_field) from None


def plan_to_buy(deps: Deps, plan_code: str) -> Plan:
    """The catalog's plan ``plan_code``, or :class:`UnknownPlan`: checked before anything else
    about an order, so a mistyped plan is what the client hears first."""
    plan = deps.catalog.plan(plan_code)
    if plan is None:
        raise UnknownPlan(plan_code)
    return plan


def balance_of(workspace: Workspace) -> Money:
    return Money.from_minor_units(workspace.balance_minor, workspace.currency)
