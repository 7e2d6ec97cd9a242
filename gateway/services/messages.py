"""Message types and what one message costs: shared by the Message Calculator (estimate)
and usage recording, so both validate and price a message the same way."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from gateway.core.catalog import CreditKind
from gateway.core.errors import (
    DomainError,
    ErrorCode,
    InvalidVolume,
    TextTooLong,
    UnknownCountry,
    UnknownMessageType,
)
from gateway.core.messaging import Channel, normalise_code
from gateway.core.sms import SmsSegments, count_segments
from gateway.plugin_api.messaging import Destination, RateProvider

MAX_SAMPLE_TEXT = 1600  # as the Message Calculator: ten concatenated GSM-7 parts and then some


@dataclass(frozen=True)
class MessageOffer:
    """A message type as the gateway sells it: which credits it draws on."""

    code: str
    name: str
    channel: Channel
    credit_kind: CreditKind
    segmented: bool


EMAIL = MessageOffer("EMAIL", "Email", Channel.EMAIL, CreditKind.EMAIL, segmented=False)


@dataclass(frozen=True)
class MessageCatalog:
    """The message types (Email first) and destinations of the rate provider, with the types each
    destination is offered, indexed once at start-up."""

    types: tuple[MessageOffer, ...]
    destinations: tuple[Destination, ...]
    offered: dict[str, tuple[MessageOffer, ...]]  # per country: the types it has a rate for
    _by_code: dict[str, MessageOffer] = field(init=False, repr=False, compare=False)
    _by_country: dict[str, Destination] = field(init=False, repr=False, compare=False)

    @classmethod
    def of(cls, rates: RateProvider) -> MessageCatalog:
        types = [EMAIL] + [
            MessageOffer(
                m.code,
                m.name,
                m.channel,
                CreditKind.EMAIL if m.channel is Channel.EMAIL else CreditKind.MESSAGING,
                m.segmented,
            )
            for m in rates.message_types()
        ]
        destinations = tuple(rates.destinations())
        offered = {
            d.country: tuple(
                m
                for m in types
                if m.channel is not Channel.EMAIL and rates.credits_per_message(d.country, m.code) is not None
            )
            for d in destinations
        }
        return cls(tuple(types), destinations, offered)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_code", {m.code: m for m in self.types})
        object.__setattr__(self, "_by_country", {d.country: d for d in self.destinations})

    def type(self, code: str) -> MessageOffer | None:
        return self._by_code.get(code)

    def destination(self, country: str) -> Destination | None:
        return self._by_country.get(country)

    def offered_to(self, country: str) -> tuple[MessageOffer, ...]:
        """The message types a destination can be sent, in display order (Email needs none)."""
        return self.offered.get(country, ())


class MessageTypeNotOffered(DomainError):
    """The message type exists but has no rate for the destination (WhatsApp to China):
    ``offered`` lists the types that destination has."""

    code = ErrorCode.MESSAGE_TYPE_NOT_OFFERED

    def __init__(
        self, offer: MessageOffer, destination: Destination, offered: tuple[MessageOffer, ...]
    ) -> None:
        names = ", ".join(m.name for m in offered) or "no message type"
        super().__init__(
            f"{offer.name} is not offered to {destination.name}, which offers {names}", ("message_type",)
        )
        self.offer, self.destination, self.offered = offer, destination, offered


@dataclass(frozen=True)
class MessageCost:
    """What one message of a type to a destination costs, all segments included."""

    offer: MessageOffer
    destination: Destination | None  # None for email
    segments: SmsSegments | None  # the sample text's segments (SMS with a sample text)
    per_message: Decimal  # credits for one whole message

    @property
    def parts(self) -> int:
        return self.segments.segments if self.segments is not None else 1


def message_cost(
    messages: MessageCatalog,
    rates: RateProvider,
    message_type: str,
    country: str | None,
    sample_text: str | None,
) -> MessageCost:
    """The cost of one message, or an :class:`UnknownMessageType`, :class:`UnknownCountry`,
    :class:`MessageTypeNotOffered` or :class:`TextTooLong` naming the field at fault. Pure: reads nothing."""
    if sample_text is not None and len(sample_text) > MAX_SAMPLE_TEXT:
        raise TextTooLong(("sample_text",), len(sample_text), MAX_SAMPLE_TEXT)
    code = normalise_code(message_type)
    offer = messages.type(code)
    if offer is None:
        raise UnknownMessageType(message_type, f"unknown message type {message_type!r}")
    if offer.channel is Channel.EMAIL:
        return MessageCost(offer, None, None, Decimal(1))
    normalised = normalise_code(country)
    if not normalised:
        raise UnknownCountry(None, f"{offer.name} needs a destination country")
    destination = messages.destination(normalised)
    if destination is None:
        raise UnknownCountry(country, f"no messaging rates for destination {country!r}")
    rate = rates.credits_per_message(normalised, code)
    if rate is None:
        raise MessageTypeNotOffered(offer, destination, messages.offered_to(normalised))
    segments = count_segments(sample_text) if offer.segmented and sample_text is not None else None
    parts = segments.segments if segments is not None else 1
    return MessageCost(offer, destination, segments, rate * parts)


@dataclass(frozen=True)
class Estimate:
    """How many whole messages some credits buy (the Message Calculator)."""

    cost: MessageCost
    credits: int
    messages: int | None  # None when messages are free
    credits_left: Decimal | None


def estimate(
    messages: MessageCatalog,
    rates: RateProvider,
    credits: int,
    message_type: str,
    country: str | None,
    sample_text: str | None,
) -> Estimate:
    if credits < 0:
        raise InvalidVolume("credits must not be negative", ("credits",), credits, min=0, max=None, step=None)
    cost = message_cost(messages, rates, message_type, country, sample_text)
    count = int(credits // cost.per_message) if cost.per_message > 0 else None
    left = credits - cost.per_message * count if count is not None else None
    return Estimate(cost, credits, count, left)
