"""The default rate card, as the gateway sees it through the hook, and its CSV validation."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

import billing_gateway_messaging_rates as plugin
from billing_gateway_messaging_rates import RateCard, RateCardError
from gateway.core.messaging import Channel
from gateway.plugin_api.messaging import RateProvider

HEADER = "country,name,sms,whatsapp_marketing,whatsapp_utility,whatsapp_authentication\n"
TYPES = ["SMS", "WHATSAPP_MARKETING", "WHATSAPP_UTILITY", "WHATSAPP_AUTHENTICATION"]


@pytest.fixture(scope="module")
def provider() -> RateProvider:
    registered: list[RateProvider] = []
    plugin.register_rate_providers(register=registered.append)
    assert len(registered) == 1
    return registered[0]


def test_registers_the_default_provider(provider: RateProvider) -> None:
    assert isinstance(provider, RateProvider)
    assert provider.code == "default"


def test_message_types_in_display_order(provider: RateProvider) -> None:
    types = provider.message_types()
    assert [t.code for t in types] == TYPES
    names = ["SMS", "WhatsApp Marketing", "WhatsApp Utility", "WhatsApp Authentication"]
    assert [t.name for t in types] == names
    assert [t.channel for t in types] == [Channel.SMS] + [Channel.WHATSAPP] * 3
    assert [t.segmented for t in types] == [True, False, False, False]


def test_destinations_cover_the_main_markets_sorted_by_name(provider: RateProvider) -> None:
    destinations = provider.destinations()
    assert len(destinations) >= 45
    names = [d.name for d in destinations]
    assert names == sorted(names, key=str.casefold)
    codes = {d.country for d in destinations}
    assert len(codes) == len(destinations)
    eu = {
        "AT",
        "BE",
        "BG",
        "HR",
        "CY",
        "CZ",
        "DK",
        "EE",
        "FI",
        "FR",
        "DE",
        "GR",
        "HU",
        "IE",
        "IT",
        "LV",
        "LT",
        "LU",
        "MT",
        "NL",
        "PL",
        "PT",
        "RO",
        "SK",
        "SI",
        "ES",
        "SE",
    }
    others = {
        "GB",
        "CH",
        "NO",
        "US",
        "CA",
        "MX",
        "BR",
        "AR",
        "IN",
        "ID",
        "PH",
        "NG",
        "ZA",
        "EG",
        "AE",
        "SA",
        "TR",
        "AU",
        "NZ",
        "JP",
        "SG",
    }
    assert eu | others <= codes


@pytest.mark.parametrize(
    ("country", "type_code", "price"),
    [
        ("DE", "SMS", "7.5"),
        ("DE", "WHATSAPP_MARKETING", "13.6"),
        ("DE", "WHATSAPP_UTILITY", "5.5"),
        ("DE", "WHATSAPP_AUTHENTICATION", "5.5"),
        ("US", "SMS", "0.9"),
        ("US", "WHATSAPP_MARKETING", "2.5"),
        ("IN", "SMS", "0.8"),
    ],
)
def test_known_prices_are_exact_decimals(
    provider: RateProvider, country: str, type_code: str, price: str
) -> None:
    credits = provider.credits_per_message(country, type_code)
    assert type(credits) is Decimal
    assert credits == Decimal(price)


def test_every_destination_prices_sms(provider: RateProvider) -> None:
    for d in provider.destinations():
        credits = provider.credits_per_message(d.country, "SMS")
        assert isinstance(credits, Decimal) and credits > 0, d


def test_unknown_country_or_type_is_not_priced(provider: RateProvider) -> None:
    assert provider.credits_per_message("XX", "SMS") is None
    assert provider.credits_per_message("de", "SMS") is None  # codes are upper case
    assert provider.credits_per_message("DE", "EMAIL") is None


def test_empty_cell_means_not_offered(provider: RateProvider) -> None:
    # WhatsApp is blocked in China; the card offers SMS only.
    assert provider.credits_per_message("CN", "SMS") == Decimal("3.5")
    for code in TYPES[1:]:
        assert provider.credits_per_message("CN", code) is None


def test_custom_card_path(tmp_path: Path) -> None:
    card = tmp_path / "card.csv"
    card.write_text("\ufeff" + HEADER + "ZZ,Zedland,1.25,,0,3\n\nAA,Aland,2,2,2,2\n", encoding="utf-8")
    rates = RateCard(card)
    assert [d.country for d in rates.destinations()] == ["AA", "ZZ"]
    assert rates.credits_per_message("ZZ", "SMS") == Decimal("1.25")
    assert rates.credits_per_message("ZZ", "WHATSAPP_MARKETING") is None
    assert rates.credits_per_message("ZZ", "WHATSAPP_UTILITY") == Decimal("0")


@pytest.mark.parametrize(
    ("body", "line", "field", "problem"),
    [
        ("de,Germany,7.5,13.6,5.5,5.5\n", 2, "country", "ISO 3166-1"),
        ("DEU,Germany,7.5,13.6,5.5,5.5\n", 2, "country", "ISO 3166-1"),
        ("DE,Germany,7.5,13.6,5.5,5.5\nFR,France,6.9,1,1,1\nDE,Germany,1,1,1,1\n", 4, "country", "duplicate"),
        ("DE,,7.5,13.6,5.5,5.5\n", 2, "name", "empty"),
        ("DE,Germany,7.5,abc,5.5,5.5\n", 2, "whatsapp_marketing", "not a plain decimal"),
        ("DE,Germany,7.5,13.6,5.5,1e3\n", 2, "whatsapp_authentication", "not a plain decimal"),
        ("DE,Germany,NaN,13.6,5.5,5.5\n", 2, "sms", "not a plain decimal"),
        ("DE,Germany,7.5,13.6,-5.5,5.5\n", 2, "whatsapp_utility", "negative"),
    ],
)
def test_broken_card_names_file_line_and_field(
    tmp_path: Path, body: str, line: int, field: str, problem: str
) -> None:
    card = tmp_path / "broken.csv"
    card.write_text(HEADER + body, encoding="utf-8")
    with pytest.raises(ValueError) as info:
        RateCard(card)
    message = str(info.value)
    assert str(card) in message
    assert f"line {line}" in message
    assert repr(field) in message
    assert problem in message
    assert isinstance(info.value, RateCardError) and info.value.line == line and info.value.field == field


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("", 1, "empty"),
        ("country,name,sms\nDE,Germany,7.5\n", 1, "expected header"),
        (HEADER + "DE,Germany,7.5,13.6,5.5\n", 2, "expected 6 fields, got 5"),
        (HEADER + 'DE,"Germany,7.5,13.6,5.5,5.5\n', 2, "malformed CSV"),
    ],
)
def test_broken_card_structure(tmp_path: Path, text: str, line: int, problem: str) -> None:
    card = tmp_path / "broken.csv"
    card.write_text(text, encoding="utf-8")
    with pytest.raises(RateCardError, match=problem) as info:
        RateCard(card)
    assert str(card) in str(info.value)
    assert info.value.line == line
