"""The pricing core: configurations, monthly prices, proration, timing of plan changes and tax.

Pure tests: the bundled catalog, the real tax_vat calculator, no database.
"""

from __future__ import annotations

import functools
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import billing_gateway_tax_vat
from gateway.core.catalog import Catalog, CreditKind, Plan, load_catalog, parse_catalog
from gateway.core.errors import ErrorCode
from gateway.core.money import Money, money_sum
from gateway.core.periods import add_months
from gateway.core.pricing import (
    Change,
    ChangeKind,
    Charge,
    Configuration,
    InvalidVolume,
    LineKind,
    PlanNotAdjustable,
    PlanNotPurchasable,
    PricedOrder,
    PricingError,
    Subscription,
    Timing,
    classify,
    configure,
    price_configuration,
    price_order,
    prorate,
)
from gateway.core.tax import CustomerKind, TaxCalculator, TaxCustomer, TaxRequest, TaxTreatment

from helpers import eur

UTC = UTC
EMAIL_KIND, MESSAGING_KIND = CreditKind.EMAIL, CreditKind.MESSAGING
SELLER = "DE"

CATALOG = load_catalog()


def plan(code: str) -> Plan:
    found = CATALOG.plan(code)
    assert found is not None
    return found


FREE, EMAIL, OMNI, CUSTOM = plan("free"), plan("email"), plan("omnichannel"), plan("custom")
PAID_PLANS = (EMAIL, OMNI)


@functools.cache
def vat() -> TaxCalculator:
    calculators: list[TaxCalculator] = []
    billing_gateway_tax_vat.register_tax_calculators(register=calculators.append)
    assert len(calculators) == 1
    return calculators[0]


DE_PERSON = TaxCustomer(CustomerKind.PERSON, "DE")
FR_PERSON = TaxCustomer(CustomerKind.PERSON, "FR")
NL_COMPANY = TaxCustomer(CustomerKind.COMPANY, "NL", "NL004495445B01")
DE_COMPANY = TaxCustomer(CustomerKind.COMPANY, "DE", "DE136695976")
US_PERSON = TaxCustomer(CustomerKind.PERSON, "US")
HU_PERSON = TaxCustomer(CustomerKind.PERSON, "HU")  # 27 %
FI_PERSON = TaxCustomer(CustomerKind.PERSON, "FI")  # 25.5 %: a rate with three decimals

Q = Decimal("0.01")


def at(year: int, month: int, day: int, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


def half_up(value: Decimal | Fraction) -> Decimal:
    """Round an exact value half-up to cents, independently of the code under test."""
    if isinstance(value, Decimal):
        return value.quantize(Q, ROUND_HALF_UP)
    cents, remainder = divmod(abs(value) * 100, 1)
    cents += 1 if remainder >= Fraction(1, 2) else 0
    return Decimal(int(cents) if value >= 0 else -int(cents)).scaleb(-2)


def order(
    current: Configuration,
    target: Configuration,
    now: datetime,
    *,
    start: datetime | None = None,
    customer: TaxCustomer | None = DE_PERSON,
) -> PricedOrder:
    start = start or now
    return price_order(
        Subscription(current, start, add_months(start, 1)),
        target,
        now,
        customer=customer,
        tax=vat() if customer else None,
        seller_country=SELLER,
    )


# ------------------------------------------------------------------ strategies


def slider(p: Plan, kind: CreditKind) -> st.SearchStrategy[int]:
    option = p.option(kind)
    if option is None:
        return st.just(0)
    positions = (option.max - option.min) // option.step
    return st.integers(0, positions).map(lambda k: option.min + k * option.step)


@st.composite
def configurations(draw: st.DrawFn, plans: tuple[Plan, ...] = PAID_PLANS) -> Configuration:
    p = draw(st.sampled_from(plans))
    return Configuration(p, draw(slider(p, EMAIL_KIND)), draw(slider(p, MESSAGING_KIND)))


FREE_CONFIG = Configuration(FREE, FREE.default_limit(EMAIL_KIND), 0)
any_configurations = st.one_of(st.just(FREE_CONFIG), configurations())

period_starts = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)
)
customers = st.sampled_from(
    [DE_PERSON, FR_PERSON, NL_COMPANY, DE_COMPANY, US_PERSON, HU_PERSON, FI_PERSON, None]
)


@st.composite
def subscriptions(
    draw: st.DrawFn, configs: st.SearchStrategy[Configuration] = any_configurations
) -> tuple[Subscription, datetime]:
    """A subscription and a ``now`` inside its period."""
    start = draw(period_starts)
    end = add_months(start, 1)
    span = (end - start) // timedelta(microseconds=1)
    now = start + timedelta(microseconds=draw(st.integers(0, span - 1)))
    return Subscription(draw(configs), start, end), now


def check_charge(charge: Charge, customer: TaxCustomer | None) -> None:
    """The invariants of every charge: exact sums, rounded amounts, VAT once per rate on the base."""
    assert charge.subtotal == money_sum((line.amount for line in charge.lines), "EUR")
    assert charge.tax == money_sum((t.amount for t in charge.tax_lines), "EUR")
    assert charge.total == charge.subtotal + charge.tax
    assert charge.total.amount == charge.subtotal.amount + sum(t.amount.amount for t in charge.tax_lines)
    for money in (charge.subtotal, charge.tax, charge.total, *(line.amount for line in charge.lines)):
        assert money.is_rounded and money.currency == "EUR"
        assert money.amount.as_tuple().exponent == -2  # reads 0.00, never 0
    if customer is None:
        assert not charge.tax_calculated and charge.tax_lines == () and not charge.tax
        return
    assert charge.tax_calculated
    if not charge.lines:
        assert charge.tax_lines == () and not charge.total
        return
    rates = [t.rate for t in charge.tax_lines]
    assert len(rates) == len(set(rates)) == 1  # one line per rate (one rate per customer here)
    for line in charge.tax_lines:
        assert line.base == charge.subtotal  # computed once, on the whole taxable base
        assert line.amount.amount == half_up(charge.subtotal.amount * line.rate)
        assert line.amount.is_rounded


def expected_now_part(current: Configuration, target: Configuration) -> Configuration | None:
    """The part applied now between paid plans (the README's rule, restated independently of
    classify()): the target plan with each limit at the smallest slider position of that plan
    that is at least max(current, target); None where no position is (above the max, or a kind
    the target plan lacks while the workspace has some)."""
    limits = []
    for kind in (EMAIL_KIND, MESSAGING_KIND):
        have, want = current.limit(kind), target.limit(kind)
        if have <= want:
            limits.append(want)
            continue
        option = target.plan.option(kind)
        positions = range(option.min, option.max + 1, option.step) if option else range(0)
        kept = next((v for v in positions if v >= have), None)
        if kept is None:
            return None
        limits.append(kept)
    return Configuration(target.plan, *limits)


def expected_kind(current: Configuration, target: Configuration) -> ChangeKind:
    """The timing rules of the README, restated independently of classify()."""
    if current == target:
        return ChangeKind.NONE
    if current.plan.is_free:
        return ChangeKind.DOWNGRADE if target.plan.is_free else ChangeKind.NEW_PERIOD
    if target.plan.is_free or target.plan.tier < current.plan.tier:
        return ChangeKind.DOWNGRADE
    raised = any(target.limit(kind) > current.limit(kind) for kind in (EMAIL_KIND, MESSAGING_KIND))
    if current.plan == target.plan and not raised:
        return ChangeKind.DOWNGRADE
    now_part = expected_now_part(current, target)
    if now_part is None or price_configuration(now_part)[1] < price_configuration(current)[1]:
        return ChangeKind.DOWNGRADE
    return ChangeKind.UPGRADE if now_part == target else ChangeKind.SPLIT


# ------------------------------------------------------- properties of orders


@settings(deadline=None, max_examples=300)
@given(sub_now=subscriptions(), target=any_configurations, customer=customers)
def test_every_order_keeps_its_sums_exact(
    sub_now: tuple[Subscription, datetime], target: Configuration, customer: TaxCustomer | None
) -> None:
    subscription, now = sub_now
    result = price_order(
        subscription, target, now, customer=customer, tax=vat() if customer else None, seller_country=SELLER
    )
    check_charge(result.due_now, customer)
    check_charge(result.due_at_renewal, customer)
    assert result.monthly_subtotal == money_sum((line.amount for line in result.monthly_lines), "EUR")
    assert result.kind is expected_kind(subscription.configuration, target)
    assert result.renewal_at == result.period_end
    assert result.period_start <= now < result.period_end
    assert result.due_now.total >= eur("0")  # nothing in the core refunds
    # price_order builds its records with tuple.__new__ (pricing._tuple_new): each is whole.
    assert len(result) == len(PricedOrder._fields)
    for charge in (result.due_now, result.due_at_renewal):
        assert len(charge) == len(Charge._fields) and type(charge.tax_calculated) is bool
    for change in result.changes:
        assert len(change) == len(Change._fields) and isinstance(change.configuration, Configuration)


@settings(deadline=None, max_examples=250)
@given(sub_now=subscriptions(configurations()), data=st.data(), customer=customers)
def test_changes_between_paid_configurations_follow_the_timing_rules(
    sub_now: tuple[Subscription, datetime], data: st.DataObject, customer: TaxCustomer | None
) -> None:
    subscription, now = sub_now
    current = subscription.configuration
    # Half the time on the same plan, where splits, raises and reductions happen.
    target = data.draw(st.one_of(configurations(), configurations((current.plan,))))
    result = price_order(
        subscription, target, now, customer=customer, tax=vat() if customer else None, seller_country=SELLER
    )
    kind = result.kind
    # The period anchor stays for every change between paid configurations.
    assert (result.period_start, result.period_end) == (subscription.period_start, subscription.period_end)

    if kind is ChangeKind.NONE:
        assert result.changes == () and result.due_now.lines == () and not result.due_now.total
    elif kind is ChangeKind.DOWNGRADE:
        assert result.due_now.lines == () and result.due_now.tax_lines == ()
        assert result.due_now.total == eur("0")
        assert result.changes == (Change(Timing.AT_RENEWAL, subscription.period_end, target),)
        assert result.proration_days is None
    else:
        assert kind in (ChangeKind.UPGRADE, ChangeKind.SPLIT)
        now_part = result.changes[0].configuration
        assert result.changes[0] == Change(Timing.IMMEDIATE, now, now_part)
        if kind is ChangeKind.UPGRADE:
            assert result.changes == (Change(Timing.IMMEDIATE, now, target),)
        else:
            # Changed deliberately (issue 9, part 1): a SPLIT used to be on the same plan only
            # (`assert current.plan == target.plan`); across plans it now splits too.
            assert now_part == expected_now_part(current, target)
            assert now_part.plan == target.plan
            assert now_part not in (current, target)
            assert result.changes[1] == Change(Timing.AT_RENEWAL, subscription.period_end, target)
            assert len(result.changes) == 2
        assert result.due_now.total >= eur("0")
        # No cent lost to proration: the due-now subtotal is exactly the difference of the two prorations.
        assert result.proration_days is not None
        days_left, period_days = result.proration_days
        assert period_days == (subscription.period_end.date() - subscription.period_start.date()).days
        assert days_left == (subscription.period_end.date() - now.date()).days
        new = prorate(price_configuration(now_part)[1], days_left, period_days)
        old = prorate(price_configuration(current)[1], days_left, period_days)
        assert result.due_now.subtotal == new - old
        remaining, unused = result.due_now.lines
        assert (remaining.kind, remaining.amount) == (LineKind.REMAINING_TIME, new)
        assert (unused.kind, unused.amount) == (LineKind.UNUSED_TIME, -old)

    if kind is not ChangeKind.NONE:
        # Whatever applies now keeps every limit the workspace has; the renewal brings the target.
        for change in result.changes[:-1]:
            assert all(
                change.configuration.limit(k) >= current.limit(k) for k in (EMAIL_KIND, MESSAGING_KIND)
            )
        assert result.changes[-1].configuration == target

    # The renewal charges the configuration in force after the scheduled change, in full.
    renewal_config = target if kind is not ChangeKind.NONE else current
    assert result.due_at_renewal.lines == price_configuration(renewal_config)[0]


@settings(deadline=None, max_examples=150)
@given(sub_now=subscriptions(st.just(FREE_CONFIG)), target=configurations(), customer=customers)
def test_from_free_a_new_period_starts_now_at_the_full_price(
    sub_now: tuple[Subscription, datetime], target: Configuration, customer: TaxCustomer | None
) -> None:
    subscription, now = sub_now
    result = price_order(
        subscription, target, now, customer=customer, tax=vat() if customer else None, seller_country=SELLER
    )
    assert result.kind is ChangeKind.NEW_PERIOD
    monthly_lines, monthly = price_configuration(target)
    assert result.due_now.lines == monthly_lines == result.monthly_lines
    assert result.due_now.subtotal == monthly == result.monthly_subtotal
    if customer is not None:
        rate = vat().calculate(TaxRequest(SELLER, customer, monthly, now.date()))[0].rate
        assert result.due_now.total.amount == monthly.amount + half_up(monthly.amount * rate)
    else:
        assert result.due_now.total == monthly
    assert result.period_start == now and result.period_end == add_months(now, 1) == result.renewal_at
    assert result.changes == (Change(Timing.IMMEDIATE, now, target),)
    assert result.proration_days is None
    assert result.due_at_renewal.lines == monthly_lines


@settings(deadline=None, max_examples=100)
@given(sub_now=subscriptions(configurations()), customer=customers)
def test_moving_to_free_is_a_downgrade_with_nothing_to_pay(
    sub_now: tuple[Subscription, datetime], customer: TaxCustomer | None
) -> None:
    subscription, now = sub_now
    result = price_order(
        subscription,
        FREE_CONFIG,
        now,
        customer=customer,
        tax=vat() if customer else None,
        seller_country=SELLER,
    )
    assert result.kind is ChangeKind.DOWNGRADE
    assert result.due_now.lines == () and result.due_now.total == eur("0")
    assert result.due_at_renewal.lines == () and result.due_at_renewal.total == eur("0")
    assert result.changes == (Change(Timing.AT_RENEWAL, subscription.period_end, FREE_CONFIG),)


def catalog_with_free(name: str, free_email: int, *plans: dict[str, object]) -> Catalog:
    """A test catalog in EUR: a Free plan with ``free_email`` credits, then ``plans``."""
    free = {
        "code": "free",
        "name": "Free",
        "tier": 0,
        "channels": ["email"],
        "base_price": "0",
        "adjustable": False,
        "credits": {"email": {"included": free_email}},
    }
    return parse_catalog(
        {
            "currency": "EUR",
            "default_plan": "free",
            "sales_contact": "sales@example.com",
            "plans": [free, *plans],
        },
        name,
    )


# A catalog where a higher plan cannot hold every limit of a lower one: Pro has a coarser
# email step and a lower email max than Basic, and no messaging at all; Plus has both kinds,
# and email credits beyond 100,000 so cheap that a big Basic configuration costs more.
STEP_CATALOG = catalog_with_free(
    "step",
    100,
    {
        "code": "basic",
        "name": "Basic",
        "tier": 1,
        "channels": ["email", "sms"],
        "base_price": "10.00",
        "adjustable": True,
        "credits": {
            "email": {
                "included": 1000,
                "min": 1000,
                "max": 300000,
                "step": 1000,
                "tiers": [{"unit_price": "0.002"}],
            },
            "messaging": {
                "included": 0,
                "min": 0,
                "max": 10000,
                "step": 500,
                "tiers": [{"unit_price": "0.01"}],
            },
        },
    },
    {
        "code": "pro",
        "name": "Pro",
        "tier": 2,
        "channels": ["email"],
        "base_price": "30.00",
        "adjustable": True,
        "credits": {
            "email": {
                "included": 10000,
                "min": 10000,
                "max": 200000,
                "step": 10000,
                "tiers": [{"unit_price": "0.0025"}],
            },
        },
    },
    {
        "code": "plus",
        "name": "Plus",
        "tier": 3,
        "channels": ["email", "sms"],
        "base_price": "50.00",
        "adjustable": True,
        "credits": {
            "email": {
                "included": 0,
                "min": 0,
                "max": 1000000,
                "step": 25000,
                "tiers": [{"up_to": 100000, "unit_price": "0.003"}, {"unit_price": "0.0002"}],
            },
            "messaging": {
                "included": 0,
                "min": 0,
                "max": 50000,
                "step": 2000,
                "tiers": [{"unit_price": "0.02"}],
            },
        },
    },
)
STEP_FREE, BASIC, PRO, PLUS = STEP_CATALOG.plans


@st.composite
def held_configurations(draw: st.DrawFn) -> Configuration:
    """What a workspace may hold: any limit between a plan's min and max, on its step or not
    (the catalog's step may have changed since it bought it)."""
    p = draw(st.sampled_from((BASIC, PRO, PLUS)))
    limits = []
    for kind in (EMAIL_KIND, MESSAGING_KIND):
        option = p.option(kind)
        limits.append(draw(st.integers(option.min, option.max)) if option else 0)
    return Configuration(p, *limits)


@st.composite
def step_targets(draw: st.DrawFn) -> Configuration:
    p = draw(st.sampled_from(STEP_CATALOG.plans))
    return Configuration(p, draw(slider(p, EMAIL_KIND)), draw(slider(p, MESSAGING_KIND)))


@settings(deadline=None, max_examples=400)
@given(sub_now=subscriptions(held_configurations()), target=step_targets(), customer=customers)
def test_the_part_applied_now_never_lowers_a_limit_and_the_renewal_brings_the_target(
    sub_now: tuple[Subscription, datetime], target: Configuration, customer: TaxCustomer | None
) -> None:
    subscription, now = sub_now
    current = subscription.configuration
    result = price_order(
        subscription, target, now, customer=customer, tax=vat() if customer else None, seller_country=SELLER
    )
    check_charge(result.due_now, customer)
    check_charge(result.due_at_renewal, customer)
    assert result.kind is expected_kind(current, target)
    assert classify(current, target) == (
        result.kind,
        next((c.configuration for c in result.changes if c.timing is Timing.IMMEDIATE), None),
        next((c.configuration for c in result.changes if c.timing is Timing.AT_RENEWAL), None),
    )
    if result.kind is ChangeKind.NONE:
        assert result.changes == ()
        return
    assert result.changes[-1].configuration == target  # the renewal part is the exact target
    immediate = [c for c in result.changes if c.timing is Timing.IMMEDIATE]
    scheduled = [c for c in result.changes if c.timing is Timing.AT_RENEWAL]
    assert len(immediate) <= 1 and len(scheduled) <= 1
    assert [c.timing for c in result.changes] == [Timing.IMMEDIATE] * len(immediate) + [
        Timing.AT_RENEWAL
    ] * len(scheduled)
    assert (result.kind is ChangeKind.SPLIT) == bool(immediate and scheduled)
    assert all(c.effective_at == now for c in immediate)
    assert all(c.effective_at == subscription.period_end for c in scheduled)
    assert result.due_at_renewal.lines == (() if target.plan.is_free else price_configuration(target)[0])
    if not immediate:
        assert result.kind is ChangeKind.DOWNGRADE and result.due_now.total == eur("0")
        return
    now_part = immediate[0].configuration
    assert now_part.plan == target.plan
    # A slider position of the target plan that keeps every limit the workspace has.
    assert (
        configure(target.plan, STEP_CATALOG, None, now_part.email_credits, now_part.messaging_credits)
        == now_part
    )
    assert all(now_part.limit(k) >= current.limit(k) for k in (EMAIL_KIND, MESSAGING_KIND))
    assert all(now_part.limit(k) >= target.limit(k) for k in (EMAIL_KIND, MESSAGING_KIND))
    # Priced as an upgrade: exactly the difference of the two prorations, never a refund.
    assert result.proration_days is not None
    days_left, period_days = result.proration_days
    new = prorate(price_configuration(now_part)[1], days_left, period_days)
    old = prorate(price_configuration(current)[1], days_left, period_days)
    assert result.due_now.subtotal == new - old >= eur("0")


@pytest.mark.parametrize(
    ("current", "target", "kind", "now_part"),
    [
        # Basic's 123,000 email credits are off Plus's 25,000 step: rounded up to 125,000.
        (
            Configuration(BASIC, 123000, 500),
            Configuration(PLUS, 25000, 2000),
            ChangeKind.SPLIT,
            (125000, 2000),
        ),
        # Off Pro's 10,000 step, and Pro has no messaging: the 500 messaging credits cannot stay.
        (Configuration(BASIC, 123000, 500), Configuration(PRO, 10000, 0), ChangeKind.DOWNGRADE, None),
        (Configuration(BASIC, 123000, 0), Configuration(PRO, 10000, 0), ChangeKind.SPLIT, (130000, 0)),
        # 250,000 is above Pro's max of 200,000: clamping would lower it now, so all waits.
        (Configuration(BASIC, 250000, 0), Configuration(PRO, 200000, 0), ChangeKind.DOWNGRADE, None),
        (Configuration(BASIC, 200000, 0), Configuration(PRO, 200000, 0), ChangeKind.UPGRADE, (200000, 0)),
        # Plus with all Basic's limits costs less than Basic does (refund): at renewal.
        (Configuration(BASIC, 300000, 0), Configuration(PLUS, 0, 0), ChangeKind.DOWNGRADE, None),
    ],
)
def test_limits_the_target_plan_cannot_hold_as_they_are(
    current: Configuration, target: Configuration, kind: ChangeKind, now_part: tuple[int, int] | None
) -> None:
    assert classify(current, target) == (
        kind,
        None if now_part is None else Configuration(target.plan, *now_part),
        None if kind is ChangeKind.UPGRADE else target,
    )


# -------------------------------------------------------- monthly prices


@pytest.mark.parametrize(
    ("p", "kind", "other"),
    [
        (EMAIL, EMAIL_KIND, 0),
        (OMNI, EMAIL_KIND, 1000),
        (OMNI, EMAIL_KIND, 500000),
        (OMNI, MESSAGING_KIND, 5000),
        (OMNI, MESSAGING_KIND, 1000000),
    ],
)
def test_the_monthly_price_never_falls_as_a_volume_rises(p: Plan, kind: CreditKind, other: int) -> None:
    """Every slider position, in order: exhaustive, so no counter-example can hide between draws."""
    option = p.option(kind)
    assert option is not None
    previous = None
    for value in range(option.min, option.max + 1, option.step):
        config = Configuration(p, value, other) if kind is EMAIL_KIND else Configuration(p, other, value)
        subtotal = price_configuration(config)[1]
        if previous is not None:
            assert subtotal >= previous, f"{config} costs {subtotal}, less than {previous}"
        previous = subtotal


@settings(deadline=None, max_examples=200)
@given(data=st.data(), p=st.sampled_from(PAID_PLANS))
def test_monthly_price_is_monotone_in_each_limit(data: st.DataObject, p: Plan) -> None:
    a, b = (
        Configuration(p, data.draw(slider(p, EMAIL_KIND)), data.draw(slider(p, MESSAGING_KIND))),
        Configuration(p, data.draw(slider(p, EMAIL_KIND)), data.draw(slider(p, MESSAGING_KIND))),
    )
    if a.email_credits <= b.email_credits and a.messaging_credits <= b.messaging_credits:
        assert price_configuration(a)[1] <= price_configuration(b)[1]


def expected_tier_amounts(p: Plan, config: Configuration) -> dict[CreditKind, list[tuple[int, Decimal]]]:
    """Graduated tiers computed the slow way: credit by credit range, independently of the code."""
    result: dict[CreditKind, list[tuple[int, Decimal]]] = {}
    for kind in (EMAIL_KIND, MESSAGING_KIND):
        option = p.option(kind)
        if option is None:
            continue
        rows, start = [], option.included
        for tier in option.tiers:
            end = config.limit(kind) if tier.up_to is None else min(tier.up_to, config.limit(kind))
            if end > start:
                rows.append((end - start, tier.unit_price))
                start = end
        result[kind] = rows
    return result


@settings(deadline=None, max_examples=200)
@given(config=configurations())
def test_graduated_tier_lines_sum_exactly_to_the_subtotal(config: Configuration) -> None:
    lines, subtotal = price_configuration(config)
    base, *credit_lines = lines
    assert base.kind is LineKind.BASE and base.amount == config.plan.base_price
    assert all(line.kind is LineKind.CREDITS and line.amount.is_rounded for line in credit_lines)
    assert subtotal == money_sum((line.amount for line in lines), "EUR")
    expected = expected_tier_amounts(config.plan, config)
    for kind, rows in expected.items():
        mine = [line for line in credit_lines if line.credit_kind is kind]
        assert [(line.quantity, line.unit_price.amount if line.unit_price else None) for line in mine] == rows
        assert [line.amount.amount for line in mine] == [half_up(n * price) for n, price in rows]
        assert sum(line.quantity for line in mine) == config.limit(kind) - config.plan.credits[kind].included


# A catalog whose per-credit prices do not land on whole cents, so each tier line must round.
ODD_CATALOG = catalog_with_free(
    "odd",
    10,
    {
        "code": "odd",
        "name": "Odd",
        "tier": 1,
        "channels": ["email", "sms"],
        "base_price": "9.99",
        "adjustable": True,
        "credits": {
            "email": {
                "included": 7,
                "min": 7,
                "max": 100007,
                "step": 1,
                "tiers": [
                    {"up_to": 1003, "unit_price": "0.00333"},
                    {"up_to": 50001, "unit_price": "0.0049"},
                    {"unit_price": "0.000125"},
                ],
            },
            "messaging": {
                "included": 0,
                "min": 0,
                "max": 9999,
                "step": 3,
                "tiers": [
                    {"up_to": 7, "unit_price": "0"},
                    {"up_to": 20, "unit_price": "0.0155"},
                    {"unit_price": "0.00777"},
                ],
            },  # the first 7 credits are free
        },
    },
)
ODD = ODD_CATALOG.plans[1]


@settings(deadline=None, max_examples=200)
@given(email=slider(ODD, EMAIL_KIND), messaging=slider(ODD, MESSAGING_KIND))
def test_rounded_tier_lines_still_sum_exactly_with_odd_prices(email: int, messaging: int) -> None:
    config = Configuration(ODD, email, messaging)
    lines, subtotal = price_configuration(config)
    assert all(line.amount.is_rounded for line in lines)
    assert subtotal == money_sum((line.amount for line in lines), "EUR")
    exact = ODD.base_price.amount + sum(  # type: ignore[union-attr]
        n * price for rows in expected_tier_amounts(ODD, config).values() for n, price in rows
    )
    # Each tier line rounds once, half-up: the subtotal is within half a cent per credit line.
    assert abs(subtotal.amount - exact) <= Decimal("0.005") * (len(lines) - 1)
    for line in lines[1:]:
        assert line.unit_price is not None
        assert line.amount.amount == half_up(line.quantity * line.unit_price.amount)
    for kind, rows in expected_tier_amounts(ODD, config).items():
        priced = [
            (line.quantity, line.unit_price.amount)
            for line in lines[1:]  # type: ignore[union-attr]
            if line.credit_kind is kind
        ]
        assert priced == [(n, price) for n, price in rows if price]  # free tiers get no line


def test_odd_catalog_monthly_price_is_monotone() -> None:
    previous = None
    for email in range(7, 5000, 1):
        subtotal = price_configuration(Configuration(ODD, email, 0))[1]
        assert previous is None or subtotal >= previous
        previous = subtotal


# ----------------------------------------------------------------- proration


amounts = st.integers(min_value=-(10**9), max_value=10**9).map(lambda u: Money.from_minor_units(u, "EUR"))
period_lengths = st.integers(min_value=28, max_value=31)


@settings(deadline=None, max_examples=300)
@given(amount=amounts, period_days=period_lengths, data=st.data())
def test_prorate_is_exact_half_up_and_monotone(amount: Money, period_days: int, data: st.DataObject) -> None:
    assert prorate(amount, period_days, period_days) == amount
    assert prorate(amount, 0, period_days) == eur("0")
    days = data.draw(st.integers(0, period_days))
    result = prorate(amount, days, period_days)
    assert result.is_rounded
    assert result.amount == half_up(Fraction(amount.amount) * days / period_days)
    assert prorate(-amount, days, period_days) == -result  # half-up is symmetric
    if amount >= eur("0"):
        assert [prorate(amount, d, period_days) for d in range(period_days + 1)] == sorted(
            prorate(amount, d, period_days) for d in range(period_days + 1)
        )
        smaller = Money.from_minor_units(data.draw(st.integers(0, amount.minor_units)), "EUR")
        assert prorate(smaller, days, period_days) <= result


def test_prorate_examples() -> None:
    assert prorate(eur("95.00"), 13, 30) == eur("41.17")  # 41.1666...
    assert prorate(eur("22.50"), 13, 30) == eur("9.75")
    assert prorate(eur("0.03"), 1, 2) == eur("0.02")  # 0.015 rounds up
    assert prorate(eur("-0.03"), 1, 2) == eur("-0.02")
    assert prorate(eur("10.005"), 1, 1) == eur("10.01")  # the amount is rounded first


# ------------------------------------------------------ hand-computed examples


def test_omnichannel_monthly_price() -> None:
    lines, subtotal = price_configuration(Configuration(OMNI, 50000, 20000))
    assert [(line.kind, line.description, line.quantity, line.amount) for line in lines] == [
        (LineKind.BASE, "Omnichannel plan, monthly base price", 1, eur("39.00")),
        (LineKind.CREDITS, "Email credits 5,001–50,000", 45000, eur("54.00")),
        (LineKind.CREDITS, "Messaging credits 1,001–20,000", 19000, eur("180.50")),
    ]
    assert lines[1].unit_price == eur("0.0012") and lines[2].unit_price == eur("0.0095")
    assert subtotal == eur("273.50")


def test_omnichannel_across_three_tiers() -> None:
    # 39 + 45,000×0.0012 + 200,000×0.0009 + 50,000×0.0006 + 19,000×0.0095 + 80,000×0.0090 + 100,000×0.0085
    _, subtotal = price_configuration(Configuration(OMNI, 300000, 200000))
    assert (
        subtotal
        == eur("39.00")
        + eur("54.00")
        + eur("180.00")
        + eur("30.00")
        + eur("180.50")
        + eur("720.00")
        + eur("850.00")
        == eur("2053.50")
    )


def test_plan_defaults_and_minimums() -> None:
    assert price_configuration(Configuration(EMAIL, 5000, 0))[1] == eur("15.00")  # only included credits
    assert price_configuration(Configuration(EMAIL, 10000, 0))[1] == eur("22.50")  # 15 + 5,000×0.0015
    assert price_configuration(Configuration(OMNI, 20000, 5000))[1] == eur("95.00")  # 39 + 18 + 38
    assert price_configuration(FREE_CONFIG)[1] == eur("0.00")


def test_email_to_omnichannel_upgrade_with_13_of_30_days_left() -> None:
    start, now = at(2026, 11, 1), at(2026, 11, 18, 15)  # November: 30 days, 13 left
    result = order(Configuration(EMAIL, 10000, 0), Configuration(OMNI, 20000, 5000), now, start=start)
    assert result.kind is ChangeKind.UPGRADE
    assert result.proration_days == (13, 30)
    assert [(line.kind, line.amount) for line in result.due_now.lines] == [
        (LineKind.REMAINING_TIME, eur("41.17")),  # 95.00 × 13/30 = 41.1666…
        (LineKind.UNUSED_TIME, eur("-9.75")),  # 22.50 × 13/30
    ]
    assert result.due_now.lines[0].description == (
        "Remaining time on Omnichannel (20,000 email, 5,000 messaging credits), 13 of 30 days"
    )
    assert result.due_now.lines[1].description == "Unused time on Email (10,000 email credits), 13 of 30 days"
    assert result.due_now.subtotal == eur("31.42")
    (tax,) = result.due_now.tax_lines
    assert (tax.name, tax.rate, tax.amount) == ("VAT 19% (DE)", Decimal("0.19"), eur("5.97"))  # 5.9698
    assert result.due_now.total == eur("37.39")
    assert (result.period_start, result.period_end) == (start, at(2026, 12, 1))
    assert result.renewal_at == at(2026, 12, 1)
    assert result.due_at_renewal.subtotal == eur("95.00")
    assert result.due_at_renewal.total == eur("113.05")


@pytest.mark.parametrize(
    ("current", "target", "now_part", "due_now_lines", "due_now", "renewal"),
    [
        # Same plan. Now: 39 + 54 + 45 (50,000 × 0.0009) + 180.50 = 318.50, current 273.50;
        # + 2.85 VAT. Renewal: 39 + 99 + 9,000 × 0.0095 = 223.50, + 42.465 → 42.47 VAT.
        (
            Configuration(OMNI, 50000, 20000),
            Configuration(OMNI, 100000, 10000),
            Configuration(OMNI, 100000, 20000),
            ("106.17", "-91.17"),
            ("15.00", "17.85"),
            ("223.50", "265.97"),
        ),
        # Issue 9's example, across plans: Email with 100,000 credits (15 + 67.50 + 50 = 132.50)
        # to Omnichannel 5,000/20,000. The plan and the messaging credits apply now, the email
        # limit stays 100,000 (318.50, as above) until renewal, when it drops to 5,000.
        # + 11.78 VAT now. Renewal: 39 + 180.50 = 219.50, + 41.705 → 41.71 VAT.
        (
            Configuration(EMAIL, 100000, 0),
            Configuration(OMNI, 5000, 20000),
            Configuration(OMNI, 100000, 20000),
            ("106.17", "-44.17"),
            ("62.00", "73.78"),
            ("219.50", "261.21"),
        ),
    ],
)
def test_a_split_raises_now_and_lowers_at_renewal(
    current: Configuration,
    target: Configuration,
    now_part: Configuration,
    due_now_lines: tuple[str, str],
    due_now: tuple[str, str],
    renewal: tuple[str, str],
) -> None:
    start, now = at(2026, 11, 1), at(2026, 11, 21)  # 10 of 30 days left
    result = order(current, target, now, start=start)
    assert result.kind is ChangeKind.SPLIT
    assert result.changes == (
        Change(Timing.IMMEDIATE, now, now_part),
        Change(Timing.AT_RENEWAL, at(2026, 12, 1), target),
    )
    assert price_configuration(now_part)[1] == eur("318.50")
    assert [line.amount for line in result.due_now.lines] == [eur(a) for a in due_now_lines]
    assert (result.due_now.subtotal, result.due_now.total) == tuple(eur(a) for a in due_now)
    assert result.monthly_subtotal == result.due_at_renewal.subtotal == eur(renewal[0])
    assert result.due_at_renewal.total == eur(renewal[1])


def test_same_plan_decrease_is_scheduled() -> None:
    start, now = at(2026, 11, 1), at(2026, 11, 21)
    result = order(Configuration(OMNI, 50000, 20000), Configuration(OMNI, 20000, 20000), now, start=start)
    assert result.kind is ChangeKind.DOWNGRADE
    assert result.due_now.lines == () and result.due_now.tax_lines == ()
    assert result.due_now.total == eur("0.00")
    assert result.changes == (Change(Timing.AT_RENEWAL, at(2026, 12, 1), Configuration(OMNI, 20000, 20000)),)


def test_from_free_to_omnichannel() -> None:
    now = at(2026, 1, 31, 10)
    result = order(FREE_CONFIG, Configuration(OMNI, 50000, 20000), now, start=at(2026, 1, 10))
    assert result.kind is ChangeKind.NEW_PERIOD
    assert result.due_now.subtotal == eur("273.50")
    assert result.due_now.tax == eur("51.97")  # 51.965
    assert result.due_now.total == eur("325.47")
    assert (result.period_start, result.period_end) == (now, at(2026, 2, 28, 10))


def test_vat_is_computed_once_on_the_base_not_per_line() -> None:
    # Lines 39.00 + 54.00 + 4.50 + 9.50 = 107.00: VAT 19% of the total is 20.33,
    # while rounding each line's VAT would give 7.41 + 10.26 + 0.86 + 1.81 = 20.34.
    result = order(FREE_CONFIG, Configuration(OMNI, 55000, 2000), at(2026, 3, 1))
    assert [line.amount for line in result.due_now.lines] == [
        eur("39.00"),
        eur("54.00"),
        eur("4.50"),
        eur("9.50"),
    ]
    (tax,) = result.due_now.tax_lines
    assert tax.base == eur("107.00") and tax.amount == eur("20.33")
    assert result.due_now.total == eur("127.33")


def test_tax_treatments_by_customer() -> None:
    now, target = at(2026, 3, 1), Configuration(OMNI, 50000, 20000)  # 273.50
    reverse = order(FREE_CONFIG, target, now, customer=NL_COMPANY).due_now
    (line,) = reverse.tax_lines
    assert line.treatment is TaxTreatment.REVERSE_CHARGE and line.amount == eur("0.00")
    assert line.note and "NL004495445B01" in line.note
    assert reverse.total == eur("273.50")

    outside = order(FREE_CONFIG, target, now, customer=US_PERSON).due_now
    (line,) = outside.tax_lines
    assert line.treatment is TaxTreatment.OUT_OF_SCOPE and outside.total == eur("273.50")

    assert order(FREE_CONFIG, target, now, customer=FR_PERSON).due_now.total == eur("328.20")  # 20%
    assert order(FREE_CONFIG, target, now, customer=FI_PERSON).due_now.tax == eur("69.74")  # 25.5%: 69.7425
    assert order(FREE_CONFIG, target, now, customer=DE_COMPANY).due_now.tax == eur("51.97")  # domestic


def test_renewal_uses_the_rate_in_force_at_renewal() -> None:
    # German VAT was 16% from 2020-07-01 to 2020-12-31: a December order renews in January at 19%.
    start, now = at(2020, 12, 1), at(2020, 12, 10)
    result = order(Configuration(EMAIL, 10000, 0), Configuration(EMAIL, 20000, 0), now, start=start)
    assert result.due_now.tax_lines[0].rate == Decimal("0.16")
    assert result.due_at_renewal.tax_lines[0].rate == Decimal("0.19")


def test_without_billing_details_tax_is_not_calculated() -> None:
    result = order(FREE_CONFIG, Configuration(OMNI, 50000, 20000), at(2026, 3, 1), customer=None)
    assert not result.due_now.tax_calculated and result.due_now.tax_lines == ()
    assert result.due_now.total == result.due_now.subtotal == eur("273.50")


def test_no_change() -> None:
    config = Configuration(OMNI, 50000, 20000)
    result = order(config, config, at(2026, 3, 5), start=at(2026, 3, 1))
    assert result.kind is ChangeKind.NONE and result.changes == ()
    assert result.due_now.total == eur("0") and result.due_now.lines == ()
    assert result.due_at_renewal.subtotal == eur("273.50")


def test_cheaper_configuration_of_a_higher_plan_is_a_downgrade() -> None:
    # Email with 500,000 credits (442.50) to the cheapest Omnichannel (39.00): scheduled, not refunded.
    current = Configuration(EMAIL, 500000, 0)
    assert price_configuration(current)[1] == eur("442.50")
    kind, now_part, scheduled = classify(current, Configuration(OMNI, 5000, 1000))
    assert (kind, now_part, scheduled) == (ChangeKind.DOWNGRADE, None, Configuration(OMNI, 5000, 1000))


def test_lower_tier_plan_is_a_downgrade_even_when_dearer() -> None:
    kind, now_part, _ = classify(Configuration(OMNI, 5000, 1000), Configuration(EMAIL, 500000, 0))
    assert kind is ChangeKind.DOWNGRADE and now_part is None


def test_now_must_fall_inside_the_current_period() -> None:
    config = Configuration(EMAIL, 10000, 0)
    subscription = Subscription(config, at(2026, 3, 1), at(2026, 4, 1))
    for now in (at(2026, 2, 28), at(2026, 4, 1)):
        with pytest.raises(ValueError):
            price_order(subscription, config, now, customer=None, tax=None, seller_country=SELLER)


# ------------------------------------------------------------------ configure


def test_configure_validates_sliders() -> None:
    assert configure(OMNI, CATALOG, None, 50000, 20000) == Configuration(OMNI, 50000, 20000)
    assert configure(OMNI, CATALOG, None, None, None) == Configuration(OMNI, 20000, 5000)  # defaults
    assert configure(EMAIL, CATALOG, None, 5000, 0) == Configuration(EMAIL, 5000, 0)
    assert configure(EMAIL, CATALOG, None, 500000, None) == Configuration(EMAIL, 500000, 0)
    assert configure(FREE, CATALOG, None, 1000, None) == FREE_CONFIG  # its own fixed value is fine


def test_configure_keeps_current_limits_on_the_same_plan_only() -> None:
    current = Configuration(OMNI, 50000, 20000)
    assert configure(OMNI, CATALOG, current, 100000, None) == Configuration(OMNI, 100000, 20000)
    assert configure(OMNI, CATALOG, current, None, 3000) == Configuration(OMNI, 50000, 3000)
    assert configure(EMAIL, CATALOG, current, None, None) == Configuration(EMAIL, 10000, 0)


def test_custom_is_not_purchasable() -> None:
    with pytest.raises(PlanNotPurchasable) as caught:
        configure(CUSTOM, CATALOG, None, None, None)
    assert caught.value.code is ErrorCode.PLAN_NOT_PURCHASABLE and caught.value.field == ("plan_code",)
    assert caught.value.sales_contact == "sales@contact.center"
    assert "sales@contact.center" in str(caught.value)


def test_free_plan_limits_cannot_change() -> None:
    with pytest.raises(PlanNotAdjustable) as caught:
        configure(FREE, CATALOG, FREE_CONFIG, 2000, None)
    assert caught.value.code is ErrorCode.PLAN_NOT_ADJUSTABLE and caught.value.field == ("email_credits",)
    assert caught.value.kind is EMAIL_KIND


@pytest.mark.parametrize(
    ("p", "email", "messaging", "field"),
    [
        (EMAIL, -5000, None, "email_credits"),
        (EMAIL, 0, None, "email_credits"),  # below min
        (EMAIL, 505000, None, "email_credits"),  # above max
        (EMAIL, 12500, None, "email_credits"),  # off-step
        (EMAIL, 10001, None, "email_credits"),
        (EMAIL, None, 1000, "messaging_credits"),  # the Email plan has no messaging credits
        (EMAIL, None, -1, "messaging_credits"),
        (OMNI, None, 1500, "messaging_credits"),
        (OMNI, None, 501000, "messaging_credits"),
        (OMNI, None, -1000, "messaging_credits"),
        (OMNI, 1005000, None, "email_credits"),
        (FREE, None, 10, "messaging_credits"),
    ],
)
def test_invalid_volumes(p: Plan, email: int | None, messaging: int | None, field: str) -> None:
    with pytest.raises(InvalidVolume) as caught:
        configure(p, CATALOG, None, email, messaging)
    error = caught.value
    assert isinstance(error, PricingError) and error.code is ErrorCode.INVALID_VOLUME
    assert error.field == (field,)
    assert error.value == (email if field == "email_credits" else messaging)


@settings(deadline=None, max_examples=200)
@given(
    p=st.sampled_from(PAID_PLANS),
    email=st.integers(-(10**6), 2 * 10**6),
    messaging=st.integers(-(10**4), 10**6),
)
def test_configure_accepts_exactly_the_slider_positions(p: Plan, email: int, messaging: int) -> None:
    def valid(kind: CreditKind, value: int) -> bool:
        option = p.option(kind)
        if option is None:
            return value == 0
        return option.min <= value <= option.max and (value - option.min) % option.step == 0

    if valid(EMAIL_KIND, email) and valid(MESSAGING_KIND, messaging):
        assert configure(p, CATALOG, None, email, messaging) == Configuration(p, email, messaging)
    else:
        with pytest.raises(InvalidVolume):
            configure(p, CATALOG, None, email, messaging)


def test_configurations_are_hashable_values() -> None:
    a, b = Configuration(OMNI, 50000, 20000), configure(OMNI, load_catalog(), None, 50000, 20000)
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1


def test_pricing_does_not_depend_on_which_catalog_instance_priced_before() -> None:
    """Cached prices must follow the plan's content, not a stale entry for an equal-looking key."""
    dearer = replace(OMNI, base_price=eur("49.00"))
    assert price_configuration(Configuration(OMNI, 50000, 20000))[1] == eur("273.50")
    assert price_configuration(Configuration(dearer, 50000, 20000))[1] == eur("283.50")
