"""Payment methods: declared capabilities honoured, idempotent by key, typed failures, exact
money, no card data in anything returned.

Each test drives the method as the gateway does (``charge``, ``status``, ``confirm``,
``cancel``, ``refund``) with the in-memory ledger of :mod:`gateway.testing.fakes`; card
methods charge the cards given with ``--conformance-card`` and ``--conformance-action-card``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.core.money import Money
from gateway.plugin_api.payments import (
    Capability,
    CardDetails,
    CardError,
    CardErrorCode,
    CardMethod,
    ChargeRequest,
    FailureCode,
    InvalidNotification,
    LedgerEntryKind,
    NotifiedPaymentMethod,
    PaymentMethod,
    PaymentResult,
    PaymentStatus,
    StoredCard,
)
from gateway.testing.fakes import MemoryLedger, card_details, charge_request, fresh_key

CURRENCY = "EUR"
FUNDS = Money("1000000.00", CURRENCY)  # what a prepaid-balance method may spend in these tests
WAITING = frozenset({PaymentStatus.REQUIRES_ACTION, PaymentStatus.PENDING})
ANSWERS = frozenset({PaymentStatus.SUCCEEDED, PaymentStatus.FAILED, *WAITING})  # the core sets the rest

# A partner's test mode may go over the network: few examples, no deadline.
EXAMPLES = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
# (the function-scoped fixtures here hold no state: one per test is as good as one per example)
amounts = st.integers(min_value=1, max_value=10_000_00).map(
    lambda cents: Money.from_minor_units(cents, CURRENCY)
)
key_labels = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_:", min_size=1, max_size=30)


def allowed_statuses(method: PaymentMethod, off_session: bool = False) -> frozenset[PaymentStatus]:
    """What ``charge`` may answer given the declared capabilities."""
    allowed = {PaymentStatus.FAILED}
    if Capability.PAY_NOW in method.capabilities:
        allowed.add(PaymentStatus.SUCCEEDED)
    if Capability.CUSTOMER_ACTION in method.capabilities and not off_session:
        allowed.add(PaymentStatus.REQUIRES_ACTION)
    if Capability.SETTLE_LATER in method.capabilities:
        allowed.add(PaymentStatus.PENDING)
    return frozenset(allowed)


def needs(method: PaymentMethod, *capabilities: Capability) -> None:
    missing = [c.name for c in capabilities if c not in method.capabilities]
    if missing:
        pytest.skip(f"{method.code!r} does not declare {', '.join(missing)}")


def check_result(result: PaymentResult, request: ChargeRequest, what: str) -> PaymentResult:
    """What every answer must be, whatever the call: a known status, a typed failure, exact money."""
    assert isinstance(result, PaymentResult), f"{what} returned {result!r}, not a PaymentResult"
    assert result.status in ANSWERS, f"{what} answered {result.status}; methods answer only {sorted(ANSWERS)}"
    if result.status is PaymentStatus.FAILED:
        assert isinstance(result.failure, FailureCode), (
            f"{what} answered FAILED without a FailureCode (failure={result.failure!r})"
        )
    if result.status is PaymentStatus.REQUIRES_ACTION:
        assert isinstance(result.next_action, str) and result.next_action, (
            f"{what} answered REQUIRES_ACTION without a next_action for the customer"
        )
    if result.status in (PaymentStatus.REQUIRES_ACTION, PaymentStatus.PENDING):
        # The gateway confirms, polls, cancels and matches notifications by it.
        assert isinstance(result.reference, str) and result.reference, (
            f"{what} answered {result.status.value} without a reference"
        )
    for name in ("reference", "message", "next_action"):
        value = getattr(result, name)
        assert value is None or isinstance(value, str), f"{what}: {name} is {value!r}, not a str"
    if result.instructions is not None:
        assert isinstance(result.instructions, Mapping) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in result.instructions.items()
        ), f"{what}: instructions must map str to str, not {result.instructions!r}"
    if result.expires_at is not None:
        assert isinstance(result.expires_at, datetime) and result.expires_at.tzinfo is not None, (
            f"{what}: expires_at must be an aware datetime, not {result.expires_at!r}"
        )
    if result.amount is not None:
        assert isinstance(result.amount, Money), f"{what}: amount is {result.amount!r}, not Money"
        assert result.amount.currency == request.amount.currency, (
            f"{what}: amount {result.amount} is not in the request's currency {request.amount.currency}"
        )
        assert result.amount.is_rounded, f"{what}: amount {result.amount} is not rounded to the minor unit"
    return result


@dataclass
class Payer:
    """Builds a method's requests as the gateway would: card methods charge a saved card."""

    method: PaymentMethod
    card_number: str
    action_card_number: str

    @property
    def today(self) -> date:
        return datetime.now(UTC).date()

    def save(self, number: str) -> StoredCard:
        assert isinstance(self.method, CardMethod)
        stored = self.method.tokenize(card_details(number, self.today), self.today)
        assert isinstance(stored, StoredCard), f"tokenize returned {stored!r}, not a StoredCard"
        return stored

    def request(
        self, amount: Money, key: str | None = None, *, off_session: bool = False, action: bool = False
    ) -> ChargeRequest:
        card = None
        if Capability.CARDS in self.method.capabilities:
            card = self.save(self.action_card_number if action else self.card_number)
        return charge_request(amount, key, off_session=off_session, card=card)

    def charge(self, request: ChargeRequest, ledger: MemoryLedger) -> PaymentResult:
        result = check_result(self.method.charge(request, ledger), request, "charge")
        allowed = allowed_statuses(self.method, request.off_session)
        assert result.status in allowed, (
            f"charge answered {result.status.name}"
            + (" off-session" if request.off_session else "")
            + f", which {sorted(c.name for c in self.method.capabilities)} do not allow"
            f" (allowed: {', '.join(sorted(s.name for s in allowed))})"
        )
        return result


@pytest.fixture
def payer(payment_method: PaymentMethod, pytestconfig: pytest.Config) -> Payer:
    return Payer(
        payment_method,
        pytestconfig.getoption("conformance_card"),
        pytestconfig.getoption("conformance_action_card"),
    )


def funded() -> MemoryLedger:
    return MemoryLedger(CURRENCY, FUNDS)


# -- registration ---------------------------------------------------------------------------


def test_it_satisfies_the_protocol_of_its_capabilities(payment_method: PaymentMethod) -> None:
    """The registry's start-up checks passed (else the run stops before any test); these are
    what the protocols say beyond them."""
    assert isinstance(payment_method, PaymentMethod)
    assert isinstance(payment_method.code, str) and re.fullmatch(r"[a-z0-9_]{1,32}", payment_method.code), (
        f"code {payment_method.code!r}: use 1 to 32 lower-case letters, digits and underscores"
    )
    assert isinstance(payment_method.label, str) and payment_method.label.strip()
    if Capability.CARDS in payment_method.capabilities:
        assert isinstance(payment_method, CardMethod)


def test_capabilities_are_a_frozenset_of_capability(payment_method: PaymentMethod) -> None:
    capabilities = payment_method.capabilities
    assert isinstance(capabilities, frozenset), f"capabilities is a {type(capabilities).__name__}"
    assert capabilities and all(isinstance(c, Capability) for c in capabilities)


# -- charge -----------------------------------------------------------------------------------


@EXAMPLES
@given(amount=amounts, label=key_labels)
def test_a_fresh_charge_answers_only_what_the_capabilities_allow(
    payer: Payer, amount: Money, label: str
) -> None:
    request = payer.request(amount, fresh_key(label))
    payer.charge(request, funded())


@EXAMPLES
@given(amount=amounts)
def test_an_off_session_charge_never_asks_for_an_action(payer: Payer, amount: Money) -> None:
    needs(payer.method, Capability.OFF_SESSION)
    cards = [False]
    if {Capability.CARDS, Capability.CUSTOMER_ACTION} <= payer.method.capabilities:
        cards.append(True)  # the card that asks for an action on-session must fail off-session
    for action in cards:
        result = payer.charge(payer.request(amount, off_session=True, action=action), funded())
        assert result.status is not PaymentStatus.REQUIRES_ACTION


def test_the_action_card_asks_for_an_action_on_session_and_fails_off_session(payer: Payer) -> None:
    needs(payer.method, Capability.CARDS, Capability.CUSTOMER_ACTION)
    amount = Money("29.00", CURRENCY)
    started = payer.charge(payer.request(amount, action=True), funded())
    assert started.status is PaymentStatus.REQUIRES_ACTION, (
        f"--conformance-action-card answered {started.status.name}, not REQUIRES_ACTION: "
        "pass a card that asks for a customer action in the method's test mode"
    )
    if Capability.OFF_SESSION in payer.method.capabilities:
        away = payer.charge(payer.request(amount, off_session=True, action=True), funded())
        assert (away.status, away.failure) == (PaymentStatus.FAILED, FailureCode.AUTHENTICATION_REQUIRED)


@pytest.mark.parametrize("action", [False, True], ids=["pay", "customer_action"])
@EXAMPLES
@given(amount=amounts)
def test_the_same_key_twice_gives_the_same_answer_and_moves_money_once(
    payer: Payer, amount: Money, action: bool
) -> None:
    if action:
        needs(payer.method, Capability.CARDS, Capability.CUSTOMER_ACTION)
    ledger = funded()
    request = payer.request(amount, action=action)
    first = payer.charge(request, ledger)
    again = payer.charge(request, ledger)
    assert (again.status, again.reference, again.failure) == (first.status, first.reference, first.failure), (
        f"the same key answered {first} and then {again}"
    )
    if Capability.PREPAID_BALANCE in payer.method.capabilities:
        charges = ledger.of_kind(LedgerEntryKind.CHARGE)
        moved = FUNDS - ledger.balance()
        if first.status is PaymentStatus.SUCCEEDED:
            assert len(charges) == 1 and moved == amount, f"two charges with one key: {ledger.entries}"
        else:
            assert not charges and not moved.amount, f"{first.status.name} moved money: {ledger.entries}"


@pytest.mark.parametrize("off_session", [False, True], ids=["on_session", "off_session"])
def test_a_charge_from_an_empty_balance_fails_typed_and_moves_nothing(
    payer: Payer, off_session: bool
) -> None:
    needs(payer.method, Capability.PREPAID_BALANCE)
    if off_session:
        needs(payer.method, Capability.OFF_SESSION)
    ledger = MemoryLedger(CURRENCY, Money("0.99", CURRENCY))
    result = payer.charge(payer.request(Money("1.00", CURRENCY), off_session=off_session), ledger)
    assert result.status is PaymentStatus.FAILED
    assert ledger.balance() == Money("0.99", CURRENCY) and not ledger.of_kind(LedgerEntryKind.CHARGE)


def test_a_card_the_method_never_saved_fails_typed(payer: Payer) -> None:
    needs(payer.method, Capability.CARDS)
    stranger = StoredCard("conformance-unknown-token", "visa", "4242", 12, payer.today.year + 3, "0" * 32)
    request = charge_request(Money("10.00", CURRENCY), card=stranger)
    result = payer.charge(request, funded())
    assert result.status is PaymentStatus.FAILED


# -- status -------------------------------------------------------------------------------------


@pytest.mark.parametrize("action", [False, True], ids=["pay", "customer_action"])
@EXAMPLES
@given(amount=amounts)
def test_status_agrees_with_the_charge(payer: Payer, amount: Money, action: bool) -> None:
    if action:
        needs(payer.method, Capability.CARDS, Capability.CUSTOMER_ACTION)
    ledger = funded()
    request = payer.request(amount, action=action)
    charged = payer.charge(request, ledger)
    status = check_result(payer.method.status(request, charged.reference, ledger), request, "status")
    # A settled payment stays as it was; one waiting stays waiting (nobody acted), except that
    # money sent for a PENDING one may already have arrived.
    agrees = {charged.status} | (
        {PaymentStatus.SUCCEEDED} if charged.status is PaymentStatus.PENDING else set()
    )
    assert status.status in agrees, f"charge answered {charged.status.name}, status {status.status.name}"
    if charged.reference and status.reference:
        assert status.reference == charged.reference


def test_status_of_a_key_never_charged_is_failed(payer: Payer) -> None:
    """A payment the method never saw moved nothing: FAILED, so that reconciliation after a
    crash before the call records no charge.

    One exception: a method that settles later (SETTLE_LATER, a bank transfer) and whose charge
    moves no money cannot tell a payment it never announced from one whose funds are still on
    their way; it may answer PENDING, which the gateway expires in time.
    """
    ledger = funded()
    request = payer.request(Money("10.00", CURRENCY))
    result = check_result(payer.method.status(request, None, ledger), request, "status")
    allowed = {PaymentStatus.FAILED}
    if Capability.SETTLE_LATER in payer.method.capabilities:
        allowed.add(PaymentStatus.PENDING)
    assert result.status in allowed, (
        f"status of an idempotency key never charged answered {result.status.name}; "
        "a payment the method never saw is FAILED: nothing moved"
    )
    assert ledger.balance() == FUNDS


# -- customer actions: confirm and cancel -----------------------------------------------------


def waiting_payment(payer: Payer, ledger: MemoryLedger) -> tuple[ChargeRequest, PaymentResult]:
    """A payment that waits (REQUIRES_ACTION or PENDING), else skip."""
    capabilities = payer.method.capabilities
    if not capabilities & {Capability.CUSTOMER_ACTION, Capability.SETTLE_LATER}:
        pytest.skip(f"{payer.method.code!r} declares neither CUSTOMER_ACTION nor SETTLE_LATER")
    action = {Capability.CARDS, Capability.CUSTOMER_ACTION} <= capabilities
    request = payer.request(Money("29.00", CURRENCY), action=action)
    result = payer.charge(request, ledger)
    if result.status not in WAITING:
        pytest.skip(f"a fresh charge answered {result.status.name}: no waiting payment to check")
    return request, result


def test_confirming_again_answers_the_same(payer: Payer) -> None:
    needs(payer.method, Capability.CUSTOMER_ACTION)
    ledger = funded()
    request, started = waiting_payment(payer, ledger)
    if started.status is not PaymentStatus.REQUIRES_ACTION or not started.reference:
        pytest.skip("no payment waiting for a customer action with a reference")
    first = check_result(payer.method.confirm(request, started.reference, None), request, "confirm")
    again = check_result(payer.method.confirm(request, started.reference, None), request, "confirm")
    assert (again.status, again.reference, again.failure) == (first.status, first.reference, first.failure)


def test_cancel_ends_the_wait(payer: Payer) -> None:
    ledger = funded()
    request, started = waiting_payment(payer, ledger)
    canceled = check_result(payer.method.cancel(request, started.reference, ledger), request, "cancel")
    assert canceled.status in {PaymentStatus.FAILED, PaymentStatus.SUCCEEDED}, (
        f"cancel of a {started.status.name} payment answered {canceled.status.name}: "
        "answer FAILED once nothing can be taken any more, or SUCCEEDED if the money arrived first"
    )
    again = check_result(payer.method.cancel(request, started.reference, ledger), request, "cancel")
    assert again.status is canceled.status


# -- refunds ------------------------------------------------------------------------------------


@EXAMPLES
@given(amount=amounts, share=st.integers(min_value=1, max_value=100))
def test_a_succeeded_charge_is_refunded_idempotently_per_key(payer: Payer, amount: Money, share: int) -> None:
    needs(payer.method, Capability.REFUND)
    ledger = funded()
    request = payer.request(amount)
    charged = payer.charge(request, ledger)
    if charged.status is not PaymentStatus.SUCCEEDED:
        pytest.skip(f"a fresh charge answered {charged.status.name}: nothing succeeded to refund")
    assert charged.reference, "a succeeded charge carries the processor's reference"
    part = Money.from_minor_units(max(1, amount.minor_units * share // 100), CURRENCY)
    key = fresh_key("refund")
    refund = check_result(
        payer.method.refund(request, charged.reference, part, key, ledger), request, "refund"
    )
    assert refund.status is PaymentStatus.SUCCEEDED, f"refund of a succeeded charge answered {refund}"
    assert refund.reference and refund.reference != charged.reference, "a refund has its own reference"
    again = check_result(
        payer.method.refund(request, charged.reference, part, key, ledger), request, "refund"
    )
    assert (again.status, again.reference) == (refund.status, refund.reference), (
        f"the same refund key answered {refund} and then {again}"
    )
    if Capability.PREPAID_BALANCE in payer.method.capabilities:
        refunds = ledger.of_kind(LedgerEntryKind.REFUND)
        assert len(refunds) == 1 and refunds[0].amount == part, f"one refund key, entries {ledger.entries}"
        assert ledger.balance() == FUNDS - amount + part


def test_a_refund_of_what_did_not_succeed_is_refused(payer: Payer) -> None:
    needs(payer.method, Capability.REFUND)
    ledger = funded()
    never_charged = payer.request(Money("10.00", CURRENCY))
    result = check_result(
        payer.method.refund(
            never_charged, "conformance-unknown-reference", never_charged.amount, fresh_key(), ledger
        ),
        never_charged,
        "refund",
    )
    assert result.status is PaymentStatus.FAILED, (
        f"refund of a payment the method never charged answered {result.status.name}; refuse it (FAILED)"
    )
    assert ledger.balance() == FUNDS and not ledger.of_kind(LedgerEntryKind.REFUND)


# -- notifications ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({}, b""),
        ({}, b"\x00\xff garbage"),
        ({"content-type": "application/json"}, b'{"reference": "pay_1", "status": "succeeded"}'),
        ({"webhook-signature": "v1,bm90IGEgc2lnbmF0dXJl"}, b'{"reference": "pay_1", "status": "succeeded"}'),
    ],
    ids=["empty", "garbage", "unsigned", "bad-signature"],
)
def test_an_unsigned_or_garbage_notification_is_refused(
    payment_method: PaymentMethod, headers: dict[str, str], body: bytes
) -> None:
    if not isinstance(payment_method, NotifiedPaymentMethod):
        pytest.skip(f"{payment_method.code!r} takes no notifications (no parse_notification)")
    with pytest.raises(InvalidNotification):
        payment_method.parse_notification(headers, body)


# -- cards ----------------------------------------------------------------------------------------


def secrets_of(number: str, cvc: str) -> list[re.Pattern[str]]:
    """The number (whole, or all but its last four digits, spaced or not) and the CVC as a
    whole word: a reference's random hex may hold the CVC's digits by chance."""
    digits = re.sub(r"\D", "", number)
    spaced = " ".join(digits[i : i + 4] for i in range(0, len(digits), 4))
    return [
        *(re.compile(re.escape(s)) for s in {digits, digits[:-4], spaced}),
        re.compile(rf"(?<![0-9A-Za-z]){re.escape(cvc)}(?![0-9A-Za-z])"),
    ]


def strings_in(value: object) -> Iterator[str]:
    """Every string a returned value holds, and its repr."""
    yield repr(value)
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from strings_in(k)
            yield from strings_in(v)
    elif isinstance(value, PaymentResult | StoredCard):
        for name in type(value).__slots__:
            yield from strings_in(getattr(value, name))


def test_no_card_data_in_anything_the_method_returns(payer: Payer) -> None:
    needs(payer.method, Capability.CARDS)
    method = payer.method
    returned: list[object] = [method, str(method)]
    numbers = [payer.card_number]
    if Capability.CUSTOMER_ACTION in method.capabilities:
        numbers.append(payer.action_card_number)
    cvc = card_details(payer.card_number, payer.today).cvc
    for number in numbers:
        request = payer.request(Money("12.34", CURRENCY), action=number != payer.card_number)
        ledger = funded()
        returned.append(request.card)
        charged = payer.charge(request, ledger)
        returned += [charged, method.status(request, charged.reference, ledger)]
        if charged.reference and charged.status is PaymentStatus.REQUIRES_ACTION:
            returned.append(method.confirm(request, charged.reference, None))
            returned.append(method.cancel(request, charged.reference, ledger))
        if (
            charged.reference
            and charged.status is PaymentStatus.SUCCEEDED
            and Capability.REFUND in method.capabilities
        ):
            returned.append(method.refund(request, charged.reference, request.amount, fresh_key(), ledger))
    for number in numbers:
        cvc = card_details(number, payer.today).cvc
        for pattern in secrets_of(number, cvc):
            for value in returned:
                for text in strings_in(value):
                    assert not pattern.search(text), f"card data ({pattern.pattern}) in {text!r}"


def bad_cards(card: str, today: date) -> list[tuple[str, CardDetails, CardErrorCode, str]]:
    good = card_details(card, today)
    last = int(card[-1])
    return [
        (
            "luhn",
            card_details(card[:-1] + str((last + 1) % 10), today),
            CardErrorCode.INVALID_NUMBER,
            "number",
        ),
        ("letters", card_details(card[:-4] + "abcd", today), CardErrorCode.INVALID_NUMBER, "number"),
        ("too-short", card_details("42424", today), CardErrorCode.INVALID_NUMBER, "number"),
        ("empty", card_details("", today), CardErrorCode.INVALID_NUMBER, "number"),
        (
            "month-13",
            CardDetails(card, 13, today.year + 1, good.cvc),
            CardErrorCode.INVALID_EXPIRY,
            "exp_month",
        ),
        (
            "month-0",
            CardDetails(card, 0, today.year + 1, good.cvc),
            CardErrorCode.INVALID_EXPIRY,
            "exp_month",
        ),
        (
            "year-far",
            CardDetails(card, 1, today.year + 200, good.cvc),
            CardErrorCode.INVALID_EXPIRY,
            "exp_year",
        ),
        ("expired", CardDetails(card, 12, today.year - 1, good.cvc), CardErrorCode.EXPIRED_CARD, "exp_year"),
        ("cvc-short", card_details(card, today, cvc="1"), CardErrorCode.INVALID_CVC, "cvc"),
        ("cvc-letters", card_details(card, today, cvc="a" * len(good.cvc)), CardErrorCode.INVALID_CVC, "cvc"),
    ]


@pytest.mark.parametrize(
    "case",
    [
        "luhn",
        "letters",
        "too-short",
        "empty",
        "month-13",
        "month-0",
        "year-far",
        "expired",
        "cvc-short",
        "cvc-letters",
    ],
)
def test_tokenize_rejects_a_bad_card_with_a_code_and_field(payer: Payer, case: str) -> None:
    needs(payer.method, Capability.CARDS)
    assert isinstance(payer.method, CardMethod)
    [(_, card, code, field)] = [row for row in bad_cards(payer.card_number, payer.today) if row[0] == case]
    with pytest.raises(CardError) as caught:
        payer.method.tokenize(card, payer.today)
    error = caught.value
    assert (error.code, error.field) == (code, field), f"{case}: {error.code}, field {error.field!r}"
    assert isinstance(error.message, str) and error.message
    for pattern in secrets_of(payer.card_number, card_details(payer.card_number, payer.today).cvc):
        for text in (error.message, str(error), repr(error)):
            assert not pattern.search(text), f"card data in the error: {text!r}"
