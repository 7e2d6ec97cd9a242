"""GraphQL object types: thin views over the core's frozen values."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import TypeAlias

import strawberry
from strawberry.scalars import JSON

from gateway.core import catalog as cat
from gateway.core import messaging, pricing, sms, statuses, tax
from gateway.core.money import Money as CoreMoney
from gateway.plugin_api import messaging as plugin_messaging
from gateway.plugin_api import payments
from gateway.services import messages as message_pricing
from gateway.services import renewal_method


@strawberry.type(description="An exact amount of money. `amount` is a decimal string, never a float.")
class Money:
    amount: Decimal
    currency: str

    @classmethod
    def of(cls, money: CoreMoney) -> Money:
        """Whole minor units always show them ("0.00", not "0"; never "-0.00");
        sub-minor prices (a per-credit 0.0015) keep their digits."""
        amount = money.rounded().amount if money.is_rounded else money.amount
        return cls(amount=amount.copy_abs() if amount.is_zero() else amount, currency=money.currency)


# Domain enums shown in GraphQL. strawberry.enum() registers the GraphQL enum on the class itself
# and returns it unchanged; the alias gives it its API name for annotations.
CreditKind: TypeAlias = cat.CreditKind
strawberry.enum(cat.CreditKind, description="The kinds of monthly credits a plan grants.")
Channel: TypeAlias = messaging.Channel
strawberry.enum(messaging.Channel, description="Messaging channels.")
ChangeKind: TypeAlias = pricing.ChangeKind
strawberry.enum(
    pricing.ChangeKind,
    description=(
        "How a plan change applies; no limit is lowered before the next period. NEW_PERIOD: from a "
        "free plan, a paid period starts now. UPGRADE: applied now, prorated. DOWNGRADE: scheduled "
        "for the next period, nothing due now. SPLIT: the target plan applies now (prorated) with "
        "every limit kept at least at its current value, and the exact target, with the reduced "
        "limits, at the next period."
    ),
)
Timing: TypeAlias = pricing.Timing
strawberry.enum(pricing.Timing)
LineKind: TypeAlias = pricing.LineKind
strawberry.enum(pricing.LineKind)
TaxTreatment: TypeAlias = tax.TaxTreatment
strawberry.enum(tax.TaxTreatment)
CustomerType: TypeAlias = tax.CustomerKind
strawberry.enum(tax.CustomerKind, name="CustomerType")
RenewalPaymentProblem: TypeAlias = renewal_method.RenewalProblem
strawberry.enum(
    renewal_method.RenewalProblem,
    name="RenewalPaymentProblem",
    description=(
        "Why the next renewal would not be paid as things stand. NO_PAYMENT_METHOD: none chosen and no "
        "prepaid balance to fall back on. INSUFFICIENT_BALANCE: My balance pays it and holds less than the "
        "renewal's amount now. CARD_REMOVED: the chosen card was removed. CARD_EXPIRES: the chosen card "
        "expires before the renewal date. PAYMENT_METHOD_UNAVAILABLE: the chosen method's plugin is not "
        "installed. OFF_SESSION_NOT_SUPPORTED: the chosen method cannot charge with the customer away. "
        "BILLING_DETAILS_INCOMPLETE: the renewal cannot be invoiced."
    ),
)
PaymentCapability: TypeAlias = payments.Capability
strawberry.enum(
    payments.Capability,
    name="PaymentCapability",
    description=(
        "What a payment method can do. PAY_NOW: settles at once. CUSTOMER_ACTION: may ask the customer to act "
        "(3-D Secure), answered by confirmPayment. SETTLE_LATER: may answer PaymentPending with instructions "
        "(a bank transfer). OFF_SESSION: can pay renewals. REFUND: can give money back. CARDS: takes new and "
        "saved cards. PREPAID_BALANCE: spends My balance (shows the balance after purchase; cannot pay top-ups)."
    ),
)


# How credit quantities are typed, said in the schema wherever they appear.
USAGE_NUMBERS = (
    "Credit quantities of usage (used, included, remaining, requested, spent) are Decimal strings: a "
    "message can cost a fraction of a credit (a WhatsApp Utility message to Colombia costs 0.02). "
    "Limits and slider positions (what a plan grants or a customer sets: Allowance.limit, CreditOption, "
    "the emailCredits and messagingCredits of plans, quotes and orders) are Int: limits are whole credits."
)


@strawberry.type(description="A graduated price tier: each credit is priced by the tier it falls in.")
class PriceTier:
    from_credits: int = strawberry.field(description="First credit of the tier (1-based, inclusive).")
    up_to: int | None = strawberry.field(description="Last credit of the tier; null: no end.")
    unit_price: Money = strawberry.field(description="Price per credit; may have sub-cent precision.")


@strawberry.type(description="A credit limit of a plan and its slider.")
class CreditOption:
    kind: CreditKind
    included: int = strawberry.field(description="Credits covered by the plan's base price.")
    min: int
    max: int
    step: int
    default: int
    adjustable: bool
    tiers: list[PriceTier]

    @classmethod
    def of(cls, option: cat.CreditOption, currency: str) -> CreditOption:
        tiers, lower = [], option.included
        for tier in option.tiers:
            tiers.append(
                PriceTier(
                    from_credits=lower + 1,
                    up_to=tier.up_to,
                    unit_price=Money(amount=tier.unit_price, currency=currency),
                )
            )
            lower = tier.up_to or lower
        return cls(
            kind=option.kind,
            included=option.included,
            min=option.min,
            max=option.max,
            step=option.step,
            default=option.default,
            adjustable=option.adjustable,
            tiers=tiers,
        )


@strawberry.type
class Plan:
    code: str
    name: str
    description: str
    tier: int = strawberry.field(description="Order from lowest to highest; moving down is a downgrade.")
    channels: list[Channel]
    base_price: Money | None = strawberry.field(description="Monthly base price; null for quote-only plans.")
    purchasable: bool
    adjustable: bool
    requires_quote: bool = strawberry.field(description="True for plans sold by quote (Custom).")
    email_credits: CreditOption | None
    messaging_credits: CreditOption | None
    features: list[str] = strawberry.field(
        description="The bullets a Select a Plan page lists for the plan, in order (from the catalog)."
    )
    price_version: str = strawberry.field(
        description="The price version these prices belong to. The plans list shows the version on "
        "sale now; a workspace's plan shows the version it bought, which it keeps under the "
        "catalog's rule for price changes (see Workspace.priceChange)."
    )
    price_effective_from: datetime | None = strawberry.field(
        description="When this price version went on sale; null for the plan's first version."
    )

    @classmethod
    def of(cls, plan: cat.Plan, currency: str) -> Plan:
        email = plan.option(cat.CreditKind.EMAIL)
        messaging = plan.option(cat.CreditKind.MESSAGING)
        return cls(
            code=plan.code,
            name=plan.name,
            description=plan.description,
            tier=plan.tier,
            channels=list(plan.channels),
            base_price=Money.of(plan.base_price) if plan.base_price is not None else None,
            purchasable=plan.purchasable,
            adjustable=plan.adjustable,
            requires_quote=not plan.purchasable,
            email_credits=CreditOption.of(email, currency) if email else None,
            messaging_credits=CreditOption.of(messaging, currency) if messaging else None,
            features=list(plan.features),
            price_version=plan.price_version,
            price_effective_from=plan.effective_from,
        )


@strawberry.type(
    description="Notice of a new price for the workspace's plan: from effectiveAt (a renewal) it "
    "pays the plan's newer price version. Given only when the catalog's rule for that version "
    "moves existing subscribers after notice; a workspace that moves to another plan first "
    "keeps no notice."
)
class PriceChange:
    plan: Plan = strawberry.field(description="The plan at the new price version.")
    from_version: str = strawberry.field(description="The price version the workspace is on.")
    to_version: str = strawberry.field(description="The price version it moves to.")
    noticed_at: datetime
    effective_at: datetime = strawberry.field(description="The renewal from which the new price applies.")
    monthly_subtotal_before: Money = strawberry.field(
        description="Its configuration's monthly price now, before tax."
    )
    monthly_subtotal_after: Money = strawberry.field(
        description="The same configuration at the new price version, before tax."
    )


@strawberry.type
class OrderLine:
    kind: LineKind
    description: str
    quantity: int
    unit_price: Money | None
    amount: Money
    credit_kind: CreditKind | None
    price_version: str | None = strawberry.field(
        description="The plan's price version the line is priced at (see Plan.priceVersion)."
    )

    @classmethod
    def of(cls, line: pricing.Line) -> OrderLine:
        return cls(
            kind=line.kind,
            description=line.description,
            quantity=line.quantity,
            unit_price=Money.of(line.unit_price) if line.unit_price else None,
            amount=Money.of(line.amount),
            credit_kind=line.credit_kind,
            price_version=line.price_version,
        )


@strawberry.type(description="One tax, computed once on its whole taxable base.")
class TaxLine:
    name: str
    jurisdiction: str
    rate: Decimal = strawberry.field(description="As a fraction: 0.19 for 19 %.")
    base: Money
    amount: Money
    treatment: TaxTreatment
    note: str | None

    @classmethod
    def of(cls, line: tax.TaxLine) -> TaxLine:
        return cls(
            name=line.name,
            jurisdiction=line.jurisdiction,
            rate=line.rate,
            base=Money.of(line.base),
            amount=Money.of(line.amount),
            treatment=line.treatment,
            note=line.note,
        )


EMAIL_LIMIT = "The monthly Email credit limit; null when the plan grants no Email credits."
MESSAGING_LIMIT = "The monthly SMS/WhatsApp credit limit; null when the plan grants no messaging credits."


def limit_of(plan: cat.Plan, kind: cat.CreditKind, limit: int) -> int | None:
    """A limit as the API shows it: null for a credit kind the plan does not grant."""
    return limit if plan.option(kind) is not None else None


def email_limit(configuration: pricing.Configuration) -> int | None:
    return limit_of(configuration.plan, cat.CreditKind.EMAIL, configuration.email_credits)


def messaging_limit(configuration: pricing.Configuration) -> int | None:
    return limit_of(configuration.plan, cat.CreditKind.MESSAGING, configuration.messaging_credits)


@strawberry.type(description="Lines charged together, with their tax.")
class Charge:
    lines: list[OrderLine]
    subtotal: Money
    tax_lines: list[TaxLine]
    tax: Money
    total: Money
    tax_calculated: bool = strawberry.field(
        description="False when no billing details were given: tax is then not included in `total`."
    )

    @classmethod
    def of(cls, charge: pricing.Charge) -> Charge:
        return cls(
            lines=[OrderLine.of(line) for line in charge.lines],
            subtotal=Money.of(charge.subtotal),
            tax_lines=[TaxLine.of(t) for t in charge.tax_lines],
            tax=Money.of(charge.tax),
            total=Money.of(charge.total),
            tax_calculated=charge.tax_calculated,
        )


@strawberry.type(description="A configuration that takes effect at a given time.")
class PlanChange:
    timing: Timing
    effective_at: datetime
    plan: Plan
    email_credits: int | None = strawberry.field(description=EMAIL_LIMIT)
    messaging_credits: int | None = strawberry.field(description=MESSAGING_LIMIT)


@strawberry.type
class Proration:
    days_left: int
    days_in_period: int


@strawberry.type(description="The balance now and after paying what is due now from it.")
class BalancePreview:
    now: Money
    after_purchase: Money
    sufficient: bool


@strawberry.type(
    description="The Order Preview: what the change costs now and at renewal, and when each part applies."
)
class Quote:
    kind: ChangeKind
    plan: Plan
    email_credits: int | None = strawberry.field(description=EMAIL_LIMIT)
    messaging_credits: int | None = strawberry.field(description=MESSAGING_LIMIT)
    monthly_lines: list[OrderLine] = strawberry.field(description="The target configuration's monthly price.")
    monthly_subtotal: Money
    changes: list[PlanChange]
    due_now: Charge
    due_at_renewal: Charge
    renewal_at: datetime
    period_start: datetime
    period_end: datetime
    proration: Proration | None
    computed_at: datetime
    expires_at: datetime = strawberry.field(
        description="Checkout refuses this quote's total after this time."
    )
    balance: BalancePreview = strawberry.field(description="For paying with My balance.")
    token: str = strawberry.field(
        description="Send as `checkout(input: {quoteToken})` to buy exactly this quote: it signs the "
        "workspace, plan, credits, `dueNow.total` and `expiresAt` (opaque; nothing is stored)."
    )


@strawberry.type
class PlanSelection:
    plan: Plan
    adjustable: bool
    requires_quote: bool
    sales_contact: str | None = strawberry.field(description="Set when the plan is sold by quote.")
    email_credits: int | None = strawberry.field(
        description="Where the email slider starts; null for a plan sold by quote or without Email credits."
    )
    messaging_credits: int | None = strawberry.field(
        description="Where the messaging slider starts; null for a plan sold by quote or without messaging "
        "credits."
    )
    change: ChangeKind | None = strawberry.field(
        description="For an authenticated workspace: how choosing this plan at the slider start applies."
    )
    effective_at: datetime | None = strawberry.field(
        description="For an authenticated workspace: when the plan itself would take effect."
    )


@strawberry.enum(description="The plan actions the Billing page offers.")
class PlanAction(enum.Enum):
    UPGRADE_PLAN = "UPGRADE_PLAN"
    CUSTOMIZE_CURRENT_PLAN = "CUSTOMIZE_CURRENT_PLAN"
    CHANGE_PLAN = "CHANGE_PLAN"


@strawberry.type
class Period:
    start: datetime
    end: datetime


@strawberry.type(description="A credit allowance for the current period (unused credits do not roll over).")
class Allowance:
    kind: CreditKind
    limit: int = strawberry.field(description="Credits per period: a whole number, as limits are.")


@strawberry.type
class PaymentMethod:
    code: str
    label: str
    capabilities: list[PaymentCapability]


@strawberry.type
class MessageType:
    code: str
    name: str
    channel: Channel
    credit_kind: CreditKind
    segmented: bool = strawberry.field(description="True for SMS: long texts are sent and priced as parts.")

    @classmethod
    def of(cls, offer: message_pricing.MessageOffer) -> MessageType:
        return cls(
            code=offer.code,
            name=offer.name,
            channel=offer.channel,
            credit_kind=offer.credit_kind,
            segmented=offer.segmented,
        )


@strawberry.type(description="A destination country with messaging rates.")
class Destination:
    country: str = strawberry.field(description="ISO 3166-1 alpha-2 code, e.g. DE.")
    name: str
    message_types: list[MessageType] = strawberry.field(
        description="The message types the country can be sent (SMS, WhatsApp ...), in the order of "
        "`messageTypes`; Email needs no destination and is not listed."
    )

    @classmethod
    def of(
        cls, destination: plugin_messaging.Destination, messages: message_pricing.MessageCatalog
    ) -> Destination:
        return cls(
            country=destination.country,
            name=destination.name,
            message_types=[MessageType.of(m) for m in messages.offered_to(destination.country)],
        )


SmsEncoding: TypeAlias = sms.SmsEncoding
strawberry.enum(sms.SmsEncoding, description="How an SMS text is encoded.")


@strawberry.type(description="How many messages the given credits buy.")
class Estimate:
    message_type: MessageType
    destination: Destination | None
    credits: int
    credit_kind: CreditKind
    credits_per_message: Decimal = strawberry.field(description="For one whole message, all segments.")
    segments: int
    encoding: SmsEncoding | None
    characters: int | None
    messages: int | None = strawberry.field(description="Whole messages; null when messages are free.")
    credits_left: Decimal | None

    @classmethod
    def of(cls, estimate: message_pricing.Estimate, messages: message_pricing.MessageCatalog) -> Estimate:
        cost = estimate.cost
        segments = cost.segments
        return cls(
            message_type=MessageType.of(cost.offer),
            destination=Destination.of(cost.destination, messages) if cost.destination is not None else None,
            credits=estimate.credits,
            credit_kind=cost.offer.credit_kind,
            credits_per_message=cost.per_message,
            segments=cost.parts,
            encoding=segments.encoding if segments else None,
            characters=segments.characters if segments else None,
            messages=estimate.messages,
            credits_left=estimate.credits_left,
        )


@strawberry.type
class Plugin:
    name: str
    distribution: str | None
    version: str | None
    module: str
    provides: list[str]


# ------------------------------------------------------------------ billing


WorkspaceStatus: TypeAlias = statuses.WorkspaceStatus
strawberry.enum(statuses.WorkspaceStatus)


@strawberry.enum(description="What a tax ID register (VIES) said of the saved VAT ID.")
class VatIdVerification(enum.Enum):
    VERIFIED = "verified"  # the register confirms the VAT ID
    UNVERIFIED = "unverified"  # the register could not answer; the ID passed the format check only


@strawberry.type
class BillingDetails:
    customer_type: CustomerType | None
    name: str | None
    company_name: str | None
    address_line1: str | None
    address_line2: str | None
    city: str | None
    postal_code: str | None
    region: str | None
    country: str | None
    vat_id: str | None
    vat_id_verification: VatIdVerification | None = strawberry.field(
        description=(
            "What a tax ID register said of vatId when it was saved (VIES for EU VAT IDs, if the gateway "
            "checks them); null when no register was asked."
        )
    )
    email: str | None
    missing_fields: list[str] = strawberry.field(
        description="What checkout still needs, as input field names."
    )


@strawberry.type(description="One line of payment instructions, e.g. IBAN, BIC, reference, amount.")
class Instruction:
    name: str
    value: str


@strawberry.type(description="A saved card: never its number, only what identifies it to a person.")
class SavedCard:
    id: strawberry.ID
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    fingerprint: str
    is_renewal_method: bool


@strawberry.type(
    description=(
        "How the next renewal will be paid, as things stand now: the method renewal will charge with the "
        "customer away, the amount (priced as the renewal will be, with a scheduled change that applies by "
        "then), and whether it can pay. Choose the method with setDefaultPaymentMethod."
    )
)
class RenewalPayment:
    method: PaymentMethod | None = strawberry.field(
        description="The method the renewal will charge; null when it cannot charge any (see problem)."
    )
    chosen: bool = strawberry.field(
        description="False when the workspace chose no method: renewals then fall back to My balance."
    )
    card: SavedCard | None = strawberry.field(description="The saved card charged, for a card method.")
    next_renewal_at: datetime = strawberry.field(description="The end of the current period.")
    next_renewal_amount: Money = strawberry.field(description="What the renewal will charge, tax included.")
    nothing_to_pay: bool = strawberry.field(description="True on a free plan: renewals charge nothing.")
    can_pay_next_renewal: bool = strawberry.field(
        description="False when, as things stand, the renewal would not be paid (the workspace would go past due)."
    )
    problem: RenewalPaymentProblem | None = strawberry.field(description="Why not, when it cannot pay.")
    message: str = strawberry.field(description="One sentence for the Billing page, whatever the case.")


@strawberry.type(description="A change waiting for the end of the period, and what the renewal will cost.")
class ScheduledChange:
    plan: Plan
    email_credits: int | None = strawberry.field(description=EMAIL_LIMIT)
    messaging_credits: int | None = strawberry.field(description=MESSAGING_LIMIT)
    effective_at: datetime
    due_at_renewal: Charge


@strawberry.type
class InvoiceLine:
    kind: LineKind
    description: str
    quantity: int
    unit_price: Money | None
    amount: Money
    price_version: str | None = strawberry.field(
        description="The plan's price version the line is priced at (see Plan.priceVersion); "
        "null on lines not priced from a plan, such as a credit note's."
    )


@strawberry.type
class InvoiceTaxLine:
    name: str
    jurisdiction: str
    rate: Decimal
    base: Money
    amount: Money
    treatment: TaxTreatment
    note: str | None


InvoiceStatus: TypeAlias = statuses.InvoiceStatus
strawberry.enum(statuses.InvoiceStatus)


@strawberry.type(description="Who issued an invoice, as it was on the invoice date.")
class InvoiceSeller:
    name: str = strawberry.field(description="The legal name.")
    address: list[str] = strawberry.field(description="The postal address, one line each.")
    country: str
    vat_id: str | None
    email: str | None
    demo: bool = strawberry.field(
        description="The gateway ran with its demo seller identity: the invoice is not a valid one."
    )


@strawberry.type
class Invoice:
    id: strawberry.ID
    number: str
    kind: str = strawberry.field(description="checkout or renewal")
    status: InvoiceStatus
    issued_at: datetime
    lines: list[InvoiceLine]
    tax_lines: list[InvoiceTaxLine]
    subtotal: Money
    tax: Money
    total: Money
    payment_method: str | None = strawberry.field(description='e.g. "balance" or "card visa •••• 4242".')
    period_start: datetime | None
    period_end: datetime | None
    billing_details: JSON = strawberry.field(
        description="The buyer's billing details as they were on the invoice date."
    )
    seller: InvoiceSeller | None = strawberry.field(
        description="The seller as it was on the invoice date; null on invoices issued before the "
        "gateway recorded it."
    )
    pdf_url: str = strawberry.field(
        description="The invoice as a PDF, relative to the gateway's address: GET it with the "
        "workspace's API key as a bearer token."
    )


@strawberry.type(description="One credit kind's usage this period. " + USAGE_NUMBERS)
class CreditUsage:
    kind: CreditKind
    used: Decimal = strawberry.field(description="Credits used this period.")
    included: Decimal = strawberry.field(
        description="This period's limit (the allowance's limit, as a Decimal); unused credits do not roll over."
    )
    remaining: Decimal = strawberry.field(description="included - used, never below 0.")


@strawberry.type(description="The plan-and-usage widget.")
class Usage:
    period_start: datetime
    period_end: datetime
    credits: list[CreditUsage]
