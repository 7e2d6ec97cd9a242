"""The `quote` mutation executed in-process: GraphQL parsing (cached), validation
(cached), resolvers, the pricing core, tax and serialisation, without HTTP."""

from __future__ import annotations

from gateway.api.context import Context
from gateway.api.schema import build_schema
from gateway.services.keys import ALL_SCOPES

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
        context = Context(
            gateway=gateway,
            now=gateway.clock(),
            workspace_id=member.id,
            scopes=ALL_SCOPES,
            credentials_given=True,
        )
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
