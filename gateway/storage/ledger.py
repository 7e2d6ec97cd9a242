"""The balance ledger over the database: the core's implementation of
:class:`gateway.plugin_api.payments.Ledger`, used inside a transaction that holds the
workspace's lock."""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from gateway.core.money import Money
from gateway.plugin_api.payments import LedgerEntryKind
from gateway.storage.db import LedgerEntry, Workspace
from gateway.storage.locks import lock_workspace


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


class WorkspaceLedger:
    """The :class:`~gateway.plugin_api.payments.Ledger` payment methods get: one workspace's
    balance, each call a short transaction of its own holding the workspace's lock.

    Entries are idempotent by key (kept as the entry's reference): the lock serialises the
    look-up and the insert, so the same key can never make two entries.
    """

    def __init__(
        self, write_sessions: sessionmaker[Session], workspace_id: str, currency: str, now: datetime
    ) -> None:
        self._sessions, self._workspace_id, self.currency, self._now = (
            write_sessions,
            workspace_id,
            currency,
            now,
        )

    def _locked(self, session: Session) -> Workspace:
        workspace = lock_workspace(session, self._workspace_id)
        if workspace is None:
            raise LookupError(f"no workspace {self._workspace_id!r}")
        return workspace

    def _entry(self, session: Session, kind: LedgerEntryKind, key: str) -> str | None:
        return session.scalar(
            select(LedgerEntry.id).where(
                LedgerEntry.workspace_id == self._workspace_id,
                LedgerEntry.kind == kind.value,
                LedgerEntry.reference == key,
            )
        )

    def balance(self) -> Money:
        with self._sessions() as session:
            minor = session.scalar(select(Workspace.balance_minor).where(Workspace.id == self._workspace_id))
        return Money.from_minor_units(minor or 0, self.currency)

    def debit(self, amount: Money, key: str, description: str) -> str | None:
        with self._sessions.begin() as session:
            workspace = self._locked(session)
            if (entry := self._entry(session, LedgerEntryKind.CHARGE, key)) is not None:
                return entry
            ledger = SqlLedger(session, workspace, self._now)
            if ledger.balance() < amount:
                return None
            return ledger.append(LedgerEntryKind.CHARGE, -amount, key, description)

    def credit(self, amount: Money, key: str, description: str) -> str:
        with self._sessions.begin() as session:
            workspace = self._locked(session)
            if (entry := self._entry(session, LedgerEntryKind.REFUND, key)) is not None:
                return entry
            return SqlLedger(session, workspace, self._now).append(
                LedgerEntryKind.REFUND, amount, key, description
            )

    def entry(self, key: str) -> str | None:
        with self._sessions() as session:
            return self._entry(session, LedgerEntryKind.CHARGE, key)
