"""GraphQL object types: thin views over the core's frozen values."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeAlias

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
    amount: Decimal = strawberry.field(
        description='In major units of the currency (euros, not cents), e.g. "19.00"; whole amounts show every '
        "minor digit, and per-credit prices may have more digits."
    )
    currency: str = strawberry.field(description="ISO 4217 currency code, e.g. EUR.")

    @classmethod
    def of(cls, money: CoreMoney) -> Money:
        """Whole minor units always show them ("0.00", not "0"; never "-0.00");
        sub-minor prices (a per-credit 0.0015) keep their digits."""
        return cls(amount=money.shown, currency=money.currency)


def graphql_enum(
    cls: type[enum.Enum], values: Mapping[Any, str], *, description: str, name: str | None = None
) -> None:
    """Show a domain enum in GraphQL with a description per value.

    strawberry.enum() registers the GraphQL enum on the class itself and returns it unchanged; the
    domain class stays free of GraphQL (strawberry.enum_value would have to sit in its body), so the
    value descriptions are added to the registered definition here. Every member needs one."""
    strawberry.enum(cls, name=name, description=description)
    definition = cls.__strawberry_definition__  # type: ignore[attr-defined]
    definition.values = [
        dataclasses.replace(value, description=values[cls(value.value)]) for value in definition.values
    ]


# Domain enums shown in GraphQL, each aliased to its API name for annotations.
CreditKind: TypeAlias = cat.CreditKind
graphql_enum(
    cat.CreditKind,
    {
        cat.CreditKind.EMAIL: "Email credits: one per email sent.",
        cat.CreditKind.MESSAGING: "Messaging credits, spent by SMS and WhatsApp messages at each "
        "destination's rate.",
    },
    description="The kinds of monthly credits a plan grants.",
)
Channel: TypeAlias = messaging.Channel
graphql_enum(
    messaging.Channel,
    {
        messaging.Channel.EMAIL: "Email, paid with Email credits.",
        messaging.Channel.SMS: "SMS text messages, paid with messaging credits per segment.",
        messaging.Channel.WHATSAPP: "WhatsApp messages, paid with messaging credits per message type.",
    },
    description="Messaging channels.",
)
ChangeKind: TypeAlias = pricing.ChangeKind
graphql_enum(
    pricing.ChangeKind,
    {
        pricing.ChangeKind.NONE: "The workspace already has this plan and these limits: nothing to buy.",
        pricing.ChangeKind.NEW_PERIOD: "From a free plan: a paid period starts now, charged in full.",
        pricing.ChangeKind.UPGRADE: "Applied now, prorated for the rest of the period.",
        pricing.ChangeKind.DOWNGRADE: "Scheduled for the next period; nothing is due now.",
        pricing.ChangeKind.SPLIT: "The target plan applies now (prorated) with every limit kept at least "
        "at its current value, and the exact target, with the reduced limits, at the next period.",
    },
    description="How a plan change applies; no limit is lowered before the next period.",
)
Timing: TypeAlias = pricing.Timing
graphql_enum(
    pricing.Timing,
    {
        pricing.Timing.IMMEDIATE: "Now, when the order is paid.",
        pricing.Timing.AT_RENEWAL: "At the start of the next period.",
    },
    description="When a part of a plan change takes effect.",
)
LineKind: TypeAlias = pricing.LineKind
graphql_enum(
    pricing.LineKind,
    {
        pricing.LineKind.BASE: "The plan's monthly base price.",
        pricing.LineKind.CREDITS: "Credits above the included ones, one line per price tier.",
        pricing.LineKind.REMAINING_TIME: "The prorated charge for the new configuration's rest of the period.",
        pricing.LineKind.UNUSED_TIME: "The prorated credit (negative) for the unused time of the "
        "configuration it replaces.",
        pricing.LineKind.REFUND: "Money given back (negative), on a credit note.",
    },
    description="What an order or invoice line charges for.",
)
TaxTreatment: TypeAlias = tax.TaxTreatment
graphql_enum(
    tax.TaxTreatment,
    {
        tax.TaxTreatment.STANDARD: "Tax charged at the rate of the place of supply.",
        tax.TaxTreatment.REVERSE_CHARGE: "No tax charged: the customer, a business with a valid VAT ID, "
        "accounts for it.",
        tax.TaxTreatment.OUT_OF_SCOPE: "No tax charged: the supply is outside this tax's territory.",
    },
    description="How a tax applies to the customer.",
)
CustomerType: TypeAlias = tax.CustomerKind
graphql_enum(
    tax.CustomerKind,
    {
        tax.CustomerKind.PERSON: "A private person (a consumer): charged the tax of their country.",
        tax.CustomerKind.COMPANY: "A business: a company name is required, and a VAT ID may make the "
        "order reverse-charged.",
    },
    name="CustomerType",
    description="Who buys: a person or a company, which decides the tax treatment.",
)
RenewalPaymentProblem: TypeAlias = renewal_method.RenewalProblem
graphql_enum(
    renewal_method.RenewalProblem,
    {
        renewal_method.RenewalProblem.NO_PAYMENT_METHOD: "None chosen and no prepaid balance to fall back on.",
        renewal_method.RenewalProblem.INSUFFICIENT_BALANCE: "My balance pays it and holds less than the "
        "renewal's amount now.",
        renewal_method.RenewalProblem.CARD_REMOVED: "The chosen card was removed.",
        renewal_method.RenewalProblem.CARD_EXPIRES: "The chosen card expires before the renewal date.",
        renewal_method.RenewalProblem.PAYMENT_METHOD_UNAVAILABLE: "The chosen method's plugin is not "
        "installed.",
        renewal_method.RenewalProblem.OFF_SESSION_NOT_SUPPORTED: "The chosen method cannot charge with the "
        "customer away.",
        renewal_method.RenewalProblem.BILLING_DETAILS_INCOMPLETE: "The renewal cannot be invoiced: billing "
        "details are missing (see BillingDetails.missingFields).",
    },
    name="RenewalPaymentProblem",
    description="Why the next renewal would not be paid as things stand.",
)
PaymentCapability: TypeAlias = payments.Capability
graphql_enum(
    payments.Capability,
    {
        payments.Capability.PAY_NOW: "Settles at once.",
        payments.Capability.CUSTOMER_ACTION: "May ask the customer to act (3-D Secure), answered by "
        "confirmPayment.",
        payments.Capability.SETTLE_LATER: "May answer PaymentPending with instructions (a bank transfer).",
        payments.Capability.OFF_SESSION: "Can pay renewals, with the customer away.",
        payments.Capability.REFUND: "Can give money back.",
        payments.Capability.CARDS: "Takes new and saved cards.",
        payments.Capability.PREPAID_BALANCE: "Spends My balance (shows the balance after purchase; cannot "
        "pay top-ups).",
    },
    name="PaymentCapability",
    description="What a payment method can do.",
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
    kind: CreditKind = strawberry.field(description="The credit kind this limit is for.")
    included: int = strawberry.field(description="Credits covered by the plan's base price.")
    min: int = strawberry.field(description="The lowest limit the slider allows, in credits per month.")
    max: int = strawberry.field(description="The highest limit the slider allows, in credits per month.")
    step: int = strawberry.field(description="The slider's step: a limit is min plus a multiple of it.")
    default: int = strawberry.field(description="Where the slider starts for a workspace new to the plan.")
    adjustable: bool = strawberry.field(description="False when the limit is fixed at `default` (no slider).")
    tiers: list[PriceTier] = strawberry.field(
        description="The prices of credits above `included`, lowest tier first."
    )

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


@strawberry.type(description="A plan of the catalog, with its prices and credit sliders.")
class Plan:
    code: str = strawberry.field(
        description="The plan's stable identifier, e.g. omnichannel; send it as `planCode`."
    )
    name: str = strawberry.field(description="The display name, e.g. Omnichannel.")
    description: str = strawberry.field(description="One sentence for the plan card (from the catalog).")
    tier: int = strawberry.field(description="Order from lowest to highest; moving down is a downgrade.")
    channels: list[Channel] = strawberry.field(
        description="The messaging channels the plan's credits can pay for."
    )
    base_price: Money | None = strawberry.field(description="Monthly base price; null for quote-only plans.")
    purchasable: bool = strawberry.field(
        description="True when the plan can be bought at checkout; false for plans sold by quote."
    )
    adjustable: bool = strawberry.field(
        description="True when its credit limits can be set with sliders (Customize Plan)."
    )
    requires_quote: bool = strawberry.field(description="True for plans sold by quote (Custom).")
    email_credits: CreditOption | None = strawberry.field(
        description="The Email credit slider; null when the plan grants no Email credits."
    )
    messaging_credits: CreditOption | None = strawberry.field(
        description="The SMS/WhatsApp credit slider; null when the plan grants no messaging credits."
    )
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
    noticed_at: datetime = strawberry.field(
        description="When the workspace was given notice of the new price (UTC)."
    )
    effective_at: datetime = strawberry.field(description="The renewal from which the new price applies.")
    monthly_subtotal_before: Money = strawberry.field(
        description="Its configuration's monthly price now, before tax."
    )
    monthly_subtotal_after: Money = strawberry.field(
        description="The same configuration at the new price version, before tax."
    )


@strawberry.type(description="One line of an order: what it charges for and how much.")
class OrderLine:
    kind: LineKind = strawberry.field(description="What the line charges for.")
    description: str = strawberry.field(
        description='The line as printed, e.g. "Starter plan, monthly base price".'
    )
    quantity: int = strawberry.field(
        description="How many units the line charges: credits for CREDITS lines, else 1."
    )
    unit_price: Money | None = strawberry.field(
        description="The price of one credit on CREDITS lines (may have sub-cent precision); null on other lines."
    )
    amount: Money = strawberry.field(
        description="The line's total before tax; negative for a credit (UNUSED_TIME)."
    )
    credit_kind: CreditKind | None = strawberry.field(
        description="The credit kind of a CREDITS line; null for other lines."
    )
    price_version: str | None = strawberry.field(
        description="The plan's price version the line is priced at (see Plan.priceVersion)."
    )

    @classmethod
    def of(cls, line: pricing.Line) -> OrderLine:
        return cls(
            kind=line.kind,
            description=line.description,
            quantity=line.quantity,
            unit_price=Money.of(line.unit_price) if line.unit_price is not None else None,
            amount=Money.of(line.amount),
            credit_kind=line.credit_kind,
            price_version=line.price_version,
        )


@strawberry.type(description="One tax, computed once on its whole taxable base.")
class TaxLine:
    name: str = strawberry.field(
        description='The tax\'s name as printed, e.g. "VAT 19% (DE)" or "Not subject to EU VAT".'
    )
    jurisdiction: str = strawberry.field(
        description="Where the tax is due, as an ISO 3166-1 alpha-2 country code, e.g. DE."
    )
    rate: Decimal = strawberry.field(description="As a fraction: 0.19 for 19 %.")
    base: Money = strawberry.field(description="The taxable amount the rate applies to.")
    amount: Money = strawberry.field(
        description="The tax charged: base times rate, rounded to the currency's minor unit; 0 when not charged."
    )
    treatment: TaxTreatment = strawberry.field(description="Why the tax is or is not charged.")
    note: str | None = strawberry.field(
        description="The legal note printed on the invoice (e.g. for a reverse charge); null when none applies."
    )

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
    lines: list[OrderLine] = strawberry.field(description="The lines charged, before tax.")
    subtotal: Money = strawberry.field(description="The sum of the lines, before tax.")
    tax_lines: list[TaxLine] = strawberry.field(
        description="One line per tax; empty when no tax applies or it was not calculated."
    )
    tax: Money = strawberry.field(description="The sum of the tax lines.")
    total: Money = strawberry.field(description="What is charged: subtotal plus tax.")
    tax_calculated: bool = strawberry.field(
        description="False when no billing details were given: tax is then not included in `total`."
    )

    @classmethod
    def of(
        cls, charge: pricing.Charge, lines: list[OrderLine] | None = None, subtotal: Money | None = None
    ) -> Charge:
        """``lines`` and ``subtotal``: the API's values of ``charge.lines`` and ``charge.subtotal``
        when the caller has them already (a renewal charges the order's monthly lines)."""
        return cls(
            lines=lines if lines is not None else [OrderLine.of(line) for line in charge.lines],
            subtotal=subtotal if subtotal is not None else Money.of(charge.subtotal),
            tax_lines=[TaxLine.of(t) for t in charge.tax_lines],
            tax=Money.of(charge.tax),
            total=Money.of(charge.total),
            tax_calculated=charge.tax_calculated,
        )


@strawberry.type(description="A configuration that takes effect at a given time.")
class PlanChange:
    timing: Timing = strawberry.field(description="Whether it applies now or at the next renewal.")
    effective_at: datetime = strawberry.field(description="When it takes effect (UTC).")
    plan: Plan = strawberry.field(description="The plan from that time.")
    email_credits: int | None = strawberry.field(description=EMAIL_LIMIT)
    messaging_credits: int | None = strawberry.field(description=MESSAGING_LIMIT)


@strawberry.type(description="How much of the current period an immediate change is charged for.")
class Proration:
    days_left: int = strawberry.field(
        description="Whole calendar days from today's date (UTC) to the period's end date."
    )
    days_in_period: int = strawberry.field(
        description="Whole calendar days in the period; prorated lines charge daysLeft / daysInPeriod of the monthly price."
    )


@strawberry.type(description="The balance now and after paying what is due now from it.")
class BalancePreview:
    now: Money = strawberry.field(description="My balance now.")
    after_purchase: Money = strawberry.field(
        description="My balance after paying `dueNow.total` from it; negative when it does not cover it."
    )
    sufficient: bool = strawberry.field(description="True when My balance covers `dueNow.total`.")


@strawberry.type(
    description="The Order Preview: what the change costs now and at renewal, and when each part applies."
)
class Quote:
    kind: ChangeKind = strawberry.field(description="How the change applies.")
    plan: Plan = strawberry.field(description="The plan chosen.")
    email_credits: int | None = strawberry.field(description=EMAIL_LIMIT)
    messaging_credits: int | None = strawberry.field(description=MESSAGING_LIMIT)
    monthly_lines: list[OrderLine] = strawberry.field(description="The target configuration's monthly price.")
    monthly_subtotal: Money = strawberry.field(
        description="The target configuration's monthly price before tax: the sum of monthlyLines."
    )
    changes: list[PlanChange] = strawberry.field(
        description="What applies when: one entry, or two for a SPLIT (now, then at renewal)."
    )
    due_now: Charge = strawberry.field(description="What checkout charges now; zero for a downgrade.")
    due_at_renewal: Charge = strawberry.field(
        description="What the next renewal will charge for the new configuration."
    )
    renewal_at: datetime = strawberry.field(
        description="The next renewal: the end of the current period, or of the new one a NEW_PERIOD starts."
    )
    period_start: datetime = strawberry.field(description="The start of the period the charge now covers.")
    period_end: datetime = strawberry.field(description="The end of the period the charge now covers.")
    proration: Proration | None = strawberry.field(
        description="How the charge now is prorated; null when nothing is (NEW_PERIOD, DOWNGRADE)."
    )
    computed_at: datetime = strawberry.field(description="When the quote was priced (UTC).")
    expires_at: datetime = strawberry.field(
        description="Checkout refuses this quote's total after this time."
    )
    balance: BalancePreview = strawberry.field(description="For paying with My balance.")
    token: str = strawberry.field(
        description="Send as `checkout(input: {quoteToken})` to buy exactly this quote: it signs the "
        "workspace, plan, credits, `dueNow.total` and `expiresAt` (opaque; nothing is stored)."
    )


@strawberry.type(description="What Customize Plan may set for a plan, and where its sliders start.")
class PlanSelection:
    plan: Plan = strawberry.field(description="The plan selected.")
    adjustable: bool = strawberry.field(description="True when its credit limits can be set with sliders.")
    requires_quote: bool = strawberry.field(
        description="True for a plan sold by quote: show the sales contact instead of checkout."
    )
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
    UPGRADE_PLAN = strawberry.enum_value(
        "UPGRADE_PLAN", description="On a free plan: open Select a Plan to buy a paid one."
    )
    CUSTOMIZE_CURRENT_PLAN = strawberry.enum_value(
        "CUSTOMIZE_CURRENT_PLAN", description="Open Customize Plan on the current plan to change its limits."
    )
    CHANGE_PLAN = strawberry.enum_value(
        "CHANGE_PLAN", description="Open Select a Plan to move to another plan."
    )


@strawberry.type(description="A billing period, from `start` (inclusive) to `end` (exclusive), in UTC.")
class Period:
    start: datetime = strawberry.field(description="When the period began (UTC).")
    end: datetime = strawberry.field(description="When the period ends and the workspace renews (UTC).")


@strawberry.type(description="A credit allowance for the current period (unused credits do not roll over).")
class Allowance:
    kind: CreditKind = strawberry.field(description="The credit kind this allowance is for.")
    limit: int = strawberry.field(description="Credits per period: a whole number, as limits are.")


@strawberry.type(description="An installed payment method the workspace can pay with.")
class PaymentMethod:
    code: str = strawberry.field(
        description='The method\'s code, sent as `paymentMethod.method`: "balance", "card", or one a plugin '
        "adds."
    )
    label: str = strawberry.field(description='The name to show, e.g. "My balance".')
    capabilities: list[PaymentCapability] = strawberry.field(
        description="What the method can do; decides where the Billing pages offer it."
    )


@strawberry.type(description="A kind of message the Message Calculator and recordUsage can price.")
class MessageType:
    code: str = strawberry.field(
        description="The type's code, sent as `messageType`: EMAIL, SMS, WHATSAPP_MARKETING, ..."
    )
    name: str = strawberry.field(description='The display name, e.g. "WhatsApp Marketing".')
    channel: Channel = strawberry.field(description="The channel it is sent on.")
    credit_kind: CreditKind = strawberry.field(description="The credits it spends.")
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
    name: str = strawberry.field(description="The country's English name, e.g. Germany.")
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
graphql_enum(
    sms.SmsEncoding,
    {
        sms.SmsEncoding.GSM_7: "The GSM 7-bit alphabet: 160 characters in one SMS, 153 per part when split; "
        "a few characters (such as € and {) count twice.",
        sms.SmsEncoding.UCS_2: "Any other text (emoji, most non-Latin scripts): 70 UTF-16 code units in one "
        "SMS, 67 per part when split.",
    },
    description="How an SMS text is encoded.",
)


@strawberry.type(description="How many messages the given credits buy.")
class Estimate:
    message_type: MessageType = strawberry.field(description="The message type priced.")
    destination: Destination | None = strawberry.field(description="The destination priced; null for Email.")
    credits: int = strawberry.field(description="The credits given, as sent.")
    credit_kind: CreditKind = strawberry.field(description="The credits the message type spends.")
    credits_per_message: Decimal = strawberry.field(description="For one whole message, all segments.")
    segments: int = strawberry.field(
        description="SMS parts per message of `sampleText`; 1 for other types and without a text."
    )
    encoding: SmsEncoding | None = strawberry.field(
        description="How `sampleText` would be sent; null when no SMS text was given."
    )
    characters: int | None = strawberry.field(
        description="The text's length in its encoding (GSM-7 septets or UCS-2 code units); null without an SMS "
        "text."
    )
    messages: int | None = strawberry.field(description="Whole messages; null when messages are free.")
    credits_left: Decimal | None = strawberry.field(
        description="The credits left after the whole messages; null when messages are free."
    )

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


@strawberry.type(description="A plugin loaded at start-up and what it adds.")
class Plugin:
    name: str = strawberry.field(description="The entry point's name.")
    distribution: str | None = strawberry.field(
        description="The Python distribution that ships it; null when not installed as one."
    )
    version: str | None = strawberry.field(
        description="The distribution's version; null when not installed as one."
    )
    module: str = strawberry.field(description="The Python module of its hook implementations.")
    provides: list[str] = strawberry.field(
        description='What it registers, as kind:code, e.g. "payment_method:card" or "tax_calculator:vat".'
    )


# ------------------------------------------------------------------ billing


WorkspaceStatus: TypeAlias = statuses.WorkspaceStatus
graphql_enum(
    statuses.WorkspaceStatus,
    {
        statuses.WorkspaceStatus.ACTIVE: "In good standing.",
        statuses.WorkspaceStatus.PAST_DUE: "The last renewal payment failed and its invoice is open; usage "
        "continues for a grace period (pay it with payInvoice).",
        statuses.WorkspaceStatus.SUSPENDED: "Past due beyond the grace period: usage and orders are refused "
        "(WorkspaceSuspended) until every open invoice is paid.",
    },
    description="Whether the workspace can use its plan, given its unpaid invoices.",
)


@strawberry.enum(description="What a tax ID register (VIES) said of the saved VAT ID.")
class VatIdVerification(enum.Enum):
    VERIFIED = strawberry.enum_value("verified", description="The register confirmed the VAT ID.")
    UNVERIFIED = strawberry.enum_value(
        "unverified",
        description="The register could not answer when it was saved; the VAT ID passed the format check only.",
    )


@strawberry.type(
    description="The workspace's saved billing details, printed on its invoices. Fields are null until set."
)
class BillingDetails:
    customer_type: CustomerType | None = strawberry.field(
        description="A person or a company; decides the tax treatment."
    )
    name: str | None = strawberry.field(description="The buyer's full name.")
    company_name: str | None = strawberry.field(
        description="The company's legal name; required for a company."
    )
    address_line1: str | None = strawberry.field(description="The street address.")
    address_line2: str | None = strawberry.field(description="More of the address (floor, suite).")
    city: str | None = strawberry.field(description="The city.")
    postal_code: str | None = strawberry.field(description="The postal code.")
    region: str | None = strawberry.field(
        description="The region, state or province, where the address needs one."
    )
    country: str | None = strawberry.field(description="ISO 3166-1 alpha-2 code, e.g. DE.")
    vat_id: str | None = strawberry.field(description="The VAT ID with its country prefix, e.g. DE123456789.")
    vat_id_verification: VatIdVerification | None = strawberry.field(
        description=(
            "What a tax ID register said of vatId when it was saved (VIES for EU VAT IDs, if the gateway "
            "checks them); null when no register was asked."
        )
    )
    email: str | None = strawberry.field(description="Where invoices are sent.")
    missing_fields: list[str] = strawberry.field(
        description="What checkout still needs, as input field names."
    )


@strawberry.type(description="One line of payment instructions, e.g. IBAN, BIC, reference, amount.")
class Instruction:
    name: str = strawberry.field(description="What to fill in, e.g. IBAN.")
    value: str = strawberry.field(description="The value to use, e.g. the IBAN to transfer to.")


@strawberry.type(description="A saved card: never its number, only what identifies it to a person.")
class SavedCard:
    id: strawberry.ID = strawberry.field(description="Identifies the card: send it as `cardId`.")
    brand: str = strawberry.field(description="The card network, e.g. visa.")
    last4: str = strawberry.field(description="The last four digits of the number.")
    exp_month: int = strawberry.field(description="The expiry month, 1-12.")
    exp_year: int = strawberry.field(description="The expiry year, four digits.")
    fingerprint: str = strawberry.field(
        description="The same for every saved copy of the same card number: use it to spot duplicates."
    )
    is_renewal_method: bool = strawberry.field(
        description="True when this card pays renewals (see setDefaultPaymentMethod)."
    )


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
    plan: Plan = strawberry.field(description="The plan from the next period.")
    email_credits: int | None = strawberry.field(description=EMAIL_LIMIT)
    messaging_credits: int | None = strawberry.field(description=MESSAGING_LIMIT)
    effective_at: datetime = strawberry.field(
        description="When it takes effect: the end of the current period (UTC)."
    )
    due_at_renewal: Charge = strawberry.field(
        description="What the renewal will charge for the new configuration."
    )


@strawberry.type(description="One line of an invoice, as issued.")
class InvoiceLine:
    kind: LineKind = strawberry.field(description="What the line charges for.")
    description: str = strawberry.field(description="The line as printed.")
    quantity: int = strawberry.field(
        description="How many units the line charges: credits for CREDITS lines, else 1."
    )
    unit_price: Money | None = strawberry.field(
        description="The price of one credit on CREDITS lines (may have sub-cent precision); null on other lines."
    )
    amount: Money = strawberry.field(
        description="The line's total before tax; negative for a credit or refund."
    )
    price_version: str | None = strawberry.field(
        description="The plan's price version the line is priced at (see Plan.priceVersion); "
        "null on lines not priced from a plan, such as a credit note's."
    )


@strawberry.type(description="One tax of an invoice, as issued.")
class InvoiceTaxLine:
    name: str = strawberry.field(
        description='The tax\'s name as printed, e.g. "VAT 19% (DE)" or "Not subject to EU VAT".'
    )
    jurisdiction: str = strawberry.field(
        description="Where the tax is due, as an ISO 3166-1 alpha-2 country code."
    )
    rate: Decimal = strawberry.field(description="As a fraction: 0.19 for 19 %.")
    base: Money = strawberry.field(description="The taxable amount the rate applies to.")
    amount: Money = strawberry.field(description="The tax charged.")
    treatment: TaxTreatment = strawberry.field(description="Why the tax is or is not charged.")
    note: str | None = strawberry.field(
        description="The legal note printed on the invoice; null when none applies."
    )


InvoiceStatus: TypeAlias = statuses.InvoiceStatus
graphql_enum(
    statuses.InvoiceStatus,
    {
        statuses.InvoiceStatus.PAID: "Paid (a credit note is issued paid).",
        statuses.InvoiceStatus.OPEN: "Not paid yet: a failed renewal, to pay with payInvoice.",
    },
    description="Whether an invoice is paid.",
)


@strawberry.type(description="Who issued an invoice, as it was on the invoice date.")
class InvoiceSeller:
    name: str = strawberry.field(description="The legal name.")
    address: list[str] = strawberry.field(description="The postal address, one line each.")
    country: str = strawberry.field(description="ISO 3166-1 alpha-2 code of the seller's country.")
    vat_id: str | None = strawberry.field(description="The seller's VAT ID; null when it has none.")
    email: str | None = strawberry.field(description="The seller's billing contact; null when none was set.")
    demo: bool = strawberry.field(
        description="The gateway ran with its demo seller identity: the invoice is not a valid one."
    )


@strawberry.type(
    description="An invoice or credit note issued to the workspace; never changed once issued, except its status."
)
class Invoice:
    id: strawberry.ID = strawberry.field(
        description="Identifies the invoice: pass it to `invoice(id:)` and `payInvoice`."
    )
    number: str = strawberry.field(
        description="The invoice number as printed, gap-free per series, e.g. INV-2026-000042 or CN-2026-000001."
    )
    kind: str = strawberry.field(
        description="What the invoice is for: checkout, renewal, or credit_note (a refund: negative amounts)."
    )
    status: InvoiceStatus = strawberry.field(
        description="PAID, or OPEN while a failed renewal waits for payment."
    )
    issued_at: datetime = strawberry.field(description="When it was issued (UTC).")
    lines: list[InvoiceLine] = strawberry.field(description="The lines charged, before tax.")
    tax_lines: list[InvoiceTaxLine] = strawberry.field(description="One line per tax.")
    subtotal: Money = strawberry.field(description="The sum of the lines, before tax.")
    tax: Money = strawberry.field(description="The sum of the tax lines.")
    total: Money = strawberry.field(
        description="What the invoice charges: subtotal plus tax; negative on a credit note."
    )
    payment_method: str | None = strawberry.field(description='e.g. "balance" or "card visa •••• 4242".')
    period_start: datetime | None = strawberry.field(
        description="The start of the billing period it charges for; null when it charges no period."
    )
    period_end: datetime | None = strawberry.field(
        description="The end of that period; null when it charges no period."
    )
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
    kind: CreditKind = strawberry.field(description="The credit kind this usage is of.")
    used: Decimal = strawberry.field(description="Credits used this period.")
    included: Decimal = strawberry.field(
        description="This period's limit (the allowance's limit, as a Decimal); unused credits do not roll over."
    )
    remaining: Decimal = strawberry.field(description="included - used, never below 0.")


@strawberry.type(description="The plan-and-usage widget.")
class Usage:
    period_start: datetime = strawberry.field(description="The start of the current period (UTC).")
    period_end: datetime = strawberry.field(
        description="The end of the current period, when unused credits lapse (UTC)."
    )
    credits: list[CreditUsage] = strawberry.field(description="One entry per credit kind the plan grants.")
