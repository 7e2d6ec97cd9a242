"""GraphQL over HTTP (https://graphql.github.io/graphql-over-http/) on Starlette.

* POST with ``application/json`` runs any operation; GET runs queries only
  (a mutation over GET is 405).
* ``Accept`` chooses the response media type: ``application/graphql-response+json``
  (the default when Accept is missing) answers 400 for requests that could not
  be executed (unparsable, invalid, bad variables); ``application/json`` keeps
  200 for every well-formed request, as legacy clients expect. 406 otherwise.
* A browser asking for HTML at ``/graphql`` gets GraphiQL (unless disabled).

Operations run in a worker thread with a per-request :class:`Context`, so a
slow database call never blocks the event loop.
"""

from __future__ import annotations

import json
from typing import Any

import anyio.to_thread
from strawberry.types.graphql import OperationType
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.http.ides import get_graphql_ide_html

from gateway.api.context import Context
from gateway.app import Gateway
from gateway.workspaces import authenticate

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
MAX_BODY = 1_000_000  # bytes; a GraphQL document is far smaller


class _Reject(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        self.status, self.message, self.headers = status, message, headers or {}


def _negotiate(accept: str | None) -> str:
    """The response media type for an Accept header, or raise 406."""
    if accept is None or not accept.strip():
        return GRAPHQL_RESPONSE
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
    raise _Reject(406, f"cannot answer with any of: {accept}; accept {GRAPHQL_RESPONSE} or {JSON}")


def _response(payload: dict[str, Any], status: int, media: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(payload, status_code=status, media_type=f"{media}; charset=utf-8", headers=headers)


def _error_payload(message: str) -> dict[str, Any]:
    return {"errors": [{"message": message}]}


def _params_from_get(request: Request) -> dict[str, Any]:
    params: dict[str, Any] = {"query": request.query_params.get("query")}
    if "operationName" in request.query_params:
        params["operationName"] = request.query_params["operationName"]
    if "variables" in request.query_params:
        try:
            params["variables"] = json.loads(request.query_params["variables"])
        except ValueError:
            raise _Reject(400, "`variables` is not valid JSON") from None
    return params


async def _params_from_post(request: Request) -> dict[str, Any]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != JSON:
        raise _Reject(415, f"POST bodies must be {JSON}")
    body = await request.body()
    if len(body) > MAX_BODY:
        raise _Reject(413, f"request bodies are limited to {MAX_BODY} bytes")
    try:
        params = json.loads(body)
    except ValueError:
        raise _Reject(400, "the request body is not valid JSON") from None
    if not isinstance(params, dict):
        raise _Reject(400, "the request body must be a JSON object")
    return params


def _check_params(params: dict[str, Any]) -> tuple[str, dict[str, Any] | None, str | None]:
    query, variables, operation = params.get("query"), params.get("variables"), params.get("operationName")
    if not isinstance(query, str) or not query.strip():
        raise _Reject(400, "`query` must be a non-empty string")
    if variables is not None and not isinstance(variables, dict):
        raise _Reject(400, "`variables` must be an object")
    if operation is not None and not isinstance(operation, str):
        raise _Reject(400, "`operationName` must be a string")
    return query, variables, operation


def _bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


class GraphQLEndpoint:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    async def handle(self, request: Request) -> Response:
        wants_html = "text/html" in request.headers.get("accept", "")
        if request.method == "GET" and wants_html and "query" not in request.query_params:
            if not self.gateway.settings.graphiql:
                return Response("GraphiQL is disabled", status_code=404)
            return HTMLResponse(get_graphql_ide_html(graphql_ide="graphiql"))
        try:
            media = _negotiate(request.headers.get("accept"))
        except _Reject as reject:
            return _response(_error_payload(reject.message), reject.status, JSON)
        try:
            if request.method == "GET":
                params = _params_from_get(request)
            else:
                params = await _params_from_post(request)
            query, variables, operation = _check_params(params)
        except _Reject as reject:
            status = reject.status if (media == GRAPHQL_RESPONSE or reject.status != 400) else 400
            return _response(_error_payload(reject.message), status, media, reject.headers)
        token = _bearer_token(request)
        allowed = ({OperationType.QUERY} if request.method == "GET"
                   else {OperationType.QUERY, OperationType.MUTATION})
        return await anyio.to_thread.run_sync(self._execute, query, variables, operation, token, allowed, media)

    def _execute(self, query: str, variables: dict[str, Any] | None, operation: str | None,
                 token: str | None, allowed: set[OperationType], media: str) -> Response:
        context = Context(gateway=self.gateway, now=self.gateway.clock(), credentials_given=token is not None)
        try:
            if token:
                context.workspace_id = authenticate(context.session, token)
            result = self.gateway.schema.execute_sync(
                query, variable_values=variables, context_value=context, operation_name=operation,
                allowed_operation_types=allowed)
        except InvalidOperationTypeError:
            return _response(_error_payload("mutations must be sent with POST"), 405, media, {"Allow": "POST"})
        finally:
            context.close()
        payload: dict[str, Any] = {}
        if result.errors:
            payload["errors"] = [error.formatted for error in result.errors]
        # Errors without a path happened before execution: the request was not executed.
        executed = result.data is not None or not result.errors or any(err.path for err in result.errors)
        if executed:
            payload["data"] = result.data
        if result.extensions:
            payload["extensions"] = result.extensions
        status = 200 if executed or media == JSON else 400
        return _response(payload, status, media)


def create_app(gateway: Gateway) -> Starlette:
    endpoint = GraphQLEndpoint(gateway)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    app = Starlette(routes=[
        Route("/graphql", endpoint.handle, methods=["GET", "POST"]),
        Route("/health", health, methods=["GET"]),
    ])
    app.state.gateway = gateway
    return app
