"""The seller's identity and invoice series from BILLING_GATEWAY_* settings: read, checked at
start-up with an error naming the variable, and the demo placeholder when none is set."""

from __future__ import annotations

import pytest

from gateway.core.seller import Seller
from gateway.server.cli import main
from gateway.server.settings import Settings, SettingsError

P = "BILLING_GATEWAY_"
SELLER_ENV = {
    f"{P}SELLER_NAME": "Example Messaging GmbH",
    f"{P}SELLER_ADDRESS": "Domstraße 1\n50668 Köln",
    f"{P}SELLER_VAT_ID": "de 136 695 976",
    f"{P}SELLER_EMAIL": "billing@example.com",
}


def test_the_seller_is_read_from_the_environment():
    settings = Settings.from_env({**SELLER_ENV, f"{P}INVOICE_SERIES": "EM-INV"})
    assert settings.seller == Seller(
        name="Example Messaging GmbH",
        address=("Domstraße 1", "50668 Köln"),
        country="DE",
        vat_id="DE136695976",
        email="billing@example.com",
        invoice_series="EM-INV",
    )


def test_an_address_may_separate_its_lines_with_a_literal_backslash_n():
    settings = Settings.from_env({**SELLER_ENV, f"{P}SELLER_ADDRESS": r"Domstraße 1\n 50668 Köln "})
    assert settings.seller.address == ("Domstraße 1", "50668 Köln")


def test_without_a_seller_the_demo_identity_is_used():
    seller = Settings.from_env({}).seller
    assert seller.demo and "BILLING_GATEWAY_SELLER_NAME" in seller.name
    assert (seller.country, seller.vat_id, seller.invoice_series) == ("DE", None, "INV")


def test_a_seller_outside_the_eu_is_checked_against_its_own_country():
    settings = Settings.from_env(
        {**SELLER_ENV, f"{P}SELLER_COUNTRY": "GB", f"{P}SELLER_VAT_ID": "GB 980 7806 84"}
    )
    assert (settings.seller.country, settings.seller.vat_id) == ("GB", "GB 980 7806 84")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({f"{P}SELLER_NAME": ""}, f"{P}SELLER_VAT_ID is set but {P}SELLER_NAME is not"),
        ({f"{P}SELLER_ADDRESS": ""}, f"{P}SELLER_ADDRESS must be set with {P}SELLER_NAME"),
        (
            {f"{P}SELLER_VAT_ID": "DE136695977"},
            f"{P}SELLER_VAT_ID 'DE136695977' is not a valid VAT number for DE",
        ),
        (
            {f"{P}SELLER_VAT_ID": "NL004495445B01"},
            f"{P}SELLER_VAT_ID 'NL004495445B01' is not a VAT number of {P}SELLER_COUNTRY DE",
        ),
        ({f"{P}SELLER_EMAIL": "billing at example"}, f"{P}SELLER_EMAIL must be an email address"),
        ({f"{P}SELLER_NAME": "Bad\x07Name"}, f"{P}SELLER_NAME must be printable text"),
        ({f"{P}INVOICE_SERIES": "inv"}, f"{P}INVOICE_SERIES must be upper-case letters and digits"),
        ({f"{P}INVOICE_SERIES": "INV--2"}, f"{P}INVOICE_SERIES must be upper-case letters and digits"),
        ({f"{P}INVOICE_SERIES": "A" * 17}, f"{P}INVOICE_SERIES must be upper-case letters and digits"),
    ],
)
def test_a_bad_seller_setting_names_its_variable(changes, message):
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({**SELLER_ENV, **changes})
    assert message in str(refused.value)


def test_a_bad_seller_setting_stops_start_up(cli_env, capsys, monkeypatch):
    monkeypatch.setenv(f"{P}SELLER_NAME", "Example Messaging GmbH")
    assert main(["migrate"]) == 2
    assert f"{P}SELLER_ADDRESS must be set with {P}SELLER_NAME" in capsys.readouterr().err
