"""The operator's view of a running gateway: request ids, logs, probes and error answers.

* :class:`RequestContext` gives every HTTP request and WebSocket connection a request id (the
  caller's ``X-Request-Id`` when it is a safe token, else a new one), answers it in the
  ``X-Request-Id`` header and puts it, with the client's address, on every log record emitted
  while handling it (:func:`install_record_context`; context variables follow the work into
  worker threads).
* :func:`configure_logging` sets up the process's logs: ``text`` lines or ``json`` objects, one
  per line, uvicorn's loggers included; :class:`WebSocketRedaction` keeps what WebSocket clients
  send (a key in the URL, credential headers, frames) out of uvicorn's and websockets' lines.
* :class:`ErrorResponses` is the last line of defence: an exception that escapes a route is
  answered as JSON (503 with ``Retry-After`` when the database cannot be reached, else 500),
  never as a plain-text 500, and logged with the request id.
* :class:`Probes` serves ``/livez`` (the process answers), ``/readyz`` (the database answers
  within :data:`READY_TIMEOUT` seconds and its schema is at the code's migration head) and
  ``/health`` (the same verdict as ``/readyz``, in its historical ``{"status": "ok"}`` shape).
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import anyio
import anyio.to_thread
import strawberry
from sqlalchemy import text
from sqlalchemy.engine import Engine
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from websockets.frames import Frame

from gateway.server.app import Gateway
from gateway.server.metrics import Metrics
from gateway.storage import faults
from gateway.storage.db import current_revisions, head_revisions

logger = logging.getLogger("gateway.http")  # logger names are stable: operators filter on them

# ------------------------------------------------------------------ request ids

REQUEST_ID_HEADER = "x-request-id"
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")  # nothing that could forge a log line

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
_client: contextvars.ContextVar[str | None] = contextvars.ContextVar("client", default=None)


def current_request_id() -> str | None:
    """The id of the request being handled (None outside a request, in background tasks)."""
    return _request_id.get()


def _incoming_request_id(scope: dict[str, Any]) -> str | None:
    for name, value in scope.get("headers") or ():
        if name == REQUEST_ID_HEADER.encode():
            candidate = value.decode("latin-1")
            return candidate if _SAFE_REQUEST_ID.fullmatch(candidate) else None
    return None


class RequestContext:
    """Pure ASGI middleware (no BaseHTTPMiddleware: context variables set here must reach the
    endpoint and its worker threads): a request id per HTTP request and WebSocket connection."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        # Generated: 32 hex digits, as uuid4().hex was, in a fifth of its time.
        request_id = _incoming_request_id(scope) or secrets.token_hex(16)
        client = scope.get("client")
        id_token = _request_id.set(request_id)
        client_token = _client.set(client[0] if client else None)
        header = (REQUEST_ID_HEADER.encode(), request_id.encode())
        start = "http.response.start" if scope["type"] == "http" else "websocket.accept"

        async def send_with_id(message: Any) -> None:
            if message["type"] == start:
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            _request_id.reset(id_token)
            _client.reset(client_token)


# ------------------------------------------------------------------ logs


def install_record_context() -> None:
    """Give every log record of the process ``request_id`` and ``client`` (None outside a
    request). A record factory rather than a handler's filter: it reaches every handler, the
    test suite's and an operator's own logging configuration included. Idempotent."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "adds_request_context", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.request_id = _request_id.get()
        record.client = _client.get()
        return record

    factory.adds_request_context = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


class TextFormatter(logging.Formatter):
    """``2026-12-01T10:00:00.123Z WARNING gateway.auth [<request id> <client>] message``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(context)s %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return _timestamp(record)

    def format(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "request_id", None)
        client = getattr(record, "client", None)
        record.context = f" [{request_id} {client or '-'}]" if request_id else ""
        return super().format(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (ISO 8601, UTC), level, logger, message, request_id,
    client, pid, and the exception's text when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
            "client": getattr(record, "client", None),
            "pid": record.process,  # which worker process (serve --workers)
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def _timestamp(record: logging.LogRecord) -> str:
    return (
        datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


LOG_FORMATS: dict[str, Callable[[], logging.Formatter]] = {"text": TextFormatter, "json": JsonFormatter}


_CREDENTIAL_HEADER = re.compile(r"auth|cookie|key|token|secret", re.IGNORECASE)


class WebSocketRedaction(logging.Filter):
    """uvicorn's and websockets' records about WebSocket connections, without what clients sent.

    Both log through ``uvicorn.error`` and format values they were given: uvicorn its line per
    connection with the whole path (``"WebSocket /graphql?apiKey=..."``: a client may put a key
    there, and the access log never prints query strings either), and websockets, at DEBUG, the
    handshake's request line and headers (``< authorization: Bearer ...``) and every frame with
    its data (``connection_init`` carries the API key, a ``subscribe`` its variables). The gateway
    formats none of these itself, so a filter is the one place to act: it takes query strings out
    of paths, hides the values of credential headers and shows a frame as its type and size.
    Installed on the logger (:func:`install_log_redaction`), it runs before any handler, an
    operator's own included."""

    def filter(self, record: logging.LogRecord) -> bool:
        message, args = record.msg, record.args
        if not isinstance(message, str) or not isinstance(args, tuple):
            return True
        if '"WebSocket %s"' in message or message in ("< %s %s %s", "< GET %s HTTP/1.1"):
            record.args = tuple(_path_only(arg) for arg in args)
        elif (
            message in ("< %s: %s", "> %s: %s") and len(args) == 2 and _CREDENTIAL_HEADER.search(str(args[0]))
        ):
            record.args = (args[0], "[redacted]")
        elif message in ("< %s", "> %s") and len(args) == 1 and isinstance(args[0], Frame):
            frame = args[0]
            record.args = (f"{frame.opcode.name} [{len(frame.data)} bytes]",)
        return True


def _path_only(arg: object) -> object:
    return arg.split("?", 1)[0] if isinstance(arg, str) and arg.startswith("/") else arg


SERVER_LOGGER = "uvicorn.error"  # where uvicorn, and websockets under it, log connections


def install_log_redaction() -> None:
    """Put :class:`WebSocketRedaction` on the server's logger, once."""
    server_logger = logging.getLogger(SERVER_LOGGER)
    if not any(isinstance(existing, WebSocketRedaction) for existing in server_logger.filters):
        server_logger.addFilter(WebSocketRedaction())


def log_handler(log_format: str, stream: Any = None) -> logging.Handler:
    """A handler writing ``log_format`` lines (to stderr by default), with the request context
    and the server's WebSocket lines redacted (also those of loggers configured elsewhere)."""
    install_record_context()
    install_log_redaction()
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(LOG_FORMATS[log_format]())
    handler.addFilter(WebSocketRedaction())
    return handler


def configure_logging(level: str, log_format: str, stream: Any = None) -> logging.Handler:
    """The process's logging: one handler on the root logger; uvicorn's loggers propagate to it
    (run uvicorn with ``log_config=None`` so that it keeps them so)."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    handler = log_handler(log_format, stream)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers = []
        uvicorn_logger.propagate = True
        uvicorn_logger.setLevel(logging.NOTSET)  # the root's level decides, whatever uvicorn set before
    return handler


# ------------------------------------------------------------------ error answers


def unavailable_headers() -> dict[str, str]:
    return {"Retry-After": str(faults.RETRY_AFTER)}


def log_unavailable(error: BaseException, where: str) -> None:
    logger.warning("database unavailable (%s): %s", where, faults.describe(error))


def graphql_unavailable_payload() -> dict[str, Any]:
    return {"errors": [{"message": faults.MESSAGE, "extensions": {"code": faults.DATABASE_UNAVAILABLE}}]}


def database_faulted(payload: dict[str, Any]) -> bool:
    """Whether a GraphQL response carries a DATABASE_UNAVAILABLE error."""
    return any(
        (error.get("extensions") or {}).get("code") == faults.DATABASE_UNAVAILABLE
        for error in payload.get("errors") or ()
    )


class ErrorResponses:
    """Pure ASGI middleware: an exception escaping a route before its answer started is answered
    as JSON instead of Starlette's plain-text 500. A database fault is a 503 with ``Retry-After``
    and one log line; anything else a 500, logged with its traceback. Either way the body says
    the request id to quote, never the internal detail. (After the answer started, the
    connection can only be dropped: logged likewise.)"""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracking(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracking)
        except Exception as error:
            fault = faults.unavailable(error)
            where = f"{scope['method']} {scope['path']}"
            if fault:
                log_unavailable(error, where)
            else:
                logger.exception("unexpected error in %s", where)
            if started:
                raise
            response = _error_response(scope["path"], fault)
            await response(scope, receive, send)


def _error_response(path: str, fault: bool) -> Response:
    """A GraphQL path answers in GraphQL's shape; the others in ``{"error": ...}`` like their 4xx."""
    request_id = _request_id.get()
    if fault:
        status, headers, code, message = (
            503,
            unavailable_headers(),
            faults.DATABASE_UNAVAILABLE,
            faults.MESSAGE,
        )
    else:
        status, headers, code, message = 500, {}, "INTERNAL_ERROR", "Internal error."
    if path == "/graphql":
        body: dict[str, Any] = {
            "errors": [{"message": message, "extensions": {"code": code, "requestId": request_id}}]
        }
    else:
        body = {"error": message, "code": code, "request_id": request_id}
    return JSONResponse(body, status_code=status, headers=headers)


# ------------------------------------------------------------------ probes

READY_TIMEOUT = 2.0  # seconds the database may take to answer a readiness check


class Probes:
    """``/livez``, ``/readyz`` and ``/health``. Readiness runs in a worker thread of its own
    (one at a time: a database that hangs holds one thread, not one per probe) and gives up
    after :data:`READY_TIMEOUT` seconds."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.heads = head_revisions()  # read once: the code does not change while it runs
        self._limiter = anyio.CapacityLimiter(1)

    async def livez(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        ready, checks = await self.check()
        return JSONResponse(
            {"status": "ok" if ready else "unavailable", "checks": checks}, status_code=_ready_status(ready)
        )

    async def health(self, request: Request) -> Response:
        ready, checks = await self.check()
        if ready:
            return JSONResponse({"status": "ok"})
        return JSONResponse({"status": "unavailable", "checks": checks}, status_code=503)

    async def check(self) -> tuple[bool, dict[str, Any]]:
        started = time.perf_counter()
        try:
            with anyio.fail_after(READY_TIMEOUT):
                revisions = await anyio.to_thread.run_sync(
                    self._revisions, limiter=self._limiter, abandon_on_cancel=True
                )
        except TimeoutError:
            logger.warning("readiness: the database did not answer within %gs", READY_TIMEOUT)
            return False, {"database": {"ok": False, "error": f"no answer within {READY_TIMEOUT:g}s"}}
        except Exception as error:
            if not faults.unavailable(error):
                logger.exception("readiness check failed")
            else:
                log_unavailable(error, "readiness")
            return False, {"database": {"ok": False, "error": "unreachable"}}
        database = {"ok": True, "duration_ms": round((time.perf_counter() - started) * 1000, 1)}
        current = revisions == self.heads
        migrations = {"ok": current, "revision": _one(revisions), "expected": _one(self.heads)}
        return current, {"database": database, "migrations": migrations}

    def _revisions(self) -> frozenset[str]:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
            return current_revisions(connection)


def _ready_status(ready: bool) -> int:
    return 200 if ready else 503


def _one(revisions: frozenset[str]) -> str | None:
    return ",".join(sorted(revisions)) or None


# ------------------------------------------------------------------ metrics


def metrics_of(gateway: Gateway, schema: strawberry.Schema) -> Metrics:
    """The app's metrics, labelled with the schema's root field names (Query and Mutation)."""
    graphql_schema = schema._schema  # strawberry's underlying graphql-core schema
    roots = [graphql_schema.query_type, graphql_schema.mutation_type]
    return Metrics(
        gateway.engine,
        gateway.sessions,
        (name for root in roots if root for name in root.fields),
        workspace_cache=gateway.workspace_cache,
    )


def metrics_route(metrics: Metrics, token: str | None) -> Callable[[Request], Awaitable[Response]]:
    """``GET /metrics``: open, or with ``BILLING_GATEWAY_METRICS_TOKEN`` set, for that bearer token."""

    async def serve(request: Request) -> Response:
        return await metrics.endpoint(request, token)

    return serve
