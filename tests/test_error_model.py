"""One error model: the same failure reads the same (GraphQL type, code, field) in every
operation, every domain error has a GraphQL type, and every stored status is an enum."""

from __future__ import annotations

import importlib
import pkgutil
from datetime import timedelta

import pytest

import gateway
from gateway.api.errors import has_translation
from gateway.core.errors import DomainError, ErrorCode

from helpers import GERMAN_PERSON, card, events
from helpers import UPDATE_BILLING_DETAILS as UPDATE_DETAILS

ERROR = "... on UserError { code message field }"
SELECT_PLAN = f"mutation($code: String!) {{ selectPlan(planCode: $code) {{ __typename {ERROR} }} }}"
QUOTE = f"mutation($input: QuoteInput!) {{ quote(input: $input) {{ __typename {ERROR} }} }}"
CHECKOUT = f"mutation($input: CheckoutInput!) {{ checkout(input: $input) {{ __typename {ERROR} }} }}"
TOP_UP = f"mutation($input: TopUpInput!) {{ topUpBalance(input: $input) {{ __typename {ERROR} }} }}"
ADD_CARD = f"mutation($input: AddCardInput!) {{ addCard(input: $input) {{ __typename {ERROR} }} }}"
RECORD_USAGE = (
    f"mutation($input: RecordUsageInput!) {{ recordUsage(input: $input) {{ __typename {ERROR} }} }}"
)
ESTIMATE = f"mutation($input: EstimateInput!) {{ estimate(input: $input) {{ __typename {ERROR} }} }}"

CARD = card()


def _checkout(key: str = "order-1", plan: str = "omnichannel") -> dict:
    return {
        "planCode": plan,
        "expectedTotal": "10.00",
        "quoteExpiresAt": "2026-11-10T10:00:00+00:00",
        "paymentMethod": {"method": "balance"},
        "idempotencyKey": key,
    }


def _all_domain_errors() -> set[type[DomainError]]:
    for module in pkgutil.walk_packages(gateway.__path__, "gateway."):
        if ".migrations" not in module.name and not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    found: set[type[DomainError]] = set()
    todo = [DomainError]
    while todo:
        for sub in todo.pop().__subclasses__():
            found.add(sub)
            todo.append(sub)
    return found


def test_every_domain_error_has_one_graphql_type() -> None:
    errors = _all_domain_errors()
    assert len(errors) > 25  # the walk found the errors of every layer, not just the core's
    # Bases that only group others (they have subclasses and no code of their own) are never raised.
    raised = {e for e in errors if "code" in vars(e) or "error_code" in vars(e) or not e.__subclasses__()}
    missing = sorted(e.__qualname__ for e in raised if not has_translation(e))
    assert missing == []


def test_a_made_up_domain_error_has_no_translation() -> None:
    class Stray(DomainError):
        code = ErrorCode.UNKNOWN_PLAN

    assert not has_translation(Stray)  # so the test above can fail


@pytest.fixture
def complete_details(graphql):
    def complete(member) -> None:
        saved = graphql(UPDATE_DETAILS, {"input": GERMAN_PERSON}, key=member.key)["updateBillingDetails"]
        assert saved["__typename"] == "BillingDetails"

    return complete


@pytest.fixture
def ended(make_workspace, clock, complete_details):
    """A paid workspace whose period has ended and was not renewed yet."""
    member = make_workspace("Ended", plan_code="omnichannel")
    complete_details(member)
    clock.advance(days=31)
    return member


def test_an_ended_period_is_renewal_pending_in_every_operation(graphql, ended) -> None:
    answers = {
        "selectPlan": graphql(SELECT_PLAN, {"code": "omnichannel"}, key=ended.key)["selectPlan"],
        "quote": graphql(QUOTE, {"input": {"planCode": "email"}}, key=ended.key)["quote"],
        "checkout": graphql(CHECKOUT, {"input": _checkout(plan="email")}, key=ended.key)["checkout"],
    }
    for operation, answer in answers.items():
        assert (answer["__typename"], answer["code"], answer["field"]) == (
            "RenewalPending",
            "RENEWAL_PENDING",
            [],
        ), operation


def test_an_unknown_plan_is_the_same_error_in_every_operation(
    graphql, make_workspace, complete_details
) -> None:
    member = make_workspace()
    complete_details(member)
    answers = {
        "selectPlan": graphql(SELECT_PLAN, {"code": "gold"}, key=member.key)["selectPlan"],
        "quote": graphql(QUOTE, {"input": {"planCode": "gold"}}, key=member.key)["quote"],
        "checkout": graphql(CHECKOUT, {"input": _checkout(plan="gold")}, key=member.key)["checkout"],
    }
    for operation, answer in answers.items():
        assert (answer["__typename"], answer["code"], answer["field"]) == (
            "UnknownPlan",
            "UNKNOWN_PLAN",
            ["planCode"],
        ), operation


@pytest.mark.parametrize("key", ["", "   ", "x" * 256, "tab\there"])
def test_a_bad_idempotency_key_is_the_same_error_in_every_operation(graphql, make_workspace, key) -> None:
    member = make_workspace()
    answers = {
        "checkout": graphql(CHECKOUT, {"input": _checkout(key)}, key=member.key)["checkout"],
        "topUpBalance": graphql(
            TOP_UP,
            {
                "input": {
                    "amount": "50.00",
                    "paymentMethod": {"method": "card", "newCard": CARD},
                    "idempotencyKey": key,
                }
            },
            key=member.key,
        )["topUpBalance"],
        "addCard": graphql(ADD_CARD, {"input": {"card": CARD, "idempotencyKey": key}}, key=member.key)[
            "addCard"
        ],
        "recordUsage": graphql(
            RECORD_USAGE,
            {"input": {"messageType": "EMAIL", "quantity": 1, "idempotencyKey": key}},
            key=member.key,
        )["recordUsage"],
    }
    for operation, answer in answers.items():
        assert (answer["__typename"], answer["code"], answer["field"]) == (
            "IdempotencyKeyRejected",
            "INVALID_IDEMPOTENCY_KEY",
            ["idempotencyKey"],
        ), operation


def test_a_reused_idempotency_key_is_the_same_error_in_every_operation(graphql, make_workspace) -> None:
    member = make_workspace()
    usage = {"messageType": "EMAIL", "quantity": 1, "idempotencyKey": "k-1"}
    assert (
        graphql(RECORD_USAGE, {"input": usage}, key=member.key)["recordUsage"]["__typename"]
        == "UsageRecorded"
    )
    reused = graphql(RECORD_USAGE, {"input": {**usage, "quantity": 2}}, key=member.key)["recordUsage"]
    top_up = {
        "amount": "50.00",
        "paymentMethod": {"method": "card", "newCard": CARD},
        "idempotencyKey": "k-2",
    }
    assert graphql(TOP_UP, {"input": top_up}, key=member.key)["topUpBalance"]["__typename"] == "TopUpSuccess"
    reused_top_up = graphql(TOP_UP, {"input": {**top_up, "amount": "60.00"}}, key=member.key)["topUpBalance"]
    add = {"card": CARD, "idempotencyKey": "k-3"}
    assert graphql(ADD_CARD, {"input": add}, key=member.key)["addCard"]["__typename"] == "CardAdded"
    reused_add = graphql(ADD_CARD, {"input": {**add, "useForRenewal": True}}, key=member.key)["addCard"]
    for answer in (reused, reused_top_up, reused_add):
        assert (answer["__typename"], answer["code"], answer["field"]) == (
            "IdempotencyKeyRejected",
            "IDEMPOTENCY_KEY_REUSED",
            ["idempotencyKey"],
        )


@pytest.mark.parametrize(
    ("fields", "typename", "code", "field"),
    [
        ({"messageType": "PIGEON"}, "UnknownMessageType", "UNKNOWN_MESSAGE_TYPE", ["messageType"]),
        ({"messageType": "SMS", "country": "XX"}, "UnknownCountry", "UNKNOWN_COUNTRY", ["country"]),
        (
            {"messageType": "WHATSAPP_UTILITY", "country": "CN"},
            "MessageTypeNotOffered",
            "MESSAGE_TYPE_NOT_OFFERED",
            ["messageType"],
        ),
        ({"messageType": "SMS"}, "UnknownCountry", "UNKNOWN_COUNTRY", ["country"]),
        (
            {"messageType": "SMS", "country": "DE", "sampleText": "a" * 1601},
            "TextTooLong",
            "TEXT_TOO_LONG",
            ["sampleText"],
        ),
    ],
)
def test_estimate_and_usage_validate_a_message_alike(graphql, make_workspace, fields, typename, code, field):
    member = make_workspace("Messaging", plan_code="omnichannel")
    estimate = graphql(ESTIMATE, {"input": {"credits": 100, **fields}})["estimate"]
    usage = graphql(RECORD_USAGE, {"input": {"quantity": 1, **fields}}, key=member.key)["recordUsage"]
    for answer in (estimate, usage):
        assert (answer["__typename"], answer["code"], answer["field"]) == (typename, code, field)
    assert estimate["message"] == usage["message"]


def test_statuses_are_enums_in_one_place() -> None:
    from gateway.core import statuses

    enums = [v for v in vars(statuses).values() if isinstance(v, type) and v.__module__ == statuses.__name__]
    assert {e.__name__ for e in enums} >= {
        "WorkspaceStatus",
        "PaymentStatus",
        "InvoiceStatus",
        "DeliveryStatus",
    }
    assert "refunded" in {s.value for s in statuses.PaymentStatus}  # written by confirmation, listed here


def test_the_period_end_is_kept_to_the_second(graphql, ended, clock) -> None:
    answer = graphql(
        'mutation { selectPlan(planCode: "email") { ... on RenewalPending { periodEnd } } }', key=ended.key
    )["selectPlan"]
    assert answer["periodEnd"] == (clock.now - timedelta(days=1)).isoformat()


# ------------------------------------------------- checks in the order clients have always seen

CHECKOUT_MESSAGE = f"mutation($input: CheckoutInput!) {{ checkout(input: $input) {{ __typename {ERROR} }} }}"


def test_checkout_reports_an_unknown_plan_before_incomplete_billing_details(graphql, make_workspace):
    member = make_workspace()  # no billing details
    answer = graphql(CHECKOUT_MESSAGE, {"input": _checkout(plan="nope")}, key=member.key)["checkout"]
    assert (answer["__typename"], answer["field"]) == ("UnknownPlan", ["planCode"])


def test_quote_reports_an_unknown_plan_before_a_bad_country(graphql, make_workspace):
    member = make_workspace()
    given = {"customerType": "COMPANY", "country": "ZZ"}
    answer = graphql(QUOTE, {"input": {"planCode": "nope", "billingDetails": given}}, key=member.key)["quote"]
    assert (answer["__typename"], answer["field"]) == ("UnknownPlan", ["planCode"])


def test_missing_billing_details_are_named_as_the_api_names_them(graphql, make_workspace):
    member = make_workspace()
    graphql(UPDATE_DETAILS, {"input": {"name": "Erika"}}, key=member.key)
    answer = graphql(CHECKOUT_MESSAGE, {"input": _checkout(plan="email")}, key=member.key)["checkout"]
    assert answer["code"] == "BILLING_DETAILS_INCOMPLETE"
    assert answer["message"] == (
        "checkout needs complete billing details: missing customerType, addressLine1, city, postalCode, country, email"
    )


def test_a_renewal_failed_for_missing_details_names_them_as_the_api_does(
    graphql, gateway, make_workspace, clock
):
    from gateway.services.renewal import renew_due

    member = make_workspace(plan_code="email")
    graphql(UPDATE_DETAILS, {"input": {"name": "Erika", "customerType": "COMPANY"}}, key=member.key)
    renew_due(gateway, clock.advance(days=31))
    failed = [payload for _, kind, payload in events(gateway, member) if kind == "renewal.failed"]
    assert failed[0]["message"] == (
        "billing details are incomplete: addressLine1, city, postalCode, country, email, companyName"
    )


def test_no_status_is_written_or_compared_as_a_bare_string() -> None:
    """Statuses are the enums of gateway.core.statuses: a literal like "refunded" written into or
    compared with a ``status`` is how the allowed values drifted before."""
    import ast
    from pathlib import Path

    root = Path(gateway.__file__).parent
    found = []
    for path in root.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            pairs: list[tuple[ast.AST, ast.AST]] = []
            if isinstance(node, ast.Assign):
                pairs = [(t, node.value) for t in node.targets]
            elif isinstance(node, ast.Compare):
                pairs = [(node.left, c) for c in node.comparators]
            elif isinstance(node, ast.keyword) and node.arg == "status":
                pairs = [(ast.Attribute(value=ast.Name("_"), attr="status"), node.value)]
            for target, value in pairs:
                named_status = (isinstance(target, ast.Attribute) and target.attr == "status") or (
                    isinstance(target, ast.Name) and target.id == "status"
                )
                if named_status and isinstance(value, ast.Constant) and isinstance(value.value, str):
                    found.append(f"{path.relative_to(root)}:{value.lineno}: {value.value!r}")
    assert found == []
