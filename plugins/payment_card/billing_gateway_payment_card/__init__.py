"""Pay by credit card: saved cards or a new card ("Credit card" on the Checkout page).

:class:`CardPaymentMethod` validates what the customer typed (Luhn, expiry,
CVC) *before* any processor sees it, then delegates every money movement to a
:class:`~billing_gateway_payment_card.processor.CardProcessor`. Only the
processor's :class:`~gateway.plugin_api.payments.StoredCard` (token, brand, last four
digits, expiry, fingerprint) ever leaves this module: never the number or the
CVC, and no error message repeats either.

This plugin registers ``CardPaymentMethod(SandboxProcessor())``: the built-in
:class:`~billing_gateway_payment_card.sandbox.SandboxProcessor` moves no money
and answers according to the public test-card numbers (4242 4242 4242 4242
succeeds, 4000 0000 0000 0002 is declined, ...).

Plugging in a real processor
----------------------------
1. Write an adapter that satisfies :class:`~billing_gateway_payment_card.processor.CardProcessor`
   (read its rules: idempotent charges, FAILED only when no money moved, raise on
   an unknown outcome, a time limit on every network call).
2. Ship it as a plugin package that depends on ``billing-gateway-payment-card``
   and registers the card method around it, under the ``billing_gateway``
   entry-point group::

       # my_company_stripe/__init__.py
       from billing_gateway_payment_card import CardPaymentMethod
       from gateway.plugin_api.hookspecs import hookimpl

       @hookimpl
       def register_payment_methods(register):
           register(CardPaymentMethod(StripeProcessor(api_key=...)))

       # pyproject.toml
       [project.entry-points.billing_gateway]
       my_stripe = "my_company_stripe"

3. Disable the built-in sandbox so that only one method has the code ``card``:
   ``BILLING_GATEWAY_DISABLED_PLUGINS=payment_card``. (Disabling the plugin only
   skips its hook; the classes stay importable.)
"""

from __future__ import annotations

import dataclasses
import re
from datetime import date

from stdnum import luhn

from gateway.plugin_api import (
    Capability,
    CardDetails,
    CardError,
    CardErrorCode,
    ChargeRequest,
    FailureCode,
    Ledger,
    Money,
    PaymentResult,
    PaymentStatus,
    StoredCard,
    hookimpl,
)

from .processor import CardProcessor, card_brand
from .sandbox import SandboxProcessor

__all__ = ["CardPaymentMethod", "CardProcessor", "SandboxProcessor", "register_payment_methods"]

_SEPARATORS = re.compile(r"[ -]")
_DIGITS = re.compile(r"[0-9]+")
_MIN_DIGITS, _MAX_DIGITS = 12, 19
_MAX_YEARS_AHEAD = 20  # a card valid further ahead than this is a typo


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _validated(card: CardDetails, today: date) -> CardDetails:
    """The card normalised (digits-only number, four-digit year, trimmed CVC), or a :class:`CardError`.

    Messages name the problem, never the value: the number and CVC must not end
    up in an API response, a log or an event.
    """
    number = card.number
    if not isinstance(number, str):
        raise CardError(CardErrorCode.INVALID_NUMBER, "number", "The card number must be text.")
    number = _SEPARATORS.sub("", number)
    if not number:
        raise CardError(CardErrorCode.INVALID_NUMBER, "number", "The card number is required.")
    if not _DIGITS.fullmatch(number):
        raise CardError(
            CardErrorCode.INVALID_NUMBER,
            "number",
            "The card number may contain only digits, spaces and dashes.",
        )
    if not _MIN_DIGITS <= len(number) <= _MAX_DIGITS:
        raise CardError(
            CardErrorCode.INVALID_NUMBER,
            "number",
            f"The card number must have {_MIN_DIGITS} to {_MAX_DIGITS} digits.",
        )
    if not luhn.is_valid(number):
        raise CardError(
            CardErrorCode.INVALID_NUMBER, "number", "The card number is not valid: check for a typo."
        )

    month, year = card.exp_month, card.exp_year
    if not _is_int(month) or not 1 <= month <= 12:
        raise CardError(
            CardErrorCode.INVALID_EXPIRY, "exp_month", "The expiry month must be between 1 and 12."
        )
    if not _is_int(year):
        raise CardError(CardErrorCode.INVALID_EXPIRY, "exp_year", "The expiry year must be a number.")
    if 0 <= year <= 99:
        year += 2000  # "28" on the card means 2028
    if not 2000 <= year <= today.year + _MAX_YEARS_AHEAD:
        raise CardError(
            CardErrorCode.INVALID_EXPIRY,
            "exp_year",
            "The expiry year is not plausible: use the year printed on the card.",
        )
    # A card is valid until the last day of its expiry month.
    if (year, month) < (today.year, today.month):
        raise CardError(
            CardErrorCode.EXPIRED_CARD,
            "exp_year" if year < today.year else "exp_month",
            "The card has expired.",
        )

    cvc = card.cvc.strip() if isinstance(card.cvc, str) else None
    brand = card_brand(number)
    length = 4 if brand == "amex" else 3
    if cvc is None or len(cvc) != length or not _DIGITS.fullmatch(cvc):
        raise CardError(
            CardErrorCode.INVALID_CVC,
            "cvc",
            f"The security code must be {length} digits"
            + (" for American Express cards." if brand == "amex" else "."),
        )
    return dataclasses.replace(card, number=number, exp_month=month, exp_year=year, cvc=cvc)


class CardPaymentMethod:
    """The ``card`` payment method around a :class:`CardProcessor`.

    Stateless apart from the processor, so one instance serves every request.
    """

    code = "card"
    label = "Credit card"
    capabilities = frozenset(
        {
            Capability.PAY_NOW,
            Capability.CUSTOMER_ACTION,
            Capability.OFF_SESSION,
            Capability.REFUND,
            Capability.CARDS,
        }
    )

    def __init__(self, processor: CardProcessor) -> None:
        if not isinstance(processor, CardProcessor):
            raise TypeError(
                f"{processor!r} does not implement CardProcessor "
                "(tokenize, charge, retrieve, confirm, cancel, refund)"
            )
        self._processor = processor

    @property
    def processor(self) -> CardProcessor:
        return self._processor

    def tokenize(self, card: CardDetails, today: date) -> StoredCard:
        """Validate the card as of ``today`` and exchange it for the processor's token.

        Raises :class:`~gateway.plugin_api.payments.CardError` (code and field:
        ``number``, ``exp_month``, ``exp_year``, ``cvc``) before the processor is
        called; the processor may raise one too if it refuses the card.
        """
        return self._processor.tokenize(_validated(card, today))

    def charge(self, request: ChargeRequest, ledger: Ledger) -> PaymentResult:
        """Charge the request's saved card through the processor; the ledger is not used."""
        if request.card is None:
            return _no_card()
        result = self._processor.charge(
            request.card.token,
            request.amount,
            request.idempotency_key,
            request.description,
            off_session=request.off_session,
        )
        if request.off_session and result.status is PaymentStatus.REQUIRES_ACTION:
            # A processor that ignored off_session: nobody can authenticate, so give it up.
            self._processor.cancel(result.reference or "")
            return PaymentResult(
                PaymentStatus.FAILED,
                reference=result.reference,
                failure=FailureCode.AUTHENTICATION_REQUIRED,
                message="The card asks for authentication, which needs the customer present.",
            )
        return result

    def status(self, request: ChargeRequest, reference: str | None, ledger: Ledger) -> PaymentResult:
        if request.card is None:
            return _no_card()
        return self._processor.retrieve(request.card.token, request.idempotency_key, reference)

    def confirm(self, request: ChargeRequest, reference: str, response: str | None) -> PaymentResult:
        return self._processor.confirm(reference, response)

    def cancel(self, request: ChargeRequest, reference: str | None, ledger: Ledger) -> PaymentResult:
        if reference is None:  # never reached the processor under a reference: ask by key
            return self.status(request, None, ledger)
        return self._processor.cancel(reference)

    def refund(
        self, request: ChargeRequest, reference: str, amount: Money, key: str, ledger: Ledger
    ) -> PaymentResult:
        """Refund through the processor; the ledger is not used."""
        return self._processor.refund(reference, amount, key)

    def __repr__(self) -> str:
        return f"CardPaymentMethod({self._processor!r})"


def _no_card() -> PaymentResult:
    return PaymentResult(
        PaymentStatus.FAILED,
        failure=FailureCode.PROCESSING_ERROR,
        message="A card payment needs a saved card.",
    )


@hookimpl
def register_payment_methods(register):
    register(CardPaymentMethod(SandboxProcessor()))
