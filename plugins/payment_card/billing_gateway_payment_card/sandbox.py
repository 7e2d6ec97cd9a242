"""The built-in sandbox processor: no money moves, outcomes follow the public test-card numbers.

The numbers are the ones Stripe documents for test mode, so a front-end team can
use the cards it already knows (any future expiry, any CVC of the right length):

====================  ===================================================
Number                Outcome of a charge
====================  ===================================================
4242 4242 4242 4242   succeeds (Visa); also 4000 0566 5566 5556 (Visa debit)
5555 5555 5555 4444   succeeds (Mastercard); also 5200 8282 8282 8210, 2223 0031 2200 3222
3782 822463 10005     succeeds (American Express); also 3714 496353 98431
6011 1111 1111 1117   succeeds (Discover); 3056 9300 0902 0004 (Diners),
                      3566 0020 2036 0505 (JCB), 6200 0000 0000 0005 (UnionPay) too
4000 0000 0000 0002   declined: ``card_declined``
4000 0000 0000 9995   declined: ``insufficient_funds``
4000 0000 0000 0069   declined: ``expired_card``
4000 0000 0000 0127   declined: ``incorrect_cvc``
4000 0000 0000 0119   declined: ``processing_error``
4000 0027 6000 3184   3-D Secure: REQUIRES_ACTION, then ``confirm(reference, "authenticated")``
                      succeeds and any other answer fails with ``authentication_failed``;
                      off-session (renewals) it fails with ``authentication_required``
4000 0000 0000 0341   can be saved, every charge is declined (``card_declined``)
any other valid card  can be saved, every charge is declined: the sandbox accepts only test cards
====================  ===================================================

**Stateless.** Several gateway processes may share nothing but the database, so
the sandbox keeps no memory: the scenario travels in the token
(``tok_sandbox_<scenario>_<random><mac>``) and in every reference
(``ch_sandbox_<scenario>_<digest><mac>``, ``re_sandbox_<digest><mac>``). A charge
reference is derived from the idempotency key, so the same key always gives the
same reference and the same result. Tokens and references carry a short MAC under
a fixed, public sandbox key: it is not a secret, it only makes the sandbox refuse
a token or reference it never issued (typos, references from another processor).
Neither tokens nor references contain anything derived reversibly from the card
number or the CVC.

What statelessness cannot give (the gateway keeps these facts in its database):
a key reused with a different amount or card is not detected; ``confirm`` answers
from the challenge response it is given, not from an earlier confirmation; a
refund is not checked against the amount charged or already refunded, and the
refund of a 3-D Secure charge is accepted whether or not it was authenticated.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets

from gateway.plugin_api import (
    CardDetails,
    CardError,
    CardErrorCode,
    FailureCode,
    Money,
    PaymentResult,
    PaymentStatus,
    StoredCard,
)

from .processor import card_brand

__all__ = ["AUTHENTICATED", "TEST_CARDS", "SandboxProcessor", "Scenario"]

# Public and fixed on purpose: the sandbox protects nothing, it must only give the
# same fingerprint and the same references in every process.
_SANDBOX_KEY = b"billing-gateway payment_card sandbox - not a secret"

AUTHENTICATED = "authenticated"  # the 3-D Secure challenge response that succeeds
_TOKEN_PREFIX = "tok_sandbox_"
_CHARGE_PREFIX = "ch_sandbox_"
_REFUND_PREFIX = "re_sandbox_"
_MAC_LENGTH = 8


class Scenario(enum.Enum):
    """What a sandbox card does when charged; its value is what tokens and references carry."""

    SUCCEEDS = "succeeds"
    DECLINED = "declined"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    EXPIRED_CARD = "expired_card"
    INCORRECT_CVC = "incorrect_cvc"
    PROCESSING_ERROR = "processing_error"
    THREE_D_SECURE = "3ds_required"
    DECLINES_LATER = "declines_later"  # saved fine, every charge declined (failed renewals)
    NOT_A_TEST_CARD = "not_a_test_card"


TEST_CARDS: dict[str, Scenario] = {
    "4242424242424242": Scenario.SUCCEEDS,
    "4000056655665556": Scenario.SUCCEEDS,
    "5555555555554444": Scenario.SUCCEEDS,
    "5200828282828210": Scenario.SUCCEEDS,
    "2223003122003222": Scenario.SUCCEEDS,
    "378282246310005": Scenario.SUCCEEDS,
    "371449635398431": Scenario.SUCCEEDS,
    "6011111111111117": Scenario.SUCCEEDS,
    "3056930009020004": Scenario.SUCCEEDS,
    "3566002020360505": Scenario.SUCCEEDS,
    "6200000000000005": Scenario.SUCCEEDS,
    "4000000000000002": Scenario.DECLINED,
    "4000000000009995": Scenario.INSUFFICIENT_FUNDS,
    "4000000000000069": Scenario.EXPIRED_CARD,
    "4000000000000127": Scenario.INCORRECT_CVC,
    "4000000000000119": Scenario.PROCESSING_ERROR,
    "4000002760003184": Scenario.THREE_D_SECURE,
    "4000000000000341": Scenario.DECLINES_LATER,
}

# Charge outcomes that are final declines: failure code and customer-facing message.
_DECLINES: dict[Scenario, tuple[FailureCode, str]] = {
    Scenario.DECLINED: (FailureCode.CARD_DECLINED, "The card was declined."),
    Scenario.INSUFFICIENT_FUNDS: (FailureCode.INSUFFICIENT_FUNDS, "The card has insufficient funds."),
    Scenario.EXPIRED_CARD: (FailureCode.EXPIRED_CARD, "The card has expired."),
    Scenario.INCORRECT_CVC: (FailureCode.INCORRECT_CVC, "The card's security code is incorrect."),
    Scenario.PROCESSING_ERROR: (
        FailureCode.PROCESSING_ERROR,
        "An error occurred while processing the card. Try again later.",
    ),
    Scenario.DECLINES_LATER: (FailureCode.CARD_DECLINED, "The card was declined."),
    Scenario.NOT_A_TEST_CARD: (
        FailureCode.CARD_DECLINED,
        # No card number in it (not even a test card's): answers and logs carry none.
        "The card was declined: the sandbox accepts only test cards "
        "(such as the Visa ending in 4242); no real card is ever charged.",
    ),
}
_SUCCEEDING = frozenset({Scenario.SUCCEEDS, Scenario.THREE_D_SECURE})


def _hmac_hex(message: bytes) -> str:
    return hmac.new(_SANDBOX_KEY, message, hashlib.sha256).hexdigest()


def _mac(*parts: str, length: int = _MAC_LENGTH) -> str:
    return _hmac_hex("\x00".join(parts).encode())[:length]


def _failed(failure: FailureCode, message: str, reference: str | None = None) -> PaymentResult:
    return PaymentResult(PaymentStatus.FAILED, reference=reference, failure=failure, message=message)


def _bad_amount(amount: Money) -> PaymentResult | None:
    if not isinstance(amount, Money) or amount.amount <= 0 or not amount.is_rounded:
        return _failed(
            FailureCode.PROCESSING_ERROR,
            "The amount must be positive and rounded to the currency's minor unit.",
        )
    return None


class SandboxProcessor:
    """A stateless :class:`~billing_gateway_payment_card.processor.CardProcessor` for development and tests.

    Thread-safe: it holds no state at all.
    """

    # -- tokens and references ------------------------------------------------
    @staticmethod
    def _scenario_of(value: str, prefix: str, body_length: int) -> Scenario | None:
        """The scenario carried by a token or charge reference the sandbox issued, else None."""
        if not isinstance(value, str) or not value.startswith(prefix):
            return None
        scenario_text, _, tail = value[len(prefix) :].rpartition("_")
        if len(tail) != body_length + _MAC_LENGTH:
            return None
        body, mac = tail[:body_length], tail[body_length:]
        if not hmac.compare_digest(mac, _mac(prefix, scenario_text, body)):
            return None
        try:
            return Scenario(scenario_text)
        except ValueError:
            return None

    @staticmethod
    def _issue(prefix: str, scenario: Scenario, body: str) -> str:
        return f"{prefix}{scenario.value}_{body}{_mac(prefix, scenario.value, body)}"

    # -- the CardProcessor protocol ---------------------------------------------
    def tokenize(self, card: CardDetails) -> StoredCard:
        number = card.number
        if not (isinstance(number, str) and number.isascii() and number.isdigit()):
            # The payment method normalises before calling; a direct caller gets the same error.
            raise CardError(CardErrorCode.INVALID_NUMBER, "number", "The card number is not valid.")
        scenario = TEST_CARDS.get(number, Scenario.NOT_A_TEST_CARD)
        token = self._issue(_TOKEN_PREFIX, scenario, secrets.token_hex(12))
        fingerprint = _hmac_hex(b"fingerprint\x00" + number.encode())[:32]
        return StoredCard(
            token=token,
            brand=card_brand(number),
            last4=number[-4:],
            exp_month=card.exp_month,
            exp_year=card.exp_year,
            fingerprint=fingerprint,
        )

    def charge(
        self, token: str, amount: Money, idempotency_key: str, description: str, off_session: bool = False
    ) -> PaymentResult:
        scenario = self._scenario_of(token, _TOKEN_PREFIX, 24)
        if scenario is None:
            return _failed(
                FailureCode.PROCESSING_ERROR, "The saved card is unknown to the sandbox processor."
            )
        if not isinstance(idempotency_key, str) or not idempotency_key:
            return _failed(FailureCode.PROCESSING_ERROR, "An idempotency key is required.")
        if (refused := _bad_amount(amount)) is not None:
            return refused
        reference = self._charge_reference(scenario, idempotency_key)
        if scenario is Scenario.THREE_D_SECURE:
            if off_session:
                return _failed(
                    FailureCode.AUTHENTICATION_REQUIRED,
                    "The card issuer requires 3-D Secure, which needs the customer present.",
                    reference,
                )
            return PaymentResult(
                PaymentStatus.REQUIRES_ACTION,
                reference=reference,
                message="The card issuer requires 3-D Secure authentication.",
                next_action=f"sandbox-3ds:{reference}",
            )
        return self._outcome(scenario, reference)

    def retrieve(self, token: str, idempotency_key: str, reference: str | None) -> PaymentResult:
        # Stateless: the sandbox keeps no record of its charges. With the reference it issued,
        # the charge is what charging with this token and key answered; without one (the
        # gateway never got an answer) it reports none: the sandbox takes no money, so "no
        # charge" is the truth, and a payment recorded that way is never applied unpaid. A
        # 3-D Secure charge reads as still waiting: only the confirmation carries the answer.
        scenario = self._scenario_of(token, _TOKEN_PREFIX, 24)
        if scenario is None or not isinstance(idempotency_key, str) or not idempotency_key:
            return _failed(FailureCode.PROCESSING_ERROR, "The sandbox processor has no such charge.")
        issued = self._charge_reference(scenario, idempotency_key)
        if reference != issued:
            return _failed(
                FailureCode.PROCESSING_ERROR, "The sandbox processor has no record of this charge."
            )
        reference = issued
        if scenario is Scenario.THREE_D_SECURE:
            return PaymentResult(
                PaymentStatus.REQUIRES_ACTION, reference=reference, next_action=f"sandbox-3ds:{reference}"
            )
        return self._outcome(scenario, reference)

    def confirm(self, reference: str, challenge_response: str | None) -> PaymentResult:
        scenario = self._scenario_of(reference, _CHARGE_PREFIX, 24)
        if scenario is None:
            return _failed(FailureCode.PROCESSING_ERROR, "The payment is unknown to the sandbox processor.")
        if scenario is not Scenario.THREE_D_SECURE:
            # Nothing to authenticate: report the charge as it stands (what retrieving it would say).
            return self._outcome(scenario, reference)
        if challenge_response == AUTHENTICATED:
            return PaymentResult(PaymentStatus.SUCCEEDED, reference=reference)
        return _failed(FailureCode.AUTHENTICATION_FAILED, "The 3-D Secure authentication failed.", reference)

    def cancel(self, reference: str) -> PaymentResult:
        scenario = self._scenario_of(reference, _CHARGE_PREFIX, 24)
        if scenario is None:
            return _failed(FailureCode.PROCESSING_ERROR, "The payment is unknown to the sandbox processor.")
        if scenario is Scenario.THREE_D_SECURE:
            return _failed(FailureCode.CANCELED, "The payment was canceled.", reference)
        return self._outcome(scenario, reference)  # settled at once: nothing left to cancel

    def refund(self, reference: str, amount: Money, idempotency_key: str) -> PaymentResult:
        scenario = self._scenario_of(reference, _CHARGE_PREFIX, 24)
        if scenario is None:
            return _failed(FailureCode.PROCESSING_ERROR, "The payment is unknown to the sandbox processor.")
        if scenario not in _SUCCEEDING:
            return _failed(FailureCode.PROCESSING_ERROR, "Only a succeeded payment can be refunded.")
        if (refused := _bad_amount(amount)) is not None:
            return refused
        body = _mac("refund", reference, idempotency_key, str(amount.minor_units), amount.currency, length=24)
        reference = f"{_REFUND_PREFIX}{body}{_mac(_REFUND_PREFIX, body)}"
        return PaymentResult(PaymentStatus.SUCCEEDED, reference=reference)

    @classmethod
    def _charge_reference(cls, scenario: Scenario, idempotency_key: str) -> str:
        # Same key, same reference: a retry finds the "same" charge without any memory.
        body = _hmac_hex(b"charge\x00" + idempotency_key.encode())[:24]
        return cls._issue(_CHARGE_PREFIX, scenario, body)

    @staticmethod
    def _outcome(scenario: Scenario, reference: str) -> PaymentResult:
        if scenario is Scenario.SUCCEEDS:
            return PaymentResult(PaymentStatus.SUCCEEDED, reference=reference)
        failure, message = _DECLINES[scenario]
        return _failed(failure, message, reference)

    def __repr__(self) -> str:
        return "SandboxProcessor()"
