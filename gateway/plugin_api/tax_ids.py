"""Checking a customer's tax ID against its authority's register (VIES for EU VAT IDs).

A calculator checks a tax ID's format offline, on every quote. A :class:`TaxIdVerifier`
asks a register whether the number is really issued; that is network I/O, so the gateway
calls it only when billing details are saved, outside every database transaction, and
keeps the answer on the billing details so the next saves need not ask again.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


class TaxIdStatus(enum.Enum):
    VERIFIED = "verified"  # the register confirms the number: save it, marked verified
    UNVERIFIED = "unverified"  # the register could not answer; save the well-formed number unverified
    REJECTED = "rejected"  # refuse to save the number: not registered (or no answer, if so configured)


@dataclass(frozen=True, slots=True)
class TaxIdCheck:
    """A register's answer about one tax ID."""

    status: TaxIdStatus
    reason: str | None = (
        None  # why it was rejected or left unverified; a REJECTED reason is shown to the customer
    )


@runtime_checkable
class TaxIdVerifier(Protocol):
    """Asks a register whether the tax IDs of some countries are issued."""

    code: str
    countries: frozenset[str]  # the billing countries (ISO codes) whose tax IDs it checks

    def verify(self, tax_id: str, country: str) -> TaxIdCheck:
        """Check ``tax_id`` of a customer billed in ``country`` (one of :attr:`countries`).

        Called when billing details are saved, with the ID already format-checked by the
        tax calculator, outside any database transaction, from a worker thread. May do
        network I/O, but must return within its own timeout and must not raise when the
        register is unreachable: it answers UNVERIFIED or REJECTED, as it is configured.
        """
        ...
