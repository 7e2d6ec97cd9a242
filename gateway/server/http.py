"""GraphQL over HTTP (https://graphql.github.io/graphql-over-http/) on Starlette.

* POST with ``application/json`` runs queries and mutations; GET (and HEAD)
  runs queries only (a mutation over GET is 405 with ``Allow: POST``).
* ``GET /invoices/{id}.pdf`` serves one of the workspace's invoices as a PDF, with the same
  bearer key (:func:`invoice_pdf`).
  Subscriptions are served over WebSocket, never over plain HTTP: graphql-transport-ws
  on the same path (see :mod:`gateway.api.subscriptions`).
* A body that is not a GraphQL-over-HTTP request (not JSON, no string ``query``,
  non-object ``variables``) is 400 whatever the media type.
* ``Accept`` chooses the response media type: ``application/graphql-response+json``
  (the default when Accept is missing) answers 400 for requests that could not
  be executed (unparsable, invalid, bad variables, no operation to select);
  ``application/json`` keeps 200 for those, as legacy clients expect. 406 when
  neither is acceptable.
* A browser asking for HTML at ``/graphql`` gets GraphiQL (unless disabled), bundled with the
  gateway (:mod:`gateway.server.pages`): its assets are served at ``/assets/``.
* CORS only for the origins in ``BILLING_GATEWAY_CORS_ORIGINS`` (:func:`cors`); none by default.

Operations run in a worker thread with a per-request :class:`Context`, so a
slow database call never blocks the event loop.

The app's lifespan also runs renewals every ``BILLING_GATEWAY_RENEWAL_INTERVAL``
seconds (0 disables it), in a worker thread. Every replica may run it: the
workspace locks and the one-row-per-period renewal record make a second run for the
same period do nothing. It runs the event notifier too (:mod:`gateway.events.notify`), which wakes
subscribers when events commit, here or, on PostgreSQL, on another replica.
It also runs the delivery worker (webhooks and in-process event listeners, see
:mod:`gateway.events.delivery`) every ``BILLING_GATEWAY_DELIVERY_INTERVAL`` seconds (0 disables it),
woken early by the notifier; every replica may run it (deliveries are claimed with row locks).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import anyio.to_thread
import orjson
from anyio.lowlevel import RunVar
from graphql import DocumentNode, OperationDefinitionNode
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from gateway.api import encoding, lean, limits, throttle, trusted
from gateway.api.context import Context
from gateway.api.schema import build_schema
from gateway.api.subscriptions import SubscriptionServer
from gateway.events.delivery import DeliveryWorker
from gateway.plugin_api.payments import InvalidNotification
from gateway.server import observability, pages
from gateway.server.app import Gateway
from gateway.server.metrics import Metrics
from gateway.server.settings import Settings
from gateway.services import billing_views
from gateway.services.billing_views import InvoiceView
from gateway.services.dunning import run_dunning
from gateway.services.invoice_pdf import MEDIA_TYPE as PDF_MEDIA_TYPE
from gateway.services.invoice_pdf import file_name, render_invoice
from gateway.services.keys import Scope, WorkspaceCaller
from gateway.services.price_changes import give_notice
from gateway.services.renewal import RenewalStatus, renew_due
from gateway.services.settlement import CannotSettle, notified, reconcile
from gateway.storage import faults
from gateway.storage.db import WouldBlock, no_blocking_io
from gateway.storage.idempotency import purge_expired

logger = logging.getLogger("gateway.http")  # logger names are stable: operators filter on them

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
MAX_BODY = 1_000_000  # bytes; a GraphQL document is far smaller (limits.Limits.max_bytes)
# The root fields whose resolvers read only memory when the gateway's caches hold what they need
# (the catalog, the rates, the workspace's rows: gateway.storage.workspace_cache) and call only
# pure plugin code (a tax calculator: gateway.core.tax.TaxCalculator). A query of a trusted
# document made of these is answered on the event loop; if a cache misses, the session it opens
# raises WouldBlock and a worker thread answers instead.
ANSWERED_FROM_MEMORY = frozenset({"quote", "selectPlan", "estimate", "plans", "__typename"})
HERE_MAX_BODY = 16_384  # bytes of a body (or a GET's query string): larger ones go to a worker thread
# The largest WebSocket message uvicorn accepts (its default is 16 MiB): a subscribe message
# holds a document (limited to 64 KiB) and a few variables.
MAX_WEBSOCKET_MESSAGE = 256 * 1024


class _Reject(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        self.status, self.message, self.headers = status, message, headers or {}


def _negotiate(accept: str | None) -> str:
    """The response media type for an Accept header, or raise 406."""
    if accept is None or not accept.strip():
        return GRAPHQL_RESPONSE
    # A client sends the same header every time: each short one is ranked once.
    media = _ranked_once(accept) if len(accept) <= 256 else _ranked(accept)
    if media is None:
        raise _Reject(406, f"cannot answer with any of: {accept}; accept {GRAPHQL_RESPONSE} or {JSON}")
    return media


def _ranked(accept: str) -> str | None:
    """The media type an Accept header ranks first of the two we answer with, or None."""
    ranked = []
    for position, item in enumerate(accept.split(",")):
        media, *params = [p.strip() for p in item.split(";")]
        quality = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    quality = float(param[2:])
                except ValueError:
                    quality = 0.0
        ranked.append((-quality, position, media.lower()))
    for negative_quality, _, media in sorted(ranked):
        if negative_quality == 0:
            continue
        if media == GRAPHQL_RESPONSE:
            return GRAPHQL_RESPONSE
        if media in (JSON, "application/*", "*/*"):
            return JSON
    return None


_ranked_once = functools.lru_cache(maxsize=128)(_ranked)


class GraphQLResponse(JSONResponse):
    """A GraphQL answer, encoded by orjson (:func:`gateway.api.encoding.dumps`): the Order
    Preview's 2.8 KB in 3 µs against 50 µs for the standard library's encoder. What it refuses
    goes to the standard library's encoder, as before."""

    def render(self, content: Any) -> bytes:
        try:
            return encoding.dumps(content)
        except TypeError:
            return super().render(content)


def _response(
    payload: dict[str, Any], status: int, media: str, headers: dict[str, str] | None = None
) -> Response:
    return GraphQLResponse(payload, status_code=status, media_type=f"{media}; charset=utf-8", headers=headers)


def _error_payload(message: str) -> dict[str, Any]:
    return {"errors": [{"message": message}]}


def _params_from_get(request: Request) -> dict[str, Any]:
    params: dict[str, Any] = {"query": request.query_params.get("query")}
    for name in ("operationName", "documentId"):
        if name in request.query_params:
            params[name] = request.query_params[name]
    if "extensions" in request.query_params:  # Apollo's persisted queries send their hash here
        try:
            params["extensions"] = json.loads(request.query_params["extensions"])
        except (ValueError, RecursionError):
            raise _Reject(400, "`extensions` is not valid JSON") from None
    if "variables" in request.query_params:
        try:
            params["variables"] = json.loads(request.query_params["variables"])
        except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
            raise _Reject(400, "`variables` is not valid JSON") from None
    return params


async def _body_of_post(request: Request) -> bytes:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != JSON:
        raise _Reject(415, f"POST bodies must be {JSON}")
    body = await _read_body(request, MAX_BODY)
    if body is None:
        raise _Reject(413, f"request bodies are limited to {MAX_BODY} bytes")
    return body


def _decode(body: bytes) -> tuple[Any, bool]:
    """The decoded body, exactly as the standard library decodes it: by orjson (a tenth of the
    time) where the two agree, else by the standard library; and whether its strings are known
    to be valid Unicode. orjson refuses a lone surrogate escape, NaN and nesting deeper than
    1,024, and reads an integer beyond 64 bits as a float: a body in which it found a float
    (the Billing page's never holds one) is read again by the standard library."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return json.loads(body), False
    if _has_float(value):
        return json.loads(body), False
    return value, True


def _has_float(value: Any) -> bool:
    """Whether a decoded JSON value holds a float anywhere (iterative: no stack to exhaust)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, float):
            return True
    return False


def _params_from_post(body: bytes) -> tuple[dict[str, Any], bool]:
    """The decoded body (:func:`_decode`), and whether its strings are known to be valid Unicode."""
    try:
        params, unicode = _decode(body)
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        raise _Reject(400, "the request body is not valid JSON") from None
    if not isinstance(params, dict):
        raise _Reject(400, "the request body must be a JSON object")
    return params, unicode


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The request body, or None as soon as it is known to exceed ``limit`` bytes: at once for
    a larger Content-Length, else while it streams (a chunked body has no length), so that
    no more than ``limit`` bytes are ever held."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _request_of(
    params: dict[str, Any] | bytes, *, here: bool = False
) -> tuple[str, dict[str, Any] | None, str | None, limits.Checked]:
    """A request's query, variables and operation name, and the document's verdict (limits,
    then parsed). Called in a worker thread: decoding a body, walking its variables and
    checking its document take time that grows with them, and the event loop, which serves
    every other request, never waits on it. ``here`` (on the event loop, for a small body):
    only a trusted document, checked at start-up; any other raises WouldBlock."""
    decoded, unicode = (params, False) if isinstance(params, dict) else _params_from_post(params)
    query, variables, operation = _check_params(trusted.resolve(decoded), unicode)
    if here:
        pinned = limits.PINNED.get(query)
        if pinned is None:
            raise WouldBlock("a document to check")
        return query, variables, operation, pinned
    return query, variables, operation, limits.checked(query)


def _check_params(
    params: dict[str, Any], unicode: bool = False
) -> tuple[str, dict[str, Any] | None, str | None]:
    """The request's query, variables and operation name, checked; ``unicode``: its strings
    are known to be valid Unicode (orjson decoded them)."""
    query, variables, operation = params.get("query"), params.get("variables"), params.get("operationName")
    if not isinstance(query, str) or not query.strip():
        raise _Reject(400, "`query` must be a non-empty string")
    if variables is not None and not isinstance(variables, dict):
        raise _Reject(400, "`variables` must be an object")
    if operation is not None and not isinstance(operation, str):
        raise _Reject(400, "`operationName` must be a string")
    if not unicode and _has_lone_surrogate((query, variables, operation)):
        # JSON can escape half a UTF-16 pair ("\ud800"); such a string cannot be
        # encoded as UTF-8, so it could be neither echoed in a response nor stored.
        raise _Reject(400, "strings must be valid Unicode: unpaired surrogate escape in the request")
    return query, variables, operation


def _has_lone_surrogate(value: Any) -> bool:
    """Whether any string (or object key) in a decoded JSON value holds a lone surrogate.

    Iterative, so deeply nested variables cannot exhaust the stack.
    """
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)
    return False


def _operation_type(document: DocumentNode | None, operation: str | None) -> OperationType | None:
    """The type of the operation a request selects (GetOperation in the GraphQL spec).

    Raises a 400 ``_Reject`` when no operation can be selected; None when the
    document does not parse (execution reports that).
    """
    if document is None:
        return None
    operations = [
        (d.name.value if d.name else None, OperationType(d.operation.value))
        for d in document.definitions
        if isinstance(d, OperationDefinitionNode)
    ]
    if operation is None:
        if not operations:
            raise _Reject(400, "the document contains no operation")
        if len(operations) > 1:
            raise _Reject(400, "the document contains several operations: send `operationName`")
        return operations[0][1]
    for name, kind in operations:
        if name == operation:
            return kind
    raise _Reject(400, f"the document has no operation named {operation!r}")


def _bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


class _Admitted(set[str]):
    """What a request was counted for by the rate limits ("address", "sign-in", "fields"), so
    that serving it again in a worker thread, after its attempt on the event loop, counts none
    twice; and when it was first taken up, for its latency."""

    def __init__(self) -> None:
        super().__init__()
        self.started = time.perf_counter()


class GraphQLEndpoint:
    def __init__(self, gateway: Gateway, metrics: Metrics | None = None) -> None:
        self.gateway = gateway
        self.schema = build_schema()
        self.metrics = metrics
        # Answering on the event loop saves the hop to a worker thread (a third of a quote's time
        # under load), but only where the rate limits count in memory: their database store
        # would block the loop.
        self.answers_here = gateway.settings.rate_limit_store == "memory"
        # The worker threads' share of requests: one limiter per event loop (a TestClient runs
        # its own), of Settings.request_threads tokens.
        self._threads: RunVar[anyio.CapacityLimiter] = RunVar(f"gateway_request_threads_{id(self)}")
        trusted.pin_all(self.schema._schema)  # parsed and validated once, never evicted

    async def handle(self, request: Request) -> Response:
        reads = request.method in ("GET", "HEAD")  # HEAD is a GET without the body
        wants_html = "text/html" in request.headers.get("accept", "")
        if reads and wants_html and "query" not in request.query_params:
            if not self.gateway.settings.graphiql:
                return Response("GraphiQL is disabled", status_code=404)
            return pages.page("graphiql")  # bundled (frontend/): no request leaves the origin
        try:
            media = _negotiate(request.headers.get("accept"))
        except _Reject as reject:
            return _response(_error_payload(reject.message), reject.status, JSON)
        token = _bearer_token(request)
        address = throttle.address_of(request.scope)
        try:
            params = _params_from_get(request) if reads else await _body_of_post(request)
            admitted = _Admitted()  # the rate limits' counts this request took, once each
            size = len(request.scope.get("query_string", b"")) if reads else len(params)
            if self.answers_here and token and size <= HERE_MAX_BODY:
                try:
                    with no_blocking_io():
                        return self._serve(params, reads, media, token, address, admitted, here=True)
                except WouldBlock:
                    pass  # it needs the database (or a document checked): a worker thread does it
            # One worker thread for the rest: decoding, the limits, sign-in and execution.
            return await anyio.to_thread.run_sync(
                self._serve, params, reads, media, token, address, admitted, limiter=self._limiter()
            )
        except _Reject as reject:  # not a well-formed GraphQL-over-HTTP request: 4xx for both media
            return _response(_error_payload(reject.message), reject.status, media, reject.headers)
        except throttle.RateLimited as limited:
            return self._rate_limited(limited, media)
        except Exception as error:
            if not faults.unavailable(error):
                raise
            observability.log_unavailable(error, "signing in")  # before execution: nothing ran
            return _unavailable(observability.graphql_unavailable_payload(), media)

    def _limiter(self) -> anyio.CapacityLimiter:
        """How many requests work in worker threads at once (``Settings.request_threads``).

        anyio's default is 40 threads, shared with everything else. Under load that many
        requests took turns holding the GIL, each holding its transaction's row locks while it
        waited for its turn: checkouts queued on the invoice number's counter row (4 to 8 of 16
        at any moment). With 4 threads on 2 CPUs one worker took more checkouts a second and
        the p99 halved; with 8 the p99 fell by nearly as much, and the Order Preview's p99 (its
        rare reads in a worker thread wait for one) stayed within 3x its p50, which with 4 it
        did not. The cost: a request that waits on something slow outside the process (a card
        processor) keeps its thread meanwhile."""
        try:
            return self._threads.get()
        except LookupError:
            limiter = anyio.CapacityLimiter(self.gateway.settings.request_threads)
            self._threads.set(limiter)
            return limiter

    def _serve(
        self,
        params: dict[str, Any] | bytes,
        reads: bool,
        media: str,
        token: str | None,
        address: str,
        admitted: _Admitted,
        here: bool = False,
    ) -> Response:
        """A request after its body was read, in a worker thread: counted against its address
        (before any parse), decoded and checked (:func:`_request_of`), then executed. Raises
        ``_Reject`` for a malformed request and :class:`~gateway.api.throttle.RateLimited`.

        ``here``: on the event loop, under ``no_blocking_io``, for a query of a trusted document
        whose root fields all answer from memory (:data:`ANSWERED_FROM_MEMORY`); anything else,
        and anything that would open a database session, raises WouldBlock, and the request is
        served again in a worker thread. The rate limits' counts it took (``admitted``) are not
        taken twice."""
        if "address" not in admitted:
            throttle.admit_address(self.gateway.rate_limiter, address, bool(token))
            admitted.add("address")
        try:
            query, variables, operation, checked = _request_of(params, here=here)
        except trusted.DocumentIdError as wrong:  # Apollo's clients then send the document's text
            payload = {"errors": [{"message": str(wrong), "extensions": {"code": wrong.code}}]}
            return _response(payload, _request_error_status(media), media)
        if checked.refusal is not None:
            error = checked.refusal.error()
            return _response({"errors": [error.formatted]}, _request_error_status(media), media)
        try:
            kind = _operation_type(checked.document, operation)
        except _Reject as reject:  # a GraphQL request error, like a validation error
            return _response(_error_payload(reject.message), _request_error_status(media), media)
        if kind is OperationType.MUTATION and reads:
            return _response(
                _error_payload("mutations must be sent with POST"), 405, media, {"Allow": "POST"}
            )
        if kind is OperationType.SUBSCRIPTION:
            return _response(
                _error_payload(
                    "subscriptions are served over WebSocket (graphql-transport-ws), not over plain HTTP"
                ),
                _request_error_status(media),
                media,
            )
        allowed = {OperationType.QUERY} if reads else {OperationType.QUERY, OperationType.MUTATION}
        fields = throttle.root_fields(checked.document, operation)
        if here and (kind is not OperationType.QUERY or not set(fields) <= ANSWERED_FROM_MEMORY):
            raise WouldBlock("an operation that may do I/O")
        return self._execute(
            query, variables, operation, token, allowed, media, address, checked, fields, admitted
        )

    def _rate_limited(self, limited: throttle.RateLimited, media: str) -> Response:
        """429 with Retry-After, for either media type: the request was refused before GraphQL
        saw it, like a request without a valid body."""
        if self.metrics is not None:
            self.metrics.rate_limited(limited.refusal.rule.name)
        return _response({"errors": [limited.error()]}, 429, media, limited.headers())

    def _execute(
        self,
        query: str,
        variables: dict[str, Any] | None,
        operation: str | None,
        token: str | None,
        allowed: set[OperationType],
        media: str,
        address: str,
        checked: limits.Checked,
        fields: list[str],
        admitted: _Admitted,
    ) -> Response:
        started = admitted.started  # a request that left the event loop: since its first attempt
        context = Context(gateway=self.gateway, now=self.gateway.clock(), credentials_given=token is not None)
        limiter = self.gateway.rate_limiter
        caller = None
        if token:
            # A connection of its own, if any (a token not seen lately), returned before resolvers run.
            caller = self.gateway.callers.identify(token)
            context.sign_in(caller)
            if "sign-in" not in admitted:
                throttle.signed_in(limiter, address, caller)
                admitted.add("sign-in")
        if "fields" not in admitted:
            throttle.admit_fields(limiter, address, caller, fields)
            admitted.add("fields")
        result: ExecutionResult | None = None
        blocked = False
        try:
            # A query with a plan (gateway.api.lean) skips graphql-core's executor; any other
            # document, or one its plan cannot answer exactly, runs the ordinary way.
            data = lean.answer(
                checked,
                self.schema._schema,
                operation,
                context,
                variables,
                self.schema.execution_context_class,
            )
            if data is not None:
                result = ExecutionResult(data=data, errors=None)
                return _response({"data": data}, 200, media)
            result = self.schema.execute_sync(
                query,
                variable_values=variables,
                context_value=context,
                operation_name=operation,
                allowed_operation_types=allowed,
            )
        except InvalidOperationTypeError:  # kept as a safety net: handle() answers these first
            return _response(
                _error_payload("mutations must be sent with POST"), 405, media, {"Allow": "POST"}
            )
        except CannotGetOperationTypeError:
            return _response(
                _error_payload("no operation to run in the document"), _request_error_status(media), media
            )
        except WouldBlock:
            blocked = True  # served again in a worker thread: counted there
            raise
        finally:
            context.close()
            if self.metrics is not None and not blocked:
                self.metrics.graphql(
                    context.answers,
                    result.errors or () if result is not None else (),
                    time.perf_counter() - started,
                    query=query,
                    operation_name=operation,
                    completed=result is not None and not result.errors,
                )
        payload: dict[str, Any] = {}
        if result.errors:
            payload["errors"] = [error.formatted for error in result.errors]
        # Errors without a path happened before execution: the request was not executed.
        executed = result.data is not None or not result.errors or any(err.path for err in result.errors)
        if executed:
            payload["data"] = result.data
        if result.extensions:
            payload["extensions"] = result.extensions
        if observability.database_faulted(payload) and payload.get("data") is None:
            payload.pop("data", None)  # nothing to show: the request failed as a whole
            return _unavailable(payload, media)
        status = 200 if executed else _request_error_status(media)
        return _response(payload, status, media)


def _unavailable(payload: dict[str, Any], media: str) -> Response:
    """The database could not be reached: 503 with Retry-After for graphql-response+json; legacy
    application/json clients get 200, as the GraphQL-over-HTTP spec asks for well-formed
    requests (the errors carry extensions.code DATABASE_UNAVAILABLE either way)."""
    status = 503 if media == GRAPHQL_RESPONSE else 200
    return _response(payload, status, media, observability.unavailable_headers())


def _request_error_status(media: str) -> int:
    """A GraphQL request error (unparsable, invalid, no operation to run) is 400 with
    graphql-response+json; legacy application/json clients get 200."""
    return 400 if media == GRAPHQL_RESPONSE else 200


def renew(gateway: Gateway, metrics: Metrics | None = None) -> None:
    """One renewal run, then one dunning run, reported to the log (and renewal payment failures
    to the metrics); expired idempotency keys are purged on the way."""
    now = gateway.clock()
    with gateway.write_sessions.begin() as session:
        purged = purge_expired(session, now)
    if purged:
        logger.info("purged %d expired idempotency keys", purged)
    if forgotten := gateway.rate_limiter.purge():
        logger.info("purged %d expired rate-limit counts", forgotten)
    results = renew_due(gateway, now)
    if metrics is not None:
        metrics.renewals(results)
    for result in results:
        level = {
            RenewalStatus.ERROR: logging.ERROR,
            RenewalStatus.PAYMENT_FAILED: logging.WARNING,
            RenewalStatus.ALREADY_RENEWED: logging.WARNING,
        }.get(result.status, logging.INFO)
        logger.log(level, "renewal: %s", result.describe())
    for step in run_dunning(gateway, now):  # retries due and suspensions, after the renewals
        logger.info("dunning: %s", step.describe())
    for notice in give_notice(gateway, now):
        logger.info("price change: %s", notice.describe())


def reconcile_payments(gateway: Gateway) -> None:
    """One payment reconciliation run, reported to the log."""
    for step in reconcile(gateway, gateway.clock()):
        logger.info("payments: %s", step.describe())


def _read_invoice(
    gateway: Gateway, token: str, invoice_id: str, address: str
) -> tuple[bool, InvoiceView | None]:
    """Whether the key is valid (and may read), and the invoice if it is the key's workspace's.
    Counted like a GraphQL request (:mod:`gateway.api.throttle`). The session (one connection)
    is closed before returning: rendering holds none."""
    limiter = gateway.rate_limiter
    throttle.admit_address(limiter, address, signing_in=True)
    caller = gateway.callers.identify(token)
    throttle.signed_in(limiter, address, caller)  # the rate store may take a connection of its own
    if not isinstance(caller, WorkspaceCaller) or Scope.READ not in caller.scopes:
        return False, None
    with gateway.sessions() as session:
        return True, billing_views.invoice(session, invoice_id, caller.workspace_id)


async def invoice_pdf(request: Request) -> Response:
    """``GET /invoices/{id}.pdf`` with the workspace's API key as a bearer token: 401 without a
    valid key, 404 for an unknown id or another workspace's invoice (the same answer, so ids of
    other workspaces cannot be probed), 429 over a rate limit, else the invoice as a PDF."""
    gateway: Gateway = request.app.state.gateway
    token = _bearer_token(request)
    if not token:
        return _unauthorized("an API key is required: send it as `Authorization: Bearer <key>`")
    invoice_id = request.path_params["invoice_id"]
    address = throttle.address_of(request.scope)
    try:
        valid, invoice = await anyio.to_thread.run_sync(_read_invoice, gateway, token, invoice_id, address)
    except throttle.RateLimited as limited:
        request.app.state.metrics.rate_limited(limited.refusal.rule.name)
        return JSONResponse(
            {"error": limited.message, "code": throttle.RATE_LIMITED},
            status_code=429,
            headers=limited.headers(),
        )
    if not valid:
        return _unauthorized("the API key is not valid")
    if invoice is None:
        return JSONResponse({"error": "no such invoice"}, status_code=404)
    document = await anyio.to_thread.run_sync(render_invoice, invoice)
    return Response(
        document,
        media_type=PDF_MEDIA_TYPE,
        headers={
            "Content-Disposition": f'inline; filename="{file_name(invoice)}"',
            "Cache-Control": "private, no-store",  # a document for the key holder only
        },
    )


def _unauthorized(message: str) -> Response:
    return JSONResponse({"error": message}, status_code=401, headers={"WWW-Authenticate": "Bearer"})


MAX_NOTIFICATION_BYTES = 64 * 1024


async def payment_notification(request: Request) -> Response:
    """A payment method's signed notification (a bank's notice of incoming funds): verified
    by the method, then applied like any other answer. 400 changes nothing."""
    gateway: Gateway = request.app.state.gateway
    body = await _read_body(request, MAX_NOTIFICATION_BYTES)
    if body is None:
        return JSONResponse({"error": "notification too large"}, status_code=413)
    headers = {key.lower(): value for key, value in request.headers.items()}
    method = request.path_params["method"]
    try:
        outcome = await anyio.to_thread.run_sync(lambda: notified(gateway, method, headers, body))
    except InvalidNotification as error:
        logger.warning("payment notification for %s refused: %s", method, error)
        return JSONResponse({"error": "invalid notification"}, status_code=400)
    except CannotSettle as error:
        return JSONResponse({"error": str(error)}, status_code=404)
    return JSONResponse({"received": True, "outcome": type(outcome).__name__})


async def run_periodically(
    work: Callable[[], object], interval: float, *, sleep: Callable[[float], Awaitable[object]] = anyio.sleep
) -> None:
    """Call ``work`` in a worker thread every ``interval`` seconds until cancelled.

    An error is logged and the loop goes on: the next run retries. The first run
    waits one interval, so a freshly started server (or a test client) is left alone.
    """
    while True:
        await sleep(interval)
        try:
            await anyio.to_thread.run_sync(work)
        except Exception:
            logger.exception("periodic task failed; the next run is in %s seconds", interval)


access_logger = logging.getLogger("gateway.access")


class AccessLog:
    """One line per request: method, path, status and duration, never the query string.

    It replaces uvicorn's access log, which prints whole URLs: a card number sent in
    a GET query string (which the endpoint refuses) must still not reach a log.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            client = scope.get("client") or ("-", 0)
            access_logger.info(
                '%s "%s %s" %d %.1fms',
                client[0],
                scope["method"],
                scope["path"],
                status,
                (time.perf_counter() - started) * 1000,
            )


CORS_MAX_AGE = 600  # seconds a browser may reuse a preflight's answer


def cors(settings: Settings) -> list[Middleware]:
    """CORS for the configured origins, or nothing: with no origin set, a browser page on another
    origin cannot read the API's answers (and an OPTIONS request is 405).

    Preflights allow what the API takes: GET and POST with ``Authorization`` (the bearer key) and
    ``Content-Type``. Never credentials: the API key is a header the page sends, not a cookie,
    which is also why ``*`` is safe to allow. WebSocket (subscriptions) is not CORS: pages on any
    origin may connect, authenticating in ``connection_init``.
    """
    if not settings.cors_origins:
        return []
    return [
        Middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "Accept"],
            allow_credentials=False,
            expose_headers=["Content-Disposition"],  # an invoice PDF's file name
            max_age=CORS_MAX_AGE,
        )
    ]


async def billing_page(request: Request) -> Response:
    """The reference Billing page (frontend/): the seed's upgrade flow on the public GraphQL API.
    It asks for the workspace's API key (or reads it from the URL's #key= fragment, which no
    request carries) and keeps it in the tab's session storage."""
    return pages.page("billing")


def create_app(gateway: Gateway) -> Starlette:
    metrics = observability.metrics_of(gateway, build_schema())
    endpoint = GraphQLEndpoint(gateway, metrics)
    deliveries = DeliveryWorker(  # webhooks and event listeners
        gateway,
        gateway.settings.delivery_interval,
        concurrency=gateway.settings.webhook_concurrency,
        per_workspace=gateway.settings.webhook_workspace_concurrency,
        on_counts=metrics.deliveries,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with anyio.create_task_group() as tasks:
            await tasks.start(gateway.notifier.run)
            interval = gateway.settings.renewal_interval
            if interval > 0:
                tasks.start_soon(run_periodically, lambda: renew(gateway, metrics), interval)
            if deliveries.interval > 0:
                tasks.start_soon(deliveries.run)
            if gateway.settings.reconcile_interval > 0:
                tasks.start_soon(
                    run_periodically, lambda: reconcile_payments(gateway), gateway.settings.reconcile_interval
                )
            yield
            tasks.cancel_scope.cancel()  # a renewal in progress finishes its transaction first

    probes = observability.Probes(gateway.engine)
    observability.install_record_context()  # log records carry the request id
    observability.install_log_redaction()  # uvicorn's and websockets' lines carry no key

    app = Starlette(
        routes=[
            Route("/graphql", endpoint.handle, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", SubscriptionServer(gateway, endpoint.schema)),
            Route("/health", probes.health, methods=["GET"]),
            Route("/livez", probes.livez, methods=["GET"]),
            Route("/readyz", probes.readyz, methods=["GET"]),
            Route(
                "/metrics",
                observability.metrics_route(metrics, gateway.settings.metrics_token),
                methods=["GET"],
            ),
            Route("/payments/{method}/notifications", payment_notification, methods=["POST"]),
            Route("/invoices/{invoice_id}.pdf", invoice_pdf, methods=["GET"]),
            Route("/billing", billing_page, methods=["GET"]),
            Mount(pages.ASSETS_PATH, app=pages.assets(), name="assets"),
        ],
        lifespan=lifespan,
        # Outermost first: the request id is set before the access log and the error answers;
        # CORS headers go on every answer, errors included.
        middleware=[
            Middleware(observability.RequestContext),
            Middleware(AccessLog),
            *cors(gateway.settings),
            Middleware(observability.ErrorResponses),
        ],
    )
    app.state.gateway = gateway
    app.state.delivery_worker = deliveries  # .wake() delivers at once
    app.state.metrics = metrics
    return app
