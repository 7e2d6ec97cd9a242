"""Building tax lines: one rounding on the whole base, and names like "VAT 19% (DE)"."""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache

from gateway.plugin_api import Money, TaxLine, TaxTreatment


def tax_line(
    tax: str, country: str, rate: Decimal, base: Money, treatment: TaxTreatment, note: str | None
) -> TaxLine:
    """A line of ``tax`` ("VAT", "MWST", "MVA") at ``rate`` for ``country``'s jurisdiction."""
    amount = base.times_rounded(rate)  # one half-up rounding, on the whole base
    if not amount.amount:
        amount = Money.zero(base.currency).rounded()  # no "-0.00" on refunds
    return TaxLine(line_name(tax, country, rate), country, rate, base, amount, treatment, note)


@lru_cache(maxsize=1024)  # a few rates per country: the label is built once per (tax, country, rate)
def line_name(tax: str, country: str, rate: Decimal) -> str:
    return f"{tax} {percent(rate)}% ({country})"


def percent(rate: Decimal) -> str:
    """0.255 -> "25.5", 0.19 -> "19", 0 -> "0" (no exponent, no trailing zeros)."""
    return f"{(rate * 100).normalize():f}"
