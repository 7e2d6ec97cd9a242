"""Money: exact amounts bound to a currency, half-up rounding, allocation that keeps the total."""

from __future__ import annotations

import copy
import pickle
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core.money import CURRENCY_EXPONENTS, CurrencyMismatch, Money, UnknownCurrency, money_sum

from helpers import eur

EUR = "EUR"


# ----------------------------------------------------------------- strategies

currencies = st.sampled_from(sorted(CURRENCY_EXPONENTS))
# Amounts with sub-minor precision, as prices carry while being computed.
decimals = st.decimals(
    min_value=Decimal("-1e12"), max_value=Decimal("1e12"), places=6, allow_nan=False, allow_infinity=False
)
minor_units = st.integers(min_value=-(10**15), max_value=10**15)


@st.composite
def rounded_money(draw: st.DrawFn, currency: str | None = None) -> Money:
    return Money.from_minor_units(draw(minor_units), currency or draw(currencies))


ratios = st.lists(
    st.one_of(
        st.integers(min_value=0, max_value=10**6),
        st.decimals(min_value=0, max_value=10**6, places=8, allow_nan=False, allow_infinity=False),
    ),
    min_size=1,
    max_size=8,
).filter(lambda rs: sum(rs) > 0)


# ------------------------------------------------------------ construction


@pytest.mark.parametrize("amount", [1.5, 0.0, float("nan")])
def test_constructor_refuses_floats(amount: float) -> None:
    with pytest.raises(TypeError):
        Money(amount, EUR)  # type: ignore[arg-type]


@pytest.mark.parametrize("amount", [True, None, [1]])
def test_constructor_refuses_other_types(amount: object) -> None:
    with pytest.raises(TypeError):
        Money(amount, EUR)  # type: ignore[arg-type]


@pytest.mark.parametrize("amount", ["NaN", "Infinity", "-Infinity", Decimal("NaN"), Decimal("Infinity")])
def test_constructor_refuses_non_finite_amounts(amount: object) -> None:
    with pytest.raises(ValueError):
        Money(amount, EUR)  # type: ignore[arg-type]


def test_constructor_refuses_malformed_strings_with_a_value_error() -> None:
    with pytest.raises(ValueError, match="not a decimal"):
        eur("12,50")


def test_constructor_accepts_decimal_int_and_str_exactly() -> None:
    assert Money(Decimal("0.1"), EUR).amount == Decimal("0.1")
    assert Money(3, EUR).amount == Decimal(3)
    assert eur("0.0008").amount == Decimal("0.0008")  # sub-minor precision is kept until rounded


@pytest.mark.parametrize("currency", ["XXX", "eur", "", "EURO"])
def test_unknown_currency_raises(currency: str) -> None:
    with pytest.raises(UnknownCurrency):
        Money(1, currency)
    with pytest.raises(UnknownCurrency):
        Money.from_minor_units(1, currency)
    with pytest.raises(UnknownCurrency):
        Money.zero(currency)


def test_from_minor_units_refuses_non_ints() -> None:
    with pytest.raises(TypeError):
        Money.from_minor_units(1.0, EUR)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Money.from_minor_units(True, EUR)


def test_money_is_immutable() -> None:
    money = eur("1.00")
    with pytest.raises(AttributeError):
        money.amount = Decimal(2)  # type: ignore[misc]
    with pytest.raises(AttributeError):
        money.currency = "USD"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del money.amount
    with pytest.raises(AttributeError):
        money.extra = 1  # type: ignore[attr-defined]
    assert money == eur("1.00")


def test_money_is_hashable_by_value_and_survives_copy_and_pickle() -> None:
    assert hash(eur("1.0")) == hash(eur("1.00"))
    assert len({eur("1.0"), eur("1.00"), Money("1.00", "USD")}) == 2
    money = eur("12.34")
    assert copy.deepcopy(money) == money
    assert pickle.loads(pickle.dumps(money)) == money


# -------------------------------------------------------------- arithmetic


def test_multiplication_refuses_floats_money_and_bools() -> None:
    money = eur("2.00")
    for factor in (1.5, 2.0, True, eur("1.00"), "2"):
        with pytest.raises(TypeError):
            money * factor  # type: ignore[operator]
        with pytest.raises(TypeError):
            factor * money  # type: ignore[operator]


def test_multiplication_by_int_and_decimal_is_exact() -> None:
    assert eur("2.50") * 3 == eur("7.50")
    assert 3 * eur("2.50") == eur("7.50")
    assert eur("45000") * Decimal("0.0012") == eur("54.00")
    assert (eur("100.00") * Decimal("0.19")).amount == Decimal("19.0000")


def test_mixing_currencies_raises() -> None:
    a, b = eur("1.00"), Money("1.00", "USD")
    for op in (
        lambda: a + b,
        lambda: a - b,
        lambda: a < b,
        lambda: a <= b,
        lambda: a > b,
        lambda: a >= b,
        lambda: money_sum([a, b], EUR),
        lambda: money_sum([b], EUR),
    ):
        with pytest.raises(CurrencyMismatch):
            op()
    assert a != b  # equality across currencies is simply False


def test_combining_with_non_money_raises_type_error() -> None:
    with pytest.raises(TypeError):
        eur("1.00") + Decimal("1.00")  # type: ignore[operator]
    with pytest.raises(TypeError):
        eur("1.00") - 1  # type: ignore[operator]


def test_comparisons_and_truthiness() -> None:
    assert eur("1.00") < eur("1.01") <= eur("1.01") < eur("2")
    assert eur("2") > eur("1.99") >= eur("1.99")
    assert not eur("0.00") and eur("0.01")
    assert -eur("0.00") == eur("0.00") and str(-eur("0.00")) == "0.00 EUR"  # no "-0.00"


def test_money_sum_of_nothing_is_zero_in_the_currency() -> None:
    assert money_sum([], "JPY") == Money(0, "JPY")
    assert money_sum([eur("1.10"), eur("2.20")], EUR) == eur("3.30")


# ---------------------------------------------------------------- rounding


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("0.005", EUR, "0.01"),
        ("-0.005", EUR, "-0.01"),
        ("0.0049999", EUR, "0.00"),
        ("2.675", EUR, "2.68"),  # a float would make this 2.67
        ("1.0050", EUR, "1.01"),
        ("0.125", EUR, "0.13"),  # half-even would give 0.12
        ("-0.125", EUR, "-0.13"),
        ("2.5", "JPY", "3"),
        ("-2.5", "JPY", "-3"),
        ("1.4999", "JPY", "1"),
        ("0.0005", "BHD", "0.001"),
    ],
)
def test_rounded_is_half_up_to_the_minor_unit(amount: str, currency: str, expected: str) -> None:
    result = Money(amount, currency).rounded()
    assert result == Money(expected, currency)
    assert result.amount.as_tuple().exponent == -CURRENCY_EXPONENTS[currency]
    assert result.is_rounded


def test_is_rounded() -> None:
    assert eur("1.20").is_rounded and eur("1.2").is_rounded and eur("1").is_rounded
    assert not eur("1.205").is_rounded
    assert Money("3", "JPY").is_rounded and not Money("3.1", "JPY").is_rounded


def test_minor_units_needs_a_rounded_amount() -> None:
    assert eur("12.34").minor_units == 1234
    assert Money("1234", "JPY").minor_units == 1234
    assert Money("1.234", "BHD").minor_units == 1234
    with pytest.raises(ValueError, match="round it first"):
        eur("0.001").minor_units  # noqa: B018 (the property raises)


def test_huge_amounts_are_not_truncated_by_the_decimal_context() -> None:
    units = 10**30 + 1  # more digits than the default 28-digit context
    money = Money.from_minor_units(units, EUR)
    assert money.minor_units == units
    assert Money("1e28", EUR).rounded().minor_units == 10**30


@settings(deadline=None, max_examples=200)
@given(amount=decimals, currency=currencies)
def test_rounding_is_idempotent_and_within_half_a_minor_unit(amount: Decimal, currency: str) -> None:
    money = Money(amount, currency)
    rounded = money.rounded()
    quantum = Decimal(1).scaleb(-CURRENCY_EXPONENTS[currency])
    assert rounded.rounded() == rounded
    assert abs(rounded.amount - money.amount) <= quantum / 2
    # Half-up means away from zero on ties: symmetric for negatives.
    assert (-money).rounded() == -rounded


@settings(deadline=None, max_examples=200)
@given(units=minor_units, currency=currencies)
def test_minor_units_round_trip(units: int, currency: str) -> None:
    money = Money.from_minor_units(units, currency)
    assert money.is_rounded
    assert money.minor_units == units
    assert Money.from_minor_units(money.minor_units, currency) == money


# --------------------------------------------------------- property algebra


@settings(deadline=None, max_examples=150)
@given(a=decimals, b=decimals, c=decimals)
def test_addition_is_associative_and_commutative(a: Decimal, b: Decimal, c: Decimal) -> None:
    x, y, z = Money(a, EUR), Money(b, EUR), Money(c, EUR)
    assert x + y == y + x
    assert (x + y) + z == x + (y + z)
    assert (x + y) - y == x
    assert x - y == -(y - x)
    assert x - x == Money.zero(EUR)


@settings(deadline=None, max_examples=100)
@given(data=st.data(), amounts=st.lists(decimals, max_size=12))
def test_sum_does_not_depend_on_order(data: st.DataObject, amounts: list[Decimal]) -> None:
    moneys = [Money(a, EUR) for a in amounts]
    shuffled = data.draw(st.permutations(moneys))
    assert money_sum(moneys, EUR) == money_sum(shuffled, EUR)
    assert money_sum(moneys, EUR).amount == sum(amounts, Decimal(0))


# --------------------------------------------------------------- allocation


def test_ten_euros_in_three() -> None:
    assert eur("10.00").allocate([1, 1, 1]) == [eur("3.34"), eur("3.33"), eur("3.33")]


def test_negative_amounts_allocate_symmetrically() -> None:
    assert eur("-10.00").allocate([1, 1, 1]) == [eur("-3.34"), eur("-3.33"), eur("-3.33")]
    assert eur("-0.05").allocate([1, 3]) == [eur("-0.01"), eur("-0.04")]


def test_allocation_follows_the_ratios() -> None:
    assert eur("100.00").allocate([1, 3]) == [eur("25.00"), eur("75.00")]
    assert eur("0.05").allocate([Decimal("0.3"), Decimal("0.7")]) == [eur("0.02"), eur("0.03")]
    assert eur("1.00").allocate([0, 1]) == [eur("0.00"), eur("1.00")]
    assert Money("100", "JPY").allocate([1, 1, 1]) == [Money(34, "JPY"), Money(33, "JPY"), Money(33, "JPY")]


def test_allocation_refuses_bad_input() -> None:
    with pytest.raises(ValueError):
        eur("1.00").allocate([])
    with pytest.raises(ValueError):
        eur("1.00").allocate([0, 0])
    with pytest.raises(ValueError):
        eur("1.00").allocate([1, -1])
    with pytest.raises(TypeError):
        eur("1.00").allocate([0.5, 0.5])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="round it first"):
        eur("1.005").allocate([1, 1])


@settings(deadline=None, max_examples=300)
@given(money=rounded_money(), weights=ratios)
def test_allocation_keeps_the_total_exactly(money: Money, weights: list[int | Decimal]) -> None:
    parts = money.allocate(weights)
    assert len(parts) == len(weights)
    assert money_sum(parts, money.currency) == money
    assert all(part.is_rounded and part.currency == money.currency for part in parts)
    # Each part is within one minor unit of its exact share, and zero ratios get nothing.
    total = sum(weights)
    for part, weight in zip(parts, weights, strict=False):
        share = Decimal(money.minor_units) * Decimal(weight) / Decimal(total)
        assert abs(part.minor_units - share) < 1
        if weight == 0:
            assert not part


@settings(deadline=None, max_examples=200)
@given(money=rounded_money(), n=st.integers(min_value=1, max_value=12))
def test_equal_ratios_differ_by_at_most_one_minor_unit(money: Money, n: int) -> None:
    units = [p.minor_units for p in money.allocate([1] * n)]
    assert max(units) - min(units) <= 1
    assert sum(units) == money.minor_units
    assert sorted(units, key=abs, reverse=True) == units  # the larger parts come first


def test_allocation_with_extreme_ratios_stays_exact() -> None:
    # Ratios far apart in magnitude would round in 28-digit Decimal division.
    weights = [Decimal("1e-30"), Decimal(10**30 - 1), Decimal(10**30 - 1), Decimal(2)]
    for units in (1, 2, 3, 7, 10**20 + 3):
        money = Money.from_minor_units(units, EUR)
        assert money_sum(money.allocate(weights), EUR) == money


@given(
    st.decimals(min_value=-(10**9), max_value=10**9, places=6, allow_nan=False, allow_infinity=False),
    currencies,
)
def test_the_shown_amount_keeps_the_value_shows_every_minor_digit_and_no_negative_zero(amount, currency):
    money = Money(amount, currency)
    shown = money.shown
    exponent = CURRENCY_EXPONENTS[currency]
    assert shown == amount  # the same value, never rounded away
    assert not (shown.is_zero() and shown.is_signed())
    digits = -shown.as_tuple().exponent
    if money.is_rounded:  # whole minor units: exactly the currency's digits ("19.00", "0.00")
        assert digits == exponent
    else:  # a sub-minor price keeps its own digits
        assert digits > exponent


def test_shown_amounts_as_the_api_writes_them():
    assert [str(eur(a).shown) for a in ("19", "0", "-0.00", "0.0015", "1.50000", "-2.5")] == [
        "19.00",
        "0.00",
        "0.00",
        "0.0015",
        "1.50",
        "-2.50",
    ]
