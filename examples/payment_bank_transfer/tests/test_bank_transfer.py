"""The bank-transfer method through the gateway's plugin API: its hook, as the gateway loads
it, and each member of the payment protocol."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from importlib.metadata import entry_points
from typing import Any

import pytest
from standardwebhooks import Webhook

import billing_gateway_payment_bank_transfer as bank
from gateway.plugin_api import (
    ENTRY_POINT_GROUP,
    Capability,
    ChargeRequest,
    FailureCode,
    InvalidNotification,
    Money,
    NotifiedPaymentMethod,
    PaymentMethod,
    PaymentStatus,
)
from gateway.plugin_api.registry import PluginError, load_plugins

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OTHER_SECRET = "whsec_c2VjcmV0LW9mLXNvbWVvbmUtZWxzZQ=="
REQUESTED = datetime(2026, 11, 10, 9, 30, tzinfo=UTC)
KEY = "checkout:ws_1:order-42:20261110T093000000000Z"


class NoLedger:
    """A bank transfer never touches the prepaid balance: any call is a bug."""

    currency = "EUR"

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the bank transfer used the ledger ({name})")


LEDGER: Any = NoLedger()


def request(key: str = KEY, amount: str = "46.41") -> ChargeRequest:
    return ChargeRequest(
        payment_id="pay_1",
        workspace_id="ws_1",
        amount=Money(amount, "EUR"),
        description="Omnichannel: upgrade",
        idempotency_key=key,
        requested_at=REQUESTED,
    )


def method(**env: str) -> bank.BankTransferMethod:
    return bank.BankTransferMethod(bank.Settings.from_env(env))


def signed(
    body: dict[str, Any] | bytes, secret: str = SECRET, sent: datetime | None = None
) -> dict[str, Any]:
    """The headers and body of a notification as the bank would POST it."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    sent = sent or datetime.now(UTC)
    return {
        "headers": {
            "webhook-id": "msg_1",
            "webhook-timestamp": str(int(sent.timestamp())),
            "webhook-signature": Webhook(secret).sign("msg_1", sent, data),
        },
        "body": data,
    }


# ------------------------------------------------------------------ loading


def test_the_gateway_loads_it_through_its_entry_point(monkeypatch):
    monkeypatch.setenv(bank.ENV_NOTIFICATION_SECRET, SECRET)
    # Only this plugin, found through its own entry point: whatever else is installed beside it
    # (another "card" method, say) is not this test's business.
    (entry_point,) = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == "bank_transfer"]
    registry = load_plugins(plugins=[(entry_point.name, entry_point.load())])
    loaded = registry.payment_methods["bank_transfer"]
    assert isinstance(loaded, bank.BankTransferMethod)
    assert isinstance(loaded, PaymentMethod) and isinstance(loaded, NotifiedPaymentMethod)
    assert loaded.label == "Bank transfer"
    assert loaded.capabilities == frozenset({Capability.SETTLE_LATER})
    (info,) = [p for p in registry.plugins if p.name == "bank_transfer"]
    assert info.distribution == "billing-gateway-payment-bank-transfer"
    assert info.provides == ("payment_method:bank_transfer",)


def test_it_starts_with_demo_defaults_and_no_secret():
    settings = bank.Settings.from_env({})
    assert settings.iban == bank.DEMO_IBAN and settings.bic == bank.DEMO_BIC
    assert "demo" in settings.account_holder
    assert settings.expiry_days == 7
    assert settings.notification_secret is None


def test_it_reads_its_configuration():
    settings = bank.Settings.from_env(
        {
            "BANK_TRANSFER_ACCOUNT_HOLDER": "Acme Messaging SAS",
            "BANK_TRANSFER_IBAN": "fr14 2004 1010 0505 0001 3m02 606",
            "BANK_TRANSFER_BIC": "psstfrppxxx",
            "BANK_TRANSFER_EXPIRY_DAYS": "10",
            "BANK_TRANSFER_NOTIFICATION_SECRET": SECRET,
        }
    )
    assert settings == bank.Settings(
        "Acme Messaging SAS", "FR1420041010050500013M02606", "PSSTFRPPXXX", 10, SECRET
    )


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("BANK_TRANSFER_IBAN", "DE89370400440532013001", "not a valid IBAN"),
        ("BANK_TRANSFER_IBAN", "", "not a valid IBAN"),
        ("BANK_TRANSFER_BIC", "COBA", "not a valid BIC"),
        ("BANK_TRANSFER_ACCOUNT_HOLDER", "  ", "is empty"),
        ("BANK_TRANSFER_EXPIRY_DAYS", "0", "whole number of days"),
        ("BANK_TRANSFER_EXPIRY_DAYS", "1.5", "whole number of days"),
        ("BANK_TRANSFER_EXPIRY_DAYS", "366", "whole number of days"),
        ("BANK_TRANSFER_EXPIRY_DAYS", "²", "whole number of days"),
        ("BANK_TRANSFER_NOTIFICATION_SECRET", "hunter2", "Standard Webhooks secret"),
        ("BANK_TRANSFER_NOTIFICATION_SECRET", "whsec_", "Standard Webhooks secret"),
    ],
)
def test_a_bad_setting_stops_start_up_naming_the_variable(monkeypatch, variable, value, says):
    with pytest.raises(bank.ConfigurationError, match=says) as refused:
        bank.Settings.from_env({variable: value})
    assert str(refused.value).startswith(variable)
    # As the gateway reports it at start-up: the plugin and the variable.
    monkeypatch.setenv(variable, value)
    with pytest.raises(PluginError, match=f"'bank_transfer'.*{variable}"):
        load_plugins(plugins=[("bank_transfer", bank)])


# ------------------------------------------------------------------ references


def test_the_reference_is_derived_from_the_key():
    reference = bank.reference_for(KEY)
    assert reference == bank.reference_for(KEY)  # in every process: nothing is kept
    assert reference != bank.reference_for(KEY + "x")
    prefix, first, second, check = reference.split("-")
    assert (prefix, len(first), len(second), len(check)) == ("BG", 4, 4, 1)
    assert set(first + second + check) <= set(bank.ALPHABET)  # no I, L, O or U


def test_references_are_read_as_people_type_them():
    reference = bank.reference_for(KEY)
    assert bank.parse_reference(reference) == reference
    assert bank.parse_reference(" " + reference.lower().replace("-", " ") + " ") == reference
    assert (
        bank.parse_reference("BG-00O0-0000-0") == bank.parse_reference("BG-0000-0000-0") == "BG-0000-0000-0"
    )


def test_the_check_character_catches_typos():
    reference = bank.reference_for(KEY)
    body = reference.replace("-", "")[2:]
    for position in range(len(body)):
        for replacement in bank.ALPHABET:
            if replacement != body[position]:
                typo = body[:position] + replacement + body[position + 1 :]
                assert bank.parse_reference("BG" + typo) is None, typo
    for position in range(len(body) - 1):
        swapped = body[:position] + body[position + 1] + body[position] + body[position + 2 :]
        if swapped != body:
            assert bank.parse_reference("BG" + swapped) is None, swapped
    assert bank.parse_reference("XX" + body) is None
    assert bank.parse_reference("BG" + body[:-1]) is None


# ------------------------------------------------------------------ the payment protocol


def test_charge_answers_pending_with_instructions():
    result = method().charge(request(), LEDGER)
    reference = bank.reference_for(KEY)
    assert result.status is PaymentStatus.PENDING
    assert result.reference == reference
    assert result.instructions == {
        "account_holder": bank.DEMO_ACCOUNT_HOLDER,
        "iban": "DE89 3704 0044 0532 0130 00",
        "bic": "COBADEFFXXX",
        "amount": "46.41",
        "currency": "EUR",
        "reference": reference,
    }
    assert result.expires_at == REQUESTED + timedelta(days=7)
    assert result.amount is None  # nothing was paid yet


def test_the_secret_is_not_shown():
    configured = method(BANK_TRANSFER_NOTIFICATION_SECRET=SECRET)
    assert SECRET not in repr(configured.settings) and SECRET not in repr(configured)


def test_the_expiry_is_configurable():
    result = method(BANK_TRANSFER_EXPIRY_DAYS="3").charge(request(), LEDGER)
    assert result.expires_at == REQUESTED + timedelta(days=3)


def test_the_amount_is_exact():
    result = method().charge(request(amount="1234567.10"), LEDGER)
    assert result.instructions is not None and result.instructions["amount"] == "1234567.10"


def test_status_answers_the_same_instructions_whoever_asks():
    charged = method().charge(request(), LEDGER)
    # Another process, which never saw the charge, asks about the same payment.
    asked = method().status(request(), None, LEDGER)
    assert asked == charged
    assert method().status(request(), charged.reference, LEDGER) == charged


def test_confirm_and_refund_are_not_offered():
    assert method().confirm(request(), "BG-0000-0000-0", "ok").status is PaymentStatus.FAILED
    refund = method().refund(request(), "BG-0000-0000-0", Money("1.00", "EUR"), "refund:1", LEDGER)
    assert refund.status is PaymentStatus.FAILED
    assert Capability.REFUND not in method().capabilities
    assert Capability.OFF_SESSION not in method().capabilities


def test_cancel_gives_the_payment_up():
    result = method().cancel(request(), bank.reference_for(KEY), LEDGER)
    assert result.status is PaymentStatus.FAILED
    assert result.failure is FailureCode.CANCELED


# ------------------------------------------------------------------ notifications


def notice(amount: str = "46.41", reference: str | None = None, currency: str = "EUR") -> dict[str, Any]:
    return {"reference": reference or bank.reference_for(KEY), "amount": amount, "currency": currency}


def test_a_signed_notification_says_the_money_arrived():
    reference, result = method(BANK_TRANSFER_NOTIFICATION_SECRET=SECRET).parse_notification(
        **signed(notice())
    )
    assert reference == bank.reference_for(KEY)
    assert result.status is PaymentStatus.SUCCEEDED
    assert result.reference == reference
    assert result.amount == Money("46.41", "EUR")
    assert isinstance(result.amount.amount, Decimal)


def test_the_notification_reports_the_amount_received_as_it_is():
    # The gateway compares it with the payment's own amount; the method only reports it.
    _, result = method(BANK_TRANSFER_NOTIFICATION_SECRET=SECRET).parse_notification(
        **signed(notice(amount="46.4"))
    )
    assert result.amount == Money("46.40", "EUR")
    _, less = method(BANK_TRANSFER_NOTIFICATION_SECRET=SECRET).parse_notification(
        **signed(notice(amount="40.00"))
    )
    assert less.amount == Money("40.00", "EUR")


def test_a_reference_as_the_customer_typed_it_is_read():
    typed = bank.reference_for(KEY).lower().replace("-", " ")
    reference, _ = method(BANK_TRANSFER_NOTIFICATION_SECRET=SECRET).parse_notification(
        **signed(notice(reference=typed))
    )
    assert reference == bank.reference_for(KEY)


def test_a_reference_that_is_not_ours_is_passed_on_for_the_gateway_to_refuse():
    reference, _ = method(BANK_TRANSFER_NOTIFICATION_SECRET=SECRET).parse_notification(
        **signed(notice(reference=" invoice 2026-17 "))
    )
    assert reference == "invoice 2026-17"


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda n: {**n, "body": n["body"].replace(b"46.41", b"4641.00")}, id="body changed"),
        pytest.param(lambda n: signed(json.loads(n["body"]), secret=OTHER_SECRET), id="other secret"),
        pytest.param(
            lambda n: signed(json.loads(n["body"]), sent=datetime.now(UTC) - timedelta(hours=1)), id="stale"
        ),
        pytest.param(lambda n: {**n, "headers": {}}, id="unsigned"),
        pytest.param(
            lambda n: {**n, "headers": {**n["headers"], "webhook-signature": "v1,AAAA"}}, id="bad signature"
        ),
    ],
)
def test_anything_not_signed_by_the_bank_is_refused(tamper):
    with pytest.raises(InvalidNotification):
        method(BANK_TRANSFER_NOTIFICATION_SECRET=SECRET).parse_notification(**tamper(signed(notice())))


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe",
        b"[]",
        json.dumps({"reference": "BG-0000-0000-0", "amount": 46.41, "currency": "EUR"}).encode(),  # a float
        json.dumps({"reference": "BG-0000-0000-0", "amount": "46.41"}).encode(),
        json.dumps({"reference": "", "amount": "46.41", "currency": "EUR"}).encode(),
        json.dumps({"reference": "BG-0000-0000-0", "amount": "lots", "currency": "EUR"}).encode(),
        json.dumps({"reference": "BG-0000-0000-0", "amount": "NaN", "currency": "EUR"}).encode(),
        json.dumps({"reference": "BG-0000-0000-0", "amount": "46.41", "currency": "XXY"}).encode(),
    ],
)
def test_a_signed_but_malformed_notification_is_refused(body):
    with pytest.raises(InvalidNotification):
        method(BANK_TRANSFER_NOTIFICATION_SECRET=SECRET).parse_notification(**signed(body))


def test_without_a_secret_notifications_are_refused():
    with pytest.raises(InvalidNotification, match="BANK_TRANSFER_NOTIFICATION_SECRET"):
        method().parse_notification(**signed(notice()))
