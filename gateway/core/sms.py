"""Count the SMS segments (billable parts) of a message text.

SMS is priced per segment, so the Message Calculator calls
:func:`count_segments` on every keystroke. It is pure, allocation-light and
works on precomputed frozensets; the common cases (no escaped characters, no
emoji) never loop in Python.

Rules (3GPP TS 23.038, formerly GSM 03.38):

* If every character is in the GSM 7-bit default alphabet or its basic
  extension table, the message is sent as **GSM-7**. Extension characters
  (``^ { } \\ [ ~ ] | €`` and form feed) are sent as ESC + character, so they
  cost two septets. One SMS holds 160 septets; a longer message is split into
  parts of 153 septets (7 septets go to the concatenation header), and an
  escape pair is never split across two parts.
* Otherwise the whole message is sent as **UCS-2** (UTF-16 in practice): one
  SMS holds 70 code units, parts hold 67, and a surrogate pair (most emoji)
  is never split across two parts.
* An empty text is still one (empty) SMS if sent: ``segments=1``,
  ``characters=0``. Callers that must not charge for nothing should check
  for an empty text themselves.

The alphabet is the strict standard one: ``Ç`` (0x09) is GSM-7, ``ç`` is not,
and no look-alike substitution (``á`` → ``a``) is done, because a quote must
never be lower than what the carrier will bill.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "GSM7_BASIC",
    "GSM7_EXTENSION",
    "SmsEncoding",
    "SmsSegments",
    "count_segments",
]

# The GSM 03.38 default alphabet, in code order (0x00-0x7F). 0x1B is the
# escape to the extension table, not a character a user can type, so it is
# left out.
GSM7_BASIC: frozenset[str] = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
# The basic extension table: each costs two septets (ESC + code).
GSM7_EXTENSION: frozenset[str] = frozenset("\f^{}\\[~]|€")
_GSM7_ALL: frozenset[str] = GSM7_BASIC | GSM7_EXTENSION

GSM7_SINGLE = 160  # septets in a message sent as one SMS
GSM7_PART = 153  # septets per part of a concatenated message
UCS2_SINGLE = 70  # UTF-16 code units in a message sent as one SMS
UCS2_PART = 67  # UTF-16 code units per part of a concatenated message


class SmsEncoding(enum.Enum):
    GSM_7 = "gsm_7"
    UCS_2 = "ucs_2"


@dataclass(frozen=True, slots=True)
class SmsSegments:
    """How a text would be sent: its encoding, its length in that encoding and its part count."""

    encoding: SmsEncoding
    characters: int  # septets for GSM-7, UTF-16 code units for UCS-2
    segments: int  # >= 1


def count_segments(text: str) -> SmsSegments:
    """The encoding, length and number of SMS segments needed to send ``text``."""
    if _GSM7_ALL.issuperset(text):
        # str.count runs in C; ten calls beat a Python loop over the text.
        escaped = sum(text.count(ch) for ch in GSM7_EXTENSION)
        septets = len(text) + escaped
        if septets <= GSM7_SINGLE:
            segments = 1
        elif not escaped:
            segments = -(-septets // GSM7_PART)
        else:
            segments = _pack((2 if ch in GSM7_EXTENSION else 1 for ch in text), GSM7_PART)
        return SmsSegments(SmsEncoding.GSM_7, septets, segments)

    # "surrogatepass" keeps a lone surrogate countable (one code unit) instead of raising.
    units = len(text.encode("utf-16-le", "surrogatepass")) // 2
    if units <= UCS2_SINGLE:
        segments = 1
    elif units == len(text):  # no surrogate pairs: parts can be cut anywhere
        segments = -(-units // UCS2_PART)
    else:
        segments = _pack((2 if ch > "\uffff" else 1 for ch in text), UCS2_PART)
    return SmsSegments(SmsEncoding.UCS_2, units, segments)


def _pack(costs: Iterable[int], capacity: int) -> int:
    """Parts needed to hold ``costs`` in order.

    A unit that would straddle a part boundary (escape or surrogate pair) moves whole to the next part.
    """
    parts, used = 1, 0
    for cost in costs:
        used += cost
        if used > capacity:
            parts += 1
            used = cost
    return parts
