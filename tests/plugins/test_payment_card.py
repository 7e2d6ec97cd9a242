"""The payment_card plugin and its sandbox processor, exercised through the plugin's hook."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import pytest

import billing_gateway_payment_card as plugin
from gateway.core.money import Money
from gateway.plugin_api.payments import (
    Capability,
    CardDetails,
    CardError,
    CardErrorCode,
    ChargeRequest,
    FailureCode,
    PaymentMethod,
    PaymentResult,
    PaymentStatus,
    StoredCard,
)
from gateway.plugin_api.payments import CardMethod as CardMethodProtocol

from helpers import eur

TODAY = date(2026, 3, 15)
CVC, AMEX_CVC = "987", "9876"

SUCCEEDED, FAILED, ACTION = PaymentStatus.SUCCEEDED, PaymentStatus.FAILED, PaymentStatus.REQUIRES_ACTION

# number -> (brand, status of a charge, failure code)
TEST_CARDS = {
    "4242424242424242": ("visa", SUCCEEDED, None),
    "5555555555554444": ("mastercard", SUCCEEDED, None),
    "378282246310005": ("amex", SUCCEEDED, None),
    "4000000000000002": ("visa", FAILED, FailureCode.CARD_DECLINED),
    "4000000000009995": ("visa", FAILED, FailureCode.INSUFFICIENT_FUNDS),
    "4000000000000069": ("visa", FAILED, FailureCode.EXPIRED_CARD),
    "4000000000000127": ("visa", FAILED, FailureCode.INCORRECT_CVC),
    "4000000000000119": ("visa", FAILED, FailureCode.PROCESSING_ERROR),
    "4000002760003184": ("visa", ACTION, None),
    "4000000000000341": ("visa", FAILED, FailureCode.CARD_DECLINED),
    "4111111111111111": ("visa", FAILED, FailureCode.CARD_DECLINED),  # valid, but not a test card
}
THREE_DS = "4000002760003184"


class UnusableLedger:
    """Card payments must not touch the balance ledger: any use fails the test."""

    currency = "EUR"

    def balance(self) -> Money:
        raise AssertionError("a card payment read the balance ledger")

    def debit(self, amount: Money, key: str, description: str) -> str | None:
        raise AssertionError("a card payment debited the balance ledger")

    def credit(self, amount: Money, key: str, description: str) -> str:
        raise AssertionError("a card payment credited the balance ledger")

    def entry(self, key: str) -> str | None:
        raise AssertionError("a card payment read the balance ledger")


LEDGER = UnusableLedger()


def registered_method() -> CardMethodProtocol:
    registered: list[PaymentMethod] = []
    plugin.register_payment_methods(register=registered.append)
    assert len(registered) == 1
    method = registered[0]
    assert isinstance(method, CardMethodProtocol)
    return method


@pytest.fixture
def method() -> CardMethodProtocol:
    return registered_method()


def details(number: str, exp_month: int = 12, exp_year: int = 2030, cvc: str | None = None) -> CardDetails:
    if cvc is None:
        cvc = AMEX_CVC if number.replace(" ", "").startswith(("34", "37")) else CVC
    return CardDetails(
        number=number, exp_month=exp_month, exp_year=exp_year, cvc=cvc, holder_name="Ada Lovelace"
    )


def charge_request(
    card: StoredCard | None, key: str = "checkout-1", amount: Money | None = None, off_session: bool = False
) -> ChargeRequest:
    return ChargeRequest(
        payment_id="pay_1",
        workspace_id="ws_1",
        amount=amount if amount is not None else eur("29.00"),
        description="Email plan",
        idempotency_key=key,
        requested_at=datetime(2026, 3, 15, 9, 30, tzinfo=UTC),
        off_session=off_session,
        card=card,
    )


REQUEST = charge_request(None)  # what confirm and refund are told of the payment (unused by the sandbox)


def save(method: CardMethodProtocol, number: str, **kwargs: object) -> StoredCard:
    return method.tokenize(details(number, **kwargs), TODAY)  # type: ignore[arg-type]


def assert_no_secret(text: str, number: str, cvc: str | None = CVC) -> None:
    digits = number.replace(" ", "").replace("-", "").strip()
    for secret in (number.strip(), digits, digits[:-4], cvc):  # nothing beyond the last four digits
        if secret:
            assert secret not in text


# -- the hook ---------------------------------------------------------------------


def test_hook_registers_the_card_method_around_the_sandbox(method: CardMethodProtocol) -> None:
    assert isinstance(method, PaymentMethod)
    assert (method.code, method.label) == ("card", "Credit card")
    assert method.capabilities == {
        Capability.PAY_NOW,
        Capability.CUSTOMER_ACTION,
        Capability.OFF_SESSION,
        Capability.REFUND,
        Capability.CARDS,
    }
    assert isinstance(method, plugin.CardPaymentMethod)
    assert isinstance(method.processor, plugin.SandboxProcessor)
    assert isinstance(method.processor, plugin.CardProcessor)


def test_the_method_refuses_an_object_that_is_not_a_processor(method: CardMethodProtocol) -> None:
    with pytest.raises(TypeError, match="CardProcessor"):
        type(method)(object())  # type: ignore[call-arg]


# -- test cards -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "brand", "status", "failure"), [(n, *outcome) for n, outcome in TEST_CARDS.items()]
)
def test_every_test_card_charges_as_documented(
    method: CardMethodProtocol, number: str, brand: str, status: PaymentStatus, failure: FailureCode | None
) -> None:
    stored = save(method, number)
    assert (stored.brand, stored.last4, stored.exp_month, stored.exp_year) == (brand, number[-4:], 12, 2030)
    result = method.charge(charge_request(stored), LEDGER)
    assert result.status is status
    assert result.failure is failure
    assert result.reference
    if status is FAILED:
        assert result.message
    if status is ACTION:
        assert result.next_action and result.reference in result.next_action
    else:
        assert result.next_action is None


def test_a_real_card_is_declined_with_a_clear_message(method: CardMethodProtocol) -> None:
    result = method.charge(charge_request(save(method, "4111 1111 1111 1111")), LEDGER)
    assert result.failure is FailureCode.CARD_DECLINED
    assert result.message is not None and "only test cards" in result.message


def test_the_card_that_fails_later_saves_fine_and_every_charge_declines(method: CardMethodProtocol) -> None:
    stored = save(method, "4000 0000 0000 0341")
    for key in ("checkout-1", "renewal-2026-04", "renewal-2026-05"):
        result = method.charge(charge_request(stored, key), LEDGER)
        assert (result.status, result.failure) == (FAILED, FailureCode.CARD_DECLINED)


@pytest.mark.parametrize(
    ("number", "brand"),
    [
        ("4000 0566 5566 5556", "visa"),
        ("5200 8282 8282 8210", "mastercard"),
        ("2223 0031 2200 3222", "mastercard"),
        ("3714 496353 98431", "amex"),
        ("6011 1111 1111 1117", "discover"),
        ("3056 9300 0902 0004", "diners"),
        ("3566 0020 2036 0505", "jcb"),
        ("6200 0000 0000 0005", "unionpay"),
    ],
)
def test_more_succeeding_test_cards_and_their_brands(
    method: CardMethodProtocol, number: str, brand: str
) -> None:
    stored = save(method, number)
    assert stored.brand == brand
    assert method.charge(charge_request(stored), LEDGER).status is SUCCEEDED


# -- 3-D Secure -------------------------------------------------------------------


def test_3ds_card_succeeds_once_authenticated(method: CardMethodProtocol) -> None:
    started = method.charge(charge_request(save(method, THREE_DS)), LEDGER)
    assert started.status is ACTION and started.reference and started.next_action
    assert started.next_action == f"sandbox-3ds:{started.reference}"
    confirmed = method.confirm(REQUEST, started.reference, "authenticated")
    assert confirmed == PaymentResult(SUCCEEDED, reference=started.reference)
    assert method.confirm(REQUEST, started.reference, "authenticated") == confirmed
    # Stateless: another gateway process (a fresh plugin instance) gives the same answer.
    assert registered_method().confirm(REQUEST, started.reference, "authenticated") == confirmed


@pytest.mark.parametrize("response", [None, "", "failed", "Authenticated", "authenticated "])
def test_3ds_card_fails_without_authentication(method: CardMethodProtocol, response: str | None) -> None:
    started = method.charge(charge_request(save(method, THREE_DS)), LEDGER)
    assert started.reference
    failed = method.confirm(REQUEST, started.reference, response)
    assert (failed.status, failed.failure) == (FAILED, FailureCode.AUTHENTICATION_FAILED)
    assert failed.reference == started.reference
    assert method.confirm(REQUEST, started.reference, response) == failed


def test_confirming_a_payment_that_needed_no_action_reports_it_unchanged(method: CardMethodProtocol) -> None:
    charged = method.charge(charge_request(save(method, "4242424242424242")), LEDGER)
    declined = method.charge(charge_request(save(method, "4000000000000002")), LEDGER)
    assert charged.reference and declined.reference
    assert method.confirm(REQUEST, charged.reference, None) == charged
    assert method.confirm(REQUEST, declined.reference, "authenticated") == declined


@pytest.mark.parametrize("reference", ["", "ch_123", "ch_sandbox_3ds_required_" + "0" * 32, "sandbox-3ds:x"])
def test_confirming_an_unknown_reference_fails(method: CardMethodProtocol, reference: str) -> None:
    result = method.confirm(REQUEST, reference, "authenticated")
    assert (result.status, result.failure) == (FAILED, FailureCode.PROCESSING_ERROR)


def test_3ds_card_fails_off_session_without_asking_for_an_action(method: CardMethodProtocol) -> None:
    stored = save(method, THREE_DS)
    result = method.charge(charge_request(stored, "renewal-1", off_session=True), LEDGER)
    assert (result.status, result.failure) == (FAILED, FailureCode.AUTHENTICATION_REQUIRED)
    assert result.next_action is None and result.reference and result.message
    # The same card on-session asks for the action, under the same key's reference.
    assert method.charge(charge_request(stored, "renewal-1"), LEDGER).status is ACTION


@pytest.mark.parametrize("number", ["4242424242424242", "4000000000000002"])
def test_off_session_charges_of_other_cards_answer_as_on_session(
    method: CardMethodProtocol, number: str
) -> None:
    stored = save(method, number)
    away = method.charge(charge_request(stored, off_session=True), LEDGER)
    assert away == method.charge(charge_request(stored), LEDGER)


# -- status and cancel ----------------------------------------------------------------------


@pytest.mark.parametrize("number", ["4242424242424242", "4000000000009995", THREE_DS])
def test_status_answers_what_the_charge_answered(method: CardMethodProtocol, number: str) -> None:
    stored = save(method, number)
    charged = method.charge(charge_request(stored, "key-S"), LEDGER)
    assert method.status(charge_request(stored, "key-S"), charged.reference, LEDGER).status is charged.status
    # After a crash the reference is unknown. The sandbox keeps no record of its charges (and
    # takes no money), so it reports none: the gateway then records the payment as failed
    # rather than applying an order nobody paid for.
    found = method.status(charge_request(stored, "key-S"), None, LEDGER)
    assert (found.status, found.failure) == (FAILED, FailureCode.PROCESSING_ERROR)


def test_status_without_a_card_fails(method: CardMethodProtocol) -> None:
    result = method.status(charge_request(None), None, LEDGER)
    assert (result.status, result.failure) == (FAILED, FailureCode.PROCESSING_ERROR)


def test_cancel_of_a_3ds_payment_fails_it_as_canceled(method: CardMethodProtocol) -> None:
    stored = save(method, THREE_DS)
    started = method.charge(charge_request(stored), LEDGER)
    assert started.reference
    canceled = method.cancel(charge_request(stored), started.reference, LEDGER)
    assert (canceled.status, canceled.failure, canceled.reference) == (
        FAILED,
        FailureCode.CANCELED,
        started.reference,
    )
    assert method.cancel(charge_request(stored), started.reference, LEDGER) == canceled


@pytest.mark.parametrize("number", ["4242424242424242", "4000000000000002"])
def test_cancel_of_a_settled_payment_reports_it_unchanged(method: CardMethodProtocol, number: str) -> None:
    stored = save(method, number)
    charged = method.charge(charge_request(stored), LEDGER)
    assert method.cancel(charge_request(stored), charged.reference, LEDGER) == charged
    # Without a reference (the charge never answered), cancel asks by key.
    assert method.cancel(charge_request(stored), None, LEDGER) == method.status(
        charge_request(stored), None, LEDGER
    )


def test_cancel_of_an_unknown_reference_fails(method: CardMethodProtocol) -> None:
    result = method.cancel(REQUEST, "ch_unknown", LEDGER)
    assert (result.status, result.failure) == (FAILED, FailureCode.PROCESSING_ERROR)


# -- idempotency and statelessness ------------------------------------------------------


@pytest.mark.parametrize("number", ["4242424242424242", "4000000000009995", THREE_DS])
def test_charge_is_idempotent_per_key(method: CardMethodProtocol, number: str) -> None:
    stored = save(method, number)
    first = method.charge(charge_request(stored, "key-A"), LEDGER)
    assert method.charge(charge_request(stored, "key-A"), LEDGER) == first
    # Another process, sharing nothing: same key, same reference and result.
    assert registered_method().charge(charge_request(stored, "key-A"), LEDGER) == first
    other = method.charge(charge_request(stored, "key-B"), LEDGER)
    assert other.status is first.status
    assert other.reference != first.reference


def test_tokens_are_unique_but_fingerprints_identify_the_card(method: CardMethodProtocol) -> None:
    first, second = save(method, "4242 4242 4242 4242"), save(method, "4242-4242-4242-4242", cvc="123")
    other = save(method, "5555555555554444")
    assert first.token != second.token
    assert first.fingerprint == second.fingerprint != other.fingerprint
    assert re.fullmatch(r"[0-9a-f]{32}", first.fingerprint)
    assert registered_method().tokenize(details("4242424242424242"), TODAY).fingerprint == first.fingerprint


@pytest.mark.parametrize("token", ["", "tok_123", "tok_sandbox_succeeds_" + "0" * 32, "4242424242424242"])
def test_a_token_the_sandbox_never_issued_is_refused(method: CardMethodProtocol, token: str) -> None:
    card = StoredCard(
        token=token, brand="visa", last4="4242", exp_month=12, exp_year=2030, fingerprint="0" * 32
    )
    result = method.charge(charge_request(card), LEDGER)
    assert (result.status, result.failure) == (FAILED, FailureCode.PROCESSING_ERROR)


def test_a_tampered_token_cannot_turn_a_decline_into_a_success(method: CardMethodProtocol) -> None:
    stored = save(method, "4000000000000002")
    assert stored.token.startswith("tok_sandbox_declined_")
    forged = StoredCard(
        stored.token.replace("_declined_", "_succeeds_"),
        stored.brand,
        stored.last4,
        stored.exp_month,
        stored.exp_year,
        stored.fingerprint,
    )
    result = method.charge(charge_request(forged), LEDGER)
    assert (result.status, result.failure) == (FAILED, FailureCode.PROCESSING_ERROR)


def test_a_charge_without_a_card_fails(method: CardMethodProtocol) -> None:
    result = method.charge(charge_request(None), LEDGER)
    assert (result.status, result.failure) == (FAILED, FailureCode.PROCESSING_ERROR)


@pytest.mark.parametrize(
    "amount", [Money("0", "EUR"), Money("-5.00", "EUR"), Money("10.005", "EUR"), Money("1.5", "JPY")]
)
def test_an_amount_that_is_not_positive_and_rounded_fails_without_raising(
    method: CardMethodProtocol, amount: Money
) -> None:
    result = method.charge(charge_request(save(method, "4242424242424242"), amount=amount), LEDGER)
    assert (result.status, result.failure) == (FAILED, FailureCode.PROCESSING_ERROR)


def test_an_empty_idempotency_key_is_refused(method: CardMethodProtocol) -> None:
    result = method.charge(charge_request(save(method, "4242424242424242"), key=""), LEDGER)
    assert (result.status, result.failure) == (FAILED, FailureCode.PROCESSING_ERROR)


# -- refunds ----------------------------------------------------------------------


def test_refund_of_a_succeeded_charge(method: CardMethodProtocol) -> None:
    charged = method.charge(charge_request(save(method, "4242424242424242")), LEDGER)
    assert charged.reference
    refund = method.refund(REQUEST, charged.reference, eur("10.00"), "refund-1", LEDGER)
    assert refund.status is SUCCEEDED and refund.failure is None
    assert refund.reference and refund.reference.startswith("re_") and refund.reference != charged.reference
    # Idempotent per key, in any process; another key is another refund.
    assert method.refund(REQUEST, charged.reference, eur("10.00"), "refund-1", LEDGER) == refund
    assert registered_method().refund(REQUEST, charged.reference, eur("10.00"), "refund-1", LEDGER) == refund
    other = method.refund(REQUEST, charged.reference, eur("10.00"), "refund-2", LEDGER)
    assert other.status is SUCCEEDED and other.reference not in {refund.reference, charged.reference}


def test_refund_of_an_authenticated_3ds_charge(method: CardMethodProtocol) -> None:
    started = method.charge(charge_request(save(method, THREE_DS)), LEDGER)
    assert (
        started.reference and method.confirm(REQUEST, started.reference, "authenticated").status is SUCCEEDED
    )
    assert method.refund(REQUEST, started.reference, eur("29.00"), "refund-1", LEDGER).status is SUCCEEDED


@pytest.mark.parametrize("number", ["4000000000000002", "4000000000009995", "4000000000000341"])
def test_refund_of_a_declined_charge_fails(method: CardMethodProtocol, number: str) -> None:
    declined = method.charge(charge_request(save(method, number)), LEDGER)
    assert declined.reference
    result = method.refund(REQUEST, declined.reference, eur("1.00"), "refund-1", LEDGER)
    assert (result.status, result.failure) == (FAILED, FailureCode.PROCESSING_ERROR)


@pytest.mark.parametrize(
    ("reference", "amount"),
    [("ch_unknown", eur("1.00")), (None, eur("0")), (None, eur("-1.00")), (None, eur("0.001"))],
)
def test_refund_of_an_unknown_charge_or_a_bad_amount_fails(
    method: CardMethodProtocol, reference: str | None, amount: Money
) -> None:
    if reference is None:
        reference = method.charge(charge_request(save(method, "4242424242424242")), LEDGER).reference
    assert reference
    result = method.refund(REQUEST, reference, amount, "refund-1", LEDGER)
    assert (result.status, result.failure) == (FAILED, FailureCode.PROCESSING_ERROR)


# -- validation before tokenization ---------------------------------------------------------

INVALID = [
    # id, card, code, field
    ("bad-luhn", details("4242 4242 4242 4241"), CardErrorCode.INVALID_NUMBER, "number"),
    ("letters", details("4242 4242 abcd 4242"), CardErrorCode.INVALID_NUMBER, "number"),
    ("other-separators", details("4242.4242.4242.4242"), CardErrorCode.INVALID_NUMBER, "number"),
    ("non-ascii-digits", details("４２４２４２４２４２４２４２４２"), CardErrorCode.INVALID_NUMBER, "number"),
    ("empty", details(""), CardErrorCode.INVALID_NUMBER, "number"),
    ("too-short", details("4242 4242 420"), CardErrorCode.INVALID_NUMBER, "number"),  # 11 digits, Luhn-valid
    # 20 digits, Luhn-valid
    ("too-long", details("4242 4242 4242 4242 4242"), CardErrorCode.INVALID_NUMBER, "number"),
    ("month-13", details("4242424242424242", exp_month=13), CardErrorCode.INVALID_EXPIRY, "exp_month"),
    ("month-0", details("4242424242424242", exp_month=0), CardErrorCode.INVALID_EXPIRY, "exp_month"),
    ("year-1999", details("4242424242424242", exp_year=1999), CardErrorCode.INVALID_EXPIRY, "exp_year"),
    ("year-3-digits", details("4242424242424242", exp_year=203), CardErrorCode.INVALID_EXPIRY, "exp_year"),
    ("year-far-ahead", details("4242424242424242", exp_year=2047), CardErrorCode.INVALID_EXPIRY, "exp_year"),
    ("year-negative", details("4242424242424242", exp_year=-1), CardErrorCode.INVALID_EXPIRY, "exp_year"),
    (
        "expired-last-month",
        details("4242424242424242", exp_month=2, exp_year=2026),
        CardErrorCode.EXPIRED_CARD,
        "exp_month",
    ),
    (
        "expired-last-year",
        details("4242424242424242", exp_month=12, exp_year=2025),
        CardErrorCode.EXPIRED_CARD,
        "exp_year",
    ),
    (
        "expired-2-digit-year",
        details("4242424242424242", exp_month=12, exp_year=25),
        CardErrorCode.EXPIRED_CARD,
        "exp_year",
    ),
    ("cvc-2-digits", details("4242424242424242", cvc="98"), CardErrorCode.INVALID_CVC, "cvc"),
    ("cvc-4-digits-visa", details("4242424242424242", cvc="9876"), CardErrorCode.INVALID_CVC, "cvc"),
    ("cvc-3-digits-amex", details("378282246310005", cvc="987"), CardErrorCode.INVALID_CVC, "cvc"),
    ("cvc-5-digits-amex", details("378282246310005", cvc="98765"), CardErrorCode.INVALID_CVC, "cvc"),
    ("cvc-letters", details("4242424242424242", cvc="9a7"), CardErrorCode.INVALID_CVC, "cvc"),
    ("cvc-empty", details("4242424242424242", cvc=""), CardErrorCode.INVALID_CVC, "cvc"),
]


@pytest.mark.parametrize(
    ("card", "code", "field"), [row[1:] for row in INVALID], ids=[row[0] for row in INVALID]
)
def test_tokenize_rejects_a_bad_card_with_code_and_field(
    method: CardMethodProtocol, card: CardDetails, code: CardErrorCode, field: str
) -> None:
    with pytest.raises(CardError) as caught:
        method.tokenize(card, TODAY)
    error = caught.value
    assert (error.code, error.field) == (code, field)
    assert error.message and str(error) == error.message
    # Never the number or the CVC, in any rendering of the error.
    for text in (error.message, str(error), repr(error), repr(error.args)):
        assert_no_secret(text, card.number, card.cvc or None)


@pytest.mark.parametrize(
    ("card", "exp_year"),
    [
        (details("4242424242424242", exp_month=3, exp_year=2026), 2026),  # valid until the end of this month
        (details("4242424242424242", exp_month=3, exp_year=26), 2026),
        (details("4242424242424242", exp_month=1, exp_year=30), 2030),  # two-digit year means 20YY
        (details("4242424242424242", exp_month=12, exp_year=2046), 2046),
        (details("4242-4242-4242-4242"), 2030),
        (details(" 4242 4242 4242 4242 "), 2030),
        (details("3782 822463 10005", cvc="9876"), 2030),
        (details("4242424242424242", cvc=" 987 "), 2030),
        (details("4242 4242 4242"), 2030),  # 12 digits, the shortest accepted
        (details("4242 4242 4242 4242 428"), 2030),  # 19 digits, the longest accepted
    ],
)
def test_tokenize_accepts_and_normalises_a_good_card(
    method: CardMethodProtocol, card: CardDetails, exp_year: int
) -> None:
    stored = method.tokenize(card, TODAY)
    assert stored.exp_year == exp_year
    assert stored.exp_month == card.exp_month
    assert stored.last4 == card.number.replace(" ", "").replace("-", "")[-4:]


def test_an_expired_card_is_valid_until_the_last_day_of_its_month(method: CardMethodProtocol) -> None:
    card = details("4242424242424242", exp_month=2, exp_year=2028)
    assert method.tokenize(card, date(2028, 2, 29)).exp_year == 2028
    with pytest.raises(CardError) as caught:
        method.tokenize(card, date(2028, 3, 1))
    assert caught.value.code is CardErrorCode.EXPIRED_CARD


@dataclass
class RecordingProcessor:
    """A partner's adapter, as the protocol allows: here it records what it received and uses the sandbox."""

    inner: plugin.SandboxProcessor = field(default_factory=plugin.SandboxProcessor)
    seen: list[CardDetails] = field(default_factory=list)

    def tokenize(self, card: CardDetails) -> StoredCard:
        self.seen.append(card)
        return self.inner.tokenize(card)

    def charge(
        self, token: str, amount: Money, idempotency_key: str, description: str, off_session: bool = False
    ) -> PaymentResult:
        return self.inner.charge(token, amount, idempotency_key, description, off_session)

    def retrieve(self, token: str, idempotency_key: str, reference: str | None) -> PaymentResult:
        return self.inner.retrieve(token, idempotency_key, reference)

    def confirm(self, reference: str, challenge_response: str | None) -> PaymentResult:
        return self.inner.confirm(reference, challenge_response)

    def cancel(self, reference: str) -> PaymentResult:
        return self.inner.cancel(reference)

    def refund(self, reference: str, amount: Money, idempotency_key: str) -> PaymentResult:
        return self.inner.refund(reference, amount, idempotency_key)


def test_the_processor_never_sees_an_invalid_card_and_gets_a_normalised_one(
    method: CardMethodProtocol,
) -> None:
    processor = RecordingProcessor()
    partner_method = type(method)(processor)  # type: ignore[call-arg]
    for _, card, _, _ in INVALID:
        with pytest.raises(CardError):
            partner_method.tokenize(card, TODAY)
    assert processor.seen == []
    partner_method.tokenize(details("4242-4242 4242-4242", exp_month=5, exp_year=29, cvc=" 987"), TODAY)
    [seen] = processor.seen
    assert (seen.number, seen.exp_month, seen.exp_year, seen.cvc) == ("4242424242424242", 5, 2029, "987")


# -- no card data leaks ---------------------------------------------------------------


def test_card_details_repr_hides_the_number_and_cvc() -> None:
    card = details("4242 4242 4242 4242")
    for text in (repr(card), str(card), f"{card}", f"{card!r}", repr([card])):
        assert_no_secret(text, card.number, card.cvc)
        assert "4242" in text  # the last four digits are what a person recognises


@pytest.mark.parametrize("number", list(TEST_CARDS))
def test_nothing_returned_contains_the_number(method: CardMethodProtocol, number: str) -> None:
    stored = save(method, number)
    key = "checkout-leak"
    result = method.charge(charge_request(stored, key), LEDGER)
    texts = [repr(stored), *map(str, vars_of(stored)), repr(result), repr(method)]
    texts.append(repr(method.status(charge_request(stored, key), result.reference, LEDGER)))
    texts.append(repr(method.charge(charge_request(stored, key + "-away", off_session=True), LEDGER)))
    if result.reference:
        texts += [
            repr(method.cancel(charge_request(stored, key), result.reference, LEDGER)),
            repr(method.confirm(REQUEST, result.reference, "authenticated")),
            repr(method.refund(REQUEST, result.reference, eur("1.00"), "refund-1", LEDGER)),
        ]
    for text in texts:
        assert_no_secret(text, number, cvc=None)
    # Messages are fixed sentences: they contain no CVC either.
    assert result.message is None or CVC not in result.message
    # The CVC is no input to what is kept or returned: another CVC gives the same fingerprint,
    # the same kind of token and the same charge reference.
    other = save(method, number, cvc="1234" if stored.brand == "amex" else "123")
    assert other.fingerprint == stored.fingerprint
    assert other.token.rsplit("_", 1)[0] == stored.token.rsplit("_", 1)[0]
    assert method.charge(charge_request(other, key), LEDGER) == result
    assert re.fullmatch(r"tok_sandbox_[a-z0-9_]+_[0-9a-f]{32}", stored.token)


def vars_of(stored: StoredCard) -> list[object]:
    return [getattr(stored, name) for name in StoredCard.__slots__]


@dataclass
class OffSessionIgnoringProcessor(RecordingProcessor):
    """An adapter that forgets ``off_session``: its 3-D Secure cards still ask for an action."""

    canceled: list[str] = field(default_factory=list)

    def charge(
        self, token: str, amount: Money, idempotency_key: str, description: str, off_session: bool = False
    ) -> PaymentResult:
        return self.inner.charge(token, amount, idempotency_key, description)

    def cancel(self, reference: str) -> PaymentResult:
        self.canceled.append(reference)
        return self.inner.cancel(reference)


def test_an_action_asked_for_off_session_is_given_up_and_fails(method: CardMethodProtocol) -> None:
    processor = OffSessionIgnoringProcessor()
    partner_method = type(method)(processor)  # type: ignore[call-arg]
    stored = partner_method.tokenize(details(THREE_DS), TODAY)
    result = partner_method.charge(charge_request(stored, off_session=True), LEDGER)
    assert (result.status, result.failure) == (FAILED, FailureCode.AUTHENTICATION_REQUIRED)
    assert result.reference and processor.canceled == [result.reference]
