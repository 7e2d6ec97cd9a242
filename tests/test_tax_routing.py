"""Several tax calculators: the routing rule (BILLING_GATEWAY_TAX_CALCULATORS), quotes routed
by the customer's country, and start-up errors that name the setting to change."""

from __future__ import annotations

import dataclasses
import re
from decimal import ROUND_HALF_UP, Decimal

import pytest

from gateway.core.tax_routing import EU_MEMBER_STATES, TaxRoutingError, parse_tax_routes
from gateway.plugin_api.registry import load_plugins
from gateway.server.app import build_gateway
from gateway.server.cli import main
from gateway.server.settings import Settings, SettingsError

from helpers import snapshot

ROUTES = "GB=vat_gb; CH=vat_ch; NO=vat_no; *=vat"
TERRITORIES = {
    "BILLING_GATEWAY_VAT_TERRITORIES": "GB,CH,NO",
    "BILLING_GATEWAY_VAT_REGISTRATIONS": "GB,NO",  # not CH: out of scope there
}
ALL_LOADED = "(loaded tax calculators: vat, vat_ch, vat_gb, vat_no)"

QUOTE = """mutation($input: QuoteInput!) { quote(input: $input) {
  __typename
  ... on UserError { code message field }
  ... on Quote { dueNow { subtotal { amount } tax { amount } total { amount }
                          taxLines { name jurisdiction rate base { amount } amount { amount } treatment note } } }
} }"""

VAT_GB, VAT_CH, VAT_NO = "GB 980 7806 84", "CHE-107.787.577 MWST", "NO 995 525 828 MVA"


@pytest.fixture
def plugin_env() -> dict[str, str]:
    return TERRITORIES


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, tax_calculators=ROUTES)


@pytest.fixture
def quote(graphql, make_workspace):
    member = make_workspace("Routed Ltd")

    def run(**details: object) -> dict:
        variables = {"input": {"planCode": "omnichannel", "billingDetails": details}}
        return graphql(QUOTE, variables, key=member.key)["quote"]

    return run


def only_line(result: dict) -> dict:
    lines = result["dueNow"]["taxLines"]
    assert len(lines) == 1
    line = lines[0]
    # The tax is the base times the rate, rounded half up once, and is the quote's whole tax.
    expected = (Decimal(line["base"]["amount"]) * Decimal(line["rate"])).quantize(
        Decimal("0.01"), ROUND_HALF_UP
    )
    assert Decimal(line["amount"]["amount"]) == expected
    assert result["dueNow"]["tax"]["amount"] == line["amount"]["amount"]
    return {k: line[k] for k in ("name", "jurisdiction", "rate", "treatment", "note")}


# ---------------------------------------------------------------- quotes, routed by country


@pytest.mark.parametrize(
    ("country", "name", "rate"),
    [
        ("GB", "VAT 20% (GB)", "0.20"),
        ("NO", "MVA 25% (NO)", "0.25"),
        ("DE", "VAT 19% (DE)", "0.19"),  # the default: EU VAT
        ("FR", "VAT 20% (FR)", "0.20"),
    ],
)
def test_a_person_pays_the_tax_of_their_country_where_the_seller_is_registered(quote, country, name, rate):
    line = only_line(quote(customerType="PERSON", country=country))
    assert line == {
        "name": name,
        "jurisdiction": country,
        "rate": rate,
        "treatment": "STANDARD",
        "note": None,
    }


def test_where_the_seller_is_not_registered_the_line_says_so(quote):
    line = only_line(quote(customerType="PERSON", country="CH"))
    assert line == {
        "name": "Swiss VAT not charged",
        "jurisdiction": "CH",
        "rate": "0",
        "treatment": "OUT_OF_SCOPE",
        "note": "Not charged: the seller is not registered for Swiss VAT",
    }


@pytest.mark.parametrize(
    ("country", "vat_id", "name", "note"),
    [
        (
            "GB",
            VAT_GB,
            "VAT 0% (GB)",
            "HMRC (section 8, Value Added Tax Act 1994). Customer VAT number: GB980780684",
        ),
        (
            "CH",
            VAT_CH,
            "MWST 0% (CH)",
            "(acquisition tax, Art. 45 MWSTG). Customer VAT number: CHE-107.787.577 MWST",
        ),
        ("NO", "no995525828mva", "MVA 0% (NO)", "§ 11-1 (2)). Customer VAT number: NO 995 525 828 MVA"),
    ],
)
def test_a_company_with_a_valid_number_is_reverse_charged(quote, country, vat_id, name, note):
    line = only_line(quote(customerType="COMPANY", country=country, vatId=vat_id))
    assert (line["name"], line["rate"], line["treatment"]) == (name, "0", "REVERSE_CHARGE")
    assert line["note"].startswith("Reverse charge:") and line["note"].endswith(note)


def test_a_company_without_a_number_pays_like_a_person(quote):
    assert only_line(quote(customerType="COMPANY", country="GB"))["treatment"] == "STANDARD"


@pytest.mark.parametrize(
    ("country", "vat_id", "reason"),
    [
        ("GB", "GB 980 7806 85", "not a valid UK VAT number"),
        ("CH", "CHE-107.787.577", "expected e.g. CHE-107.787.577 MWST"),  # a UID without MWST
        ("CH", "CHE-107.787.578 MWST", "not a valid Swiss VAT number"),
        ("NO", "995525828", "not a valid Norwegian VAT number"),
        ("NO", VAT_GB, "not a valid Norwegian VAT number"),
    ],
)
def test_a_malformed_number_is_refused_for_its_field(quote, gateway, country, vat_id, reason):
    before = snapshot(gateway)
    for kind in ("COMPANY", "PERSON"):
        result = quote(customerType=kind, country=country, vatId=vat_id)
        assert (result["__typename"], result["code"], result["field"]) == (
            "InvalidVatId",
            "INVALID_VAT_ID",
            ["billingDetails", "vatId"],
        )
        assert reason in result["message"]
    assert snapshot(gateway) == before


def test_eu_customers_keep_eu_vat_rules(quote):
    line = only_line(quote(customerType="COMPANY", country="NL", vatId="NL004495445B01"))
    assert (line["name"], line["treatment"]) == ("VAT 0% (NL)", "REVERSE_CHARGE")


def test_the_router_is_only_there_when_a_rule_routes_countries(
    gateway, built_once, plugin_env, settings, clock
):
    assert gateway.tax.code == "router"
    one = dataclasses.replace(settings, tax_calculators=None, tax_calculator="vat")
    single = build_gateway(one, clock=clock, run_migrations=False, **built_once.parts(one, plugin_env))
    assert single.tax.code == "vat"  # one calculator for everyone: called directly


# ---------------------------------------------------------------- the rule's syntax


def test_the_rule_maps_countries_and_regions_with_a_default():
    routes = parse_tax_routes("eu=vat; gb = vat_gb ;\n ch,li=vat_ch; *=other")
    assert routes.default == "other"
    assert {c for c, code in routes.by_country.items() if code == "vat"} == EU_MEMBER_STATES
    assert routes.countries_of("vat_ch") == ("CH", "LI")
    assert routes.codes == ("other", "vat", "vat_gb", "vat_ch")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no rules"),
        ("GB", "is not PLACES=CODE"),
        ("GB=", "is not PLACES=CODE"),
        ("GB,=vat", "is not PLACES=CODE"),
        ("GB=a=b", "is not PLACES=CODE"),
        ("GB=vat gb; *=vat", "is not a calculator code"),
        ("GBR=vat; *=vat", "'GBR' is neither a two-letter country code nor a region (EEA, EU)"),
        ("GB=vat_gb", "no default: add '*=CODE'"),
        ("*=vat; *=other", "'*' is given twice"),
        ("GB=vat_gb; GB=other; *=vat", "GB is routed twice: by 'GB' to 'vat_gb' and by 'GB' to 'other'"),
        ("EU=vat; DE=other; *=vat", "DE is routed twice: by 'EU' to 'vat' and by 'DE' to 'other'"),
        ("EU=vat; EEA=other; *=vat", "is routed twice"),
    ],
)
def test_a_bad_rule_is_refused_saying_why(text, message):
    with pytest.raises(TaxRoutingError, match=re.escape(message)):
        parse_tax_routes(text or " ;\n ")
    if text:  # the same text from the environment stops start-up, naming the variable
        with pytest.raises(SettingsError, match=r"^BILLING_GATEWAY_TAX_CALCULATORS: "):
            build_gateway(Settings(tax_calculators=text), registry=_loaded(), run_migrations=False)


def _loaded(**env: str) -> object:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {**TERRITORIES, **env}.items():
            patch.setenv(name, value)
        return load_plugins()


# ---------------------------------------------------------------- start-up errors


@pytest.mark.parametrize(
    ("settings_", "message"),
    [
        (
            Settings(),
            "4 tax calculators are loaded, so the gateway cannot choose: set BILLING_GATEWAY_TAX_CALCULATOR "
            "to one of them, or BILLING_GATEWAY_TAX_CALCULATORS to a rule by customer country " + ALL_LOADED,
        ),
        (
            Settings(tax_calculator="vat", tax_calculators="*=vat"),
            "set BILLING_GATEWAY_TAX_CALCULATOR (one calculator for everyone) or "
            "BILLING_GATEWAY_TAX_CALCULATORS (a rule), not both",
        ),
        (
            Settings(tax_calculators="GB=uk_vat; *=avalara"),
            "BILLING_GATEWAY_TAX_CALCULATORS names 'avalara', 'uk_vat', which no plugin registered "
            + ALL_LOADED,
        ),
        (
            Settings(tax_calculator="avalara"),
            "BILLING_GATEWAY_TAX_CALCULATOR names 'avalara', which no plugin registered " + ALL_LOADED,
        ),
        (
            Settings(tax_calculators="XX=vat_gb; *=vat"),
            "BILLING_GATEWAY_TAX_CALCULATORS routes unknown country code(s) XX",
        ),
        (
            Settings(tax_calculators=ROUTES, seller_country="US"),
            "the tax calculator 'vat' cannot tax for seller country 'US' (BILLING_GATEWAY_SELLER_COUNTRY): "
            "seller country 'US' is not an EU member state; the tax_vat plugin only handles EU sellers "
            + ALL_LOADED,
        ),
    ],
)
def test_a_start_up_error_names_the_setting_and_what_is_loaded(settings_, message):
    with pytest.raises(SettingsError) as caught:
        build_gateway(settings_, registry=_loaded(), run_migrations=False)
    assert str(caught.value) == message


def test_each_routed_calculator_is_asked_for_its_countries_at_start_up(tmp_path):
    rates = tmp_path / "rates.csv"  # Swiss rates only from 2030: no rate today
    rates.write_text("country,rate,valid_from\nGB,0.20,2011-01-04\nCH,0.081,2030-01-01\nNO,0.25,2005-01-01\n")
    registry = _loaded(BILLING_GATEWAY_VAT_REGISTRATIONS="CH", BILLING_GATEWAY_VAT_TERRITORY_RATES=str(rates))
    with pytest.raises(SettingsError) as caught:
        build_gateway(Settings(tax_calculators=ROUTES), registry=registry, run_migrations=False)
    assert str(caught.value).startswith(
        "the tax calculator 'vat_ch' cannot tax for seller country 'DE' (BILLING_GATEWAY_SELLER_COUNTRY) "
        "and customers in CH (BILLING_GATEWAY_TAX_CALCULATORS): no VAT rate for CH on "
    )
    assert str(caught.value).endswith(ALL_LOADED)


def test_the_command_line_reports_a_bad_rule_naming_the_variable(cli_env, capsys, monkeypatch):
    monkeypatch.setenv("BILLING_GATEWAY_TAX_CALCULATORS", "GB=vat; GB=vat; *=vat")
    assert main(["migrate"]) == 2
    err = capsys.readouterr().err
    assert "cannot start: BILLING_GATEWAY_TAX_CALCULATORS: GB is routed twice" in err
    assert "(loaded tax calculators: vat)" in err


def test_a_plugin_setting_with_a_bad_value_stops_start_up_naming_it(cli_env, capsys, monkeypatch):
    monkeypatch.setenv("BILLING_GATEWAY_VAT_TERRITORIES", "GB,US")
    assert main(["migrate"]) == 2
    assert (
        "BILLING_GATEWAY_VAT_TERRITORIES: US is not a VAT territory this plugin knows"
        in capsys.readouterr().err
    )


def test_one_named_calculator_still_serves_everyone(cli_env, capsys, monkeypatch):
    monkeypatch.setenv("BILLING_GATEWAY_VAT_TERRITORIES", "GB")
    monkeypatch.setenv("BILLING_GATEWAY_TAX_CALCULATOR", "vat")
    assert main(["migrate"]) == 0
