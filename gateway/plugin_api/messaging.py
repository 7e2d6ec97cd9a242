"""Messaging rates: the values and protocol that rate plugins implement."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol, runtime_checkable

from gateway.core.messaging import Channel


@dataclass(frozen=True, slots=True)
class MessageType:
    code: str  # "SMS", "WHATSAPP_MARKETING", ...
    name: str
    channel: Channel
    segmented: bool = False  # True when a long text is sent (and priced) as several parts


@dataclass(frozen=True, slots=True)
class Destination:
    country: str  # ISO 3166-1 alpha-2
    name: str


@runtime_checkable
class RateProvider(Protocol):
    """Prices messages in messaging credits per destination and message type."""

    code: str

    def message_types(self) -> Sequence[MessageType]:
        """The message types this provider prices, in display order."""
        ...

    def destinations(self) -> Sequence[Destination]:
        """The destination countries this provider prices, in display order."""
        ...

    def credits_per_message(self, country: str, message_type: str) -> Decimal | None:
        """Credits one message (one segment for segmented types) costs, or None if not priced."""
        ...
