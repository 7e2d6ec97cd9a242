"""EU VAT for electronically supplied services, sold by a seller in an EU member state.

Policy, by customer (``TaxRequest.customer``):

* **Same country as the seller** (person or company, with or without VAT ID):
  domestic VAT at the seller country's standard rate, treatment STANDARD.
* **Company in another member state with a VAT ID**: reverse charge. Rate 0,
  treatment REVERSE_CHARGE, and a note citing Article 196 of Directive
  2006/112/EC and the customer's (normalised) VAT ID.
* **Company in another member state without a VAT ID**: we cannot show the
  customer is a taxable person, so it is taxed like a consumer.
* **Person in a member state**: the customer country's standard rate (OSS
  place-of-supply rule for e-services), treatment STANDARD. The EUR 10,000
  micro-business threshold is not applied: always the customer's country.
  A person's VAT ID, if given, is still validated (bad input is reported) but
  does not change the treatment.
* **Outside the EU**: one line with rate 0, amount 0, treatment OUT_OF_SCOPE and
  the note "Outside the scope of EU VAT" (never an empty list, so invoices can
  print the reason). The tax ID is ignored: there is no offline EU check for it.

VAT is computed once on the whole taxable base and rounded half-up to the
currency's minor unit, so negative bases (refunds) mirror positive ones.
Only the 27 member-state ISO codes count as the EU; special territories
(Canary Islands, Monaco via France, Northern Ireland for goods) are not modelled.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from decimal import Decimal
from functools import lru_cache
from importlib.resources import as_file, files
from os import PathLike
from pathlib import Path

from billing_gateway_tax_vat.rules import (
    MEMBER_STATES,
    RateTable,
    VatRateNotFound,
    load_rates,
    normalize_vat_id,
)
from gateway.plugin_api import CustomerKind, Money, TaxCalculator, TaxLine, TaxRequest, TaxTreatment, hookimpl

__all__ = [
    "MEMBER_STATES",
    "OUT_OF_SCOPE_NOTE",
    "REVERSE_CHARGE_NOTE",
    "EuVatCalculator",
    "RateTable",
    "VatRateNotFound",
    "load_rates",
    "normalize_vat_id",
    "register_tax_calculators",
]

REVERSE_CHARGE_NOTE = (
    "Reverse charge: VAT to be accounted for by the recipient "
    "(Article 196, Council Directive 2006/112/EC). Customer VAT ID: {vat_id}"
)
OUT_OF_SCOPE_NOTE = "Outside the scope of EU VAT"

_ZERO = Decimal(0)
_STANDARD = TaxTreatment.STANDARD  # bound once: enum member access is slow on Python 3.11


class EuVatCalculator:
    """EU VAT for one order total. Immutable after construction, so safe to share between threads."""

    code = "vat"

    def __init__(self, rates_path: str | PathLike[str] | None = None) -> None:
        # The CSV is read and validated here, once, never on the quote path.
        if rates_path is None:
            with _packaged_rates() as path:
                self._rates = load_rates(path)
        else:
            self._rates = load_rates(rates_path)

    @property
    def rates(self) -> RateTable:
        return self._rates

    def calculate(self, request: TaxRequest) -> list[TaxLine]:
        # Called twice per quote, on every slider move: country codes are looked up
        # as given first and upper-cased only when that fails (member-state codes
        # are upper case, so the result is the same).
        seller = request.seller_country
        if seller not in MEMBER_STATES:
            seller = seller.upper()
            if seller not in MEMBER_STATES:
                raise ValueError(
                    f"seller country {request.seller_country!r} is not an EU member state; "
                    "the tax_vat plugin only handles EU sellers"
                )
        customer = request.customer
        country = customer.country
        base = request.taxable_base
        if country not in MEMBER_STATES:
            country = country.upper()
            if country not in MEMBER_STATES:
                return [_line(country, _ZERO, base, TaxTreatment.OUT_OF_SCOPE, OUT_OF_SCOPE_NOTE)]

        tax_id = customer.tax_id
        if tax_id is not None and tax_id.strip():
            vat_id = normalize_vat_id(tax_id, country)  # raises InvalidTaxId, for persons too
            if customer.kind is CustomerKind.COMPANY and country != seller:
                note = REVERSE_CHARGE_NOTE.format(vat_id=vat_id)
                return [_line(country, _ZERO, base, TaxTreatment.REVERSE_CHARGE, note)]
        # Domestic sale, consumer, or company without VAT ID: the customer's
        # country is the place of supply (and equals the seller's when domestic).
        rate = self._rates.rate(country, request.on)
        return [_line(country, rate, base, _STANDARD, None)]


def _line(country: str, rate: Decimal, base: Money, treatment: TaxTreatment, note: str | None) -> TaxLine:
    amount = base.times_rounded(rate)  # one half-up rounding, on the whole base
    if not amount.amount:
        amount = Money.zero(base.currency).rounded()  # no "-0.00" on refunds
    return TaxLine(_name(country, rate), country, rate, base, amount, treatment, note)


@lru_cache(maxsize=1024)  # a few rates per country: the label is built once per (country, rate)
def _name(country: str, rate: Decimal) -> str:
    return f"VAT {_percent(rate)}% ({country})"


def _percent(rate: Decimal) -> str:
    """0.255 -> "25.5", 0.19 -> "19", 0 -> "0" (no exponent, no trailing zeros)."""
    return f"{(rate * 100).normalize():f}"


def _packaged_rates() -> AbstractContextManager[Path]:
    """The bundled ``vat_rates.csv`` as a real file, even from a zipped install."""
    return as_file(files(__package__).joinpath("vat_rates.csv"))


@hookimpl
def register_tax_calculators(register: Callable[[TaxCalculator], None]) -> None:
    register(EuVatCalculator())
