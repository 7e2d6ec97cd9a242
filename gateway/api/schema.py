"""The GraphQL schema: queries and mutations, each translating to the pure core."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Annotated

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    MaskErrors,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from gateway.api import errors as e
from gateway.api import types as t
from gateway.api.billing import BillingMutation
from gateway.api.common import Info, current_workspace, plan_of, quote_of, renewal_pending, unknown_plan
from gateway.api.payments import PaymentsMutation
from gateway.api.subscriptions import Subscription
from gateway.api.webhooks import WebhooksMutation, WebhooksQuery
from gateway.api.workspace import Workspace, WorkspaceResult
from gateway.core import catalog as cat
from gateway.core import pricing, sms
from gateway.core.messaging import Channel, normalise_code
from gateway.core.tax import CustomerKind, InvalidTaxId, TaxCustomer
from gateway.services import billing_views, usage
from gateway.services.workspaces import subscription_of

logger = logging.getLogger("gateway.api")

MAX_VAT_ID = 32  # the longest EU VAT ID has 14 characters; room for blanks, dots and dashes
EMAIL_TYPE = t.MessageType(
    code="EMAIL", name="Email", channel=Channel.EMAIL, credit_kind=cat.CreditKind.EMAIL, segmented=False
)

# ------------------------------------------------------------------ inputs


@strawberry.input(description="The billing details that decide the tax treatment.")
class BillingDetailsInput:
    customer_type: t.CustomerType
    country: str = strawberry.field(description="ISO 3166-1 alpha-2 code, e.g. DE.")
    vat_id: str | None = None


@strawberry.input
class QuoteInput:
    plan_code: str
    email_credits: int | None = strawberry.field(
        default=None,
        description="Monthly email limit; left out: the current one on the same plan, else the default.",
    )
    messaging_credits: int | None = strawberry.field(
        default=None, description="Monthly SMS/WhatsApp credit limit; left out as for emailCredits."
    )
    billing_details: BillingDetailsInput | None = strawberry.field(
        default=None, description="Tax is computed from these; left out: tax is not calculated."
    )


@strawberry.input
class EstimateInput:
    credits: int = strawberry.field(description="Messaging credits (Email credits for EMAIL) to spend.")
    message_type: str = strawberry.field(description="A code from `messageTypes`, e.g. SMS or EMAIL.")
    country: str | None = strawberry.field(
        default=None, description="Destination; required except for EMAIL."
    )
    sample_text: str | None = strawberry.field(default=None, description="SMS only: priced per segment.")


# ------------------------------------------------------------------ results

SelectPlanResult = Annotated[
    t.PlanSelection | e.UnknownPlan | e.RenewalPending,
    strawberry.union("SelectPlanResult"),
]
QuoteResult = Annotated[
    t.Quote
    | e.UnknownPlan
    | e.PlanNotPurchasable
    | e.PlanNotAdjustable
    | e.InvalidVolume
    | e.UnknownCountry
    | e.InvalidVatId
    | e.AuthenticationRequired
    | e.RenewalPending,
    strawberry.union("QuoteResult"),
]
EstimateResult = Annotated[
    t.Estimate | e.UnknownCountry | e.UnknownMessageType | e.InvalidVolume | e.TextTooLong,
    strawberry.union("EstimateResult"),
]


def _customer(
    info: Info, details: BillingDetailsInput | None, path: str
) -> TaxCustomer | e.UnknownCountry | e.InvalidVatId | None:
    if details is None:
        return None
    country = normalise_code(details.country)
    if country not in info.context.gateway.countries:
        return e.UnknownCountry(
            code=e.ErrorCode.UNKNOWN_COUNTRY,
            message=f"unknown country {details.country!r}",
            field=[path, "country"],
            country=details.country,
        )
    vat_id = details.vat_id.strip() if details.vat_id and details.vat_id.strip() else None
    if vat_id is not None and len(vat_id) > MAX_VAT_ID:  # never hand absurd input to a tax plugin
        return e.InvalidVatId(
            code=e.ErrorCode.INVALID_VAT_ID,
            field=[path, "vatId"],
            vat_id=details.vat_id,
            message=f"a VAT ID has at most {MAX_VAT_ID} characters, not {len(vat_id)}",
        )
    return TaxCustomer(CustomerKind(details.customer_type.value), country, vat_id)


# ------------------------------------------------------------------ queries


@strawberry.type
class CoreQuery:
    @strawberry.field(description="The plans of the catalog, lowest tier first.")
    def plans(self, info: Info) -> list[t.Plan]:
        return [plan_of(info, plan) for plan in info.context.gateway.catalog.plans]

    @strawberry.field(description="The workspace of the API key sent as a bearer token.")
    def workspace(self, info: Info) -> WorkspaceResult:
        row = current_workspace(info)
        if row is None:
            return e.authentication_required(info.context.credentials_given)
        return Workspace.of(info, row)

    @strawberry.field(description="Message types the Message Calculator can price, Email first.")
    def message_types(self, info: Info) -> list[t.MessageType]:
        return info.context.gateway.message_types

    @strawberry.field(description="Destination countries with messaging rates.")
    def destinations(self, info: Info) -> list[t.Destination]:
        return list(
            info.context.gateway.destinations_by_country.values()
        )  # built once, in the provider's order

    @strawberry.field(description="The plugins loaded at start-up.")
    def plugins(self, info: Info) -> list[t.Plugin]:
        return [
            t.Plugin(
                name=p.name,
                distribution=p.distribution,
                version=p.version,
                module=p.module,
                provides=list(p.provides),
            )
            for p in info.context.gateway.registry.plugins
        ]


# ---------------------------------------------------------------- mutations


@strawberry.type
class CoreMutation:
    @strawberry.mutation(
        description="Open Customize Plan: what can be set for a plan, and where sliders start."
    )
    def select_plan(self, info: Info, plan_code: str) -> SelectPlanResult:
        gateway = info.context.gateway
        plan = gateway.catalog.plan(plan_code)
        if plan is None:
            return unknown_plan(plan_code)
        row = current_workspace(info)
        subscription = subscription_of(row, gateway.catalog, info.context.now) if row is not None else None
        if subscription is not None and not info.context.now < subscription.period_end:
            return renewal_pending(subscription.period_end)  # no honest effective date before renewal
        current = subscription.configuration if subscription else None
        start = (
            current
            if current is not None and current.plan.code == plan.code
            else pricing.Configuration(
                plan, plan.default_limit(cat.CreditKind.EMAIL), plan.default_limit(cat.CreditKind.MESSAGING)
            )
        )
        change = effective_at = None
        if subscription is not None and plan.purchasable:
            change, now_part, _ = pricing.classify(subscription.configuration, start)
            if change is not pricing.ChangeKind.NONE:
                effective_at = info.context.now if now_part is not None else subscription.period_end
        return t.PlanSelection(
            plan=plan_of(info, plan),
            adjustable=plan.adjustable,
            requires_quote=not plan.purchasable,
            sales_contact=gateway.catalog.sales_contact if not plan.purchasable else None,
            email_credits=start.email_credits,
            messaging_credits=start.messaging_credits,
            change=change,
            effective_at=effective_at,
        )

    @strawberry.mutation(description="Price a plan change: the live Order Preview. Writes nothing.")
    def quote(self, info: Info, input: QuoteInput) -> QuoteResult:
        ctx = info.context
        gateway = ctx.gateway
        row = current_workspace(info)
        if row is None:
            return e.authentication_required(ctx.credentials_given)
        plan = gateway.catalog.plan(input.plan_code)
        if plan is None:
            return unknown_plan(input.plan_code)
        if input.billing_details is not None:
            customer = _customer(info, input.billing_details, "billingDetails")
            if isinstance(customer, e.UserError):
                return customer
        else:  # the saved billing details, as checkout will use them
            customer = billing_views.tax_customer(ctx.session, row.id)
        subscription = subscription_of(row, gateway.catalog, ctx.now)
        if not ctx.now < subscription.period_end:
            return renewal_pending(subscription.period_end)
        try:
            target = pricing.configure(
                plan,
                gateway.catalog,
                subscription.configuration,
                input.email_credits,
                input.messaging_credits,
            )
            order = pricing.price_order(
                subscription,
                target,
                ctx.now,
                customer=customer,
                tax=gateway.tax,
                seller_country=gateway.settings.seller_country,
            )
        except pricing.PricingError as error:
            return e.from_pricing_error(error)
        except InvalidTaxId as error:
            return e.InvalidVatId(
                code=e.ErrorCode.INVALID_VAT_ID,
                message=str(error),
                field=["billingDetails", "vatId"],
                vat_id=error.tax_id,
            )
        return quote_of(info, order, row)

    @strawberry.mutation(description="Message Calculator: how many messages the credits buy.")
    def estimate(self, info: Info, input: EstimateInput) -> EstimateResult:
        gateway = info.context.gateway
        if input.credits < 0:
            return e.InvalidVolume(
                code=e.ErrorCode.INVALID_VOLUME,
                message="credits must not be negative",
                field=["credits"],
                value=input.credits,
                min=0,
                max=None,
                step=None,
            )
        text = input.sample_text
        if text is not None and len(text) > usage.MAX_SAMPLE_TEXT:
            return e.TextTooLong(
                code=e.ErrorCode.TEXT_TOO_LONG,
                field=["sampleText"],
                message=f"sample texts are limited to {usage.MAX_SAMPLE_TEXT} characters",
                length=len(text),
                max_length=usage.MAX_SAMPLE_TEXT,
            )
        code = normalise_code(input.message_type)
        message_type = gateway.message_types_by_code.get(code)
        if message_type is None:
            return e.UnknownMessageType(
                code=e.ErrorCode.UNKNOWN_MESSAGE_TYPE,
                field=["messageType"],
                message=f"unknown message type {input.message_type!r}",
                message_type=input.message_type,
            )
        if message_type.channel is Channel.EMAIL:
            return _estimate(input.credits, message_type, None, Decimal(1), None)
        country = normalise_code(input.country)
        if not country:
            return e.UnknownCountry(
                code=e.ErrorCode.UNKNOWN_COUNTRY,
                field=["country"],
                message=f"{message_type.name} needs a destination country",
                country=input.country or "",
            )
        destination = gateway.destinations_by_country.get(country)
        if destination is None:
            return e.UnknownCountry(
                code=e.ErrorCode.UNKNOWN_COUNTRY,
                field=["country"],
                message=f"no messaging rates for destination {input.country!r}",
                country=input.country or "",
            )
        rate = gateway.rates.credits_per_message(country, code)
        if rate is None:
            return e.UnknownMessageType(
                code=e.ErrorCode.UNKNOWN_MESSAGE_TYPE,
                field=["messageType"],
                message=f"{message_type.name} is not offered to {destination.name}",
                message_type=input.message_type,
            )
        segments = sms.count_segments(text) if message_type.segmented and text is not None else None
        return _estimate(input.credits, message_type, destination, rate, segments)


def _estimate(
    credits: int,
    message_type: t.MessageType,
    destination: t.Destination | None,
    rate: Decimal,
    segments: sms.SmsSegments | None,
) -> t.Estimate:
    parts = segments.segments if segments is not None else 1
    cost = rate * parts
    messages = int(credits // cost) if cost > 0 else None
    return t.Estimate(
        message_type=message_type,
        destination=destination,
        credits=credits,
        credit_kind=message_type.credit_kind,
        credits_per_message=cost,
        segments=parts,
        encoding=segments.encoding if segments else None,
        characters=segments.characters if segments else None,
        messages=messages,
        credits_left=credits - cost * messages if messages is not None else None,
    )


def _unexpected(error: GraphQLError) -> bool:
    """An exception the code did not mean to raise (a bug or an outage), as opposed to
    a request error (syntax, validation, variable coercion) caused by the client."""
    original = error.original_error
    return original is not None and not isinstance(original, GraphQLError)


def _should_mask(error: GraphQLError) -> bool:
    """Mask unexpected exceptions only; validation errors stay readable.

    Expected failures never raise: they are returned as typed errors in unions.
    """
    return bool(error.path) and _unexpected(error)  # without a path: about the request, safe to show


class _Schema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Log unexpected exceptions once, with their traceback; request errors are the
        client's and only noise in the server log (strawberry logs every error)."""
        for error in errors:
            if _unexpected(error):
                logger.error(
                    "unexpected error at %s",
                    ".".join(map(str, error.path or ())) or "(request)",
                    exc_info=error.original_error,
                )


# Bounds on documents, so validating a hostile one stays cheap (introspection is not counted
# towards the depth). The deepest document the Billing pages need is about 6 levels.
MAX_TOKENS = 5000
MAX_DEPTH = 12


def build_schema() -> strawberry.Schema:
    query = merge_types("Query", (CoreQuery, WebhooksQuery))
    mutation = merge_types("Mutation", (CoreMutation, PaymentsMutation, BillingMutation, WebhooksMutation))
    return _Schema(
        query=query,
        mutation=mutation,
        subscription=Subscription,
        types=[e.AuthenticationRequired],
        extensions=[
            lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
            lambda: QueryDepthLimiter(max_depth=MAX_DEPTH),
            lambda: ParserCache(maxsize=256),
            lambda: ValidationCache(maxsize=256),
            lambda: MaskErrors(should_mask_error=_should_mask, error_message="Internal error."),
        ],
    )


def print_sdl() -> str:
    return build_schema().as_str() + "\n"
