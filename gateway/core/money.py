"""Exact money: a Decimal amount bound to a currency.

Amounts may carry more precision than the currency's minor unit while a price is
being computed (a unit price of 0.0008 EUR per credit is legal); ``rounded()``
brings them to the minor unit with ROUND_HALF_UP, which is the only rounding rule
the gateway uses. Floats are refused everywhere, and so is mixing currencies.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, ROUND_HALF_UP, Context, Decimal, InvalidOperation
from math import lcm

# ISO 4217 minor-unit exponents for the currencies a catalog may use.
CURRENCY_EXPONENTS: dict[str, int] = {
    "EUR": 2,
    "USD": 2,
    "GBP": 2,
    "CHF": 2,
    "SEK": 2,
    "NOK": 2,
    "DKK": 2,
    "PLN": 2,
    "CZK": 2,
    "HUF": 2,
    "RON": 2,
    "BGN": 2,
    "ISK": 0,
    "CAD": 2,
    "AUD": 2,
    "NZD": 2,
    "JPY": 0,
    "KRW": 0,
    "BHD": 3,
    "KWD": 3,
    "TND": 3,
}
_QUANTA = {code: Decimal(1).scaleb(-exp) for code, exp in CURRENCY_EXPONENTS.items()}
# Rounding and minor-unit conversion must never lose digits to the thread's
# context precision (28 digits by default), so they run in an unbounded context.
_EXACT = Context(prec=MAX_PREC, rounding=ROUND_HALF_UP, Emax=MAX_EMAX, Emin=MIN_EMIN)


class CurrencyMismatch(ValueError):
    """Two amounts in different currencies were combined."""


class UnknownCurrency(ValueError):
    """A currency code the gateway has no minor unit for."""


def _to_decimal(value: object) -> Decimal:
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int) and not isinstance(value, bool):
        result = Decimal(value)
    elif isinstance(value, str):
        try:
            result = Decimal(value)
        except InvalidOperation:
            raise ValueError(f"{value!r} is not a decimal amount") from None
    else:
        raise TypeError(f"money amounts must be Decimal, int or str, not {type(value).__name__}")
    if not result.is_finite():
        raise ValueError(f"money amounts must be finite, not {result}")
    return result


class Money:
    """An exact amount in one currency. Immutable and hashable."""

    __slots__ = ("amount", "currency")
    amount: Decimal
    currency: str

    def __init__(self, amount: Decimal | int | str, currency: str) -> None:
        if currency not in _QUANTA:
            raise UnknownCurrency(f"unknown currency {currency!r}")
        object.__setattr__(self, "amount", _to_decimal(amount))
        object.__setattr__(self, "currency", currency)

    @staticmethod
    def _of(amount: Decimal, currency: str) -> Money:
        """A Money from a finite Decimal and a known currency, without validating them again.

        Internal to the gateway core (money, pricing): only for amounts computed from
        already validated values (Money arithmetic, catalog prices). Everything else
        goes through the strict constructor, which refuses floats, NaN and unknown
        currencies.
        """
        money = _new(Money)
        _set_amount(money, amount)
        _set_currency(money, currency)
        return money

    @classmethod
    def zero(cls, currency: str) -> Money:
        cls._exponent(currency)
        return _make(_ZERO, currency)

    @classmethod
    def from_minor_units(cls, units: int, currency: str) -> Money:
        if type(units) is not int and (not isinstance(units, int) or isinstance(units, bool)):
            raise TypeError("minor units must be an int")
        exponent = CURRENCY_EXPONENTS.get(currency)
        if exponent is None:
            raise UnknownCurrency(f"unknown currency {currency!r}")
        return _make(Decimal(units).scaleb(-exponent, _EXACT), currency)

    @staticmethod
    def _exponent(currency: str) -> int:
        try:
            return CURRENCY_EXPONENTS[currency]
        except KeyError:
            raise UnknownCurrency(f"unknown currency {currency!r}") from None

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Money is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("Money is immutable")

    def __reduce__(self) -> tuple[type[Money], tuple[Decimal, str]]:
        return (Money, (self.amount, self.currency))

    # -- rounding ---------------------------------------------------------
    def rounded(self) -> Money:
        """This amount rounded half-up to the currency's minor unit."""
        currency = self.currency
        money = _new(Money)
        _set_amount(money, self.amount.quantize(_QUANTA[currency], ROUND_HALF_UP, _EXACT))
        _set_currency(money, currency)
        return money

    def times_rounded(self, factor: Decimal | int) -> Money:
        """``(self * factor).rounded()`` in one step: the product, rounded half-up to the minor unit.

        For a tax or a line amount (a rate or a quantity times a price) without the
        intermediate unrounded Money.
        """
        kind = factor.__class__
        if (
            kind is not Decimal
            and kind is not int
            and (isinstance(factor, (Money, float, bool)) or not isinstance(factor, (int, Decimal)))
        ):
            raise TypeError(f"Money can only be multiplied by an int or Decimal, not {type(factor).__name__}")
        product = self.amount * factor
        if not product.is_finite():
            raise ValueError(f"money amounts must be finite, not {product}")
        currency = self.currency
        money = _new(Money)
        _set_amount(money, product.quantize(_QUANTA[currency], ROUND_HALF_UP, _EXACT))
        _set_currency(money, currency)
        return money

    @property
    def is_rounded(self) -> bool:
        return self.amount == self.amount.quantize(_QUANTA[self.currency], ROUND_HALF_UP, _EXACT)

    @property
    def shown(self) -> Decimal:
        """The amount as the API shows it: every minor digit of a whole minor amount ("19.00",
        "0.00", never "-0.00"), and every digit of a sub-minor one (a per-credit 0.0015)."""
        amount = self.amount
        rounded = amount.quantize(_QUANTA[self.currency], ROUND_HALF_UP, _EXACT)
        if rounded == amount:
            amount = rounded
        return amount.copy_abs() if amount.is_zero() else amount

    @property
    def minor_units(self) -> int:
        """The amount as an integer count of minor units; it must already be rounded."""
        scaled = self.amount.scaleb(CURRENCY_EXPONENTS[self.currency], _EXACT)
        units = int(scaled)
        if units != scaled:
            raise ValueError(f"{self} has more precision than its minor unit; round it first")
        return units

    # -- arithmetic -------------------------------------------------------
    def _check(self, other: object) -> Money:
        if not isinstance(other, Money):
            raise TypeError(f"cannot combine Money with {type(other).__name__}")
        if other.currency != self.currency:
            raise CurrencyMismatch(f"cannot combine {self.currency} with {other.currency}")
        return other

    # Results of arithmetic on two validated amounts are finite Decimals in a known
    # currency, so they skip the constructor's checks (this runs on every slider move).
    # The common case, two Money of one currency, is checked inline; _check raises.
    def __add__(self, other: Money) -> Money:
        if other.__class__ is not Money or other.currency != self.currency:
            self._check(other)
        return _make(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        if other.__class__ is not Money or other.currency != self.currency:
            self._check(other)
        return _make(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return _make(-self.amount, self.currency)

    def __mul__(self, factor: Decimal | int) -> Money:
        if isinstance(factor, (Money, float, bool)) or not isinstance(factor, (int, Decimal)):
            raise TypeError(f"Money can only be multiplied by an int or Decimal, not {type(factor).__name__}")
        result = self.amount * factor
        if not result.is_finite():
            raise ValueError(f"money amounts must be finite, not {result}")
        return _make(result, self.currency)

    __rmul__ = __mul__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        return self.currency == other.currency and self.amount == other.amount

    def __hash__(self) -> int:
        return hash((self.amount, self.currency))

    def __lt__(self, other: Money) -> bool:
        return self.amount < self._check(other).amount

    def __le__(self, other: Money) -> bool:
        return self.amount <= self._check(other).amount

    def __gt__(self, other: Money) -> bool:
        return self.amount > self._check(other).amount

    def __ge__(self, other: Money) -> bool:
        return self.amount >= self._check(other).amount

    def __bool__(self) -> bool:
        return bool(self.amount)

    def __repr__(self) -> str:
        return f"Money('{self.amount}', '{self.currency}')"

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"

    # -- allocation -------------------------------------------------------
    def allocate(self, ratios: Sequence[int | Decimal]) -> list[Money]:
        """Split a rounded amount by ``ratios`` so that the parts add up exactly.

        Largest-remainder method over minor units; ties go to the earlier part,
        so 10.00 split three ways is 3.34 + 3.33 + 3.33.
        """
        if not ratios:
            raise ValueError("allocate needs at least one ratio")
        weights = [_to_decimal(r) for r in ratios]
        if any(w < 0 for w in weights):
            raise ValueError("allocation ratios must not be negative")
        if not any(weights):
            raise ValueError("allocation ratios must not all be zero")
        units = self.minor_units
        sign = -1 if units < 0 else 1
        units = abs(units)
        # Exact integer arithmetic: Decimal division would round at the context
        # precision, which could misplace a unit for extreme ratios.
        fractions = [w.as_integer_ratio() for w in weights]
        denominator = lcm(*(d for _, d in fractions))
        scaled = [n * (denominator // d) for n, d in fractions]
        total = sum(scaled)
        parts: list[int] = []
        remainders: list[int] = []
        for weight in scaled:
            part, remainder = divmod(units * weight, total)
            parts.append(part)
            remainders.append(remainder)
        leftover = units - sum(parts)  # 0 <= leftover < len(parts)
        by_remainder = sorted(range(len(parts)), key=lambda i: (-remainders[i], i))
        for i in by_remainder[:leftover]:
            parts[i] += 1
        return [Money.from_minor_units(sign * p, self.currency) for p in parts]


_ZERO = Decimal(0)
_new = object.__new__
# The slot descriptors' setters, to fill a Money made without __init__ (see Money._of).
# Read from the class __dict__ because mypy takes ``Money.amount`` for the Decimal attribute.
_set_amount: Callable[[Money, Decimal], None] = Money.__dict__["amount"].__set__
_set_currency: Callable[[Money, str], None] = Money.__dict__["currency"].__set__


_make = Money._of  # the trusted constructor, as a plain function for this module


def money_sum(amounts: Iterable[Money], currency: str) -> Money:
    """Sum amounts of one currency; the empty sum is zero in ``currency``."""
    if currency not in _QUANTA:
        raise UnknownCurrency(f"unknown currency {currency!r}")
    total = _ZERO
    for amount in amounts:
        if amount.currency != currency:
            raise CurrencyMismatch(f"cannot add {amount.currency} to a {currency} total")
        total += amount.amount
    return _make(total, currency)
