"""CORS: only the origins in BILLING_GATEWAY_CORS_ORIGINS may read the API from their pages;
none by default. The WebSocket (subscriptions) is not CORS and stays open to every origin."""

from __future__ import annotations

import json

import pytest

from gateway.server.cli import main
from gateway.server.http import CORS_MAX_AGE
from gateway.server.settings import Settings, SettingsError

APP = "https://app.example.com"
DEV = "http://localhost:5173"
OTHER = "https://evil.example"
PLANS = {"query": "{ plans { code } }"}


def preflight(client, origin: str, method: str = "POST", headers: str = "authorization,content-type"):
    return client.options(
        "/graphql",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": headers,
        },
    )


def simple(client, origin: str | None):
    headers = {"Origin": origin} if origin else {}
    return client.post("/graphql", json=PLANS, headers=headers)


class TestConfigured:
    @pytest.fixture
    def settings(self, database_url):
        return Settings.from_env(
            {"BILLING_GATEWAY_CORS_ORIGINS": f" {APP} , {DEV}"}, database_url=database_url
        )

    @pytest.mark.parametrize("origin", [APP, DEV])
    def test_an_allowed_origins_preflight_is_answered(self, client, origin):
        response = preflight(client, origin)
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == origin
        assert set(response.headers["access-control-allow-methods"].split(", ")) == {"GET", "POST"}
        allowed = {h.lower() for h in response.headers["access-control-allow-headers"].split(", ")}
        assert {"authorization", "content-type"} <= allowed
        assert response.headers["access-control-max-age"] == str(CORS_MAX_AGE)
        assert "Origin" in response.headers["vary"]
        assert "access-control-allow-credentials" not in response.headers  # a key, never a cookie

    def test_another_origins_preflight_gets_no_allow_header(self, client):
        response = preflight(client, OTHER)
        assert response.status_code == 400
        assert "access-control-allow-origin" not in response.headers

    def test_a_method_or_header_the_api_does_not_take_is_refused(self, client):
        assert "access-control-allow-origin" in preflight(client, APP).headers
        assert preflight(client, APP, method="DELETE").status_code == 400
        assert preflight(client, APP, headers="authorization,x-debug").status_code == 400

    def test_an_allowed_origin_reads_the_answer(self, client):
        response = simple(client, APP)
        assert response.json()["data"]["plans"][0] == {"code": "free"}
        assert response.headers["access-control-allow-origin"] == APP
        assert response.headers["vary"] == "Origin"
        assert response.headers["access-control-expose-headers"] == "Content-Disposition"

    def test_another_origin_gets_the_answer_without_the_allow_header(self, client):
        response = simple(client, OTHER)
        assert response.status_code == 200  # the browser, not the server, withholds it from the page
        assert "access-control-allow-origin" not in response.headers
        assert response.headers["vary"] == "Origin"  # caches keep answers per origin

    def test_a_request_without_origin_is_unchanged(self, client):
        response = simple(client, None)
        assert response.status_code == 200
        assert "access-control-allow-origin" not in response.headers

    def test_the_websocket_is_open_to_any_origin(self, client, make_workspace):
        member = make_workspace()
        with client.websocket_connect(
            "/graphql", subprotocols=["graphql-transport-ws"], headers={"Origin": OTHER}
        ) as socket:
            socket.send_text(json.dumps({"type": "connection_init", "payload": {"apiKey": member.key}}))
            ack = json.loads(socket.receive_text())
        assert ack["type"] == "connection_ack"
        assert ack["payload"]["workspaceId"] == member.id


class TestAnyOrigin:
    @pytest.fixture
    def settings(self, database_url):
        return Settings(database_url=database_url, cors_origins=("*",))

    def test_every_origin_may_read_without_credentials(self, client):
        response = preflight(client, OTHER)
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-credentials" not in response.headers
        assert simple(client, OTHER).headers["access-control-allow-origin"] == "*"


def test_by_default_no_cors_header_is_sent(client):
    assert Settings().cors_origins == ()
    assert preflight(client, APP).status_code == 405  # no CORS: OPTIONS is not a method of /graphql
    response = simple(client, APP)
    assert response.status_code == 200
    assert not [name for name in response.headers if name.startswith("access-control-")]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("https://app.example.com/", "no path (not even a trailing /)"),
        ("https://app.example.com/billing", "no path"),
        ("app.example.com", "must be http:// or https://"),
        ("ftp://app.example.com", "must be http:// or https://"),
        ("https://*.example.com", "wildcards are not patterns"),
        ("*, https://app.example.com", "cannot be listed with others"),
        ("https://App.Example.com", "lower case, as browsers send it: 'https://app.example.com'"),
        ("https://app.example.com:443", "default port"),
        ("https://app.example.com:99999", "is not an origin"),
        ("https://bücher.example", "punycode"),
        ("https://a.example,,https://b.example", "empty entry"),
        ("https://a.example,https://a.example", "twice"),
        ("https://user@app.example.com", "no path"),
    ],
)
def test_an_origin_that_could_never_match_is_refused(value, message):
    with pytest.raises(SettingsError, match=r"^BILLING_GATEWAY_CORS_ORIGINS") as refused:
        Settings.from_env({"BILLING_GATEWAY_CORS_ORIGINS": value})
    assert message in str(refused.value)


@pytest.mark.parametrize(
    "value",
    ["https://app.example.com", "http://localhost:5173", "http://127.0.0.1:8000", "http://[::1]:8080"],
)
def test_origins_as_browsers_send_them_are_accepted(value):
    assert Settings.from_env({"BILLING_GATEWAY_CORS_ORIGINS": value}).cors_origins == (value,)


def test_overrides_are_checked_too():
    with pytest.raises(SettingsError, match="no path"):
        Settings(cors_origins=("https://app.example.com/",))


def test_the_gateway_does_not_start_with_an_invalid_origin(cli_env, monkeypatch, capsys):
    monkeypatch.setenv("BILLING_GATEWAY_CORS_ORIGINS", "https://app.example.com/")
    assert main(["migrate"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("billing-gateway: cannot start: BILLING_GATEWAY_CORS_ORIGINS: ")
    assert "'https://app.example.com/'" in error
