"""Checks on free text that customers type."""

from __future__ import annotations

import unicodedata


def has_control_characters(text: str, allowed: str = "") -> bool:
    """Whether ``text`` holds control characters (NUL, escapes, ...) other than ``allowed``."""
    return any(unicodedata.category(ch) == "Cc" and ch not in allowed for ch in text)
