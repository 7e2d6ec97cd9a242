"""The GraphQL schema: queries and mutations, each translating to the pure core."""

from __future__ import annotations

import contextvars
import functools
import logging
import re
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from typing import Annotated, Any

import strawberry
from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import GraphQLError, OperationType
from strawberry.exceptions import MissingQueryError
from strawberry.extensions import FieldExtension, MaskErrors
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext, get_object_definition

from gateway.api import errors as e
from gateway.api import inputs, lean
from gateway.api import types as t
from gateway.api.billing import BillingMutation
from gateway.api.common import Info, current_workspace, plan_of, quote_of
from gateway.api.context import RootAnswer
from gateway.api.limits import DocumentLimits
from gateway.api.operator import OperatorMutation
from gateway.api.payments import PaymentsMutation
from gateway.api.scopes import check_schema, refusal
from gateway.api.subscriptions import Subscription
from gateway.api.webhooks import WebhooksMutation, WebhooksQuery
from gateway.api.workspace import Workspace, WorkspaceResult
from gateway.core.catalog import CreditKind
from gateway.core.tax import CustomerKind
from gateway.services import quotes
from gateway.services.orders import OrderRequest
from gateway.storage import faults
from gateway.storage.db import NulCharacter

logger = logging.getLogger("gateway.api")

# ------------------------------------------------------------------ inputs


@strawberry.input(description="The billing details that decide the tax treatment.")
class BillingDetailsInput:
    customer_type: t.CustomerType = strawberry.field(description="A person or a company.")
    country: str = strawberry.field(description="ISO 3166-1 alpha-2 code, e.g. DE.")
    vat_id: str | None = strawberry.field(
        default=None,
        description="A company's VAT ID with its country prefix, e.g. DE123456789: checked offline, and "
        "decides a reverse charge.",
    )


@strawberry.input(description="A plan change to price: the plan, its limits, and optionally who buys.")
class QuoteInput:
    plan_code: str = strawberry.field(description="A plan's `code` from `plans`.")
    email_credits: int | None = strawberry.field(
        default=None,
        description="Monthly email limit; left out: the current one on the same plan, else the default.",
    )
    messaging_credits: int | None = strawberry.field(
        default=None, description="Monthly SMS/WhatsApp credit limit; left out as for emailCredits."
    )
    billing_details: BillingDetailsInput | None = strawberry.field(
        default=None,
        description="Tax is computed from these; left out: from the saved billing details, as checkout "
        "will; none saved: tax is not calculated.",
    )


@strawberry.input(description="What the Message Calculator prices: credits, a message type, a destination.")
class EstimateInput:
    credits: int = strawberry.field(description="Messaging credits (Email credits for EMAIL) to spend.")
    message_type: str = strawberry.field(description="A code from `messageTypes`, e.g. SMS or EMAIL.")
    country: str | None = strawberry.field(
        default=None, description="Destination; required except for EMAIL."
    )
    sample_text: str | None = strawberry.field(default=None, description="SMS only: priced per segment.")


# ------------------------------------------------------------------ results

SelectPlanResult = Annotated[
    t.PlanSelection | e.UnknownPlan | e.RenewalPending | e.ScopeRequired,
    strawberry.union(
        "SelectPlanResult",
        description="The plan with its slider starts, UnknownPlan, or RenewalPending while the period's renewal is due.",
    ),
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
    | e.ScopeRequired
    | e.RenewalPending,
    strawberry.union(
        "QuoteResult",
        description="The Order Preview, or why the plan change cannot be priced.",
    ),
]
EstimateResult = Annotated[
    t.Estimate
    | e.UnknownCountry
    | e.UnknownMessageType
    | e.MessageTypeNotOffered
    | e.InvalidVolume
    | e.TextTooLong,
    strawberry.union(
        "EstimateResult",
        description="How many messages the credits buy, or why they cannot be priced.",
    ),
]


def _customer_input(details: BillingDetailsInput | None) -> quotes.CustomerInput | None:
    if details is None:
        return None
    return quotes.CustomerInput(CustomerKind(details.customer_type.value), details.country, details.vat_id)


# ------------------------------------------------- previews: the same as queries and mutations
# Read-only previews are fields of Query (one request with `workspace` and `plans`, and a client
# cache can hold them) and, as the API has promised, of Mutation; one resolver serves both. They
# write nothing and answer the same for the same inputs at the same instant.


def preview_select_plan(
    info: Info,
    plan_code: Annotated[str, strawberry.argument(description="A plan's `code` from `plans`.")],
) -> SelectPlanResult:
    ctx = info.context
    return e.attempt(
        info,
        lambda: _plan_selection(info, quotes.select_plan(ctx.gateway, ctx.workspace_id, plan_code, ctx.now)),
    )


def preview_quote(
    info: Info,
    input: Annotated[
        QuoteInput, strawberry.argument(description="The plan and limits to price, and optionally who buys.")
    ],
) -> QuoteResult:
    ctx = info.context
    order = OrderRequest(input.plan_code, input.email_credits, input.messaging_credits)

    def work(workspace_id: str) -> t.Quote:
        quoted = quotes.quote(
            ctx.gateway, workspace_id, order, _customer_input(input.billing_details), ctx.now
        )
        return quote_of(info, quoted.order, quoted.balance)

    return e.signed_in(info, work)


def preview_estimate(
    info: Info,
    input: Annotated[
        EstimateInput, strawberry.argument(description="The credits, the message type and the destination.")
    ],
) -> EstimateResult:
    deps = info.context.gateway
    return e.attempt(
        info,
        lambda: t.Estimate.of(
            quotes.estimate(deps, input.credits, input.message_type, input.country, input.sample_text),
            deps.messages,
        ),
    )


SELECT_PLAN = "Open Customize Plan: what can be set for a plan, and where sliders start."
QUOTE = (
    "Price a plan change: the live Order Preview, with its `token` for checkout. Writes nothing. "
    "Tax from `billingDetails` when given, else from the saved billing details."
)
ESTIMATE = "Message Calculator: how many messages the credits buy."


# ------------------------------------------------------------------ queries


@strawberry.type
class CoreQuery:
    @strawberry.field(description="The plans of the catalog, lowest tier first, at the prices on sale now.")
    def plans(self, info: Info) -> list[t.Plan]:
        return [plan_of(info, plan) for plan in info.context.gateway.catalog.plans_on(info.context.now)]

    @strawberry.field(description="The workspace of the API key sent as a bearer token.")
    def workspace(self, info: Info) -> WorkspaceResult:
        def work(workspace_id: str) -> Workspace:
            view = current_workspace(info)
            assert view is not None, "authenticated workspaces exist"
            return Workspace.of(info, view)

        return e.signed_in(info, work)

    select_plan: SelectPlanResult = strawberry.field(resolver=preview_select_plan, description=SELECT_PLAN)
    quote: QuoteResult = strawberry.field(resolver=preview_quote, description=QUOTE)
    estimate: EstimateResult = strawberry.field(resolver=preview_estimate, description=ESTIMATE)

    @strawberry.field(description="Message types the Message Calculator can price, Email first.")
    def message_types(self, info: Info) -> list[t.MessageType]:
        return [t.MessageType.of(offer) for offer in info.context.gateway.messages.types]

    @strawberry.field(
        description="Destination countries with messaging rates, each with the message types it offers."
    )
    def destinations(self, info: Info) -> list[t.Destination]:
        messages = info.context.gateway.messages
        return [t.Destination.of(d, messages) for d in messages.destinations]

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
            for p in info.context.gateway.plugins
        ]


# ---------------------------------------------------------------- mutations


@strawberry.type
class CoreMutation:
    select_plan: SelectPlanResult = strawberry.mutation(resolver=preview_select_plan, description=SELECT_PLAN)
    quote: QuoteResult = strawberry.mutation(resolver=preview_quote, description=QUOTE)
    estimate: EstimateResult = strawberry.mutation(resolver=preview_estimate, description=ESTIMATE)


def _plan_selection(info: Info, selection: quotes.PlanSelection) -> t.PlanSelection:
    plan = selection.plan

    def slider_start(kind: CreditKind, value: int) -> int | None:
        return t.limit_of(plan, kind, value) if plan.purchasable else None  # no slider on a quote

    return t.PlanSelection(
        plan=plan_of(info, plan),
        adjustable=plan.adjustable,
        requires_quote=not plan.purchasable,
        sales_contact=info.context.gateway.catalog.sales_contact if not plan.purchasable else None,
        email_credits=slider_start(CreditKind.EMAIL, selection.email_credits),
        messaging_credits=slider_start(CreditKind.MESSAGING, selection.messaging_credits),
        change=selection.change,
        effective_at=selection.effective_at,
    )


# What Strawberry raises, before execution, about the request itself: a query or mutation sent
# where only subscriptions run, an operation name the document lacks, no query at all. The
# client's mistakes, shown as they are (graphql-transport-ws closes the socket with 4400 on some).
_REQUEST_MISTAKES = (InvalidOperationTypeError, CannotGetOperationTypeError, MissingQueryError)


def _unexpected(error: GraphQLError) -> bool:
    """An exception the code did not mean to raise (a bug or an outage), as opposed to
    a request error (syntax, validation, variable coercion) caused by the client."""
    original = error.original_error
    return original is not None and not isinstance(original, (GraphQLError, *_REQUEST_MISTAKES))


def _database_fault(error: GraphQLError) -> bool:
    return error.original_error is not None and faults.unavailable(error.original_error)


INVALID_CHARACTERS = "INVALID_CHARACTERS"  # the extensions.code of a NUL refused; stable


def _nul_refused(error: GraphQLError) -> bool:
    """A NUL character in an argument that no typed check refused first reached the storage,
    which refuses it before the database sees it: the client's fault, answered with a code."""
    return isinstance(error.original_error, NulCharacter)


def _should_mask(error: GraphQLError) -> bool:
    """Mask unexpected exceptions, and the values that request errors quote; what a request
    error says about the request (which variable, argument or field, and why) stays readable.

    Expected failures never raise: they are returned as typed errors in unions.
    """
    if _unexpected(error):  # a bug or an outage, wherever it raised (a stream's source: no path)
        return True
    if not error.path:  # about the request: safe to show, once its values are taken out
        return _without_values(error.message) != error.message
    return False


# graphql-core's request errors quote what was sent: a variable's whole value ("..., found:
# {'card': {'number': ...}}", "Did you mean 'cvc'? Found: {...}"), a literal of the document
# ("Int cannot represent non-integer value: "4242..."", a custom scalar's "Value cannot represent
# a Decimal: ..."), the parser's token ("Expected Name, found Int '4242...'"). A card number or
# CVC sent in the wrong place would come back in the answer, and land in any log that keeps
# answers. The message keeps which variable, argument or field, where and why; the value goes.
_FOUND = re.compile(r"[,;]? [Ff]ound: .*$", re.DOTALL)
_REPRESENTED = re.compile(r"(cannot represent[^:]*): .*$", re.DOTALL)
_TOKEN = re.compile(r"\b(found|Unexpected) (Int|Float|String|BlockString) '.*'", re.DOTALL)
_CARD_LIKE = re.compile(r"\d[\d -]{11,}\d")  # anything left that could be a card number


def _without_values(message: str) -> str:
    cut = _FOUND.sub("", message)
    cut = _REPRESENTED.sub(r"\1", cut)
    cut = _TOKEN.sub(r"\1 \2", cut)
    if cut != message and not cut.endswith((".", "?")):
        cut += "."
    return _CARD_LIKE.sub("[digits removed]", cut)


class _Executor(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's executor, except that a subscription event whose answer depends on the
    event alone is answered by its compiled plan, once for all the streams of the same document
    (:func:`gateway.api.lean.event_data`): 200 subscribers of a workspace no longer execute
    the same selection 200 times per event on the event loop."""

    _subscription_plan: tuple[lean.EventPlan | None] | None = None  # looked up once per stream

    def build_per_event_executor(self, payload: Any) -> Any:
        if self._subscription_plan is None:
            self._subscription_plan = (
                lean.event_plan(self.schema, self.operation, self.fragment_definitions),
            )
        plan = self._subscription_plan[0]
        if plan is not None:  # no copy of this executor (a tenth of a stream's time per event)
            return _EventAnswer(self, plan, payload)
        return super().build_per_event_executor(payload)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.operation.operation is OperationType.MUTATION:
            # Only a mutation's executor looks for a compiled answer: graphql-core completes
            # every field of every other operation through this method, without the extra call.
            self.complete_value = self._complete_mutation_value  # type: ignore[method-assign]

    def _complete_mutation_value(
        self,
        return_type: Any,
        field_details_list: Any,
        info: Any,
        path: Any,
        result: Any,
        position_context: Any,
    ) -> Any:
        """A mutation's answer (the value its root field returned) completed by its compiled
        plan (:func:`gateway.api.lean.root_completion`): the Billing page's CheckoutSuccess is
        about 90 fields. Anything the plan cannot complete exactly is completed the ordinary
        way, with its errors."""
        if path.prev is None and return_type is info.return_type and not isinstance(result, Exception):
            # (not again for the type inside the root field's NonNull)
            complete = lean.root_completion(self.schema, self.operation, self.fragment_definitions, path.key)
            if complete is not None:
                try:
                    return complete(self, result, path)
                except Exception:  # noqa: BLE001 - graphql-core completes it and reports the error
                    pass
        return super().complete_value(return_type, field_details_list, info, path, result, position_context)

    def per_event_copy(self, payload: Any) -> Any:
        """graphql-core's per-event executor: a copy of this one, for an event the plan cannot
        answer."""
        return super().build_per_event_executor(payload)


class _EventAnswer:
    """The per-event "executor" of a stream with an event plan: answers by the plan (computed
    once per event for every stream of the document), else executes the event the ordinary way."""

    __slots__ = ("executor", "payload", "plan")

    def __init__(self, executor: _Executor, plan: lean.EventPlan, payload: Any) -> None:
        self.executor, self.plan, self.payload = executor, plan, payload

    def execute_operation(self, serially: bool | None = None) -> Any:
        data = lean.event_data(self.plan, self.payload)
        if data is not None:
            return GraphQLExecutionResult(data, None)
        return self.executor.per_event_copy(self.payload).execute_operation(serially)


# Set while a subscription's stream is created by _Schema.stream_masked: its extensions then
# leave the masking to the stream's own wrapper.
_MASKED_BY_STREAM: contextvars.ContextVar[bool] = contextvars.ContextVar("masked_by_stream", default=False)


class _Schema(strawberry.Schema):
    def get_extensions(self, sync: bool = False) -> list[Any]:
        extensions = super().get_extensions(sync)
        if _MASKED_BY_STREAM.get():
            return [extension for extension in extensions if not isinstance(extension, _MaskErrors)]
        return extensions

    async def stream_masked(self, query: str | None, **kwargs: Any) -> AsyncGenerator[Any, None]:
        """:meth:`stream`, with each result's errors masked by one masker for the whole stream.

        Strawberry masks a streamed result through its ``on_stream_result`` extension hook,
        which builds a context manager per hook per result: a fifth of a subscriber's time
        per event, times every subscriber. The masking is the same (:func:`mask_errors`)."""
        token = _MASKED_BY_STREAM.set(True)
        try:
            source = await self.stream(query, **kwargs)
        finally:
            _MASKED_BY_STREAM.reset(token)
        return _masked(source, mask_errors())

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Log unexpected exceptions once, with their traceback; request errors are the
        client's and only noise in the server log (strawberry logs every error)."""
        for error in errors:
            if _database_fault(error):  # an outage, not a bug: one line, no traceback
                assert error.original_error is not None
                logger.warning(
                    "database unavailable at %s: %s",
                    ".".join(map(str, error.path or ())) or "(request)",
                    faults.describe(error.original_error),
                )
            elif _nul_refused(error):
                logger.info("NUL character refused at %s", ".".join(map(str, error.path or ())))
            elif _unexpected(error):
                logger.error(
                    "unexpected error at %s",
                    ".".join(map(str, error.path or ())) or "(request)",
                    exc_info=error.original_error,
                )


async def _masked(source: AsyncGenerator[Any, None], masker: _MaskErrors) -> AsyncGenerator[Any, None]:
    async with aclosing(source):
        async for result in source:
            masker._process_stream_result(result)  # as Strawberry's hook does
            yield result


def mask_errors() -> _MaskErrors:
    return _MaskErrors(should_mask_error=_should_mask, error_message="Internal error.")


class _MaskErrors(MaskErrors):
    """Masks unexpected exceptions as "Internal error."; a database fault instead reads
    :data:`~gateway.storage.faults.MESSAGE` with ``extensions.code`` DATABASE_UNAVAILABLE, so
    clients (and the HTTP layer, which answers it with a 503) can tell an outage from a bug, and a
    NUL character the storage refused answers ``extensions.code`` INVALID_CHARACTERS."""

    def _process_result(self, result: object) -> None:
        # Every streamed event passes here; Strawberry's runtime Protocol check costs more than
        # the rest of it, and a result without errors has nothing to mask.
        if getattr(result, "errors", None):
            super()._process_result(result)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        if _database_fault(error):
            return self._coded(error, faults.MESSAGE, faults.DATABASE_UNAVAILABLE)
        if _nul_refused(error):
            return self._coded(error, "strings must not contain NUL characters", INVALID_CHARACTERS)
        if not error.path and not _unexpected(error):  # a request error: the same without the values
            return GraphQLError(
                _without_values(error.message),
                nodes=error.nodes,
                source=error.source,
                positions=error.positions,
                extensions=error.extensions,
            )
        return super().anonymise_error(error)

    @staticmethod
    def _coded(error: GraphQLError, message: str, code: str) -> GraphQLError:
        return GraphQLError(
            message,
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            extensions={"code": code},
        )


class _RootField(FieldExtension):
    """What runs around each root Query and Mutation field, and only there (a schema extension's
    ``resolve`` would wrap every field of every answer: about 120 per Order Preview):

    * the scope check (:func:`gateway.api.scopes.refusal`): ScopeRequired as the answer of a
      field the workspace key may not use, whose resolver then never runs;
    * a note on the context of what the field answered (its type, whether a typed error), for
      the server's metrics."""

    def __init__(self, root_type: str) -> None:
        self.root_type = root_type

    def resolve(self, next_: Callable[..., Any], source: Any, info: strawberry.Info, **kwargs: Any) -> Any:
        context = info.context
        answers = getattr(context, "answers", None)
        key = str(info.path.key)
        try:
            result = refusal(context, self.root_type, info.field_name)
            if result is None:
                result = next_(source, info, **kwargs)
        except Exception:
            if answers is not None:
                answers[key] = RootAnswer(info.field_name, None, False, raised=True)
            raise
        if answers is not None:
            definition = getattr(result, "__strawberry_definition__", None)
            answers[key] = RootAnswer(
                info.field_name, definition.name if definition else None, isinstance(result, e.UserError)
            )
        return result


def _with_root_extensions(root: type, name: str) -> type:
    for root_field in get_object_definition(root, strict=True).fields:
        if not any(isinstance(extension, _RootField) for extension in root_field.extensions):
            root_field.extensions.append(_RootField(name))
    return root


def _described(root: type, description: str) -> type:
    """A merged root type with its description (merge_types takes none)."""
    get_object_definition(root, strict=True).description = description
    return root


@functools.cache
def build_schema() -> strawberry.Schema:
    """The schema, built once per process: it holds no per-gateway state (the context does)."""
    query = _described(
        _with_root_extensions(merge_types("Query", (CoreQuery, WebhooksQuery)), "Query"),
        "What can be read. The catalog, message rates, selectPlan and estimate need no key; workspace, "
        "quote and webhookEndpoints need the workspace's API key.",
    )
    mutation = _described(
        _with_root_extensions(
            merge_types(
                "Mutation",
                (CoreMutation, PaymentsMutation, BillingMutation, WebhooksMutation, OperatorMutation),
            ),
            "Mutation",
        ),
        "What can be changed. Expected failures are answered as typed errors in each result union, "
        "never as GraphQL errors.",
    )
    schema = _Schema(
        execution_context_class=_Executor,
        query=query,
        mutation=mutation,
        subscription=Subscription,
        types=[e.AuthenticationRequired],
        extensions=[
            # Bounds on documents, checked before the parser, and the bounded cache of checked
            # and validated documents (gateway.api.limits).
            DocumentLimits,
            mask_errors,
            # No extension with a per-field `resolve`: that would wrap every field; the scope
            # check and the metrics' notes run around the root fields only (_RootField).
        ],
    )
    check_schema(schema)  # every root field declares its scope
    inputs.install(schema)  # input objects built without Strawberry's generic walk
    return schema


def print_sdl() -> str:
    return build_schema().as_str() + "\n"
