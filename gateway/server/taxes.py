"""Choosing the tax calculator(s) at start-up, from the settings and what plugins loaded.

Every refusal is a :class:`SettingsError` that names the environment variable to change
and lists the calculators that are loaded, so an operator can fix it from the message.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from gateway.core.money import Money
from gateway.core.tax import CustomerKind, TaxCalculator, TaxCustomer, TaxRequest
from gateway.core.tax_routing import TaxRouter, TaxRoutes, TaxRoutingError, parse_tax_routes
from gateway.server.settings import PREFIX, Settings, SettingsError

ONE = PREFIX + "TAX_CALCULATOR"
ROUTES = PREFIX + "TAX_CALCULATORS"
SELLER = PREFIX + "SELLER_COUNTRY"


def loaded(calculators: Mapping[str, TaxCalculator]) -> str:
    return f"loaded tax calculators: {', '.join(sorted(calculators)) or 'none'}"


def routes_from(settings: Settings, calculators: Mapping[str, TaxCalculator]) -> tuple[TaxRoutes, str]:
    """The routing rule the settings ask for, and the variable it came from (for messages)."""
    if settings.tax_calculators is not None and settings.tax_calculator is not None:
        raise SettingsError(f"set {ONE} (one calculator for everyone) or {ROUTES} (a rule), not both")
    if settings.tax_calculators is not None:
        try:
            return parse_tax_routes(settings.tax_calculators), ROUTES
        except TaxRoutingError as error:
            raise SettingsError(f"{ROUTES}: {error} ({loaded(calculators)})") from None
    if settings.tax_calculator is not None:
        return TaxRoutes.everything_to(settings.tax_calculator), ONE
    if len(calculators) != 1:
        raise SettingsError(
            f"{len(calculators)} tax calculators are loaded, so the gateway cannot choose: set {ONE} "
            f"to one of them, or {ROUTES} to a rule by customer country ({loaded(calculators)})"
        )
    return TaxRoutes.everything_to(next(iter(calculators))), ONE


def choose_tax_calculator(
    settings: Settings,
    calculators: Mapping[str, TaxCalculator],
    countries: frozenset[str],
    currency: str,
    now: datetime,
) -> TaxCalculator:
    """The calculator quotes call: one loaded calculator, or a :class:`TaxRouter` over several.

    Each calculator the rule names is asked once, here, to tax a customer in the seller's
    country and in each country routed to it, so a setting it cannot serve stops start-up
    instead of failing quotes.
    """
    routes, variable = routes_from(settings, calculators)
    unknown = [code for code in routes.codes if code not in calculators]
    if unknown:
        raise SettingsError(
            f"{variable} names {', '.join(repr(c) for c in unknown)}, which no plugin registered "
            f"({loaded(calculators)})"
        )
    strangers = sorted(set(routes.by_country) - countries)
    if strangers:
        raise SettingsError(f"{variable} routes unknown country code(s) {', '.join(strangers)}")
    for code in routes.codes:
        routed = routes.countries_of(code)
        _check(
            calculators[code], settings.seller_country, routed, currency, now, variable, loaded(calculators)
        )
    if not routes.by_country:  # one calculator for everyone: no router on the hot path
        return calculators[routes.default]
    return TaxRouter(routes, calculators)


def _check(
    tax: TaxCalculator,
    seller: str,
    routed: tuple[str, ...],
    currency: str,
    now: datetime,
    variable: str,
    loaded: str,
) -> None:
    for country in (seller, *routed):
        customer = TaxCustomer(CustomerKind.PERSON, country)
        try:
            tax.calculate(TaxRequest(seller, customer, Money.zero(currency).rounded(), now.date()))
        except Exception as error:  # a plugin's own error type: report it with the settings to change
            whom = f"seller country {seller!r} ({SELLER})"
            if country != seller:
                whom += f" and customers in {country} ({variable})"
            raise SettingsError(
                f"the tax calculator {tax.code!r} cannot tax for {whom}: {error} ({loaded})"
            ) from error
