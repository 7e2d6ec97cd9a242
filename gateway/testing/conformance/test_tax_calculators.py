"""Tax calculators: exact, rounded, deterministic tax lines; typed refusals; refunds mirror sales.

The requests are sold from ``--conformance-seller-country`` (default DE) to a person in the
same country, a company there without a tax ID and a person abroad, in EUR.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.core.money import Money
from gateway.core.tax import CustomerKind, InvalidTaxId, TaxCalculator, TaxCustomer, TaxLine, TaxRequest

CURRENCY = "EUR"
EXAMPLES = settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
bases = st.integers(min_value=0, max_value=100_000_000).map(
    lambda cents: Money.from_minor_units(cents, CURRENCY)
)
HALF_A_CENT = Decimal("0.005")


@pytest.fixture
def seller(pytestconfig: pytest.Config) -> str:
    return str(pytestconfig.getoption("conformance_seller_country")).upper()


def customers(seller: str) -> list[TaxCustomer]:
    abroad = "US" if seller != "US" else "CA"
    return [
        TaxCustomer(CustomerKind.PERSON, seller),
        TaxCustomer(CustomerKind.COMPANY, seller),
        TaxCustomer(CustomerKind.PERSON, abroad),
    ]


def request(seller: str, customer: TaxCustomer, base: Money) -> TaxRequest:
    return TaxRequest(seller, customer, base, datetime.now(UTC).date())


def lines(calculator: TaxCalculator, req: TaxRequest) -> list[TaxLine]:
    result = calculator.calculate(req)
    assert not isinstance(result, str | bytes), f"calculate returned {result!r}"
    found = list(result)
    for line in found:
        assert isinstance(line, TaxLine), f"calculate returned {line!r}, not a TaxLine"
    return found


@EXAMPLES
@given(base=bases)
def test_lines_are_exact_money_in_the_request_currency_and_rounded(
    tax_calculator: TaxCalculator, seller: str, base: Money
) -> None:
    for customer in customers(seller):
        for line in lines(tax_calculator, request(seller, customer, base)):
            assert isinstance(line.rate, Decimal) and not isinstance(line.rate, bool), f"rate {line.rate!r}"
            assert line.rate.is_finite() and line.rate >= 0, f"rate {line.rate}"
            for name in ("base", "amount"):
                money = getattr(line, name)
                assert isinstance(money, Money), f"{name} is {money!r}, not Money"
                assert money.currency == CURRENCY, f"{name} {money} is not in the request's currency"
            assert line.base == base, f"line base {line.base} is not the request's base {base}"
            assert line.amount.is_rounded, f"tax {line.amount} is not rounded to the minor unit"
            exact = base.amount * line.rate
            assert abs(line.amount.amount - exact) <= HALF_A_CENT, (
                f"tax {line.amount} is not {line.rate} × {base} ({exact}) within rounding"
            )
            assert isinstance(line.name, str) and line.name and isinstance(line.jurisdiction, str)


@EXAMPLES
@given(base=bases)
def test_the_same_request_gives_the_same_lines(
    tax_calculator: TaxCalculator, seller: str, base: Money
) -> None:
    """Pure: no clock, no I/O, no state between calls."""
    for customer in customers(seller):
        req = request(seller, customer, base)
        assert lines(tax_calculator, req) == lines(tax_calculator, req)


def test_a_zero_base_gives_zero_tax(tax_calculator: TaxCalculator, seller: str) -> None:
    for customer in customers(seller):
        for line in lines(tax_calculator, request(seller, customer, Money.zero(CURRENCY))):
            assert not line.amount.amount, f"{line.amount} of tax on nothing"


@EXAMPLES
@given(base=bases)
def test_a_negative_base_mirrors_the_positive_one(
    tax_calculator: TaxCalculator, seller: str, base: Money
) -> None:
    """Refunds: the tax of -base is minus the tax of base, line by line."""
    for customer in customers(seller):
        sale = lines(tax_calculator, request(seller, customer, base))
        refund = lines(tax_calculator, request(seller, customer, -base))
        assert [(r.rate, r.treatment, r.jurisdiction, r.amount) for r in refund] == [
            (s.rate, s.treatment, s.jurisdiction, -s.amount) for s in sale
        ], f"refund lines {refund} do not mirror sale lines {sale}"


@pytest.mark.parametrize("tax_id", ["garbage!!", "XX123", "0000000000000000000000"])
def test_a_garbage_tax_id_raises_invalid_tax_id(
    tax_calculator: TaxCalculator, seller: str, tax_id: str
) -> None:
    customer = TaxCustomer(CustomerKind.COMPANY, seller, tax_id)
    with pytest.raises(InvalidTaxId) as caught:
        tax_calculator.calculate(request(seller, customer, Money("100.00", CURRENCY)))
    assert caught.value.tax_id and caught.value.reason
