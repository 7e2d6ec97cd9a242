"""The access log names method, path and status, and never the query string."""

import logging


def test_access_log_never_prints_query_strings(client, caplog):
    caplog.set_level(logging.INFO, logger="gateway.access")
    document = 'mutation { addCard(input: {card: {number: "4242424242424242", cvc: "739"}}) { __typename } }'
    response = client.get("/graphql", params={"query": document})
    assert response.status_code in (400, 405)
    lines = [r.getMessage() for r in caplog.records if r.name == "gateway.access"]
    assert len(lines) == 1 and '"GET /graphql"' in lines[0] and f" {response.status_code} " in lines[0]
    assert "4242" not in caplog.text and "739" not in caplog.text and "query" not in lines[0]
