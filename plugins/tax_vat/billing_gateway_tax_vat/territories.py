"""VAT of territories outside the EU: the United Kingdom (GB), Switzerland (CH), Norway (NO).

One calculator per territory, with the code ``vat_gb``, ``vat_ch`` or ``vat_no``, added
when ``BILLING_GATEWAY_VAT_TERRITORIES`` names the territory. Route customers to it with
``BILLING_GATEWAY_TAX_CALCULATORS`` (e.g. ``GB=vat_gb; CH=vat_ch; NO=vat_no; *=vat``).

Policy, by customer (``TaxRequest.customer``) in the territory:

* **A tax ID, if given, is checked first** (format and check digits, offline, with
  python-stdnum: ``stdnum.gb.vat``, ``stdnum.ch.vat``, ``stdnum.no.mva``); a malformed one
  raises ``InvalidTaxId``, for persons too. Swiss numbers must carry their VAT suffix
  (``CHE-123.456.789 MWST``, or ``TVA``/``IVA``): a bare UID does not show VAT
  registration. Norwegian numbers must end in ``MVA`` for the same reason.
* **Company with a valid VAT number, seller established outside the territory**: reverse
  charge (the customer accounts for the tax; the seller need not be registered). Rate 0,
  treatment REVERSE_CHARGE, a note citing the territory's rule and the customer's number.
* **Otherwise, seller registered there** (``BILLING_GATEWAY_VAT_REGISTRATIONS``): the
  territory's standard rate, treatment STANDARD. Businesses without a VAT number are taxed
  like consumers; a seller established in the territory charges its domestic customers.
* **Otherwise (seller not registered)**: one line named "UK VAT not charged" (or Swiss,
  Norwegian), rate 0, treatment OUT_OF_SCOPE and the note "Not charged: the seller is not
  registered for UK VAT".
  Registration thresholds are the operator's to judge: the UK has none for non-established
  sellers of digital services, Switzerland and Norway register from CHF 100,000 and
  NOK 50,000 of yearly turnover there. Register, then list the territory.
* **Customer outside the territory** (a routing mistake): an OUT_OF_SCOPE line named
  "Not subject to UK VAT", never a tax.

Lines are named after the tax that applies: "VAT 20% (GB)", "MWST 8.1% (CH)",
"MVA 25% (NO)"; a line of no tax never shows a 0 % rate. Rates are effective-dated in ``territory_rates.csv`` (GB 20 % since
2011-01-04; CH 8.1 % since 2024-01-01, 7.7 % before; NO 25 %), replaceable with
``BILLING_GATEWAY_VAT_TERRITORY_RATES``. Liechtenstein (Swiss VAT area, own numbers),
Northern Ireland's goods rules and reduced rates are not modelled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache

from stdnum.ch import vat as ch_vat
from stdnum.exceptions import ValidationError
from stdnum.gb import vat as gb_vat
from stdnum.no import mva as no_mva

from billing_gateway_tax_vat.lines import named_tax_line, standard_rates, tax_line, untaxed_line
from billing_gateway_tax_vat.rules import RateTable
from gateway.plugin_api import CustomerKind, InvalidTaxId, TaxLine, TaxRequest, TaxTreatment

_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Territory:
    """What differs between the territories: names, the reverse-charge rule, the number format."""

    country: str  # ISO code, also the jurisdiction of every line
    tax: str  # the tax's name on invoices: "VAT", "MWST", "MVA"
    title: str  # "UK VAT", for notes
    reverse_charge_note: str  # with {vat_id}
    number_example: str  # a well-formed number, for error messages
    normalize: Callable[[str], str]  # the number as printed; raises stdnum's ValidationError


def _gb(number: str) -> str:
    return "GB" + gb_vat.validate(number)


def _ch(number: str) -> str:
    return str(ch_vat.format(ch_vat.validate(number)))


def _no(number: str) -> str:
    return str(no_mva.format(no_mva.validate(number)))


TERRITORIES: dict[str, Territory] = {
    "GB": Territory(
        "GB",
        "VAT",
        "UK VAT",
        "Reverse charge: customer to account for the VAT to HMRC "
        "(section 8, Value Added Tax Act 1994). Customer VAT number: {vat_id}",
        "GB 980 7806 84",
        _gb,
    ),
    "CH": Territory(
        "CH",
        "MWST",
        "Swiss VAT",
        "Reverse charge: the recipient accounts for the Swiss VAT (acquisition tax, "
        "Art. 45 MWSTG). Customer VAT number: {vat_id}",
        "CHE-107.787.577 MWST",
        _ch,
    ),
    "NO": Territory(
        "NO",
        "MVA",
        "Norwegian VAT",
        "Reverse charge: the recipient accounts for the Norwegian VAT "
        "(merverdiavgiftsloven § 11-1 (2)). Customer VAT number: {vat_id}",
        "NO 995 525 828 MVA",
        _no,
    ),
}


class TerritoryVatCalculator:
    """VAT of one territory outside the EU (module docstring). Immutable, thread-safe, pure."""

    def __init__(self, territory: Territory, rates: RateTable, *, registered: bool) -> None:
        self.territory = territory
        self.code = f"vat_{territory.country.lower()}"
        self.registered = registered
        self._standard = standard_rates(territory.tax, rates)
        self._outside_name = f"Not subject to {territory.title}"
        self._outside = f"Outside the scope of {territory.title}"
        self._unregistered_name = f"{territory.title} not charged"
        self._unregistered = f"Not charged: the seller is not registered for {territory.title}"
        rates.rate(territory.country, _FAR_FUTURE)  # the table must have the territory: fail at start-up

    def calculate(self, request: TaxRequest) -> tuple[TaxLine, ...]:
        territory = self.territory
        here = territory.country
        customer = request.customer
        base = request.taxable_base
        if customer.country != here and customer.country.upper() != here:
            return (untaxed_line(self._outside_name, customer.country.upper(), base, self._outside),)
        tax_id = customer.tax_id
        if tax_id is not None and tax_id.strip():
            vat_id = _normalize(territory.country, tax_id)  # raises InvalidTaxId
            if customer.kind is CustomerKind.COMPANY and request.seller_country.upper() != here:
                note = territory.reverse_charge_note.format(vat_id=vat_id)
                return (tax_line(territory.tax, here, _ZERO, base, TaxTreatment.REVERSE_CHARGE, note),)
        if not self.registered:
            return (untaxed_line(self._unregistered_name, here, base, self._unregistered),)
        rate, name = self._standard(here, request.on)
        return (named_tax_line(name, here, rate, base, _STANDARD, None),)


_STANDARD = TaxTreatment.STANDARD
_FAR_FUTURE = date(9999, 12, 31)


@lru_cache(maxsize=4096)  # quotes re-check the same number on every slider move
def _normalize(country: str, tax_id: str) -> str:
    territory = TERRITORIES[country]
    try:
        return territory.normalize(tax_id)
    except ValidationError as error:
        reason = f"not a valid {territory.title} number ({error}); expected e.g. {territory.number_example}"
        raise InvalidTaxId(tax_id, reason) from None
