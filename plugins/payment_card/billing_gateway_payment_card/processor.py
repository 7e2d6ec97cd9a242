"""The card-processor adapter: what a real processor (Stripe, Adyen, ...) must implement.

:class:`billing_gateway_payment_card.CardPaymentMethod` validates the card and
then talks to a :class:`CardProcessor` only. An adapter is a thin translation
layer between these four calls and the processor's API; it keeps no card data.

Rules every adapter follows
---------------------------
* **No card data kept or leaked.** The card number and CVC are only in the
  :class:`~gateway.plugin_api.payments.CardDetails` handed to :meth:`CardProcessor.tokenize`.
  They must never appear in a token, a reference, a message, an exception, a log
  line or anything the adapter returns.
* **FAILED moves no money.** Return ``PaymentStatus.FAILED`` only when the
  processor said, definitively, that nothing was taken (a decline, a refusal).
* **An unknown outcome raises.** A timeout, a connection error or a 5xx leaves
  the outcome unknown: raise (any exception) instead of returning FAILED. The
  gateway keeps the payment *pending* (it was recorded before the call) and its
  reconciliation run asks :meth:`CardProcessor.retrieve` later, with the *same*
  idempotency key, which is safe because :meth:`CardProcessor.charge` is
  idempotent.
* **Every network call has a time limit** (connect and read timeouts); a
  request never blocks a gateway worker indefinitely.
* **Thread-safe and share-nothing.** One adapter instance serves every request
  of a process, and several gateway processes may run side by side with only the
  database in common: keep no per-payment state in memory.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from gateway.plugin_api import CardDetails, Money, PaymentResult, StoredCard

__all__ = ["CardProcessor", "card_brand"]


@runtime_checkable
class CardProcessor(Protocol):
    """A card processor, as seen by the ``card`` payment method."""

    def tokenize(self, card: CardDetails) -> StoredCard:
        """Exchange a card for the processor's reusable token.

        ``card`` has already been validated and normalised by the payment method:
        the number is ASCII digits only and passes the Luhn check, ``exp_year``
        has four digits, the card is not expired and the CVC has the brand's
        length. Return a :class:`~gateway.plugin_api.payments.StoredCard` whose ``token``
        the processor accepts in :meth:`charge`, with the brand (lower case:
        ``visa``, ``mastercard``, ``amex``...), the last four digits, the expiry
        and a fingerprint that is the same for the same card number (and reveals
        nothing about it). Raise :class:`~gateway.plugin_api.payments.CardError` if the
        processor refuses the card.
        """
        ...

    def charge(
        self, token: str, amount: Money, idempotency_key: str, description: str, off_session: bool = False
    ) -> PaymentResult:
        """Take ``amount`` (positive, rounded to the minor unit) from the card behind ``token``.

        Idempotent per ``idempotency_key``: a second call with the same key
        (after a crash, a timeout, a concurrent retry) returns the first call's
        result and reference and never charges twice. Answer SUCCEEDED with the
        processor's charge reference; FAILED with a
        :class:`~gateway.plugin_api.payments.FailureCode` and a message safe to show the
        customer (and only if no money moved); or REQUIRES_ACTION with a
        reference and a ``next_action`` (e.g. a 3-D Secure URL) when the
        customer must authenticate first. With ``off_session`` (a renewal: the
        customer is away) never REQUIRES_ACTION: FAILED ``authentication_required``
        instead. Refuse an amount that is not positive or not rounded with FAILED
        ``processing_error``.
        """
        ...

    def retrieve(self, token: str, idempotency_key: str, reference: str | None) -> PaymentResult:
        """Where the charge made with ``idempotency_key`` stands (``reference`` if known).
        A charge the processor never received is FAILED ``processing_error``."""
        ...

    def confirm(self, reference: str, challenge_response: str | None) -> PaymentResult:
        """Finish a charge that answered REQUIRES_ACTION, after the customer's challenge.

        Returns SUCCEEDED, or FAILED (``authentication_failed`` when the
        customer did not authenticate). Confirming the same reference again
        returns the same answer and never charges twice. An unknown reference is
        FAILED ``processing_error``.
        """
        ...

    def cancel(self, reference: str) -> PaymentResult:
        """Cancel a charge still waiting for the customer: FAILED ``canceled`` once it can no
        longer succeed, or SUCCEEDED if it succeeded first."""
        ...

    def refund(self, reference: str, amount: Money, idempotency_key: str) -> PaymentResult:
        """Give back ``amount`` (positive, rounded, at most what is left) of a succeeded charge.

        Idempotent per ``idempotency_key``. SUCCEEDED carries the refund's own reference. A
        refund of a charge that did not succeed, or of an unknown reference, is FAILED and
        moves no money.
        """
        ...


# Issuer identification number ranges: (brand, [(low, high) prefixes of equal length]).
# The order matters: the first match wins, so more specific ranges come first.
_BRAND_RANGES: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("amex", (("34", "34"), ("37", "37"))),
    ("diners", (("300", "305"), ("36", "36"), ("38", "39"))),
    ("jcb", (("3528", "3589"),)),
    ("discover", (("6011", "6011"), ("644", "649"), ("65", "65"), ("622126", "622925"))),
    ("unionpay", (("62", "62"),)),
    ("mastercard", (("51", "55"), ("2221", "2720"))),
    ("maestro", (("50", "50"), ("56", "58"), ("6", "6"))),
    ("visa", (("4", "4"),)),
)


def card_brand(number: str) -> str:
    """The card brand from the number's prefix, lower case; ``"unknown"`` if none matches.

    ``number`` is digits only. For adapters whose processor does not report the
    brand, and for the brand-dependent CVC length.
    """
    for brand, ranges in _BRAND_RANGES:
        for low, high in ranges:
            prefix = number[: len(low)]
            if len(prefix) == len(low) and low <= prefix <= high:
                return brand
    return "unknown"
