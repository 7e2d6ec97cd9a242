"""The caller's workspace: plan, period, usage, balance, billing details, cards,
scheduled change and invoices (the Billing pages)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import strawberry
from sqlalchemy import select

from gateway.api import errors as e
from gateway.api import types as t
from gateway.api.common import Info, plan_of
from gateway.core import catalog as cat
from gateway.core import pricing
from gateway.core.money import Money
from gateway.core.tax import InvalidTaxId
from gateway.services import billing_details as details
from gateway.services.workspaces import subscription_of
from gateway.storage.db import BillingDetails as BillingDetailsRow
from gateway.storage.db import Card, Invoice, Payment, ScheduledChange, UsageCounter
from gateway.storage.db import Workspace as WorkspaceRow


@strawberry.type(description="The caller's workspace.")
class Workspace:
    id: str
    name: str
    status: t.WorkspaceStatus
    plan: t.Plan
    email_credits: int
    messaging_credits: int
    period: t.Period
    allowances: list[t.Allowance]
    actions: list[t.PlanAction] = strawberry.field(description="Plan actions open on the Billing page.")
    payment_methods: list[t.PaymentMethod]
    balance: t.Money = strawberry.field(description="The prepaid balance: the sum of the ledger.")
    row: strawberry.Private[WorkspaceRow]

    @classmethod
    def of(cls, info: Info, row: WorkspaceRow) -> Workspace:
        gateway = info.context.gateway
        subscription = subscription_of(row, gateway.catalog, info.context.now)
        plan = subscription.configuration.plan
        if plan.is_free:
            actions = [t.PlanAction.UPGRADE_PLAN]
        elif plan.adjustable:
            actions = [t.PlanAction.CUSTOMIZE_CURRENT_PLAN, t.PlanAction.CHANGE_PLAN]
        else:
            actions = [t.PlanAction.CHANGE_PLAN]
        allowances = [
            t.Allowance(kind=kind, limit=subscription.configuration.limit(kind))
            for kind in cat.CreditKind
            if plan.option(kind) is not None
        ]
        return cls(
            id=row.id,
            name=row.name,
            status=t.WorkspaceStatus(row.status),
            plan=plan_of(info, plan),
            email_credits=row.email_credits,
            messaging_credits=row.messaging_credits,
            period=t.Period(start=subscription.period_start, end=subscription.period_end),
            allowances=allowances,
            actions=actions,
            payment_methods=[
                t.PaymentMethod(code=m.code, label=m.label) for m in gateway.payment_methods.values()
            ],
            balance=t.Money.of(Money.from_minor_units(row.balance_minor, row.currency)),
            row=row,
        )

    @strawberry.field(description="Credits used and included this period (the plan-and-usage widget).")
    def usage(self, info: Info) -> t.Usage:
        subscription = subscription_of(self.row, info.context.gateway.catalog, info.context.now)
        counters = {
            c.kind: c.used
            for c in info.context.session.scalars(
                select(UsageCounter).where(
                    UsageCounter.workspace_id == self.row.id,
                    UsageCounter.period_start == subscription.period_start,
                )
            )
        }
        credits = []
        for kind in cat.CreditKind:
            if subscription.configuration.plan.option(kind) is None:
                continue
            used = counters.get(kind.value, Decimal(0)).normalize() + 0
            included = subscription.configuration.limit(kind)
            credits.append(
                t.CreditUsage(
                    kind=kind,
                    used=used,
                    included=included,
                    remaining=max(Decimal(included) - used, Decimal(0)),
                )
            )
        return t.Usage(
            period_start=subscription.period_start, period_end=subscription.period_end, credits=credits
        )

    @strawberry.field
    def billing_details(self, info: Info) -> t.BillingDetails | None:
        row = info.context.session.get(BillingDetailsRow, self.row.id)
        if row is None:
            return None
        return t.BillingDetails(
            customer_type=t.CustomerType(row.customer_type) if row.customer_type else None,
            name=row.name,
            company_name=row.company_name,
            address_line1=row.address_line1,
            address_line2=row.address_line2,
            city=row.city,
            postal_code=row.postal_code,
            region=row.region,
            country=row.country,
            vat_id=row.vat_id,
            email=row.email,
            missing_fields=e.api_path(details.missing_fields(row)),
        )

    @strawberry.field(description="Saved cards, newest first.")
    def cards(self, info: Info) -> list[t.SavedCard]:
        rows = info.context.session.scalars(
            select(Card)
            .where(Card.workspace_id == self.row.id, Card.removed_at.is_(None))
            .order_by(Card.created_at.desc(), Card.id)
        )
        return [saved_card(card, self.row) for card in rows]

    @strawberry.field(description="A downgrade or reduced limit waiting for the end of the period.")
    def scheduled_change(self, info: Info) -> t.ScheduledChange | None:
        row = info.context.session.get(ScheduledChange, self.row.id)
        if row is None:
            return None
        gateway = info.context.gateway
        plan = gateway.catalog.plan(row.plan_code)
        if plan is None:  # the catalog dropped the plan; the renewal will report it
            return None
        config = pricing.Configuration(plan, row.email_credits, row.messaging_credits)
        customer = details.tax_customer(info.context.session.get(BillingDetailsRow, self.row.id))
        try:
            charge = pricing.renewal_charge(
                config,
                customer=customer,
                tax=gateway.tax,
                seller_country=gateway.seller_country,
                on=row.effective_at,
            )
        except InvalidTaxId:  # the saved VAT ID no longer checks out: show the price, tax not yet known
            charge = pricing.renewal_charge(
                config,
                customer=None,
                tax=None,
                seller_country=gateway.seller_country,
                on=row.effective_at,
            )
        return t.ScheduledChange(
            plan=plan_of(info, plan),
            email_credits=row.email_credits,
            messaging_credits=row.messaging_credits,
            effective_at=row.effective_at,
            due_at_renewal=t.Charge.of(charge),
        )

    @strawberry.field(description="Invoices, newest first.")
    def invoices(self, info: Info, first: int = 50) -> list[t.Invoice]:
        limit = max(0, min(first, 200))
        rows = info.context.session.scalars(
            select(Invoice)
            .where(Invoice.workspace_id == self.row.id)
            .order_by(Invoice.issued_at.desc(), Invoice.number.desc())
            .limit(limit)
        )
        return [invoice_of(info, row) for row in rows]


WorkspaceResult = Annotated[Workspace | e.AuthenticationRequired, strawberry.union("WorkspaceResult")]


def saved_card(card: Card, workspace: WorkspaceRow) -> t.SavedCard:
    return t.SavedCard(
        id=card.id,
        brand=card.brand,
        last4=card.last4,
        exp_month=card.exp_month,
        exp_year=card.exp_year,
        fingerprint=card.fingerprint,
        is_renewal_method=workspace.renewal_payment == f"card:{card.id}",
    )


def _money(value: str | None, currency: str) -> t.Money | None:
    return None if value is None else t.Money(amount=Decimal(value), currency=currency)


def invoice_of(info: Info, row: Invoice) -> t.Invoice:
    currency = row.currency
    payment = info.context.session.get(Payment, row.payment_id) if row.payment_id else None
    method = None
    if payment is not None:
        method = payment.method
        if payment.card_id:
            card = info.context.session.get(Card, payment.card_id)
            if card is not None:
                method = f"card {card.brand} •••• {card.last4}"
    return t.Invoice(
        id=row.id,
        number=row.number,
        kind=row.kind,
        status=t.InvoiceStatus(row.status),
        issued_at=row.issued_at,
        lines=[
            t.InvoiceLine(
                kind=t.LineKind(line["kind"]),
                description=line["description"],
                quantity=line["quantity"],
                unit_price=_money(line.get("unit_price"), currency),
                amount=t.Money(amount=Decimal(line["amount"]), currency=currency),
            )
            for line in row.lines
        ],
        tax_lines=[
            t.InvoiceTaxLine(
                name=tax["name"],
                jurisdiction=tax["jurisdiction"],
                rate=Decimal(tax["rate"]),
                base=t.Money(amount=Decimal(tax["base"]), currency=currency),
                amount=t.Money(amount=Decimal(tax["amount"]), currency=currency),
                treatment=t.TaxTreatment(tax["treatment"]),
                note=tax.get("note"),
            )
            for tax in row.tax_lines
        ],
        subtotal=t.Money.of(Money.from_minor_units(row.subtotal_minor, currency)),
        tax=t.Money.of(Money.from_minor_units(row.tax_minor, currency)),
        total=t.Money.of(Money.from_minor_units(row.total_minor, currency)),
        payment_method=method,
        period_start=row.period_start,
        period_end=row.period_end,
        billing_details=row.billing,
    )
