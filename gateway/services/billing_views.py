"""What the Billing pages show of a workspace, read for the API: the workspace itself, this
period's usage, billing details, saved cards, the scheduled change, invoices and payments
(their history, a page at a time, is read by ``gateway.services.history``).

Each function takes the request's read session and returns read models: small frozen
dataclasses copied out of the rows. A resolver therefore cannot lazy-load, and cannot change
what it renders. Every function costs a fixed number of statements, however many rows it
returns (invoices come with their payment and its card in one joined query), so a page costs
the same whether the workspace has one invoice or hundreds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from gateway.core.catalog import CreditKind, Plan
from gateway.core.money import Money
from gateway.core.pricing import Charge, Configuration, LineKind, Subscription
from gateway.core.seller import Seller
from gateway.core.tax import TaxTreatment
from gateway.services import billing_details as details
from gateway.services import price_changes
from gateway.services.deps import Deps
from gateway.services.renewal import price_renewal
from gateway.services.usage import CreditUsage, PeriodUsage, normal
from gateway.storage.db import (
    BillingDetails,
    Card,
    GatewaySession,
    Invoice,
    Payment,
    ScheduledChange,
    UsageCounter,
    Workspace,
)

# ------------------------------------------------------------------ the answer's session


def answer_session(deps: Deps) -> Session:
    """A read session for one request's answer, which reads each row it asks for by primary key
    once (see :class:`~gateway.storage.db.GatewaySession`): the fields of an answer ask for the
    same workspace, billing details and scheduled change again and again."""
    session = deps.sessions()
    if isinstance(session, GatewaySession):  # a test's Deps may bring plain sessions
        session.remember_reads()
    return session


# ------------------------------------------------------------------ the workspace


@dataclass(frozen=True)
class WorkspaceView:
    """A workspace as last committed. The attribute names are the row's, so it can go wherever
    the row's values are read (``subscription_of``, quotes)."""

    id: str
    name: str
    status: str
    plan_code: str
    price_version: str | None
    email_credits: int
    messaging_credits: int
    period_anchor: datetime
    period_start: datetime
    period_end: datetime
    currency: str
    balance_minor: int
    renewal_payment: str | None

    @property
    def balance(self) -> Money:
        return Money.from_minor_units(self.balance_minor, self.currency)


def workspace(session: Session, workspace_id: str) -> WorkspaceView | None:
    row = session.get(Workspace, workspace_id)
    if row is None:
        return None
    return WorkspaceView(
        id=row.id,
        name=row.name,
        status=row.status,
        plan_code=row.plan_code,
        price_version=row.price_version,
        email_credits=row.email_credits,
        messaging_credits=row.messaging_credits,
        period_anchor=row.period_anchor,
        period_start=row.period_start,
        period_end=row.period_end,
        currency=row.currency,
        balance_minor=row.balance_minor,
        renewal_payment=row.renewal_payment,
    )


def period_usage(session: Session, workspace_id: str, subscription: Subscription) -> PeriodUsage:
    """Credits used and included in the subscription's period, for each kind its plan has."""
    used = dict(
        session.execute(
            select(UsageCounter.kind, UsageCounter.used).where(
                UsageCounter.workspace_id == workspace_id,
                UsageCounter.period_start == subscription.period_start,
            )
        ).all()
    )
    config = subscription.configuration
    return PeriodUsage(
        subscription.period_start,
        subscription.period_end,
        tuple(
            CreditUsage(kind, normal(used.get(kind.value, Decimal(0))), config.limit(kind))
            for kind in CreditKind
            if config.plan.option(kind) is not None
        ),
    )


# ------------------------------------------------------------------ billing details


@dataclass(frozen=True)
class BillingDetailsView:
    customer_type: str | None
    name: str | None
    company_name: str | None
    address_line1: str | None
    address_line2: str | None
    city: str | None
    postal_code: str | None
    region: str | None
    country: str | None
    vat_id: str | None
    vat_id_status: str | None  # a TaxIdStatus value (verified | unverified), None when no register was asked
    email: str | None
    missing_fields: tuple[str, ...]  # what checkout still needs, as the API names the fields


def billing_details_view(row: BillingDetails) -> BillingDetailsView:
    """The read model of a row at hand (also one just saved, in its own transaction)."""
    return BillingDetailsView(
        customer_type=row.customer_type,
        name=row.name,
        company_name=row.company_name,
        address_line1=row.address_line1,
        address_line2=row.address_line2,
        city=row.city,
        postal_code=row.postal_code,
        region=row.region,
        country=row.country,
        vat_id=row.vat_id,
        vat_id_status=row.vat_id_status,
        email=row.email,
        missing_fields=tuple(details.missing_fields(row)),
    )


def billing_details(session: Session, workspace_id: str) -> BillingDetailsView | None:
    row = session.get(BillingDetails, workspace_id)
    return billing_details_view(row) if row is not None else None


# ------------------------------------------------------------------ cards and payments


@dataclass(frozen=True)
class CardView:
    id: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    fingerprint: str


def card_view(row: Card) -> CardView:
    return CardView(row.id, row.brand, row.last4, row.exp_month, row.exp_year, row.fingerprint)


def saved_cards(session: Session, workspace_id: str) -> list[CardView]:
    """The cards not removed, newest first."""
    rows = session.scalars(
        select(Card)
        .where(Card.workspace_id == workspace_id, Card.removed_at.is_(None))
        .order_by(Card.created_at.desc(), Card.id)
    )
    return [card_view(row) for row in rows]


def card(session: Session, card_id: str) -> CardView | None:
    """A card by id, also one since removed (payments keep naming the card they were made with)."""
    row = session.get(Card, card_id)
    return card_view(row) if row is not None else None


@dataclass(frozen=True)
class PaymentView:
    id: str
    method: str  # a payment method code
    status: str
    amount: Money
    card: CardView | None  # the card charged, if any


def _payment(payment: Payment, card: Card | None) -> PaymentView:
    return PaymentView(
        id=payment.id,
        method=payment.method,
        status=payment.status,
        amount=Money.from_minor_units(payment.amount_minor, payment.currency),
        card=card_view(card) if card is not None else None,
    )


def payment_method_label(payment: PaymentView | None) -> str | None:
    """How an invoice names its payment: "balance", or "card visa •••• 4242"."""
    if payment is None:
        return None
    if payment.card is None:
        return payment.method
    return f"card {payment.card.brand} •••• {payment.card.last4}"


def payment(session: Session, payment_id: str) -> PaymentView | None:
    """A payment with its card, in one statement."""
    found = session.execute(
        select(Payment, Card).outerjoin(Card, Card.id == Payment.card_id).where(Payment.id == payment_id)
    ).first()
    return _payment(*found) if found is not None else None


# ------------------------------------------------------------------ invoices


@dataclass(frozen=True)
class InvoiceLineView:
    kind: LineKind
    description: str
    quantity: int
    unit_price: Decimal | None  # as invoiced, in the invoice's currency; may have sub-cent digits
    amount: Decimal
    price_version: str | None = None  # the plan's price version; None on lines without one


@dataclass(frozen=True)
class InvoiceTaxLineView:
    name: str
    jurisdiction: str
    rate: Decimal
    base: Decimal
    amount: Decimal
    treatment: TaxTreatment
    note: str | None


@dataclass(frozen=True)
class InvoiceView:
    id: str
    number: str
    kind: str  # checkout | renewal
    status: str  # paid | open
    issued_at: datetime
    currency: str
    lines: tuple[InvoiceLineView, ...]
    tax_lines: tuple[InvoiceTaxLineView, ...]
    subtotal: Money
    tax: Money
    total: Money
    payment: PaymentView | None
    period_start: datetime | None
    period_end: datetime | None
    billing: dict[str, Any]  # the billing details as invoiced
    seller: Seller | None  # the seller as invoiced; None on invoices issued before it was recorded


def _decimal(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def invoice_view(row: Invoice, payment: Payment | None, card: Card | None) -> InvoiceView:
    currency = row.currency
    return InvoiceView(
        id=row.id,
        number=row.number,
        kind=row.kind,
        status=row.status,
        issued_at=row.issued_at,
        currency=currency,
        lines=tuple(
            InvoiceLineView(
                kind=LineKind(line["kind"]),
                description=line["description"],
                quantity=line["quantity"],
                unit_price=_decimal(line.get("unit_price")),
                amount=Decimal(line["amount"]),
                price_version=line.get("price_version"),
            )
            for line in row.lines
        ),
        tax_lines=tuple(
            InvoiceTaxLineView(
                name=tax["name"],
                jurisdiction=tax["jurisdiction"],
                rate=Decimal(tax["rate"]),
                base=Decimal(tax["base"]),
                amount=Decimal(tax["amount"]),
                treatment=TaxTreatment(tax["treatment"]),
                note=tax.get("note"),
            )
            for tax in row.tax_lines
        ),
        subtotal=Money.from_minor_units(row.subtotal_minor, currency),
        tax=Money.from_minor_units(row.tax_minor, currency),
        total=Money.from_minor_units(row.total_minor, currency),
        payment=_payment(payment, card) if payment is not None else None,
        period_start=row.period_start,
        period_end=row.period_end,
        billing=row.billing,
        seller=Seller.from_snapshot(row.seller) if row.seller is not None else None,
    )


def invoices_with_payments() -> Select[Invoice, Payment, Card]:
    """Invoices joined to their payment and the payment's card (also a removed one), so that
    showing them costs one statement, not one more per invoice and per card."""
    return (
        select(Invoice, Payment, Card)
        .outerjoin(Payment, Payment.id == Invoice.payment_id)
        .outerjoin(Card, Card.id == Payment.card_id)
    )


def invoices(session: Session, workspace_id: str, limit: int) -> list[InvoiceView]:
    """The ``limit`` newest invoices, newest first."""
    rows = session.execute(
        invoices_with_payments()
        .where(Invoice.workspace_id == workspace_id)
        .order_by(Invoice.issued_at.desc(), Invoice.number.desc())
        .limit(limit)
    ).all()
    return [invoice_view(*row) for row in rows]


def invoice(session: Session, invoice_id: str, workspace_id: str | None = None) -> InvoiceView | None:
    """An invoice by id, with its payment and card in one statement. Given ``workspace_id``,
    only that workspace's: another workspace's invoice is None, as an unknown id is."""
    query = invoices_with_payments().where(Invoice.id == invoice_id)
    if workspace_id is not None:
        query = query.where(Invoice.workspace_id == workspace_id)
    found = session.execute(query).first()
    return invoice_view(*found) if found is not None else None


# ------------------------------------------------------------------ the scheduled change


@dataclass(frozen=True)
class ScheduledChangeView:
    plan: Plan
    email_credits: int
    messaging_credits: int
    effective_at: datetime
    due_at_renewal: Charge  # as the renewal will price it (without the VAT ID if it is now refused)


def scheduled_change(deps: Deps, session: Session, workspace_id: str) -> ScheduledChangeView | None:
    """The change waiting for the end of the period, priced as its renewal will be, read with
    the billing details it is taxed by in one statement. None if there is none, or if the
    catalog no longer has its plan (the renewal reports that)."""
    found = session.execute(
        select(ScheduledChange, BillingDetails)
        .outerjoin(BillingDetails, BillingDetails.workspace_id == ScheduledChange.workspace_id)
        .where(ScheduledChange.workspace_id == workspace_id)
    ).first()
    if found is None:
        return None
    change, saved = found
    plan = price_changes.scheduled_plan(deps.catalog, change)
    if plan is None:
        return None
    config = Configuration(plan, change.email_credits, change.messaging_credits)
    row = session.get(Workspace, workspace_id)
    if row is not None:  # a price change noticed for the plan applies at the same renewal
        config = price_changes.configuration_at_renewal(
            deps.catalog, session, row, config, change.effective_at
        )
    charge, _ = price_renewal(deps, config, details.tax_customer(saved), change.effective_at)
    return ScheduledChangeView(
        plan, change.email_credits, change.messaging_credits, change.effective_at, charge
    )
