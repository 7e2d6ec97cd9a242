"""Prometheus metrics: ``GET /metrics`` in the text exposition format.

Each app has a registry of its own (not prometheus-client's global one), so several gateways in
one process (the tests) never share counts. Requests only bump counters in memory; what needs
the database (the delivery backlog) and the connection pool's state are read when Prometheus
scrapes, in a worker thread.

=========================================================  =====================================
``billing_gateway_graphql_requests_total{operation,outcome}``  one per root field run: operation
                                                           is its schema name (``other`` for a
                                                           request that names none), outcome
                                                           ``ok``, ``user_error`` (a typed error
                                                           answered) or ``error`` (a GraphQL error)
``billing_gateway_graphql_request_duration_seconds{operation}``  the request's time, per root field
``billing_gateway_checkouts_total{outcome}``                  the checkout answer's type
``billing_gateway_payment_failures_total{purpose}``           declined payments: checkout, top_up,
                                                           invoice, confirmation, renewal
``billing_gateway_delivery_failures_total{outcome}``          failed webhook and listener attempts:
                                                           ``retrying`` or ``failed`` (given up)
``billing_gateway_delivery_backlog``                          deliveries pending (due or waiting to
                                                           be retried), counted at scrape time
``billing_gateway_db_pool_connections{state}``                ``checked_out``, ``idle``,
                                                           ``overflow``; and ``..._size``
``billing_gateway_workspace_cache_lookups_total{result}``     the Order Preview's rows: ``hit`` or
                                                           ``miss``; and ``..._entries`` kept
=========================================================  =====================================
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import anyio.to_thread
from graphql import FieldNode, GraphQLError, OperationDefinitionNode, parse
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.api.context import RootAnswer
from gateway.core.statuses import DeliveryStatus
from gateway.events.delivery import DeliveryCounts
from gateway.services.renewal import RenewalResult, RenewalStatus
from gateway.storage import faults
from gateway.storage.db import Delivery
from gateway.storage.workspace_cache import WorkspaceCache

logger = logging.getLogger("gateway.metrics")  # logger names are stable: operators filter on them

OTHER = "other"
# The answers that mean a payment was refused, and the purpose label of each paying root field.
DECLINES = frozenset({"PaymentDeclined", "InsufficientBalance"})
PAYING_FIELDS = {
    "checkout": "checkout",
    "topUpBalance": "top_up",
    "payInvoice": "invoice",
    "confirmPayment": "confirmation",
}
# Seconds: an Order Preview answers in milliseconds, a checkout waits for its payment method.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
MAX_TOKENS = 5000  # as the schema's limit: a document that did not run is parsed at most this far


class Metrics:
    """The gateway's metrics, in a registry of its own."""

    def __init__(
        self,
        engine: Engine,
        sessions: sessionmaker[Session],
        root_fields: Iterable[str],
        *,
        workspace_cache: WorkspaceCache | None = None,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.root_fields = frozenset(root_fields)
        self.requests = Counter(
            "billing_gateway_graphql_requests",
            "GraphQL root fields run, by schema field name and outcome (ok, user_error, error).",
            ["operation", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "billing_gateway_graphql_request_duration_seconds",
            "Time to answer a GraphQL request, by root field.",
            ["operation"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.rate_limited_requests = Counter(
            "billing_gateway_rate_limited",
            "Requests and subscribe messages refused by a rate limit (429), by rule.",
            ["rule"],
            registry=self.registry,
        )
        self.checkouts = Counter(
            "billing_gateway_checkouts",
            "Checkouts answered, by the answer's type (CheckoutSuccess, PaymentDeclined, ...).",
            ["outcome"],
            registry=self.registry,
        )
        self.payment_failures = Counter(
            "billing_gateway_payment_failures",
            "Payments refused by their method (declined, insufficient balance), by purpose.",
            ["purpose"],
            registry=self.registry,
        )
        self.delivery_failures = Counter(
            "billing_gateway_delivery_failures",
            "Failed webhook and event-listener delivery attempts: retrying, or failed (given up).",
            ["outcome"],
            registry=self.registry,
        )
        self.registry.register(_StateCollector(engine, sessions, workspace_cache))
        # By (field, outcome) and field: bounded by the schema's root fields (others are OTHER).
        self._counters: dict[tuple[str, str], Any] = {}
        self._timers: dict[str, Any] = {}

    # ------------------------------------------------------------------ recording

    def graphql(
        self,
        answers: Mapping[str, RootAnswer],
        errors: Sequence[GraphQLError],
        seconds: float,
        *,
        query: str,
        operation_name: str | None,
        completed: bool,
    ) -> None:
        """Count one GraphQL request: each root field it ran (``answers``), or, when none ran,
        the root fields its document names (``query``), as ok when it ``completed`` without
        errors (introspection), else as errors."""
        failed = {str(error.path[0]) for error in errors if error.path}
        outcomes: list[tuple[str, str, RootAnswer | None]]
        if answers:
            outcomes = [  # __typename and introspection are not operations of ours
                (key, answer.field if answer.field in self.root_fields else OTHER, answer)
                for key, answer in answers.items()
            ]
        else:
            outcomes = [(field, field, None) for field in self._named_fields(query, operation_name)]
        for key, field, answer in outcomes:
            if answer is None:
                outcome = "ok" if completed else "error"
            elif answer.raised or key in failed:
                outcome = "error"
            else:
                outcome = "user_error" if answer.user_error else "ok"
            counter = self._counters.get((field, outcome))
            if counter is None:  # the labels' children, kept: labels() costs more than inc()
                counter = self._counters[field, outcome] = self.requests.labels(field, outcome)
            counter.inc()
            timer = self._timers.get(field)
            if timer is None:
                timer = self._timers[field] = self.latency.labels(field)
            timer.observe(seconds)
            if answer is not None and field in PAYING_FIELDS:
                self._payment(field, answer.type_name if outcome != "error" else None)

    def _payment(self, field: str, type_name: str | None) -> None:
        if field == "checkout":
            self.checkouts.labels(type_name or "error").inc()
        if type_name in DECLINES:
            self.payment_failures.labels(PAYING_FIELDS[field]).inc()

    def _named_fields(self, query: str, operation_name: str | None) -> list[str]:
        """The root fields a document that did not run asks for; unknown names count as other."""
        try:
            document = parse(query, no_location=True, max_tokens=MAX_TOKENS)
        except (GraphQLError, RecursionError):
            return [OTHER]
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        chosen = [
            o for o in operations if operation_name is None or (o.name and o.name.value == operation_name)
        ]
        if len(chosen) != 1:
            return [OTHER]
        names = [s.name.value for s in chosen[0].selection_set.selections if isinstance(s, FieldNode)]
        return [name if name in self.root_fields else OTHER for name in names] or [OTHER]

    def renewals(self, results: Iterable[RenewalResult]) -> None:
        for result in results:
            if result.status is RenewalStatus.PAYMENT_FAILED:
                self.payment_failures.labels("renewal").inc()

    def rate_limited(self, rule: str) -> None:
        self.rate_limited_requests.labels(rule).inc()

    def deliveries(self, counts: DeliveryCounts) -> None:
        if counts.retrying:
            self.delivery_failures.labels("retrying").inc(counts.retrying)
        if counts.failed:
            self.delivery_failures.labels("failed").inc(counts.failed)

    # ------------------------------------------------------------------ the endpoint

    async def endpoint(self, request: Request, token: str | None) -> Response:
        if token is not None and not _authorized(request, token):
            return JSONResponse(
                {"error": "send the metrics token: `Authorization: Bearer <token>`"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        body = await anyio.to_thread.run_sync(encoder, self.registry)  # the collectors read the database
        return Response(body, media_type=content_type)


def _authorized(request: Request, token: str) -> bool:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


class _StateCollector(Collector):
    """Read at scrape time: the connection pool (no query) and the delivery backlog (one COUNT
    on the ``ix_deliveries_due`` index). A database that cannot answer leaves the backlog out of
    that scrape rather than failing it."""

    def __init__(
        self, engine: Engine, sessions: sessionmaker[Session], workspace_cache: WorkspaceCache | None
    ) -> None:
        self.engine, self.sessions, self.workspace_cache = engine, sessions, workspace_cache

    def describe(self) -> list[Metric]:
        return []  # not known before collecting; no query when the registry is built

    def collect(self) -> Iterator[Metric]:
        yield from _pool(self.engine.pool)
        if self.workspace_cache is not None:
            yield from _workspace_cache(self.workspace_cache)
        started = time.perf_counter()
        try:
            with self.sessions() as session:
                pending = session.scalar(
                    select(func.count())
                    .select_from(Delivery)
                    .where(Delivery.status == DeliveryStatus.PENDING.value)
                )
        except Exception as error:
            if not faults.unavailable(error):
                raise
            logger.warning("metrics: delivery backlog not counted: %s", faults.describe(error))
            return
        yield GaugeMetricFamily(
            "billing_gateway_delivery_backlog",
            "Webhook and event-listener deliveries pending: due, or waiting to be retried.",
            value=pending or 0,
        )
        logger.debug("metrics: backlog counted in %.1f ms", (time.perf_counter() - started) * 1000)


def _workspace_cache(cache: WorkspaceCache) -> Iterator[Metric]:
    """How often quotes found the workspace's rows kept (gateway.storage.workspace_cache)."""
    lookups = CounterMetricFamily(
        "billing_gateway_workspace_cache_lookups",
        "Lookups of a workspace's rows kept between writes, by result: hit, or miss (read from the database).",
        labels=["result"],
    )
    lookups.add_metric(["hit"], cache.hits)
    lookups.add_metric(["miss"], cache.misses)
    yield lookups
    yield GaugeMetricFamily(
        "billing_gateway_workspace_cache_entries", "Workspaces whose rows are kept now.", value=len(cache)
    )


def _pool(pool: Any) -> Iterator[Metric]:
    """The pool's connections; pools without a queue (SQLite in memory) have none to show."""
    if not all(hasattr(pool, name) for name in ("size", "checkedout", "checkedin", "overflow")):
        return
    connections = GaugeMetricFamily(
        "billing_gateway_db_pool_connections",
        "Database connections of this process: checked_out (in use), idle, overflow (beyond the size).",
        labels=["state"],
    )
    connections.add_metric(["checked_out"], pool.checkedout())
    connections.add_metric(["idle"], pool.checkedin())
    connections.add_metric(["overflow"], max(pool.overflow(), 0))
    yield connections
    yield GaugeMetricFamily("billing_gateway_db_pool_size", "The pool's configured size.", value=pool.size())
