"""Several tax calculators at once: the rule that says which one taxes which customer.

The rule maps the customer's country (or a region of countries) to a calculator code,
with a default for every other country. It is written as text, for a setting::

    GB=vat_gb; CH=vat_ch; NO=vat_no; *=vat

* rules are separated by ``;`` (or new lines); each is ``PLACES=CODE``;
* ``PLACES`` is a comma-separated list of ISO 3166-1 alpha-2 codes (``GB``) and region
  names (:data:`REGIONS`: ``EU``, ``EEA``), or ``*`` for every country no rule names;
* ``CODE`` is the ``code`` of a loaded tax calculator;
* every country is named once: a country in two rules (``EU=vat; DE=other``, or ``DE``
  twice) is refused rather than resolved by order, so the rule reads the same whichever
  way round it is written; ``*`` must be given exactly once.

:class:`TaxRouter` applies a parsed rule. It satisfies :class:`TaxCalculator` itself, so
pricing is unchanged: one dict lookup picks the calculator, which then computes the tax.
Pure: parsing and routing touch nothing outside their arguments.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gateway.core.tax import TaxCalculator, TaxLine, TaxRequest

#: ISO 3166-1 alpha-2 codes of the 27 EU member states.
EU_MEMBER_STATES: frozenset[str] = frozenset(
    [
        "AT",
        "BE",
        "BG",
        "CY",
        "CZ",
        "DE",
        "DK",
        "EE",
        "ES",
        "FI",
        "FR",
        "GR",
        "HR",
        "HU",
        "IE",
        "IT",
        "LT",
        "LU",
        "LV",
        "MT",
        "NL",
        "PL",
        "PT",
        "RO",
        "SE",
        "SI",
        "SK",
    ]
)

#: Region names a rule may use instead of listing countries.
REGIONS: Mapping[str, frozenset[str]] = {
    "EU": EU_MEMBER_STATES,
    "EEA": EU_MEMBER_STATES | {"IS", "LI", "NO"},
}

DEFAULT = "*"
_COUNTRY = re.compile(r"^[A-Z]{2}$")


class TaxRoutingError(ValueError):
    """The rule's text cannot be read, or names a country twice."""


@dataclass(frozen=True, slots=True)
class TaxRoutes:
    """A parsed rule: calculator code by customer country, and the default code."""

    by_country: Mapping[str, str]
    default: str

    @property
    def codes(self) -> tuple[str, ...]:
        """Every calculator code the rule names, default first, each once."""
        return tuple(dict.fromkeys([self.default, *self.by_country.values()]))

    def countries_of(self, code: str) -> tuple[str, ...]:
        """The countries routed to ``code`` by name (not through the default), sorted."""
        return tuple(sorted(c for c, routed in self.by_country.items() if routed == code))

    @classmethod
    def everything_to(cls, code: str) -> TaxRoutes:
        """One calculator for every customer."""
        return cls({}, code)


def parse_tax_routes(text: str) -> TaxRoutes:
    """Read a rule (syntax in the module docstring); raises :class:`TaxRoutingError`
    saying which rule is wrong and why."""
    by_country: dict[str, str] = {}
    named_by: dict[str, str] = {}  # country -> the place that named it ("EU" or "DE"), for messages
    default: str | None = None
    rules = [r.strip() for r in re.split(r"[;\n]", text) if r.strip()]
    if not rules:
        raise TaxRoutingError(
            "no rules; expected PLACES=CODE rules separated by ';', e.g. 'GB=vat_gb; *=vat'"
        )
    for rule in rules:
        places_text, equals, code = rule.partition("=")
        code = code.strip()
        places = [p.strip().upper() for p in places_text.split(",")]
        if not equals or not code or any(not p for p in places) or "=" in code:
            raise TaxRoutingError(f"rule {rule!r} is not PLACES=CODE (e.g. 'GB,NO=vat_nordic' or '*=vat')")
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", code):
            raise TaxRoutingError(f"rule {rule!r}: {code!r} is not a calculator code")
        for place in places:
            if place == DEFAULT:
                if default is not None:
                    raise TaxRoutingError(f"'*' is given twice (for {default!r} and {code!r})")
                default = code
                continue
            countries = REGIONS.get(place)
            if countries is None:
                if not _COUNTRY.match(place):
                    raise TaxRoutingError(
                        f"rule {rule!r}: {place!r} is neither a two-letter country code nor a region "
                        f"({', '.join(sorted(REGIONS))})"
                    )
                countries = frozenset([place])
            for country in sorted(countries):
                if country in by_country:
                    raise TaxRoutingError(
                        f"{country} is routed twice: by {named_by[country]!r} to {by_country[country]!r} "
                        f"and by {place!r} to {code!r}; name each country once"
                    )
                by_country[country] = code
                named_by[country] = place
    if default is None:
        raise TaxRoutingError("no default: add '*=CODE' for the countries no rule names")
    return TaxRoutes(by_country, default)


class TaxRouter:
    """A :class:`TaxCalculator` that hands each request to the calculator of the customer's
    country. Immutable after construction, so safe to share between threads."""

    code = "router"

    def __init__(self, routes: TaxRoutes, calculators: Mapping[str, TaxCalculator]) -> None:
        """``calculators`` must hold every code ``routes`` names (KeyError otherwise)."""
        self.routes = routes
        self._default = calculators[routes.default]
        self._by_country = {country: calculators[code] for country, code in routes.by_country.items()}

    def calculator_for(self, country: str) -> TaxCalculator:
        calculator = self._by_country.get(country)
        if calculator is None:  # country codes are stored upper case; try as given first (hot path)
            calculator = self._by_country.get(country.upper(), self._default)
        return calculator

    def calculate(self, request: TaxRequest) -> Sequence[TaxLine]:
        return self.calculator_for(request.customer.country).calculate(request)
