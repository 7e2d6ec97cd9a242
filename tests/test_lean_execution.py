"""Queries answered by a compiled plan (gateway.api.lean) answer exactly as graphql-core does.

Each query is sent over HTTP, where a document with a plan skips graphql-core's executor, and
executed in process the ordinary way (Strawberry's ``execute_sync``) with the same key and
clock; the two answers must be equal, and the plan must exist (else this compares graphql-core
with itself). The workspace first goes through the flow's mutations, so lists, unions and
history connections (generic types) have rows to show.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from graphql import OperationType, parse, print_ast, validate
from graphql import build_schema as build_sdl_schema

from gateway.api import limits, trusted
from gateway.api.schema import build_schema

from helpers import GERMAN_PERSON, card, member_context
from test_operations import FILES, ROOT, VARIABLES, document_of, operations

HISTORY = """query History { workspace { __typename ... on Workspace {
  invoiceHistory(first: 5) { ... on InvoiceConnection { edges { cursor node { id number total { amount } } }
    pageInfo { hasNextPage endCursor } } }
  payments(first: 5) { ... on PaymentConnection { edges { node { id status amount { amount currency } } } } }
  balanceTransactions(first: 5) { ... on BalanceTransactionConnection { edges { node { kind amount { amount } } } } }
  usageHistory(first: 5) { ... on UsagePeriodConnection { edges { node { periodStart current credits { kind used } } } } }
  events(first: 5) { ... on EventConnection { edges { node { id sequence type payload } } } }
  same: plan { code } same: plan { name basePrice { amount } }
} } }"""


@pytest.fixture
def member(make_workspace, graphql):
    """A workspace with billing details, a card, a top-up and a checkout behind it."""
    member = make_workspace(plan_code="email", email_credits=10000)
    graphql(
        "mutation($input: UpdateBillingDetailsInput!) { updateBillingDetails(input: $input) { __typename } }",
        {"input": GERMAN_PERSON},
        key=member.key,
    )
    topped = graphql(
        """mutation($input: TopUpInput!) { topUpBalance(input: $input) { __typename } }""",
        {
            "input": {
                "amount": "80.00",
                "paymentMethod": {"method": "card", "newCard": card()},
                "idempotencyKey": "lean-top-up",
            }
        },
        key=member.key,
    )
    assert topped["topUpBalance"]["__typename"] == "TopUpSuccess"
    return member


def ordinary(gateway, member, query: str, name: str | None, variables: dict[str, Any]) -> dict[str, Any]:
    """The answer of graphql-core's executor, in process, for the member's key."""
    context = member_context(gateway, member.id)
    try:
        result = build_schema().execute_sync(
            query, variable_values=variables, context_value=context, operation_name=name
        )
    finally:
        context.close()
    assert not result.errors, result.errors
    return {"data": result.data}


def same(answer: dict[str, Any], expected: dict[str, Any]) -> bool:
    """Equal, keys in the same order too (an answer's keys follow the document's selections)."""
    assert answer == expected
    return json.dumps(answer) == json.dumps(expected)


def planned(query: str, name: str | None) -> bool:
    return limits.checked(query).plans.get((build_schema()._schema, name)) is not None


def over_http(client, member, query: str, name: str | None, variables: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"query": query, "variables": variables}
    if name is not None:
        body["operationName"] = name
    response = client.post("/graphql", json=body, headers={"Authorization": f"Bearer {member.key}"})
    assert response.status_code == 200, response.text
    return response.json()


QUERIES = [
    (path, operation.name.value)
    for path in FILES
    for operation in operations(path)
    if operation.operation is OperationType.QUERY and operation.name is not None
]


@pytest.mark.parametrize(("path", "name"), QUERIES, ids=[f"{p.name}:{n}" for p, n in QUERIES])
def test_each_query_of_the_operations_folder_answers_as_graphql_core(client, gateway, member, path, name):
    query = print_ast(document_of(path))
    given = VARIABLES.get(name, {})
    assert not callable(given), f"{name}: a query's variables are plain values"
    answer = over_http(client, member, query, name, given)
    assert planned(query, name), f"{name} ran without a plan"
    assert same(answer, ordinary(gateway, member, query, name, given))


def test_history_connections_unions_and_merged_aliases_answer_as_graphql_core(client, gateway, member):
    answer = over_http(client, member, HISTORY, None, {})
    assert planned(HISTORY, None)
    assert same(answer, ordinary(gateway, member, HISTORY, None, {}))
    workspace = answer["data"]["workspace"]
    assert workspace["events"]["edges"], "the top-up's events are listed"
    assert set(workspace["same"]) == {"code", "name", "basePrice"}  # one key, merged


@pytest.mark.parametrize(
    "query",
    [
        "query($all: Boolean!) { plans { code name @include(if: $all) } }",  # directives: no plan
        "{ __schema { queryType { name } } plans { code } }",  # introspection: no plan
    ],
)
def test_documents_without_a_plan_run_the_ordinary_way(client, gateway, member, query):
    variables = {"all": False} if "$all" in query else {}
    answer = over_http(client, member, query, None, variables)
    assert not planned(query, None)
    assert same(answer, ordinary(gateway, member, query, None, variables))
    if "$all" in query:
        assert all(set(plan) == {"code"} for plan in answer["data"]["plans"])


def test_wrong_variables_are_reported_as_before(client, member):
    query = "query($input: QuoteInput!) { quote(input: $input) { __typename } }"
    body = {"query": query, "variables": {"input": {"planCode": 7}}}
    headers = {"Authorization": f"Bearer {member.key}", "Accept": "application/graphql-response+json"}
    response = client.post("/graphql", json=body, headers=headers)
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert "planCode" in errors[0]["message"] and "data" not in response.json()


def test_a_refused_scope_is_answered_by_the_plan_as_by_graphql_core(client, gateway, member):
    """The root fields' extension (the scope check) runs on the lean path too."""
    from gateway.services.keys import Scope, issue_api_key

    with gateway.sessions.begin() as session:
        live = issue_api_key(session, member.id, gateway.clock(), name="page", scopes=frozenset({Scope.LIVE}))
    query = "{ workspace { __typename ... on ScopeRequired { code scope } } }"
    response = client.post(
        "/graphql", json={"query": query}, headers={"Authorization": f"Bearer {live.secret}"}
    )
    assert planned(query, None)
    assert response.json() == {
        "data": {"workspace": {"__typename": "ScopeRequired", "code": "SCOPE_REQUIRED", "scope": "read"}}
    }


# ------------------------------------------------------------------ trusted documents


def test_every_operation_of_the_folder_is_a_trusted_document_with_exactly_the_fragments_it_spreads():
    published = build_sdl_schema((ROOT / "schema" / "schema.graphql").read_text(encoding="utf-8"))
    documents = {d.operation: d for d in trusted.registry().values()}
    assert sorted(documents) == sorted(op.name.value for path in FILES for op in operations(path))
    for path in FILES:
        for operation in operations(path):
            name = operation.name.value
            text = documents[name].text
            assert documents[name].id == "sha256:" + hashlib.sha256(text.encode()).hexdigest()
            # The same definitions as test_operations' document for the file, minus the unused ones.
            assert parse(text).definitions[0].name.value == name
            built = {print_ast(d) for d in document_of(path).definitions}
            assert {print_ast(d) for d in parse(text).definitions} <= built
            # Valid alone: every fragment it spreads is there, and none it does not (NoUnusedFragments).
            assert not validate(published, parse(text)), name


def test_a_trusted_document_is_sent_by_its_id_alone(client, member):
    preview = next(d for d in trusted.registry().values() if d.operation == "OrderPreview")
    variables = VARIABLES["OrderPreview"]
    by_text = over_http(client, member, preview.text, "OrderPreview", variables)
    headers = {"Authorization": f"Bearer {member.key}"}
    by_id = client.post(
        "/graphql", json={"documentId": preview.id, "variables": variables}, headers=headers
    ).json()
    apollo = {"persistedQuery": {"version": 1, "sha256Hash": preview.id.removeprefix("sha256:")}}
    by_hash = client.post(
        "/graphql", json={"extensions": apollo, "variables": variables}, headers=headers
    ).json()
    over_get = client.get(
        "/graphql",
        params={"documentId": preview.id, "variables": json.dumps(variables)},
        headers=headers,
    ).json()
    assert by_text["data"]["quote"]["__typename"] == "Quote"
    assert by_id == by_hash == over_get == by_text
    assert planned(preview.text, "OrderPreview") and planned(preview.text, None)  # by text, by id


def test_an_unknown_or_mismatched_document_id_is_a_typed_request_error(client, member):
    headers = {"Authorization": f"Bearer {member.key}", "Accept": "application/graphql-response+json"}
    unknown = client.post("/graphql", json={"documentId": "sha256:" + "0" * 64}, headers=headers)
    assert unknown.status_code == 400
    assert unknown.json()["errors"][0]["extensions"] == {"code": "PERSISTED_QUERY_NOT_FOUND"}
    mismatched = client.post(
        "/graphql", json={"documentId": "sha256:" + "0" * 64, "query": "{ plans { code } }"}, headers=headers
    )
    assert mismatched.status_code == 400
    assert mismatched.json()["errors"][0]["extensions"] == {"code": "DOCUMENT_ID_MISMATCH"}


def test_trusted_documents_stay_parsed_whatever_else_arrives(client, member):
    """A flood of distinct documents evicts the cache's entries, never a trusted document's."""
    preview = next(d for d in trusted.registry().values() if d.operation == "OrderPreview")
    before = limits.checked(preview.text)
    for n in range(limits.CACHE.max_entries + 10):
        limits.checked(f"{{ a{n}: plans {{ code }} }}")
    assert limits.checked(preview.text) is before
    assert len(limits.CACHE) <= limits.CACHE.max_entries


def test_the_manifest_command_prints_every_trusted_document(capsys):
    from gateway.server.cli import main

    assert main(["trusted-documents"]) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert manifest == {d.id: d.text for d in trusted.registry().values()}
    assert main(["trusted-documents", "--ids"]) == 0
    assert "OrderPreview  (customize_plan.graphql)" in capsys.readouterr().out
