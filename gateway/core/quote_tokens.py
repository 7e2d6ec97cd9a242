"""Signed quote tokens: what checkout needs of a confirmed quote, bound by an HMAC.

A quote names its inputs (plan, both credit limits), the total due now and when it expires;
its token signs exactly those and the workspace it was made for, so checkout can take the
token instead of the inputs sent back, and trust the expiry it carries. Nothing is stored:
the signature is the proof. Pure: no clock, no database; keys are passed in.

Format: ``q1.<key id>.<payload>.<signature>``, each part base64url without padding. The
payload is a compact JSON array (see :func:`_encode`); the signature is HMAC-SHA256 over
everything before it, so the version and the key id are signed too. The key id is derived
from the key (never the key itself), which lets a gateway verify tokens of its previous
key while it signs with a new one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

from gateway.core.errors import DomainError, ErrorCode
from gateway.core.money import Money, UnknownCurrency

VERSION = "q1"
MIN_KEY_BYTES = 32  # an HMAC-SHA256 key of at least the hash's size
MAX_TOKEN_LENGTH = 1024  # a real token has about 150 characters: longer input is refused unread
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MICROSECOND = timedelta(microseconds=1)
FIELD = ("quote_token",)


class InvalidQuoteToken(DomainError):
    """The token is not one this gateway signed for this workspace (altered, malformed, of a
    key no longer configured, or another workspace's). Nothing was done."""

    code = ErrorCode.INVALID_QUOTE_TOKEN

    def __init__(self, reason: str) -> None:
        super().__init__(f"the quote token is not valid ({reason}); ask for a new quote", FIELD)


@dataclass(frozen=True)
class QuoteClaims:
    """What a quote token vouches for."""

    workspace_id: str
    plan_code: str
    email_credits: int
    messaging_credits: int
    total: Money  # due now
    expires_at: datetime


@dataclass(frozen=True)
class SigningKey:
    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.secret) < MIN_KEY_BYTES:
            raise ValueError(f"a quote signing key has at least {MIN_KEY_BYTES} bytes")

    @property
    def id(self) -> str:
        """Names the key in its tokens without revealing it."""
        digest = hashlib.sha256(b"billing-gateway quote key id\x00" + self.secret).digest()
        return _b64(digest[:6])


@dataclass(frozen=True)
class QuoteKeys:
    """The key that signs new tokens, and older keys that still verify theirs (rotation)."""

    current: SigningKey
    previous: tuple[SigningKey, ...] = ()

    def sign(self, claims: QuoteClaims) -> str:
        head = f"{VERSION}.{self.current.id}.{_b64(_encode(claims))}"
        return f"{head}.{_b64(_mac(self.current, head))}"

    def verify(self, token: str) -> QuoteClaims:
        """The claims of a token signed by one of these keys; raises :class:`InvalidQuoteToken`.
        The expiry and the workspace are the caller's to check."""
        if len(token) > MAX_TOKEN_LENGTH:
            raise InvalidQuoteToken("too long")
        parts = token.split(".")
        if len(parts) != 4 or parts[0] != VERSION:
            raise InvalidQuoteToken("not a quote token of this gateway")
        version, key_id, payload, signature = parts
        key = next((k for k in (self.current, *self.previous) if k.id == key_id), None)
        if key is None:
            raise InvalidQuoteToken("signed with a key this gateway no longer uses")
        given = _unb64(signature)
        if given is None or not hmac.compare_digest(given, _mac(key, f"{version}.{key_id}.{payload}")):
            raise InvalidQuoteToken("its signature does not match")
        claims = _decode(_unb64(payload))
        if claims is None:  # signed by us, so only a bug (or another version) gets here
            raise InvalidQuoteToken("unreadable content")
        return claims


def _mac(key: SigningKey, head: str) -> bytes:
    return hmac.new(key.secret, head.encode("ascii"), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes | None:
    """The bytes of canonical base64url only: a decoder ignores a last character's spare bits,
    and a token that differs from the one signed in any character is refused."""
    if not text or not text.isascii():
        return None
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    return data if _b64(data) == text else None


def _encode(claims: QuoteClaims) -> bytes:
    """The canonical encoding: one JSON array in a fixed order, the total as its exact decimal
    text at the currency's precision, the expiry in whole microseconds since the epoch."""
    values = [
        claims.workspace_id,
        claims.plan_code,
        claims.email_credits,
        claims.messaging_credits,
        str(claims.total.amount),
        claims.total.currency,
        (claims.expires_at - _EPOCH) // _ONE_MICROSECOND,
    ]
    return json.dumps(values, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def _decode(data: bytes | None) -> QuoteClaims | None:
    try:
        values = json.loads(data) if data is not None else None
        if not isinstance(values, list) or len(values) != 7:
            return None
        workspace_id, plan_code, email, messaging, amount, currency, expires = values
        if not (
            isinstance(workspace_id, str)
            and isinstance(plan_code, str)
            and all(type(n) is int for n in (email, messaging, expires))
            and isinstance(amount, str)
            and isinstance(currency, str)
        ):
            return None
        return QuoteClaims(
            workspace_id,
            plan_code,
            email,
            messaging,
            Money(Decimal(amount), currency),
            _EPOCH + expires * _ONE_MICROSECOND,
        )
    except (ValueError, InvalidOperation, UnknownCurrency, OverflowError):
        return None
