"""Rate providers: unique codes, exact and positive credits, known message types, deterministic."""

from __future__ import annotations

import re
from decimal import Decimal

from gateway.core.messaging import Channel
from gateway.plugin_api.messaging import Destination, MessageType, RateProvider


def test_message_types_are_typed_and_their_codes_unique(rate_provider: RateProvider) -> None:
    types = list(rate_provider.message_types())
    assert types, "a rate provider prices at least one message type"
    for t in types:
        assert isinstance(t, MessageType) and isinstance(t.channel, Channel), f"{t!r}"
        assert isinstance(t.code, str) and re.fullmatch(r"[A-Z][A-Z0-9_]*", t.code), f"code {t.code!r}"
        assert isinstance(t.name, str) and t.name.strip()
    codes = [t.code for t in types]
    assert len(codes) == len(set(codes)), f"duplicate message type codes: {codes}"


def test_destinations_are_typed_and_their_countries_unique(rate_provider: RateProvider) -> None:
    destinations = list(rate_provider.destinations())
    assert destinations, "a rate provider prices at least one destination"
    for d in destinations:
        assert isinstance(d, Destination), f"{d!r}"
        assert isinstance(d.country, str) and re.fullmatch(r"[A-Z]{2}", d.country), f"country {d.country!r}"
        assert isinstance(d.name, str) and d.name.strip()
    countries = [d.country for d in destinations]
    assert len(countries) == len(set(countries)), f"duplicate destinations: {countries}"


def test_credits_are_exact_and_positive_for_known_message_types(rate_provider: RateProvider) -> None:
    types = [t.code for t in rate_provider.message_types()]
    for destination in rate_provider.destinations():
        priced = []
        for code in types:
            credits = rate_provider.credits_per_message(destination.country, code)
            if credits is None:
                continue
            assert isinstance(credits, Decimal | int) and not isinstance(credits, bool), (
                f"credits for {code} to {destination.country} are {credits!r}: use Decimal, never float"
            )
            assert Decimal(credits).is_finite() and credits > 0, (
                f"{credits} credits for {code} to {destination.country}"
            )
            priced.append(code)
        assert priced, f"destination {destination.country} prices no message type"


def test_unknown_countries_and_message_types_are_not_priced(rate_provider: RateProvider) -> None:
    known_type = next(iter(rate_provider.message_types())).code
    known_country = next(iter(rate_provider.destinations())).country
    assert rate_provider.credits_per_message("ZZ", known_type) is None
    assert rate_provider.credits_per_message(known_country, "CONFORMANCE_UNKNOWN_TYPE") is None


def test_the_same_question_gives_the_same_answer(rate_provider: RateProvider) -> None:
    assert list(rate_provider.message_types()) == list(rate_provider.message_types())
    assert list(rate_provider.destinations()) == list(rate_provider.destinations())
    types = [t.code for t in rate_provider.message_types()]
    for destination in rate_provider.destinations():
        for code in types:
            first = rate_provider.credits_per_message(destination.country, code)
            assert rate_provider.credits_per_message(destination.country, code) == first
