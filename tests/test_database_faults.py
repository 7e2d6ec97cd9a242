"""A database that cannot be reached: clients get a typed JSON answer (DATABASE_UNAVAILABLE,
503 with Retry-After where GraphQL over HTTP allows it), probes say not ready, the log gets one
line with the request id, and every command exits with one line instead of a traceback.

The faults are real: a PostgreSQL URL on a port where nothing listens, and a SQLite file
whose directory disappears between two connections."""

from __future__ import annotations

import logging
import shutil
import socket
from pathlib import Path

import pytest
from sqlalchemy import event
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from test_payment_notifications import Transfer, notify

from gateway.server.app import build_gateway
from gateway.server.cli import EXIT_DATABASE_UNAVAILABLE, main
from gateway.server.http import create_app
from gateway.server.settings import Settings
from gateway.services.keys import issue_api_key
from gateway.services.workspaces import create_workspace
from gateway.storage.encryption import keyring, new_key

from helpers import registry_of

GRAPHQL_RESPONSE = "application/graphql-response+json"
WORKSPACE = "{ workspace { __typename ... on Workspace { id } } }"


def refused_url(password: str = "s3cret") -> str:
    """A PostgreSQL URL on a local port where nothing listens (connections are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"postgresql://billing:{password}@127.0.0.1:{port}/billing"


@pytest.fixture
def unreachable(clock, monkeypatch):
    """A gateway whose PostgreSQL refuses connections once it runs; nothing runs in the background.

    Start-up reads the encryption key from the database (a refused database stops start-up, as
    test_the_cli_says_in_one_line_that_the_database_is_unreachable shows): that one step is given
    a key here, as a database reachable at start-up would have."""
    monkeypatch.setattr("gateway.server.app.configure_encryption", lambda *_: keyring.configure([new_key()]))
    settings = Settings(
        database_url=refused_url(),
        renewal_interval=0,
        delivery_interval=0,
        reconcile_interval=0,
        secret_key="a quote-signing key of 32 bytes or more",  # else read from the database
    )
    gateway = build_gateway(settings, clock=clock, run_migrations=False, registry=registry_of())
    yield gateway
    gateway.close()


@pytest.fixture
def unreachable_client(unreachable):
    with TestClient(create_app(unreachable)) as client:
        yield client


def post(client, query, accept=GRAPHQL_RESPONSE, key="bgw_0123456789ab_secret", **headers):
    return client.post(
        "/graphql",
        json={"query": query},
        headers={"Accept": accept, "Authorization": f"Bearer {key}", **headers},
    )


def assert_unavailable(body):
    assert "data" not in body
    [error] = body["errors"]
    assert error["extensions"]["code"] == "DATABASE_UNAVAILABLE"
    assert error["message"] == "The database is unavailable; try again shortly."


def test_graphql_answers_503_with_a_stable_code_when_the_database_refuses(unreachable_client, caplog):
    caplog.set_level(logging.WARNING, logger="gateway.http")
    response = post(unreachable_client, WORKSPACE, **{"X-Request-Id": "trace-42"})
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    assert response.headers["x-request-id"] == "trace-42"
    assert_unavailable(response.json())
    # The detail is logged once, with the request id, and not sent to the caller.
    [record] = [r for r in caplog.records if "database unavailable" in r.getMessage()]
    assert record.request_id == "trace-42"
    assert "Connection refused" in record.getMessage() and record.exc_info is None
    assert "refused" not in response.text and "s3cret" not in caplog.text


def test_legacy_json_clients_get_200_with_the_same_error(unreachable_client):
    response = post(unreachable_client, WORKSPACE, accept="application/json")
    assert response.status_code == 200  # GraphQL over HTTP: well-formed requests are 200 in application/json
    assert response.headers["retry-after"] == "5"
    assert_unavailable(response.json())


def test_the_invoice_pdf_answers_503_json(unreachable_client):
    response = unreachable_client.get(
        "/invoices/abc.pdf", headers={"Authorization": "Bearer bgw_0123456789ab_secret"}
    )
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    body = response.json()
    assert body["code"] == "DATABASE_UNAVAILABLE" and body["request_id"] == response.headers["x-request-id"]


def test_payment_notifications_answer_503_json(unreachable, unreachable_client):
    unreachable.registry.payment_methods["transfer"] = Transfer()
    status, body = notify(unreachable_client, {"reference": "TR-1", "amount": "10.00", "currency": "EUR"})
    assert status == 503
    assert body["code"] == "DATABASE_UNAVAILABLE"


def test_probes_say_not_ready_and_health_follows_them(unreachable_client):
    assert unreachable_client.get("/livez").json() == {"status": "ok"}
    ready = unreachable_client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json() == {
        "status": "unavailable",
        "checks": {"database": {"ok": False, "error": "unreachable"}},
    }
    health = unreachable_client.get("/health")
    assert health.status_code == 503 and health.json()["status"] == "unavailable"


# ------------------------------------------------------------------ a fault in the middle


@pytest.fixture
def vanishing(tmp_path, clock):
    """A gateway on a SQLite file with a workspace and two keys; ``vanishing.arm()`` makes the
    file's directory disappear as soon as the next connection is handed back (after a sign-in),
    so the request's next connection cannot open the file."""
    folder = tmp_path / "data"
    folder.mkdir()
    settings = Settings(
        database_url=f"sqlite:///{folder / 'gateway.db'}",
        renewal_interval=0,
        delivery_interval=0,
        reconcile_interval=0,
    )
    gateway = build_gateway(settings, clock=clock, registry=registry_of())
    with gateway.sessions.begin() as session:
        workspace = create_workspace(session, gateway.catalog, "Acme", clock())
        key = issue_api_key(session, workspace.id, clock()).secret
        unseen_key = issue_api_key(session, workspace.id, clock()).secret  # signs in with a read
    armed = []

    @event.listens_for(gateway.engine, "checkin")
    def _vanish(dbapi_connection, record):
        if armed and folder.exists():
            shutil.move(folder, tmp_path / "gone")
            gateway.engine.dispose(close=False)  # the next checkout opens a new connection

    class Vanishing:
        def __init__(self):
            self.gateway, self.key, self.unseen_key = gateway, key, unseen_key

        def arm(self):
            armed.append(True)

    yield Vanishing()
    gateway.close()


def test_a_fault_inside_execution_answers_503_without_data(vanishing):
    with TestClient(create_app(vanishing.gateway)) as client:
        assert post(client, WORKSPACE, key=vanishing.key).status_code == 200
        vanishing.arm()
        # A key the gateway has not seen: its sign-in reads the database, and the file vanishes
        # when that connection is handed back, before the resolver's.
        response = post(client, WORKSPACE, key=vanishing.unseen_key)
    assert response.status_code == 503
    body = response.json()
    assert "data" not in body
    [error] = body["errors"]
    assert error["path"] == ["workspace"]
    assert error["extensions"] == {"code": "DATABASE_UNAVAILABLE"}


# ------------------------------------------------------------------ the command line


@pytest.mark.parametrize(
    "command", [["migrate"], ["serve", "--port", "1"], ["renew"], ["deliveries", "list"]]
)
def test_commands_print_one_line_when_the_database_is_unreachable(command, capsys, monkeypatch):
    url = refused_url(password="hunter2")
    monkeypatch.setenv("BILLING_GATEWAY_DATABASE_URL", url)
    assert main(command) == EXIT_DATABASE_UNAVAILABLE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    masked = url.replace("hunter2", "***")
    assert err.startswith(f"error: cannot reach the database at {masked}: ")
    assert "Connection refused" in err and "hunter2" not in err


def test_a_sqlite_file_that_cannot_be_opened_is_one_line(capsys, tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'missing' / 'gateway.db'}"
    assert main(["migrate", "--database-url", url]) == EXIT_DATABASE_UNAVAILABLE
    assert (
        capsys.readouterr().err
        == f"error: cannot reach the database at {url}: unable to open database file\n"
    )


def test_a_socket_signing_in_while_the_database_is_down_closes_with_1013(unreachable_client, caplog):
    """connection_init cannot check the key: the socket is closed with 1013 (try again later)
    and one log line, instead of being dropped."""
    with unreachable_client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        ws.send_json({"type": "connection_init", "payload": {"apiKey": "bgw_0123456789ab_secret"}})
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 1013
    assert any("socket closed: the database is unavailable" in r.getMessage() for r in caplog.records)
    assert not any(r.exc_info for r in caplog.records if r.name.startswith("gateway"))
