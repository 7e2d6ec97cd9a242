"""Helpers shared by the API modules."""

from __future__ import annotations

import functools

import strawberry

from gateway.api import types as t
from gateway.api.context import Context
from gateway.core import catalog as cat
from gateway.core import pricing
from gateway.core.money import Money
from gateway.services import billing_views as views
from gateway.services import quotes

Info = strawberry.Info[Context, None]


def plan_of(info: Info, plan: cat.Plan) -> t.Plan:
    return _plan_type(plan, info.context.gateway.catalog.currency)


@functools.lru_cache(maxsize=256)
def _plan_type(plan: cat.Plan, currency: str) -> t.Plan:
    """A catalog plan as the API shows it, built once: catalog plans are immutable, and so is
    this value, which every request that shows the plan shares (read it, never change it). An
    Order Preview shows one or two plans; building them, credit sliders and price tiers
    included, took about a twentieth of a quote's time."""
    return t.Plan.of(plan, currency)


def current_workspace(info: Info) -> views.WorkspaceView | None:
    """The workspace of the request's API key as last committed; None without a valid key."""
    ctx = info.context
    if ctx.workspace_id is None:
        return None
    return views.workspace(ctx.session, ctx.workspace_id)


def quote_of(info: Info, order: pricing.PricedOrder, balance: Money) -> t.Quote:
    """The Order Preview of a priced order, with the balance now and after paying by balance,
    and its token for checkout (quotes are for a signed-in workspace only)."""
    now = info.context.now
    workspace_id = info.context.workspace_id
    assert workspace_id is not None, "quotes are made for a signed-in workspace"
    offer = quotes.offer(info.context.gateway, workspace_id, order, now)
    monthly_lines = [t.OrderLine.of(line) for line in order.monthly_lines]
    monthly_subtotal = t.Money.of(order.monthly_subtotal)
    renewal = order.due_at_renewal
    same = renewal.lines is order.monthly_lines  # the renewal charges the new configuration as is
    return t.Quote(
        kind=order.kind,
        plan=plan_of(info, order.target.plan),
        email_credits=t.email_limit(order.target),
        messaging_credits=t.messaging_limit(order.target),
        monthly_lines=monthly_lines,
        monthly_subtotal=monthly_subtotal,
        changes=[
            t.PlanChange(
                timing=c.timing,
                effective_at=c.effective_at,
                plan=plan_of(info, c.configuration.plan),
                email_credits=t.email_limit(c.configuration),
                messaging_credits=t.messaging_limit(c.configuration),
            )
            for c in order.changes
        ],
        due_now=t.Charge.of(order.due_now),
        due_at_renewal=t.Charge.of(
            renewal,
            monthly_lines if same else None,
            monthly_subtotal if same and renewal.subtotal is order.monthly_subtotal else None,
        ),
        renewal_at=order.renewal_at,
        period_start=order.period_start,
        period_end=order.period_end,
        proration=t.Proration(days_left=order.proration_days[0], days_in_period=order.proration_days[1])
        if order.proration_days
        else None,
        computed_at=now,
        expires_at=offer.expires_at,
        token=offer.token,
        balance=t.BalancePreview(
            now=t.Money.of(balance),
            after_purchase=t.Money.of(balance - order.due_now.total),
            sufficient=balance >= order.due_now.total,
        ),
    )
