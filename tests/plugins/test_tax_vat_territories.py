"""The tax_vat plugin's calculators for GB, CH and NO: configured by environment variables,
exercised through the hook like the gateway does."""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import billing_gateway_tax_vat as plugin
from billing_gateway_tax_vat.config import VatSettings, ViesFallback
from gateway.core.money import Money
from gateway.core.tax import CustomerKind, InvalidTaxId, TaxCalculator, TaxCustomer, TaxRequest, TaxTreatment

PERSON, COMPANY = CustomerKind.PERSON, CustomerKind.COMPANY
ALL = {"BILLING_GATEWAY_VAT_TERRITORIES": "gb, ch ,NO", "BILLING_GATEWAY_VAT_REGISTRATIONS": "GB,CH,NO"}


def registered(monkeypatch: pytest.MonkeyPatch, **env: str) -> dict[str, TaxCalculator]:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    calculators: list[TaxCalculator] = []
    plugin.register_tax_calculators(register=calculators.append)
    return {c.code: c for c in calculators}


@pytest.fixture(scope="module")
def territories() -> dict[str, TaxCalculator]:
    with pytest.MonkeyPatch.context() as patch:
        return registered(patch, **ALL)


def tax(
    calculator: TaxCalculator, country: str, kind=PERSON, tax_id=None, *, seller="DE", base="100.00", on=None
):
    customer = TaxCustomer(kind, country, tax_id)
    return calculator.calculate(TaxRequest(seller, customer, Money(base, "EUR"), on or date(2026, 1, 1)))


def test_only_the_eu_calculator_without_configuration(monkeypatch):
    monkeypatch.delenv("BILLING_GATEWAY_VAT_TERRITORIES", raising=False)
    assert list(registered(monkeypatch)) == ["vat"]


def test_one_calculator_per_listed_territory(territories):
    assert list(territories) == ["vat", "vat_gb", "vat_ch", "vat_no"]
    assert all(isinstance(c, TaxCalculator) for c in territories.values())


@pytest.mark.parametrize(
    ("code", "on", "name", "rate"),
    [
        ("vat_gb", date(2026, 1, 1), "VAT 20% (GB)", "0.20"),
        ("vat_ch", date(2023, 12, 31), "MWST 7.7% (CH)", "0.077"),
        ("vat_ch", date(2024, 1, 1), "MWST 8.1% (CH)", "0.081"),
        ("vat_no", date(2026, 1, 1), "MVA 25% (NO)", "0.25"),
    ],
)
def test_the_bundled_rates_are_dated(territories, code, on, name, rate):
    [line] = tax(territories[code], code[-2:].upper(), on=on)
    assert (line.name, line.rate, line.treatment) == (name, Decimal(rate), TaxTreatment.STANDARD)


def test_a_seller_in_the_territory_charges_its_domestic_companies(territories):
    [line] = tax(territories["vat_ch"], "CH", COMPANY, "CHE-107.787.577 MWST", seller="CH")
    assert (line.treatment, line.rate) == (TaxTreatment.STANDARD, Decimal("0.081"))


def test_a_customer_outside_the_territory_is_out_of_scope(territories):
    [line] = tax(territories["vat_no"], "SE")
    assert (line.name, line.treatment, line.note) == (
        "Not subject to Norwegian VAT",
        TaxTreatment.OUT_OF_SCOPE,
        "Outside the scope of Norwegian VAT",
    )


def test_rates_can_be_replaced_by_a_file(monkeypatch, tmp_path: Path):
    rates = tmp_path / "rates.csv"
    rates.write_text("# ours\ncountry,rate,valid_from\nGB,0.175,2000-01-01\nGB,0.21,2026-01-01\n")
    calculators = registered(
        monkeypatch,
        BILLING_GATEWAY_VAT_TERRITORIES="GB",
        BILLING_GATEWAY_VAT_REGISTRATIONS="GB",
        BILLING_GATEWAY_VAT_TERRITORY_RATES=str(rates),
    )
    assert tax(calculators["vat_gb"], "GB")[0].name == "VAT 21% (GB)"
    assert tax(calculators["vat_gb"], "GB", on=date(2025, 12, 31))[0].name == "VAT 17.5% (GB)"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("country,rate,valid_from\nGB,0.20,2011-01-04\n", r"no rates for VAT territory\(s\) NO"),
        (
            "country,rate,valid_from\nUS,0.20,2011-01-04\n",
            r"line 2, field 'country': 'US' is not a VAT territory code",
        ),
    ],
)
def test_a_bad_rate_file_stops_start_up(monkeypatch, tmp_path: Path, body, message):
    rates = tmp_path / "rates.csv"
    rates.write_text(body)
    with pytest.raises(ValueError, match=message):
        registered(
            monkeypatch,
            BILLING_GATEWAY_VAT_TERRITORIES="GB,NO",
            BILLING_GATEWAY_VAT_TERRITORY_RATES=str(rates),
        )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"BILLING_GATEWAY_VAT_TERRITORIES": "GB,DE"},
            "BILLING_GATEWAY_VAT_TERRITORIES: DE is not a VAT territory",
        ),
        (
            {"BILLING_GATEWAY_VAT_TERRITORIES": "GB", "BILLING_GATEWAY_VAT_REGISTRATIONS": "CH"},
            "BILLING_GATEWAY_VAT_REGISTRATIONS names CH, which BILLING_GATEWAY_VAT_TERRITORIES does not list",
        ),
        ({"BILLING_GATEWAY_VIES": "maybe"}, "BILLING_GATEWAY_VIES must be on or off"),
        ({"BILLING_GATEWAY_VIES_TIMEOUT": "0"}, "BILLING_GATEWAY_VIES_TIMEOUT must be a number of seconds"),
        ({"BILLING_GATEWAY_VIES_TIMEOUT": "61"}, "at most 60"),
        (
            {"BILLING_GATEWAY_VIES_FALLBACK": "guess"},
            "BILLING_GATEWAY_VIES_FALLBACK must be accept or refuse",
        ),
        ({"BILLING_GATEWAY_VIES_URL": "ftp://x"}, "BILLING_GATEWAY_VIES_URL must be an http(s) URL"),
    ],
)
def test_a_bad_setting_is_refused_naming_it(env, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        VatSettings.from_env(env)


def test_the_defaults():
    defaults = VatSettings.from_env({})
    assert (defaults.territories, defaults.vies, defaults.vies_fallback) == ((), False, ViesFallback.ACCEPT)
    assert defaults.vies_url == "https://ec.europa.eu/taxation_customs/vies/rest-api/check-vat-number"
    assert defaults.vies_timeout == 5.0


amounts = st.decimals(min_value=Decimal("-100000"), max_value=Decimal("100000"), places=2, allow_nan=False)


@given(base=amounts, code=st.sampled_from(["vat_gb", "vat_ch", "vat_no"]))
def test_the_tax_is_the_base_times_the_rate_rounded_half_up_once(territories, base, code):
    calculator = territories[code]
    [line] = tax(calculator, code[-2:].upper(), base=str(base))
    assert line.base == Money(base, "EUR")
    assert line.amount.amount == (base * line.rate).quantize(Decimal("0.01"), ROUND_HALF_UP)
    assert str(line.amount.amount) != "-0.00"
    [mirror] = tax(calculator, code[-2:].upper(), base=str(-base))
    assert mirror.amount == Money(-line.amount.amount, "EUR") or not line.amount.amount


@given(base=amounts, code=st.sampled_from(["vat_gb", "vat_ch", "vat_no"]))
def test_reverse_charge_lines_are_zero(territories, base, code):
    country = code[-2:].upper()
    numbers = {"GB": "GB980780684", "CH": "CHE-107.787.577 MWST", "NO": "NO995525828MVA"}
    [line] = tax(territories[code], country, COMPANY, numbers[country], base=str(base))
    assert (line.treatment, line.amount) == (TaxTreatment.REVERSE_CHARGE, Money("0.00", "EUR"))
    assert str(line.amount.amount) == "0.00"


def test_an_unregistered_seller_charges_nothing_but_still_checks_numbers(monkeypatch):
    calculator = registered(monkeypatch, BILLING_GATEWAY_VAT_TERRITORIES="CH")["vat_ch"]
    [line] = tax(calculator, "CH", base="-100.00")
    assert (line.treatment, line.amount, line.note) == (
        TaxTreatment.OUT_OF_SCOPE,
        Money("0.00", "EUR"),
        "Not charged: the seller is not registered for Swiss VAT",
    )
    with pytest.raises(InvalidTaxId, match=r"expected e\.g\. CHE-107\.787\.577 MWST"):
        tax(calculator, "CH", PERSON, "CHE-107.787.577")
