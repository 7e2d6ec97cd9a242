"""The `quote` executed in-process, without HTTP: as a mutation by graphql-core (parsing and
validation cached; resolvers, the pricing core, tax and serialisation), and the Billing page's
Order Preview query both by graphql-core and by its compiled plan (gateway.api.lean), in one
group so that pytest-benchmark prints their ratio; and the Billing page's Checkout Now."""

from __future__ import annotations

import itertools

import pytest

from gateway.api.context import Context
from gateway.api.schema import build_schema

from helpers import member_context

GERMAN_DETAILS = """mutation { updateBillingDetails(input: {customerType: PERSON, name: "Erika Mustermann",
  addressLine1: "Heidestraße 17", city: "Köln", postalCode: "51147", country: "DE",
  email: "erika@example.de"}) { __typename } }"""

QUOTE = """
mutation Quote($input: QuoteInput!) {
  quote(input: $input) {
    __typename
    ... on Quote {
      kind
      monthlyLines { description amount { amount currency } }
      dueNow { lines { description amount { amount } } subtotal { amount } taxLines { name rate amount { amount } }
               tax { amount } total { amount } }
      dueAtRenewal { total { amount } }
      changes { timing effectiveAt emailCredits messagingCredits }
      renewalAt expiresAt
    }
    ... on UserError { code message field }
  }
}
"""
INPUT = {
    "planCode": "omnichannel",
    "emailCredits": 50000,
    "messagingCredits": 20000,
    "billingDetails": {"customerType": "PERSON", "country": "DE"},
}


def test_quote_mutation_in_process(benchmark, gateway, make_workspace, clock):
    member = make_workspace(plan_code="email", email_credits=50000)
    clock.advance(days=17)

    def run() -> dict:
        context = member_context(gateway, member.id)
        try:
            result = build_schema().execute_sync(
                QUOTE, variable_values={"input": INPUT}, context_value=context
            )
        finally:
            context.close()
        assert result.errors is None, result.errors
        return result.data

    benchmark.group = "pricing core: Email → Omnichannel quote"  # beside the plain computation
    data = benchmark(run)
    quote = data["quote"]
    assert quote["kind"] == "UPGRADE"
    assert quote["dueAtRenewal"]["total"]["amount"] == "325.47"  # 273.50 + 19 % VAT


def _order_preview(gateway, make_workspace, clock):
    """The Billing page's Order Preview query (a trusted document), its variables and a context
    factory for a workspace on Email."""
    from gateway.api.trusted import registry

    member = make_workspace(plan_code="email", email_credits=50000)
    clock.advance(days=17)
    document = next(d for d in registry().values() if d.operation == "OrderPreview").text
    variables = {"input": INPUT}

    def context() -> Context:
        return member_context(gateway, member.id)

    return document, variables, context


def test_order_preview_query_by_graphql_core(benchmark, gateway, make_workspace, clock):
    document, variables, context = _order_preview(gateway, make_workspace, clock)

    def run() -> dict:
        ctx = context()
        try:
            result = build_schema().execute_sync(
                document, variable_values=variables, context_value=ctx, operation_name="OrderPreview"
            )
        finally:
            ctx.close()
        assert result.errors is None, result.errors
        return result.data

    benchmark.group = "Order Preview query: plan against graphql-core"
    assert benchmark(run)["quote"]["__typename"] == "Quote"


def test_order_preview_query_by_plan(benchmark, gateway, make_workspace, clock):
    from gateway.api import lean, limits

    document, variables, context = _order_preview(gateway, make_workspace, clock)
    schema, executor_class = build_schema()._schema, build_schema().execution_context_class

    def run() -> dict | None:
        ctx = context()
        try:
            return lean.answer(
                limits.checked(document), schema, "OrderPreview", ctx, variables, executor_class
            )
        finally:
            ctx.close()

    benchmark.group = "Order Preview query: plan against graphql-core"
    data = benchmark(run)
    assert data is not None and data["quote"]["__typename"] == "Quote"


CHECKOUT_FUNDS = """mutation { topUpBalance(input: {amount: "5000.00", idempotencyKey: "funds",
  paymentMethod: {method: "card", newCard: {number: "4242424242424242", expMonth: 12, expYear: 2040,
  cvc: "739"}}}) { __typename } }"""
CHECKOUT_QUOTE = (
    """query($input: QuoteInput!) { quote(input: $input) { __typename ... on Quote { token } } }"""
)


@pytest.mark.without_rate_limits
def test_checkout_now_in_process(benchmark, gateway, graphql, make_workspace):
    """The Billing page's Checkout Now (its trusted document: CheckoutSuccess with the whole
    Billing overview), paid from the balance, executed in process: each round buys 1,000 more
    messaging credits with a new quote token and idempotency key (quoted in the round's setup,
    outside the time)."""
    from gateway.api.trusted import registry

    member = make_workspace(plan_code="omnichannel", email_credits=50_000, messaging_credits=20_000)
    assert graphql(GERMAN_DETAILS, key=member.key)["updateBillingDetails"]["__typename"] == "BillingDetails"
    assert graphql(CHECKOUT_FUNDS, key=member.key)["topUpBalance"]["__typename"] == "TopUpSuccess"
    document = next(d for d in registry().values() if d.operation == "CheckoutNow").text
    steps = itertools.count(1)

    def setup() -> tuple[tuple[dict], dict]:
        step = next(steps)
        order = {"planCode": "omnichannel", "emailCredits": 50_000, "messagingCredits": 20_000 + 1_000 * step}
        token = graphql(CHECKOUT_QUOTE, {"input": order}, key=member.key)["quote"]["token"]
        payment = {
            "quoteToken": token,
            "paymentMethod": {"method": "balance"},
            "idempotencyKey": f"step-{step}",
        }
        return ({"input": payment},), {}

    def run(variables: dict) -> dict:
        context = member_context(gateway, member.id)
        try:
            result = build_schema().execute_sync(document, variable_values=variables, context_value=context)
        finally:
            context.close()
        assert result.errors is None, result.errors
        return result.data

    benchmark.group = "Checkout Now in process"
    done = benchmark.pedantic(run, setup=setup, rounds=30, warmup_rounds=2)
    assert done["checkout"]["__typename"] == "CheckoutSuccess"
