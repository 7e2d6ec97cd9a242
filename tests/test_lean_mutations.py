"""A mutation's answer completed by its compiled plan (gateway.api.lean.root_completion) is the
answer graphql-core completes for the same value, and whatever the plan cannot complete is
completed by graphql-core, with its errors, without running the mutation twice.

Each mutation of schema/operations runs on a demo workspace over HTTP; at its root field the
executor also completes the returned value the ordinary way, and the two must be equal (as
JSON text: keys in the same order too)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from graphql import OperationType, print_ast
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from gateway.api import lean
from gateway.api.schema import _Executor
from gateway.server.cli import ensure_demo_workspace

from test_operations import FILES, VARIABLES, document_of, operations

MUTATIONS = [
    (path, operation.name.value)
    for path in FILES
    for operation in operations(path)
    if operation.operation is OperationType.MUTATION and operation.name is not None
]


def runner(client, key: str):
    def run(document: str, variables: dict[str, Any], name: str | None = None) -> dict[str, Any]:
        answer = client.post(
            "/graphql",
            json={"query": document, "variables": variables, "operationName": name},
            headers={"Authorization": f"Bearer {key}"},
        ).json()
        assert "errors" not in answer, answer
        return answer["data"]

    return run


def test_the_folder_has_mutations_to_compare():
    assert {name for _, name in MUTATIONS} >= {
        "CheckoutNow",
        "TopUp",
        "UpdateBillingDetails",
        "ConfirmPayment",
    }


@pytest.mark.parametrize(("path", "name"), MUTATIONS, ids=[name for _, name in MUTATIONS])
def test_each_mutation_of_the_operations_folder_completes_as_graphql_core(
    client, gateway, monkeypatch, path: Path, name: str
):
    key, _ = ensure_demo_workspace(gateway)
    run = runner(client, key)
    given = VARIABLES.get(name, {})
    variables = given(run) if callable(given) else given
    compared: list[str] = []
    real = _Executor._complete_mutation_value

    def comparing(self, return_type, field_details_list, info, path_, result, position_context):
        root = path_.prev is None and return_type is info.return_type
        if root and self.operation.operation is OperationType.MUTATION:
            complete = lean.root_completion(self.schema, self.operation, self.fragment_definitions, path_.key)
            assert complete is not None, f"{name} has no compiled completion"
            planned = complete(self, result, path_)
            ordinary = StrawberryGraphQLCoreExecutionContext.complete_value(
                self, return_type, field_details_list, info, path_, result, position_context
            )
            assert json.dumps(planned) == json.dumps(ordinary)
            compared.append(planned["__typename"])
        return real(self, return_type, field_details_list, info, path_, result, position_context)

    monkeypatch.setattr(_Executor, "_complete_mutation_value", comparing)
    data = run(print_ast(document_of(path)), variables, name)
    assert len(compared) == 1
    answer = next(iter(data.values()))
    assert answer["__typename"] == compared[0]
    assert "code" not in answer, answer  # a success, not a typed error: the whole answer was compared


def checkout_variables(client, gateway) -> tuple[Any, dict[str, Any], str]:
    key, _ = ensure_demo_workspace(gateway)
    run = runner(client, key)
    document = print_ast(document_of(next(p for p, n in MUTATIONS if n == "CheckoutNow")))
    return run, VARIABLES["CheckoutNow"](run), document  # type: ignore[operator]


def test_a_resolver_that_raises_below_the_root_is_reported_by_graphql_core_and_the_work_done_once(
    client, gateway, monkeypatch
):
    """Workspace.billingDetails raises once the checkout is done: the plan gives up on the answer and
    graphql-core completes the same value, reporting the error at its path; the checkout was
    made once (its payment is in the answer, and a second request with the key replays it)."""
    from gateway.api import workspace

    run, variables, document = checkout_variables(client, gateway)
    calls = []

    def broken(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        raise RuntimeError("billing details are broken")

    monkeypatch.setattr(workspace, "billing_details_of", broken)
    answer = client.post(
        "/graphql",
        json={"query": document, "variables": variables, "operationName": "CheckoutNow"},
        headers={"Authorization": f"Bearer {ensure_demo_workspace(gateway)[0]}"},
    ).json()
    assert [error["path"] for error in answer["errors"]] == [["checkout", "workspace", "billingDetails"]]
    assert answer["errors"][0]["message"] == "Internal error."  # masked, as graphql-core's errors are
    done = answer["data"]["checkout"]
    assert done["__typename"] == "CheckoutSuccess" and done["payment"]["status"] == "succeeded"
    assert done["workspace"]["billingDetails"] is None and done["workspace"]["plan"]["code"] == "email"
    assert len(calls) == 2  # the plan's try, then graphql-core's
    monkeypatch.undo()
    again = run(document, variables, "CheckoutNow")["checkout"]
    assert again["payment"]["id"] == done["payment"]["id"]


def test_a_value_the_plan_cannot_complete_is_completed_by_graphql_core(client, gateway, monkeypatch):
    run, variables, document = checkout_variables(client, gateway)
    abandoned = []

    def abandoning(*args: Any) -> Any:
        abandoned.append(1)
        raise lean.Abandoned

    monkeypatch.setattr(lean, "root_completion", lambda *args: abandoning)
    done = run(document, variables, "CheckoutNow")["checkout"]
    assert abandoned == [1]
    assert done["__typename"] == "CheckoutSuccess" and done["workspace"]["plan"]["code"] == "email"


def test_root_completions_are_compiled_once_per_operation_and_bounded(monkeypatch):
    from graphql import parse

    from gateway.api.schema import build_schema

    schema = build_schema()._schema
    monkeypatch.setattr(lean, "MAX_ROOT_COMPLETIONS", 2)
    monkeypatch.setattr(lean, "_ROOT_COMPLETIONS", type(lean._ROOT_COMPLETIONS)())
    documents = [
        parse(f"mutation M{n} {{ a{n}: cancelScheduledChange {{ __typename }} }}").definitions[0]
        for n in range(3)
    ]
    first = lean.root_completion(schema, documents[0], {}, "a0")
    assert first is not None and lean.root_completion(schema, documents[0], {}, "a0") is first
    assert lean.root_completion(schema, documents[0], {}, "missing") is None
    for n, operation in enumerate(documents[1:], start=1):
        assert lean.root_completion(schema, operation, {}, f"a{n}") is not None
    assert len(lean._ROOT_COMPLETIONS) == 2 and id(documents[0]) not in lean._ROOT_COMPLETIONS
