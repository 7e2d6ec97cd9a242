"""Hostile documents and bodies are refused before work grows with them, and never hold up
other requests: each probe of issue 11 is refused with a stable code while a parallel
request is answered."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx2 as httpx
import pytest
from graphql import get_introspection_query
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from gateway.api import limits
from gateway.server.http import MAX_BODY, MAX_WEBSOCKET_MESSAGE

from helpers import ServerThread

LIMITS = limits.DEFAULT_LIMITS
GRAPHQL_RESPONSE = "application/graphql-response+json"
PLANS = "{ plans { code } }"
WAIT = 10.0  # seconds any answer may take here: generous, the refusals take milliseconds


def post(client, query):
    return client.post("/graphql", json={"query": query}, headers={"Accept": GRAPHQL_RESPONSE})


def refused(response, code: str) -> str:
    """The refusal's message, after checking it is a request error with ``code``."""
    assert response.status_code == 400, response.text
    body = response.json()
    assert "data" not in body, body
    [error] = body["errors"]
    assert error["extensions"] == {"code": code}, error
    return error["message"]


# ------------------------------------------------------------------ the probes


def nested_fragments(levels: int, operation: str = "query", leaf: str = "Query { plans { code } }") -> str:
    """``...F ...F`` per level: 2**levels fields once expanded, from a document under 1 KB."""
    fragments = "".join(
        f"fragment F{i} on {leaf.split()[0]} {{ ...F{i - 1} ...F{i - 1} }}\n" for i in range(1, levels + 1)
    )
    return f"{operation} {{ ...F{levels} }}\nfragment F0 on {leaf}\n{fragments}"


def chained_fragments(count: int) -> str:
    fragments = "".join(f"fragment F{i} on Query {{ ...F{i - 1} }}\n" for i in range(1, count + 1))
    return f"query {{ ...F{count} }}\nfragment F0 on Query {{ plans {{ code }} }}\n{fragments}"


LARGE = "{ plans { code } }" + " " * 980_000  # under the body limit, far over the document's
NESTED = nested_fragments(20)
CHAINED = chained_fragments(250)
REPEATED = "{" + " plans { code }" * 1200 + " }"


def test_a_large_document_is_refused_before_parsing(client):
    assert len(json.dumps({"query": LARGE})) < MAX_BODY
    assert str(LIMITS.max_bytes) in refused(post(client, LARGE), limits.TOO_LARGE)


def test_a_document_with_too_many_tokens_is_refused(client):
    query = "{ " + " ".join(f"a{i}: plans {{ code }}" for i in range(LIMITS.max_tokens // 5 + 1)) + " }"
    assert len(query.encode()) < LIMITS.max_bytes
    assert "tokens" in refused(post(client, query), limits.TOO_LARGE)


def test_nested_fragments_are_refused_without_expanding_them(client):
    assert len(NESTED) < 1024
    message = refused(post(client, NESTED), limits.TOO_COMPLEX)
    assert "fragments expanded" in message


def test_a_long_fragment_chain_is_refused_not_a_recursion_error(client):
    message = refused(post(client, CHAINED), limits.TOO_COMPLEX)
    assert "chains more than" in message and "recursion" not in message


def test_repeated_fields_are_refused(client):
    assert "repeated more than" in refused(post(client, REPEATED), limits.TOO_COMPLEX)


def test_a_fragment_cycle_is_refused(client):
    query = "query { ...A } fragment A on Query { plans { ...B } } fragment B on Plan { code ...C } "
    query += "fragment C on Plan { ...B }"
    assert "cycle" in refused(post(client, query), limits.TOO_COMPLEX)


def test_a_fragment_defined_twice_is_measured_as_both(client):
    # graphql-core's rules read the last definition of a name: the hostile one must count.
    fragments = "".join(
        f"fragment F{i} on Query {{ plans {{ code }} }} fragment F{i} on Query {{ ...F{i - 1} ...F{i - 1} }}\n"
        for i in range(1, 21)
    )
    query = "query { ...F20 } fragment F0 on Query { plans { code } }\n" + fragments
    assert "fragments expanded" in refused(post(client, query), limits.TOO_COMPLEX)


def test_too_many_aliases_are_refused(client):
    query = "{ " + " ".join(f"a{i}: plans {{ code }}" for i in range(LIMITS.max_aliases + 1)) + " }"
    assert "aliases" in refused(post(client, query), limits.TOO_COMPLEX)


@pytest.mark.parametrize("depth", [LIMITS.max_depth - 1, LIMITS.max_depth, LIMITS.max_depth + 1, 200])
def test_documents_deeper_than_the_limit_are_refused(client, depth):
    nested = "x"
    for _ in range(depth):
        nested = f"a {{ {nested} }}"
    response = post(client, "{ " + nested + " }")
    assert response.status_code == 400  # unknown fields anyway; the depth error is the one we look for
    messages = " ".join(error["message"] for error in response.json()["errors"])
    too_deep = "exceeds maximum operation depth" in messages or "nested too deeply" in messages
    assert too_deep is (depth > LIMITS.max_depth)


def test_depth_counts_fragments_once_expanded(client):
    def level(i: int) -> str:
        return f"fragment L{i} on Plan {{ code ...L{i + 1} }}"  # no field nests: depth stays

    shallow = (
        "{ plans { ...L0 } } " + " ".join(level(i) for i in range(10)) + " fragment L10 on Plan { code }"
    )
    assert post(client, shallow).status_code == 200
    deep = "{ workspace { ...W } } fragment W on Workspace { " + "plan { " * 12 + "code" + " }" * 12 + " }"
    assert "depth" in refused(post(client, deep), limits.TOO_COMPLEX)


def test_real_documents_are_well_within_the_limits(client):
    query = "{ plans { code emailCredits { tiers { fromCredits upTo unitPrice { amount currency } } } } }"
    assert post(client, query).status_code == 200
    introspection = post(client, get_introspection_query(descriptions=True, input_value_deprecation=True))
    assert introspection.status_code == 200 and "errors" not in introspection.json()


def test_legacy_json_clients_get_the_refusal_with_200(client):
    response = client.post("/graphql", json={"query": NESTED}, headers={"Accept": "application/json"})
    assert response.status_code == 200
    assert response.json()["errors"][0]["extensions"] == {"code": limits.TOO_COMPLEX}


# ------------------------------------------------------------------ the cache


def test_the_document_cache_stays_within_its_bounds():
    cache = limits.CACHE
    cache.clear()
    for i in range(2000):
        limits.checked(f"{{ plans {{ code }} a{i}: plans {{ code }} }}")
        assert len(cache) <= cache.max_entries and cache.chars <= cache.max_chars
    assert len(cache) == cache.max_entries
    big = "{ plans { code } }" + " " * (LIMITS.max_bytes - 100)
    for i in range(cache.max_chars // len(big) + 5):
        limits.checked(big + "#" * i)  # each a distinct, large document
        assert cache.chars <= cache.max_chars
    assert len(cache) < cache.max_chars // len(big) + 1


def test_a_repeated_document_is_checked_and_validated_once(client):
    limits.CACHE.clear()
    assert post(client, PLANS).status_code == 200
    entry = limits.CACHE.get(PLANS)
    assert entry is not None and entry.document is not None and len(entry.validations) == 1
    assert post(client, PLANS).status_code == 200
    assert limits.CACHE.get(PLANS) is entry and len(entry.validations) == 1  # the schema's rules: one key


# ------------------------------------------------------------------ over a real server


@pytest.fixture
def server(gateway) -> Iterator[ServerThread]:
    with ServerThread(gateway) as running:
        yield running


def answered_meanwhile(server: ServerThread, hostile: Callable[[], Any]) -> Any:
    """Run ``hostile`` in a thread while a plain request is sent; the plain request must be
    answered (in full, within ``WAIT``), and ``hostile``'s result is returned."""
    outcome: dict[str, Any] = {}
    started = threading.Event()

    def run() -> None:
        started.set()
        try:
            outcome["result"] = hostile()
        except BaseException as error:  # reported to the test below
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    started.wait(WAIT)
    with httpx.Client(base_url=server.url, timeout=WAIT) as plain:
        response = post(plain, PLANS)
    assert response.status_code == 200 and response.json()["data"]["plans"]
    thread.join(WAIT)
    assert not thread.is_alive(), "the hostile request was not answered"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


@pytest.mark.parametrize(
    "query", [LARGE, NESTED, CHAINED, REPEATED], ids=["large", "nested", "chain", "repeated"]
)
def test_a_hostile_document_over_http_does_not_hold_up_others(server, query):
    def hostile() -> httpx.Response:
        with httpx.Client(base_url=server.url, timeout=WAIT) as client:
            return post(client, query)

    response = answered_meanwhile(server, hostile)
    assert response.json()["errors"][0]["extensions"]["code"] in (limits.TOO_LARGE, limits.TOO_COMPLEX)


def subscribe_over_socket(server: ServerThread, key: str, query: str) -> dict[str, Any]:
    """Subscribe as the key's workspace; the first answer to the subscribe."""
    with connect(
        f"ws://127.0.0.1:{server.port}/graphql",
        subprotocols=["graphql-transport-ws"],
        open_timeout=WAIT,
        close_timeout=WAIT,
    ) as ws:
        ws.send(json.dumps({"type": "connection_init", "payload": {"apiKey": key}}))
        assert json.loads(ws.recv(timeout=WAIT))["type"] == "connection_ack"
        ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query}}))
        answer = json.loads(ws.recv(timeout=WAIT))
        ws.send(json.dumps({"type": "ping"}))
        assert json.loads(ws.recv(timeout=WAIT))["type"] == "pong"  # the socket still serves
        return answer


SUBSCRIPTION_NESTED = nested_fragments(20, "subscription", "Subscription { events { id } }")


@pytest.mark.parametrize(
    ("query", "code"),
    [
        (SUBSCRIPTION_NESTED, limits.TOO_COMPLEX),
        ("subscription { events { id } }" + " " * LIMITS.max_bytes, limits.TOO_LARGE),
    ],
    ids=["nested", "large"],
)
def test_a_hostile_subscribe_is_answered_with_an_error_and_holds_up_nothing(
    server, make_workspace, query, code
):
    member = make_workspace("Acme")
    answer = answered_meanwhile(server, lambda: subscribe_over_socket(server, member.key, query))
    assert answer["type"] == "error" and answer["id"] == "1", answer
    assert answer["payload"][0]["extensions"] == {"code": code}


def test_an_oversize_websocket_message_closes_the_socket(server):
    with connect(
        f"ws://127.0.0.1:{server.port}/graphql",
        subprotocols=["graphql-transport-ws"],
        open_timeout=WAIT,
        close_timeout=WAIT,
        max_size=None,
    ) as ws:
        ws.send(json.dumps({"type": "connection_init", "payload": {"padding": "x" * MAX_WEBSOCKET_MESSAGE}}))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=WAIT)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009  # message too big


def answer_to_a_partial_request(server: ServerThread, head: str, partial_body: bytes) -> bytes:
    """Send a request's head and the start of its body, never the rest; the server's answer
    (its first bytes). A server that waited for the whole body would never answer."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=WAIT) as sock:
        sock.sendall(head.encode() + partial_body)
        return sock.recv(4096)


def test_a_chunked_body_over_the_limit_is_refused_while_it_streams(server):
    piece = 64 * 1024
    chunk = f"{piece:x}\r\n".encode() + b" " * piece + b"\r\n"
    head = (
        "POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    )
    # Of a 5 MB body, a little more than the limit is sent; its last chunk never comes.
    sent = chunk * (MAX_BODY // piece + 2)
    assert MAX_BODY < len(sent) < 5 * MAX_BODY
    answer = answer_to_a_partial_request(server, head, sent)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:100]


def test_a_declared_length_over_the_limit_is_refused_before_reading(server):
    head = (
        "POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {5 * MAX_BODY}\r\n\r\n"
    )
    answer = answer_to_a_partial_request(server, head, b"")  # no byte of the body is sent
    assert answer.startswith(b"HTTP/1.1 413"), answer[:100]
