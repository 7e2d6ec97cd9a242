"""No secret in the logs or the answers: every flow of the API runs against the real app while
every log record of every logger is kept at DEBUG; then all of it is scanned.

**What runs.** GraphQL over HTTP through Starlette's TestClient; subscriptions over
graphql-transport-ws on the app under uvicorn, configured as ``serve --log-level debug`` runs it
(so uvicorn's and websockets' own records are there too); the command line in process. Sign-in
with valid, wrong, revoked, malformed and operator keys, in the header, in ``connection_init`` and
(a client's mistake) in a WebSocket URL; billing details; quotes; checkout with a new card saved
and not saved, with a saved card, with the balance, declined, and through 3-D Secure; cards, top-ups
and the renewal method; webhook endpoints created, refused, rotated, redelivered, updated and
delivered to a receiver on 127.0.0.1; API keys and operator keys made and revoked on the command
line; refunds; renewal, a failed renewal, dunning and paying the open invoice; reconciliation;
invoice PDFs; an integrity error inside a mutation (its SQL statement would carry its parameters
if anything logged them) and a database that cannot be reached (its URL has a password); GraphQL
errors: syntax, validation and variable errors with a card number and CVC in the wrong place.

**What is kept.** Every log record of every logger, from the gateway's start-up on (the gateway is
built inside the capture): its message, its arguments (``repr``: an object logged lazily shows
everything it holds), its exception with the whole chain, its stack. Every answer: status, headers
and body (an invoice PDF as its text). Every request the webhook receiver got: headers and body
(event payloads may carry ids, never secrets). Every WebSocket message and close the server sent.
What each command printed. The test's own clients log too (httpx, the websockets client): those
are the caller's records, not the gateway's, and are left out.

**What is looked for** (:class:`Scan`): every API key and operator key made or used (whole, any
16 characters of its secret part, and anything shaped like a key: ``bgw_``/``bgo_``, 12 hex
digits and a secret); webhook signing secrets (the exact values, any 16 characters of them, and
``whsec_`` followed by base64), which are shown once in the answer that makes them (creation,
rotation) and nowhere else; card numbers (the exact numbers, spaced or dashed, and any run of 13
to 19 digits that passes the Luhn check); a CVC as a value beside a card-code field name; the
encryption keys and quote signing keys, from the settings and from the database
(``encryption_keys``, ``gateway_secrets``); the database password. A finding names where it was
(which log record, answer, webhook, message or command) with the text around it.

``test_the_scan_finds_what_it_looks_for`` plants each kind of secret and checks that the scan
reports it, and the big test plants one key in the log after its flows: a scan that sees nothing
fails.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import re
import secrets
import traceback
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from starlette.testclient import TestClient
from test_database_faults import refused_url
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from gateway.events import delivery as webhook_delivery
from gateway.events import endpoints
from gateway.server.app import build_gateway
from gateway.server.cli import main
from gateway.server.http import create_app, reconcile_payments, renew
from gateway.server.settings import Settings
from gateway.services.keys import issue_api_key, revoke_api_key
from gateway.services.workspaces import create_workspace
from gateway.storage.db import EncryptionKey, GatewaySecret
from gateway.storage.encryption import keyring, new_key

from helpers import GERMAN_PERSON, ServerThread, events, registry_of
from pdf_text import pdf_text
from receivers import Receiver

# ------------------------------------------------------------------ the scan

FRAGMENT = 16  # this many characters of a secret's random part, anywhere, count as a leak of it
_RUN = re.compile(rf"[A-Za-z0-9+/=_-]{{{FRAGMENT},}}")  # where fragments can be: base64, hex, tokens
_KEY_SHAPED = re.compile(r"\bbg[wo]_[0-9a-f]{12}_[A-Za-z0-9_-]{8,}")
_WEBHOOK_SECRET_SHAPED = re.compile(r"whsec_[A-Za-z0-9+/]{16,}")
# Not inside a word or an id, nor the fraction of a decimal number (a duration in a log line).
_DIGIT_RUN = re.compile(r"(?<![0-9A-Za-z.])\d(?:[ -]?\d){12,18}(?![0-9A-Za-z]|\.\d)")
_CARD_CODE = re.compile(r"(?i)\b(?:cvc|cvv|cvc2|cvv2|csc|security[ _-]?code)\w*\W{1,8}(\d{3,4})(?!\d)")

# Loggers of the test's own clients: what the caller sent, not what the gateway wrote.
CLIENT_LOGGERS = ("httpx", "httpx2", "httpcore", "websockets.client")


def luhn(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def card_spellings(number: str) -> list[str]:
    groups = [number[i : i + 4] for i in range(0, len(number), 4)]
    return [number, " ".join(groups), "-".join(groups)]


@dataclass(frozen=True)
class Secret:
    kind: str
    value: str
    spellings: tuple[str, ...]
    shown_in: str | None = None  # the one place that may show it, once: the answer that made it


@dataclass
class Scan:
    """Secrets to look for, the texts to look in (each with where it came from), and the findings."""

    secrets: list[Secret] = field(default_factory=list)
    texts: list[tuple[str, str]] = field(default_factory=list)
    _fragments: dict[str, Secret] = field(default_factory=dict)

    def secret(
        self, kind: str, value: str, *, random_part: str | None = None, shown_in: str | None = None
    ) -> None:
        """Look for ``value``, and for any FRAGMENT characters of ``random_part`` (the value
        itself unless told: a key's public prefix is no secret)."""
        assert value, kind
        found = Secret(kind, value, (value,), shown_in)
        self.secrets.append(found)
        part = value if random_part is None else random_part
        for start in range(len(part) - FRAGMENT + 1):
            self._fragments.setdefault(part[start : start + FRAGMENT], found)

    def key(self, kind: str, key: str, *, shown_in: str | None = None) -> None:
        """A ``bgw_<prefix>_<secret>`` or ``bgo_...`` key: its prefix is public (logs name it)."""
        parts = key.split("_", 2)
        self.secret(kind, key, random_part=parts[2] if len(parts) == 3 else key, shown_in=shown_in)

    def card(self, number: str) -> None:
        self.secrets.append(Secret("card number", number, tuple(card_spellings(number))))

    def add(self, where: str, content: str) -> None:
        self.texts.append((where, content))

    def findings(self) -> list[str]:
        found: dict[tuple[str, str], str] = {}  # one finding per (where, what)

        def report(where: str, what: str, content: str, at: int) -> None:
            context = content[max(0, at - 80) : at + 80].replace("\n", "\\n")
            found.setdefault((where, what), f"{what} in {where}: ...{context}...")

        shown = {s.shown_in: s for s in self.secrets if s.shown_in is not None}
        for where, content in self.texts:
            if where in shown:  # shown there once, as it should be: the rest is scanned
                content = content.replace(shown[where].value, "<shown once>", 1)
            whole: set[str] = set()  # secrets found whole: their parts and shapes are not reported again
            for secret in self.secrets:
                for spelling in secret.spellings:
                    if (at := content.find(spelling)) >= 0:
                        whole.add(secret.value)
                        report(where, f"{secret.kind} {secret.value[:12]}...", content, at)
            for run in _RUN.finditer(content):
                chunk = run.group()
                for start in range(len(chunk) - FRAGMENT + 1):
                    part_of = self._fragments.get(chunk[start : start + FRAGMENT])
                    if part_of is not None and part_of.value not in whole:
                        at = run.start() + start
                        report(where, f"part of {part_of.kind} {part_of.value[:12]}...", content, at)
                        break
            for pattern, what in (
                (_KEY_SHAPED, "an API or operator key"),
                (_WEBHOOK_SECRET_SHAPED, "a webhook signing secret"),
            ):
                for match in pattern.finditer(content):
                    if not any(match.group() in value for value in whole):
                        report(where, f"{what} {match.group()[:16]}...", content, match.start())
            for match in _DIGIT_RUN.finditer(content):
                digits = re.sub(r"\D", "", match.group())
                if 13 <= len(digits) <= 19 and len(set(digits)) > 1 and luhn(digits) and digits not in whole:
                    report(where, f"a card number (Luhn) {digits[:6]}...", content, match.start())
            for match in _CARD_CODE.finditer(content):
                report(where, f"a CVC {match.group(1)}", content, match.start())
        return list(found.values())


# ------------------------------------------------------------------ what the gateway logs


class Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def logs() -> Iterator[list[logging.LogRecord]]:
    """Every record of every logger at DEBUG, kept on the root logger; loggers made later
    inherit the root's level. Levels, propagation and handlers are put back afterwards."""
    keep = Keep()
    root = logging.getLogger()
    existing = [
        logger for logger in logging.root.manager.loggerDict.values() if isinstance(logger, logging.Logger)
    ]
    saved = [(logger, logger.level, logger.propagate, logger.disabled) for logger in [root, *existing]]
    # pytest's own handlers (its report of a failed test) keep warnings and errors, not the flood.
    reported = [(handler, handler.level) for handler in root.handlers]
    for handler, _ in reported:
        handler.setLevel(max(handler.level, logging.WARNING))
    for logger in existing:
        logger.setLevel(logging.DEBUG)
        logger.propagate = True
        logger.disabled = False
    root.setLevel(logging.DEBUG)
    root.addHandler(keep)
    try:
        yield keep.records
    finally:
        root.removeHandler(keep)
        for handler, level in reported:
            handler.setLevel(level)
        for logger, level, propagate, disabled in saved:
            logger.setLevel(level)
            logger.propagate = propagate
            logger.disabled = disabled
        for name in list(logging.root.manager.loggerDict):  # made during the test: back to inheriting
            logger = logging.root.manager.loggerDict[name]
            if isinstance(logger, logging.Logger) and all(logger is not s[0] for s in saved):
                logger.setLevel(logging.NOTSET)


def record_text(record: logging.LogRecord) -> str:
    """All a handler could write of a record: its message, its arguments as objects (``repr``),
    its exception with its chain, its stack."""
    try:
        message = record.getMessage()
    except Exception as error:  # a record whose arguments do not fit its message: still scanned
        message = f"{record.msg!r} (unformattable: {error})"
    parts = [f"{record.levelname} {record.name}: {message}", repr(record.msg), repr(record.args)]
    if record.exc_info and record.exc_info[1] is not None:
        parts.append("".join(traceback.format_exception(record.exc_info[1])))
    if record.exc_text:
        parts.append(record.exc_text)
    if record.stack_info:
        parts.append(record.stack_info)
    return "\n".join(parts)


def gateway_records(records: list[logging.LogRecord]) -> list[logging.LogRecord]:
    return [r for r in records if not r.name.startswith(CLIENT_LOGGERS)]


# ------------------------------------------------------------------ the app and its answers


class Api:
    """The app through TestClient; every answer goes to the scan, named by a number and a label."""

    def __init__(self, client: TestClient, scan: Scan) -> None:
        self.client, self.scan = client, scan
        self.count = 0
        self.last = ""  # where the last answer was kept

    def keep(self, label: str, response: Any) -> Any:
        self.count += 1
        self.last = f"answer #{self.count} ({label}, {response.status_code})"
        headers = "\n".join(f"{name}: {value}" for name, value in response.headers.items())
        pdf = response.headers.get("content-type", "").startswith("application/pdf")
        body = pdf_text(response.content) if pdf else response.text
        self.scan.add(self.last, f"{response.status_code}\n{headers}\n\n{body}")
        return response

    def post(self, label: str, body: Any, *, key: str | None = None, **headers: str) -> Any:
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers.setdefault("Content-Type", "application/json")
        return self.keep(label, self.client.post("/graphql", content=content, headers=headers))

    def get(self, label: str, path: str, *, key: str | None = None, **params: str) -> Any:
        headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
        return self.keep(label, self.client.get(path, params=params, headers=headers))

    def graphql(self, query: str, variables: dict[str, Any] | None = None, *, key: str | None = None) -> dict:
        """``data``'s one root field, failing on any GraphQL error."""
        label = re.sub(r"\s+", " ", query)[:60]
        response = self.post(label, {"query": query, "variables": variables}, key=key)
        body = response.json()
        assert response.status_code == 200 and "errors" not in body, body
        return next(iter(body["data"].values()))

    def errors(self, query: str, variables: dict[str, Any] | None = None, *, key: str | None = None) -> list:
        """The GraphQL errors of an operation that the gateway refuses (or fails)."""
        response = self.post("errors", {"query": query, "variables": variables}, key=key)
        errors = response.json()["errors"]
        assert errors, response.text
        return errors


# ------------------------------------------------------------------ the operations

WORKSPACE = """{ workspace { __typename ... on UserError { code message }
  ... on Workspace { id status plan { code } balance { amount } billingDetails { missingFields }
    cards { id brand last4 expMonth expYear fingerprint isRenewalMethod }
    invoices { id number kind status paymentMethod billingDetails pdfUrl lines { description } }
    renewalPayment { method { code } card { last4 } canPayNextRenewal problem message }
    payments(first: 100) { ... on PaymentConnection { edges { node {
      id purpose method status card { last4 } failureCode failureMessage invoiceId } } } }
    balanceTransactions(first: 100) { ... on BalanceTransactionConnection { edges { node { kind } } } }
    events(first: 100) { ... on EventConnection { edges { node { type payload } } } } } } }"""
UPDATE_DETAILS = """mutation($input: UpdateBillingDetailsInput!) { updateBillingDetails(input: $input) {
  __typename ... on BillingDetails { missingFields } ... on UserError { code field message } } }"""
QUOTE = """mutation($input: QuoteInput!) { quote(input: $input) { __typename
  ... on Quote { token expiresAt dueNow { total { amount } } } ... on UserError { code message } } }"""
PAGE = """query($quote: QuoteInput!) { plans { code } selectPlan(planCode: "omnichannel") { __typename }
  quote(input: $quote) { ... on Quote { token } }
  estimate(input: {credits: 1000, messageType: "WHATSAPP_MARKETING", country: "DE"}) { __typename } }"""
PAID = {
    "CheckoutSuccess": "... on CheckoutSuccess { kind invoice { id number pdfUrl } payment { id card { id last4 } } }",
    "TopUpSuccess": "... on TopUpSuccess { balance { amount } payment { id card { id last4 } } }",
    "InvoicePaid": "... on InvoicePaid { invoice { number status } payment { id } }",
}


def payment_answer(*paid: str) -> str:
    """The fields of a payment's answer: typed errors, declines, 3-D Secure, and ``paid``."""
    return " ".join(
        [
            "__typename ... on UserError { code field message }",
            "... on PaymentDeclined { paymentId declineCode } ... on PaymentActionRequired { paymentId nextAction }",
            *(PAID[name] for name in paid),
        ]
    )


CHECKOUT = f"mutation($input: CheckoutInput!) {{ checkout(input: $input) {{ {payment_answer('CheckoutSuccess')} }} }}"
TOP_UP = (
    f"mutation($input: TopUpInput!) {{ topUpBalance(input: $input) {{ {payment_answer('TopUpSuccess')} }} }}"
)
CONFIRM = f"""mutation($id: ID!, $answer: String) {{ confirmPayment(paymentId: $id, challengeResponse: $answer) {{
  {payment_answer(*PAID)} }} }}"""
PAY_INVOICE = f"mutation($input: PayInvoiceInput!) {{ payInvoice(input: $input) {{ {payment_answer('InvoicePaid')} }} }}"
ADD_CARD = """mutation($input: AddCardInput!) { addCard(input: $input) { __typename
  ... on CardAdded { card { id last4 fingerprint isRenewalMethod } } ... on UserError { code field message } } }"""
REMOVE_CARD = (
    """mutation($id: ID!) { removeCard(cardId: $id) { __typename ... on UserError { code message } } }"""
)
SET_DEFAULT = """mutation($input: SetDefaultPaymentMethodInput!) { setDefaultPaymentMethod(input: $input) {
  __typename ... on UserError { code message } ... on Workspace { renewalPayment { card { last4 } } } } }"""
CANCEL = "mutation { cancelScheduledChange { __typename ... on UserError { code message } } }"
RECORD = """mutation($input: RecordUsageInput!) { recordUsage(input: $input) { __typename
  ... on UserError { code message } } }"""
CUSTOM_QUOTE = """mutation($input: RequestCustomQuoteInput!) { requestCustomQuote(input: $input) { __typename
  ... on UserError { code message } } }"""
CREATE_ENDPOINT = """mutation($url: String!) { createWebhookEndpoint(input: {url: $url}) { __typename
  ... on WebhookEndpointCreated { secret endpoint { id url } } ... on UserError { code field message } } }"""
ROTATE = """mutation($id: ID!) { rotateWebhookSecret(id: $id) { __typename
  ... on WebhookSecretRotated { secret endpoint { id previousSecretExpiresAt } } } }"""
UPDATE_ENDPOINT = (
    """mutation($id: ID!) { updateWebhookEndpoint(id: $id, input: {eventTypes: []}) { __typename } }"""
)
REDELIVER = """mutation($event: ID!) { redeliverEvent(eventId: $event) { __typename
  ... on EventRedelivered { deliveries { id status } } ... on UserError { code message } } }"""
ENDPOINTS = """{ webhookEndpoints { ... on WebhookEndpoints { endpoints { id url eventTypes enabled
  disabledReason previousSecretExpiresAt deliveries { eventType status attemptCount lastStatusCode lastError
  attempts { statusCode responseExcerpt error } } } } } }"""
DELETE_ENDPOINT = """mutation($id: ID!) { deleteWebhookEndpoint(id: $id) { __typename } }"""
REFUND = """mutation($input: RefundPaymentInput!) { refundPayment(input: $input) { __typename
  ... on Refund { id status amount { amount } creditNoteNumber } ... on UserError { code message } } }"""
EVENTS = """subscription($after: Int) { events(afterSequence: $after) { id type sequence payload } }"""
PLAN_CHANGED = """subscription { planChanged(afterSequence: 0) { id type payload } }"""


def new_card(number: str, cvc: str) -> dict[str, Any]:
    return {"number": number, "expMonth": 12, "expYear": 2030, "cvc": cvc, "holderName": "Erika Mustermann"}


# (number, CVC), a distinct CVC each: the sandbox processor's test cards, and two it does not know.
SAVED = ("4242424242424242", "739")  # checkout, saved
NOT_SAVED = ("5555555555554444", "582")  # checkout, not saved
DECLINED = ("4000000000000002", "264")  # checkout, declined
TOPPED_UP = ("4000056655665556", "417")  # top-up, not saved
THREE_DS = ("4000002760003184", "927")  # checkout through 3-D Secure, saved
ABANDONED = ("4000002760003184", "358")  # a top-up whose 3-D Secure nobody finishes
ADDED = ("5200828282828210", "903")  # addCard, for renewals
DECLINES_LATER = ("4000000000000341", "538")  # saved, declines the renewal
PAYS_INVOICE = ("2223003122003222", "615")  # payInvoice
UNKNOWN = ("4111111111111111", "486")  # a valid number the sandbox does not know: declined
MISTYPED = ("4242424242424241", "694")  # fails the Luhn check: refused
MISPLACED = ("6011111111111117", "146")  # sent where no card goes (GraphQL errors)
MISPLACED_OVER_SOCKET = ("3056930009020004", "271")
CARDS = [
    SAVED,
    NOT_SAVED,
    DECLINED,
    TOPPED_UP,
    THREE_DS,
    ABANDONED,
    ADDED,
    DECLINES_LATER,
    PAYS_INVOICE,
    UNKNOWN,
    MISTYPED,
    MISPLACED,
    MISPLACED_OVER_SOCKET,
]


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Keys configured (encryption, quote signing and a previous one), no background tasks (the
    test runs renewal, delivery and reconciliation itself), the receiver's 127.0.0.1 allowed."""
    return Settings(
        database_url=database_url,
        renewal_interval=0,
        delivery_interval=0,
        reconcile_interval=0,
        webhook_allow=("127.0.0.1",),
        webhook_timeout=2,
        encryption_keys=(new_key(),),
        secret_key=secrets.token_urlsafe(48),
        secret_key_previous=secrets.token_urlsafe(48),
    )


@dataclass
class Run:
    """What the flows share: the gateway, its clock, the app's answers, the scan, the command line."""

    clock: Any
    scan: Scan
    capsys: Any
    gateway: Any = None  # built by the test, inside the capture
    api: Any = None  # an Api while the TestClient runs
    commands: int = 0

    def cli(self, *argv: str, shows_key: str | None = None) -> tuple[int, str]:
        """Run a command; what it printed goes to the scan. ``shows_key``: the kind of key the
        command prints once (its stdout may show it; the key is registered with the scan)."""
        self.capsys.readouterr()
        code = main(list(argv))
        out, err = self.capsys.readouterr()
        self.commands += 1
        name = " ".join(argv[:2] if argv[0] in ("operator-keys", "deliveries") else argv[:1])  # no key
        where = f"command #{self.commands} ({name}) stdout"
        self.scan.add(where, out)
        self.scan.add(f"command #{self.commands} ({name}) stderr", err)
        if shows_key is not None:
            [key] = re.findall(r"\bbg[wo]_[0-9a-f]{12}_[A-Za-z0-9_-]+", out)
            self.scan.key(shows_key, key, shown_in=where)
            return code, key
        return code, out + err


def workspace_with_key(run: Run, name: str, **plan: Any) -> tuple[str, str]:
    with run.gateway.sessions.begin() as session:
        workspace = create_workspace(session, run.gateway.catalog, name, run.clock(), **plan)
        key = issue_api_key(session, workspace.id, run.clock()).secret
    run.scan.key("API key", key)
    return workspace.id, key


# ------------------------------------------------------------------ the flows


def sign_in_flows(run: Run, key: str, operator_key: str, workspace_id: str) -> None:
    api, scan = run.api, run.scan
    _, prefix, secret = key.split("_", 2)
    wrong = {
        "right prefix, wrong secret": f"bgw_{prefix}_{secret[:-4]}AAAA",
        "unknown prefix": f"bgw_{secrets.token_hex(6)}_{secret}",
        "operator key shape": f"bgo_{prefix}_{secret}",
        "truncated": key[:-1],
    }
    for kind, value in wrong.items():
        if kind != "truncated":  # the key itself, less its last character: found as the key
            scan.key(f"API key ({kind})", value)
    for value in [key, *wrong.values()]:
        api.graphql(WORKSPACE, key=value)
    for malformed in ["not-a-key-at-all", f"bgw_{prefix}", f"xyz_{prefix}_{secret}", secret]:
        api.post("malformed key", {"query": WORKSPACE}, key=malformed)
    api.post("Basic scheme", {"query": WORKSPACE}, Authorization=f"Basic {key}")
    assert api.graphql(WORKSPACE, key=operator_key)["__typename"] == "AuthenticationRequired"
    api.graphql(WORKSPACE)  # no key at all

    # A key made on the command line, used, revoked, used again, revoked again.
    code, cli_key = run.cli("create-key", workspace_id, "--scope", "read", shows_key="API key (command line)")
    assert code == 0 and api.graphql(WORKSPACE, key=cli_key)["__typename"] == "Workspace"
    assert run.cli("revoke-key", cli_key)[0] == 0
    assert api.graphql(WORKSPACE, key=cli_key)["__typename"] == "AuthenticationRequired"
    assert run.cli("revoke-key", cli_key)[0] == 2  # no active key: says so
    api.get("invoice PDF, revoked key", "/invoices/x.pdf", key=cli_key)
    api.get("invoice PDF, wrong key", "/invoices/x.pdf", key=wrong["right prefix, wrong secret"])


def webhook_endpoint(run: Run, receiver: Receiver, key: str) -> str:
    """An endpoint to the receiver (its secret shown once, in that answer), and one refused."""
    created = run.api.graphql(CREATE_ENDPOINT, {"url": receiver.url}, key=key)
    assert created["__typename"] == "WebhookEndpointCreated", created
    receiver.secret = created["secret"]
    run.scan.secret("webhook signing secret", created["secret"], shown_in=run.api.last)
    refused = run.api.graphql(CREATE_ENDPOINT, {"url": "http://169.254.169.254/latest/meta-data"}, key=key)
    assert refused["__typename"] != "WebhookEndpointCreated", refused
    return created["endpoint"]["id"]


def expect(answer: dict[str, Any], typename: str) -> dict[str, Any]:
    assert answer["__typename"] == typename, answer
    return answer


def billing_flows(run: Run, key: str) -> dict[str, str]:
    """Billing details, quotes, every way to pay a checkout or a top-up, cards and the renewal
    method; the ids the later flows need."""
    api = run.api
    expect(
        api.graphql(UPDATE_DETAILS, {"input": {**GERMAN_PERSON, "vatId": "DE000"}}, key=key),
        "InvalidBillingDetails",
    )
    expect(api.graphql(UPDATE_DETAILS, {"input": GERMAN_PERSON}, key=key), "BillingDetails")
    api.post("page query", {"query": PAGE, "variables": {"quote": {"planCode": "email"}}}, key=key)
    api.get("page query over GET", "/graphql", key=key, query="{ plans { code } }")

    def checkout(plan: str, payment: dict[str, Any], idempotency_key: str, **sliders: int) -> dict:
        quote = expect(api.graphql(QUOTE, {"input": {"planCode": plan, **sliders}}, key=key), "Quote")
        payment = {"quoteToken": quote["token"], "paymentMethod": payment, "idempotencyKey": idempotency_key}
        return api.graphql(CHECKOUT, {"input": payment}, key=key)

    def top_up(amount: str, payment: dict[str, Any], idempotency_key: str) -> dict:
        payment = {"amount": amount, "paymentMethod": payment, "idempotencyKey": idempotency_key}
        return api.graphql(TOP_UP, {"input": payment}, key=key)

    def card_payment(card: tuple[str, str], save: bool = False) -> dict[str, Any]:
        return {"method": "card", "newCard": new_card(*card), "saveCard": save}

    saved = expect(
        checkout("email", card_payment(SAVED, save=True), "c1", emailCredits=5000), "CheckoutSuccess"
    )
    expect(checkout("email", card_payment(NOT_SAVED), "c2", emailCredits=10000), "CheckoutSuccess")
    expect(checkout("omnichannel", card_payment(DECLINED, save=True), "c3"), "PaymentDeclined")
    expect(top_up("300.00", card_payment(TOPPED_UP), "t1"), "TopUpSuccess")
    expect(
        top_up("20.00", {"method": "card", "cardId": saved["payment"]["card"]["id"]}, "t2"), "TopUpSuccess"
    )
    expect(top_up("20.00", card_payment(UNKNOWN), "t3"), "PaymentDeclined")
    expect(top_up("20.00", card_payment(MISTYPED), "t4"), "PaymentRejected")
    by_balance = expect(checkout("omnichannel", {"method": "balance"}, "c4"), "CheckoutSuccess")

    # 3-D Secure: a top-up whose challenge fails, one left waiting, a checkout that passes.
    pending = expect(top_up("15.00", card_payment(THREE_DS, save=True), "t5"), "PaymentActionRequired")
    expect(api.graphql(CONFIRM, {"id": pending["paymentId"], "answer": "nope"}, key=key), "PaymentDeclined")
    expect(top_up("15.00", card_payment(ABANDONED), "t6"), "PaymentActionRequired")
    pending = checkout("omnichannel", card_payment(THREE_DS, save=True), "c5", messagingCredits=20000)
    expect(pending, "PaymentActionRequired")
    confirmed = api.graphql(CONFIRM, {"id": pending["paymentId"], "answer": "authenticated"}, key=key)
    expect(confirmed, "CheckoutSuccess")
    forged = {"quoteToken": "q1.x.y.z", "paymentMethod": {"method": "balance"}, "idempotencyKey": "c6"}
    expect(api.graphql(CHECKOUT, {"input": forged}, key=key), "InvalidQuoteToken")

    # Cards and the renewal method.
    added = api.graphql(ADD_CARD, {"input": {"card": new_card(*ADDED), "idempotencyKey": "a1"}}, key=key)
    renewal_card = expect(added, "CardAdded")["card"]["id"]
    expect(
        api.graphql(SET_DEFAULT, {"input": {"method": "card", "cardId": renewal_card}}, key=key), "Workspace"
    )
    expect(api.graphql(REMOVE_CARD, {"id": confirmed["payment"]["card"]["id"]}, key=key), "Workspace")

    # A downgrade waits for the renewal; cancelled. Usage, the Custom plan's form, the history.
    expect(checkout("email", {"method": "balance"}, "c7", emailCredits=5000), "CheckoutSuccess")
    api.graphql(CANCEL, key=key)
    api.graphql(RECORD, {"input": {"messageType": "EMAIL", "quantity": 10, "idempotencyKey": "u1"}}, key=key)
    contact = {"contactName": "Erika", "email": "erika@example.de", "company": "Acme", "message": "hi"}
    api.graphql(CUSTOM_QUOTE, {"input": contact}, key=key)
    api.graphql(WORKSPACE, key=key)
    return {
        "card payment": saved["payment"]["id"],
        "balance payment": by_balance["payment"]["id"],
        "pdf": saved["invoice"]["pdfUrl"],
    }


def invoice_flows(run: Run, key: str, other_key: str, operator_key: str, pdf_url: str) -> None:
    path = "/" + pdf_url.split("/", 3)[3] if pdf_url.startswith("http") else pdf_url
    response = run.api.get("invoice PDF", path, key=key)
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/pdf")
    assert "Erika Mustermann" in pdf_text(response.content)  # the PDF's text is what the scan reads
    assert run.api.get("another workspace's invoice", path, key=other_key).status_code == 404
    assert run.api.get("invoice PDF, operator key", path, key=operator_key).status_code == 401
    assert run.api.get("invoice PDF, no key", path).status_code == 401


def operator_flows(run: Run, operator_key: str, workspace_key: str, ids: dict[str, str]) -> None:
    api = run.api

    def refund(key: str, payment: str, idempotency_key: str, **fields: Any) -> dict:
        variables = {
            "input": {
                "paymentId": payment,
                "destination": "METHOD",
                "reason": "goodwill",
                "idempotencyKey": idempotency_key,
                **fields,
            }
        }
        return api.graphql(REFUND, variables, key=key)

    expect(refund(operator_key, ids["card payment"], "r1", amount="5.00"), "Refund")
    expect(refund(operator_key, ids["balance payment"], "r2", destination="BALANCE", amount="1.00"), "Refund")
    expect(refund(workspace_key, ids["card payment"], "r3"), "OperatorKeyRequired")
    # A second operator key, made, revoked (whole, twice) and refused.
    _, second = run.cli("operator-keys", "create", "--name", "night shift", shows_key="operator key (second)")
    assert run.cli("operator-keys", "revoke", second)[0] == 0
    assert run.cli("operator-keys", "revoke", second)[0] == 2
    expect(refund(second, ids["card payment"], "r4"), "OperatorKeyRequired")


def webhook_flows(run: Run, receiver: Receiver, key: str, endpoint_id: str, workspace_id: str) -> None:
    api, gateway, clock = run.api, run.gateway, run.clock
    webhook_delivery.deliver_due(gateway, clock())
    assert receiver.requests and all(r.verified for r in receiver.requests)
    rotated = api.graphql(ROTATE, {"id": endpoint_id}, key=key)
    assert rotated["__typename"] == "WebhookSecretRotated"
    run.scan.secret("webhook signing secret (rotated)", rotated["secret"], shown_in=api.last)
    receiver.secret = rotated["secret"]
    first_event = events(gateway, types.SimpleNamespace(id=workspace_id))[0]
    with gateway.sessions() as session:
        event_id = session.execute(
            text("SELECT id FROM outbox_events WHERE workspace_id = :w AND sequence = :s"),
            {"w": workspace_id, "s": first_event[0]},
        ).scalar_one()
    assert api.graphql(REDELIVER, {"event": event_id}, key=key)["__typename"] == "EventRedelivered"
    webhook_delivery.deliver_due(gateway, clock())
    api.graphql(UPDATE_ENDPOINT, {"id": endpoint_id}, key=key)
    api.graphql(ENDPOINTS, key=key)


def integrity_error(run: Run, key: str, endpoint_id: str) -> None:
    """A webhook endpoint whose insert fails (its id is taken): an internal error, logged with its
    traceback and SQL statement. The statement's parameters hold the new endpoint's secret
    (encrypted); the secret itself was never shown to anyone, so it must be nowhere."""
    never_shown = endpoints.new_secret()
    run.scan.secret("webhook signing secret (never shown)", never_shown)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(endpoints, "new_secret", lambda: never_shown)
        patch.setattr(endpoints, "secrets", types.SimpleNamespace(token_hex=lambda n: endpoint_id))
        errors = run.api.errors(CREATE_ENDPOINT, {"url": "https://93.184.215.14/hooks"}, key=key)
    assert [e["message"] for e in errors] == ["Internal error."]


def graphql_errors(run: Run, key: str) -> None:
    """Card numbers and CVCs in the wrong place: in variables and in the document, over POST and GET."""
    api = run.api
    number, cvc = MISPLACED
    add_card = "mutation($input: AddCardInput!) { addCard(input: $input) { __typename } }"
    top_up = "mutation($input: TopUpInput!) { topUpBalance(input: $input) { __typename } }"
    good = new_card(number, cvc)
    for variables in [
        # an unknown field: "..., found: {...}"; a misspelt one: "Did you mean 'cvc'? Found: {...}"
        {"input": {"card": {**good, "bogus": 1}, "idempotencyKey": "k"}},
        {"input": {"card": {**good, "cvv": cvc}, "idempotencyKey": "k"}},
        {"input": {"card": {**good, "expMonth": number}, "idempotencyKey": "k"}},
        {"input": {"card": {**good, "number": int(number), "cvc": int(cvc)}, "idempotencyKey": "k"}},
        {"input": {"card": f"{number} {cvc}", "idempotencyKey": "k"}},
        {"input": {"card": good, "idempotencyKey": {"cvc": cvc}}},
    ]:
        api.errors(add_card, variables, key=key)
    for variables in [
        {
            "input": {
                "amount": f"{number} cvc {cvc}",
                "idempotencyKey": "k",
                "paymentMethod": {"method": "card"},
            }
        },
        {
            "input": {
                "amount": {"cvc": cvc, "number": number},
                "idempotencyKey": "k",
                "paymentMethod": {"method": "card"},
            }
        },
    ]:
        api.errors(top_up, variables, key=key)
    literal = f'number: "{number}", expMonth: 12, expYear: 2030, cvc: "{cvc}"'
    for document in [
        f'mutation {{ addCard(input: {{card: {{{literal}, bogus: 1}}, idempotencyKey: "k"}}) {{ __typename }} }}',
        f'mutation {{ addCard(input: {{card: {{{literal}, cvv: "{cvc}"}}, idempotencyKey: "k"}}) {{ __typename }} }}',
        f'mutation {{ addCard(input: {{card: {{number: "1", expMonth: "{number}", expYear: 2030, cvc: "{cvc}"}},'
        ' idempotencyKey: "k"}) { __typename } }',
        f"mutation {{ addCard(input: {{card: {{number: {number}, expMonth: 12, expYear: 2030, cvc: {cvc}}},"
        ' idempotencyKey: "k"}) { __typename } }',
        f'mutation {{ topUpBalance(input: {{amount: "cvc {cvc} {number}", idempotencyKey: "k",'
        ' paymentMethod: {method: "card"}}) { __typename } }',
        f'mutation {{ topUpBalance(input: {{amount: {{cvc: "{cvc}"}}, idempotencyKey: "k",'
        ' paymentMethod: {method: "card"}}) { __typename } }',
        f"{{ plans {{ code }} {number} }}",  # a syntax error at the number
        f'{{ plans {{ code }} "cvc {cvc}" }}',
        f'{{ workspace(cvc: "{cvc}", number: "{number}") {{ __typename }} }}',
    ]:
        api.errors(document, key=key)
    # Over GET (the access log keeps no query string), a mutation over GET, bodies that are not GraphQL.
    api.get(
        "GET with a card",
        "/graphql",
        key=key,
        query=f'{{ plans(number: "{number}", cvc: "{cvc}") {{ code }} }}',
    )
    api.get(
        "mutation over GET",
        "/graphql",
        key=key,
        query=f"mutation {{ addCard(input: {{card: {{{literal}}}}}) }}",
    )
    api.post("not JSON", f'{{"number": "{number}", "cvc": "{cvc}"'.encode(), key=key)
    api.post("not an object", json.dumps([number, cvc]).encode(), key=key)
    api.post("form body", f"number={number}&cvc={cvc}".encode(), key=key, **{"Content-Type": "text/plain"})


BOUNDARY = datetime(2026, 12, 10, 9, 30, tzinfo=UTC)  # the end of the first period (conftest's START)


def renewal_flows(run: Run, key: str, dunned_key: str) -> None:
    """The periodic run at the period's end: one renewal paid by card, one declined (dunning
    follows), then the open invoice paid with a new card; an abandoned 3-D Secure expires."""
    run.clock.now = BOUNDARY
    renew(run.gateway)
    run.clock.now = BOUNDARY + timedelta(days=1)
    renew(run.gateway)  # the dunning retry
    reconcile_payments(run.gateway)  # the abandoned 3-D Secure top-up expires
    workspace = run.api.graphql(WORKSPACE, key=dunned_key)
    [open_invoice] = [i for i in workspace["invoices"] if i["status"] == "OPEN"]
    paid = run.api.graphql(
        PAY_INVOICE,
        {
            "input": {
                "invoiceId": open_invoice["id"],
                "paymentMethod": {"method": "card", "newCard": new_card(*PAYS_INVOICE)},
                "idempotencyKey": "p1",
            }
        },
        key=dunned_key,
    )
    assert paid["__typename"] == "InvoicePaid", paid
    run.api.graphql(WORKSPACE, key=key)


# ------------------------------------------------------------------ subscriptions, over uvicorn

PROTOCOL = "graphql-transport-ws"


class Socket:
    """A graphql-transport-ws client; what the server sends (and how it closes) goes to the scan."""

    def __init__(self, run: Run, sockets: contextlib.ExitStack, url: str, label: str, **options: Any) -> None:
        self.run, self.label = run, label
        self.ws = sockets.enter_context(
            connect(url, subprotocols=[PROTOCOL], open_timeout=5, close_timeout=5, **options)
        )
        self.received = 0

    def send(self, message: dict[str, Any]) -> None:
        self.ws.send(json.dumps(message))

    def receive(self, timeout: float = 5.0) -> dict[str, Any] | None:
        """The next message, or None once the server closed the socket."""
        try:
            raw = self.ws.recv(timeout=timeout)
        except ConnectionClosed:
            self.run.scan.add(f"socket {self.label}: close", f"{self.ws.close_code} {self.ws.close_reason}")
            return None
        self.received += 1
        self.run.scan.add(f"socket {self.label}: message #{self.received}", str(raw))
        return json.loads(raw)

    def answer(self, id: str) -> dict[str, Any]:
        """The next message of subscription ``id`` (those of others before it are read too)."""
        while (message := self.receive()) is not None:
            if message.get("id") == id:
                return message
        raise AssertionError(f"the socket closed before subscription {id} was answered")

    def close(self) -> None:
        self.ws.close()


def socket_flows(run: Run, server: ServerThread, key: str, member_id: str) -> None:
    with contextlib.ExitStack() as sockets:
        _socket_flows(run, sockets, f"ws://127.0.0.1:{server.port}/graphql", key, member_id)


def _socket_flows(run: Run, sockets: contextlib.ExitStack, url: str, key: str, member_id: str) -> None:
    # Signed in, every event of the workspace streamed from the start, then planChanged.
    live = Socket(run, sockets, url, "signed in")
    live.send({"type": "connection_init", "payload": {"authorization": f"Bearer {key}"}})
    assert live.receive()["type"] == "connection_ack"
    live.send({"id": "1", "type": "subscribe", "payload": {"query": EVENTS, "variables": {"after": 0}}})
    count = len(events(run.gateway, types.SimpleNamespace(id=member_id)))
    streamed = [live.receive() for _ in range(count)]
    assert all(m["type"] == "next" for m in streamed) and count > 10
    live.send({"id": "1", "type": "complete"})
    live.send({"id": "2", "type": "subscribe", "payload": {"query": PLAN_CHANGED}})
    assert live.answer("2")["type"] == "next"
    live.send({"id": "2", "type": "complete"})
    # Card data in a subscription's variables and in a document that is not a subscription.
    number, cvc = MISPLACED_OVER_SOCKET
    live.send(
        {
            "id": "3",
            "type": "subscribe",
            "payload": {"query": EVENTS, "variables": {"after": {"number": number, "cvc": cvc}}},
        }
    )
    assert live.answer("3")["type"] == "error"
    live.send(
        {
            "id": "4",
            "type": "subscribe",
            "payload": {
                "query": f'mutation {{ addCard(input: {{card: {{number: "{number}", expMonth: 12, expYear: 2030,'
                f' cvc: "{cvc}"}}, idempotencyKey: "w"}}) {{ __typename }} }}'
            },
        }
    )
    assert live.answer("4")["type"] == "error"
    live.close()

    # The key by apiKey; in the URL and an Authorization header too (which the gateway ignores).
    careless = Socket(
        run,
        sockets,
        f"{url}?apiKey={key}",
        "key in the URL",
        additional_headers={"Authorization": f"Bearer {key}"},
    )
    careless.send({"type": "connection_init", "payload": {"apiKey": key}})
    assert careless.receive()["type"] == "connection_ack"
    careless.close()

    # Refused: wrong, malformed, none; and a key revoked while its socket is open.
    _, prefix, secret = key.split("_", 2)
    wrong = f"bgw_{prefix}_{secret[::-1]}"
    run.scan.key("API key (wrong, over the socket)", wrong)
    for label, payload in [
        ("wrong key", {"apiKey": wrong}),
        ("malformed key", {"authorization": f"Bearer {secret}"}),
        ("no key", {}),
    ]:
        refused = Socket(run, sockets, url, label)
        refused.send({"type": "connection_init", "payload": payload})
        assert refused.receive() is None
    with run.gateway.sessions.begin() as session:
        short_lived = issue_api_key(session, member_id, run.clock()).secret
    run.scan.key("API key (revoked while open)", short_lived)
    revoked = Socket(run, sockets, url, "revoked")
    revoked.send({"type": "connection_init", "payload": {"authorization": f"Bearer {short_lived}"}})
    assert revoked.receive()["type"] == "connection_ack"
    with run.gateway.sessions.begin() as session:
        revoke_api_key(session, short_lived, run.clock())
    revoked.send({"id": "1", "type": "subscribe", "payload": {"query": EVENTS}})
    assert revoked.receive() is None


# ------------------------------------------------------------------ a database that cannot be reached


def unreachable_database(run: Run, key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A gateway whose PostgreSQL refuses connections (its start-up given a key, as in
    test_database_faults), asked over HTTP; and a command run against it."""
    password = "pw-" + secrets.token_hex(8)
    run.scan.secret("database password", password)
    url = refused_url(password)
    monkeypatch.setattr("gateway.server.app.configure_encryption", lambda *_: keyring.configure([new_key()]))
    quote_key = secrets.token_urlsafe(48)
    run.scan.secret("quote signing key (unreachable gateway's)", quote_key)
    settings = Settings(
        database_url=url, renewal_interval=0, delivery_interval=0, reconcile_interval=0, secret_key=quote_key
    )
    gateway = build_gateway(settings, clock=run.clock, run_migrations=False, registry=registry_of())
    try:
        with TestClient(create_app(gateway)) as client:
            api = Api(client, run.scan)
            api.count = run.api.count
            down = api.post("database down", {"query": WORKSPACE}, key=key).json()
            assert down["errors"][0]["extensions"]["code"] == "DATABASE_UNAVAILABLE", down
            assert api.get("readiness, database down", "/readyz").status_code == 503
            run.api.count = api.count
    finally:
        gateway.close()
    monkeypatch.setenv("BILLING_GATEWAY_DATABASE_URL", url)
    assert run.cli("renew")[0] != 0


# ------------------------------------------------------------------ the test


def register_stored_keys(gateway: Any, scan: Scan) -> None:
    """The keys the gateway keeps in the database: the encryption key, the quote signing key."""
    with gateway.engine.connect() as connection:
        for value in connection.execute(select(EncryptionKey.key)).scalars():
            scan.secret("encryption key (database)", value)
        for name, value in connection.execute(select(GatewaySecret.name, GatewaySecret.value)).all():
            scan.secret(f"{name} (database)", value)
            scan.secret(f"{name} (database, hex)", base64.urlsafe_b64decode(value).hex())


def test_no_secret_in_logs_or_answers(
    gateway, settings, clock, built_once, logs, capsys, monkeypatch, database_url
):
    # The keys the database keeps are made again under the capture, by the first start-up.
    with gateway.engine.begin() as connection:
        connection.execute(EncryptionKey.__table__.delete())
        connection.execute(GatewaySecret.__table__.delete())
    logs.clear()
    scan = Scan()
    for number, _cvc in CARDS:
        scan.card(number)
    for index, key in enumerate(settings.encryption_keys):
        scan.secret(f"encryption key (setting {index + 1})", key)
    scan.secret("quote signing key (setting)", settings.secret_key)
    scan.secret("previous quote signing key (setting)", settings.secret_key_previous)
    if (password := make_url(database_url).password) is not None:
        scan.secret("database password", password)

    # Start-up: an operator key on the command line (the first start-up: it makes the keys the
    # database keeps), then the gateway as the server builds it.
    monkeypatch.setenv("BILLING_GATEWAY_DATABASE_URL", database_url)
    run = Run(clock=clock, scan=scan, capsys=capsys)
    _, operator_key = run.cli("operator-keys", "create", "--name", "ops", shows_key="operator key")
    run.gateway = build_gateway(settings, clock=clock, run_migrations=False, **built_once.parts(settings))
    receiver = Receiver()
    try:
        with TestClient(create_app(run.gateway)) as client:
            run.api = Api(client, scan)
            member_id, key = workspace_with_key(run, "Acme")
            _, dunned_key = workspace_with_key(run, "Dunned", plan_code="email", email_credits=10000)

            sign_in_flows(run, key, operator_key, member_id)
            endpoint_id = webhook_endpoint(run, receiver, key)
            ids = billing_flows(run, key)
            run.api.graphql(UPDATE_DETAILS, {"input": GERMAN_PERSON}, key=dunned_key)
            added = run.api.graphql(
                ADD_CARD,
                {"input": {"card": new_card(*DECLINES_LATER), "useForRenewal": True, "idempotencyKey": "d1"}},
                key=dunned_key,
            )
            assert added["__typename"] == "CardAdded", added
            invoice_flows(run, key, dunned_key, operator_key, ids["pdf"])
            operator_flows(run, operator_key, key, ids)
            webhook_flows(run, receiver, key, endpoint_id, member_id)
            integrity_error(run, key, endpoint_id)
            graphql_errors(run, key)
            renewal_flows(run, key, dunned_key)
            webhook_delivery.deliver_due(run.gateway, clock())
            run.api.graphql(ENDPOINTS, key=key)
            run.api.graphql(DELETE_ENDPOINT, {"id": endpoint_id}, key=key)
        with ServerThread(run.gateway, log_config=None, log_level="debug", access_log=False) as server:
            socket_flows(run, server, key, member_id)
        run.cli("deliveries", "list")
        unreachable_database(run, key, monkeypatch)
    finally:
        receiver.close()

    # What else was sent out: every webhook request, with its headers.
    for index, request in enumerate(receiver.requests, 1):
        headers = "\n".join(f"{k}: {v}" for k, v in request.headers.items())
        scan.add(f"webhook #{index} to {request.path}", f"{headers}\n\n{request.body.decode()}")
    kept = gateway_records(logs)  # before the test reads the stored keys itself
    register_stored_keys(run.gateway, scan)
    for index, record in enumerate(kept, 1):
        scan.add(f"log record #{index} ({record.name} {record.levelname})", record_text(record))

    # The scan saw what it had to see: the flows ran, SQL was logged (without its parameters),
    # uvicorn and websockets logged at DEBUG, the integrity error was logged with its traceback.
    names = {record.name for record in kept}
    assert {
        "gateway.auth",
        "gateway.access",
        "gateway.api",
        "sqlalchemy.engine.Engine",
        "uvicorn.error",
    } <= names
    logged = "\n".join(text for where, text in scan.texts if where.startswith("log record"))
    assert "INSERT INTO webhook_endpoints" in logged and "IntegrityError" in logged
    assert "[SQL parameters hidden due to hide_parameters=True]" in logged
    for line in [  # the periodic runs, refunds and the refused webhook URL did their work, and logged it
        "NOT PAID (card_declined",
        ": renewed omnichannel",
        "dunning: ",
        "expired: requires_action -> expired",
        "refunds payment",
        "refused by the egress policy",
        "database unavailable (signing in)",
    ]:
        assert line in logged, line
    assert len(receiver.requests) > 20 and all(r.verified or r.status for r in receiver.requests)
    kinds = {secret.kind.split(" (")[0] for secret in scan.secrets}
    assert {
        "API key",
        "operator key",
        "webhook signing secret",
        "card number",
        "encryption key",
        "quote_signing_key",
        "database password",
    } <= kinds, kinds

    # A key planted in the log now must be found: the capture and the scan are live.
    logging.getLogger("gateway.planted").debug("planted: %s", operator_key)
    [planted_record] = [record for record in logs if record.name == "gateway.planted"]
    scan.add("log record planted", record_text(planted_record))
    findings = scan.findings()
    planted = [f for f in findings if "log record planted" in f]
    assert planted, "the scan missed a key planted in the log: it proves nothing"
    leaks = [f for f in findings if f not in planted]
    scanned = (
        f"{len(kept)} log records, {run.api.count} answers, {len(receiver.requests)} webhook requests, "
        f"{sum(where.startswith('socket') for where, _ in scan.texts)} socket messages, "
        f"{run.commands} commands; {len(scan.secrets)} secrets"
    )
    assert not leaks, f"{len(leaks)} leaks (scanned {scanned}):\n" + "\n".join(leaks)


# ------------------------------------------------------------------ the scan itself


KEY = "bgw_0123456789ab_" + "Zq8" * 14 + "x"
OPERATOR = "bgo_ba9876543210_" + "Kp3" * 14 + "y"
WHSEC = "whsec_" + base64.b64encode(bytes(range(32))).decode()


@pytest.mark.parametrize(
    ("planted", "reported"),
    [
        (f"Authorization: Bearer {KEY}", "API key bgw_01234567"),
        (f'< TEXT \'{{"payload": {{"apiKey...{KEY[-20:]}"}}}}\' [114 bytes]', "part of API key"),
        (f"operator {OPERATOR}", "operator key"),
        (f"an unknown key bgw_{'f' * 12}_{'A' * 30}", "an API or operator key"),
        (f'{{"secret": "{WHSEC}"}}', "webhook signing secret whsec_AAECAw"),
        (f"data=b'{WHSEC[10:40]}'", "part of webhook signing secret"),
        ("whsec_" + "Q" * 40, "a webhook signing secret"),
        ("card 4242 4242 4242 4242 declined", "card number 424242424242"),
        ("Row ('5105105105105100',)", "a card number (Luhn)"),
        ("found: {'number': '[digits removed]', 'cvc': '739'}", "a CVC 739"),
        ("cvv=1234", "a CVC 1234"),
        ("encryption key xK3uQ9sV1rT5wZ8yB2nM4pL6jH0gF7dS", "encryption key"),
    ],
)
def test_the_scan_finds_what_it_looks_for(planted, reported):
    scan = Scan()
    scan.key("API key", KEY)
    scan.key("operator key", OPERATOR)
    scan.secret("webhook signing secret", WHSEC, shown_in="the answer that made it")
    scan.card("4242424242424242")
    scan.secret("encryption key", "xK3uQ9sV1rT5wZ8yB2nM4pL6jH0gF7dS")
    scan.add("the answer that made it", f'{{"secret": "{WHSEC}"}}')  # shown once where it was made: fine
    scan.add(
        "an innocent log line", "sign-in refused: key bgw_0123456789ab is unknown; took 0.0123456789012345 s"
    )
    assert scan.findings() == []
    scan.add("log record #7 (gateway.http INFO)", planted)
    [finding] = scan.findings()
    assert finding.startswith(reported) and " in log record #7 (gateway.http INFO): " in finding, finding


def test_a_secret_shown_twice_where_it_is_made_is_a_leak():
    scan = Scan()
    scan.secret("webhook signing secret", WHSEC, shown_in="answer #1")
    scan.add("answer #1", f'{{"secret": "{WHSEC}", "again": "{WHSEC}"}}')
    [finding] = scan.findings()
    assert finding.startswith("webhook signing secret whsec_AAECAw... in answer #1")


def test_the_log_capture_sees_arguments_and_exceptions(logs):
    """What a handler could write is scanned, not only the formatted message: a lazily logged
    object's repr and an exception's chain."""

    class Elided:
        def __init__(self, value: str) -> None:
            self.value = value

        def __str__(self) -> str:
            return self.value[:8] + "..."

        def __repr__(self) -> str:
            return f"Elided({self.value!r})"

    logging.getLogger("gateway.test").debug("frame %s", Elided(KEY))
    try:
        try:
            raise KeyError(OPERATOR)
        except KeyError as error:
            raise RuntimeError("wrapped") from error
    except RuntimeError:
        logging.getLogger("gateway.test").exception("failed")
    scan = Scan()
    scan.key("API key", KEY)
    scan.key("operator key", OPERATOR)
    for index, record in enumerate(gateway_records(logs)):
        scan.add(f"log record #{index}", record_text(record))
    findings = scan.findings()
    assert any(f.startswith("API key") and "log record #0" in f for f in findings), findings
    assert any(f.startswith("operator key") and "log record #1" in f for f in findings), findings
