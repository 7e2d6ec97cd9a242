"""Building tax lines: one rounding on the whole base, and names like "VAT 19% (DE)".

A line is named by the tax that applies. Where none does (treatment OUT_OF_SCOPE) the line
says so in its name, "Not subject to EU VAT", never "VAT 0% (US)": a 0 % rate would claim the
tax applies at a zero rate. Reverse-charge lines keep "VAT 0% (NL)": the tax applies, the
customer accounts for it, and the note says so.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from functools import lru_cache

from billing_gateway_tax_vat.rules import RateTable
from gateway.plugin_api import Money, TaxLine, TaxTreatment


def tax_line(
    tax: str, country: str, rate: Decimal, base: Money, treatment: TaxTreatment, note: str | None
) -> TaxLine:
    """A line of ``tax`` ("VAT", "MWST", "MVA") at ``rate`` for ``country``'s jurisdiction."""
    return named_tax_line(line_name(tax, country, rate), country, rate, base, treatment, note)


def named_tax_line(
    name: str, country: str, rate: Decimal, base: Money, treatment: TaxTreatment, note: str | None
) -> TaxLine:
    """:func:`tax_line` with its name already made by :func:`line_name`."""
    amount = base.times_rounded(rate)  # one half-up rounding, on the whole base
    if not amount.amount:
        amount = Money.zero(base.currency).rounded()  # no "-0.00" on refunds
    return TaxLine(name, country, rate, base, amount, treatment, note)


def standard_rates(tax: str, rates: RateTable) -> Callable[[str, date], tuple[Decimal, str]]:
    """``(country, on) -> (rate, line name)``: the standard rate of ``tax`` in force in ``country``
    on ``on`` (from ``rates``, which raises VatRateNotFound) and the name of its lines.

    Each pair is looked up once: every quote asks twice (due now and at renewal) for the
    same few countries and days.
    """

    @lru_cache(maxsize=1024)
    def rate_and_name(country: str, on: date) -> tuple[Decimal, str]:
        rate = rates.rate(country, on)
        return rate, line_name(tax, country, rate)

    return rate_and_name


def untaxed_line(name: str, country: str, base: Money, note: str) -> TaxLine:
    """A line saying why no tax is charged (treatment OUT_OF_SCOPE, rate and amount 0), named
    ``name`` ("Not subject to EU VAT"), so invoices print the reason and no "0%" rate."""
    zero = Money.zero(base.currency).rounded()
    return TaxLine(name, country, Decimal(0), base, zero, TaxTreatment.OUT_OF_SCOPE, note)


@lru_cache(maxsize=1024)  # a few rates per country: the label is built once per (tax, country, rate)
def line_name(tax: str, country: str, rate: Decimal) -> str:
    return f"{tax} {percent(rate)}% ({country})"


def percent(rate: Decimal) -> str:
    """0.255 -> "25.5", 0.19 -> "19", 0 -> "0" (no exponent, no trailing zeros)."""
    return f"{(rate * 100).normalize():f}"
