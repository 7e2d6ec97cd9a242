"""The pricing core: pure functions from a subscription and a target to a priced order.

Nothing here touches GraphQL, SQL or the clock: ``now`` and the tax calculator
are passed in, so the same call always prices the same way. It runs on every
slider move of the Order Preview, so it stays lean.

Timing rules (see DESIGN.md, "Timing of plan changes"):

* From a free plan to a paid one, a new paid period starts now and the whole
  monthly price is due now.
* Same plan, limits raised: applied now; the period anchor stays and the
  difference is prorated for the days left.
* Same plan, limits lowered: nothing is charged now; scheduled for renewal.
* Same plan, one limit raised and another lowered (a *split*): the raise is
  applied now and prorated; the reduction is scheduled for renewal.
* Another paid plan of a higher tier whose monthly price is not lower: an
  upgrade, applied now and prorated. Any other plan change (a lower tier, a
  cheaper configuration, or the free plan) is a downgrade scheduled for renewal.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Sequence

from gateway.catalog import Catalog, CreditKind, CreditOption, Plan
from gateway.money import Money, money_sum
from gateway.periods import add_months
from gateway.providers import TaxCalculator, TaxCustomer, TaxLine, TaxRequest

# ------------------------------------------------------------------- inputs


@dataclass(frozen=True, slots=True)
class Configuration:
    """A plan with its monthly credit limits."""

    plan: Plan
    email_credits: int
    messaging_credits: int
    # Configurations key the pricing caches: hash once, not on every lookup.
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.plan, self.email_credits, self.messaging_credits)))

    def __hash__(self) -> int:
        return self._hash

    def limit(self, kind: CreditKind) -> int:
        return self.email_credits if kind is CreditKind.EMAIL else self.messaging_credits


@dataclass(frozen=True, slots=True)
class Subscription:
    """What a workspace has now: its configuration and current period [start, end)."""

    configuration: Configuration
    period_start: datetime
    period_end: datetime


# ------------------------------------------------------------------- errors


class PricingError(Exception):
    """An order that cannot be priced as asked. Carries a machine-readable code."""

    code = "PRICING_ERROR"
    field: tuple[str, ...] = ()


class PlanNotPurchasable(PricingError):
    code = "PLAN_NOT_PURCHASABLE"
    field = ("planCode",)

    def __init__(self, plan: Plan, sales_contact: str) -> None:
        super().__init__(f"the {plan.name} plan is sold by quote: request one or contact {sales_contact}")
        self.plan = plan
        self.sales_contact = sales_contact


class PlanNotAdjustable(PricingError):
    code = "PLAN_NOT_ADJUSTABLE"

    def __init__(self, plan: Plan, kind: CreditKind) -> None:
        super().__init__(f"the {plan.name} plan has fixed limits; {kind.value} credits cannot be changed")
        self.plan = plan
        self.kind = kind
        self.field = (_FIELD_NAMES[kind],)


class InvalidVolume(PricingError):
    code = "INVALID_VOLUME"

    def __init__(self, plan: Plan, kind: CreditKind, value: int, option: CreditOption | None) -> None:
        if option is None:
            message = f"the {plan.name} plan has no {kind.value} credits"
        else:
            message = (f"{kind.value} credits must be between {option.min} and {option.max} "
                       f"in steps of {option.step}, not {value}")
        super().__init__(message)
        self.plan, self.kind, self.value, self.option = plan, kind, value, option
        self.field = (_FIELD_NAMES[kind],)


_FIELD_NAMES = {CreditKind.EMAIL: "emailCredits", CreditKind.MESSAGING: "messagingCredits"}


def configure(plan: Plan, catalog: Catalog, current: Configuration | None,
              email_credits: int | None, messaging_credits: int | None) -> Configuration:
    """Validate slider values for ``plan`` and return the configuration.

    A value left out keeps the current limit when staying on the same plan and
    takes the plan's default otherwise.
    """
    if not plan.purchasable:
        raise PlanNotPurchasable(plan, catalog.sales_contact)
    values = {}
    for kind, value in ((CreditKind.EMAIL, email_credits), (CreditKind.MESSAGING, messaging_credits)):
        option = plan.option(kind)
        if value is None:
            same_plan = current is not None and current.plan.code == plan.code
            values[kind] = current.limit(kind) if same_plan else plan.default_limit(kind)
            continue
        if option is None:
            if value:
                raise InvalidVolume(plan, kind, value, None)
        elif not option.adjustable and value != option.min:
            raise PlanNotAdjustable(plan, kind)
        elif not option.accepts(value):
            raise InvalidVolume(plan, kind, value, option)
        values[kind] = value
    return Configuration(plan, values[CreditKind.EMAIL], values[CreditKind.MESSAGING])


# ------------------------------------------------------------------ outputs


class LineKind(enum.Enum):
    BASE = "base"  # the plan's monthly base price
    CREDITS = "credits"  # credits above the included ones, one line per price tier
    REMAINING_TIME = "remaining_time"  # prorated charge for the new configuration
    UNUSED_TIME = "unused_time"  # prorated credit for the configuration it replaces


@dataclass(frozen=True, slots=True)
class Line:
    kind: LineKind
    description: str
    amount: Money  # rounded to the minor unit
    quantity: int = 1
    unit_price: Money | None = None  # may carry sub-minor precision (per-credit prices)
    credit_kind: CreditKind | None = None


@dataclass(frozen=True, slots=True)
class Charge:
    """Lines charged together on one date, with their tax computed once per rate.

    A charge without lines (a downgrade's due-now) has no tax lines either.
    """

    lines: tuple[Line, ...]
    subtotal: Money
    tax_lines: tuple[TaxLine, ...]
    tax: Money
    total: Money
    tax_calculated: bool  # False when billing details are missing: tax not yet known


class ChangeKind(enum.Enum):
    NONE = "none"
    NEW_PERIOD = "new_period"
    UPGRADE = "upgrade"
    DOWNGRADE = "downgrade"
    SPLIT = "split"


class Timing(enum.Enum):
    IMMEDIATE = "immediate"
    AT_RENEWAL = "at_renewal"


@dataclass(frozen=True, slots=True)
class Change:
    timing: Timing
    effective_at: datetime
    configuration: Configuration


@dataclass(frozen=True, slots=True)
class PricedOrder:
    kind: ChangeKind
    target: Configuration
    monthly_lines: tuple[Line, ...]  # what the target configuration costs per month
    monthly_subtotal: Money
    changes: tuple[Change, ...]
    due_now: Charge
    period_start: datetime  # the period in force once the immediate part is applied
    period_end: datetime
    renewal_at: datetime
    due_at_renewal: Charge  # the first renewal, with the configuration then in force
    proration_days: tuple[int, int] | None  # (days left, days in period) where prorated


# ------------------------------------------------------------------ pricing


def _count(n: int) -> str:
    return f"{n:,}"


@functools.lru_cache(maxsize=4096)
def price_configuration(config: Configuration) -> tuple[tuple[Line, ...], Money]:
    """The monthly lines of a configuration and their subtotal.

    Cached: a configuration is a frozen value (its plan included), and one quote
    prices the same few configurations several times, on every slider move.
    """
    plan = config.plan
    assert plan.base_price is not None, "only purchasable plans are priced"
    currency = plan.base_price.currency
    lines = [Line(LineKind.BASE, f"{plan.name} plan, monthly base price", plan.base_price)]
    subtotal = plan.base_price.amount
    for kind, option in plan.credits.items():
        limit = config.limit(kind)
        lower = option.included
        for tier in option.tiers:
            if limit <= lower:
                break
            upper = limit if tier.up_to is None else min(limit, tier.up_to)
            units = upper - lower
            if units > 0 and tier.unit_price:
                amount = Money(units * tier.unit_price, currency).rounded()
                lines.append(Line(
                    LineKind.CREDITS,
                    f"{kind.value.capitalize()} credits {_count(lower + 1)}–{_count(upper)}",
                    amount, units, Money(tier.unit_price, currency), kind,
                ))
                subtotal += amount.amount
            lower = upper
    return tuple(lines), Money(subtotal, currency).rounded()


def prorate(amount: Money, days_left: int, period_days: int) -> Money:
    """``amount × days_left / period_days``, rounded half-up exactly on minor units."""
    units = amount.rounded().minor_units * days_left
    quotient, remainder = divmod(abs(units), period_days)
    if 2 * remainder >= period_days:
        quotient += 1
    return Money.from_minor_units(quotient if units >= 0 else -quotient, amount.currency)


@functools.lru_cache(maxsize=4096)
def describe(config: Configuration) -> str:
    parts = [f"{_count(config.email_credits)} email"]
    if config.plan.option(CreditKind.MESSAGING) is not None:
        parts.append(f"{_count(config.messaging_credits)} messaging")
    return f"{config.plan.name} ({', '.join(parts)} credits)"


TaxFunction = Callable[[TaxRequest], Sequence[TaxLine]]


def _charge(lines: Sequence[Line], currency: str, customer: TaxCustomer | None,
            tax: TaxCalculator | None, seller_country: str, on: datetime,
            subtotal: Money | None = None) -> Charge:
    if subtotal is None:
        # Line amounts are rounded, so is their sum; rounded() only fixes the
        # exponent, so that an empty charge reads 0.00 like any other.
        subtotal = money_sum((line.amount for line in lines), currency).rounded()
    if customer is None or tax is None:
        return Charge(tuple(lines), subtotal, (), Money.zero(currency).rounded(), subtotal, False)
    if not lines:  # nothing is charged, so there is nothing to tax (and no invoice to explain)
        return Charge((), subtotal, (), subtotal, subtotal, True)
    tax_lines = tuple(tax.calculate(TaxRequest(seller_country, customer, subtotal, on.date())))
    for line in tax_lines:
        if line.amount.currency != currency or not line.amount.is_rounded:
            raise ValueError(f"tax calculator {tax.code!r} returned {line.amount} for a {currency} order; "
                             "tax amounts must be rounded to the minor unit, in the order's currency")
    tax_total = money_sum((t.amount for t in tax_lines), currency).rounded()
    return Charge(tuple(lines), subtotal, tax_lines, tax_total, subtotal + tax_total, True)


def classify(current: Configuration, target: Configuration) -> tuple[ChangeKind, Configuration | None,
                                                                        Configuration | None]:
    """Split a change into (kind, applied now, scheduled for renewal)."""
    if current == target:
        return ChangeKind.NONE, None, None
    if current.plan.is_free:
        if target.plan.is_free:
            return ChangeKind.DOWNGRADE, None, target
        return ChangeKind.NEW_PERIOD, target, None
    if current.plan.code == target.plan.code:
        kinds = (CreditKind.EMAIL, CreditKind.MESSAGING)
        raised = any(target.limit(k) > current.limit(k) for k in kinds)
        lowered = any(target.limit(k) < current.limit(k) for k in kinds)
        if raised and lowered:
            now_part = Configuration(target.plan, max(current.email_credits, target.email_credits),
                                     max(current.messaging_credits, target.messaging_credits))
            return ChangeKind.SPLIT, now_part, target
        return (ChangeKind.UPGRADE, target, None) if raised else (ChangeKind.DOWNGRADE, None, target)
    if (not target.plan.is_free and target.plan.tier > current.plan.tier
            and price_configuration(target)[1] >= price_configuration(current)[1]):
        return ChangeKind.UPGRADE, target, None
    return ChangeKind.DOWNGRADE, None, target


def price_order(current: Subscription, target: Configuration, now: datetime, *,
                customer: TaxCustomer | None, tax: TaxCalculator | None,
                seller_country: str) -> PricedOrder:
    """Price moving ``current`` to ``target`` at ``now``.

    ``now`` must fall inside the current period. Tax lines come from ``tax``
    for ``customer``; without billing details the charges say tax was not
    calculated rather than guessing.
    """
    if not current.period_start <= now < current.period_end:
        raise ValueError("now must fall inside the current period")
    kind, now_part, scheduled = classify(current.configuration, target)
    monthly_lines, monthly_subtotal = price_configuration(target)
    currency = monthly_subtotal.currency
    period_start, period_end = current.period_start, current.period_end
    proration_days = None
    due_lines: tuple[Line, ...] = ()
    due_subtotal: Money | None = None
    if kind is ChangeKind.NEW_PERIOD:
        period_start, period_end = now, add_months(now, 1)
        due_lines, due_subtotal = monthly_lines, monthly_subtotal
    elif now_part is not None:
        days_left = (period_end.date() - now.date()).days
        period_days = (period_end.date() - period_start.date()).days
        days_left = max(0, min(days_left, period_days))
        proration_days = (days_left, period_days)
        new_subtotal = monthly_subtotal if now_part == target else price_configuration(now_part)[1]
        old_subtotal = price_configuration(current.configuration)[1]
        span = f"{days_left} of {period_days} days"
        remaining = prorate(new_subtotal, days_left, period_days)
        unused = -prorate(old_subtotal, days_left, period_days)
        due_lines = (
            Line(LineKind.REMAINING_TIME, f"Remaining time on {describe(now_part)}, {span}", remaining),
            Line(LineKind.UNUSED_TIME, f"Unused time on {describe(current.configuration)}, {span}", unused),
        )
        due_subtotal = remaining + unused
    due_now = _charge(due_lines, currency, customer, tax, seller_country, now, due_subtotal)

    changes = []
    if now_part is not None:
        changes.append(Change(Timing.IMMEDIATE, now, now_part))
    if scheduled is not None:
        changes.append(Change(Timing.AT_RENEWAL, period_end, scheduled))
    renewal_config = scheduled or now_part or current.configuration
    if renewal_config.plan.is_free:
        due_at_renewal = _charge((), currency, customer, tax, seller_country, period_end)
    else:
        renewal_lines, renewal_subtotal = price_configuration(renewal_config)
        due_at_renewal = _charge(renewal_lines, currency, customer, tax, seller_country, period_end,
                                 renewal_subtotal)
    return PricedOrder(kind, target, monthly_lines, monthly_subtotal, tuple(changes), due_now,
                       period_start, period_end, period_end, due_at_renewal, proration_days)
