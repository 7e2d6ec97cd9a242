"""The values and interfaces that cross the plugin boundary.

Plugins never see ORM rows, GraphQL objects or dicts: they get immutable,
typed values (frozen dataclasses, and named tuples for the two values of the
per-quote tax call) and enums from this module, and hand back provider objects
that satisfy one of the protocols below. Hook specifications live in
:mod:`gateway.hookspecs`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, NamedTuple, Protocol, TypeVar, runtime_checkable

from gateway.money import Money

# ------------------------------------------------------------ value tuples

_Record = TypeVar("_Record", bound=tuple)  # type: ignore[type-arg]


def same_type_equality(cls: type[_Record]) -> type[_Record]:
    """Make a NamedTuple compare like a frozen dataclass: equal only to the same type.

    Values created on every quote (tax requests and lines here, the priced
    order's parts in :mod:`gateway.pricing`) are NamedTuples rather than frozen
    dataclasses: immutable and typed like them, but several times cheaper to
    construct. The pitfall of a tuple is that it is one: by default it would
    equal a plain tuple, or another NamedTuple, holding the same fields. This
    restores the dataclass behaviour for ``==`` and ``!=`` (``hash`` stays the
    tuple's, which is consistent with it). The rest is still tuple behaviour,
    so code must not rely on it: values unpack, iterate, index, have a
    ``len()`` and order like tuples, and ``dataclasses.replace``/``asdict``
    do not apply (``_replace``/``_asdict`` do).
    """

    def __eq__(self: tuple, other: object) -> bool:  # type: ignore[type-arg]
        if other.__class__ is self.__class__:
            return tuple.__eq__(self, other)  # type: ignore[arg-type]
        # False, not NotImplemented, for other tuples: tuple.__eq__ would call them equal.
        return False if isinstance(other, tuple) else NotImplemented

    def __ne__(self: tuple, other: object) -> bool:  # type: ignore[type-arg]
        equal = __eq__(self, other)
        return equal if equal is NotImplemented else not equal

    cls.__eq__ = __eq__  # type: ignore[assignment,method-assign]
    cls.__ne__ = __ne__  # type: ignore[assignment,method-assign]
    cls.__hash__ = tuple.__hash__  # type: ignore[assignment,method-assign]
    return cls


# --------------------------------------------------------------------- tax


class CustomerKind(enum.Enum):
    PERSON = "person"
    COMPANY = "company"


@dataclass(frozen=True, slots=True)
class TaxCustomer:
    """Who is buying: enough of the billing details to decide the tax treatment."""

    kind: CustomerKind
    country: str  # ISO 3166-1 alpha-2, upper case
    tax_id: str | None = None


class TaxTreatment(enum.Enum):
    STANDARD = "standard"  # tax charged at the rate of the place of supply
    REVERSE_CHARGE = "reverse_charge"  # the customer accounts for the tax
    OUT_OF_SCOPE = "out_of_scope"  # the supply is outside this tax's territory


@same_type_equality
class TaxRequest(NamedTuple):
    """Tax for one taxable base, on one date (the invoice or renewal date).

    Immutable; a NamedTuple (see :func:`same_type_equality`) since each quote builds two.
    """

    seller_country: str
    customer: TaxCustomer
    taxable_base: Money
    on: date


@same_type_equality
class TaxLine(NamedTuple):
    """One tax, computed once on its whole taxable base.

    Immutable; a NamedTuple (see :func:`same_type_equality`) since each quote builds two.
    """

    name: str  # "VAT 19% (DE)"
    jurisdiction: str  # country code whose rate applies
    rate: Decimal  # 0.19 for 19 %
    base: Money
    amount: Money  # rounded to the minor unit
    treatment: TaxTreatment
    note: str | None = None  # legal note printed on the invoice, e.g. for reverse charge


class InvalidTaxId(ValueError):
    """The customer's tax ID failed a format or checksum check."""

    def __init__(self, tax_id: str, reason: str) -> None:
        super().__init__(f"invalid tax ID {tax_id!r}: {reason}")
        self.tax_id = tax_id
        self.reason = reason


@runtime_checkable
class TaxCalculator(Protocol):
    """Computes the tax lines of an order. Pure: no I/O on the quote path."""

    code: str

    def calculate(self, request: TaxRequest) -> Sequence[TaxLine]:
        """The tax lines for ``request``; empty when no tax applies.

        Raises :class:`InvalidTaxId` when the customer's tax ID is malformed.
        """
        ...


# --------------------------------------------------------------- messaging


class Channel(enum.Enum):
    EMAIL = "email"
    SMS = "sms"
    WHATSAPP = "whatsapp"


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


# Payment methods' values and protocols are in gateway.payments.


# ------------------------------------------------------------------ events


@dataclass(frozen=True, slots=True)
class Event:
    """A committed billing event, as integrators receive it."""

    id: str
    type: str  # "plan_change.applied", ...
    workspace_id: str
    sequence: int  # per workspace, gap-free, starting at 1
    occurred_at: datetime
    payload: Mapping[str, Any] = field(default_factory=dict)
    version: int = 1  # version of the payload schema of this type


@runtime_checkable
class EventListener(Protocol):
    """Receives each committed event once, in sequence order per workspace."""

    code: str

    def handle(self, event: Event) -> None: ...


def normalise_code(raw: str | None) -> str:
    """A country or message-type code as clients may type it: surrounding blanks and
    lower case are forgiven. Only ASCII is upper-cased, so that look-alikes such as
    "ſms" or the ligature "ﬆ" (whose upper case is ASCII) never match a code."""
    stripped = (raw or "").strip()
    return stripped.upper() if stripped.isascii() else stripped
