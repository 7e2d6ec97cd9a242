"""GraphQL over HTTP (https://graphql.github.io/graphql-over-http/), through the real Starlette app."""

from __future__ import annotations

import json

import pytest
from starlette.testclient import TestClient

from gateway.server.settings import Settings

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
PLANS = "{ plans { code } }"
PLAN_CODES = {"plans": [{"code": "free"}, {"code": "email"}, {"code": "omnichannel"}, {"code": "custom"}]}
SELECT = 'mutation { selectPlan(planCode: "free") { __typename } }'


def post(client: TestClient, body: object, *, accept: str | None = GRAPHQL_RESPONSE, **headers: str):
    if accept is not None:
        headers["Accept"] = accept
    return client.post("/graphql", content=json.dumps(body), headers={"Content-Type": JSON, **headers})


def media_of(response) -> str:
    return response.headers["content-type"]


def assert_request_error(response, media: str, status: int) -> dict:
    """A request that was not executed: errors and no `data` key."""
    assert response.status_code == status, response.text
    assert media_of(response) == f"{media}; charset=utf-8"
    body = response.json()
    assert "data" not in body, body
    assert body["errors"] and all(isinstance(e["message"], str) and e["message"] for e in body["errors"])
    return body


# ------------------------------------------------------------- POST and media types


def test_post_application_json_runs_a_query(client):
    response = post(client, {"query": PLANS})
    assert response.status_code == 200
    assert response.json() == {"data": PLAN_CODES}


def test_post_runs_a_mutation(client):
    response = post(client, {"query": SELECT})
    assert response.status_code == 200
    assert response.json() == {"data": {"selectPlan": {"__typename": "PlanSelection"}}}


def test_missing_accept_header_answers_graphql_response_json(client):
    del client.headers["accept"]  # httpx sends */* by default
    response = client.post("/graphql", content=json.dumps({"query": PLANS}), headers={"Content-Type": JSON})
    assert "accept" not in response.request.headers
    assert response.status_code == 200
    assert media_of(response) == f"{GRAPHQL_RESPONSE}; charset=utf-8"
    assert response.json() == {"data": PLAN_CODES}


@pytest.mark.parametrize(
    ("accept", "media"),
    [
        ("", GRAPHQL_RESPONSE),
        (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE}, {JSON}", GRAPHQL_RESPONSE),
        (f"{JSON};q=0.5, {GRAPHQL_RESPONSE}", GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE};charset=utf-8", GRAPHQL_RESPONSE),
        (JSON, JSON),
        ("APPLICATION/JSON", JSON),
        (f"{JSON}; charset=utf-8", JSON),
        ("*/*", JSON),
        ("application/*", JSON),
        (f"{GRAPHQL_RESPONSE};q=0.2, {JSON};q=0.9", JSON),
        (f"text/plain, {JSON}", JSON),
        (f"{GRAPHQL_RESPONSE};q=0, */*", JSON),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", JSON),
    ],
)
def test_accept_chooses_the_response_media_type(client, accept, media):
    response = post(client, {"query": PLANS}, accept=accept)
    assert response.status_code == 200
    assert media_of(response) == f"{media}; charset=utf-8"
    assert response.json() == {"data": PLAN_CODES}


@pytest.mark.parametrize(
    "accept",
    [
        "text/plain",
        "application/xml",
        "text/html",
        "image/*",
        f"{JSON};q=0",
        f"{GRAPHQL_RESPONSE};q=0, {JSON};q=0",
        "application/graphql",
    ],
)
def test_unacceptable_accept_is_406(client, accept):
    response = post(client, {"query": PLANS}, accept=accept)
    assert response.status_code == 406
    assert "errors" in response.json() and "data" not in response.json()


def test_responses_are_utf8_encoded(client):
    response = post(
        client, {"query": 'mutation { selectPlan(planCode: "é–€") { ... on UnknownPlan { planCode } } }'}
    )
    assert media_of(response).endswith("; charset=utf-8")
    assert "é–€".encode() in response.content
    assert response.json() == {"data": {"selectPlan": {"planCode": "é–€"}}}


# ------------------------------------------------------------------- bad requests


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "application/graphql",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/jsonx",
        "application/json-patch+json",
        "text/json",
    ],
)
def test_post_with_another_content_type_is_415(client, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post("/graphql", content=json.dumps({"query": PLANS}).encode(), headers=headers)
    assert response.status_code == 415
    assert "data" not in response.json()


def test_content_type_parameters_and_case_are_accepted(client):
    response = client.post(
        "/graphql",
        content=json.dumps({"query": PLANS}),
        headers={"Content-Type": "Application/JSON; charset=UTF-8"},
    )
    assert response.status_code == 200
    assert response.json() == {"data": PLAN_CODES}


@pytest.mark.parametrize("media", [GRAPHQL_RESPONSE, JSON])
@pytest.mark.parametrize(
    "raw",
    [
        b"{bad json",
        b"",
        b"null",
        b"[]",
        b'[{"query": "{ plans { code } }"}]',
        b'"{ plans { code } }"',
        b"42",
        b"\xff\xfe\xfa",
        b'{"query": "{ plans { code } }"} trailing',
        b'{"query": "{ plans { code } }", "variables": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    ],
)
def test_body_that_is_not_a_json_object_is_400(client, media, raw):
    response = client.post("/graphql", content=raw, headers={"Content-Type": JSON, "Accept": media})
    assert_request_error(response, media, 400)


@pytest.mark.parametrize("media", [GRAPHQL_RESPONSE, JSON])
@pytest.mark.parametrize(
    "body",
    [
        {},
        {"query": None},
        {"query": ""},
        {"query": "   \n"},
        {"query": 5},
        {"query": ["{ plans { code } }"]},
        {"query": {"plans": "code"}},
        {"query": True},
        {"query": PLANS, "variables": []},
        {"query": PLANS, "variables": "{}"},
        {"query": PLANS, "variables": 1},
        {"query": PLANS, "variables": [{"a": 1}]},
        {"query": PLANS, "operationName": 5},
        {"query": PLANS, "operationName": ["A"]},
        {"variables": {}},
        {"query": "{ plans { code } } # \ud800"},
        {"query": PLANS, "variables": {"x": {"y": ["\udfff"]}}},
        {"query": PLANS, "variables": {"\ud800": 1}},
        {"query": PLANS, "operationName": "\ud83d"},
    ],
)
def test_malformed_graphql_request_is_400(client, media, body):
    response = post(client, body, accept=media)
    assert_request_error(response, media, 400)


def test_a_body_orjson_refuses_is_decoded_by_the_standard_library(client):
    """NaN is not JSON, and orjson refuses it; the standard library reads it, as before.
    (tests/test_request_decoding.py compares both decoders' values, integers beyond 64 bits
    included, which orjson would read as floats.)"""
    raw = b'{"query": "{ plans { code } }", "variables": {"n": NaN}}'
    response = client.post("/graphql", content=raw, headers={"Content-Type": JSON})
    assert response.status_code == 200, response.text
    assert {"code": "email"} in response.json()["data"]["plans"]


@pytest.mark.parametrize(
    "raw",
    [
        b'{"query": ',
        b'{"query": "{ plans { code } }", "variables": {"n": ' + b"[" * 5000 + b"]" * 5000 + b"}}",
    ],
    ids=["truncated", "nested-too-deep-for-both"],
)
def test_invalid_json_is_400_for_either_decoder(client, raw):
    response = client.post("/graphql", content=raw, headers={"Content-Type": JSON})
    assert_request_error(response, JSON, 400)
    assert "not valid JSON" in response.json()["errors"][0]["message"]


def test_body_over_the_limit_is_413(client):
    body = {"query": PLANS, "variables": {"padding": "x" * 1_000_001}}
    response = post(client, body)
    assert response.status_code == 413


# --------------------------------------------------------- request errors by media type

REQUEST_ERRORS = [
    pytest.param({"query": "{ plans { code }"}, id="syntax"),
    pytest.param({"query": "{ plans { nope } }"}, id="unknown-field"),
    pytest.param({"query": "{ nope }"}, id="unknown-root-field"),
    pytest.param({"query": "{ plans }"}, id="missing-selection"),
    pytest.param({"query": "query($x: Int!) { plans { code } }"}, id="unused-variable"),
    pytest.param(
        {"query": "mutation($c: String!) { selectPlan(planCode: $c) { __typename } }"}, id="missing-variable"
    ),
    pytest.param(
        {"query": "mutation($c: String!) { selectPlan(planCode: $c) { __typename } }", "variables": {"c": 5}},
        id="wrong-variable-type",
    ),
    pytest.param(
        {
            "query": "mutation($c: String!) { selectPlan(planCode: $c) { __typename } }",
            "variables": {"c": None},
        },
        id="null-variable",
    ),
    pytest.param(
        {"query": "query A { plans { code } } query B { messageTypes { code } }"},
        id="several-operations-without-name",
    ),
    pytest.param({"query": "query A { plans { code } }", "operationName": "B"}, id="unknown-operation-name"),
    pytest.param({"query": "{ plans { code } }", "operationName": "A"}, id="name-of-anonymous-operation"),
    pytest.param({"query": "fragment F on Query { plans { code } }"}, id="no-operation"),
    pytest.param({"query": "subscription { planChanged { __typename } }"}, id="subscription"),
    pytest.param({"query": "{" * 20_000 + "}" * 20_000}, id="deep-document"),
]


@pytest.mark.parametrize("body", REQUEST_ERRORS)
def test_request_error_is_400_without_data_in_graphql_response_json(client, body):
    assert_request_error(post(client, body, accept=GRAPHQL_RESPONSE), GRAPHQL_RESPONSE, 400)


@pytest.mark.parametrize("body", REQUEST_ERRORS)
def test_request_error_is_200_without_data_in_application_json(client, body):
    assert_request_error(post(client, body, accept=JSON), JSON, 200)


def test_validation_error_message_names_the_problem(client):
    body = assert_request_error(post(client, {"query": "{ plans { nope } }"}), GRAPHQL_RESPONSE, 400)
    assert body["errors"][0]["message"].startswith("Cannot query field 'nope' on type 'Plan'.")


def test_operation_name_selects_among_several(client):
    document = "query A { plans { code } } query B { messageTypes { code } }"
    response = post(client, {"query": document, "operationName": "B"})
    assert response.status_code == 200
    assert [t["code"] for t in response.json()["data"]["messageTypes"]][:2] == ["EMAIL", "SMS"]


def test_unknown_and_null_extensions_are_ignored(client):
    response = post(
        client, {"query": PLANS, "variables": None, "operationName": None, "extensions": {"x": 1}}
    )
    assert response.status_code == 200
    assert response.json() == {"data": PLAN_CODES}


def test_unexpected_exceptions_are_masked(client, gateway, caplog):
    class Broken:
        def credits_per_message(self, country, message_type):
            raise RuntimeError("database password is hunter2")

    gateway.rates = Broken()
    query = 'mutation { estimate(input: {credits: 10, messageType: "SMS", country: "DE"}) { __typename } }'
    response = post(client, {"query": query})
    assert response.status_code == 200  # executed: the error has a path
    body = response.json()
    assert body["data"] is None
    assert [e["message"] for e in body["errors"]] == ["Internal error."]
    assert body["errors"][0]["path"] == ["estimate"]
    assert "hunter2" not in response.text and "Traceback" not in response.text
    # ... and logged once for the operator, with the traceback.
    logged = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(logged) == 1 and logged[0].exc_info and "hunter2" in str(logged[0].exc_info[1])


def test_request_errors_are_not_logged_as_server_errors(client, caplog):
    post(client, {"query": "{ plans { nope } }"})
    post(
        client,
        {
            "query": 'mutation($n: Int!) { estimate(input: {credits: $n, messageType: "EMAIL"}) '
            "{ __typename } }",
            "variables": {"n": 2**31},
        },
    )
    assert [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")] == []


# ------------------------------------------------------------------------------ GET


def test_get_runs_a_query(client):
    response = client.get("/graphql", params={"query": PLANS}, headers={"Accept": GRAPHQL_RESPONSE})
    assert response.status_code == 200
    assert media_of(response) == f"{GRAPHQL_RESPONSE}; charset=utf-8"
    assert response.json() == {"data": PLAN_CODES}


def test_get_takes_variables_as_json_in_the_query_string(client, make_workspace):
    member = make_workspace()
    query = "query($w: Boolean!) { plans @include(if: $w) { code } messageTypes @skip(if: $w) { code } }"
    response = client.get(
        "/graphql",
        params={"query": query, "variables": json.dumps({"w": True})},
        headers={"Authorization": f"Bearer {member.key}"},
    )
    assert response.status_code == 200
    assert response.json() == {"data": PLAN_CODES}


def test_get_with_operation_name(client):
    document = "query A { plans { code } } query B { destinations { country } }"
    response = client.get("/graphql", params={"query": document, "operationName": "A"})
    assert response.json() == {"data": PLAN_CODES}


@pytest.mark.parametrize("variables", ["{bad", "[1]", '"x"', "1", "[" * 8_000 + "]" * 8_000])
def test_get_with_bad_variables_is_400(client, variables):
    response = client.get(
        "/graphql", params={"query": PLANS, "variables": variables}, headers={"Accept": GRAPHQL_RESPONSE}
    )
    assert_request_error(response, GRAPHQL_RESPONSE, 400)


def test_get_without_query_is_400(client):
    response = client.get("/graphql", headers={"Accept": GRAPHQL_RESPONSE})
    assert_request_error(response, GRAPHQL_RESPONSE, 400)


@pytest.mark.parametrize("media", [GRAPHQL_RESPONSE, JSON])
@pytest.mark.parametrize(
    "params",
    [
        {"query": SELECT},
        {
            "query": 'mutation M { selectPlan(planCode: "x") { __typename } } query Q { plans { code } }',
            "operationName": "M",
        },
        {
            "query": "mutation($c: String!) { selectPlan(planCode: $c) { __typename } }",
            "variables": '{"c": "free"}',
        },
    ],
)
def test_mutation_over_get_is_405_with_allow_post(client, gateway, media, params):
    response = client.get("/graphql", params=params, headers={"Accept": media})
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert "data" not in response.json()


def test_get_may_select_the_query_of_a_document_with_a_mutation(client):
    document = 'mutation M { selectPlan(planCode: "x") { __typename } } query Q { plans { code } }'
    response = client.get("/graphql", params={"query": document, "operationName": "Q"})
    assert response.status_code == 200
    assert response.json() == {"data": PLAN_CODES}


def test_head_is_a_get_without_body(client):
    response = client.head("/graphql", params={"query": PLANS})
    assert response.status_code == 200
    assert response.content == b""


def test_other_methods_are_405(client):
    assert client.put("/graphql", content=b"{}").status_code == 405
    assert client.delete("/graphql").status_code == 405


# ------------------------------------------------------------------------- GraphiQL


@pytest.mark.parametrize(
    "accept", ["text/html", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"]
)
def test_graphiql_is_served_to_browsers(client, accept):
    response = client.get("/graphql", headers={"Accept": accept})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "graphiql" in response.text.lower()


def test_a_browser_with_a_query_gets_json(client):
    response = client.get(
        "/graphql", params={"query": PLANS}, headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    )
    assert response.status_code == 200
    assert response.json() == {"data": PLAN_CODES}


class TestGraphiQLDisabled:
    @pytest.fixture
    def settings(self, database_url):
        return Settings(database_url=database_url, graphiql=False)

    def test_graphiql_can_be_disabled(self, client):
        response = client.get("/graphql", headers={"Accept": "text/html"})
        assert response.status_code == 404
        assert response.text == "GraphiQL is disabled"
        assert post(client, {"query": PLANS}).json() == {"data": PLAN_CODES}


def test_health(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


TOP_UP_TWICE = """mutation($card: CardInput!) {
  a: topUpBalance(input: {amount: "10", paymentMethod: {method: "card", newCard: $card}, idempotencyKey: "m1"}) {
    __typename ... on TopUpSuccess { balance { amount } } }
  b: topUpBalance(input: {amount: "11", paymentMethod: {method: "card", newCard: $card}, idempotencyKey: "m2"}) {
    __typename ... on TopUpSuccess { balance { amount } } }
}"""


def test_two_mutations_in_one_document_each_answer_with_what_they_committed(client, make_workspace):
    """Mutations run one after the other; each answer reads what its own work committed (the
    request's read session is closed before each use case runs, so no stale snapshot is kept)."""
    from helpers import card

    member = make_workspace()
    response = client.post(
        "/graphql",
        json={"query": TOP_UP_TWICE, "variables": {"card": card()}},
        headers={"Authorization": f"Bearer {member.key}"},
    )
    body = response.json()
    assert "errors" not in body, body
    assert body["data"] == {
        "a": {"__typename": "TopUpSuccess", "balance": {"amount": "10.00"}},
        "b": {"__typename": "TopUpSuccess", "balance": {"amount": "21.00"}},
    }
