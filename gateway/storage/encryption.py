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

import hashlib
import threading
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken

PREFIX = "fernet:"


class EncryptionError(Exception):
    """A stored value cannot be decrypted with the configured keys, or no key is configured."""


def key_id(key: str) -> str:
    return hashlib.sha256(key.encode("ascii")).hexdigest()[:8]


def check_key(key: str) -> str:
    """The key as configured, or ValueError if it is not a Fernet key (32 bytes, url-safe base64)."""
    try:
        Fernet(key.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise ValueError("not a Fernet key (32 random bytes in url-safe base64, 44 characters)") from None
    return key


def new_key() -> str:
    return Fernet.generate_key().decode("ascii")


class Keyring:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[str, Fernet] = {}
        self._current: str | None = None

    def configure(self, keys: Sequence[str]) -> None:
        """Encrypt with ``keys[0]`` from now on; decrypt with these and those configured before."""
        if not keys:
            raise EncryptionError("no encryption key given")
        with self._lock:
            for key in keys:
                self._keys.setdefault(key_id(key), Fernet(check_key(key).encode("ascii")))
            self._current = key_id(keys[0])

    @property
    def current(self) -> str:
        """The id of the key that encrypts."""
        if self._current is None:
            raise EncryptionError("no encryption key is configured (the gateway configures it when built)")
        return self._current

    def encrypt(self, plain: str) -> str:
        current = self.current
        token = self._keys[current].encrypt(plain.encode("utf-8")).decode("ascii")
        return f"{PREFIX}{current}:{token}"

    def decrypt(self, stored: str) -> str:
        """The plain value; a value stored before encryption (no prefix) is returned as it is."""
        if not stored.startswith(PREFIX):
            return stored
        kid, _, token = stored[len(PREFIX) :].partition(":")
        fernet = self._keys.get(kid)
        if fernet is None:
            raise EncryptionError(
                f"a secret is encrypted with key {kid}, which is not in BILLING_GATEWAY_ENCRYPTION_KEYS"
            )
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
