"""The pricing core against the same figures computed with plain Decimals.

Both price a typical Order Preview: a workspace on Email (50,000 credits) moves to
Omnichannel (50,000 email / 20,000 messaging credits) with 13 of 30 days left,
for a German consumer (19 % VAT, through the real tax_vat calculator for the core).
The plain version is the floor: no types, no validation, no descriptions. Compare
the means of the two benchmarks in the "pricing core" group (the target is a ratio
of 3 or less): the summary ends with each one over the plain computation, measured in
the same run (see conftest.py). Run for real with ``pytest tests/benchmarks --benchmark-enable``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

import billing_gateway_tax_vat
from gateway.core.catalog import load_catalog
from gateway.core.pricing import (
    ChangeKind,
    Configuration,
    PricedOrder,
    Subscription,
    clear_caches,
    price_order,
)
from gateway.core.tax import CustomerKind, TaxCalculator, TaxCustomer

START = datetime(2026, 11, 1, tzinfo=UTC)
END = datetime(2026, 12, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 18, 15, tzinfo=UTC)  # 13 of 30 days left
CUSTOMER = TaxCustomer(CustomerKind.PERSON, "DE")

# Expected figures, worked by hand:
#   Email 50,000:              15.00 + 45,000 × 0.0015 = 82.50
#   Omnichannel 50,000/20,000: 39.00 + 45,000 × 0.0012 (54.00) + 19,000 × 0.0095 (180.50) = 273.50
#   due now: 273.50 × 13/30 = 118.5166… → 118.52, minus 82.50 × 13/30 = 35.75 → 82.77
#            + VAT 19 % 15.7263 → 15.73 = 98.50
#   at renewal: 273.50 + VAT 51.965 → 51.97 = 325.47
EXPECTED = {
    "monthly": [Decimal("39.00"), Decimal("54.00"), Decimal("180.50")],
    "due_now_lines": [Decimal("118.52"), Decimal("-35.75")],
    "due_now": (Decimal("82.77"), Decimal("15.73"), Decimal("98.50")),
    "renewal": (Decimal("273.50"), Decimal("51.97"), Decimal("325.47")),
}


def _tax_calculator() -> TaxCalculator:
    calculators: list[TaxCalculator] = []
    billing_gateway_tax_vat.register_tax_calculators(register=calculators.append)
    return calculators[0]


def _figures_of(order: PricedOrder) -> dict[str, object]:
    return {
        "monthly": [line.amount.amount for line in order.monthly_lines],
        "due_now_lines": [line.amount.amount for line in order.due_now.lines],
        "due_now": (order.due_now.subtotal.amount, order.due_now.tax.amount, order.due_now.total.amount),
        "renewal": (
            order.due_at_renewal.subtotal.amount,
            order.due_at_renewal.tax.amount,
            order.due_at_renewal.total.amount,
        ),
    }


GROUP = "pricing core: Email → Omnichannel quote"


def _quote_inputs() -> tuple[Subscription, Configuration, TaxCalculator]:
    catalog = load_catalog()
    email, omnichannel = catalog.plan("email"), catalog.plan("omnichannel")
    assert email is not None and omnichannel is not None
    subscription = Subscription(Configuration(email, 50000, 0), START, END)
    return subscription, Configuration(omnichannel, 50000, 20000), _tax_calculator()


def test_pricing_core_omnichannel_upgrade(benchmark) -> None:  # type: ignore[no-untyped-def]
    """The same quote again, as while the user watches the Order Preview: monthly prices and
    the due-now lines are cached."""
    subscription, target, tax = _quote_inputs()

    def run() -> PricedOrder:
        return price_order(subscription, target, NOW, customer=CUSTOMER, tax=tax, seller_country="DE")

    benchmark.group = GROUP
    order = benchmark(run)
    assert order.kind is ChangeKind.UPGRADE and order.proration_days == (13, 30)
    assert _figures_of(order) == EXPECTED


def test_pricing_core_omnichannel_upgrade_cold(benchmark) -> None:  # type: ignore[no-untyped-def]
    """Every slider move is a new target: the same quote with the pricing caches emptied each time."""
    subscription, target, tax = _quote_inputs()

    def run() -> PricedOrder:
        clear_caches()
        return price_order(subscription, target, NOW, customer=CUSTOMER, tax=tax, seller_country="DE")

    benchmark.group = GROUP
    order = benchmark(run)
    assert _figures_of(order) == EXPECTED


# The plain computation: the catalog figures the core reads, written out as Decimals.
CENT = Decimal("0.01")
VAT_DE = Decimal("0.19")
EMAIL_BASE, EMAIL_INCLUDED, EMAIL_TIER_1 = Decimal("15.00"), 5000, Decimal("0.0015")
OMNI_BASE, OMNI_EMAIL_INCLUDED, OMNI_EMAIL_TIER_1 = Decimal("39.00"), 5000, Decimal("0.0012")
OMNI_MESSAGING_INCLUDED, OMNI_MESSAGING_TIER_1 = 1000, Decimal("0.0095")


def _plain_quote() -> dict[str, object]:
    # Monthly lines of both configurations (every volume here falls in the first tier).
    old_email = ((50000 - EMAIL_INCLUDED) * EMAIL_TIER_1).quantize(CENT, ROUND_HALF_UP)
    old_subtotal = EMAIL_BASE + old_email
    new_email = ((50000 - OMNI_EMAIL_INCLUDED) * OMNI_EMAIL_TIER_1).quantize(CENT, ROUND_HALF_UP)
    new_messaging = ((20000 - OMNI_MESSAGING_INCLUDED) * OMNI_MESSAGING_TIER_1).quantize(CENT, ROUND_HALF_UP)
    new_subtotal = OMNI_BASE + new_email + new_messaging
    # Proration for the days left, then VAT once on the base.
    days_left, period_days = (END.date() - NOW.date()).days, (END.date() - START.date()).days
    remaining = (new_subtotal * days_left / period_days).quantize(CENT, ROUND_HALF_UP)
    unused = (old_subtotal * days_left / period_days).quantize(CENT, ROUND_HALF_UP)
    due_subtotal = remaining - unused
    due_vat = (due_subtotal * VAT_DE).quantize(CENT, ROUND_HALF_UP)
    renewal_vat = (new_subtotal * VAT_DE).quantize(CENT, ROUND_HALF_UP)
    return {
        "monthly": [OMNI_BASE, new_email, new_messaging],
        "due_now_lines": [remaining, -unused],
        "due_now": (due_subtotal, due_vat, due_subtotal + due_vat),
        "renewal": (new_subtotal, renewal_vat, new_subtotal + renewal_vat),
    }


def test_plain_decimal_omnichannel_upgrade(benchmark) -> None:  # type: ignore[no-untyped-def]
    benchmark.group = GROUP
    assert benchmark(_plain_quote) == EXPECTED
