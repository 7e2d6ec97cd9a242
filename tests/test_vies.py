"""The optional VIES check of EU VAT IDs (BILLING_GATEWAY_VIES): asked when billing details are
saved, outside any transaction, answered by a stub VIES on 127.0.0.1 (nothing here reaches the
internet), with its timeout and both fallbacks."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

import billing_gateway_tax_vat as plugin
from billing_gateway_tax_vat.config import VIES_URL
from billing_gateway_tax_vat.vies import ViesVerifier
from gateway.plugin_api.registry import load_plugins
from gateway.server.settings import Settings

from helpers import GERMAN_PERSON, snapshot

TIMEOUT = 0.5  # seconds; the slow answer takes SLOW
SLOW = 3.0

UPDATE = """mutation($input: UpdateBillingDetailsInput!) { updateBillingDetails(input: $input) {
  __typename
  ... on BillingDetails { vatId vatIdVerification }
  ... on InvalidBillingDetails { problems { field message } }
} }"""
DE_COMPANY = {**GERMAN_PERSON, "customerType": "COMPANY", "companyName": "Muster GmbH"}
VAT_DE, VAT_FR, VAT_GR = "DE136695976", "FR40303265045", "EL094259216"


@dataclass
class StubVies:
    """A VIES REST endpoint on 127.0.0.1: answers as ``answer`` says and records each request
    with the number of database connections the gateway held while it was asked."""

    url: str = ""
    answer: str = "valid"  # valid | invalid | ms_unavailable | slow | not_json | http_500
    requests: list[dict[str, Any]] = field(default_factory=list)
    connections_held: list[int] = field(default_factory=list)
    pool: Any = None  # the gateway engine's pool, set by the test's gateway


@pytest.fixture(scope="module")
def stub() -> Iterator[StubVies]:
    state = StubVies()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state.requests.append(body)
            if state.pool is not None:
                state.connections_held.append(state.pool.checkedout())
            if state.answer == "slow":
                time.sleep(SLOW)
            status, reply = {
                "valid": (200, {"valid": True, "userError": "VALID", **body}),
                "invalid": (200, {"valid": False, "userError": "INVALID", **body}),
                "ms_unavailable": (200, {"valid": False, "userError": "MS_UNAVAILABLE", **body}),
                "slow": (200, {"valid": True}),
                "not_json": (200, "<html>maintenance</html>"),
                "http_500": (500, {"errorWrappers": [{"error": "SERVICE_UNAVAILABLE"}]}),
            }[state.answer]
            data = reply.encode() if isinstance(reply, str) else json.dumps(reply).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:  # the client gave up (the slow answer): nothing to tell it
                pass

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_port}/check-vat-number"
    yield state
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def fallback() -> str:
    return "accept"


@pytest.fixture
def plugin_env(stub: StubVies, fallback: str) -> dict[str, str]:
    return {
        "BILLING_GATEWAY_VIES": "on",
        "BILLING_GATEWAY_VIES_URL": stub.url,
        "BILLING_GATEWAY_VIES_TIMEOUT": str(TIMEOUT),
        "BILLING_GATEWAY_VIES_FALLBACK": fallback,
    }


@pytest.fixture
def settings(database_url: str) -> Settings:
    # No background renewal or delivery runs: the connections counted are the request's own.
    return Settings(database_url=database_url, renewal_interval=0, delivery_interval=0)


@pytest.fixture
def vies(stub: StubVies, gateway) -> Iterator[StubVies]:
    stub.answer, stub.pool = "valid", gateway.engine.pool
    stub.requests.clear()
    stub.connections_held.clear()
    yield stub
    stub.pool = None


@pytest.fixture
def save(graphql, make_workspace):
    member = make_workspace()

    def run(**details: object) -> dict:
        return graphql(UPDATE, {"input": details}, key=member.key)["updateBillingDetails"]

    return run


def saved(vat_id: str, verification: str | None) -> dict:
    return {"__typename": "BillingDetails", "vatId": vat_id, "vatIdVerification": verification}


def refused(message: str) -> dict:
    return {"__typename": "InvalidBillingDetails", "problems": [{"field": ["vatId"], "message": message}]}


# ---------------------------------------------------------------- on


def test_a_registered_id_is_saved_verified_without_holding_a_connection(save, vies):
    assert save(**DE_COMPANY, vatId="de 136 695 976") == saved("de 136 695 976", "VERIFIED")
    assert vies.requests == [{"countryCode": "DE", "vatNumber": "136695976"}]
    assert vies.connections_held == [0]  # no transaction (nor session) open while VIES is asked


def test_greek_ids_are_sent_with_their_vat_prefix(save, vies):
    save(**{**DE_COMPANY, "country": "GR"}, vatId=VAT_GR)
    assert vies.requests == [{"countryCode": "EL", "vatNumber": "094259216"}]


def test_a_verified_id_is_not_sent_again(save, vies):
    save(**DE_COMPANY, vatId=VAT_DE)
    assert save(vatId=VAT_DE) == saved(VAT_DE, "VERIFIED")
    assert save(name="Erika M.") == saved(VAT_DE, "VERIFIED")  # other fields: VIES is not asked
    assert len(vies.requests) == 1
    assert save(vatId=None) == saved(None, None)  # cleared: nothing is verified


def test_a_new_id_is_checked_and_replaces_the_verdict(save, vies):
    save(**DE_COMPANY, vatId=VAT_DE)
    vies.answer = "slow"
    assert save(country="FR", vatId=VAT_FR) == saved(VAT_FR, "UNVERIFIED")
    assert [r["countryCode"] for r in vies.requests] == ["DE", "FR"]


def test_an_unregistered_id_is_refused_and_nothing_is_written(save, vies, gateway):
    save(**GERMAN_PERSON)
    before = snapshot(gateway)
    vies.answer = "invalid"
    result = save(customerType="COMPANY", companyName="Muster GmbH", vatId=VAT_DE)
    assert result == refused("is not registered in VIES, the EU's VAT ID register")
    assert snapshot(gateway) == before


def test_other_problems_are_reported_with_the_refusal(save, vies):
    vies.answer = "invalid"
    result = save(**{**DE_COMPANY, "email": "nope"}, vatId=VAT_DE)
    assert [p["field"] for p in result["problems"]] == [["vatId"], ["email"]]


def test_malformed_ids_and_countries_outside_the_eu_are_not_sent(save, vies):
    result = save(**DE_COMPANY, vatId="DE136695978")
    assert result["__typename"] == "InvalidBillingDetails" and "DE VAT number" in str(result)
    assert save(**{**DE_COMPANY, "country": "US"}, vatId="12-3456789") == saved("12-3456789", None)
    assert vies.requests == []


# ---------------------------------------------------------------- when VIES cannot answer


@pytest.mark.parametrize("answer", ["slow", "ms_unavailable", "not_json", "http_500"])
def test_by_default_a_well_formed_id_is_saved_unverified(save, vies, answer):
    vies.answer = answer
    started = time.monotonic()
    assert save(**DE_COMPANY, vatId=VAT_DE) == saved(VAT_DE, "UNVERIFIED")
    assert time.monotonic() - started < SLOW  # the timeout, not the slow answer, bounded the wait
    vies.answer = "valid"
    assert save(vatId=VAT_DE) == saved(VAT_DE, "VERIFIED")  # unverified IDs are asked again


@pytest.mark.parametrize("fallback", ["refuse"])
@pytest.mark.parametrize("answer", ["slow", "ms_unavailable"])
def test_the_refusing_fallback_refuses_to_save_until_vies_answers(save, vies, gateway, answer):
    save(**GERMAN_PERSON)
    before = snapshot(gateway)
    vies.answer = answer
    result = save(customerType="COMPANY", companyName="Muster GmbH", vatId=VAT_DE)
    assert result == refused("cannot be checked with VIES now; try again later")
    assert snapshot(gateway) == before


def test_unreachable_vies_falls_back_too(save, vies, gateway):
    # The registry is this test's copy; the verifier in it is shared, so it is replaced, not changed.
    gateway.registry.tax_id_verifiers["vies"] = ViesVerifier(
        "http://127.0.0.1:9/nothing-listens-here", TIMEOUT
    )
    assert save(**DE_COMPANY, vatId=VAT_DE) == saved(VAT_DE, "UNVERIFIED")


# ---------------------------------------------------------------- off


@pytest.mark.parametrize("plugin_env", [{}])
def test_off_by_default_nothing_is_asked(save, stub, gateway):
    stub.requests.clear()
    assert gateway.tax_id_verifiers == {}
    assert save(**DE_COMPANY, vatId=VAT_DE) == saved(VAT_DE, None)
    assert stub.requests == []


def test_the_plugin_registers_the_verifier_only_when_switched_on(monkeypatch, stub):
    monkeypatch.delenv("BILLING_GATEWAY_VIES", raising=False)
    verifiers: list[object] = []
    plugin.register_tax_id_verifiers(register=verifiers.append)
    assert verifiers == [] and load_plugins().tax_id_verifiers == {}
    monkeypatch.setenv("BILLING_GATEWAY_VIES", "on")
    plugin.register_tax_id_verifiers(register=verifiers.append)
    assert [(v.code, v.url, v.timeout) for v in verifiers] == [("vies", VIES_URL, 5.0)]
    registry = load_plugins()
    assert list(registry.tax_id_verifiers) == ["vies"]
    assert "tax_id_verifier:vies" in next(p for p in registry.plugins if p.name == "tax_vat").provides
