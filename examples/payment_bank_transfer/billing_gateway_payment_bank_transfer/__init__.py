"""Pay by bank transfer: a partner example of a payment method that settles later.

Checkout answers *pending*: the customer gets the seller's bank account, the amount and a
reference to quote, and the order applies once the money is confirmed, by a signed
notification from the bank (``POST /payments/bank_transfer/notifications``) or by an
operator (``billing-gateway payments mark-paid PAYMENT_ID``). A transfer that has not
arrived ``BANK_TRANSFER_EXPIRY_DAYS`` days after checkout expires at the next
reconciliation run (``billing-gateway payments reconcile``, or the server's periodic task).

The method is **stateless**: several gateway processes may serve it and share nothing but
the gateway's database. Everything it answers is derived from the :class:`ChargeRequest`
(the reference from the payment's idempotency key, the deadline from ``requested_at``) and
from its configuration, so asking again always answers the same.

What a bank transfer cannot do, this method does not declare: it takes no money
off-session (it cannot pay renewals or top-ups by itself) and it cannot give money back
(``REFUND`` is not declared: a refund the gateway owes, say because the subscription changed
before the transfer arrived, is recorded as ``REFUND_FAILED`` for an operator to make by
hand).

Configuration is read from environment variables once, when the gateway starts (see
:class:`Settings`); a bad value stops start-up with a message naming the variable.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from standardwebhooks import Webhook, WebhookVerificationError
from stdnum import bic, iban, luhn
from stdnum.exceptions import ValidationError

from gateway.plugin_api import (
    Capability,
    ChargeRequest,
    FailureCode,
    InvalidNotification,
    Ledger,
    Money,
    PaymentMethod,
    PaymentResult,
    PaymentStatus,
    hookimpl,
)

__all__ = [
    "BankTransferMethod",
    "ConfigurationError",
    "Settings",
    "parse_reference",
    "reference_for",
    "register_payment_methods",
]

# -------------------------------------------------------------------------- configuration

# A clearly-marked example account, so that a gateway starts with the plugin installed.
# It is the IBAN of countless documentation pages: never use it for real money.
DEMO_ACCOUNT_HOLDER = "Example Seller GmbH (demo account: do not pay)"
DEMO_IBAN = "DE89370400440532013000"
DEMO_BIC = "COBADEFFXXX"
DEFAULT_EXPIRY_DAYS = 7

ENV_ACCOUNT_HOLDER = "BANK_TRANSFER_ACCOUNT_HOLDER"
ENV_IBAN = "BANK_TRANSFER_IBAN"
ENV_BIC = "BANK_TRANSFER_BIC"
ENV_EXPIRY_DAYS = "BANK_TRANSFER_EXPIRY_DAYS"
ENV_NOTIFICATION_SECRET = "BANK_TRANSFER_NOTIFICATION_SECRET"

MAX_EXPIRY_DAYS = 365


class ConfigurationError(ValueError):
    """A configuration variable has a value the method cannot work with; the message names it."""


@dataclass(frozen=True, slots=True)
class Settings:
    """The seller's account, how long a transfer may take, and the bank's signing secret.

    Built from the environment by :meth:`from_env`; every value is checked there.
    """

    account_holder: str
    iban: str  # compact: no spaces, upper case
    bic: str
    expiry_days: int
    # "whsec_..."; None: notifications are refused. Kept out of repr(), so it reaches no log.
    notification_secret: str | None = field(repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        holder = env.get(ENV_ACCOUNT_HOLDER, DEMO_ACCOUNT_HOLDER).strip()
        if not holder:
            raise ConfigurationError(f"{ENV_ACCOUNT_HOLDER} is empty: set the account holder's name")
        raw_iban = env.get(ENV_IBAN, DEMO_IBAN)
        try:
            account = iban.validate(raw_iban)
        except ValidationError as error:
            raise ConfigurationError(f"{ENV_IBAN}={raw_iban!r} is not a valid IBAN: {error}") from None
        raw_bic = env.get(ENV_BIC, DEMO_BIC)
        try:
            bank = bic.validate(raw_bic)
        except ValidationError as error:
            raise ConfigurationError(f"{ENV_BIC}={raw_bic!r} is not a valid BIC: {error}") from None
        raw_days = env.get(ENV_EXPIRY_DAYS, str(DEFAULT_EXPIRY_DAYS)).strip()
        if not re.fullmatch(r"[0-9]{1,3}", raw_days) or not 1 <= int(raw_days) <= MAX_EXPIRY_DAYS:
            raise ConfigurationError(
                f"{ENV_EXPIRY_DAYS}={raw_days!r} is not a whole number of days from 1 to {MAX_EXPIRY_DAYS}"
            )
        secret = env.get(ENV_NOTIFICATION_SECRET, "").strip() or None
        if secret is not None:
            _webhook(secret)  # refuse a malformed secret at start-up, not at the first notification
        return cls(holder, account, bank, int(raw_days), secret)


def _webhook(secret: str) -> Webhook:
    if not secret.startswith("whsec_"):
        raise ConfigurationError(
            f"{ENV_NOTIFICATION_SECRET} must be a Standard Webhooks secret: 'whsec_' and base64"
        )
    try:
        webhook = Webhook(secret)
    # binascii.Error (a ValueError) for bad base64; the library's EmptyWebhookSecretError, which
    # it does not export, for "whsec_" alone: both mean the operator must fix the variable.
    except Exception as error:  # noqa: BLE001
        raise ConfigurationError(
            f"{ENV_NOTIFICATION_SECRET} is not a usable Standard Webhooks secret: {type(error).__name__}"
        ) from None
    return webhook


# -------------------------------------------------------------------------- references

# Crockford's base 32: no I, L, O or U, so a reference read aloud or typed by hand is unambiguous.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_TYPOS = str.maketrans({"O": "0", "I": "1", "L": "1"})
PREFIX = "BG"
_BODY = 8  # 40 bits of a digest: about a trillion references


def reference_for(idempotency_key: str) -> str:
    """The transfer reference of the payment made with ``idempotency_key``: ``BG-XXXX-XXXX-C``.

    Deterministic (the same key always gives the same reference, in every process) and short
    enough to type into a banking app. ``C`` is a Luhn mod 32 check character: a mistyped
    character or two swapped neighbours are caught by :func:`parse_reference`. Two payments
    share a reference only if 40 bits of their keys' SHA-256 collide; the gateway then settles
    the newer one, and the amount must match as well.
    """
    digest = int.from_bytes(hashlib.sha256(idempotency_key.encode("utf-8")).digest()[:5], "big")
    body = "".join(ALPHABET[(digest >> (5 * i)) & 31] for i in reversed(range(_BODY)))
    check = luhn.calc_check_digit(body, alphabet=ALPHABET)
    return f"{PREFIX}-{body[:4]}-{body[4:]}-{check}"


def parse_reference(text: str) -> str | None:
    """A reference as a customer or a bank wrote it (any case, with or without spaces and
    dashes, ``O`` for ``0``), in the canonical form of :func:`reference_for`; None if it is
    not one (wrong length, prefix or check character)."""
    compact = "".join(ch for ch in text.upper() if ch.isalnum())
    if not compact.startswith(PREFIX):
        return None
    code = compact[len(PREFIX) :].translate(_TYPOS)
    if len(code) != _BODY + 1 or any(ch not in ALPHABET for ch in code):
        return None
    try:
        luhn.validate(code, alphabet=ALPHABET)
    except ValidationError:
        return None
    return f"{PREFIX}-{code[:4]}-{code[4:_BODY]}-{code[_BODY]}"


# -------------------------------------------------------------------------- the method


def _failed(message: str, failure: FailureCode = FailureCode.PROCESSING_ERROR) -> PaymentResult:
    return PaymentResult(PaymentStatus.FAILED, failure=failure, message=message)


class BankTransferMethod:
    """The customer transfers the money; the bank (or an operator) tells the gateway.

    Keeps no state: see the module's docstring.
    """

    code = "bank_transfer"
    label = "Bank transfer"
    # Only SETTLE_LATER: no PAY_NOW (nothing is taken at checkout), no OFF_SESSION (a transfer
    # needs the customer), no REFUND (the gateway cannot send money back through a reference).
    capabilities = frozenset({Capability.SETTLE_LATER})

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._webhook = _webhook(settings.notification_secret) if settings.notification_secret else None

    def instructions(self, request: ChargeRequest) -> PaymentResult:
        """PENDING with how to pay: the same answer for the same request, every time."""
        reference = reference_for(request.idempotency_key)
        return PaymentResult(
            PaymentStatus.PENDING,
            reference=reference,
            instructions={
                "account_holder": self.settings.account_holder,
                "iban": iban.format(self.settings.iban),
                "bic": self.settings.bic,
                "amount": str(request.amount.amount),
                "currency": request.amount.currency,
                "reference": reference,
            },
            expires_at=request.requested_at + timedelta(days=self.settings.expiry_days),
            message=(
                f"Transfer {request.amount} quoting {reference} within "
                f"{self.settings.expiry_days} days; the order applies once the money arrives."
            ),
        )

    def charge(self, request: ChargeRequest, ledger: Ledger) -> PaymentResult:
        return self.instructions(request)

    def status(self, request: ChargeRequest, reference: str | None, ledger: Ledger) -> PaymentResult:
        # Nothing moves until the customer pays, and only the bank's notification (or an
        # operator) says that they did. So a payment this method never answered (the gateway
        # crashed before recording the answer) is not FAILED: it is still just instructions,
        # the same ones charge() would have given, and the customer can still pay them.
        return self.instructions(request)

    def confirm(self, request: ChargeRequest, reference: str, response: str | None) -> PaymentResult:
        # Never called: the method does not declare CUSTOMER_ACTION.
        return _failed("bank transfers need no confirmation")

    def cancel(self, request: ChargeRequest, reference: str | None, ledger: Ledger) -> PaymentResult:
        # The bank cannot stop a customer's transfer. Giving up means only that the gateway no
        # longer settles the payment: money that arrives after this must be sent back by an
        # operator (the notification is answered, but the expired payment stays expired).
        return _failed("the transfer did not arrive in time", FailureCode.CANCELED)

    def refund(
        self, request: ChargeRequest, reference: str, amount: Money, key: str, ledger: Ledger
    ) -> PaymentResult:
        # Never called: the method does not declare REFUND. An operator refunds by hand.
        return _failed("bank transfers are refunded by an operator, not by the gateway")

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> tuple[str, PaymentResult]:
        """The bank's notice of incoming funds, signed per Standard Webhooks with
        ``BANK_TRANSFER_NOTIFICATION_SECRET``::

            {"reference": "BG-XXXX-XXXX-C", "amount": "123.45", "currency": "EUR"}

        The amount is a decimal string, never a JSON number. The answer is SUCCEEDED with the
        amount received: the gateway settles the payment only if it is the payment's amount.
        """
        if self._webhook is None:
            raise InvalidNotification(
                f"notifications are off: {ENV_NOTIFICATION_SECRET} is not set "
                "(settle with `billing-gateway payments mark-paid`)"
            )
        try:
            self._webhook.verify(body, dict(headers), json_parse=False)
        except WebhookVerificationError as error:
            raise InvalidNotification(f"the signature does not verify: {error}") from None
        try:
            notice = json.loads(body, parse_float=Decimal, parse_int=Decimal)
        except (ValueError, UnicodeDecodeError):
            raise InvalidNotification("the body is not JSON") from None
        if not isinstance(notice, dict):
            raise InvalidNotification("the body is not a JSON object")
        given, amount, currency = (notice.get(name) for name in ("reference", "amount", "currency"))
        if not (isinstance(given, str) and isinstance(amount, str) and isinstance(currency, str) and given):
            raise InvalidNotification("reference, amount and currency must be strings")
        try:
            paid = Money(amount, currency)
        except ValueError as error:  # not a decimal, not finite, or an unknown currency
            raise InvalidNotification(f"not an amount of money: {error}") from None
        # A reference that is not one of ours is still an authentic notice: the gateway answers
        # that it has no such payment, and an operator matches the money by hand.
        reference = parse_reference(given) or given.strip()
        return reference, PaymentResult(PaymentStatus.SUCCEEDED, reference=reference, amount=paid)

    def __repr__(self) -> str:
        return (
            f"BankTransferMethod(iban={iban.format(self.settings.iban)!r}, days={self.settings.expiry_days})"
        )


@hookimpl
def register_payment_methods(register: Callable[[PaymentMethod], None]) -> None:
    """Offer bank transfers, configured from the environment (see :class:`Settings`)."""
    register(BankTransferMethod(Settings.from_env()))
