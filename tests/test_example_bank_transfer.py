"""The bank-transfer partner example (examples/payment_bank_transfer), installed as a partner
installs it, driven over GraphQL as a customer and their bank would.

A fresh virtual environment gets the gateway, the built-in plugins and the example with pip;
``billing-gateway serve`` from it runs on a free port of 127.0.0.1 on a database of its own (a
SQLite file, or the PostgreSQL test database when BILLING_GATEWAY_TEST_DATABASE_URL is set).
Then: checkout answers pending with instructions; a signed notification of the bank applies
the order; a forged one (400) and one with the wrong amount change nothing; ``billing-gateway
payments reconcile --now`` past the deadline expires a transfer that never came (the
``payment.expired`` event is in the workspace's feed); ``billing-gateway payments mark-paid``
applies another. Every subprocess and every wait is bounded.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from standardwebhooks import Webhook
from websockets.sync.client import connect

from helpers import GERMAN_PERSON, UPDATE_BILLING_DETAILS, ServerProcess

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "payment_bank_transfer"
BUILT_IN = ["payment_balance", "payment_card", "tax_vat", "messaging_rates"]
INSTALL_TIMEOUT = 900.0  # seconds for pip (offline through the configured index; slow on a cold cache)
COMMAND_TIMEOUT = 120.0  # seconds for one CLI command
START_TIMEOUT = 60.0  # seconds for the server to listen
WAIT = 30.0  # seconds for one HTTP request or one WebSocket message
EXPIRY_DAYS = 3  # BANK_TRANSFER_EXPIRY_DAYS: not the default (7), to see that it is read
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # the bank's signing secret
FORGER = "whsec_c2VjcmV0LW9mLXNvbWVvbmUtZWxzZQ=="
REFERENCE = re.compile(r"BG-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]")


def run(args: list[str], timeout: float, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(
            args, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, **kwargs
        )
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"{' '.join(args[:4])} ... took more than {timeout} s:\n{error.stdout}\n{error.stderr}")
    assert done.returncode == 0, f"{' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtual environment with the gateway, the built-in plugins and the example,
    installed by pip exactly as the example's README tells a partner."""
    path = tmp_path_factory.mktemp("partner") / "venv"
    run([sys.executable, "-m", "venv", str(path)], COMMAND_TIMEOUT)
    gateway = f"{ROOT}[postgres]" if os.environ.get("BILLING_GATEWAY_TEST_DATABASE_URL") else str(ROOT)
    editable = [gateway, *(str(ROOT / "plugins" / name) for name in BUILT_IN), str(EXAMPLE)]
    pip = [str(path / "bin" / "python"), "-m", "pip", "install", "-q"]
    run([*pip, *(arg for target in editable for arg in ("-e", target))], INSTALL_TIMEOUT)
    return path


@pytest.fixture
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The server's database: the PostgreSQL test database (emptied by the ``gateway``
    fixture) when one is set, else a SQLite file of this test's own."""
    if os.environ.get("BILLING_GATEWAY_TEST_DATABASE_URL"):
        request.getfixturevalue("gateway")  # empties the tables other tests share
        return str(request.getfixturevalue("database_url"))
    return f"sqlite:///{tmp_path / 'gateway.db'}"


@pytest.fixture
def partner_env(database: str) -> dict[str, str]:
    """The environment of the partner's gateway: nothing of this test process's settings."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("BILLING_GATEWAY_", "BANK_TRANSFER_", "PYTHON", "VIRTUAL_ENV"))
    }
    return {
        **env,
        "BILLING_GATEWAY_DATABASE_URL": database,
        "BILLING_GATEWAY_RENEWAL_INTERVAL": "0",
        "BILLING_GATEWAY_RECONCILE_INTERVAL": "0",  # the test runs reconciliation itself, with --now
        "BANK_TRANSFER_NOTIFICATION_SECRET": SECRET,
        "BANK_TRANSFER_EXPIRY_DAYS": str(EXPIRY_DAYS),
        "PYTHONUNBUFFERED": "1",
    }


class Server(ServerProcess):
    """``billing-gateway serve --demo`` from the partner's environment, on a free port; ``key``
    is the demo workspace's API key it printed."""

    def __init__(self, venv: Path, env: dict[str, str], cwd: Path) -> None:
        command = [
            str(venv / "bin" / "billing-gateway"),
            "serve",
            "--demo",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
        ]
        super().__init__("the partner's gateway", command, env=env, cwd=cwd, start_timeout=START_TIMEOUT)
        # Printed before uvicorn starts, so it is in the output by now.
        keys = re.findall(r"Demo API key .*: (\S+)", self.log())
        if len(keys) != 1:
            self.stop()
            raise AssertionError("no demo API key in the output:\n" + self.log())
        self.key = keys[0]


@pytest.fixture
def server(venv: Path, partner_env: dict[str, str], tmp_path: Path) -> Iterator[Server]:
    running = Server(venv, partner_env, tmp_path)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def http(server: Server) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {server.key}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=WAIT) as client:
        yield client


def cli(venv: Path, env: dict[str, str], *args: str) -> str:
    """A ``billing-gateway`` command from the partner's environment; its output."""
    return run([str(venv / "bin" / "billing-gateway"), *args], COMMAND_TIMEOUT, env=env).stdout


# ------------------------------------------------------------------ GraphQL

WORKSPACE = """{ workspace { __typename ... on Workspace { id plan { code } emailCredits messagingCredits
  paymentMethods { code }
  invoices { status total { amount currency } paymentMethod } } } }"""
QUOTE = """mutation($input: QuoteInput!) { quote(input: $input) { __typename
  ... on Quote { expiresAt dueNow { total { amount currency } } } ... on UserError { code message } } }"""
CHECKOUT = """mutation($input: CheckoutInput!) { checkout(input: $input) { __typename
  ... on UserError { code message field }
  ... on PaymentPending { paymentId reference instructions { name value } expiresAt }
  ... on PaymentDeclined { paymentId declineCode }
  ... on CheckoutSuccess { kind } } }"""
EVENTS = """subscription($types: [String!]) { events(types: $types, afterSequence: 0) {
  type sequence payload } }"""


def graphql(http: httpx.Client, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    response = http.post("/graphql", json={"query": query, "variables": variables or {}})
    body = response.json()
    assert response.status_code == 200 and "errors" not in body, body
    return body["data"]


def workspace(http: httpx.Client) -> dict[str, Any]:
    return graphql(http, WORKSPACE)["workspace"]


class Order:
    """A quoted order and the checkout that pays it by bank transfer (retries send the same)."""

    def __init__(self, http: httpx.Client, plan: str, **limits: int) -> None:
        self.http = http
        self.input: dict[str, Any] = {"planCode": plan, **limits}
        quote = graphql(http, QUOTE, {"input": self.input})["quote"]
        assert quote["__typename"] == "Quote", quote
        self.total = Decimal(quote["dueNow"]["total"]["amount"])
        assert self.total > 0 and quote["dueNow"]["total"]["currency"] == "EUR"
        self.quote_expires_at = quote["expiresAt"]
        self.key = str(uuid.uuid4())

    def checkout(self) -> dict[str, Any]:
        payment = {"method": "bank_transfer"}
        variables = {
            "input": {
                **self.input,
                "expectedTotal": str(self.total),
                "quoteExpiresAt": self.quote_expires_at,
                "paymentMethod": payment,
                "idempotencyKey": self.key,
            }
        }
        return graphql(self.http, CHECKOUT, variables)["checkout"]


def notify(http: httpx.Client, reference: str, amount: Decimal | str, secret: str = SECRET) -> httpx.Response:
    """The bank's notice of incoming funds, signed per Standard Webhooks."""
    body = json.dumps({"reference": reference, "amount": str(amount), "currency": "EUR"}).encode()
    sent = datetime.now(UTC)
    message_id = f"msg_{uuid.uuid4().hex}"
    headers = {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(sent.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, sent, body),
    }
    return http.post("/payments/bank_transfer/notifications", content=body, headers=headers)


def feed(server: Server, event_type: str, count: int) -> list[dict[str, Any]]:
    """The workspace's first ``count`` events of ``event_type``, from its event feed (replayed
    from the outbox over graphql-transport-ws)."""
    with connect(
        server.url.replace("http://", "ws://") + "/graphql",
        subprotocols=["graphql-transport-ws"],
        open_timeout=WAIT,
        close_timeout=WAIT,
    ) as ws:
        ws.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {server.key}"}}))
        assert json.loads(ws.recv(timeout=WAIT))["type"] == "connection_ack"
        subscribe = {"query": EVENTS, "variables": {"types": [event_type]}}
        ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": subscribe}))
        messages = [json.loads(ws.recv(timeout=WAIT)) for _ in range(count)]
    assert all(m["type"] == "next" and "errors" not in m["payload"] for m in messages), messages
    return [m["payload"]["data"]["events"] for m in messages]


# ------------------------------------------------------------------ the journey


def test_checkout_confirmation_and_expiry_over_graphql(venv, partner_env, server, http):
    start = workspace(http)
    assert start["plan"]["code"] == "free" and start["invoices"] == []
    assert "bank_transfer" in [m["code"] for m in start["paymentMethods"]]
    details = graphql(http, UPDATE_BILLING_DETAILS, {"input": GERMAN_PERSON})["updateBillingDetails"]
    assert details == {"__typename": "BillingDetails", "missingFields": []}

    # Checkout answers pending, with how to pay; nothing changes yet.
    upgrade = Order(http, "omnichannel")
    before = datetime.now(UTC)
    first = upgrade.checkout()
    after = datetime.now(UTC)
    assert first["__typename"] == "PaymentPending", first
    assert first["code"] == "PAYMENT_PENDING"
    assert REFERENCE.fullmatch(first["reference"]), first
    instructions = {line["name"]: line["value"] for line in first["instructions"]}
    assert instructions == {
        "account_holder": "Example Seller GmbH (demo account: do not pay)",
        "iban": "DE89 3704 0044 0532 0130 00",
        "bic": "COBADEFFXXX",
        "amount": str(upgrade.total),
        "currency": "EUR",
        "reference": first["reference"],
    }
    deadline = datetime.fromisoformat(first["expiresAt"])
    assert before + timedelta(days=EXPIRY_DAYS) - timedelta(seconds=1) <= deadline
    assert deadline <= after + timedelta(days=EXPIRY_DAYS)
    assert upgrade.checkout() == first  # a retry answers the same payment, with the same reference
    (announced,) = feed(server, "payment.pending", 1)  # for an e-mail with the instructions
    assert announced["payload"]["payment_id"] == first["paymentId"]
    assert announced["payload"]["reference"] == first["reference"]
    assert announced["payload"]["instructions"] == instructions
    assert workspace(http)["plan"]["code"] == "free"

    # The bank's signed notice of the funds: the order applies, with a paid invoice.
    response = notify(http, first["reference"], upgrade.total)
    assert response.status_code == 200, response.text
    assert response.json() == {"received": True, "outcome": "Completed"}
    upgraded = workspace(http)
    assert upgraded["plan"]["code"] == "omnichannel"
    assert upgraded["invoices"] == [
        {
            "status": "PAID",
            "total": {"amount": str(upgrade.total), "currency": "EUR"},
            "paymentMethod": "bank_transfer",
        }
    ]
    assert upgrade.checkout()["__typename"] == "CheckoutSuccess"  # the retry now sees it paid

    # A second order: pending too. Forged and short-paid notices settle nothing.
    more = Order(http, "omnichannel", emailCredits=upgraded["emailCredits"] + 40000)
    second = more.checkout()
    assert second["__typename"] == "PaymentPending", second
    assert second["reference"] != first["reference"]
    forged = notify(http, second["reference"], more.total, secret=FORGER)
    assert forged.status_code == 400, forged.text
    short = notify(http, second["reference"], more.total - Decimal("0.01"))
    assert short.status_code == 200, short.text
    assert short.json()["outcome"] == "PaymentPending"
    assert workspace(http) == upgraded
    assert more.checkout() == second

    # The transfer never comes: past its deadline, reconciliation expires it.
    late = datetime.fromisoformat(second["expiresAt"]) + timedelta(minutes=1)
    assert late > datetime.now(UTC) + timedelta(days=EXPIRY_DAYS)
    output = cli(venv, partner_env, "payments", "reconcile", "--now", late.isoformat())
    assert f"payment {second['paymentId']} (bank_transfer): expired: pending -> expired" in output, output
    expired = more.checkout()
    assert expired == {
        "__typename": "PaymentDeclined",
        "code": "PAYMENT_DECLINED",
        "message": "the money did not arrive in time",
        "field": ["paymentMethod"],
        "paymentId": second["paymentId"],
        "declineCode": "expired",
    }
    (event,) = feed(server, "payment.expired", 1)
    assert event["payload"]["payment_id"] == second["paymentId"]
    assert event["payload"]["method"] == "bank_transfer"
    assert event["payload"]["amount"] == str(more.total)
    assert workspace(http) == upgraded
    # Money that arrives after the deadline is recorded but not applied: a transfer cannot be
    # refunded by the method, so the payment says an operator must return it (refund_failed).
    assert notify(http, second["reference"], more.total).json()["outcome"] == "PaymentRefused"
    assert workspace(http) == upgraded
    (late_event,) = feed(server, "payment.failed", 1)
    assert late_event["payload"]["payment_id"] == second["paymentId"]
    assert late_event["payload"]["failure_code"] == "refund_failed"

    # An operator saw a third transfer arrive: mark-paid applies its order.
    messages = Order(http, "omnichannel", messagingCredits=upgraded["messagingCredits"] + 20000)
    third = messages.checkout()
    assert third["__typename"] == "PaymentPending", third
    marked = cli(
        venv, partner_env, "payments", "mark-paid", third["paymentId"], "--note", "statement 2026-12 line 17"
    )
    assert marked.strip() == f"payment {third['paymentId']}: Completed"
    final = workspace(http)
    assert final["messagingCredits"] == upgraded["messagingCredits"] + 20000
    assert final["emailCredits"] == upgraded["emailCredits"]
    assert [(i["status"], i["total"]["amount"]) for i in final["invoices"]] == [
        ("PAID", str(messages.total)),
        ("PAID", str(upgrade.total)),
    ]
    assert messages.checkout()["__typename"] == "CheckoutSuccess"
    assert server.process.poll() is None, server.log()
