"""Messaging channels and the codes clients type for countries and message types."""

from __future__ import annotations

import enum


class Channel(enum.Enum):
    EMAIL = "email"
    SMS = "sms"
    WHATSAPP = "whatsapp"


def normalise_code(raw: str | None) -> str:
    """A country or message-type code as clients may type it: surrounding blanks and
    lower case are forgiven. Only ASCII is upper-cased, so that look-alikes such as
    "ſms" or the ligature "ﬆ" (whose upper case is ASCII) never match a code."""
    stripped = (raw or "").strip()
    return stripped.upper() if stripped.isascii() else stripped
