"""schema/operations: the example operations frontends copy, valid against the published schema
and answered without errors by a running gateway (schema/operations/README.md has the rules)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    OperationDefinitionNode,
    OperationType,
    Visitor,
    build_schema,
    parse,
    print_ast,
    validate,
    visit,
)

from gateway.server.cli import ensure_demo_workspace

from helpers import GERMAN_PERSON, card

ROOT = Path(__file__).resolve().parent.parent
OPERATIONS = ROOT / "schema" / "operations"
SHARED = OPERATIONS / "fragments.graphql"
FILES = sorted(p for p in OPERATIONS.glob("*.graphql") if p != SHARED)

Run = Callable[[str, dict[str, Any]], dict[str, Any]]  # a GraphQL document and variables -> data


def _quote_token(run: Run, plan: str, **sliders: int) -> str:
    quoted = run(
        "query($input: QuoteInput!) { quote(input: $input) { ... on Quote { token } } }",
        {"input": {"planCode": plan, **sliders}},
    )
    return quoted["quote"]["token"]


def _checkout(run: Run) -> dict[str, Any]:
    """Checkout Now on the Order Preview's token, with a new card (billing details saved first)."""
    run(UPDATE_BILLING_DETAILS, {"input": GERMAN_PERSON})
    return {
        "input": {
            "quoteToken": _quote_token(run, "email", emailCredits=10000),
            "paymentMethod": {"method": "card", "newCard": card()},
            "idempotencyKey": "operations-checkout",
        }
    }


def _challenge(run: Run) -> dict[str, Any]:
    """A top-up with a card that asks for 3-D Secure: the payment ConfirmPayment finishes."""
    asked = run(
        """mutation($input: TopUpInput!) { topUpBalance(input: $input) {
          ... on PaymentActionRequired { paymentId } } }""",
        {
            "input": {
                "amount": "20.00",
                "paymentMethod": {"method": "card", "newCard": card("4000002760003184")},
                "idempotencyKey": "operations-3ds",
            }
        },
    )
    return {"paymentId": asked["topUpBalance"]["paymentId"], "challengeResponse": "authenticated"}


def _scheduled_change(run: Run) -> dict[str, Any]:
    """On Omnichannel, a downgrade to Email waits for the renewal: the change to cancel."""
    run(UPDATE_BILLING_DETAILS, {"input": GERMAN_PERSON})
    for plan, key in (("omnichannel", "operations-up"), ("email", "operations-down")):
        done = run(
            """mutation($input: CheckoutInput!) { checkout(input: $input) { __typename } }""",
            {
                "input": {
                    "quoteToken": _quote_token(run, plan),
                    "paymentMethod": {"method": "card", "newCard": card()},
                    "idempotencyKey": key,
                }
            },
        )
        assert done["checkout"]["__typename"] == "CheckoutSuccess", done
    return {}


UPDATE_BILLING_DETAILS = """mutation($input: UpdateBillingDetailsInput!) {
  updateBillingDetails(input: $input) { __typename } }"""

# Variables for the operations that need some (or a state to act on: a function that prepares it
# through the API and returns the variables); an operation added without them fails below.
VARIABLES: dict[str, dict[str, Any] | Callable[[Run], dict[str, Any]]] = {
    "UpdateBillingDetails": {"input": GERMAN_PERSON},
    "CustomizePlan": {"planCode": "omnichannel"},
    "OrderPreview": {"input": {"planCode": "omnichannel", "emailCredits": 50000, "messagingCredits": 20000}},
    "MessageCalculator": {"input": {"credits": 20000, "messageType": "whatsapp_marketing", "country": "DE"}},
    "CheckoutNow": _checkout,
    "ConfirmPayment": _challenge,
    "TopUp": {
        "input": {
            "amount": "50.00",
            "paymentMethod": {"method": "card", "newCard": card()},
            "idempotencyKey": "operations-top-up",
        }
    },
    "RequestQuote": {
        "input": {"contactName": "Ada Lovelace", "email": "ada@example.com", "company": "Engines Ltd"}
    },
    "CancelScheduledChange": _scheduled_change,
}


def _spreads(node: Any) -> set[str]:
    names: set[str] = set()

    class Spreads(Visitor):
        def enter_fragment_spread(self, spread: FragmentSpreadNode, *_: Any) -> None:
            names.add(spread.name.value)

    visit(node, Spreads())
    return names


def shared_fragments() -> dict[str, FragmentDefinitionNode]:
    document = parse(SHARED.read_text(encoding="utf-8"))
    assert all(isinstance(d, FragmentDefinitionNode) for d in document.definitions), (
        "fragments.graphql holds fragments only"
    )
    return {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}


def document_of(path: Path) -> DocumentNode:
    """The file as a client sends it: its own definitions and the shared fragments it uses."""
    own = parse(path.read_text(encoding="utf-8"))
    shared = shared_fragments()
    defined = {d.name.value for d in own.definitions if isinstance(d, FragmentDefinitionNode)}
    assert not defined & set(shared), f"{path.name} redefines shared fragments {defined & set(shared)}"
    needed: set[str] = set()
    todo = _spreads(own) - defined
    while todo:
        name = todo.pop()
        if name in shared and name not in needed:
            needed.add(name)
            todo |= _spreads(shared[name])
    return DocumentNode(definitions=(*own.definitions, *(shared[n] for n in sorted(needed))))


def operations(path: Path) -> list[OperationDefinitionNode]:
    return [
        d
        for d in parse(path.read_text(encoding="utf-8")).definitions
        if isinstance(d, OperationDefinitionNode)
    ]


def test_the_folder_has_the_example_operations():
    assert [p.name for p in FILES] == [
        "billing_details.graphql",
        "billing_page.graphql",
        "checkout.graphql",
        "custom_quote.graphql",
        "customize_plan.graphql",
        "live_updates.graphql",
        "plans.graphql",
        "scheduled_change.graphql",
        "top_up.graphql",
        "workspace.graphql",
    ]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_each_file_is_valid_against_the_published_schema(path):
    schema = build_schema((ROOT / "schema" / "schema.graphql").read_text(encoding="utf-8"))
    errors = validate(schema, document_of(path))
    assert not errors, "\n".join(
        f"{path.name}: {e.message} (line {', '.join(str(loc.line) for loc in e.locations or [])})"
        for e in errors
    )
    found = operations(path)
    assert found, f"{path.name} has no operation"
    assert all(op.name is not None for op in found), f"{path.name}: every operation needs a name"


def test_operation_names_are_unique_across_the_folder():
    names = [op.name.value for path in FILES for op in operations(path) if op.name]
    assert len(names) == len(set(names)), names


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_each_operation_runs_without_errors_on_a_demo_workspace(client, gateway, path):
    key, _ = ensure_demo_workspace(gateway)  # as `billing-gateway serve --demo` makes it
    query = print_ast(document_of(path))  # what a client sends: the file and the shared fragments it uses

    def run(document: str, variables: dict[str, Any]) -> dict[str, Any]:
        answer = client.post(
            "/graphql",
            json={"query": document, "variables": variables},
            headers={"Authorization": f"Bearer {key}"},
        ).json()
        assert "errors" not in answer, answer
        return answer["data"]

    for operation in operations(path):
        assert operation.name is not None
        name = operation.name.value
        if operation.operation is OperationType.SUBSCRIPTION:
            continue  # over WebSocket: tests/test_subscriptions.py and the Billing page's browser tests
        if operation.variable_definitions or name in VARIABLES:
            assert name in VARIABLES, f"add variables for {name} to VARIABLES in {Path(__file__).name}"
        given = VARIABLES.get(name, {})
        variables = given(run) if callable(given) else given
        response = client.post(
            "/graphql",
            json={"query": query, "operationName": name, "variables": variables},
            headers={"Authorization": f"Bearer {key}"},
        )
        body = response.json()
        assert response.status_code == 200 and "errors" not in body, (path.name, name, body)
        answers = list(body["data"].values())
        assert all(not isinstance(a, dict) or "code" not in a for a in answers), (name, answers)
