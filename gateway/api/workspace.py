"""The caller's workspace: plan, period, usage, balance, billing details, cards,
scheduled change and invoices (the Billing pages), and its history as cursor connections
(invoices, payments, balance transactions, usage per period, events)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import strawberry
from strawberry.scalars import JSON

from gateway.api import errors as e
from gateway.api import history as h
from gateway.api import types as t
from gateway.api.common import Info, plan_of
from gateway.api.subscriptions import Event
from gateway.core import catalog as cat
from gateway.core.seller import Seller
from gateway.plugin_api.payments import PaymentMethod
from gateway.services import billing_views as views
from gateway.services import history, price_changes, renewal_method
from gateway.services.cards import renewal_card_id
from gateway.services.invoice_pdf import pdf_path
from gateway.services.usage import PeriodUsage, normal
from gateway.services.workspaces import subscription_of


@strawberry.type(description="The caller's workspace.")
class Workspace:
    id: strawberry.ID = strawberry.field(
        description="Identifies the workspace; events and webhooks carry it as workspaceId."
    )
    name: str = strawberry.field(description="The workspace's display name.")
    status: t.WorkspaceStatus = strawberry.field(
        description="Whether it is in good standing, past due or suspended for unpaid invoices."
    )
    plan: t.Plan = strawberry.field(
        description="The current plan, at the price version the workspace bought."
    )
    email_credits: int = strawberry.field(
        description="The monthly Email credit limit (the EMAIL entry of `allowances`).",
        deprecation_reason="Use `allowances` (the limit of kind EMAIL): the one place of the current limits.",
    )
    messaging_credits: int = strawberry.field(
        description="The monthly SMS/WhatsApp credit limit (the MESSAGING entry of `allowances`).",
        deprecation_reason="Use `allowances` (the limit of kind MESSAGING): the one place of the current "
        "limits.",
    )
    period: t.Period = strawberry.field(description="The current billing period.")
    allowances: list[t.Allowance] = strawberry.field(
        description="The current limits, one per credit kind the plan grants (a kind it does not grant is "
        "left out): the one place to read them, and where Customize Current Plan's sliders start. "
        "`usage` shows how much of each this period used."
    )
    actions: list[t.PlanAction] = strawberry.field(description="Plan actions open on the Billing page.")
    payment_methods: list[t.PaymentMethod] = strawberry.field(
        description="The installed payment methods, for checkout, top-ups and invoices."
    )
    balance: t.Money = strawberry.field(description="The prepaid balance: the sum of the ledger.")
    view: strawberry.Private[views.WorkspaceView]  # what the fields below read from

    @classmethod
    def of(cls, info: Info, workspace: views.WorkspaceView) -> Workspace:
        gateway = info.context.gateway
        subscription = subscription_of(workspace, gateway.catalog, info.context.now)
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
            id=strawberry.ID(workspace.id),
            name=workspace.name,
            status=t.WorkspaceStatus(workspace.status),
            plan=plan_of(info, plan),
            email_credits=workspace.email_credits,
            messaging_credits=workspace.messaging_credits,
            period=t.Period(start=subscription.period_start, end=subscription.period_end),
            allowances=allowances,
            actions=actions,
            payment_methods=[payment_method_of(m) for m in gateway.payment_methods.values()],
            balance=t.Money.of(workspace.balance),
            view=workspace,
        )

    @strawberry.field(description="Credits used and included this period (the plan-and-usage widget).")
    def usage(self, info: Info) -> t.Usage:
        subscription = subscription_of(self.view, info.context.gateway.catalog, info.context.now)
        return usage_of(views.period_usage(info.context.session, self.view.id, subscription))

    @strawberry.field(description="The saved billing details (Edit billing details); null until first saved.")
    def billing_details(self, info: Info) -> t.BillingDetails | None:
        saved = views.billing_details(info.context.session, self.view.id)
        return billing_details_of(saved) if saved is not None else None

    @strawberry.field(description="Saved cards, newest first.")
    def cards(self, info: Info) -> list[t.SavedCard]:
        return [saved_card(card, self.view) for card in views.saved_cards(info.context.session, self.view.id)]

    @strawberry.field(description="A downgrade or reduced limit waiting for the end of the period.")
    def scheduled_change(self, info: Info) -> t.ScheduledChange | None:
        change = views.scheduled_change(info.context.gateway, info.context.session, self.view.id)
        if change is None:
            return None
        return t.ScheduledChange(
            plan=plan_of(info, change.plan),
            email_credits=t.limit_of(change.plan, cat.CreditKind.EMAIL, change.email_credits),
            messaging_credits=t.limit_of(change.plan, cat.CreditKind.MESSAGING, change.messaging_credits),
            effective_at=change.effective_at,
            due_at_renewal=t.Charge.of(change.due_at_renewal),
        )

    @strawberry.field(
        description="A new price the workspace was given notice of, applying at a coming renewal; "
        "null when its price is not changing."
    )
    def price_change(self, info: Info) -> t.PriceChange | None:
        notice = price_changes.notice(info.context.gateway.catalog, info.context.session, self.view)
        if notice is None:
            return None
        return t.PriceChange(
            plan=plan_of(info, notice.plan),
            from_version=notice.from_version,
            to_version=notice.plan.price_version,
            noticed_at=notice.noticed_at,
            effective_at=notice.effective_at,
            monthly_subtotal_before=t.Money.of(notice.monthly_subtotal_before),
            monthly_subtotal_after=t.Money.of(notice.monthly_subtotal_after),
        )

    @strawberry.field(
        description="How the next renewal will be paid and whether it can be (the renewal method); "
        "also in every CheckoutSuccess."
    )
    def renewal_payment(self, info: Info) -> t.RenewalPayment:
        return renewal_payment_of(info, self.view)

    @strawberry.field(
        description="One of the workspace's invoices; null for an unknown id or another workspace's."
    )
    def invoice(
        self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(description="The invoice's `id`.")]
    ) -> t.Invoice | None:
        found = views.invoice(info.context.session, str(id), workspace_id=self.view.id)
        return invoice_of(found) if found is not None else None

    @strawberry.field(
        description="The newest invoices, newest first (at most 200); invoiceHistory pages through them all."
    )
    def invoices(
        self,
        info: Info,
        first: Annotated[
            int,
            strawberry.argument(description="How many to return; at most 200 are, and below 0 counts as 0."),
        ] = 50,
    ) -> list[t.Invoice]:
        limit = max(0, min(first, 200))
        return [invoice_of(invoice) for invoice in views.invoices(info.context.session, self.view.id, limit)]

    # ------------------------------------------------------------ history, a page at a time

    @strawberry.field(description="Every invoice, newest first: " + h.PAGE_ARGUMENTS)
    def invoice_history(
        self, info: Info, first: h.PageSize = history.DEFAULT_PAGE_SIZE, after: h.Cursor = None
    ) -> InvoiceHistoryResult:
        return e.reading(
            info,
            lambda: h.connection_of(
                history.invoices(info.context.session, self.view.id, first, after), invoice_of
            ),
        )

    @strawberry.field(description="Every payment, whatever came of it, newest first: " + h.PAGE_ARGUMENTS)
    def payments(
        self, info: Info, first: h.PageSize = history.DEFAULT_PAGE_SIZE, after: h.Cursor = None
    ) -> PaymentsResult:
        return e.reading(
            info,
            lambda: h.connection_of(
                history.payments(info.context.session, self.view.id, first, after),
                lambda payment: h.payment_of(payment, lambda card: saved_card(card, self.view)),
            ),
        )

    @strawberry.field(description="The balance's ledger entries, newest first: " + h.PAGE_ARGUMENTS)
    def balance_transactions(
        self, info: Info, first: h.PageSize = history.DEFAULT_PAGE_SIZE, after: h.Cursor = None
    ) -> BalanceTransactionsResult:
        return e.reading(
            info,
            lambda: h.connection_of(
                history.balance_transactions(info.context.session, self.view.id, first, after),
                h.balance_transaction_of,
            ),
        )

    @strawberry.field(
        description="Usage per billing period, newest period first; periods that used nothing are left "
        "out: " + h.PAGE_ARGUMENTS
    )
    def usage_history(
        self, info: Info, first: h.PageSize = history.DEFAULT_PAGE_SIZE, after: h.Cursor = None
    ) -> UsageHistoryResult:
        return e.reading(
            info,
            lambda: h.connection_of(
                history.usage_periods(info.context.session, self.view.id, first, after),
                lambda period: h.usage_period_of(period, self.view.period_start),
            ),
        )

    @strawberry.field(
        description="The workspace's events, oldest first (by sequence, as the `events` subscription "
        "sends them), optionally only some types (null or empty: every type). New events are added at "
        "the end: keep the last endCursor to read them later. " + h.PAGE_ARGUMENTS
    )
    def events(
        self,
        info: Info,
        first: h.PageSize = history.DEFAULT_PAGE_SIZE,
        after: h.Cursor = None,
        types: Annotated[
            list[str] | None,
            strawberry.argument(
                description="Only events of these types (see `webhookEventTypes`); null or empty: every type."
            ),
        ] = None,
    ) -> EventsResult:
        return e.reading(
            info,
            lambda: h.connection_of(
                history.events(info.context.session, self.view.id, first, after, types), Event.of
            ),
        )


WorkspaceResult = Annotated[
    Workspace | e.AuthenticationRequired | e.ScopeRequired,
    strawberry.union(
        "WorkspaceResult",
        description="The workspace, or AuthenticationRequired without a valid workspace API key.",
    ),
]
InvoiceHistoryResult = Annotated[
    h.Connection[t.Invoice] | e.InvalidPageRequest,
    strawberry.union(
        "InvoiceHistoryResult",
        description="A page of invoices, or InvalidPageRequest for a bad `first` or `after`.",
    ),
]
PaymentsResult = Annotated[
    h.Connection[h.Payment] | e.InvalidPageRequest,
    strawberry.union(
        "PaymentsResult",
        description="A page of payments, or InvalidPageRequest for a bad `first` or `after`.",
    ),
]
BalanceTransactionsResult = Annotated[
    h.Connection[h.BalanceTransaction] | e.InvalidPageRequest,
    strawberry.union(
        "BalanceTransactionsResult",
        description="A page of balance transactions, or InvalidPageRequest for a bad `first` or `after`.",
    ),
]
UsageHistoryResult = Annotated[
    h.Connection[h.UsagePeriod] | e.InvalidPageRequest,
    strawberry.union(
        "UsageHistoryResult",
        description="A page of usage periods, or InvalidPageRequest for a bad `first` or `after`.",
    ),
]
EventsResult = Annotated[
    h.Connection[Event] | e.InvalidPageRequest | e.UnknownEventType,
    strawberry.union(
        "EventsResult",
        description="A page of events, InvalidPageRequest for a bad `first` or `after`, or UnknownEventType for a type in `types` that does not exist.",
    ),
]


def usage_of(period: PeriodUsage) -> t.Usage:
    return t.Usage(
        period_start=period.period_start,
        period_end=period.period_end,
        credits=[
            t.CreditUsage(
                kind=c.kind, used=normal(c.used), included=Decimal(c.included), remaining=normal(c.remaining)
            )
            for c in period.credits
        ],
    )


def billing_details_of(saved: views.BillingDetailsView) -> t.BillingDetails:
    return t.BillingDetails(
        customer_type=t.CustomerType(saved.customer_type) if saved.customer_type else None,
        name=saved.name,
        company_name=saved.company_name,
        address_line1=saved.address_line1,
        address_line2=saved.address_line2,
        city=saved.city,
        postal_code=saved.postal_code,
        region=saved.region,
        country=saved.country,
        vat_id=saved.vat_id,
        vat_id_verification=t.VatIdVerification(saved.vat_id_status) if saved.vat_id_status else None,
        email=saved.email,
        missing_fields=list(saved.missing_fields),
    )


def saved_card(card: views.CardView, workspace: views.WorkspaceView) -> t.SavedCard:
    return t.SavedCard(
        id=strawberry.ID(card.id),
        brand=card.brand,
        last4=card.last4,
        exp_month=card.exp_month,
        exp_year=card.exp_year,
        fingerprint=card.fingerprint,
        is_renewal_method=renewal_card_id(workspace.renewal_payment) == card.id,
    )


def payment_method_of(method: PaymentMethod) -> t.PaymentMethod:
    return t.PaymentMethod(code=method.code, label=method.label, capabilities=sorted(method.capabilities))


def renewal_payment_of(info: Info, workspace: views.WorkspaceView) -> t.RenewalPayment:
    """How the next renewal of ``workspace`` will be paid (Workspace and CheckoutSuccess)."""
    gateway = info.context.gateway
    subscription = subscription_of(workspace, gateway.catalog, info.context.now)
    outlook = renewal_method.renewal_payment(
        gateway, info.context.session, workspace, subscription.configuration
    )
    return t.RenewalPayment(
        method=payment_method_of(outlook.method) if outlook.method is not None else None,
        chosen=outlook.chosen,
        card=saved_card(outlook.card, workspace) if outlook.card is not None else None,
        next_renewal_at=outlook.next_renewal_at,
        next_renewal_amount=t.Money.of(outlook.amount),
        nothing_to_pay=outlook.nothing_to_pay,
        can_pay_next_renewal=outlook.can_pay,
        problem=outlook.problem,
        message=outlook.message,
    )


def _payment_method(payment: views.PaymentView | None) -> str | None:
    """How an invoice names its payment: "balance", or "card visa •••• 4242"."""
    if payment is None:
        return None
    if payment.card is None:
        return payment.method
    return f"card {payment.card.brand} •••• {payment.card.last4}"


def invoice_of(invoice: views.InvoiceView) -> t.Invoice:
    currency = invoice.currency
    return t.Invoice(
        id=strawberry.ID(invoice.id),
        number=invoice.number,
        kind=invoice.kind,
        status=t.InvoiceStatus(invoice.status),
        issued_at=invoice.issued_at,
        lines=[
            t.InvoiceLine(
                kind=line.kind,
                description=line.description,
                quantity=line.quantity,
                unit_price=t.Money(amount=line.unit_price, currency=currency)
                if line.unit_price is not None
                else None,
                amount=t.Money(amount=line.amount, currency=currency),
                price_version=line.price_version,
            )
            for line in invoice.lines
        ],
        tax_lines=[
            t.InvoiceTaxLine(
                name=tax.name,
                jurisdiction=tax.jurisdiction,
                rate=tax.rate,
                base=t.Money(amount=tax.base, currency=currency),
                amount=t.Money(amount=tax.amount, currency=currency),
                treatment=tax.treatment,
                note=tax.note,
            )
            for tax in invoice.tax_lines
        ],
        subtotal=t.Money.of(invoice.subtotal),
        tax=t.Money.of(invoice.tax),
        total=t.Money.of(invoice.total),
        payment_method=views.payment_method_label(invoice.payment),
        period_start=invoice.period_start,
        period_end=invoice.period_end,
        billing_details=JSON(invoice.billing),
        seller=_seller_of(invoice.seller) if invoice.seller is not None else None,
        pdf_url=pdf_path(invoice.id),
    )


def _seller_of(seller: Seller) -> t.InvoiceSeller:
    return t.InvoiceSeller(
        name=seller.name,
        address=list(seller.address),
        country=seller.country,
        vat_id=seller.vat_id,
        email=seller.email,
        demo=seller.demo,
    )
