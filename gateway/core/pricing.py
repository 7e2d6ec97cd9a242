"""The pricing core: pure functions from a subscription and a target to a priced order.

Nothing here touches GraphQL, SQL or the clock: ``now`` and the tax calculator
are passed in, so the same call always prices the same way. It runs on every
slider move of the Order Preview, so it stays lean.

Timing rules (see DESIGN.md, "Timing of plan changes", and README): no limit is
ever lowered before the start of the next period.

* From a free plan to a paid one (NEW_PERIOD), a new paid period starts now with
  the target as asked, and the whole monthly price is due now.
* To the free plan, or to a plan of a lower tier (DOWNGRADE): nothing is charged
  now; the whole target is scheduled for renewal.
* On the same plan or to a higher tier, the part applied now is the target plan
  with each of its limits at max(current, target). If that is the target itself,
  the change is an UPGRADE, applied now; otherwise a SPLIT: that part now, the
  exact target scheduled for renewal. The part applied now is prorated for the
  days left (the period anchor stays). When it cannot hold a limit the workspace
  has (above the target plan's max, or a kind the plan lacks) or would cost less
  per month than the current configuration (a refund), the whole change is a
  DOWNGRADE scheduled for renewal instead. See :func:`classify`.
* Same plan, limits only lowered: a DOWNGRADE, scheduled for renewal.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, ROUND_HALF_UP, Context, Decimal
from typing import NamedTuple

from gateway.core import errors
from gateway.core.catalog import Catalog, CreditKind, CreditOption, Plan
from gateway.core.errors import DomainError, ErrorCode
from gateway.core.money import CURRENCY_EXPONENTS, Money
from gateway.core.periods import add_months
from gateway.core.records import same_type_equality
from gateway.core.tax import TaxCalculator, TaxCustomer, TaxLine, TaxRequest

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

    def __eq__(self, other: object) -> bool:
        # The generated __eq__, with the cached hashes compared first: configurations
        # of different plans or limits then differ without comparing the plans field by field.
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self is other or (
            self._hash == other._hash
            and self.email_credits == other.email_credits
            and self.messaging_credits == other.messaging_credits
            and self.plan == other.plan
        )

    def limit(self, kind: CreditKind) -> int:
        return self.email_credits if kind is CreditKind.EMAIL else self.messaging_credits


@dataclass(frozen=True, slots=True)
class Subscription:
    """What a workspace has now: its configuration and current period [start, end)."""

    configuration: Configuration
    period_start: datetime
    period_end: datetime


# ------------------------------------------------------------------- errors


class PricingError(DomainError):
    """An order that cannot be priced as asked."""


class PlanNotPurchasable(PricingError):
    code = ErrorCode.PLAN_NOT_PURCHASABLE

    def __init__(self, plan: Plan, sales_contact: str) -> None:
        super().__init__(
            f"the {plan.name} plan is sold by quote: request one or contact {sales_contact}", ("plan_code",)
        )
        self.plan = plan
        self.sales_contact = sales_contact


class PlanNotAdjustable(PricingError):
    code = ErrorCode.PLAN_NOT_ADJUSTABLE

    def __init__(self, plan: Plan, kind: CreditKind) -> None:
        super().__init__(
            f"the {plan.name} plan has fixed limits; {kind.value} credits cannot be changed",
            (_FIELD_NAMES[kind],),
        )
        self.plan = plan
        self.kind = kind


class InvalidVolume(PricingError, errors.InvalidVolume):
    """A slider value the plan does not offer."""

    def __init__(self, plan: Plan, kind: CreditKind, value: int, option: CreditOption | None) -> None:
        if option is None:
            message = f"the {plan.name} plan has no {kind.value} credits"
        else:
            message = (
                f"{kind.value} credits must be between {option.min} and {option.max} "
                f"in steps of {option.step}, not {value}"
            )
        errors.InvalidVolume.__init__(
            self,
            message,
            (_FIELD_NAMES[kind],),
            value,
            min=option.min if option else None,
            max=option.max if option else None,
            step=option.step if option else None,
        )
        self.plan, self.kind, self.option = plan, kind, option


_FIELD_NAMES = {CreditKind.EMAIL: "email_credits", CreditKind.MESSAGING: "messaging_credits"}


def configure(
    plan: Plan,
    catalog: Catalog,
    current: Configuration | None,
    email_credits: int | None,
    messaging_credits: int | None,
) -> Configuration:
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
            if current is not None and current.plan.code == plan.code:
                values[kind] = current.limit(kind)
            else:
                values[kind] = plan.default_limit(kind)
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
    REFUND = "refund"  # a credit note's line: money given back for an invoice


# The outputs are built on every slider move, so they are NamedTuples: immutable
# and typed like frozen dataclasses, several times cheaper to construct. Like
# dataclasses they are equal only to values of their own type (see
# gateway.core.records.same_type_equality), but they are still tuples: they unpack,
# iterate and index, which callers must not rely on (use the attributes), and
# dataclasses.replace/asdict do not apply to them.


@same_type_equality
class Line(NamedTuple):
    kind: LineKind
    description: str
    amount: Money  # rounded to the minor unit
    quantity: int = 1
    unit_price: Money | None = None  # may carry sub-minor precision (per-credit prices)
    credit_kind: CreditKind | None = None
    price_version: str | None = None  # the plan's price version the line is priced at


@same_type_equality
class Charge(NamedTuple):
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


@same_type_equality
class Change(NamedTuple):
    timing: Timing
    effective_at: datetime
    configuration: Configuration


@same_type_equality
class PricedOrder(NamedTuple):
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

# The records built on every quote (the tax request, the charges, the change, the order)
# are made with tuple.__new__ from all their fields in order: the same value as the
# NamedTuple's constructor, without its Python-level __new__ (about 110 ns less each, 6 per
# quote). Nothing checks the fields there, so each call site gives every field, positionally,
# and tests/test_pricing.py checks the records' lengths.
_tuple_new = tuple.__new__

# The enum members of the quote path, bound once: on Python 3.11 each access such
# as ChangeKind.UPGRADE goes through the enum metaclass and costs about 60 ns.
_EMAIL, _MESSAGING = CreditKind.EMAIL, CreditKind.MESSAGING
_BASE, _CREDITS = LineKind.BASE, LineKind.CREDITS
_REMAINING_TIME, _UNUSED_TIME = LineKind.REMAINING_TIME, LineKind.UNUSED_TIME
_NONE, _NEW_PERIOD, _SPLIT = ChangeKind.NONE, ChangeKind.NEW_PERIOD, ChangeKind.SPLIT
_UPGRADE, _DOWNGRADE = ChangeKind.UPGRADE, ChangeKind.DOWNGRADE
_IMMEDIATE, _AT_RENEWAL = Timing.IMMEDIATE, Timing.AT_RENEWAL


class _Tier(NamedTuple):
    lower: int  # the credits below the tier: the included ones, or where the previous tier ends
    up_to: int | None
    unit_price: Decimal
    unit: Money  # unit_price in the plan's currency, as printed on the line
    label: str  # the line's description up to the upper bound: "Email credits 5,001–"
    # The line of the whole tier, for every limit at or above its end (None for a tier
    # without an end, or free): the same for every configuration of the plan.
    whole: Line | None


class _PlanTerms(NamedTuple):
    currency: str
    quantum: Decimal  # the currency's minor unit, 0.01 for EUR
    version: str
    base_line: Line
    credits: tuple[tuple[CreditKind, tuple[_Tier, ...]], ...]


@functools.lru_cache(maxsize=256)
def _plan_terms(plan: Plan) -> _PlanTerms:
    """What pricing reads from a plan, prepared once per plan.

    It depends on the plan only (a frozen catalog value), never on the slider
    values, so every configuration of the plan shares it. The unit prices go
    through the strict Money constructor here, once.
    """
    base_price = plan.base_price
    assert base_price is not None, "only purchasable plans are priced"
    currency, version = base_price.currency, plan.price_version
    credits = []
    for kind, option in plan.credits.items():
        tiers = []
        lower = option.included
        for tier in option.tiers:
            label = f"{kind.value.capitalize()} credits {lower + 1:,}–"
            unit = Money(tier.unit_price, currency)
            up_to = tier.up_to
            whole = None
            if up_to is not None and tier.unit_price:
                units = up_to - lower
                amount = unit.times_rounded(units)
                whole = Line(_CREDITS, f"{label}{up_to:,}", amount, units, unit, kind, version)
            tiers.append(_Tier(lower, up_to, tier.unit_price, unit, label, whole))
            if up_to is None:
                break  # no credit is beyond a tier without an end
            lower = up_to
        credits.append((kind, tuple(tiers)))
    base_line = Line(_BASE, f"{plan.name} plan, monthly base price", base_price, price_version=version)
    return _PlanTerms(currency, _QUANTA[currency], version, base_line, tuple(credits))


@functools.lru_cache(maxsize=4096)
def price_configuration(config: Configuration) -> tuple[tuple[Line, ...], Money]:
    """The monthly lines of a configuration and their subtotal.

    Cached: a configuration is a frozen value (its plan included), and one quote
    prices the same few configurations several times, on every slider move.
    """
    terms = _plan_terms(config.plan)
    base_line, version = terms.base_line, terms.version
    lines = [base_line]
    subtotal = base_line.amount.amount
    for kind, tiers in terms.credits:
        limit = config.email_credits if kind is _EMAIL else config.messaging_credits
        # Each credit is priced by the tier it falls in: the tiers below the limit whole, the
        # one it falls in up to the limit.
        for lower, up_to, unit_price, unit, label, whole in tiers:
            if limit <= lower:
                break
            if up_to is not None and limit >= up_to:
                if whole is not None:
                    lines.append(whole)
                    subtotal += whole.amount.amount
                continue
            if unit_price:
                units = limit - lower
                amount = unit.times_rounded(units)
                lines.append(Line(_CREDITS, f"{label}{limit:,}", amount, units, unit, kind, version))
                subtotal += amount.amount
            break
    # The amounts are rounded, so is their sum: the quantize only fixes the exponent (0.00, not 0).
    return tuple(lines), Money._of(subtotal.quantize(terms.quantum, ROUND_HALF_UP, _EXACT), terms.currency)


def prorate(amount: Money, days_left: int, period_days: int) -> Money:
    """``amount × days_left / period_days``, rounded half-up exactly on minor units.

    The amount is rounded to its minor unit first.
    """
    currency = amount.currency
    return Money._of(
        _prorated(amount.rounded().amount, CURRENCY_EXPONENTS[currency], days_left, period_days), currency
    )


# Scaling by a power of ten is exact in this context, whatever the number of digits
# (as in gateway.core.money): proration must not lose digits to the thread's context.
_EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)


def _prorated(value: Decimal, exponent: int, days_left: int, period_days: int) -> Decimal:
    """``value × days_left / period_days``, half-up in exact integer arithmetic on minor
    units. ``value`` must be rounded to the minor unit, 10^-exponent."""
    units = int(value.scaleb(exponent, _EXACT)) * days_left
    quotient, remainder = divmod(abs(units), period_days)
    if 2 * remainder >= period_days:
        quotient += 1
    return Decimal(quotient if units >= 0 else -quotient).scaleb(-exponent, _EXACT)


@functools.lru_cache(maxsize=4096)
def _prorated_change(
    now_part: Configuration, current: Configuration, days_left: int, period_days: int
) -> tuple[tuple[Line, ...], Money]:
    """The due-now lines of putting ``now_part`` in place of ``current`` with ``days_left`` of
    ``period_days`` left (the new configuration's remaining time, the old one's unused time),
    and their sum.

    Cached like :func:`price_configuration`: it depends on frozen values only, and the Order
    Preview asks for the same change again while the user watches it.
    """
    span = f"{days_left} of {period_days} days"
    # prorate(), without rounding again: monthly subtotals are rounded.
    new_subtotal = price_configuration(now_part)[1]
    currency = new_subtotal.currency
    remaining = Money._of(
        _prorated(new_subtotal.amount, CURRENCY_EXPONENTS[currency], days_left, period_days), currency
    )
    old_subtotal = price_configuration(current)[1]
    old_currency = old_subtotal.currency
    unused = Money._of(
        -_prorated(old_subtotal.amount, CURRENCY_EXPONENTS[old_currency], days_left, period_days),
        old_currency,
    )
    lines = (
        Line(
            _REMAINING_TIME,
            f"Remaining time on {describe(now_part)}, {span}",
            remaining,
            price_version=now_part.plan.price_version,
        ),
        Line(
            _UNUSED_TIME,
            f"Unused time on {describe(current)}, {span}",
            unused,
            price_version=current.plan.price_version,
        ),
    )
    return lines, remaining + unused


def clear_caches() -> None:
    """Empty the caches of priced configurations, changes and descriptions (not the per-plan
    terms, which last as long as the catalog): for measuring a quote of configurations not
    seen before."""
    price_configuration.cache_clear()
    _prorated_change.cache_clear()
    describe.cache_clear()


@functools.lru_cache(maxsize=4096)
def describe(config: Configuration) -> str:
    plan = config.plan
    if _MESSAGING not in plan.credits:
        return f"{plan.name} ({config.email_credits:,} email credits)"
    return f"{plan.name} ({config.email_credits:,} email, {config.messaging_credits:,} messaging credits)"


@functools.cache
def _zero(currency: str) -> Money:
    """0.00 in ``currency`` (a Money is immutable, so one is shared)."""
    return Money.zero(currency).rounded()


def _charge(
    lines: tuple[Line, ...],
    subtotal: Money,
    currency: str,
    customer: TaxCustomer | None,
    tax: TaxCalculator | None,
    seller_country: str,
    on: date,
) -> Charge:
    if customer is None or tax is None:
        return _tuple_new(Charge, (lines, subtotal, (), _zero(currency), subtotal, False))
    if not lines:  # nothing is charged, so there is nothing to tax (and no invoice to explain)
        return _tuple_new(Charge, ((), subtotal, (), subtotal, subtotal, True))
    tax_lines = tax.calculate(_tuple_new(TaxRequest, (seller_country, customer, subtotal, on)))
    if tax_lines.__class__ is not tuple:
        tax_lines = tuple(tax_lines)
    if (
        len(tax_lines) == 1
        and (amount := tax_lines[0].amount).currency == currency
        and (amount.amount.same_quantum(_QUANTA[currency]))
        and subtotal.currency == currency
    ):
        # The usual case: one tax line whose amount has the minor unit's exponent, so it
        # is rounded and reads like every other amount (0.00, not 0): it is the tax as it stands,
        # in the subtotal's currency, so the total is their sum (Money + Money, without its checks).
        return _tuple_new(
            Charge,
            (lines, subtotal, tax_lines, amount, Money._of(subtotal.amount + amount.amount, currency), True),
        )
    tax_amount = _ZERO
    for line in tax_lines:
        amount = line.amount
        if amount.currency != currency or not amount.is_rounded:
            raise ValueError(
                f"tax calculator {tax.code!r} returned {amount} for a {currency} order; "
                "tax amounts must be rounded to the minor unit, in the order's currency"
            )
        tax_amount += amount.amount
    # The amounts are rounded, so is their sum; rounded() only fixes the exponent (0.00, not 0).
    tax_total = Money._of(tax_amount, currency).rounded()
    return _tuple_new(Charge, (lines, subtotal, tax_lines, tax_total, subtotal + tax_total, True))


_ZERO = Decimal(0)
_QUANTA = {currency: Decimal(1).scaleb(-exponent) for currency, exponent in CURRENCY_EXPONENTS.items()}


def classify(
    current: Configuration, target: Configuration
) -> tuple[ChangeKind, Configuration | None, Configuration | None]:
    """Split a change into (kind, applied now, scheduled for renewal).

    The rule (README, "Timing of plan changes"): a limit is never lowered before the
    next period. From a free plan the target starts a new period now. To the free plan,
    or to a plan of a lower tier, everything waits for renewal. On the same plan or a
    higher tier, the part applied now is the target plan with each of its limits at
    ``max(current, target)`` (see :func:`_kept_limit`); if it is the target, the change
    is an UPGRADE, else a SPLIT whose renewal part is the exact target. When that
    immediate part cannot exist (the target plan cannot hold a limit the workspace has)
    or would cost less per month than the current configuration (applying it now would
    be a refund), the whole change is a DOWNGRADE at renewal.
    """
    return _classify(current, target, None)


def _kept_limit(option: CreditOption | None, current: int, target: int) -> int | None:
    """The limit of one credit kind in the part applied now: ``max(current, target)`` as a
    slider position of the target plan, or None when the target plan cannot hold the
    current limit without lowering it.

    * A current limit at or below the target's: the target's (already a valid position).
    * Above it but off the target plan's step: rounded *up* to the next step, so no
      credit the workspace has is lost (it pays, prorated, for the few credits added).
    * Above the target plan's highest position, or of a kind the target plan does not
      have (for example messaging credits on an email-only plan): None. Clamping would
      lower a limit now, so the caller schedules the whole change for renewal instead.
    """
    if current <= target:
        return target
    if option is None:
        return None
    if current > option.max:  # the catalog puts max on the step grid
        return None
    return option.min - (option.min - current) // option.step * option.step  # up to the step grid


def _classify(
    current: Configuration,
    target: Configuration,
    target_subtotal: Money | None,
) -> tuple[ChangeKind, Configuration | None, Configuration | None]:
    """:func:`classify`, given the target's monthly subtotal if known."""
    if current == target:
        return _NONE, None, None
    current_plan, target_plan = current.plan, target.plan
    if current_plan.is_free:
        if target_plan.is_free:
            return _DOWNGRADE, None, target
        return _NEW_PERIOD, target, None
    if target_plan.is_free or target_plan.tier < current_plan.tier:
        return _DOWNGRADE, None, target
    same_plan = current_plan.code == target_plan.code
    if same_plan and not (
        target.email_credits > current.email_credits or target.messaging_credits > current.messaging_credits
    ):
        return _DOWNGRADE, None, target  # only reductions: nothing to apply now
    # max(current, target) as a slider position; the option is looked up only when the current
    # limit is the higher one (this runs on every slider move).
    email, new_email = current.email_credits, target.email_credits
    kept_email = (
        new_email if email <= new_email else _kept_limit(target_plan.option(_EMAIL), email, new_email)
    )
    messaging, new_messaging = current.messaging_credits, target.messaging_credits
    kept_messaging = (
        new_messaging
        if messaging <= new_messaging
        else _kept_limit(target_plan.option(_MESSAGING), messaging, new_messaging)
    )
    if kept_email is None or kept_messaging is None:
        return _DOWNGRADE, None, target
    if kept_email == new_email and kept_messaging == new_messaging:
        now_part = target
    else:
        now_part = Configuration(target_plan, kept_email, kept_messaging)
    if same_plan:
        # Same plan: every limit of the part applied now is at least the current one, so by
        # the graduated tiers it never costs less: no need to price the current configuration.
        return (_UPGRADE, target, None) if now_part is target else (_SPLIT, now_part, target)
    if now_part is target:
        if target_subtotal is None:
            target_subtotal = price_configuration(target)[1]
        now_subtotal = target_subtotal
    else:
        now_subtotal = price_configuration(now_part)[1]
    current_subtotal = price_configuration(current)[1]
    if now_subtotal < current_subtotal:
        return _DOWNGRADE, None, target
    if now_part is target:
        return _UPGRADE, target, None
    return _SPLIT, now_part, target


def price_order(
    current: Subscription,
    target: Configuration,
    now: datetime,
    *,
    customer: TaxCustomer | None,
    tax: TaxCalculator | None,
    seller_country: str,
) -> PricedOrder:
    """Price moving ``current`` to ``target`` at ``now``.

    ``now`` must fall inside the current period. Tax lines come from ``tax``
    for ``customer``; without billing details the charges say tax was not
    calculated rather than guessing.
    """
    period_start, period_end = current.period_start, current.period_end
    if not period_start <= now < period_end:
        raise ValueError("now must fall inside the current period")
    current_config = current.configuration
    monthly_lines, monthly_subtotal = price_configuration(target)
    kind, now_part, scheduled = _classify(current_config, target, monthly_subtotal)
    currency = monthly_subtotal.currency
    proration_days = None
    now_date = now.date()
    if kind is _NEW_PERIOD:
        period_start, period_end = now, add_months(now, 1)
        due_now = _charge(monthly_lines, monthly_subtotal, currency, customer, tax, seller_country, now_date)
    elif now_part is not None:
        # Whole calendar days, counted on the dates (toordinal() is the date part's day number).
        end_day = period_end.toordinal()
        period_days = end_day - period_start.toordinal()
        days_left = end_day - now.toordinal()
        if days_left > period_days:
            days_left = period_days
        if days_left < 0:
            days_left = 0
        proration_days = (days_left, period_days)
        due_lines, due_subtotal = _prorated_change(now_part, current_config, days_left, period_days)
        due_now = _charge(due_lines, due_subtotal, currency, customer, tax, seller_country, now_date)
    else:
        # Line amounts are rounded, so is their (empty) sum; rounded() makes it read 0.00.
        due_now = _charge((), _zero(currency), currency, customer, tax, seller_country, now_date)

    if now_part is None:
        changes: tuple[Change, ...] = (
            () if scheduled is None else (_tuple_new(Change, (_AT_RENEWAL, period_end, scheduled)),)
        )
        renewal_config = current_config if scheduled is None else scheduled
    elif scheduled is None:
        changes = (_tuple_new(Change, (_IMMEDIATE, now, now_part)),)
        renewal_config = now_part
    else:
        changes = (
            _tuple_new(Change, (_IMMEDIATE, now, now_part)),
            _tuple_new(Change, (_AT_RENEWAL, period_end, scheduled)),
        )
        renewal_config = scheduled
    if renewal_config.plan.is_free:
        due_at_renewal = _charge(
            (), _zero(currency), currency, customer, tax, seller_country, period_end.date()
        )
    else:
        if renewal_config is target:
            renewal_lines, renewal_subtotal = monthly_lines, monthly_subtotal
        else:
            renewal_lines, renewal_subtotal = price_configuration(renewal_config)
        due_at_renewal = _charge(
            renewal_lines, renewal_subtotal, currency, customer, tax, seller_country, period_end.date()
        )
    return _tuple_new(
        PricedOrder,
        (
            kind,
            target,
            monthly_lines,
            monthly_subtotal,
            changes,
            due_now,
            period_start,
            period_end,
            period_end,  # renewal_at
            due_at_renewal,
            proration_days,
        ),
    )


def renewal_charge(
    config: Configuration,
    *,
    customer: TaxCustomer | None,
    tax: TaxCalculator | None,
    seller_country: str,
    on: datetime,
) -> Charge:
    """What renewing ``config`` costs at ``on``: its monthly lines with the tax in force then."""
    if config.plan.base_price is None:
        raise ValueError(f"the {config.plan.name} plan is sold by quote and has no renewal price")
    currency = config.plan.base_price.currency
    if config.plan.is_free:
        zero = Money.zero(currency).rounded()
        return _charge((), zero, currency, customer, tax, seller_country, on.date())
    lines, subtotal = price_configuration(config)
    return _charge(lines, subtotal, currency, customer, tax, seller_country, on.date())
