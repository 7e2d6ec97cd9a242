"""GraphQL subscriptions over WebSocket (graphql-transport-ws) at ``/graphql``.

* Authentication: the workspace API key in ``connection_init``'s payload, as
  ``{"authorization": "Bearer <key>"}`` or ``{"apiKey": "<key>"}``. A missing or wrong
  key, or one without the ``live`` scope, closes the socket with 4403 Forbidden;
  ``connection_ack`` carries the workspace id.
* The key is checked again on every ``subscribe`` message (still active, and its scopes as
  stored now: ``gateway.api.scopes``), and every :data:`KEY_CHECK_INTERVAL` seconds while the
  socket is open, in one query for all the server's sockets: a revoked key's sockets close
  with 4403 within that interval, on every replica, and a socket whose key was revoked never
  starts another stream.
* ``events(types, afterSequence)`` streams the caller's workspace's events;
  ``planChanged(afterSequence)`` only the plan changes (applied, scheduled, cancelled).
* Resumable: with ``afterSequence`` (the last sequence the client saw) the stream first
  replays every event after it from the outbox, in order, then continues live, with no
  gap and no duplicate. Without it the stream starts after the latest event.
* Only subscriptions run over the socket; queries and mutations go over HTTP.

Each stream tracks the last sequence it sent and, whenever the notifier says its
workspace may have new events (or every ``poll_interval`` seconds regardless), takes the
outbox's events past it from a read in a worker thread with a short-lived session, shared by
the workspace's streams (:class:`_SharedReads`). The outbox is the source of truth: the
wake-ups carry no data.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any, ClassVar, cast

import anyio.to_thread
import strawberry
from graphql import GraphQLError, GraphQLFormattedError
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.scalars import JSON
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.subscriptions.protocols.graphql_transport_ws.types import ErrorMessage, SubscribeMessage
from strawberry.types.execution import PreExecutionError
from strawberry.types.graphql import OperationType

from gateway.api import encoding, limits, scopes, throttle, trusted
from gateway.api.context import ApiDeps
from gateway.events import catalog as ev
from gateway.plugin_api.events import Event as EventValue
from gateway.services import event_feed
from gateway.services.keys import Scope, WorkspaceCaller
from gateway.storage import faults

logger = logging.getLogger("gateway.auth")

BATCH = 500  # events read from the outbox at a time
KEY_CHECK_INTERVAL = 2.0  # seconds between checks that open sockets' keys are still active
REVOKED = 4403  # the close code of a socket whose key is wrong, revoked or lacks `live`
RATE_LIMITED = 4429  # ... of a socket opened over a rate limit (graphql-transport-ws uses it too)
TRY_AGAIN_LATER = 1013  # ... of a socket whose key could not be checked: the database is down


@dataclass
class SubscriptionContext:
    """What subscription resolvers receive: set up by ``connection_init``."""

    gateway: ApiDeps
    workspace_id: str | None = None
    key_id: str | None = None  # the API key the socket signed in with
    scopes: frozenset[Scope] = frozenset()  # its scopes, as read at the latest subscribe
    connection_params: dict[str, Any] = field(default_factory=dict)
    address: str = "unknown"  # the client's, for the rate limits (gateway.api.throttle)


Info = strawberry.Info[SubscriptionContext, None]


@strawberry.type(
    description="A committed billing event of the caller's workspace. Payloads per type and "
    "version: docs/events.md."
)
class Event:
    id: strawberry.ID = strawberry.field(description="Unique; use it to drop a duplicate delivery.")
    type: str = strawberry.field(description="e.g. plan_change.applied, checkout.completed.")
    workspace_id: strawberry.ID = strawberry.field(description="The workspace the event belongs to.")
    sequence: int = strawberry.field(
        description="1, 2, 3, ... per workspace, without gaps, in commit order. "
        "Pass the last one seen as afterSequence to resume."
    )
    occurred_at: datetime = strawberry.field(description="When it was committed (UTC).")
    version: int = strawberry.field(description="Version of this type's payload.")
    payload: JSON = strawberry.field(
        description="The event's data, as the webhook body's `data`: its fields per type and version are in "
        "docs/events.md."
    )

    @classmethod
    def of(cls, event: EventValue) -> Event:
        return cls(
            id=strawberry.ID(event.id),
            type=event.type,
            workspace_id=strawberry.ID(event.workspace_id),
            sequence=event.sequence,
            occurred_at=event.occurred_at,
            version=event.version,
            payload=JSON(dict(event.payload)),
        )


@strawberry.type(
    description="Live events over WebSocket (graphql-transport-ws); send the workspace's API key in "
    "connection_init's payload, as authorization (Bearer) or apiKey."
)
class Subscription:
    @strawberry.subscription(
        description="The workspace's events, optionally only some types. With "
        "afterSequence: first every event after it, then live ones."
    )
    async def events(
        self,
        info: Info,
        types: Annotated[
            list[str] | None,
            strawberry.argument(
                description="Only events of these types (see `webhookEventTypes`; an unknown or an empty list "
                "is a request error); null: every type."
            ),
        ] = None,
        after_sequence: Annotated[
            int | None,
            strawberry.argument(
                description="The last `sequence` seen: first every matching event after it is sent, then live "
                "ones; null: live ones only."
            ),
        ] = None,
    ) -> AsyncGenerator[Event, None]:
        if types is not None:
            if not types:
                raise GraphQLError("`types` must name at least one event type; leave it out for all")
            if unknown := sorted(set(types) - ev.EVENT_TYPES):
                raise GraphQLError(
                    f"unknown event types: {', '.join(map(repr, unknown))}; known: "
                    f"{', '.join(sorted(ev.EVENT_TYPES))}"
                )
        async for event in _stream(info, frozenset(types) if types is not None else None, after_sequence):
            yield event

    @strawberry.subscription(
        description="Plan changes of the workspace: applied, scheduled and cancelled. "
        "With afterSequence: first every one after it, then live ones."
    )
    async def plan_changed(
        self,
        info: Info,
        after_sequence: Annotated[
            int | None,
            strawberry.argument(
                description="The last `sequence` seen: first every matching event after it is sent, then live "
                "ones; null: live ones only."
            ),
        ] = None,
    ) -> AsyncGenerator[Event, None]:
        async for event in _stream(info, ev.PLAN_CHANGE_TYPES, after_sequence):
            yield event


async def _stream(info: Info, types: frozenset[str] | None, after: int | None) -> AsyncGenerator[Event, None]:
    context = info.context
    gateway, workspace_id = context.gateway, context.workspace_id
    if workspace_id is None:  # connection_init authenticates before any subscribe: a safety net
        raise GraphQLError("send the workspace API key in connection_init first")
    if (scope := scopes.missing_scope(context.scopes, "Subscription", info.field_name)) is not None:
        raise scopes.subscription_refused(scope, info.field_name)
    if after is not None and after < 0:
        raise GraphQLError("afterSequence must not be negative")
    notifier = gateway.notifier
    # The listener before reading: nothing committed from now on is missed.
    with notifier.listen(workspace_id) as wake, _SharedReads.of(gateway, workspace_id) as reads:
        latest = await anyio.to_thread.run_sync(event_feed.last_sequence, gateway, workspace_id)
        if after is not None and after > latest:
            raise GraphQLError(f"afterSequence {after} is ahead of the workspace's latest event, {latest}")
        last = latest if after is None else after
        while True:
            wake.clear()
            # Every commit whose wake-up came before this line is seen by any read that starts
            # after it: this stream takes the events of such a read, its own or another's.
            since = reads.started
            batch, complete = await reads.after(last, since)
            for event in batch:
                last = event.sequence
                if types is None or event.type in types:
                    yield Event.of(event)
            if complete:
                await wake.wait(notifier.poll_interval)


@dataclass
class _Read:
    number: int  # reads of the feed are numbered in the order they started
    after: int
    events: list[EventValue]
    complete: bool  # fewer than BATCH: no more events existed when the read started


class _SharedReads:
    """The outbox reads of one workspace's streams on one event loop, shared.

    A commit wakes every stream of its workspace at once; each used to read the outbox itself
    (200 subscribers: 200 reads in worker threads, which the request that made the commit and
    the next requests queued behind). Here the reads are serialised by a lock and numbered;
    a stream woken before read *n* started may take read *n*'s events (all types; it filters
    its own), so one commit costs one or two reads whatever the number of streams. A stream
    behind the last read (a replay from far back) reads for itself, and its read serves the
    others as well.
    """

    _feeds: ClassVar[dict[tuple[int, asyncio.AbstractEventLoop, str], _SharedReads]] = {}

    def __init__(
        self, gateway: ApiDeps, workspace_id: str, key: tuple[int, asyncio.AbstractEventLoop, str]
    ) -> None:
        self.gateway, self.workspace_id, self._key = gateway, workspace_id, key
        self.started = 0  # reads started so far
        self.users = 0
        self._lock = asyncio.Lock()
        self._last: _Read | None = None

    @classmethod
    def of(cls, gateway: ApiDeps, workspace_id: str) -> _SharedReads:
        key = (id(gateway), asyncio.get_running_loop(), workspace_id)
        feed = cls._feeds.get(key)
        if feed is None or feed.gateway is not gateway:
            feed = cls._feeds[key] = cls(gateway, workspace_id, key)
        return feed

    def __enter__(self) -> _SharedReads:
        self.users += 1
        return self

    def __exit__(self, *exc: object) -> None:
        self.users -= 1
        if self.users == 0 and self._feeds.get(self._key) is self:
            del self._feeds[self._key]

    async def after(self, sequence: int, since: int) -> tuple[list[EventValue], bool]:
        """The events after ``sequence`` (up to BATCH) from a read numbered above ``since``,
        and whether the read found no more than those."""
        async with self._lock:
            read = self._last
            if read is None or read.number <= since or read.after > sequence:
                self.started += 1
                number = self.started
                events = await anyio.to_thread.run_sync(
                    event_feed.events_after, self.gateway, self.workspace_id, sequence, BATCH
                )
                read = self._last = _Read(number, sequence, events, len(events) < BATCH)
        return [event for event in read.events if event.sequence > sequence], read.complete


# ------------------------------------------------------------------ transport


def _api_key(params: dict[str, Any]) -> str | None:
    """The key from ``{"authorization": "Bearer <key>"}`` (any case) or ``{"apiKey": "<key>"}``."""
    for name, value in params.items():
        if name.lower() == "authorization" and isinstance(value, str):
            scheme, _, token = value.strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    key = params.get("apiKey")
    return key.strip() if isinstance(key, str) and key.strip() else None


class _SubscriptionsOnly:
    """The schema as the socket sees it: subscriptions run; a query or mutation gets an error.

    Every subscribe's document is checked against the document limits and validated in a
    worker thread first (:func:`gateway.api.limits.prepare`): a refused document is answered
    with an ``error`` message, and an accepted one finds its parse and validation cached, so
    the event loop, shared by every socket and request, never does that work.
    """

    def __init__(self, schema: strawberry.Schema) -> None:
        self._schema = schema

    def __getattr__(self, name: str) -> Any:
        return getattr(self._schema, name)

    async def stream(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        operation_extensions: dict[str, Any] | None = None,
        allowed_operation_types: Any = None,
    ) -> Any:
        refusal = await anyio.to_thread.run_sync(limits.prepare, query or "", self._schema._schema)
        if refusal is not None:
            return _refused(refusal)
        stream = getattr(self._schema, "stream_masked", self._schema.stream)  # the gateway's schema has it
        return await stream(
            query,
            variable_values=variable_values,
            context_value=context_value,
            root_value=root_value,
            operation_name=operation_name,
            operation_extensions=operation_extensions,
            allowed_operation_types=(OperationType.SUBSCRIPTION,),
        )


class _KeyCheckingHandler(BaseGraphQLTransportWSHandler[SubscriptionContext, None]):
    """graphql-transport-ws, with the socket's key checked on every ``subscribe`` and
    watched (by the server's :class:`_RevocationWatch`) while the socket is open."""

    @property
    def server(self) -> SubscriptionServer:
        assert isinstance(self.view, SubscriptionServer), "only the subscription server uses this handler"
        return self.view

    async def handle(self) -> None:
        self.server.revocations.add(self)
        try:
            await super().handle()
        finally:
            self.server.revocations.discard(self)

    async def handle_connection_init(self, message: Any) -> None:
        """connection_init, with two more ways to end it than strawberry's 4403: over a rate
        limit (4429, the reason says when to retry) and with the database down (1013, try
        again later), instead of a dropped socket."""
        try:
            await super().handle_connection_init(message)
        except throttle.RateLimited as limited:
            await self._close(RATE_LIMITED, f"rate limited: retry after {limited.refusal.retry_after} s")
        except Exception as error:
            if not faults.unavailable(error):
                raise
            logger.warning("socket closed: the database is unavailable (%s)", faults.describe(error))
            await self._close(TRY_AGAIN_LATER, "database unavailable; try again shortly")

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        key_id = self.context.key_id
        if self.connection_acknowledged and key_id is not None:
            gateway = self.server.gateway
            refused: GraphQLFormattedError | None = None
            try:
                now = await anyio.to_thread.run_sync(self._admit_subscribe, gateway, key_id)
            except throttle.RateLimited as limited:
                refused = limited.error()
            except Exception as error:
                if not faults.unavailable(error):
                    raise
                logger.warning("subscribe refused: the database is unavailable (%s)", faults.describe(error))
                refused = {"message": faults.MESSAGE, "extensions": {"code": faults.DATABASE_UNAVAILABLE}}
            if refused is not None:
                await self.send_message(ErrorMessage(id=message["id"], type="error", payload=[refused]))
                return
            if now is None:  # revoked since connection_init: no stream, no replay
                await self.close_revoked()
                return
            self.context.scopes = now
        payload: Any = message["payload"]
        if isinstance(payload, dict) and trusted.requested_id(payload) is not None:
            try:  # a trusted document named by its id (gateway.api.trusted), as over HTTP
                message["payload"] = cast(Any, trusted.resolve(payload))
            except trusted.DocumentIdError as wrong:
                unknown: GraphQLFormattedError = {"message": str(wrong), "extensions": {"code": wrong.code}}
                await self.send_message(ErrorMessage(id=message["id"], type="error", payload=[unknown]))
                return
        await super().handle_subscribe(message)

    def _admit_subscribe(self, gateway: ApiDeps, key_id: str) -> frozenset[Scope] | None:
        """The key's scopes now (None: revoked), the subscribe counted against the key first."""
        throttle.admit_key(gateway.rate_limiter, self.context.address, f"key:{key_id}")
        return event_feed.scopes_now(gateway, key_id)

    async def _close(self, code: int, reason: str) -> None:
        with suppress(Exception):  # the client may be gone already
            await self.websocket.close(code=code, reason=reason)

    async def close_revoked(self) -> None:
        logger.warning("socket closed: its API key was revoked (workspace %s)", self.context.workspace_id)
        with suppress(Exception):  # the client may be gone already
            await self.websocket.close(code=REVOKED, reason="API key revoked")


class _RevocationWatch:
    """Every ``interval`` seconds while sockets are open, one query for which of their keys
    were revoked (or went with their workspace); those sockets close with 4403. The database
    is the source of truth, so a key revoked through any path, on any replica, is seen."""

    def __init__(self, gateway: ApiDeps, interval: float) -> None:
        self.gateway = gateway
        self.interval = interval
        self._sockets: set[_KeyCheckingHandler] = set()
        self._task: asyncio.Task[None] | None = None

    def add(self, socket: _KeyCheckingHandler) -> None:
        self._sockets.add(socket)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())

    def discard(self, socket: _KeyCheckingHandler) -> None:
        self._sockets.discard(socket)

    async def _run(self) -> None:
        while self._sockets:  # ends with the last socket; add() starts another
            await asyncio.sleep(self.interval)
            signed_in = {s: s.context.key_id for s in self._sockets if s.context.key_id is not None}
            if not signed_in:
                continue
            try:
                revoked = await anyio.to_thread.run_sync(
                    event_feed.revoked_keys, self.gateway, set(signed_in.values())
                )
            except Exception:  # an outage: keep the sockets, check again next time
                logger.warning("could not check open sockets' API keys", exc_info=True)
                continue
            for socket, key_id in signed_in.items():
                if key_id in revoked:
                    await socket.close_revoked()


async def _refused(error: GraphQLError) -> AsyncIterator[PreExecutionError]:
    yield PreExecutionError(data=None, errors=[error])


class SubscriptionServer(GraphQL):
    """The ASGI app behind ``WebSocketRoute("/graphql")``: graphql-transport-ws only."""

    graphql_transport_ws_handler_class = _KeyCheckingHandler  # type: ignore[assignment]  # its context type

    def __init__(
        self, gateway: ApiDeps, schema: strawberry.Schema, key_check_interval: float = KEY_CHECK_INTERVAL
    ) -> None:
        # Pages on any origin may connect: the credential is the key a page sends in
        # connection_init, never a cookie the browser adds by itself, so another site's page
        # gains nothing by opening a socket.
        super().__init__(
            _SubscriptionsOnly(schema),  # type: ignore[arg-type]  # a stand-in: it forwards to the schema
            graphql_ide=None,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            allowed_origins=("*",),
            connection_init_wait_timeout=timedelta(seconds=10),
        )
        self.gateway = gateway
        self.revocations = _RevocationWatch(gateway, key_check_interval)

    def encode_json(self, data: object) -> str:
        """Each message sent, by orjson (:func:`gateway.api.encoding.dumps`: with 200
        subscribers every event is encoded 200 times); the standard library for what it refuses,
        as before."""
        try:
            return encoding.dumps(data).decode()
        except TypeError:
            return super().encode_json(data)  # type: ignore[return-value]

    async def get_context(self, request: Any, response: Any) -> SubscriptionContext:  # type: ignore[override]
        return SubscriptionContext(gateway=self.gateway, address=throttle.address_of(request.scope))

    async def on_ws_connect(  # type: ignore[override]
        self, context: SubscriptionContext
    ) -> dict[str, object]:
        key = _api_key(context.connection_params or {})
        caller = await anyio.to_thread.run_sync(self._sign_in, context.address, key)
        if caller is None:
            raise ConnectionRejectionError({"message": "a valid workspace API key is required"})
        if Scope.LIVE not in caller.scopes:
            logger.warning(
                "socket refused: the API key lacks the live scope (workspace %s)", caller.workspace_id
            )
            raise ConnectionRejectionError({"message": "the API key lacks the live scope"})
        context.workspace_id, context.key_id, context.scopes = (
            caller.workspace_id,
            caller.key_id,
            caller.scopes,
        )
        return {"workspaceId": caller.workspace_id}

    def _sign_in(self, address: str, key: str | None) -> WorkspaceCaller | None:
        """The key's caller, counted like an HTTP request's sign-in (gateway.api.throttle);
        raises RateLimited."""
        limiter = self.gateway.rate_limiter
        throttle.admit_address(limiter, address, signing_in=key is not None)
        if key is None:
            return None
        caller = event_feed.caller_of_key(self.gateway, key)
        throttle.signed_in(limiter, address, caller)
        return caller
