"""Garbage in, for every query and mutation: the answer is a typed error (in `data`, with
`code` and `field`) or a GraphQL request error (400 with graphql-response+json), never a
500, a stack trace or "Internal error.", never an error in the server log, and nothing
is written.

Each case names the outcome it must get, so a typed error that turns into a request
error (or the reverse) fails too.
"""

from __future__ import annotations

import json

import pytest

from helpers import snapshot

GRAPHQL_RESPONSE = "application/graphql-response+json"
INT_MAX = 2**31 - 1

QUOTE = """mutation($input: QuoteInput!) { quote(input: $input) {
  __typename ... on UserError { code field message } } }"""
ESTIMATE = """mutation($input: EstimateInput!) { estimate(input: $input) {
  __typename ... on UserError { code field message } } }"""
SELECT = """mutation($code: String!) { selectPlan(planCode: $code) {
  __typename ... on UserError { code field message } } }"""
WORKSPACE = "{ workspace { __typename ... on UserError { code field message } } }"

INVALID = "invalid"  # a GraphQL request error: not executed, 400, no data


def typed(code: str, *field: str) -> tuple[str, list[str]]:
    return code, list(field)


@pytest.fixture
def keys(make_workspace):
    return {
        "free": make_workspace("Free Ltd").key,
        "omni": make_workspace(
            "Omni Ltd", plan_code="omnichannel", email_credits=50000, messaging_credits=10000
        ).key,
    }


def check(
    client,
    gateway,
    caplog,
    query: str,
    variables: object,
    expected,
    key: str | None = None,
    root: str | None = None,
) -> None:
    before = snapshot(gateway)
    headers = {"Accept": GRAPHQL_RESPONSE, "Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    response = client.post(
        "/graphql", content=json.dumps({"query": query, "variables": variables}), headers=headers
    )
    assert response.status_code != 500
    assert "Internal error." not in response.text and "Traceback" not in response.text
    body = response.json()
    if expected == INVALID:
        assert response.status_code == 400, body
        assert "data" not in body and body["errors"], body
    else:
        assert response.status_code == 200, body
        assert "errors" not in body, body
        result = body["data"][root]
        code, field = expected
        assert (result["code"], result["field"]) == (code, field), result
        assert result["__typename"] != "Quote" and result["message"]
    assert [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")] == []
    assert snapshot(gateway) == before


# -------------------------------------------------------------------------- quote

OMNI = "omnichannel"
DE = {"customerType": "PERSON", "country": "DE"}
NL_COMPANY = {"customerType": "COMPANY", "country": "NL"}
BAD_COUNTRY = typed("UNKNOWN_COUNTRY", "billingDetails", "country")
BAD_VAT_ID = typed("INVALID_VAT_ID", "billingDetails", "vatId")


def billed(**details: object) -> dict:
    """A quote for Omnichannel with these billing details (over a German consumer's)."""
    return {"planCode": OMNI, "billingDetails": {**DE, **details}}


def nl_company(vat_id: object) -> dict:
    return {"planCode": OMNI, "billingDetails": {**NL_COMPANY, "vatId": vat_id}}


QUOTE_CASES = [
    # volumes
    ({"planCode": OMNI, "emailCredits": -5000}, typed("INVALID_VOLUME", "emailCredits")),
    ({"planCode": OMNI, "emailCredits": -1}, typed("INVALID_VOLUME", "emailCredits")),
    ({"planCode": OMNI, "emailCredits": 0}, typed("INVALID_VOLUME", "emailCredits")),
    ({"planCode": OMNI, "emailCredits": 4999}, typed("INVALID_VOLUME", "emailCredits")),
    ({"planCode": OMNI, "emailCredits": 20001}, typed("INVALID_VOLUME", "emailCredits")),
    ({"planCode": OMNI, "emailCredits": 1_005_000}, typed("INVALID_VOLUME", "emailCredits")),
    ({"planCode": OMNI, "emailCredits": INT_MAX}, typed("INVALID_VOLUME", "emailCredits")),
    ({"planCode": OMNI, "emailCredits": -(2**31)}, typed("INVALID_VOLUME", "emailCredits")),
    ({"planCode": OMNI, "messagingCredits": -1000}, typed("INVALID_VOLUME", "messagingCredits")),
    ({"planCode": OMNI, "messagingCredits": 999}, typed("INVALID_VOLUME", "messagingCredits")),
    ({"planCode": OMNI, "messagingCredits": 1500}, typed("INVALID_VOLUME", "messagingCredits")),
    ({"planCode": OMNI, "messagingCredits": 501_000}, typed("INVALID_VOLUME", "messagingCredits")),
    ({"planCode": "email", "messagingCredits": 1000}, typed("INVALID_VOLUME", "messagingCredits")),
    ({"planCode": "email", "messagingCredits": -1}, typed("INVALID_VOLUME", "messagingCredits")),
    ({"planCode": "free", "emailCredits": 2000}, typed("PLAN_NOT_ADJUSTABLE", "emailCredits")),
    ({"planCode": "free", "emailCredits": -1000}, typed("PLAN_NOT_ADJUSTABLE", "emailCredits")),
    ({"planCode": "free", "messagingCredits": 5}, typed("INVALID_VOLUME", "messagingCredits")),
    ({"planCode": OMNI, "emailCredits": 2**31}, INVALID),
    ({"planCode": OMNI, "emailCredits": -(2**31) - 1}, INVALID),
    ({"planCode": OMNI, "emailCredits": 10**30}, INVALID),
    ({"planCode": OMNI, "messagingCredits": 2**63}, INVALID),
    ({"planCode": OMNI, "emailCredits": 20000.5}, INVALID),
    ({"planCode": OMNI, "messagingCredits": 0.1}, INVALID),
    ({"planCode": OMNI, "emailCredits": "20000"}, INVALID),
    ({"planCode": OMNI, "emailCredits": "lots"}, INVALID),
    ({"planCode": OMNI, "emailCredits": ""}, INVALID),
    ({"planCode": OMNI, "emailCredits": True}, INVALID),
    ({"planCode": OMNI, "emailCredits": [20000]}, INVALID),
    ({"planCode": OMNI, "emailCredits": {"value": 20000}}, INVALID),
    ({"planCode": OMNI, "messagingCredits": "NaN"}, INVALID),
    ({"planCode": OMNI, "messagingCredits": "1e400"}, INVALID),
    # plans
    ({"planCode": ""}, typed("UNKNOWN_PLAN", "planCode")),
    ({"planCode": "OMNICHANNEL"}, typed("UNKNOWN_PLAN", "planCode")),
    ({"planCode": " omnichannel "}, typed("UNKNOWN_PLAN", "planCode")),
    ({"planCode": "enterprise"}, typed("UNKNOWN_PLAN", "planCode")),
    ({"planCode": "x" * 10_000}, typed("UNKNOWN_PLAN", "planCode")),
    ({"planCode": "'; DROP TABLE workspaces; --"}, typed("UNKNOWN_PLAN", "planCode")),
    ({"planCode": "custom"}, typed("PLAN_NOT_PURCHASABLE", "planCode")),
    ({"planCode": "custom", "emailCredits": -1}, typed("PLAN_NOT_PURCHASABLE", "planCode")),
    ({"planCode": None}, INVALID),
    ({"planCode": 3}, INVALID),
    ({"planCode": ["omnichannel"]}, INVALID),
    ({"emailCredits": 20000}, INVALID),
    ({}, INVALID),
    ({"planCode": OMNI, "surprise": 1}, INVALID),
    ({"planCode": OMNI, "PlanCode": OMNI}, INVALID),
    # countries
    (billed(country="XX"), BAD_COUNTRY),
    (billed(country=""), BAD_COUNTRY),
    (billed(country="  "), BAD_COUNTRY),
    (billed(country="DEU"), BAD_COUNTRY),
    (billed(country="D"), BAD_COUNTRY),
    (billed(country="D E"), BAD_COUNTRY),
    (billed(country="49"), BAD_COUNTRY),
    (billed(country="Germany"), BAD_COUNTRY),
    (billed(country="ﬆ"), BAD_COUNTRY),
    (billed(country="ＤＥ"), BAD_COUNTRY),
    (billed(country="D\u0000"), BAD_COUNTRY),
    (billed(country="x" * 10_000), BAD_COUNTRY),
    (billed(country=None), INVALID),
    (billed(country=276), INVALID),
    ({"planCode": OMNI, "billingDetails": {"customerType": "PERSON"}}, INVALID),
    # customer types
    (billed(customerType="ALIEN"), INVALID),
    (billed(customerType="person"), INVALID),
    (billed(customerType=None), INVALID),
    (billed(customerType=0), INVALID),
    ({"planCode": OMNI, "billingDetails": {"country": "DE"}}, INVALID),
    # VAT IDs: malformed, bad checksum, another country's
    (nl_company("garbage"), BAD_VAT_ID),
    (nl_company("NL"), BAD_VAT_ID),
    (nl_company("NL123"), BAD_VAT_ID),
    (nl_company("NL123456789B01"), BAD_VAT_ID),
    (nl_company("DE136695976"), BAD_VAT_ID),
    (nl_company("ATU13585627"), BAD_VAT_ID),
    (nl_company("EL094259216"), BAD_VAT_ID),
    (nl_company("🙂"), BAD_VAT_ID),
    (nl_company("\u0000"), BAD_VAT_ID),
    (nl_company("NL" + "9" * 10_000), BAD_VAT_ID),
    (nl_company("NL" + "9" * 31), BAD_VAT_ID),
    (nl_company("NL" + "9" * 4400), BAD_VAT_ID),
    (billed(customerType="PERSON", country="DE", vatId="DE" + "1" * 5000), BAD_VAT_ID),
    (billed(customerType="COMPANY", country="FR", vatId="FR41303265045"), BAD_VAT_ID),
    (billed(customerType="COMPANY", country="DE", vatId="DE136695978"), BAD_VAT_ID),
    (billed(customerType="PERSON", country="DE", vatId="nonsense"), BAD_VAT_ID),
    (nl_company(4495445), INVALID),
    (nl_company(["NL004495445B01"]), INVALID),
    # deeply wrong shapes
    ({"planCode": OMNI, "billingDetails": "DE"}, INVALID),
    ({"planCode": OMNI, "billingDetails": ["DE"]}, INVALID),
    (billed(extra={"deep": [[[{"x": 1}]]]}), INVALID),
    ({"planCode": {"nested": [[[[[[{"planCode": OMNI}]]]]]]}}, INVALID),
]


@pytest.mark.parametrize(("input", "expected"), QUOTE_CASES)
@pytest.mark.parametrize("who", ["free", "omni"])
def test_quote_garbage(client, gateway, caplog, keys, who, input, expected):
    check(client, gateway, caplog, QUOTE, {"input": input}, expected, key=keys[who], root="quote")


@pytest.mark.parametrize(
    "variables",
    [
        None,
        {},
        {"input": None},
        {"input": "omnichannel"},
        {"input": 1},
        {"input": []},
        {"input": [{"planCode": OMNI}]},
        {"input": True},
        {"inputs": {"planCode": OMNI}},
    ],
)
def test_quote_input_of_the_wrong_shape(client, gateway, caplog, keys, variables):
    check(client, gateway, caplog, QUOTE, variables, INVALID, key=keys["omni"])


def test_quote_garbage_without_a_key_asks_for_one(client, gateway, caplog):
    check(
        client,
        gateway,
        caplog,
        QUOTE,
        {"input": {"planCode": OMNI, "emailCredits": -1}},
        typed("AUTHENTICATION_REQUIRED"),
        root="quote",
    )


@pytest.mark.parametrize(
    ("literal", "expected"),
    [
        ('{planCode: "omnichannel", emailCredits: -5}', typed("INVALID_VOLUME", "emailCredits")),
        ('{planCode: "omnichannel", emailCredits: 1.5}', INVALID),
        ('{planCode: "omnichannel", emailCredits: 99999999999}', INVALID),
        ('{planCode: "omnichannel", emailCredits: "20000"}', INVALID),
        ('{planCode: "omnichannel", emailCredits: null}', None),  # null for an optional field: the default
        ("{planCode: omnichannel}", INVALID),
        ("{planCode: null}", INVALID),
        ('{planCode: "omnichannel", billingDetails: {customerType: ALIEN, country: "DE"}}', INVALID),
        ('{planCode: "omnichannel", billingDetails: {customerType: "PERSON", country: "DE"}}', INVALID),
        ('{planCode: "omnichannel", billingDetails: {customerType: PERSON, country: DE}}', INVALID),
        (
            '{planCode: "omnichannel", billingDetails: {customerType: PERSON, country: "DE", vatId: 1}}',
            INVALID,
        ),
        ('"omnichannel"', INVALID),
        ("null", INVALID),
    ],
)
def test_quote_garbage_in_literals(client, gateway, caplog, keys, literal, expected):
    query = (
        f"mutation {{ quote(input: {literal}) {{ __typename ... on UserError {{ code field message }} }} }}"
    )
    if expected is None:  # a valid request: answered with a quote
        response = client.post(
            "/graphql", json={"query": query}, headers={"Authorization": f"Bearer {keys['omni']}"}
        )
        assert response.json() == {"data": {"quote": {"__typename": "Quote"}}}
        return
    check(client, gateway, caplog, query, None, expected, key=keys["omni"], root="quote")


def test_quote_variable_declared_with_the_wrong_type(client, gateway, caplog, keys):
    query = "mutation($input: String!) { quote(input: $input) { __typename } }"
    check(client, gateway, caplog, query, {"input": "omnichannel"}, INVALID, key=keys["omni"])


# ----------------------------------------------------------------------- estimate

SMS_DE = {"credits": 1000, "messageType": "SMS", "country": "DE"}

ESTIMATE_CASES = [
    ({**SMS_DE, "credits": -1}, typed("INVALID_VOLUME", "credits")),
    ({**SMS_DE, "credits": -(2**31)}, typed("INVALID_VOLUME", "credits")),
    ({"credits": -5, "messageType": "EMAIL"}, typed("INVALID_VOLUME", "credits")),
    ({**SMS_DE, "credits": 2**31}, INVALID),
    ({**SMS_DE, "credits": 10**20}, INVALID),
    ({**SMS_DE, "credits": 1.5}, INVALID),
    ({**SMS_DE, "credits": "1000"}, INVALID),
    ({**SMS_DE, "credits": None}, INVALID),
    ({**SMS_DE, "credits": False}, INVALID),
    ({**SMS_DE, "credits": [1000]}, INVALID),
    ({"messageType": "SMS", "country": "DE"}, INVALID),
    # message types
    ({**SMS_DE, "messageType": "FAX"}, typed("UNKNOWN_MESSAGE_TYPE", "messageType")),
    ({**SMS_DE, "messageType": ""}, typed("UNKNOWN_MESSAGE_TYPE", "messageType")),
    ({**SMS_DE, "messageType": "   "}, typed("UNKNOWN_MESSAGE_TYPE", "messageType")),
    ({**SMS_DE, "messageType": "S M S"}, typed("UNKNOWN_MESSAGE_TYPE", "messageType")),
    ({**SMS_DE, "messageType": "ſms"}, typed("UNKNOWN_MESSAGE_TYPE", "messageType")),
    ({**SMS_DE, "messageType": "WHATSAPP"}, typed("UNKNOWN_MESSAGE_TYPE", "messageType")),
    ({**SMS_DE, "messageType": "x" * 10_000}, typed("UNKNOWN_MESSAGE_TYPE", "messageType")),
    ({**SMS_DE, "messageType": "SMS\u0000"}, typed("UNKNOWN_MESSAGE_TYPE", "messageType")),
    (
        {"credits": 10, "messageType": "WHATSAPP_MARKETING", "country": "CN"},
        typed("MESSAGE_TYPE_NOT_OFFERED", "messageType"),
    ),
    (
        {"credits": 10, "messageType": "WHATSAPP_UTILITY", "country": "CN"},
        typed("MESSAGE_TYPE_NOT_OFFERED", "messageType"),
    ),
    (
        {"credits": 10, "messageType": "WHATSAPP_AUTHENTICATION", "country": "CN"},
        typed("MESSAGE_TYPE_NOT_OFFERED", "messageType"),
    ),
    ({**SMS_DE, "messageType": None}, INVALID),
    ({**SMS_DE, "messageType": 1}, INVALID),
    ({**SMS_DE, "messageType": ["SMS"]}, INVALID),
    ({**SMS_DE, "messageType": {"code": "SMS"}}, INVALID),
    # countries
    ({**SMS_DE, "country": "XX"}, typed("UNKNOWN_COUNTRY", "country")),
    ({**SMS_DE, "country": ""}, typed("UNKNOWN_COUNTRY", "country")),
    ({**SMS_DE, "country": " "}, typed("UNKNOWN_COUNTRY", "country")),
    ({**SMS_DE, "country": "DEU"}, typed("UNKNOWN_COUNTRY", "country")),
    ({**SMS_DE, "country": "d e"}, typed("UNKNOWN_COUNTRY", "country")),
    ({**SMS_DE, "country": "ﬆ"}, typed("UNKNOWN_COUNTRY", "country")),
    ({**SMS_DE, "country": "ＤＥ"}, typed("UNKNOWN_COUNTRY", "country")),
    ({**SMS_DE, "country": "x" * 10_000}, typed("UNKNOWN_COUNTRY", "country")),
    ({**SMS_DE, "country": None}, typed("UNKNOWN_COUNTRY", "country")),
    ({"credits": 1000, "messageType": "SMS"}, typed("UNKNOWN_COUNTRY", "country")),
    ({**SMS_DE, "country": 49}, INVALID),
    ({**SMS_DE, "country": ["DE"]}, INVALID),
    # sample texts
    ({**SMS_DE, "sampleText": "a" * 10_000}, typed("TEXT_TOO_LONG", "sampleText")),
    ({**SMS_DE, "sampleText": "😀" * 10_000}, typed("TEXT_TOO_LONG", "sampleText")),
    ({**SMS_DE, "sampleText": "a" * 1601}, typed("TEXT_TOO_LONG", "sampleText")),
    (
        {"credits": 1, "messageType": "EMAIL", "sampleText": "a" * 10_000},
        typed("TEXT_TOO_LONG", "sampleText"),
    ),
    ({**SMS_DE, "sampleText": 161}, INVALID),
    ({**SMS_DE, "sampleText": ["hi"]}, INVALID),
    # shapes
    ({**SMS_DE, "extra": True}, INVALID),
    ({**SMS_DE, "Credits": 5}, INVALID),
]


@pytest.mark.parametrize(("input", "expected"), ESTIMATE_CASES)
@pytest.mark.parametrize("who", [None, "omni"])
def test_estimate_garbage(client, gateway, caplog, keys, who, input, expected):
    check(
        client,
        gateway,
        caplog,
        ESTIMATE,
        {"input": input},
        expected,
        key=keys[who] if who else None,
        root="estimate",
    )


@pytest.mark.parametrize(
    "variables", [None, {"input": None}, {"input": "SMS"}, {"input": [SMS_DE]}, {"input": 0}]
)
def test_estimate_input_of_the_wrong_shape(client, gateway, caplog, variables):
    check(client, gateway, caplog, ESTIMATE, variables, INVALID)


@pytest.mark.parametrize(
    "text_", ["a" * 1600, "😀" * 800, "\u0000" * 100, "\r\n\t" * 300, "\u202e" + "x" * 50]
)
def test_estimate_odd_but_acceptable_texts(client, gateway, caplog, text_):
    before = snapshot(gateway)
    response = client.post(
        "/graphql", json={"query": ESTIMATE, "variables": {"input": {**SMS_DE, "sampleText": text_}}}
    )
    assert response.json() == {"data": {"estimate": {"__typename": "Estimate"}}}
    assert snapshot(gateway) == before


# --------------------------------------------------------------------- selectPlan


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({"code": ""}, typed("UNKNOWN_PLAN", "planCode")),
        ({"code": "FREE"}, typed("UNKNOWN_PLAN", "planCode")),
        ({"code": "free "}, typed("UNKNOWN_PLAN", "planCode")),
        ({"code": "x" * 10_000}, typed("UNKNOWN_PLAN", "planCode")),
        ({"code": "\u0000"}, typed("UNKNOWN_PLAN", "planCode")),
        ({"code": "../../etc/passwd"}, typed("UNKNOWN_PLAN", "planCode")),
        ({"code": None}, INVALID),
        ({"code": 1}, INVALID),
        ({"code": ["free"]}, INVALID),
        ({"code": {"planCode": "free"}}, INVALID),
        ({"code": True}, INVALID),
        ({}, INVALID),
        (None, INVALID),
    ],
)
@pytest.mark.parametrize("who", [None, "free", "omni"])
def test_select_plan_garbage(client, gateway, caplog, keys, who, variables, expected):
    check(
        client,
        gateway,
        caplog,
        SELECT,
        variables,
        expected,
        key=keys[who] if who else None,
        root="selectPlan",
    )


@pytest.mark.parametrize(
    "query",
    [
        "mutation { selectPlan { __typename } }",
        "mutation { selectPlan(planCode: null) { __typename } }",
        "mutation { selectPlan(planCode: free) { __typename } }",
        "mutation { selectPlan(planCode: 5) { __typename } }",
        'mutation { selectPlan(planCode: "free", emailCredits: 5) { __typename } }',
        'mutation { selectPlan(planCode: ["free"]) { __typename } }',
        'mutation { selectPlan(planCode: "free") }',
        'mutation { selectPlan(planCode: "free") { code } }',
    ],
)
def test_select_plan_malformed_documents(client, gateway, caplog, keys, query):
    check(client, gateway, caplog, query, None, INVALID, key=keys["omni"])


# -------------------------------------------------------------- queries with no args


@pytest.mark.parametrize(
    "query",
    [
        '{ workspace(id: "someone-else") { __typename } }',
        "{ workspace }",
        "{ workspace { id } }",  # a union: fields need fragments
        "{ plans(first: 1) { code } }",
        '{ plans(code: "free") { code } }',
        "{ plans { code basePrice } }",
        '{ messageTypes(country: "DE") { code } }',
        "{ destinations(first: -1) { country } }",
        '{ plugins(name: "x") { name } }',
        "{ plans { code: name } plans { code } }",  # one response name for two fields
        'query($n: Int = "x") { plans { code } }',
    ],
)
@pytest.mark.parametrize("who", [None, "omni"])
def test_query_garbage(client, gateway, caplog, keys, who, query):
    check(client, gateway, caplog, query, None, INVALID, key=keys[who] if who else None)


@pytest.mark.parametrize("who", [None, "free"])
def test_workspace_without_a_valid_key_is_typed(client, gateway, caplog, keys, who):
    authorization = keys[who][:-1] if who else None
    check(
        client,
        gateway,
        caplog,
        WORKSPACE,
        None,
        typed("AUTHENTICATION_REQUIRED"),
        key=authorization,
        root="workspace",
    )


@pytest.mark.parametrize(
    "variables",
    [
        {"unused": 1},
        {"input": {"deep": [[[[[[[[[[{"x": None}]]]]]]]]]]}},
        {"": None},
        {"x" * 10_000: "y" * 10_000},
    ],
)
def test_unused_variables_are_ignored(client, gateway, keys, variables):
    response = client.post("/graphql", json={"query": "{ plans { code } }", "variables": variables})
    assert response.status_code == 200
    assert len(response.json()["data"]["plans"]) == 4
