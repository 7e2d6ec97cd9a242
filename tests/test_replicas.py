"""Two gateway processes on one PostgreSQL database: events cross replicas within a second.

Replica A and replica B are ``python -m gateway serve`` subprocesses on 127.0.0.1 (free
ports, periodic renewal off). A subscriber connected to A receives the events of changes
made through B: B's transaction NOTIFYs on commit, A's notifier LISTENs and wakes its
subscribers, which read the outbox. The safety poll is 5 seconds, so anything under a
second was delivered by the notification.
"""

from __future__ import annotations

import gc
import json
import os
import queue
import statistics
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from sqlalchemy import text
from starlette.testclient import TestClient
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from gateway.events.notify import APPLICATION_NAME, POLL_INTERVAL
from gateway.server.http import create_app
from gateway.services.keys import issue_api_key
from gateway.services.workspaces import create_workspace
from gateway.storage.db import create_db_engine

from helpers import GERMAN_PERSON, ServerProcess, card, installed_beside_the_built_ins

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parent.parent
PROTOCOL = "graphql-transport-ws"
START_TIMEOUT = 30.0
LIMIT = 1.0  # seconds from B's request to the event on A
EVENTS_MEASURED = 20

VISA = card(year=2035)  # the replicas run on the real clock
UPDATE_DETAILS = """mutation($input: UpdateBillingDetailsInput!) { updateBillingDetails(input: $input) {
  __typename } }"""
TOP_UP = """mutation($input: TopUpInput!) { topUpBalance(input: $input) { __typename } }"""
QUOTE = """mutation($input: QuoteInput!) { quote(input: $input) { __typename
  ... on Quote { emailCredits messagingCredits expiresAt dueNow { total { amount } } } } }"""
CHECKOUT = """mutation($input: CheckoutInput!) { checkout(input: $input) { __typename } }"""
EVENTS = "subscription($after: Int) { events(afterSequence: $after) { id type sequence workspaceId } }"


@pytest.fixture(scope="module")
def postgres_url() -> str:
    url = os.environ.get("BILLING_GATEWAY_TEST_DATABASE_URL", "")
    if not url.startswith(("postgresql:", "postgresql+", "postgres:")):
        pytest.skip("needs BILLING_GATEWAY_TEST_DATABASE_URL pointing at PostgreSQL")
    return url


def start_replica(name: str, database_url: str) -> ServerProcess:
    """``python -m gateway serve`` on a free port of 127.0.0.1, periodic renewal off."""
    env = {
        **os.environ,
        "BILLING_GATEWAY_DATABASE_URL": database_url,
        "BILLING_GATEWAY_RENEWAL_INTERVAL": "0",
        # Counts shared through the database, as replicas would run; these tests check out more
        # often than a customer would, so the payment rules are raised.
        "BILLING_GATEWAY_RATE_LIMIT_STORE": "database",
        "BILLING_GATEWAY_RATE_LIMITS": "payments_per_key=600/1m, payments_per_address=600/1m",
        "PYTHONUNBUFFERED": "1",
        # A subprocess discovers what is installed: it gets the built-ins.
        "BILLING_GATEWAY_DISABLED_PLUGINS": ",".join(installed_beside_the_built_ins()),
    }
    command = [sys.executable, "-m", "gateway", "serve", "--host", "127.0.0.1", "--port", "0"]
    return ServerProcess(
        f"replica {name}", [*command, "--log-level", "info"], env=env, cwd=ROOT, start_timeout=START_TIMEOUT
    )


@pytest.fixture
def replicas(postgres_url, gateway) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Replicas A and B; ``gateway`` (the test process's) has emptied the tables first."""
    a = start_replica("A", postgres_url)
    try:
        b = start_replica("B", postgres_url)
    except BaseException:
        a.stop()
        raise
    try:
        yield a, b
    finally:
        a.stop()
        b.stop()
    for replica in (a, b):
        assert "Traceback" not in replica.log(), replica.log()


@pytest.fixture
def member(gateway) -> tuple[str, str]:
    """A Free workspace created now (the replicas run on the real clock) and its API key."""
    now = datetime.now(UTC)
    with gateway.sessions.begin() as session:
        workspace = create_workspace(session, gateway.catalog, "Replicated", now)
        key = issue_api_key(session, workspace.id, now)
    return workspace.id, key.secret


class Receiver:
    """A subscriber that timestamps every message the moment it arrives (a thread of its own)."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.messages: queue.Queue[tuple[float, dict[str, Any]]] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="subscriber", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        try:
            for raw in self.ws:
                self.messages.put((time.perf_counter(), json.loads(raw)))
        except ConnectionClosed:
            pass

    def next(self, timeout: float = 5.0) -> tuple[float, dict[str, Any]]:
        arrived, message = self.messages.get(timeout=timeout)
        assert message["type"] == "next" and "errors" not in message["payload"], message
        return arrived, message["payload"]["data"]["events"]

    def join(self) -> None:
        self._thread.join(timeout=10)


def post(client: httpx.Client, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/graphql", json={"query": query, "variables": variables})
    body = response.json()
    assert response.status_code == 200 and "errors" not in body, body
    return next(iter(body["data"].values()))


def open_socket(replica: ServerProcess) -> ClientConnection:
    return connect(
        f"ws://127.0.0.1:{replica.port}/graphql", subprotocols=[PROTOCOL], open_timeout=5, close_timeout=5
    )


def subscribe(ws: ClientConnection, key: str, after: int) -> None:
    ws.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {key}"}}))
    ack = json.loads(ws.recv(timeout=5))
    assert ack["type"] == "connection_ack", ack
    ws.send(
        json.dumps(
            {"id": "1", "type": "subscribe", "payload": {"query": EVENTS, "variables": {"after": after}}}
        )
    )


def test_a_subscriber_on_a_receives_within_a_second_what_happens_through_b(replicas, member):
    a, b = replicas
    workspace_id, key = member
    assert POLL_INTERVAL > 4 * LIMIT  # so the timings below measure the notification, not the poll
    headers = {"Authorization": f"Bearer {key}"}
    with open_socket(a) as ws, httpx.Client(base_url=b.url, headers=headers, timeout=10) as through_b:
        subscribe(ws, key, after=0)
        receiver = Receiver(ws)
        receiver.start()

        # A checkout through B: Free → Omnichannel paid from the balance.
        assert post(through_b, UPDATE_DETAILS, {"input": GERMAN_PERSON})["__typename"] == "BillingDetails"
        assert (
            post(
                through_b,
                TOP_UP,
                {
                    "input": {
                        "amount": "300.00",
                        "idempotencyKey": "fund",
                        "paymentMethod": {"method": "card", "newCard": VISA},
                    }
                },
            )["__typename"]
            == "TopUpSuccess"
        )
        offer = post(through_b, QUOTE, {"input": {"planCode": "omnichannel"}})
        sent = time.perf_counter()
        assert (
            post(
                through_b,
                CHECKOUT,
                {
                    "input": {
                        "planCode": "omnichannel",
                        "emailCredits": offer["emailCredits"],
                        "messagingCredits": offer["messagingCredits"],
                        "expectedTotal": offer["dueNow"]["total"]["amount"],
                        "quoteExpiresAt": offer["expiresAt"],
                        "paymentMethod": {"method": "balance"},
                        "idempotencyKey": "checkout",
                    }
                },
            )["__typename"]
            == "CheckoutSuccess"
        )
        received = [receiver.next() for _ in range(4)]
        assert [(e["sequence"], e["type"]) for _, e in received] == [
            (1, "balance.topped_up"),
            (2, "plan_change.applied"),
            (3, "credits.reset"),
            (4, "checkout.completed"),
        ]
        assert {e["workspaceId"] for _, e in received} == {workspace_id}
        print(f"\ncheckout through B → checkout.completed on A: {(received[-1][0] - sent) * 1000:.1f} ms")
        assert received[-1][0] - sent < LIMIT

        # Top-ups through B, one at a time: request sent on B → event received on A.
        latencies, after_response = [], []
        for n in range(EVENTS_MEASURED):
            sent = time.perf_counter()
            assert (
                post(
                    through_b,
                    TOP_UP,
                    {
                        "input": {
                            "amount": "5.00",
                            "idempotencyKey": f"top-up-{n}",
                            "paymentMethod": {"method": "card", "newCard": VISA},
                        }
                    },
                )["__typename"]
                == "TopUpSuccess"
            )
            answered = time.perf_counter()
            arrived, event = receiver.next()
            assert (event["sequence"], event["type"]) == (5 + n, "balance.topped_up")
            latencies.append(arrived - sent)
            after_response.append(arrived - answered)
        ws.close()
        receiver.join()

    def ms(values: list[float]) -> str:
        return (
            f"min {min(values) * 1000:.1f} ms, median {statistics.median(values) * 1000:.1f} ms, "
            f"max {max(values) * 1000:.1f} ms"
        )

    print(f"top-up request sent to B → event on A, {EVENTS_MEASURED} events: {ms(latencies)}")
    print(f"B's HTTP response received → event on A (negative: the event came first): {ms(after_response)}")
    assert max(latencies) < LIMIT, latencies


def test_a_replica_that_lost_its_listen_connection_catches_up(replicas, member, postgres_url):
    """The notifier reconnects and then wakes every subscriber: nothing is lost, well within the poll."""
    a, b = replicas
    workspace_id, key = member
    headers = {"Authorization": f"Bearer {key}"}
    engine = create_db_engine(postgres_url)
    try:
        with open_socket(a) as ws, httpx.Client(base_url=b.url, headers=headers, timeout=10) as through_b:
            subscribe(ws, key, after=0)
            receiver = Receiver(ws)
            receiver.start()
            with engine.begin() as connection:
                killed = connection.execute(
                    text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE application_name = :name AND datname = current_database()"
                    ),
                    {"name": APPLICATION_NAME},
                ).scalar_one()
            assert killed >= 2  # A's and B's (and any other gateway's on this database)
            sent = time.perf_counter()
            assert (
                post(
                    through_b,
                    TOP_UP,
                    {
                        "input": {
                            "amount": "5.00",
                            "idempotencyKey": "after-the-cut",
                            "paymentMethod": {"method": "card", "newCard": VISA},
                        }
                    },
                )["__typename"]
                == "TopUpSuccess"
            )
            arrived, event = receiver.next(timeout=POLL_INTERVAL + 5)
            assert (event["sequence"], event["type"]) == (1, "balance.topped_up")
            assert event["workspaceId"] == workspace_id
            print(f"\nevent on A after its LISTEN connection was cut: {(arrived - sent) * 1000:.1f} ms")
            assert arrived - sent < POLL_INTERVAL - 1  # the reconnection's wake-up, not the poll
            ws.close()
            receiver.join()
    finally:
        engine.dispose()
    assert "lost the LISTEN connection" in a.log() and "listening for events again" in a.log()


def test_app_lifespans_stopping_together_close_their_listen_connections(postgres_url, gateway):
    """Several apps (each a lifespan with the notifier's LISTEN connection) stop at the same
    moment: every LISTEN connection is closed, none is dropped for the garbage collector (a
    ResourceWarning, which this suite turns into an error)."""

    def listening() -> int:
        with gateway.engine.connect() as connection:
            return connection.scalar(
                text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :name"),
                {"name": APPLICATION_NAME},
            )

    before = listening()
    clients = [TestClient(create_app(gateway)) for _ in range(4)]
    for client in clients:
        client.__enter__()
    deadline = time.monotonic() + 10
    while listening() < before + 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert listening() >= before + 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stoppers = [threading.Thread(target=client.__exit__, args=(None, None, None)) for client in clients]
        for stopper in stoppers:
            stopper.start()
        for stopper in stoppers:
            stopper.join(timeout=30)
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)], [
        str(w.message) for w in caught
    ]
    deadline = time.monotonic() + 10
    while listening() > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert listening() == before
