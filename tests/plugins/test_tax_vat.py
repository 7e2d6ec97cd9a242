"""The tax_vat plugin, exercised through its hook like the gateway does."""

from __future__ import annotations

import functools
import importlib.metadata
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pluggy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import billing_gateway_tax_vat as plugin
from gateway.core.money import Money
from gateway.core.tax import (
    CustomerKind,
    InvalidTaxId,
    TaxCalculator,
    TaxCustomer,
    TaxLine,
    TaxRequest,
    TaxTreatment,
)
from gateway.plugin_api import hookspecs

PERSON, COMPANY = CustomerKind.PERSON, CustomerKind.COMPANY
ON = date(2026, 1, 1)

# Standard rates on 2026-01-01, written out independently of the CSV.
EXPECTED_2026 = {
    "AT": "0.20",
    "BE": "0.21",
    "BG": "0.20",
    "CY": "0.19",
    "CZ": "0.21",
    "DE": "0.19",
    "DK": "0.25",
    "EE": "0.24",
    "ES": "0.21",
    "FI": "0.255",
    "FR": "0.20",
    "GR": "0.24",
    "HR": "0.25",
    "HU": "0.27",
    "IE": "0.23",
    "IT": "0.22",
    "LT": "0.21",
    "LU": "0.17",
    "LV": "0.21",
    "MT": "0.18",
    "NL": "0.21",
    "PL": "0.23",
    "PT": "0.23",
    "RO": "0.21",
    "SE": "0.25",
    "SI": "0.22",
    "SK": "0.23",
}

# Valid VAT IDs (checked with python-stdnum, taken from its documentation/tests).
VAT_DE = "DE136695976"
VAT_NL = "NL004495445B01"
VAT_BE = "BE0403019261"
VAT_FR = "FR40303265045"
VAT_GR = "EL094259216"


@functools.cache
def calculator() -> TaxCalculator:
    """The calculator the plugin registers (cached: the hook loads the CSV)."""
    registered: list[TaxCalculator] = []
    plugin.register_tax_calculators(register=registered.append)
    assert len(registered) == 1
    return registered[0]


def vat(
    customer_country: str,
    kind: CustomerKind = PERSON,
    tax_id: str | None = None,
    *,
    seller: str = "DE",
    base: str = "100.00",
    currency: str = "EUR",
    on: date = ON,
) -> TaxLine:
    lines = calculator().calculate(
        TaxRequest(
            seller_country=seller,
            customer=TaxCustomer(kind=kind, country=customer_country, tax_id=tax_id),
            taxable_base=Money(base, currency),
            on=on,
        )
    )
    assert len(lines) == 1
    return lines[0]


# ------------------------------------------------------------- registration


def test_hook_registers_one_vat_calculator() -> None:
    calc = calculator()
    assert isinstance(calc, TaxCalculator)
    assert calc.code == "vat"


def test_plugin_validates_against_hookspecs_and_is_an_entry_point() -> None:
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    pm.register(plugin)  # raises if the hookimpl does not match its spec
    registered: list[TaxCalculator] = []
    pm.hook.register_tax_calculators(register=registered.append)
    assert [c.code for c in registered] == ["vat"]
    eps = importlib.metadata.entry_points(group=hookspecs.ENTRY_POINT_GROUP)
    assert "billing_gateway_tax_vat" in {ep.value for ep in eps if ep.name == "tax_vat"}


# ---------------------------------------------------------------- policy


def test_eu_consumer_pays_the_customer_country_rate() -> None:
    line = vat("FR", PERSON, seller="DE")
    assert line == TaxLine(
        name="VAT 20% (FR)",
        jurisdiction="FR",
        rate=Decimal("0.20"),
        base=Money("100.00", "EUR"),
        amount=Money("20.00", "EUR"),
        treatment=TaxTreatment.STANDARD,
        note=None,
    )


def test_eu_business_with_vat_id_in_another_state_is_reverse_charged() -> None:
    line = vat("NL", COMPANY, VAT_NL, seller="DE")
    assert line.treatment is TaxTreatment.REVERSE_CHARGE
    assert line.rate == 0
    assert line.amount == Money("0", "EUR") and str(line.amount.amount) == "0.00"
    assert line.base == Money("100.00", "EUR")
    assert line.jurisdiction == "NL"
    assert line.name == "VAT 0% (NL)"
    assert line.note is not None
    assert line.note.startswith("Reverse charge: VAT to be accounted for by the recipient")
    assert "Article 196, Council Directive 2006/112/EC" in line.note
    assert VAT_NL in line.note


@pytest.mark.parametrize("tax_id", [None, "", "   "])
def test_eu_business_without_vat_id_in_another_state_is_taxed_like_a_consumer(tax_id: str | None) -> None:
    line = vat("BE", COMPANY, tax_id, seller="DE")
    assert (line.treatment, line.rate, line.amount) == (
        TaxTreatment.STANDARD,
        Decimal("0.21"),
        Money("21.00", "EUR"),
    )
    assert line.note is None


@pytest.mark.parametrize("tax_id", [VAT_DE, None])
def test_same_country_business_pays_domestic_vat_even_with_vat_id(tax_id: str | None) -> None:
    line = vat("DE", COMPANY, tax_id, seller="DE")
    assert (line.treatment, line.jurisdiction, line.name) == (TaxTreatment.STANDARD, "DE", "VAT 19% (DE)")
    assert line.amount == Money("19.00", "EUR")
    assert line.note is None


def test_same_country_rate_is_the_seller_country_rate() -> None:
    line = vat("FI", COMPANY, "FI20774740", seller="FI")
    assert (line.rate, line.amount, line.name) == (Decimal("0.255"), Money("25.50", "EUR"), "VAT 25.5% (FI)")


@pytest.mark.parametrize("country", ["GB", "CH", "NO", "US"])
@pytest.mark.parametrize("kind", [PERSON, COMPANY])
def test_outside_the_eu_is_one_out_of_scope_line(country: str, kind: CustomerKind) -> None:
    # A non-EU tax ID cannot be checked offline, so even nonsense is ignored.
    line = vat(country, kind, "GB 123", base="-42.17")
    assert line.treatment is TaxTreatment.OUT_OF_SCOPE
    assert line.rate == 0
    assert str(line.amount.amount) == "0.00"
    assert line.base == Money("-42.17", "EUR")
    assert line.jurisdiction == country
    # Named by the tax that does not apply, with no "VAT 0%" that would claim it applies at 0 %.
    assert line.name == "Not subject to EU VAT"
    assert line.note == "Not subject to EU VAT (place of supply outside the EU)"


def test_seller_outside_the_eu_is_refused() -> None:
    with pytest.raises(ValueError, match="seller country 'GB' is not an EU member state"):
        vat("DE", PERSON, seller="GB")


# ---------------------------------------------------------------- VAT IDs


def test_greece_uses_el_prefix_but_gr_country() -> None:
    line = vat("GR", COMPANY, "EL 094 259 216", seller="DE")
    assert (line.treatment, line.jurisdiction) == (TaxTreatment.REVERSE_CHARGE, "GR")
    assert line.note is not None and VAT_GR in line.note
    # without prefix, or with the ISO code as prefix: same normalised ID
    for given_id in ("094259216", "GR094259216"):
        note = vat("GR", COMPANY, given_id).note
        assert note is not None and VAT_GR in note
    assert vat("GR", PERSON).name == "VAT 24% (GR)"
    assert vat("GR", COMPANY, VAT_GR, seller="GR").rate == Decimal("0.24")


@pytest.mark.parametrize(
    ("country", "given_id", "normalised"),
    [
        ("DE", "DE 136 695 976", VAT_DE),
        ("DE", "de136.695-976", VAT_DE),
        ("DE", "136695976", VAT_DE),
        ("NL", "004495445B01", VAT_NL),
        ("BE", "BE 0403.019.261", VAT_BE),
        ("BE", "0403019261", VAT_BE),
        ("FR", "40 303 265 045", VAT_FR),
        ("FR", "HR303265045", "FRHR303265045"),  # a French check key may be letters
        ("AT", "U13585627", "ATU13585627"),
    ],
)
def test_vat_id_is_normalised_before_it_is_cited(country: str, given_id: str, normalised: str) -> None:
    line = vat(country, COMPANY, given_id, seller="LU")
    assert line.treatment is TaxTreatment.REVERSE_CHARGE
    assert line.note is not None and line.note.endswith(normalised)


@pytest.mark.parametrize(
    ("country", "kind", "seller"),
    [("DE", COMPANY, "FR"), ("DE", COMPANY, "DE"), ("DE", PERSON, "FR")],
)
def test_bad_checksum_raises_invalid_tax_id(country: str, kind: CustomerKind, seller: str) -> None:
    with pytest.raises(InvalidTaxId) as caught:
        vat(country, kind, "DE 136695977", seller=seller)
    assert caught.value.tax_id == "DE 136695977"
    assert "checksum" in caught.value.reason


@pytest.mark.parametrize("bad", ["DE12345", "hello", "DE1366959761", "--"])
def test_malformed_vat_id_raises_invalid_tax_id(bad: str) -> None:
    with pytest.raises(InvalidTaxId, match="not a valid DE VAT number"):
        vat("DE", COMPANY, bad, seller="FR")


def test_vat_id_of_another_member_state_than_the_billing_country_raises() -> None:
    with pytest.raises(InvalidTaxId) as caught:
        vat("FR", COMPANY, VAT_DE, seller="NL")
    assert caught.value.tax_id == VAT_DE
    assert "DE" in caught.value.reason and "FR" in caught.value.reason
    with pytest.raises(InvalidTaxId):
        vat("DE", COMPANY, VAT_GR, seller="NL")  # Greek ID, German billing address


# ------------------------------------------------------------------ rates


@pytest.mark.parametrize(
    ("country", "on", "rate", "name"),
    [
        ("DE", date(2020, 6, 30), "0.19", "VAT 19% (DE)"),
        ("DE", date(2020, 7, 1), "0.16", "VAT 16% (DE)"),
        ("DE", date(2020, 10, 1), "0.16", "VAT 16% (DE)"),
        ("DE", date(2020, 12, 31), "0.16", "VAT 16% (DE)"),
        ("DE", date(2021, 1, 1), "0.19", "VAT 19% (DE)"),
        ("FI", date(2024, 8, 31), "0.24", "VAT 24% (FI)"),
        ("FI", date(2024, 9, 1), "0.255", "VAT 25.5% (FI)"),
        ("EE", date(2023, 12, 31), "0.20", "VAT 20% (EE)"),
        ("EE", date(2024, 1, 1), "0.22", "VAT 22% (EE)"),
        ("EE", date(2025, 7, 1), "0.24", "VAT 24% (EE)"),
        ("SK", date(2024, 12, 31), "0.20", "VAT 20% (SK)"),
        ("SK", date(2025, 1, 1), "0.23", "VAT 23% (SK)"),
        ("RO", date(2025, 7, 31), "0.19", "VAT 19% (RO)"),
        ("RO", date(2025, 8, 1), "0.21", "VAT 21% (RO)"),
        ("LU", date(2023, 6, 1), "0.16", "VAT 16% (LU)"),
        ("LU", date(2024, 1, 1), "0.17", "VAT 17% (LU)"),
        ("IE", date(2020, 9, 1), "0.21", "VAT 21% (IE)"),
        ("IE", date(2021, 3, 1), "0.23", "VAT 23% (IE)"),
    ],
)
def test_rate_in_force_on_the_request_date(country: str, on: date, rate: str, name: str) -> None:
    line = vat(country, PERSON, on=on)
    assert (line.rate, line.name) == (Decimal(rate), name)
    assert isinstance(line.rate, Decimal)


def test_date_before_the_table_raises_vat_rate_not_found() -> None:
    with pytest.raises(plugin.VatRateNotFound, match="DE on 2006-12-31"):
        vat("DE", PERSON, on=date(2006, 12, 31))
    assert isinstance(plugin.VatRateNotFound("x"), LookupError)


def test_every_member_state_has_a_rate_today() -> None:
    assert set(EXPECTED_2026) == plugin.MEMBER_STATES and len(plugin.MEMBER_STATES) == 27
    for country in sorted(plugin.MEMBER_STATES):
        line = vat(country, PERSON, on=date.today())
        assert line.treatment is TaxTreatment.STANDARD
        assert Decimal("0.15") <= line.rate < Decimal("0.30"), country


def test_standard_rates_on_2026_01_01() -> None:
    assert {c: vat(c, PERSON, on=ON).rate for c in EXPECTED_2026} == {
        c: Decimal(r) for c, r in EXPECTED_2026.items()
    }


# --------------------------------------------------------------- rounding


@pytest.mark.parametrize(
    ("country", "base", "currency", "amount"),
    [
        ("DE", "0.05", "EUR", "0.01"),  # 0.0095
        ("DE", "0.02", "EUR", "0.00"),  # 0.0038
        ("NL", "0.50", "EUR", "0.11"),  # 0.105: exactly half a cent rounds up
        ("NL", "-0.50", "EUR", "-0.11"),  # ...and refunds mirror it
        ("FI", "0.10", "EUR", "0.03"),  # 0.0255
        ("FR", "12.345", "EUR", "2.47"),  # unrounded base: 2.469
        ("DE", "50", "JPY", "10"),  # 9.5 in a zero-decimal currency
        ("SE", "0.02", "SEK", "0.01"),  # 0.005
    ],
)
def test_amount_is_rounded_half_up_once_on_the_whole_base(
    country: str, base: str, currency: str, amount: str
) -> None:
    line = vat(country, PERSON, base=base, currency=currency)
    assert line.amount == Money(amount, currency)
    assert str(line.amount.amount) == amount
    assert line.base == Money(base, currency)


def test_tiny_refund_rounds_to_unsigned_zero() -> None:
    line = vat("DE", PERSON, base="-0.02")  # -0.0038
    assert str(line.amount.amount) == "0.00"


_CENTS = st.integers(min_value=-(10**9), max_value=10**9).map(lambda c: Decimal(c).scaleb(-2))


@settings(max_examples=300, deadline=None, database=None)
@given(base=_CENTS, country=st.sampled_from(sorted(EXPECTED_2026)), kind=st.sampled_from([PERSON, COMPANY]))
def test_amount_is_base_times_rate_rounded_half_up(base: Decimal, country: str, kind: CustomerKind) -> None:
    line = vat(country, kind, base=str(base))
    rate = Decimal(EXPECTED_2026[country])
    assert line.rate == rate
    expected = (base * rate).quantize(Decimal("0.01"), ROUND_HALF_UP)
    assert line.amount.amount == expected
    total = line.base + line.amount
    assert total.amount == base + expected and total.is_rounded
    # refunds are symmetric
    assert vat(country, kind, base=str(-base)).amount == -line.amount


# ------------------------------------------------------------ rate table


def _write(tmp_path: Path, body: str) -> Path:
    rows = [f"{c},{r},2000-01-01" for c, r in EXPECTED_2026.items() if c != "DE"]
    path = tmp_path / "rates.csv"
    path.write_text("country,rate,valid_from\n" + "\n".join(rows) + "\n" + body, encoding="utf-8")
    return path


def test_custom_rate_table_is_used(tmp_path: Path) -> None:
    path = _write(tmp_path, "# comment\n\nDE,0.07,2000-01-01\n")
    calc = plugin.EuVatCalculator(rates_path=path)
    request = TaxRequest("DE", TaxCustomer(PERSON, "DE"), Money("10.00", "EUR"), ON)
    assert calc.calculate(request)[0].amount == Money("0.70", "EUR")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("DE,abc,2000-01-01\n", "rate"),
        ("DE,19,2000-01-01\n", "rate"),  # a percentage, not a fraction
        ("DE,-0.01,2000-01-01\n", "rate"),
        ("DE,NaN,2000-01-01\n", "rate"),
        ("DE,0.19,2000-13-01\n", "valid_from"),
        ("DE,0.19,01/01/2000\n", "valid_from"),
        ("XX,0.19,2000-01-01\n", "country"),
        ("GB,0.20,2000-01-01\n", "country"),
        ("DE,0.19,2000-01-01\nDE,0.16,2000-01-01\n", "valid_from"),  # duplicate
    ],
)
def test_bad_row_names_file_line_and_field(tmp_path: Path, body: str, field: str) -> None:
    path = _write(tmp_path, body)
    bad_line = len(EXPECTED_2026) + len(body.splitlines())  # header + 26 rows + body
    with pytest.raises(ValueError) as caught:
        plugin.EuVatCalculator(rates_path=path)
    message = str(caught.value)
    assert str(path) in message
    assert f"line {bad_line}" in message
    assert f"field {field!r}" in message


def test_wrong_field_count_or_header_or_missing_state_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="line 28: expected 3 fields"):
        plugin.EuVatCalculator(rates_path=_write(tmp_path, "DE,0.19\n"))
    with pytest.raises(ValueError, match=r"no rates for member state.*DE"):
        plugin.EuVatCalculator(rates_path=_write(tmp_path, ""))
    path = tmp_path / "header.csv"
    path.write_text("country;rate;valid_from\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 1: expected header"):
        plugin.EuVatCalculator(rates_path=path)
