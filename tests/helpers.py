"""Helpers shared by the test modules: one home for what several of them need.

Fixtures stay in conftest.py; this module holds plain functions and constants, imported
by name (``from helpers import snapshot``): pytest puts this folder on ``sys.path``
because conftest.py lives here.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import queue
import re
import shutil
import subprocess
import textwrap
import threading
import time
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import uvicorn
from sqlalchemy import inspect, select, text
from starlette.testclient import TestClient

import billing_gateway_messaging_rates
import billing_gateway_payment_balance
import billing_gateway_payment_card
import billing_gateway_tax_vat
from gateway.api.context import Context
from gateway.core.money import Money
from gateway.events import catalog
from gateway.plugin_api.hookspecs import ENTRY_POINT_GROUP
from gateway.plugin_api.registry import Registry, load_plugins
from gateway.server.http import MAX_WEBSOCKET_MESSAGE, create_app
from gateway.services.keys import ALL_SCOPES
from gateway.storage.db import (
    Base,
    EncryptionKey,
    GatewaySecret,
    Invoice,
    LedgerEntry,
    OutboxEvent,
    Workspace,
)
from gateway.storage.ledger import ledger_sum

T = TypeVar("T")

# ------------------------------------------------------------------ the database


def snapshot(gateway) -> dict[str, list[str]]:
    """Every row of every table in the database, by table name, to prove that an operation
    wrote nothing (``assert snapshot(gateway) == before``).

    The tables come from the database itself, not from the models, so a write to a table
    that no model maps would show too; values are as stored (no type conversion), rows in
    a fixed order.
    """
    with gateway.engine.connect() as connection:
        tables = inspect(connection).get_table_names()
        return {t: sorted(map(repr, connection.execute(text(f'SELECT * FROM "{t}"')).all())) for t in tables}


# Kept from test to test, as in a deployment: the keys the gateway made at its first start-up
# (quote signing, and encryption at rest when no key is configured); every gateway a test builds
# on the database shares them, as replicas do.
KEPT_TABLES = frozenset({GatewaySecret.__tablename__, EncryptionKey.__tablename__})


def empty_tables(connection) -> None:
    """Delete every row the tests write (all but ``KEPT_TABLES``): each test starts from here."""
    for table in reversed(Base.metadata.sorted_tables):
        if table.name not in KEPT_TABLES:
            connection.execute(table.delete())


def rows(gateway, model, member) -> list:
    """The workspace's rows of ``model``, oldest first (events by their sequence)."""
    order = {OutboxEvent: OutboxEvent.sequence, Invoice: Invoice.issued_at}.get(
        model, getattr(model, "created_at", None)
    )
    with gateway.sessions() as session:
        query = select(model).where(model.workspace_id == member.id)
        if order is not None:
            query = query.order_by(order)
        return list(session.scalars(query))


def events(gateway, member) -> list[tuple[int, str, dict]]:
    """The workspace's outbox events as (sequence, type, payload), in sequence order."""
    return [(e.sequence, e.type, e.payload) for e in rows(gateway, OutboxEvent, member)]


def assert_events_as_documented(gateway, member) -> set[str]:
    """Every event the workspace has is as docs/events.md shows it: the fields of its type's
    example (which are the documented ones) with the documented JSON types, at the documented
    version. Returns the types seen, for the caller to say which it expected."""
    seen = set()
    for row in rows(gateway, OutboxEvent, member):
        payload = catalog.PAYLOADS[row.type]
        assert set(row.payload) == set(payload.example.payload), (row.type, row.payload)
        assert catalog.nonconforming(row.type, row.payload) == [], (row.type, row.payload)
        assert row.version == payload.version
        seen.add(row.type)
    return seen


def reconcile(gateway, member) -> int:
    """The balance recomputed from the ledger equals the cached one and no running balance
    went below zero; returns the balance in cents."""
    with gateway.sessions() as session:
        cached = session.get(Workspace, member.id).balance_minor
        assert ledger_sum(session, member.id) == cached
        after = session.scalars(
            select(LedgerEntry.balance_after_minor).where(LedgerEntry.workspace_id == member.id)
        ).all()
        assert all(value >= 0 for value in after)
    return cached


# ------------------------------------------------------------------ money


def member_context(gateway, workspace_id: str) -> Context:
    """The GraphQL context of a request signed in with a workspace key of every scope, for
    executing a document in process (close it after)."""
    return Context(
        gateway=gateway,
        now=gateway.clock(),
        workspace_id=workspace_id,
        scopes=ALL_SCOPES,
        credentials_given=True,
    )


def eur(amount: str) -> Money:
    return Money(amount, "EUR")


def eur_json(amount: str) -> dict:
    """An amount in euros as the API shows it (a ``Money`` object)."""
    return {"amount": amount, "currency": "EUR"}


# ------------------------------------------------------------------ billing details and cards

# Complete billing details: a German consumer, so 19 % VAT.
GERMAN_PERSON = {
    "customerType": "PERSON",
    "name": "Erika Mustermann",
    "addressLine1": "Heidestraße 17",
    "city": "Köln",
    "postalCode": "51147",
    "country": "DE",
    "email": "erika@example.de",
}
# GERMAN_PERSON as an invoice keeps it (the billing details at the time of the invoice).
INVOICED_DETAILS = {
    "customer_type": "person",
    "name": "Erika Mustermann",
    "company_name": None,
    "address_line1": "Heidestraße 17",
    "address_line2": None,
    "city": "Köln",
    "postal_code": "51147",
    "region": None,
    "country": "DE",
    "vat_id": None,
    "email": "erika@example.de",
}

# Test cards of the sandbox card processor (billing_gateway_payment_card.sandbox).
VISA = "4242424242424242"  # succeeds
THREE_DS = "4000002760003184"  # asks for 3-D Secure

UPDATE_BILLING_DETAILS = """mutation($input: UpdateBillingDetailsInput!) { updateBillingDetails(input: $input) {
  __typename ... on BillingDetails { missingFields } ... on UserError { code field message } } }"""


def card(number: str = VISA, month: int = 12, year: int = 2030, cvc: str = "739") -> dict:
    """A ``CardInput``: a card that is valid on the test clock's dates."""
    return {"number": number, "expMonth": month, "expYear": year, "cvc": cvc}


def billing(graphql, member, **details) -> None:
    """Save complete billing details (GERMAN_PERSON, with ``details`` changed) for the workspace."""
    result = graphql(UPDATE_BILLING_DETAILS, {"input": {**GERMAN_PERSON, **details}}, key=member.key)
    assert result["updateBillingDetails"] == {"__typename": "BillingDetails", "missingFields": []}


# ------------------------------------------------------------------ checkout

QUOTE_FOR_CHECKOUT = """mutation($input: QuoteInput!) { quote(input: $input) {
  __typename ... on Quote { kind emailCredits messagingCredits expiresAt dueNow { total { amount } } } } }"""
CHECKOUT_QUOTED = """mutation($input: CheckoutInput!) { checkout(input: $input) {
  __typename ... on UserError { code message } ... on CheckoutSuccess { kind } } }"""


def checkout_by_quote(
    graphql, key: str, plan: str, payment: dict[str, Any], idempotency_key: str, **sliders
) -> str:
    """Quote, then Checkout Now on that quote (``payment`` a PaymentMethodInput); the kind of
    change it made."""
    quote = graphql(QUOTE_FOR_CHECKOUT, {"input": {"planCode": plan, **sliders}}, key=key)["quote"]
    assert quote["__typename"] == "Quote", quote
    done = graphql(
        CHECKOUT_QUOTED,
        {
            "input": {
                "planCode": plan,
                "emailCredits": quote["emailCredits"],
                "messagingCredits": quote["messagingCredits"],
                "expectedTotal": quote["dueNow"]["total"]["amount"],
                "quoteExpiresAt": quote["expiresAt"],
                "paymentMethod": payment,
                "idempotencyKey": idempotency_key,
            }
        },
        key=key,
    )["checkout"]
    assert done["__typename"] == "CheckoutSuccess", done
    return done["kind"]


# ------------------------------------------------------------------ concurrent requests


def post(client, member, query: str, variables: dict | None = None) -> dict:
    """One GraphQL operation as the workspace through ``client`` (a TestClient, or an
    httpx.Client of a running server); its ``data``, failing on any error."""
    response = client.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {member.key}"},
    )
    body = response.json()
    assert response.status_code == 200 and "errors" not in body, body
    return body["data"]


def race(gateway, threads: int, work: Callable[[int, TestClient], T]) -> list[T]:
    """Run ``work(index, client)`` in ``threads`` threads that start together, each with its
    own HTTP client of one app; their results in index order. Fails if any worker raised or hung."""
    app = create_app(gateway)  # one app; its lifespan is the test's own client's concern
    barrier = threading.Barrier(threads)
    results: list[Any] = [None] * threads
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            with contextlib.closing(TestClient(app)) as client:  # not entered: no second lifespan
                barrier.wait(timeout=10)
                results[index] = work(index, client)
        except BaseException as error:  # reported with the others below
            errors.append(error)

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=90)
    assert not any(thread.is_alive() for thread in pool), "a worker hung"
    assert not errors, errors
    return results


# ------------------------------------------------------------------ plugins

# The plugins the tests run with, by entry-point name: the built-ins, never what else is
# installed (tests/test_plugins.py checks this list against plugins/*/pyproject.toml).
BUILT_IN_PLUGINS: dict[str, ModuleType] = {
    "messaging_rates": billing_gateway_messaging_rates,
    "payment_balance": billing_gateway_payment_balance,
    "payment_card": billing_gateway_payment_card,
    "tax_vat": billing_gateway_tax_vat,
}
PARTNER_PLUGIN = Path(__file__).parent / "fixtures" / "partner_plugin"


def registry_of(plugins: dict[str, Any] = BUILT_IN_PLUGINS, disabled: Iterable[str] = ()) -> Registry:
    """A registry of exactly these plugins (by default the built-ins), registered and checked
    as the server registers the ones it discovers."""
    return load_plugins(disabled, plugins=plugins.items())


def make_distribution(
    path: Path, name: str, module: str, source: str, version: str = "1.2.3", entry_point: str | None = None
) -> None:
    """Lay out an installed distribution (dist-info + module) the way pip would, with one
    ``billing_gateway`` entry point (named ``entry_point``, else after the module)."""
    dist_info = path / f"{name.replace('-', '_')}-{version}.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (dist_info / "entry_points.txt").write_text(f"[billing_gateway]\n{entry_point or module} = {module}\n")
    (path / f"{module}.py").write_text(textwrap.dedent(source))


def installed_beside_the_built_ins() -> list[str]:
    """The names of the other plugins installed, to disable in a gateway that a test starts in
    a subprocess (conftest's ``discovered_plugins`` does not reach there)."""
    installed = {ep.name for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
    return sorted(installed - set(BUILT_IN_PLUGINS))


def install_project(path: Path, project: Path) -> None:
    """Lay out a plugin project (its pyproject.toml and package) in ``path`` as pip installs
    it: the package and a dist-info with its ``billing_gateway`` entry points."""
    meta = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    name, version = meta["name"], meta["version"]
    dist_info = path / f"{name.replace('-', '_')}-{version}.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    entry_points = meta["entry-points"][ENTRY_POINT_GROUP]
    (dist_info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\n" + "".join(f"{k} = {v}\n" for k, v in entry_points.items())
    )
    for package in {value.split(".")[0] for value in entry_points.values()}:
        shutil.copytree(project / package, path / package, ignore=shutil.ignore_patterns("__pycache__"))


# ------------------------------------------------------------------ servers


class ServerThread:
    """The app under uvicorn on 127.0.0.1 (a free port), in a thread of this process, on the
    test's gateway: real HTTP and WebSocket, the same database and clock as the test.

    ``options`` override uvicorn's settings (``log_config=None, log_level="debug"`` logs as
    ``serve --log-level debug`` does, through the loggers the test configures)."""

    def __init__(self, gateway: Any, start_timeout: float = 30.0, **options: Any) -> None:
        config = uvicorn.Config(
            create_app(gateway),
            **{
                "host": "127.0.0.1",
                "port": 0,
                "log_level": "warning",
                "lifespan": "on",
                "ws": "websockets-sansio",
                "ws_max_size": MAX_WEBSOCKET_MESSAGE,  # as `serve` runs it
                **options,
            },
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)
        self.start_timeout = start_timeout
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        ready = threading.Event()
        deadline = time.monotonic() + self.start_timeout
        while not self.server.started:  # waits for lifespan start-up and the bound socket
            assert self.thread.is_alive(), "the server did not start"
            assert time.monotonic() < deadline, f"the server did not start in {self.start_timeout}s"
            ready.wait(0.01)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        assert not self.thread.is_alive(), "the server did not stop"


class ServerProcess:
    """A gateway server in a subprocess (``billing-gateway serve ... --host 127.0.0.1 --port 0``
    or ``python -m gateway serve ...``), listening on the free port uvicorn picked.

    Its output (stdout and stderr) is drained by a thread, so the server never blocks on a
    full pipe, and kept for :meth:`log`. Start-up waits at most ``start_timeout`` seconds;
    :meth:`stop` terminates it (then kills it) within bounded waits.
    """

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: Path,
        start_timeout: float = 30.0,
    ) -> None:
        self.name = name
        self.process = subprocess.Popen(
            list(command),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
        )
        self.lines: list[str] = []
        self._port: queue.Queue[int] = queue.Queue()
        self._reader = threading.Thread(target=self._read, name=f"{name} output", daemon=True)
        self._reader.start()
        try:
            self.port = self._port.get(timeout=start_timeout)
        except queue.Empty:
            self.stop()
            raise AssertionError(f"{name} did not start:\n" + self.log()) from None
        self.url = f"http://127.0.0.1:{self.port}"

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:  # drained to the end, so the server never blocks on a full pipe
            self.lines.append(line)
            if (match := re.search(r"Uvicorn running on http://127\.0\.0\.1:(\d+)", line)) is not None:
                self._port.put(int(match.group(1)))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        self._reader.join(timeout=15)
        assert self.process.stdout is not None
        self.process.stdout.close()

    def log(self) -> str:
        return "".join(self.lines)
