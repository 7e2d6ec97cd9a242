"""A workspace's history, read a page at a time: invoices, payments, balance transactions
(ledger entries), usage per period and events.

Pages are keyset pages, never OFFSET: each row's cursor encodes its place in a stable order
(the row's own sort key), and the next page reads the rows strictly past it. A row that
arrives after a page was read therefore never shifts a later page, and no row is shown
twice or skipped:

* invoices, payments and ledger entries: newest first, by (time, id): ``issued_at`` for
  invoices, ``created_at`` for the others; the id breaks ties between rows of the same
  instant. A new row is newer than every row already shown, so it sorts before the first
  page and later pages never see it (read the first page again for it). Only a row written
  with the very instant of a cursor's row (and a larger id) could still land behind it;
* usage: one node per period that recorded usage, newest period first, by period start;
* events: oldest first, by the workspace's gap-free sequence, like the ``events``
  subscription: new events arrive at the end, so following ``endCursor`` reads them in
  order, and an empty last page's cursor is the one to poll with.

A cursor is the URL-safe base64 of ``<connection>|<sort key>``: opaque to clients, bound to
its connection (an invoices cursor is refused by payments) and holding no workspace: every
page is read only among the caller's own rows, so another workspace's cursor shows nothing
of that workspace. Each page costs one statement, however long the page.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from gateway.core.catalog import CreditKind
from gateway.core.errors import DomainError, ErrorCode
from gateway.core.money import Money
from gateway.events import catalog as events_catalog
from gateway.events.endpoints import UnknownEventType
from gateway.plugin_api.events import Event
from gateway.plugin_api.payments import LedgerEntryKind
from gateway.services import billing_views as views
from gateway.services.usage import normal
from gateway.storage.db import Card, Invoice, LedgerEntry, Payment, UsageCounter

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
_MAX_CURSOR_LENGTH = 200  # far above any cursor given out; longer input is not decoded
_ROW_ID = re.compile(r"[0-9a-f]{1,32}")

INVOICES, PAYMENTS, LEDGER, USAGE, EVENTS = "invoices", "payments", "ledger", "usage", "events"

R = TypeVar("R")
T = TypeVar("T")


# ------------------------------------------------------------------ errors


class InvalidCursor(DomainError):
    """``after`` is not a cursor this connection gave out."""

    code = ErrorCode.INVALID_CURSOR

    def __init__(self) -> None:
        super().__init__(
            "`after` is not a cursor of this list: pass an endCursor or cursor it returned", ("after",)
        )


class InvalidPageSize(DomainError):
    """``first`` is negative."""

    code = ErrorCode.INVALID_PAGE_SIZE

    def __init__(self, first: int) -> None:
        super().__init__(
            f"`first` must be 0 or more (at most {MAX_PAGE_SIZE} are returned), not {first}", ("first",)
        )
        self.first = first


def page_size(first: int) -> int:
    """The number of rows a page holds: ``first``, at most MAX_PAGE_SIZE (larger asks are
    served MAX_PAGE_SIZE, with ``has_next_page`` telling that more follow)."""
    if first < 0:
        raise InvalidPageSize(first)
    return min(first, MAX_PAGE_SIZE)


# ------------------------------------------------------------------ cursors


def encode_cursor(connection: str, *key: object) -> str:
    text = "|".join([connection, *(v.isoformat() if isinstance(v, datetime) else str(v) for v in key)])
    return base64.urlsafe_b64encode(text.encode()).decode()


def _decode(connection: str, cursor: str, parts: int) -> list[str]:
    if len(cursor) > _MAX_CURSOR_LENGTH:
        raise InvalidCursor()
    try:
        text = base64.urlsafe_b64decode(cursor.encode("ascii")).decode()
    except (UnicodeError, ValueError, binascii.Error):
        raise InvalidCursor() from None
    name, *key = text.split("|")
    if name != connection or len(key) != parts:
        raise InvalidCursor()
    return key


def _instant(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidCursor() from None
    if value.tzinfo is None:
        raise InvalidCursor()
    return value


def _time_and_id(connection: str, cursor: str) -> tuple[datetime, str]:
    at, row_id = _decode(connection, cursor, 2)
    if not _ROW_ID.fullmatch(row_id):
        raise InvalidCursor()
    return _instant(at), row_id


def _sequence(cursor: str) -> int:
    (text,) = _decode(EVENTS, cursor, 1)
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise InvalidCursor()
    return int(text)


# ------------------------------------------------------------------ pages


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page: each item with its cursor, and whether more follow the last."""

    edges: tuple[tuple[str, T], ...]
    has_next_page: bool

    @property
    def end_cursor(self) -> str | None:
        return self.edges[-1][0] if self.edges else None

    @property
    def start_cursor(self) -> str | None:
        return self.edges[0][0] if self.edges else None


def _page(rows: Sequence[R], size: int, cursor: Callable[[R], str], item: Callable[[R], T]) -> Page[T]:
    """A page of the ``size`` first of ``rows`` (read with one more, to tell if more follow)."""
    return Page(tuple((cursor(row), item(row)) for row in rows[:size]), len(rows) > size)


def _newest_first_after(
    at: InstrumentedAttribute[datetime],
    row_id: InstrumentedAttribute[str],
    connection: str,
    after: str | None,
) -> list[ColumnElement[bool]]:
    """The keyset condition for rows older than the cursor's, in (time, id) descending order."""
    if after is None:
        return []
    when, last_id = _time_and_id(connection, after)
    return [or_(at < when, and_(at == when, row_id < last_id))]


# ------------------------------------------------------------------ invoices


def invoices(session: Session, workspace_id: str, first: int, after: str | None) -> Page[views.InvoiceView]:
    """The workspace's invoices, newest first (by issue time), with payment and card."""
    size = page_size(first)
    rows = session.execute(
        views.invoices_with_payments()
        .where(
            Invoice.workspace_id == workspace_id,
            *_newest_first_after(Invoice.issued_at, Invoice.id, INVOICES, after),
        )
        .order_by(Invoice.issued_at.desc(), Invoice.id.desc())
        .limit(size + 1)
    ).all()
    return _page(
        rows,
        size,
        lambda row: encode_cursor(INVOICES, row[0].issued_at, row[0].id),
        lambda row: views.invoice_view(*row),
    )


# ------------------------------------------------------------------ payments


@dataclass(frozen=True)
class PaymentRecord:
    """A payment as its history shows it: never a card number, nor the processor's reference."""

    id: str
    purpose: str  # a PaymentPurpose
    method: str  # a payment method code
    status: str  # a PaymentStatus
    amount: Money
    card: views.CardView | None  # the saved card charged, if any (also one since removed)
    failure_code: str | None
    failure_message: str | None
    invoice_id: str | None  # the invoice it paid, if any
    created_at: datetime
    updated_at: datetime


def payments(session: Session, workspace_id: str, first: int, after: str | None) -> Page[PaymentRecord]:
    """The workspace's payments, newest first (by creation), whatever their status."""
    size = page_size(first)
    invoice_id = (
        select(Invoice.id)
        .where(Invoice.payment_id == Payment.id)
        .order_by(Invoice.issued_at, Invoice.id)
        .limit(1)
        .correlate(Payment)
        .scalar_subquery()
    )
    rows = session.execute(
        select(Payment, Card, invoice_id)
        .outerjoin(Card, Card.id == Payment.card_id)
        .where(
            Payment.workspace_id == workspace_id,
            *_newest_first_after(Payment.created_at, Payment.id, PAYMENTS, after),
        )
        .order_by(Payment.created_at.desc(), Payment.id.desc())
        .limit(size + 1)
    ).all()

    def record(row: Any) -> PaymentRecord:
        payment, card, paid_invoice = row
        return PaymentRecord(
            id=payment.id,
            purpose=payment.purpose,
            method=payment.method,
            status=payment.status,
            amount=Money.from_minor_units(payment.amount_minor, payment.currency),
            card=views.card_view(card) if card is not None else None,
            failure_code=payment.failure_code,
            failure_message=payment.failure_message,
            invoice_id=paid_invoice,
            created_at=payment.created_at,
            updated_at=payment.updated_at,
        )

    return _page(rows, size, lambda row: encode_cursor(PAYMENTS, row[0].created_at, row[0].id), record)


# ------------------------------------------------------------------ balance transactions


@dataclass(frozen=True)
class BalanceTransaction:
    """A ledger entry: what moved the prepaid balance, and the balance after it."""

    id: str
    kind: LedgerEntryKind
    amount: Money  # signed: charges are negative
    balance_after: Money
    description: str
    created_at: datetime


def balance_transactions(
    session: Session, workspace_id: str, first: int, after: str | None
) -> Page[BalanceTransaction]:
    """The workspace's ledger entries, newest first."""
    size = page_size(first)
    rows = session.scalars(
        select(LedgerEntry)
        .where(
            LedgerEntry.workspace_id == workspace_id,
            *_newest_first_after(LedgerEntry.created_at, LedgerEntry.id, LEDGER, after),
        )
        .order_by(LedgerEntry.created_at.desc(), LedgerEntry.id.desc())
        .limit(size + 1)
    ).all()
    return _page(
        rows,
        size,
        lambda entry: encode_cursor(LEDGER, entry.created_at, entry.id),
        lambda entry: BalanceTransaction(
            id=entry.id,
            kind=LedgerEntryKind(entry.kind),
            amount=Money.from_minor_units(entry.amount_minor, entry.currency),
            balance_after=Money.from_minor_units(entry.balance_after_minor, entry.currency),
            description=entry.description,
            created_at=entry.created_at,
        ),
    )


# ------------------------------------------------------------------ usage per period


@dataclass(frozen=True)
class PeriodCredits:
    kind: CreditKind
    used: Decimal


@dataclass(frozen=True)
class UsagePeriod:
    """The credits a period used, per kind that recorded any."""

    period_start: datetime
    credits: tuple[PeriodCredits, ...]


def usage_periods(session: Session, workspace_id: str, first: int, after: str | None) -> Page[UsagePeriod]:
    """The periods that recorded usage, newest first, each with its counters: one statement
    (the page's period starts are a subquery of it)."""
    size = page_size(first)
    condition = [UsageCounter.workspace_id == workspace_id]
    if after is not None:
        (start,) = _decode(USAGE, after, 1)
        condition.append(UsageCounter.period_start < _instant(start))
    starts = (
        select(UsageCounter.period_start)
        .where(*condition)
        .distinct()
        .order_by(UsageCounter.period_start.desc())
        .limit(size + 1)
    )
    rows = session.execute(
        select(UsageCounter.period_start, UsageCounter.kind, UsageCounter.used)
        .where(UsageCounter.workspace_id == workspace_id, UsageCounter.period_start.in_(starts))
        .order_by(UsageCounter.period_start.desc(), UsageCounter.kind)
    ).all()
    periods: dict[datetime, list[PeriodCredits]] = {}
    for period_start, kind, used in rows:
        periods.setdefault(period_start, []).append(PeriodCredits(CreditKind(kind), normal(used)))
    return _page(
        list(periods.items()),
        size,
        lambda period: encode_cursor(USAGE, period[0]),
        lambda period: UsagePeriod(period[0], tuple(period[1])),
    )


# ------------------------------------------------------------------ events


def events(
    session: Session, workspace_id: str, first: int, after: str | None, types: Sequence[str] | None
) -> Page[Event]:
    """The workspace's committed events, oldest first (by sequence), optionally only some
    types (none or an empty list: every type)."""
    size = page_size(first)
    for index, name in enumerate(types or ()):
        if name not in events_catalog.EVENT_TYPES:
            error = UnknownEventType(name, index)
            error.field = ("types", str(index))
            raise error
    found = events_catalog.read_events(
        session,
        workspace_id,
        _sequence(after) if after is not None else 0,
        types=types or None,
        limit=size + 1,
    )
    return _page(found, size, lambda event: encode_cursor(EVENTS, event.sequence), lambda event: event)
