"""The balance ledger over the database: the core's implementation of
:class:`gateway.plugin_api.payments.Ledger`, used inside a transaction that holds the
workspace's lock."""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.core.money import Money
from gateway.plugin_api.payments import LedgerEntryKind
from gateway.storage.db import LedgerEntry, Workspace


class NegativeBalance(ValueError):
    """An entry would take the balance below zero: a bug in the caller, never allowed."""


class SqlLedger:
    def __init__(self, session: Session, workspace: Workspace, now: datetime) -> None:
        self.session, self.workspace, self.now = session, workspace, now
        self.currency = workspace.currency

    def balance(self) -> Money:
        return Money.from_minor_units(self.workspace.balance_minor, self.currency)

    def append(self, kind: LedgerEntryKind, amount: Money, reference: str | None, description: str) -> str:
        if amount.currency != self.currency:
            raise ValueError(f"the ledger is in {self.currency}, not {amount.currency}")
        units = amount.minor_units
        after = self.workspace.balance_minor + units
        if after < 0:
            raise NegativeBalance(f"{kind.value} of {amount} would take the balance below zero")
        entry = LedgerEntry(
            id=secrets.token_hex(16),
            workspace_id=self.workspace.id,
            kind=kind.value,
            amount_minor=units,
            currency=self.currency,
            balance_after_minor=after,
            reference=reference,
            description=description[:200],
            created_at=self.now,
        )
        self.session.add(entry)
        self.workspace.balance_minor = after
        return entry.id


def ledger_sum(session: Session, workspace_id: str) -> int:
    """The balance recomputed from the entries, in minor units (for reconciliation)."""
    total = session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.amount_minor), 0)).where(
            LedgerEntry.workspace_id == workspace_id
        )
    )
    return int(total or 0)
