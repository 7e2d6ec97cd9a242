"""Secrets at rest: values the gateway must read back (webhook signing secrets) are stored
encrypted, with keys from the environment that can be rotated.

``BILLING_GATEWAY_ENCRYPTION_KEYS`` lists Fernet keys (``cryptography``'s authenticated
encryption: AES-128-CBC with HMAC-SHA256), newest first: values are encrypted with the first
and decrypted with whichever key they name. A stored value is ``fernet:<key id>:<token>``, the
key id being the first 8 hex digits of the key's SHA-256, so that ``billing-gateway webhooks
reencrypt`` finds the values not yet under the newest key, and an unknown key id is a clear error.

Without the variable the gateway generates a key and keeps it in the database (the
``encryption_keys`` table), with a warning at every start: the demo works, but a copy of the
database holds the key beside what it protects. Set the variable for anything real; the key
from the database can be listed after the new one until ``reencrypt`` has run.

The keyring is the process's (:data:`keyring`): the column type that encrypts and decrypts
(:class:`gateway.storage.db.EncryptedText`) sees no session. Configuring adds keys and makes the
first of them the one that encrypts; keys configured earlier still decrypt.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.fernet import Fernet

PREFIX = "fernet:"


class EncryptionError(Exception):
    """A stored value cannot be decrypted with the configured keys, or no key is configured."""


def key_id(key: str) -> str:
    return hashlib.sha256(key.encode("ascii")).hexdigest()[:8]


def check_key(key: str) -> str:
    """The key as configured, or ValueError if it is not a Fernet key (32 bytes, url-safe base64,
    as ``Fernet`` itself checks it)."""
    try:
        raw = base64.urlsafe_b64decode(key.encode("ascii"))
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raw = b""
    if len(raw) != 32:
        raise ValueError("not a Fernet key (32 random bytes in url-safe base64, 44 characters)")
    return key


def new_key() -> str:
    """A new Fernet key: 32 random bytes in url-safe base64 (what ``Fernet.generate_key`` makes)."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode("ascii")


def _fernet(key: str) -> Fernet:
    # cryptography (about 7 MiB) is imported when a secret is first encrypted or decrypted, not
    # when the server starts: most requests never touch one.
    from cryptography.fernet import Fernet

    return Fernet(key.encode("ascii"))


class Keyring:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[str, str] = {}  # by key id
        self._ciphers: dict[str, Fernet] = {}
        self._current: str | None = None

    def configure(self, keys: Sequence[str]) -> None:
        """Encrypt with ``keys[0]`` from now on; decrypt with these and those configured before."""
        if not keys:
            raise EncryptionError("no encryption key given")
        with self._lock:
            for key in keys:
                self._keys.setdefault(key_id(key), check_key(key))
            self._current = key_id(keys[0])

    @property
    def current(self) -> str:
        """The id of the key that encrypts."""
        if self._current is None:
            raise EncryptionError("no encryption key is configured (the gateway configures it when built)")
        return self._current

    def _cipher(self, kid: str) -> Fernet | None:
        with self._lock:
            cipher = self._ciphers.get(kid)
            if cipher is None and kid in self._keys:
                cipher = self._ciphers[kid] = _fernet(self._keys[kid])
            return cipher

    def encrypt(self, plain: str) -> str:
        current = self.current
        cipher = self._cipher(current)
        assert cipher is not None
        token = cipher.encrypt(plain.encode("utf-8")).decode("ascii")
        return f"{PREFIX}{current}:{token}"

    def decrypt(self, stored: str) -> str:
        """The plain value; a value stored before encryption (no prefix) is returned as it is."""
        if not stored.startswith(PREFIX):
            return stored
        kid, _, token = stored[len(PREFIX) :].partition(":")
        fernet = self._cipher(kid)
        if fernet is None:
            raise EncryptionError(
                f"a secret is encrypted with key {kid}, which is not in BILLING_GATEWAY_ENCRYPTION_KEYS"
            )
        from cryptography.fernet import InvalidToken

        try:
            return fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except InvalidToken:
            raise EncryptionError(f"a secret encrypted with key {kid} does not decrypt (altered?)") from None

    def is_current(self, stored: str) -> bool:
        """Whether ``stored`` is encrypted with the key that encrypts now."""
        return stored.startswith(f"{PREFIX}{self.current}:")


keyring = Keyring()


class Concealed(str):
    """A secret read back from the database (a webhook signing secret, an encryption or signing
    key): a ``str`` in every way but its ``repr``, which hides the value.

    Whatever shows objects by their ``repr`` then shows ``'<concealed>'``: SQLAlchemy's row log
    at DEBUG (rows are logged after their columns' types have processed them, so an encrypted
    column's row shows the decrypted value), a ``%r`` in a log call, a debugger's or an error
    reporter's view of local variables. Code that needs the value uses it as the string it is
    (``str()``, formatting with ``%s``, comparing, encoding)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'<concealed>'"
