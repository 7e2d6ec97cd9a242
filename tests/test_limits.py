"""Hostile documents are refused before validation work grows with them."""

import pytest

from gateway.api.schema import MAX_DEPTH, MAX_TOKENS


def post(client, query):
    return client.post(
        "/graphql", json={"query": query}, headers={"Accept": "application/graphql-response+json"}
    )


def test_a_document_with_too_many_tokens_is_a_request_error(client):
    query = "{ " + " ".join("plans { code }" for _ in range(MAX_TOKENS // 4 + 1)) + " }"
    response = post(client, query)
    assert response.status_code == 400
    assert "data" not in response.json()
    assert "token" in response.json()["errors"][0]["message"].lower()


@pytest.mark.parametrize("depth", [MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1, 200])
def test_documents_deeper_than_the_limit_are_refused(client, depth):
    nested = "x"
    for _ in range(depth):
        nested = f"a {{ {nested} }}"
    response = post(client, "{ " + nested + " }")
    assert response.status_code == 400  # unknown fields anyway; the depth error is the one we look for
    messages = " ".join(error["message"] for error in response.json()["errors"])
    refused = (
        "exceeds maximum operation depth" in messages or "nested too deeply" in messages
    )  # parser's own cap
    assert refused is (depth > MAX_DEPTH)


def test_real_documents_are_well_within_the_limits(client):
    query = "{ plans { code emailCredits { tiers { fromCredits upTo unitPrice { amount currency } } } } }"
    assert post(client, query).status_code == 200
