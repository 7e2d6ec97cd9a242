"""Previews that write nothing: Select a Plan (where the sliders start) and the Order
Preview (what a change costs now and at renewal)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from gateway.core import pricing
from gateway.core.catalog import CreditKind, Plan
from gateway.core.errors import InvalidVatId, RenewalPending, UnknownCountry
from gateway.core.messaging import normalise_code
from gateway.core.money import Money
from gateway.core.quote_tokens import QuoteClaims
from gateway.core.tax import CustomerKind, TaxCustomer
from gateway.services import billing_details, messages
from gateway.services.deps import Deps
from gateway.services.orders import OrderRequest, balance_of, plan_to_buy, price_for_workspace
from gateway.services.workspaces import subscription_of
from gateway.storage.db import BillingDetails, Workspace
from gateway.storage.workspace_cache import Rows

QUOTE_TTL = timedelta(minutes=30)  # how long checkout accepts a quote's total
MAX_VAT_ID = 32  # the longest EU VAT ID has 14 characters; room for blanks, dots and dashes


@dataclass(frozen=True)
class CustomerInput:
    """Billing details given with a quote, to price its tax without saving them."""

    customer_type: CustomerKind
    country: str
    vat_id: str | None = None


def tax_customer(deps: Deps, given: CustomerInput, path: tuple[str, ...]) -> TaxCustomer:
    """The tax customer of billing details given with a request, checked before any
    plugin sees them; errors name the fields under ``path``."""
    country = normalise_code(given.country)
    if country not in deps.countries:
        raise UnknownCountry(given.country, f"unknown country {given.country!r}", (*path, "country"))
    vat_id = given.vat_id.strip() if given.vat_id and given.vat_id.strip() else None
    if vat_id is not None and len(vat_id) > MAX_VAT_ID:  # never hand absurd input to a tax plugin
        raise InvalidVatId(
            given.vat_id or "",
            f"a VAT ID has at most {MAX_VAT_ID} characters, not {len(vat_id)}",
            (*path, "vat_id"),
        )
    return TaxCustomer(given.customer_type, country, vat_id)


@dataclass(frozen=True)
class Quoted:
    order: pricing.PricedOrder
    balance: Money  # the prepaid balance now, for "pay with My balance"


def quote(
    deps: Deps, workspace_id: str, order: OrderRequest, customer: CustomerInput | None, now: datetime
) -> Quoted:
    """Price ``order`` for the workspace: with the tax of ``customer`` when given, else of the
    saved billing details (as checkout will). Writes nothing."""
    plan = plan_to_buy(deps, order.plan_code, now)
    given = tax_customer(deps, customer, ("billing_details",)) if customer is not None else None
    rows = workspace_rows(deps, workspace_id)
    if rows is None:
        raise LookupError(f"no workspace {workspace_id!r}")
    if given is None:
        given = billing_details.tax_customer(rows.details)
    priced = price_for_workspace(deps, rows.workspace, plan, order, given, now)
    return Quoted(priced, balance_of(rows.workspace))


def workspace_rows(deps: Deps, workspace_id: str) -> Rows | None:
    """The workspace and its billing details as committed now: from the gateway's cache when no
    commit can have changed them since it read them (gateway.storage.workspace_cache), else
    in one statement, kept for the next slider move. Read only: the objects are shared."""
    cache = deps.workspace_cache
    rows, stamp = cache.lookup(workspace_id)  # the stamp before the read: a commit after it
    if rows is not None:  # makes the cache refuse the rows
        return rows
    with deps.sessions() as session:
        row = session.execute(
            select(Workspace, BillingDetails)
            .outerjoin(BillingDetails, BillingDetails.workspace_id == Workspace.id)
            .where(Workspace.id == workspace_id)
        ).first()
        if row is None:
            return None
        rows = Rows(row[0], row[1])
        session.expunge_all()  # detached with every column loaded: nothing to lazy-load later
    cache.put(workspace_id, rows, stamp)
    return rows


@dataclass(frozen=True)
class Offer:
    """How long a quote holds, and its signed token for checkout."""

    expires_at: datetime
    token: str


def offer(deps: Deps, workspace_id: str, order: pricing.PricedOrder, now: datetime) -> Offer:
    """The expiry and token of ``order`` quoted to the workspace at ``now``: deterministic
    (the same quote at the same instant has the same token) and nothing is stored."""
    expires_at = now + QUOTE_TTL
    target = order.target
    claims = QuoteClaims(
        workspace_id,
        target.plan.code,
        target.email_credits,
        target.messaging_credits,
        order.due_now.total,
        expires_at,
    )
    return Offer(expires_at, deps.quote_keys.sign(claims))


@dataclass(frozen=True)
class PlanSelection:
    plan: Plan
    email_credits: int  # where the sliders start
    messaging_credits: int
    change: pricing.ChangeKind | None  # for a workspace: how choosing the plan there applies
    effective_at: datetime | None


def select_plan(deps: Deps, workspace_id: str | None, plan_code: str, now: datetime) -> PlanSelection:
    """Open Customize Plan: where the sliders start (the current limits on the same plan,
    else the plan's defaults) and, for a workspace, when choosing the plan would apply."""
    plan = plan_to_buy(deps, plan_code, now)
    subscription = None
    if workspace_id is not None and (rows := workspace_rows(deps, workspace_id)) is not None:
        subscription = subscription_of(rows.workspace, deps.catalog, now)
    if subscription is not None and not now < subscription.period_end:
        raise RenewalPending(subscription.period_end)  # no honest effective date before renewal
    current = subscription.configuration if subscription else None
    start = (
        current
        if current is not None and current.plan.code == plan.code
        else pricing.Configuration(
            plan, plan.default_limit(CreditKind.EMAIL), plan.default_limit(CreditKind.MESSAGING)
        )
    )
    plan = start.plan  # on the same plan: the price version the workspace bought
    change = effective_at = None
    if subscription is not None and plan.purchasable:
        change, now_part, _ = pricing.classify(subscription.configuration, start)
        if change is not pricing.ChangeKind.NONE:
            effective_at = now if now_part is not None else subscription.period_end
    return PlanSelection(plan, start.email_credits, start.messaging_credits, change, effective_at)


def estimate(
    deps: Deps, credits: int, message_type: str, country: str | None, sample_text: str | None
) -> messages.Estimate:
    """The Message Calculator: how many messages ``credits`` buy. Reads nothing."""
    return messages.estimate(deps.messages, deps.rates, credits, message_type, country, sample_text)
