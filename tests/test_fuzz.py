"""Schemathesis against the published SDL (issue 11, part 7): operations generated from
``schema/schema.graphql`` for every root field of Query and Mutation are sent to the real app
(``create_app``, its lifespan running) and no answer may be an internal error: no HTTP 5xx, no
GraphQL error "Internal error." or with an INTERNAL code, no line logged at ERROR or with a
traceback.

Each root field is one test, on a workspace set up to have something behind every id (see
:func:`_prepare`), with no webhook delivery worker and no DNS lookup. Each operation is sent with the workspace's API key (all
scopes), a read-only key, an operator key or no key; its arguments as literals, as variables, or
(for queries) in a GET. Generated arguments mostly take a value that exists (the catalog's plans,
the rate card's countries and message types, the payment methods, the sandbox's test cards, the
set-up's ids, fresh idempotency keys and signed quote tokens), so operations get past "unknown"
into the code behind it; the rest of the time, whatever schemathesis generates.

The suite (and so CI) sends :data:`CI_PER_FIELD` operations per root field with a fixed seed,
the same cases each run (a check that cannot turn red by chance). The long run spreads
``BILLING_GATEWAY_FUZZ_OPERATIONS`` over the root fields with a random seed, and says how many
it sent::

    BILLING_GATEWAY_FUZZ_OPERATIONS=10000 .venv/bin/pytest -p no:cacheprovider tests/test_fuzz.py

schemathesis is the ``fuzz`` extra: without it this module skips, except under CI (``CI=true``).
Cases go through Starlette's TestClient, as in every other test, not schemathesis's own ASGI
transport, which keeps each app's lifespan running until the process ends.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest
from graphql import FieldNode, GraphQLField, OperationDefinitionNode, parse, value_from_ast_untyped
from hypothesis import HealthCheck, given
from hypothesis import strategies as st

from billing_gateway_payment_card.sandbox import AUTHENTICATED
from gateway.events.egress import EgressPolicy
from gateway.server.settings import Settings
from gateway.services.keys import Scope, issue_api_key, issue_operator_key

from helpers import THREE_DS, VISA, billing, card

try:
    import schemathesis
    from schemathesis.config import SchemathesisConfig
    from schemathesis.generation import GenerationMode
    from schemathesis.graphql import nodes
except ImportError:
    if os.environ.get("CI") == "true":
        raise ImportError(
            "CI runs the fuzz test: install the fuzz extra (pip install -e '.[fuzz]')"
        ) from None
    pytest.skip("schemathesis is not installed: pip install -e '.[fuzz]'", allow_module_level=True)

SDL = Path(__file__).resolve().parent.parent / "schema" / "schema.graphql"
OPERATIONS = "BILLING_GATEWAY_FUZZ_OPERATIONS"
CI_PER_FIELD = 20  # 30 root fields: 600 operations, about 20 s
INTERNAL_CODES = {"INTERNAL", "INTERNAL_ERROR"}
OPERATORS_FIELDS = {"Mutation.refundPayment"}


# Read once; each test loads its introspection with its own dictionaries (parsing the SDL again
# took most of a test's time).
PUBLISHED = schemathesis.graphql.from_path(SDL)
ROOT_FIELDS = [result.ok().label for result in PUBLISHED.get_all_operations()]
LONG_RUN = int(os.environ.get(OPERATIONS) or 0)

# The scalars the SDL declares beyond GraphQL's own (DateTime comes with schemathesis). Decimal
# literals as clients send them (strings), and what a client may send by mistake.
schemathesis.graphql.scalar(
    "Decimal",
    st.one_of(
        st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=-(10**6), max_value=10**6)
        .map(str)
        .map(nodes.String),
        st.decimals().map(str).map(nodes.String),
        st.sampled_from(
            ["0", "0.01", "10", "10.00", "1E+3", "1e-9", "-0", "1e999999", "99999999999999999999"]
        ).map(nodes.String),
        st.text(max_size=12).map(nodes.String),
        st.integers().map(nodes.Int),
        st.floats(allow_nan=False, allow_infinity=False).map(nodes.Float),
    ),
)


@pytest.fixture
def settings(database_url: str) -> Settings:
    # No delivery worker: no webhook goes to a generated URL.
    return Settings(database_url=database_url, delivery_interval=0)


def _no_dns(host: str, port: int) -> list[str]:
    """The egress policy's resolver: a webhook host resolves nowhere, without asking DNS (the
    URL is accepted unresolved, as an unknown name is)."""
    raise OSError(-2, "Name or service not known")


@dataclasses.dataclass
class Tally:
    """The operations sent, by root field."""

    sent: Counter[str] = dataclasses.field(default_factory=Counter)
    started: float = dataclasses.field(default_factory=time.monotonic)
    database: str = ""

    def budget(self) -> int:
        """How many operations the next root field may send. In the long run, what is left of
        the total over the fields left: a field whose operations run out early (hypothesis
        stops when it has tried every one, as for ``webhookEventTypes``) leaves its share to
        the next ones."""
        if not LONG_RUN:
            return CI_PER_FIELD
        left = len(ROOT_FIELDS) - len(self.sent)
        return max(1, math.ceil((LONG_RUN - sum(self.sent.values())) / max(left, 1)))


@pytest.fixture(scope="module")
def tally(request: pytest.FixtureRequest) -> Iterator[Tally]:
    """Counts the operations sent; says how many at the end of the module."""
    counts = Tally()
    yield counts
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    total = sum(counts.sent.values())
    if reporter is not None and capture is not None and total:
        fewest = ", ".join(f"{field} {n}" for field, n in sorted(counts.sent.items(), key=lambda i: i[1])[:3])
        with capture.global_and_fixture_disabled():  # teardown output is captured otherwise
            reporter.write_line(
                f"\nfuzz: {total} generated operations sent on {counts.database} in "
                f"{time.monotonic() - counts.started:.0f} s, {len(counts.sent)} root fields (fewest: {fewest})"
            )
    if LONG_RUN and len(counts.sent) == len(ROOT_FIELDS):
        assert total >= LONG_RUN, f"only {total} of the {LONG_RUN} operations asked for were generated"


# ------------------------------------------------------------------ the workspace behind the ids

QUOTE = (
    """mutation($input: QuoteInput!) { quote(input: $input) { __typename ... on Quote { token kind } } }"""
)
CHECKOUT = """mutation($input: CheckoutInput!) { checkout(input: $input) {
  __typename ... on UserError { code message } } }"""
ADD_CARD = """mutation($input: AddCardInput!) { addCard(input: $input) {
  __typename ... on CardAdded { card { id } } ... on UserError { code message } } }"""
TOP_UP = """mutation($input: TopUpInput!) { topUpBalance(input: $input) {
  __typename ... on PaymentActionRequired { paymentId } ... on UserError { code message } } }"""
USAGE = """mutation($input: RecordUsageInput!) { recordUsage(input: $input) {
  __typename ... on UserError { code message } } }"""
WEBHOOK = """mutation($input: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $input) {
  __typename ... on WebhookEndpointCreated { endpoint { id } } ... on UserError { code message } } }"""
CATALOG = """{ plans { code } messageTypes { code } destinations { country } webhookEventTypes
  workspace { ... on Workspace { paymentMethods { code } cards { id } invoices { id }
    payments(first: 100) { ... on PaymentConnection { edges { node { id } } } }
    events(first: 100) { ... on EventConnection { edges { node { id } } } } } } }"""


def _checkout(
    graphql: Callable[..., Any], key: str, plan: str, payment: dict[str, Any], idempotency_key: str
) -> None:
    token = graphql(QUOTE, {"input": {"planCode": plan}}, key=key)["quote"]["token"]
    done = graphql(
        CHECKOUT,
        {"input": {"quoteToken": token, "paymentMethod": payment, "idempotencyKey": idempotency_key}},
        key=key,
    )["checkout"]
    assert done["__typename"] == "CheckoutSuccess", done


def _prepare(graphql: Callable[..., Any], member: Any) -> dict[str, list[Any]]:
    """Give the workspace something behind every id: billing details, a saved card, Omnichannel
    paid by card (an invoice, a payment), a top-up, usage, a downgrade to Email scheduled for the
    renewal, a top-up waiting for 3-D Secure and a webhook endpoint. Returns the values that
    generated arguments may take, by dictionary."""
    key = member.key
    billing(graphql, member)
    added = graphql(ADD_CARD, {"input": {"card": card(), "idempotencyKey": "fuzz-card"}}, key=key)["addCard"]
    assert added["__typename"] == "CardAdded", added
    by_card = {"method": "card", "cardId": added["card"]["id"]}
    _checkout(graphql, key, "omnichannel", by_card, "fuzz-upgrade")
    topped = graphql(
        TOP_UP,
        {"input": {"amount": "25.00", "paymentMethod": by_card, "idempotencyKey": "fuzz-top-up"}},
        key=key,
    )
    assert topped["topUpBalance"]["__typename"] == "TopUpSuccess", topped
    used = graphql(USAGE, {"input": {"messageType": "email", "quantity": 3}}, key=key)["recordUsage"]
    assert used["__typename"] == "UsageRecorded", used
    _checkout(graphql, key, "email", {"method": "balance"}, "fuzz-downgrade")
    waiting = graphql(
        TOP_UP,
        {
            "input": {
                "amount": "10.00",
                "paymentMethod": {"method": "card", "newCard": card(THREE_DS)},
                "idempotencyKey": "fuzz-3ds",
            }
        },
        key=key,
    )["topUpBalance"]
    assert waiting["__typename"] == "PaymentActionRequired", waiting
    endpoint = graphql(WEBHOOK, {"input": {"url": "https://hooks.example.com/billing"}}, key=key)[
        "createWebhookEndpoint"
    ]
    assert endpoint["__typename"] == "WebhookEndpointCreated", endpoint
    tokens = [
        graphql(QUOTE, {"input": {"planCode": plan}}, key=key)["quote"]["token"]
        for plan in ("omnichannel", "email")
    ]
    data = graphql(CATALOG, key=key)
    workspace = data["workspace"]
    used_keys = ["fuzz-card", "fuzz-upgrade", "fuzz-top-up", "fuzz-downgrade", "fuzz-3ds"]
    return {
        "plans": [plan["code"] for plan in data["plans"]],
        "message_types": [kind["code"] for kind in data["messageTypes"]],
        "countries": [d["country"] for d in data["destinations"]] + ["de", "XX", ""],
        "event_types": data["webhookEventTypes"],
        "methods": [method["code"] for method in workspace["paymentMethods"]],
        "cards": [c["id"] for c in workspace["cards"]],
        "invoices": [invoice["id"] for invoice in workspace["invoices"]],
        "payments": [edge["node"]["id"] for edge in workspace["payments"]["edges"]],
        "events": [edge["node"]["id"] for edge in workspace["events"]["edges"]],
        "endpoints": [endpoint["endpoint"]["id"]],
        "quote_tokens": [*tokens, tokens[0][:-2], "q1.x.y.z"],
        "card_numbers": [VISA, THREE_DS, "4000000000000002", "4000000000000341", "4000000000000119", "1234"],
        "months": [1, 12, 0, 13],
        "years": [2026, 2027, 2030, 2099],
        "cvcs": ["739", "1234", "12"],
        "challenges": [AUTHENTICATED, "wrong"],
        "vat_ids": ["DE136695976", "ATU13585627", "FR40303265045", "DE000000000"],
        "volumes": [0, 1, 5, 100, 1000, 10_000, 20_000, 50_000, 100_000, 1_000_000, 2**31 - 1],
        # Keys used by the set-up (replayed or refused), and fresh ones (each is new once).
        "idempotency_keys": used_keys + [f"fuzz-{n}" for n in range(500)],
        "urls": ["https://hooks.example.com/other", "http://hooks.example.com/", "https://127.0.0.1/x"],
        "emails": ["erika@example.de", "sales@example.com"],
    }


# Where each dictionary's values go: `<Type>.<field>.<argument>[.<input field>...]`, `*` any.
BINDINGS = {
    "plans": ["*.*.planCode", "*.*.input.planCode"],
    "message_types": ["*.*.input.messageType"],
    "countries": ["*.*.input.country", "*.*.input.billingDetails.country"],
    "event_types": ["*.*.input.eventTypes[*]"],
    "methods": ["*.*.input.method", "*.*.input.paymentMethod.method"],
    "cards": ["*.*.cardId", "*.*.input.cardId", "*.*.input.paymentMethod.cardId"],
    "invoices": ["*.*.input.invoiceId", "Workspace.invoice.id"],
    "payments": ["*.*.paymentId", "*.*.input.paymentId"],
    "events": ["*.*.eventId"],
    "endpoints": ["Mutation.*.id", "*.*.endpointId"],
    "quote_tokens": ["*.*.input.quoteToken"],
    "card_numbers": ["*.*.input.card.number", "*.*.input.paymentMethod.newCard.number"],
    "months": ["*.*.input.card.expMonth", "*.*.input.paymentMethod.newCard.expMonth"],
    "years": ["*.*.input.card.expYear", "*.*.input.paymentMethod.newCard.expYear"],
    "cvcs": ["*.*.input.card.cvc", "*.*.input.paymentMethod.newCard.cvc"],
    "challenges": ["*.*.challengeResponse"],
    "vat_ids": ["*.*.input.vatId", "*.*.input.billingDetails.vatId"],
    "volumes": [
        "*.*.input.emailCredits",
        "*.*.input.messagingCredits",
        "*.*.input.quantity",
        "*.*.input.credits",
        "*.*.input.expectedEmailCredits",
        "*.*.input.expectedMessagingCredits",
    ],
    "idempotency_keys": ["*.*.input.idempotencyKey"],
    "urls": ["*.*.input.url"],
    "emails": ["*.*.input.email"],
}
EXISTING = 0.7  # how often an argument with a dictionary takes one of its values


def _config(values: dict[str, list[Any]]) -> SchemathesisConfig:
    return SchemathesisConfig.from_dict(
        {
            "dictionaries": {name: {"values": entries} for name, entries in values.items()},
            "parameters": {
                path: {"dictionary": name, "probability": EXISTING}
                for name, paths in BINDINGS.items()
                for path in paths
            },
        }
    )


# ------------------------------------------------------------------ the check


def internal_errors(response: Any) -> list[str]:
    """What in an answer is an internal error (empty if none). Any 5xx counts, a 503
    DATABASE_UNAVAILABLE too: the database is up throughout, so one would be an error misread
    as an outage."""
    if response.status_code >= 500:
        return [f"HTTP {response.status_code}: {response.text[:500]}"]
    try:
        body = response.json()
    except ValueError:
        return []  # not GraphQL's shape (a 4xx of the HTTP layer): not an internal error
    found = []
    for error in (body.get("errors") or []) if isinstance(body, dict) else []:
        code = (error.get("extensions") or {}).get("code")
        if error.get("message") == "Internal error." or code in INTERNAL_CODES:
            found.append(str(error))
    return found


def _logged_errors(records: list[logging.LogRecord]) -> list[str]:
    return [
        f"{r.name} {r.levelname}: {r.getMessage()}"
        for r in records
        if r.levelno >= logging.ERROR or r.exc_info is not None
    ]


# ------------------------------------------------------------------ the test


def as_variables(body: str, field: GraphQLField) -> tuple[str, dict[str, Any]]:
    """The same operation with the root field's arguments sent as variables (JSON values,
    coerced as variables are, a different path from literals), declared with their types."""
    document = parse(body)
    [operation] = document.definitions
    assert isinstance(operation, OperationDefinitionNode)
    root = operation.selection_set.selections[0]
    assert isinstance(root, FieldNode)
    text, variables, declared = body, {}, []
    for argument in sorted(root.arguments or (), key=lambda a: a.value.loc.start, reverse=True):
        name = argument.name.value
        if name not in field.args:
            continue
        variables[name] = value_from_ast_untyped(argument.value)
        declared.append(f"${name}: {field.args[name].type}")
        text = text[: argument.value.loc.start] + f"${name}" + text[argument.value.loc.end :]
    if not declared:
        return body, {}
    selection = text[operation.selection_set.loc.start :]
    return f"{operation.operation.value}({', '.join(declared)}) {selection}", variables


@pytest.mark.parametrize("root_field", ROOT_FIELDS)
def test_no_generated_operation_gets_an_internal_error(
    root_field, gateway, client, graphql, make_workspace, caplog, tally
):
    gateway.egress = dataclasses.replace(EgressPolicy.parse(()), resolver=_no_dns)
    tally.database = gateway.engine.dialect.name
    member = make_workspace()
    with gateway.sessions.begin() as session:
        read_only = issue_api_key(session, member.id, gateway.clock(), scopes={Scope.READ}).secret
        operator = issue_operator_key(session, gateway.clock(), "fuzz").secret
    schema = schemathesis.graphql.from_dict(PUBLISHED.raw_schema, config=_config(_prepare(graphql, member)))
    operation = schema.find_operation_by_label(root_field)
    assert operation is not None
    field = operation.definition.raw
    positive, negative = (
        operation.as_strategy(mode) for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    )
    cases = st.one_of(positive, positive, positive, negative)  # 1 in 4 invalid (refused by validation)
    # Mostly the workspace's key with every scope; also a read-only key, an operator key (mostly,
    # for the operators' field), none and a key that does not exist.
    operators = 6 if root_field in OPERATORS_FIELDS else 1
    callers = st.sampled_from([member.key] * 6 + [read_only, None, "bgw_not_a_key"] + [operator] * operators)
    caplog.set_level(logging.INFO)

    @hypothesis.settings(
        max_examples=tally.budget(),
        derandomize=not LONG_RUN,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases, key=callers, how=st.sampled_from(["literals", "variables", "GET"]))
    def send(case: Any, key: str | None, how: str) -> None:
        caplog.clear()
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        query, variables = as_variables(case.body, field) if how != "literals" else (case.body, {})
        if how == "GET" and root_field.startswith("Query."):  # a mutation over GET is only a 405
            params = {"query": query} | ({"variables": json.dumps(variables)} if variables else {})
            response = client.get("/graphql", params=params, headers=headers)
        else:
            response = client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
        tally.sent[root_field] += 1
        found = internal_errors(response) + _logged_errors(caplog.records)
        assert not found, (query, variables, key and key[:4], found)

    send()
