"""API key scopes: every root field needs a declared scope, a key lacking it is refused with
ScopeRequired and nothing runs, and a WebSocket's key is checked on every subscribe and while
the socket is open (revocation closes it with 4403)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
import strawberry
from alembic import command
from sqlalchemy import inspect, text, update
from sqlalchemy.orm import Session
from test_subscriptions import EVENTS, WAIT, Subscriber, commit_event, open_socket
from websockets.exceptions import ConnectionClosed

from gateway.api import scopes
from gateway.api.schema import build_schema
from gateway.server.cli import main
from gateway.services.keys import ALL_SCOPES, Scope, issue_api_key, scopes_text
from gateway.services.workspaces import create_workspace
from gateway.storage.db import ApiKey, alembic_config, create_db_engine, migrate

from helpers import GERMAN_PERSON, ServerThread, card, snapshot

ROOT = Path(__file__).resolve().parent.parent
CLOSE_WITHIN = 10.0  # seconds: far above the 2 s key check, to stay clear of slow machines

WORKSPACE = "{ workspace { __typename ... on ScopeRequired { code scope message } } }"
PLANS = "{ plans { code } }"
QUOTE = """mutation { quote(input: {planCode: "email"}) { __typename ... on Quote { token }
  ... on ScopeRequired { code scope } } }"""
CHECKOUT = """mutation($input: CheckoutInput!) { checkout(input: $input) { __typename
  ... on UserError { code message } ... on ScopeRequired { scope } } }"""
# One of each kind of write, every one valid enough to do something with a full key.
WRITES: dict[str, tuple[str, dict[str, Any] | None, str]] = {
    "updateBillingDetails": (
        """mutation($input: UpdateBillingDetailsInput!) { updateBillingDetails(input: $input) {
          __typename ... on ScopeRequired { code scope } } }""",
        {"input": GERMAN_PERSON},
        "billing",
    ),
    "topUpBalance": (
        """mutation($input: TopUpInput!) { topUpBalance(input: $input) {
          __typename ... on ScopeRequired { code scope } } }""",
        {
            "input": {
                "amount": "50.00",
                "idempotencyKey": "t1",
                "paymentMethod": {"method": "card", "newCard": card()},
            }
        },
        "billing",
    ),
    "addCard": (
        """mutation($input: AddCardInput!) { addCard(input: $input) {
          __typename ... on ScopeRequired { code scope } } }""",
        {"input": {"card": card(), "idempotencyKey": "c1"}},
        "billing",
    ),
    "recordUsage": (
        """mutation { recordUsage(input: {messageType: "EMAIL", quantity: 10, idempotencyKey: "u1"}) {
          __typename ... on ScopeRequired { code scope } } }""",
        None,
        "usage",
    ),
    "createWebhookEndpoint": (
        """mutation { createWebhookEndpoint(input: {url: "https://example.com/hook"}) {
          __typename ... on ScopeRequired { code scope } } }""",
        None,
        "webhooks",
    ),
}


def keyed(gateway, member, *granted: Scope) -> str:
    """Another key of ``member``'s workspace, with only ``granted``."""
    with gateway.sessions.begin() as session:
        return issue_api_key(session, member.id, gateway.clock(), name="scoped", scopes=set(granted)).secret


def ask(client, query: str, variables: dict[str, Any] | None, key: str) -> dict[str, Any]:
    response = client.post(
        "/graphql", json={"query": query, "variables": variables}, headers={"Authorization": f"Bearer {key}"}
    )
    body = response.json()
    assert response.status_code == 200 and "errors" not in body, body
    return body["data"]


# ------------------------------------------------------------------ the declaration


def test_every_root_field_declares_its_scope_and_can_answer_scope_required():
    schema = build_schema()._schema
    for root_type in ("Query", "Mutation", "Subscription"):
        root = schema.get_type(root_type)
        assert set(root.fields) == set(scopes.ROOT_SCOPES[root_type]), root_type
        for name, field in root.fields.items():
            access = scopes.required(root_type, name)
            assert access in {*Scope, scopes.PUBLIC, scopes.OPERATOR}
            if isinstance(access, Scope) and root_type != "Subscription":
                members = {t.name for t in field.type.of_type.types}  # a non-null union
                assert "ScopeRequired" in members, f"{root_type}.{name}"


def test_a_field_without_a_declared_scope_stops_the_schema():
    @strawberry.type
    class Query:
        plans: int = 0
        forgotten: int = 0

    with pytest.raises(RuntimeError, match="forgotten"):
        scopes.check_schema(strawberry.Schema(query=Query))


def test_the_readme_table_lists_every_root_field_with_its_scope():
    readme = (ROOT / "README.md").read_text()
    rows = re.findall(r"^\| `(\w+)`\.`(\w+)` \| (\w+) \|", readme, flags=re.M)
    assert {(root, field): access for root, field, access in rows} == {
        (root, field): str(access)
        for root, fields in scopes.ROOT_SCOPES.items()
        for field, access in fields.items()
    }


# ------------------------------------------------------------------ over HTTP


def test_a_live_key_reads_no_workspace_data_and_runs_no_mutation(gateway, client, make_workspace):
    member = make_workspace()
    live = keyed(gateway, member, Scope.LIVE)
    before = snapshot(gateway)
    assert ask(client, WORKSPACE, None, live)["workspace"] == {
        "__typename": "ScopeRequired",
        "code": "SCOPE_REQUIRED",
        "scope": "read",
        "message": "this API key lacks the 'read' scope, which workspace needs",
    }
    assert ask(client, QUOTE, None, live)["quote"] == {
        "__typename": "ScopeRequired",
        "code": "SCOPE_REQUIRED",
        "scope": "read",
    }
    for name, (query, variables, scope) in WRITES.items():
        answer = ask(client, query, variables, live)[name]
        assert answer == {"__typename": "ScopeRequired", "code": "SCOPE_REQUIRED", "scope": scope}, name
    assert snapshot(gateway) == before
    assert ask(client, PLANS, None, live)["plans"]  # public fields answer any key


def test_each_write_runs_with_its_scope(gateway, client, make_workspace):
    """The refusals above are the scope's doing: the same requests pass with the scope."""
    member = make_workspace()
    for name, (query, variables, scope) in WRITES.items():
        answer = ask(client, query, variables, keyed(gateway, member, Scope(scope)))[name]
        assert answer["__typename"] != "ScopeRequired", (name, answer)


def test_a_read_key_quotes_but_cannot_check_out(gateway, client, make_workspace):
    member = make_workspace()
    read, full = keyed(gateway, member, Scope.READ, Scope.LIVE), keyed(gateway, member, *ALL_SCOPES)
    ask(client, *WRITES["updateBillingDetails"][:2], full)  # checkout needs them
    quote = ask(client, QUOTE, None, read)["quote"]
    assert quote["__typename"] == "Quote"
    before = snapshot(gateway)
    payment = {"method": "card", "newCard": card()}
    checkout_input = {
        "input": {"quoteToken": quote["token"], "paymentMethod": payment, "idempotencyKey": "k1"}
    }
    assert ask(client, CHECKOUT, checkout_input, read)["checkout"] == {
        "__typename": "ScopeRequired",
        "code": "SCOPE_REQUIRED",
        "message": "this API key lacks the 'billing' scope, which checkout needs",
        "scope": "billing",
    }
    assert snapshot(gateway) == before
    assert ask(client, CHECKOUT, checkout_input, full)["checkout"]["__typename"] == "CheckoutSuccess"


def test_without_a_key_the_sign_in_guard_answers_as_before(client):
    """Scopes are a workspace key's: without one the fields' own guards answer."""
    response = client.post("/graphql", json={"query": WORKSPACE})
    assert response.json()["data"]["workspace"]["__typename"] == "AuthenticationRequired"


# ------------------------------------------------------------------ the CLI


def test_create_key_with_scopes(cli_env, capsys, gateway, client, make_workspace):
    member = make_workspace()
    assert main(["create-key", member.id, "--scope", "read", "--scope", "live"]) == 0
    out = capsys.readouterr().out
    key = re.search(r"api key: (\S+)", out).group(1)
    assert "scopes: live read" in out
    assert ask(client, WORKSPACE, None, key)["workspace"] == {"__typename": "Workspace"}
    answer = ask(client, *WRITES["updateBillingDetails"][:2], key)["updateBillingDetails"]
    assert answer == {"__typename": "ScopeRequired", "code": "SCOPE_REQUIRED", "scope": "billing"}

    assert main(["create-key", member.id]) == 0  # the default: every scope, as before scopes
    assert "scopes: billing live read usage webhooks" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["create-key", member.id, "--scope", "everything"])


def test_the_migration_gives_existing_keys_every_scope(tmp_path, gateway):
    """A key made before scopes (its column dropped by the downgrade) gets every scope."""
    engine = create_db_engine(f"sqlite:///{tmp_path / 'scopes.db'}")
    try:
        migrate(engine)
        with Session(engine) as session, session.begin():
            workspace = create_workspace(session, gateway.catalog, "Old", gateway.clock())
            issue_api_key(session, workspace.id, gateway.clock(), scopes={Scope.LIVE})
        command.downgrade(alembic_config(engine), "0013")
        assert "scopes" not in {c["name"] for c in inspect(engine).get_columns("api_keys")}
        migrate(engine)
        with engine.connect() as connection:
            stored = connection.execute(text("SELECT scopes FROM api_keys")).scalar_one()
        assert stored == "billing live read usage webhooks" == scopes_text(ALL_SCOPES)
    finally:
        engine.dispose()


# ------------------------------------------------------------------ the WebSocket


@pytest.fixture
def server(gateway):
    gateway.notifier.poll_interval = 60.0
    with ServerThread(gateway) as running:
        yield running


def closed_code(subscriber: Subscriber, within: float = CLOSE_WITHIN) -> int:
    """The close code of the socket, once the server closes it; fails if any event arrives
    first or it stays open ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        remaining = deadline - time.monotonic()
        assert remaining > 0, "the socket stayed open"
        try:
            message = subscriber.receive(timeout=remaining)
        except ConnectionClosed as closed:
            frame = closed.rcvd
            break
        except TimeoutError:
            pytest.fail("the socket stayed open")
        assert message["type"] != "next", f"an event after revocation: {message}"
    assert frame is not None, "the connection ended without a close frame from the server"
    return frame.code


def test_a_key_without_live_cannot_open_a_socket(server, gateway, make_workspace):
    member = make_workspace()
    with open_socket(server) as ws:
        subscriber = Subscriber(ws, {"authorization": f"Bearer {keyed(gateway, member, Scope.READ)}"})
        assert closed_code(subscriber, WAIT) == 4403


def test_a_live_key_streams(server, gateway, make_workspace):
    member = make_workspace()
    with open_socket(server) as ws:
        subscriber = Subscriber(ws, {"apiKey": keyed(gateway, member, Scope.LIVE)})
        assert subscriber.ack() == {"workspaceId": member.id}
        sequence = commit_event(gateway, member)
        subscriber.subscribe(EVENTS, {"after": 0})
        assert subscriber.next()["sequence"] == sequence


def test_revoking_the_key_closes_the_streaming_socket(server, gateway, cli_env, make_workspace):
    member = make_workspace()
    with open_socket(server) as ws:
        subscriber = Subscriber(ws, {"apiKey": member.key})
        subscriber.ack()
        subscriber.subscribe(EVENTS, {"after": 0})
        sequence = commit_event(gateway, member)
        assert subscriber.next()["sequence"] == sequence
        assert main(["revoke-key", member.key.split("_")[1]]) == 0
        assert closed_code(subscriber) == 4403


def test_a_socket_whose_key_was_revoked_starts_no_stream(server, gateway, cli_env, make_workspace):
    """A subscribe after revocation replays nothing, whether the check at subscribe or the
    periodic one sees the revocation first."""
    member = make_workspace()
    commit_event(gateway, member)
    with open_socket(server) as ws:
        subscriber = Subscriber(ws, {"apiKey": member.key})
        subscriber.ack()
        assert main(["revoke-key", member.key]) == 0
        subscriber.subscribe(EVENTS, {"after": 0})
        assert closed_code(subscriber) == 4403


def test_every_subscribe_reads_the_key_again(server, gateway, make_workspace):
    """Scopes are read at each subscribe, not only at connection_init: a key whose scopes were
    narrowed in the database (here by hand; the CLI never changes a key's scopes) starts no
    stream: an error, then complete, and nothing replayed."""
    member = make_workspace()
    commit_event(gateway, member)
    with open_socket(server) as ws:
        subscriber = Subscriber(ws, {"apiKey": member.key})
        subscriber.ack()
        with gateway.engine.begin() as connection:
            connection.execute(update(ApiKey).where(ApiKey.workspace_id == member.id).values(scopes="read"))
        subscriber.subscribe(EVENTS, {"after": 0})
        message = subscriber.receive()
        assert message["type"] == "next" and message["payload"]["data"] is None, message
        [error] = message["payload"]["errors"]
        assert error["extensions"] == {"code": "SCOPE_REQUIRED", "scope": "live"}, error
        assert subscriber.receive()["type"] == "complete"
        subscriber.quiet()


# ------------------------------------------------------------------ elsewhere


def test_invoice_pdfs_need_read(gateway, client, make_workspace):
    member = make_workspace()
    headers = {"Authorization": f"Bearer {keyed(gateway, member, Scope.LIVE, Scope.BILLING)}"}
    assert client.get("/invoices/unknown.pdf", headers=headers).status_code == 401
    headers = {"Authorization": f"Bearer {keyed(gateway, member, Scope.READ)}"}
    assert client.get("/invoices/unknown.pdf", headers=headers).status_code == 404  # past sign-in


def test_a_refusal_is_counted_as_a_typed_error(gateway, client, make_workspace):
    member = make_workspace()
    ask(client, WORKSPACE, None, keyed(gateway, member, Scope.LIVE))
    metrics = client.get("/metrics").text
    assert 'billing_gateway_graphql_requests_total{operation="workspace",outcome="user_error"} 1.0' in metrics
