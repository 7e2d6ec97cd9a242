"""The operator's view: probes, request ids, JSON logs and refused sign-ins in the log."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest
from sqlalchemy import event
from starlette.testclient import TestClient
from websockets.frames import Frame, Opcode

from gateway.server.app import build_gateway
from gateway.server.http import create_app
from gateway.server.observability import configure_logging, install_log_redaction, log_handler
from gateway.server.settings import Settings, SettingsError
from gateway.services.keys import revoke_api_key
from gateway.storage.db import create_db_engine, head_revisions, migrate
from gateway.storage.encryption import keyring, new_key

from helpers import registry_of

WORKSPACE = "{ workspace { __typename } }"


def test_livez_and_readyz_when_everything_is_up(client):
    assert client.get("/livez").json() == {"status": "ok"}
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] is True
    [head] = head_revisions()
    assert body["checks"]["migrations"] == {"ok": True, "revision": head, "expected": head}


def test_a_database_behind_the_code_is_not_ready(tmp_path, clock, monkeypatch):
    engine = create_db_engine(f"sqlite:///{tmp_path / 'old.db'}")
    migrate(engine, "0001")
    # The database has no encryption key table yet: start-up's key is given here.
    monkeypatch.setattr("gateway.server.app.configure_encryption", lambda *_: keyring.configure([new_key()]))
    settings = Settings(
        database_url=str(engine.url),
        renewal_interval=0,
        delivery_interval=0,
        reconcile_interval=0,
        secret_key="a quote-signing key of 32 bytes or more",  # its table is not there yet either
    )
    gateway = build_gateway(
        settings, clock=clock, run_migrations=False, registry=registry_of(), engine=engine
    )
    try:
        with TestClient(create_app(gateway)) as client:
            response = client.get("/readyz")
            health = client.get("/health")
    finally:
        gateway.close()
    assert response.status_code == 503
    migrations = response.json()["checks"]["migrations"]
    assert migrations["ok"] is False and migrations["revision"] == "0001"
    assert health.status_code == 503 and health.json()["status"] == "unavailable"


def test_revisions_are_read_as_alembic_reads_them_and_a_current_database_is_left_alone(tmp_path):
    """head_revisions and current_revisions read the files and the version table without
    alembic; alembic's own answers must be the same, before, during and after migrating."""
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from gateway.storage.db import MIGRATIONS, current_revisions

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert head_revisions() == frozenset(ScriptDirectory.from_config(config).get_heads())
    engine = create_db_engine(f"sqlite:///{tmp_path / 'revisions.db'}")
    try:
        for step in (None, "0001", "0009", "head"):
            if step is not None:
                migrate(engine, step)
            with engine.connect() as connection:
                expected = frozenset(MigrationContext.configure(connection).get_current_heads())
                assert current_revisions(connection) == expected
        with engine.connect() as connection:
            assert current_revisions(connection) == head_revisions()
        statements: list[str] = []
        event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
        migrate(engine)  # at the head already: it only reads where the database stands
        assert not any(
            s.lstrip().upper().startswith(("CREATE", "ALTER", "UPDATE", "INSERT")) for s in statements
        )
    finally:
        engine.dispose()


# ------------------------------------------------------------------ request ids


def test_a_request_id_is_generated_and_returned(client):
    first = client.get("/livez").headers["x-request-id"]
    second = client.get("/livez").headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", first) and first != second


def test_a_safe_incoming_request_id_is_kept(client):
    response = client.post(
        "/graphql", json={"query": "{ plans { code } }"}, headers={"X-Request-Id": "lb-7f.3_a"}
    )
    assert response.headers["x-request-id"] == "lb-7f.3_a"


@pytest.mark.parametrize(
    "hostile", ["a b", "x" * 65, "id\\n2026-01-01 INFO forged", '"quoted"', "ümlaut", ""]
)
def test_a_hostile_request_id_is_replaced(client, hostile):
    response = client.get("/livez", headers={"X-Request-Id": hostile.encode()})
    returned = response.headers["x-request-id"]
    assert returned != hostile and re.fullmatch(r"[0-9a-f]{32}", returned)


def test_every_log_line_of_a_request_carries_its_id(client, caplog, make_workspace):
    caplog.set_level(logging.INFO)
    member = make_workspace()
    client.post(
        "/graphql",
        json={"query": WORKSPACE},
        headers={"Authorization": f"Bearer {member.key}x", "X-Request-Id": "req-1"},
    )
    access = [r for r in caplog.records if r.name == "gateway.access"]
    auth = [r for r in caplog.records if r.name == "gateway.auth"]
    assert access and auth
    assert {r.request_id for r in access + auth} == {"req-1"}
    assert {r.client for r in access + auth} == {"testclient"}


# ------------------------------------------------------------------ refused sign-ins


def test_a_wrong_or_revoked_key_is_logged_with_its_prefix_only(client, caplog, make_workspace, gateway):
    caplog.set_level(logging.WARNING, logger="gateway.auth")
    member = make_workspace()
    prefix = "_".join(member.key.split("_")[:2])
    wrong = member.key[:-4] + "AAAA"
    assert client.post(
        "/graphql", json={"query": WORKSPACE}, headers={"Authorization": f"Bearer {wrong}"}
    ).json() == {"data": {"workspace": {"__typename": "AuthenticationRequired"}}}
    with gateway.sessions.begin() as session:
        revoke_api_key(session, member.key, gateway.clock())
    client.get("/invoices/x.pdf", headers={"Authorization": f"Bearer {member.key}"})
    client.post("/graphql", json={"query": WORKSPACE}, headers={"Authorization": "Bearer not-a-key-at-all"})
    messages = [(r.levelno, r.getMessage(), r.client) for r in caplog.records if r.name == "gateway.auth"]
    assert messages == [
        (logging.WARNING, f"sign-in refused: key {prefix} is unknown", "testclient"),
        (logging.WARNING, f"sign-in refused: key {prefix} was revoked", "testclient"),
        (logging.WARNING, "sign-in refused: a malformed bearer token", "testclient"),
    ]
    secret = member.key.split("_", 2)[2]
    assert secret not in caplog.text and "not-a-key-at-all" not in caplog.text


# ------------------------------------------------------------------ log formats


@pytest.fixture
def json_lines():
    """The JSON lines the gateway's loggers write while the test runs."""
    stream = io.StringIO()
    handler = log_handler("json", stream)
    gateway_logger = logging.getLogger("gateway")
    level = gateway_logger.level
    gateway_logger.addHandler(handler)
    gateway_logger.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    gateway_logger.removeHandler(handler)
    gateway_logger.setLevel(level)


def test_json_logs_are_one_object_per_line_with_the_request_id(client, json_lines):
    client.get("/livez", headers={"X-Request-Id": "json-1"})
    [line] = [entry for entry in json_lines() if entry["logger"] == "gateway.access"]
    assert line["request_id"] == "json-1" and line["level"] == "INFO" and line["client"] == "testclient"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])
    assert '"GET /livez" 200' in line["message"]


def test_json_logs_carry_the_exception_text(json_lines):
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("gateway.test").exception("it failed")
    [line] = json_lines()
    assert line["message"] == "it failed" and line["request_id"] is None
    assert "ValueError: boom" in line["exception"]


def test_configure_logging_routes_uvicorn_and_gateway_loggers_to_one_handler():
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    uvicorn_error = logging.getLogger("uvicorn.error")
    saved_uvicorn = (uvicorn_error.handlers[:], uvicorn_error.propagate)
    stream = io.StringIO()
    try:
        configure_logging("info", "json", stream)
        logging.getLogger("uvicorn.error").info("Started server process")
        logging.getLogger("gateway.http").warning("hello")
        entries = [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        uvicorn_error.handlers[:], uvicorn_error.propagate = saved_uvicorn
    assert [(e["logger"], e["message"]) for e in entries] == [
        ("uvicorn.error", "Started server process"),
        ("gateway.http", "hello"),
    ]


def test_text_logs_show_time_level_logger_and_request(client):
    stream = io.StringIO()
    handler = log_handler("text", stream)
    access = logging.getLogger("gateway.access")
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    try:
        client.get("/livez", headers={"X-Request-Id": "text-1"})
    finally:
        access.removeHandler(handler)
        access.setLevel(logging.NOTSET)
    line = stream.getvalue().strip()
    assert re.fullmatch(
        r'\d{4}-\d\d-\d\dT\S+Z INFO gateway\.access \[text-1 testclient\] testclient "GET /livez" 200 \S+ms',
        line,
    ), line


def test_the_log_format_setting_is_checked():
    assert Settings.from_env({"BILLING_GATEWAY_LOG_FORMAT": "JSON"}).log_format == "json"
    with pytest.raises(SettingsError, match="LOG_FORMAT must be text or json"):
        Settings.from_env({"BILLING_GATEWAY_LOG_FORMAT": "xml"})


def test_a_websocket_connection_gets_a_request_id(client):
    with client.websocket_connect(
        "/graphql", subprotocols=["graphql-transport-ws"], headers={"X-Request-Id": "ws-1"}
    ) as socket:
        assert (b"x-request-id", b"ws-1") in socket.extra_headers


def test_websocket_frames_and_credentials_are_redacted_on_the_server_logger():
    """websockets logs (at DEBUG, through uvicorn.error) the handshake and every frame's data:
    connection_init carries the API key. The records every handler gets show neither."""
    install_log_redaction()
    server = logging.getLogger("uvicorn.error")
    kept: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = kept.append  # type: ignore[method-assign]
    level = server.level
    server.addHandler(handler)
    server.setLevel(logging.DEBUG)
    try:
        connection_init = b'{"type": "connection_init", "payload": {"apiKey": "bgw_0123456789ab_secret"}}'
        server.debug("< %s", Frame(Opcode.TEXT, connection_init))
        server.debug("< %s %s %s", "GET", "/graphql?apiKey=bgw_0123456789ab_secret", "HTTP/1.1")
        server.debug("< %s: %s", "Authorization", "Bearer bgw_0123456789ab_secret")
        server.debug("< %s: %s", "Cookie", "session=secret")
        server.debug("< %s: %s", "Host", "127.0.0.1:8000")
    finally:
        server.removeHandler(handler)
        server.setLevel(level)
    assert [record.getMessage() for record in kept] == [
        f"< TEXT [{len(connection_init)} bytes]",
        "< GET /graphql HTTP/1.1",
        "< Authorization: [redacted]",
        "< Cookie: [redacted]",
        "< Host: 127.0.0.1:8000",
    ]
    assert not any("secret" in repr(record.args) for record in kept)


def test_websocket_lines_lose_their_query_string():
    stream = io.StringIO()
    handler = log_handler("text", stream)
    record = logging.LogRecord(
        "uvicorn.error",
        logging.INFO,
        __file__,
        1,
        '%s - "WebSocket %s" [accepted]',
        ("127.0.0.1:5555", "/graphql?apiKey=bgw_0123456789ab_secret"),
        None,
    )
    handler.handle(record)
    line = stream.getvalue()
    assert '"WebSocket /graphql" [accepted]' in line and "secret" not in line
