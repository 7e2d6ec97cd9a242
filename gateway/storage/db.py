"""Database models, engine set-up and migrations (SQLAlchemy 2 + Alembic).

SQLite is the embedded default; PostgreSQL is selected by a database URL. The
schema is owned by the Alembic migrations in ``gateway/migrations``; a test
checks that they match these models.
"""

from __future__ import annotations

import ast
import contextlib
import contextvars
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    TypeDecorator,
    UniqueConstraint,
    create_engine,
    event,
    false,
    func,
    inspect,
    text,
)
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DisconnectionError, IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, sessionmaker

from gateway.core.statuses import WorkspaceStatus
from gateway.storage.encryption import Concealed, keyring, new_key

MIGRATIONS = Path(__file__).parent / "migrations"

if TYPE_CHECKING:
    from alembic.config import Config


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; pass an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class SecretText(TypeDecorator[str]):
    """Text that is a secret (a key): read back as :class:`~gateway.storage.encryption.Concealed`,
    so that a row logged at DEBUG or shown by ``repr`` does not show it. (Parameters are never
    logged: see :func:`create_db_engine`.)"""

    impl = String
    cache_ok = True

    def process_result_value(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else Concealed(value)


class EncryptedText(TypeDecorator[str]):
    """Text stored encrypted with the process's keyring (:mod:`gateway.storage.encryption`):
    rows hold ``fernet:<key id>:<token>``, Python sees the plain value, concealed from ``repr``
    as :class:`SecretText` is."""

    impl = String(512)
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else keyring.encrypt(value)

    def process_result_value(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else Concealed(keyring.decrypt(value))


class Base(DeclarativeBase):
    pass


class Workspace(Base):
    __tablename__ = "workspaces"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    plan_code: Mapped[str] = mapped_column(String(32))
    email_credits: Mapped[int] = mapped_column(Integer)
    messaging_credits: Mapped[int] = mapped_column(Integer)
    # Periods are monthly from the anchor; start and end are kept for queries and locking.
    period_anchor: Mapped[datetime] = mapped_column(UTCDateTime())
    period_start: Mapped[datetime] = mapped_column(UTCDateTime())
    period_end: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(
        String(16), default=WorkspaceStatus.ACTIVE.value, server_default="active"
    )  # a WorkspaceStatus
    currency: Mapped[str] = mapped_column(String(3), default="EUR", server_default="EUR")
    # Cached sum of the ledger, updated in the same transaction as each entry.
    balance_minor: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    event_sequence: Mapped[int] = mapped_column(
        Integer, default=0, server_default="0"
    )  # last outbox sequence
    renewal_payment: Mapped[str | None] = mapped_column(String(64), nullable=True)  # "balance" | "card:<id>"
    # The price version of the plan it bought (gateway.core.catalog); None: the plan's first,
    # for subscriptions recorded before prices had versions.
    price_version: Mapped[str | None] = mapped_column(String(32), nullable=True)


class BillingDetails(Base):
    """The billing details as last saved; completeness is checked at checkout."""

    __tablename__ = "billing_details"

    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    customer_type: Mapped[str | None] = mapped_column(String(16), nullable=True)  # person | company
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    company_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    address_line1: Mapped[str | None] = mapped_column(String(200), nullable=True)
    address_line2: Mapped[str | None] = mapped_column(String(200), nullable=True)
    city: Mapped[str | None] = mapped_column(String(100), nullable=True)
    postal_code: Mapped[str | None] = mapped_column(String(20), nullable=True)
    region: Mapped[str | None] = mapped_column(String(100), nullable=True)
    country: Mapped[str | None] = mapped_column(String(2), nullable=True)
    vat_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # What a tax ID register (VIES) said of vat_id, kept so later saves need not ask again:
    # a TaxIdStatus value (verified | unverified), or None when no register was asked.
    vat_id_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    vat_id_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LedgerEntry(Base):
    """An append-only entry of a workspace's prepaid balance; the balance is their sum."""

    __tablename__ = "ledger_entries"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # a LedgerEntryKind (gateway.plugin_api.payments)
    amount_minor: Mapped[int] = mapped_column(BigInteger)  # signed: charges are negative
    currency: Mapped[str] = mapped_column(String(3))
    balance_after_minor: Mapped[int] = mapped_column(BigInteger)
    reference: Mapped[str | None] = mapped_column(String(64), nullable=True)
    description: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    # History pages read a workspace's entries newest first, past a (created_at, id) cursor.
    __table_args__ = (Index("ix_ledger_entries_history", "workspace_id", "created_at", "id"),)


class Card(Base):
    """A saved card: the processor's token and what a person needs to recognise it. Never the number."""

    __tablename__ = "cards"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    token: Mapped[str] = mapped_column(String(128))
    brand: Mapped[str] = mapped_column(String(32))
    last4: Mapped[str] = mapped_column(String(4))
    exp_month: Mapped[int] = mapped_column(Integer)
    exp_year: Mapped[int] = mapped_column(Integer)
    fingerprint: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Payment(Base):
    __tablename__ = "payments"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(16))  # a PaymentPurpose
    method: Mapped[str] = mapped_column(String(32))  # payment method code
    card_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16))  # a PaymentStatus (gateway.core.statuses)
    failure_code: Mapped[str | None] = mapped_column(String(32), nullable=True)
    failure_message: Mapped[str | None] = mapped_column(String(200), nullable=True)
    reference: Mapped[str | None] = mapped_column(String(128), nullable=True)  # processor or ledger reference
    pending: Mapped[dict[str, Any] | None] = mapped_column(
        JSON, nullable=True
    )  # what to apply once the payment succeeds (the order, the card to save...)
    # The key the method deduplicates on: one payment per key and workspace, so a retried
    # request or renewal finds its payment again instead of charging a second time.
    idempotency_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)  # the method answered
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)  # open payments
    next_action: Mapped[str | None] = mapped_column(String(2048), nullable=True)  # REQUIRES_ACTION
    instructions: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # PENDING: how to pay
    refund_due: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )  # paid for an order that no longer applies
    refund_reference: Mapped[str | None] = mapped_column(String(128), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("workspace_id", "idempotency_key", name="uq_payments_workspace_key"),
        Index("ix_payments_open", "status", "expires_at"),
        Index("ix_payments_method_reference", "method", "reference"),
        Index("ix_payments_history", "workspace_id", "created_at", "id"),
    )


class Invoice(Base):
    __tablename__ = "invoices"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # an InvoiceKind
    status: Mapped[str] = mapped_column(String(16))  # an InvoiceStatus
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    currency: Mapped[str] = mapped_column(String(3))
    subtotal_minor: Mapped[int] = mapped_column(BigInteger)
    tax_minor: Mapped[int] = mapped_column(BigInteger)
    total_minor: Mapped[int] = mapped_column(BigInteger)
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    tax_lines: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    billing: Mapped[dict[str, Any]] = mapped_column(JSON)  # the billing details as invoiced
    # The seller's identity as invoiced (gateway.core.seller); null on invoices issued before 0007.
    seller: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    payment_id: Mapped[str | None] = mapped_column(ForeignKey("payments.id"), nullable=True)
    period_start: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    period_end: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Dunning of an open invoice: attempts to collect it so far, when the next one is due (None:
    # none scheduled), since when it is unpaid, the renewal method that last failed, and whether
    # that failure was a hard decline (not retried on the same method).
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True, index=True)
    first_failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    dunning_method: Mapped[str | None] = mapped_column(String(64), nullable=True)
    hard_declined: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    credited_invoice_id: Mapped[str | None] = mapped_column(String(32), nullable=True)  # credit notes

    __table_args__ = (Index("ix_invoices_history", "workspace_id", "issued_at", "id"),)


class Refund(Base):
    """Money given back from a succeeded payment, in full or in part, with its credit note."""

    __tablename__ = "refunds"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    payment_id: Mapped[str] = mapped_column(ForeignKey("payments.id"), index=True)
    idempotency_key: Mapped[str] = mapped_column(String(64))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    destination: Mapped[str] = mapped_column(String(16))  # a RefundDestination
    status: Mapped[str] = mapped_column(String(16))  # a RefundStatus
    reason: Mapped[str] = mapped_column(String(200))
    reference: Mapped[str | None] = mapped_column(String(128), nullable=True)
    failure_message: Mapped[str | None] = mapped_column(String(200), nullable=True)
    credit_note_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (UniqueConstraint("payment_id", "idempotency_key", name="uq_refunds_payment_key"),)


class ScheduledChange(Base):
    """The configuration a workspace moves to at the end of its current period."""

    __tablename__ = "scheduled_changes"

    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    plan_code: Mapped[str] = mapped_column(String(32))
    email_credits: Mapped[int] = mapped_column(Integer)
    messaging_credits: Mapped[int] = mapped_column(Integer)
    effective_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    price_version: Mapped[str | None] = mapped_column(String(32), nullable=True)  # as priced when scheduled


class PriceChange(Base):
    """A newer price version an existing subscriber was given notice of: it moves to it at
    its first renewal on or after ``effective_at`` (``gateway.services.price_changes``)."""

    __tablename__ = "price_changes"

    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    plan_code: Mapped[str] = mapped_column(String(32))
    from_version: Mapped[str | None] = mapped_column(String(32), nullable=True)
    to_version: Mapped[str] = mapped_column(String(32))
    noticed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    effective_at: Mapped[datetime] = mapped_column(UTCDateTime())


class OutboxEvent(Base):
    """An event written in the same transaction as the change it reports."""

    __tablename__ = "outbox_events"
    __table_args__ = (UniqueConstraint("workspace_id", "sequence", name="uq_outbox_workspace_sequence"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    sequence: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"

    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    operation: Mapped[str] = mapped_column(String(32))
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # an IdempotencyKeyStatus
    response: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    locked_until: Mapped[datetime] = mapped_column(UTCDateTime())  # an abandoned claim may be retaken after
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class UsageCounter(Base):
    """Credits used per workspace, period and credit kind (unused credits do not roll over)."""

    __tablename__ = "usage_counters"

    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    period_start: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)  # email | messaging
    used: Mapped[Decimal] = mapped_column(Numeric(20, 4))


class UsageRecord(Base):
    __tablename__ = "usage_records"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    period_start: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(String(16))
    message_type: Mapped[str] = mapped_column(String(32))
    country: Mapped[str | None] = mapped_column(String(2), nullable=True)
    quantity: Mapped[int] = mapped_column(Integer)
    credits: Mapped[Decimal] = mapped_column(Numeric(20, 4))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Renewal(Base):
    """One row per workspace and period start: renewing the same period twice does nothing."""

    __tablename__ = "renewals"

    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    period_start: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))  # a RenewalRecordStatus
    invoice_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CustomQuoteRequest(Base):
    __tablename__ = "custom_quote_requests"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    contact_name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(254))
    company: Mapped[str] = mapped_column(String(200))
    expected_email_credits: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    expected_messaging_credits: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    message: Mapped[str] = mapped_column(String(4000))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Counter(Base):
    """Named gap-free counters (document numbers, gateway.core.numbering), incremented under the
    row's lock."""

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


class RateLimitCount(Base):
    """One rate-limit rule's count for one subject (an API key id or a client address) in one
    window of the rule's period (gateway.storage.rate_limits), when the counts are kept in the
    database so that every replica shares them."""

    __tablename__ = "rate_limit_counts"

    rule: Mapped[str] = mapped_column(String(64), primary_key=True)
    subject: Mapped[str] = mapped_column(String(128), primary_key=True)
    window_index: Mapped[int] = mapped_column(
        BigInteger, primary_key=True
    )  # seconds since the epoch // period
    units: Mapped[int] = mapped_column(Integer)
    expires: Mapped[int] = mapped_column(BigInteger, index=True)  # seconds since the epoch: purge after


class GatewaySecret(Base):
    """Secrets the gateway makes for itself once and every replica on the database shares
    (the quote signing key, gateway.storage.secrets), unless a setting provides them."""

    __tablename__ = "gateway_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(SecretText(128))  # base64url of random bytes
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=func.now())


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)  # shown to people to tell keys apart
    key_hash: Mapped[str] = mapped_column(String(64))  # sha256 of the whole key, hex
    name: Mapped[str] = mapped_column(String(200))
    # What the key may do: scope names, space-separated (gateway.services.keys.Scope)
    scopes: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class OperatorKey(Base):
    """A key for the operators' fields (refunds): tied to no workspace, so it reads no workspace's
    data, and no workspace key reaches what it can do. Stored hashed, as API keys are."""

    __tablename__ = "operator_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)  # shown to people to tell keys apart
    key_hash: Mapped[str] = mapped_column(String(64))  # sha256 of the whole key, hex
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class WebhookEndpoint(Base):
    """Where a workspace wants its events POSTed (see ``gateway.events.endpoints``)."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    event_types: Mapped[list[str]] = mapped_column(JSON)  # empty: every type
    secret: Mapped[str] = mapped_column(EncryptedText())  # whsec_<base64>; kept to sign, so not a hash
    # After a rotation the previous secret signs too, until then (receivers switch over meanwhile).
    previous_secret: Mapped[str | None] = mapped_column(EncryptedText(), nullable=True)
    previous_secret_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean)
    disabled_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class EncryptionKey(Base):
    """The key the gateway made for itself when BILLING_GATEWAY_ENCRYPTION_KEYS is not set (the
    demo): one row (see :mod:`gateway.storage.encryption`)."""

    __tablename__ = "encryption_keys"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)  # "gateway": one row at most
    key: Mapped[str] = mapped_column(SecretText(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


def stored_key(engine: Engine, now: datetime, *, create: bool) -> str | None:
    """The gateway's own key from the database; made if there is none and ``create`` (a
    concurrent start that made one first wins: every replica then uses the same)."""
    with Session(engine) as session:
        found = session.get(EncryptionKey, "gateway")
        if found is not None or not create:
            return found.key if found is not None else None
        session.add(EncryptionKey(id="gateway", key=new_key(), created_at=now))
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
        return session.get_one(EncryptionKey, "gateway", populate_existing=True).key


class Delivery(Base):
    """One committed event on its way to one webhook endpoint or one in-process listener."""

    __tablename__ = "deliveries"
    __table_args__ = (
        CheckConstraint("(endpoint_id IS NULL) <> (listener IS NULL)", name="ck_deliveries_one_target"),
        Index("ix_deliveries_due", "status", "next_attempt_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("outbox_events.id", ondelete="CASCADE"), index=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    endpoint_id: Mapped[str | None] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=True, index=True
    )
    listener: Mapped[str | None] = mapped_column(String(64), nullable=True)  # an event listener's code
    status: Mapped[str] = mapped_column(String(16))  # a DeliveryStatus
    attempts: Mapped[int] = mapped_column(Integer)  # since it was (re)queued
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)  # a worker's lease
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Set when queued in the event's own transaction: the flush then inserts the event first.
    event: Mapped[OutboxEvent] = relationship(lazy="raise")


class DeliveryAttempt(Base):
    __tablename__ = "delivery_attempts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    delivery_id: Mapped[str] = mapped_column(ForeignKey("deliveries.id", ondelete="CASCADE"), index=True)
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)  # None: no HTTP answer
    duration_ms: Mapped[int] = mapped_column(Integer)
    response_excerpt: Mapped[str | None] = mapped_column(String(500), nullable=True)
    error: Mapped[str | None] = mapped_column(String(500), nullable=True)


def normalise_url(url: str) -> str:
    """Accept plain ``postgresql://`` URLs and use the psycopg 3 driver for them."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


WRITE_LOCK = "billing_gateway_write_lock"
CONNECT_TIMEOUT = 10  # seconds to open a PostgreSQL connection


class NulCharacter(ValueError):
    """A statement's parameter holds a NUL character: refused before it is sent, on either
    database (PostgreSQL cannot store one in text; SQLite would, and nothing may depend on that).
    The API answers it with the stable code INVALID_CHARACTERS: the request's fault, not a bug."""


def _refuse_nul(
    _connection: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, executemany: bool
) -> None:
    batches = parameters if executemany else [parameters]
    for batch in batches:
        values = batch.values() if isinstance(batch, dict) else (batch or ())
        if any(isinstance(value, str) and "\x00" in value for value in values):
            raise NulCharacter("text must not contain NUL characters")


def create_db_engine(
    url: str, *, pool_size: int = 20, max_overflow: int = 10, pool_timeout: float = 30
) -> Engine:
    """An engine for ``url``. On SQLite the gateway issues BEGIN itself, so that a
    writing transaction (see :func:`write_session_factory`) takes the database's
    write lock up front (BEGIN IMMEDIATE) instead of failing on upgrade later.

    Neither engine puts SQL parameters into its errors (``hide_parameters``): they reach the
    log, and the values include secrets (webhook signing secrets) and personal data.

    ``pool_size + max_overflow`` bounds the connections the engine opens; a request holds at most
    one at a time, so more concurrent requests than that wait for one (``pool_timeout`` seconds at
    most, then DATABASE_UNAVAILABLE) and never deadlock."""
    url = normalise_url(url)
    pool = {"pool_size": pool_size, "max_overflow": max_overflow, "pool_timeout": pool_timeout}
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"timeout": 30, "check_same_thread": False},
            hide_parameters=True,
            **pool,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # no implicit BEGIN from the driver
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(connection: Any) -> None:
            immediate = connection.get_execution_options().get(WRITE_LOCK)
            connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        event.listen(engine, "before_cursor_execute", _refuse_nul)
        return engine
    # Without a connect timeout, a database host that drops packets would hold a request (or the
    # start-up) for minutes; a URL's own ?connect_timeout= wins.
    timeout = {} if "connect_timeout" in make_url(url).query else {"connect_timeout": CONNECT_TIMEOUT}
    engine = create_engine(url, connect_args=timeout, hide_parameters=True, **pool)
    ping_when_idle(engine, PING_AFTER_IDLE)
    event.listen(engine, "before_cursor_execute", _refuse_nul)
    return engine


# A pooled connection back in the pool for longer than this is pinged before it is handed out
# again; one returned more recently is not (HikariCP's "alive bypass window", 500 ms too).
PING_AFTER_IDLE = 0.5  # seconds
_RETURNED_AT = "billing_gateway_returned_at"


def ping_when_idle(engine: Engine, idle: float) -> None:
    """Ping a pooled connection on checkout only if it sat in the pool longer than ``idle``
    seconds; a failed ping makes the pool replace the connection (up to three tries), as
    ``pool_pre_ping`` does on every checkout.

    Pinging on every checkout cost a round trip per transaction: a checkout runs four, and
    without the pings one worker took 28 to 34 % more checkouts a second (43 and 40 against 33
    and 30 on PostgreSQL, alternating). A connection returned a moment ago was alive then; what
    it risks is a database that went away within that moment, whose first statement then fails
    (DATABASE_UNAVAILABLE, nothing done), and the pool is renewed."""

    @event.listens_for(engine, "connect")
    def _connected(_dbapi_connection: Any, record: Any) -> None:
        record.info[_RETURNED_AT] = time.monotonic()  # new: no ping needed

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info[_RETURNED_AT] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.get(_RETURNED_AT)
        if returned is not None and time.monotonic() - returned < idle:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception as error:  # any failure: a new connection
            raise DisconnectionError("the pooled connection did not answer its ping") from error
        if not alive:
            raise DisconnectionError("the pooled connection did not answer its ping")


_REMEMBERED = "billing_gateway_remembered_reads"


class WouldBlock(BaseException):
    """A session was about to open where no blocking I/O may run (:func:`no_blocking_io`).

    A BaseException, like KeyboardInterrupt, so that no ``except Exception`` on the way (a
    resolver's, graphql-core's) turns it into an answer: it reaches whoever opened the guard,
    which then does the work where blocking is allowed."""


_NO_BLOCKING_IO: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "billing_gateway_no_blocking_io", default=False
)


@contextlib.contextmanager
def no_blocking_io() -> Iterator[None]:
    """Within this block (on an event loop), opening a :class:`GatewaySession` raises
    :class:`WouldBlock` instead of waiting for a pooled connection and the database."""
    token = _NO_BLOCKING_IO.set(True)
    try:
        yield
    finally:
        _NO_BLOCKING_IO.reset(token)


class GatewaySession(Session):
    """The gateway's sessions. One that serves a request's answer can remember what it reads by
    primary key (:meth:`remember_reads`): then each row, found or not, is read once per
    transaction, however many fields of the answer ask for it.

    SQLAlchemy's identity map alone does not do this: it holds rows weakly, so a row that nobody
    holds any more is read again, and it never remembers a row that was not there. An answer's
    fields ask for the same workspace, billing details, scheduled change and price notice
    several times (the Billing page's CheckoutSuccess read each of them three times)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if _NO_BLOCKING_IO.get():
            raise WouldBlock("a database session, where no blocking I/O may run")
        super().__init__(*args, **kwargs)

    def remember_reads(self) -> None:
        """From now on, :meth:`get` without options reads each row once per transaction (what
        it remembered is forgotten when a transaction ends). Only for a session that reads: a
        write through it would not be seen by later gets."""
        self.info[_REMEMBERED] = {}

    # Session.get's own signature, passed through; entity and ident as SQLAlchemy takes them.
    def get(self, entity: Any, ident: Any, **options: Any) -> Any:
        remembered: dict[tuple[Any, Any], Any] | None = self.info.get(_REMEMBERED)
        if remembered is None or options or not isinstance(ident, str | int | tuple):
            return super().get(entity, ident, **options)
        key = (entity, ident)
        if key not in remembered:
            remembered[key] = super().get(entity, ident)
        return remembered[key]


_TRANSACTION_MEMO = "billing_gateway_transaction_memo"


def transaction_memo(session: Session) -> dict[Any, Any]:
    """What holds for the rest of ``session``'s transaction, such as a workspace's webhook
    endpoints while its events are written; forgotten when the transaction ends."""
    memo: dict[Any, Any] = session.info.setdefault(_TRANSACTION_MEMO, {})
    return memo


@event.listens_for(Session, "after_transaction_end")
def _forget(session: Session, transaction: Any) -> None:
    # A transaction or a savepoint (what a rolled-back savepoint wrote is gone), not the
    # subtransaction of a flush.
    if transaction.parent is None or transaction.nested:
        session.info.pop(_TRANSACTION_MEMO, None)
        if _REMEMBERED in session.info:
            session.info[_REMEMBERED] = {}  # the next transaction may see other rows


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, class_=GatewaySession, expire_on_commit=False)


def write_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions for transactions that move money or change a subscription.

    On SQLite they take the write lock when they begin; on PostgreSQL they lock
    the rows they change (``SELECT ... FOR UPDATE``, see ``lock_workspace``).
    """
    return sessionmaker(
        engine.execution_options(**{WRITE_LOCK: True}), class_=GatewaySession, expire_on_commit=False
    )


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the database schema up to ``revision``. A database already at the head is left
    alone without importing alembic (about 11 MiB the server then never loads)."""
    if revision == "head":
        with engine.connect() as connection:
            if current_revisions(connection) == head_revisions():
                return
    from alembic import command

    command.upgrade(alembic_config(engine), revision)


def head_revisions() -> frozenset[str]:
    """The migration revisions this code brings a database to: read from the files'
    ``revision`` and ``down_revision`` assignments, as alembic reads them (a test compares)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
                continue
            target = node.targets[0]
            name = target.id if isinstance(target, ast.Name) else None
            if name == "revision":
                revisions.add(ast.literal_eval(node.value))
            elif name == "down_revision":
                down = ast.literal_eval(node.value)
                parents.update((down,) if isinstance(down, str) else down or ())
    return frozenset(revisions - parents)


def current_revisions(connection: Connection) -> frozenset[str]:
    """The revisions the database's schema is at (empty before the first migration): the rows of
    alembic's version table."""
    if not inspect(connection).has_table("alembic_version"):
        return frozenset()
    return frozenset(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())
