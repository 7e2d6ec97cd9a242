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
* **Outside the EU**: one line named "Not subject to EU VAT", with rate 0, amount 0,
  treatment OUT_OF_SCOPE and the note "Not subject to EU VAT (place of supply outside
  the EU)" (never an empty list, so invoices can print the reason; never "VAT 0%", which
  would claim EU VAT applies at a zero rate). The tax ID is ignored: there is no offline
  EU check for it.

VAT is computed once on the whole taxable base and rounded half-up to the
currency's minor unit, so negative bases (refunds) mirror positive ones.
Only the 27 member-state ISO codes count as the EU; special territories
(Canary Islands, Monaco via France, Northern Ireland for goods) are not modelled.

The plugin registers more than the EU calculator when configured (see :mod:`.config` for
every variable):

* ``vat_gb``, ``vat_ch``, ``vat_no``: VAT of the United Kingdom, Switzerland and Norway
  (:mod:`.territories`), one per territory listed in ``BILLING_GATEWAY_VAT_TERRITORIES``.
  Route customers to them with the gateway's ``BILLING_GATEWAY_TAX_CALCULATORS``, e.g.
  ``GB=vat_gb; CH=vat_ch; NO=vat_no; *=vat``.
* ``vies``: a tax ID verifier that asks the EU's VIES service whether an EU VAT ID is
  registered (:mod:`.vies`), when ``BILLING_GATEWAY_VIES=on``. It runs when billing
  details are saved, never on the quote path.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from decimal import Decimal
from importlib.resources import as_file, files
from os import PathLike
from pathlib import Path

from billing_gateway_tax_vat.config import VatSettings
from billing_gateway_tax_vat.lines import named_tax_line, standard_rates, tax_line, untaxed_line
from billing_gateway_tax_vat.rules import (
    MEMBER_STATES,
    RateTable,
    VatRateNotFound,
    load_rates,
    normalize_vat_id,
)
from billing_gateway_tax_vat.territories import TERRITORIES, TerritoryVatCalculator
from billing_gateway_tax_vat.vies import ViesVerifier
from gateway.plugin_api import (
    CustomerKind,
    Money,
    TaxCalculator,
    TaxIdVerifier,
    TaxLine,
    TaxRequest,
    TaxTreatment,
    hookimpl,
)

__all__ = [
    "MEMBER_STATES",
    "OUT_OF_SCOPE_NAME",
    "OUT_OF_SCOPE_NOTE",
    "REVERSE_CHARGE_NOTE",
    "TERRITORIES",
    "EuVatCalculator",
    "RateTable",
    "TerritoryVatCalculator",
    "VatRateNotFound",
    "VatSettings",
    "ViesVerifier",
    "load_rates",
    "normalize_vat_id",
    "register_tax_calculators",
    "register_tax_id_verifiers",
]

REVERSE_CHARGE_NOTE = (
    "Reverse charge: VAT to be accounted for by the recipient "
    "(Article 196, Council Directive 2006/112/EC). Customer VAT ID: {vat_id}"
)
OUT_OF_SCOPE_NAME = "Not subject to EU VAT"
OUT_OF_SCOPE_NOTE = "Not subject to EU VAT (place of supply outside the EU)"

_ZERO = Decimal(0)
_STANDARD = TaxTreatment.STANDARD  # bound once: enum member access is slow on Python 3.11


class EuVatCalculator:
    """EU VAT for one order total. Immutable after construction, so safe to share between threads."""

    code = "vat"

    def __init__(self, rates_path: str | PathLike[str] | None = None) -> None:
        # The CSV is read and validated here, once, never on the quote path.
        if rates_path is None:
            with _packaged("vat_rates.csv") as path:
                self._rates = load_rates(path)
        else:
            self._rates = load_rates(rates_path)
        self._standard = standard_rates("VAT", self._rates)

    @property
    def rates(self) -> RateTable:
        return self._rates

    def calculate(self, request: TaxRequest) -> tuple[TaxLine, ...]:
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
                return (untaxed_line(OUT_OF_SCOPE_NAME, country, base, OUT_OF_SCOPE_NOTE),)

        tax_id = customer.tax_id
        if tax_id is not None and tax_id.strip():
            vat_id = normalize_vat_id(tax_id, country)  # raises InvalidTaxId, for persons too
            if customer.kind is CustomerKind.COMPANY and country != seller:
                note = REVERSE_CHARGE_NOTE.format(vat_id=vat_id)
                return (_line(country, _ZERO, base, TaxTreatment.REVERSE_CHARGE, note),)
        # Domestic sale, consumer, or company without VAT ID: the customer's
        # country is the place of supply (and equals the seller's when domestic).
        rate, name = self._standard(country, request.on)
        return (named_tax_line(name, country, rate, base, _STANDARD, None),)


def _line(country: str, rate: Decimal, base: Money, treatment: TaxTreatment, note: str | None) -> TaxLine:
    return tax_line("VAT", country, rate, base, treatment, note)


def _packaged(name: str) -> AbstractContextManager[Path]:
    """A bundled data file as a real file, even from a zipped install."""
    return as_file(files(__package__).joinpath(name))


def territory_calculators(settings: VatSettings) -> list[TerritoryVatCalculator]:
    """The non-EU calculators ``settings`` ask for (none by default); reads their rates once."""
    if not settings.territories:
        return []
    listed = frozenset(settings.territories)
    if settings.territory_rates is not None:
        rates = load_rates(settings.territory_rates, frozenset(TERRITORIES), listed, "VAT territory")
    else:
        with _packaged("territory_rates.csv") as path:
            rates = load_rates(path, frozenset(TERRITORIES), listed, "VAT territory")
    return [
        TerritoryVatCalculator(TERRITORIES[t], rates, registered=t in settings.registrations)
        for t in settings.territories
    ]


@hookimpl
def register_tax_calculators(register: Callable[[TaxCalculator], None]) -> None:
    register(EuVatCalculator())
    for calculator in territory_calculators(VatSettings.from_env(os.environ)):
        register(calculator)


@hookimpl
def register_tax_id_verifiers(register: Callable[[TaxIdVerifier], None]) -> None:
    settings = VatSettings.from_env(os.environ)
    if settings.vies:  # off by default: no network call unless the operator asks for one
        register(ViesVerifier(settings.vies_url, settings.vies_timeout, settings.vies_fallback))
