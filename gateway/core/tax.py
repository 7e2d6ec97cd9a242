"""Tax: the values the pricing core hands a tax calculator and gets back, and its contract.

The pricing core calls the tax calculator on every quote, so the contract lives
beside it; tax plugins implement :class:`TaxCalculator` (see :mod:`gateway.plugin_api`).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import NamedTuple, Protocol, runtime_checkable

from gateway.core.money import Money
from gateway.core.records import same_type_equality


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
