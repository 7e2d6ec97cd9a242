"""Previews as queries, and signed quote tokens: quote → checkout with the token alone.

Prices (bundled catalog, EUR) as in test_checkout.py: Free → Omnichannel at its defaults
(20,000 email, 5,000 messaging credits) is 95.00 + 19 % VAT (a German consumer) = 113.05;
Free → Email at its defaults (10,000 email credits) is 22.50 + 4.28 VAT = 26.78. The clock starts at
2026-11-10 09:30 UTC; quotes expire 30 minutes after they are made.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import settings as examples
from hypothesis import strategies as st
from sqlalchemy import delete, func, select
from starlette.testclient import TestClient

from gateway.core.money import Money
from gateway.core.quote_tokens import InvalidQuoteToken, QuoteClaims, QuoteKeys, SigningKey
from gateway.server.app import QUOTE_KEY, Gateway, build_gateway
from gateway.server.http import create_app
from gateway.server.settings import Settings, SettingsError
from gateway.storage.db import GatewaySecret, Invoice, create_db_engine

from helpers import billing, card, eur_json, post, registry_of, rows, snapshot

START = datetime(2026, 11, 10, 9, 30, tzinfo=UTC)
KEY_A = "a" * 40  # settings' keys: any text of at least 32 bytes
KEY_B = "b" * 40

QUOTE_FIELDS = """__typename ... on UserError { code field message }
  ... on Quote { kind plan { code } emailCredits messagingCredits computedAt expiresAt token
                 dueNow { subtotal { amount } tax { amount } total { amount currency } taxCalculated
                          taxLines { name rate } }
                 balance { now { amount } sufficient } }"""
QUOTE_QUERY = f"query($input: QuoteInput!) {{ quote(input: $input) {{ {QUOTE_FIELDS} }} }}"
QUOTE_MUTATION = f"mutation($input: QuoteInput!) {{ quote(input: $input) {{ {QUOTE_FIELDS} }} }}"
SELECT_FIELDS = """__typename ... on UserError { code field }
  ... on PlanSelection { plan { code } adjustable requiresQuote emailCredits messagingCredits change effectiveAt }"""
ESTIMATE_FIELDS = """__typename ... on UserError { code field }
  ... on Estimate { credits creditsPerMessage segments messages creditsLeft }"""
PAGE = f"""query Page($plan: String!, $quote: QuoteInput!, $estimate: EstimateInput!) {{
  plans {{ code }}
  workspace {{ __typename ... on Workspace {{ plan {{ code }} balance {{ amount }} }} }}
  selectPlan(planCode: $plan) {{ {SELECT_FIELDS} }}
  quote(input: $quote) {{ {QUOTE_FIELDS} }}
  estimate(input: $estimate) {{ {ESTIMATE_FIELDS} }}
}}"""
TOP_UP = """mutation($input: TopUpInput!) { topUpBalance(input: $input) { __typename } }"""
CHECKOUT = """mutation($input: CheckoutInput!) { checkout(input: $input) { __typename
  ... on UserError { code field message }
  ... on CheckoutSuccess { kind workspace { plan { code } emailCredits messagingCredits balance { amount } }
    invoice { number lines { kind description quantity amount { amount } }
              taxLines { name rate base { amount } amount { amount } } subtotal { amount } tax { amount }
              total { amount currency } paymentMethod }
    payment { id method status amount { amount } } }
  ... on QuoteChanged { expectedTotal quote { computedAt expiresAt token dueNow { total { amount } } } } } }"""


# ------------------------------------------------------------------ helpers


def quote(graphql, member, plan: str = "omnichannel", *, document: str = QUOTE_QUERY, **fields) -> dict:
    result = graphql(document, {"input": {"planCode": plan, **fields}}, key=member.key)["quote"]
    assert result["__typename"] == "Quote", result
    return result


def checkout_input(*, key: str = "checkout-1", method: str = "balance", **input_) -> dict:
    return {"input": {"paymentMethod": {"method": method}, "idempotencyKey": key, **input_}}


def checkout(graphql, member, **input_) -> dict:
    return graphql(CHECKOUT, checkout_input(**input_), key=member.key)["checkout"]


def by_token(graphql, member, offer: dict, **kwargs) -> dict:
    return checkout(graphql, member, quoteToken=offer["token"], **kwargs)


def altered(token: str, part: int, position: int = 3) -> str:
    """``token`` with one character of its ``part`` (0 version, 1 key id, 2 payload,
    3 signature) replaced by another base64url character."""
    parts = token.split(".")
    chars = list(parts[part])
    chars[position] = "A" if chars[position] != "A" else "B"
    parts[part] = "".join(chars)
    return ".".join(parts)


BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def spare_bits(token: str) -> str:
    """``token`` with its last character changed only in the bits that base64 leaves unused
    there: lenient decoders read the same signature from it."""
    last = BASE64URL.index(token[-1])
    return token[:-1] + BASE64URL[last ^ 1]


def minted(token: str, **claims) -> str:
    """``token`` with its payload rewritten (the signature left as it was): a forgery."""
    import base64

    version, key_id, payload, signature = token.split(".")
    values = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    names = ["workspace", "plan", "email", "messaging", "total", "currency", "expires"]
    values = [claims.get(name, value) for name, value in zip(names, values, strict=True)]
    forged = base64.urlsafe_b64encode(json.dumps(values, separators=(",", ":")).encode()).rstrip(b"=")
    return f"{version}.{key_id}.{forged.decode()}.{signature}"


def fund(graphql, member) -> None:
    """Complete (German consumer) billing details and 150.00 on the balance, by card."""
    billing(graphql, member)
    method = {"method": "card", "newCard": card()}
    variables = {"input": {"amount": "150.00", "paymentMethod": method, "idempotencyKey": "fund"}}
    assert graphql(TOP_UP, variables, key=member.key)["topUpBalance"]["__typename"] == "TopUpSuccess"


@pytest.fixture
def funded(graphql, make_workspace):
    """A Free workspace with complete billing details and 150.00 on its balance."""
    member = make_workspace("Free Ltd")
    fund(graphql, member)
    return member


@contextlib.contextmanager
def another_gateway(settings: Settings, clock, built_once, **changes) -> Iterator[Gateway]:
    """A second gateway on the test database, as another replica or a restart would be: its
    own engine (connections) and settings, the run's catalog."""
    changed = dataclasses.replace(settings, **changes)
    gateway = build_gateway(
        changed,
        clock=clock,
        run_migrations=False,
        catalog=built_once.parts(changed)["catalog"],
        registry=registry_of(),
        engine=create_db_engine(changed.database_url),
    )
    try:
        yield gateway
    finally:
        gateway.close()


def client_of(gateway: Gateway) -> contextlib.closing[TestClient]:
    return contextlib.closing(TestClient(create_app(gateway)))  # not entered: no background tasks


def stored_keys(gateway: Gateway) -> list[str]:
    """The quote signing keys stored (the table keeps the gateway's other secrets too)."""
    with gateway.sessions() as session:
        return list(session.scalars(select(GatewaySecret.value).where(GatewaySecret.name == QUOTE_KEY)))


# ------------------------------------------------------------------ previews as queries


def test_previews_are_queries_that_answer_as_the_mutations_do(graphql, gateway, make_workspace):
    member = make_workspace("Mail Co", plan_code="email", email_credits=10000)
    billing(graphql, member)
    before = snapshot(gateway)

    for field, arguments, fields in (
        ("selectPlan", "($v: String!) { selectPlan(planCode: $v)", SELECT_FIELDS),
        ("quote", "($v: QuoteInput!) { quote(input: $v)", QUOTE_FIELDS),
        ("estimate", "($v: EstimateInput!) { estimate(input: $v)", ESTIMATE_FIELDS),
    ):
        value = {
            "selectPlan": "omnichannel",
            "quote": {"planCode": "omnichannel", "emailCredits": 50000, "messagingCredits": 20000},
            "estimate": {"credits": 1000, "messageType": "SMS", "country": "DE", "sampleText": "Hello"},
        }[field]
        asked = graphql(f"query{arguments} {{ {fields} }} }}", {"v": value}, key=member.key)[field]
        again = graphql(f"query{arguments} {{ {fields} }} }}", {"v": value}, key=member.key)[field]
        mutated = graphql(f"mutation{arguments} {{ {fields} }} }}", {"v": value}, key=member.key)[field]
        assert asked["__typename"] != "UserError" and "code" not in asked, asked
        assert asked == again == mutated  # deterministic at one instant, the same on both paths

    assert snapshot(gateway) == before  # previews write nothing


def test_the_query_quote_uses_the_saved_billing_details_unless_others_are_given(graphql, funded):
    saved = quote(graphql, funded)
    assert saved["dueNow"]["taxLines"] == [{"name": "VAT 19% (DE)", "rate": "0.19"}]
    assert saved["dueNow"]["total"] == eur_json("113.05")

    given = quote(graphql, funded, billingDetails={"customerType": "PERSON", "country": "FR"})
    assert given["dueNow"]["taxLines"] == [{"name": "VAT 20% (FR)", "rate": "0.20"}]
    assert given["dueNow"]["total"] == eur_json("114.00")
    assert given["token"] != saved["token"]  # the token signs the total


def test_a_page_loads_plans_workspace_and_previews_in_one_request(client, gateway, funded):
    variables = {
        "plan": "omnichannel",
        "quote": {"planCode": "omnichannel"},
        "estimate": {"credits": 500, "messageType": "EMAIL"},
    }
    before = snapshot(gateway)

    posted = post(client, funded, PAGE, variables)
    # A query may also be sent as GET, which HTTP caches can keep.
    got = client.get(
        "/graphql",
        params={"query": PAGE, "variables": json.dumps(variables)},
        headers={"Authorization": f"Bearer {funded.key}", "Accept": "application/graphql-response+json"},
    )

    assert got.status_code == 200 and got.json() == {"data": posted}
    assert [plan["code"] for plan in posted["plans"]] == ["free", "email", "omnichannel", "custom"]
    assert posted["workspace"] == {
        "__typename": "Workspace",
        "plan": {"code": "free"},
        "balance": {"amount": "150.00"},
    }
    assert posted["selectPlan"]["__typename"] == "PlanSelection"
    assert (posted["selectPlan"]["emailCredits"], posted["selectPlan"]["messagingCredits"]) == (20000, 5000)
    assert posted["quote"]["__typename"] == "Quote"
    assert posted["quote"]["dueNow"]["total"] == eur_json("113.05")
    assert posted["quote"]["balance"] == {"now": {"amount": "150.00"}, "sufficient": True}
    assert posted["estimate"]["__typename"] == "Estimate" and posted["estimate"]["messages"] == 500
    assert snapshot(gateway) == before


def test_a_query_quote_needs_a_workspace_key(graphql):
    answer = graphql(QUOTE_QUERY, {"input": {"planCode": "omnichannel"}})["quote"]
    assert (answer["__typename"], answer["code"]) == ("AuthenticationRequired", "AUTHENTICATION_REQUIRED")


# ------------------------------------------------------------------ the token round trip


def test_checkout_with_the_token_alone_buys_the_quote(graphql, gateway, funded, make_workspace):
    offer = quote(graphql, funded)
    assert offer["expiresAt"] == (START + timedelta(minutes=30)).isoformat()
    assert offer["token"].startswith("q1.") and len(offer["token"]) < 250

    done = by_token(graphql, funded, offer)

    assert done["__typename"] == "CheckoutSuccess", done
    assert done["kind"] == "NEW_PERIOD"
    assert done["workspace"] == {
        "plan": {"code": "omnichannel"},
        "emailCredits": 20000,
        "messagingCredits": 5000,
        "balance": {"amount": "36.95"},
    }
    assert done["payment"]["amount"] == {"amount": "113.05"}
    # The invoice is the one the resent inputs buy.
    other = make_workspace("Other Ltd")
    fund(graphql, other)
    theirs = quote(graphql, other)
    classic = checkout(
        graphql,
        other,
        planCode="omnichannel",
        emailCredits=theirs["emailCredits"],
        messagingCredits=theirs["messagingCredits"],
        expectedTotal=theirs["dueNow"]["total"]["amount"],
        quoteExpiresAt=theirs["expiresAt"],
    )
    assert classic["__typename"] == "CheckoutSuccess", classic
    assert {**done["invoice"], "number": None} == {**classic["invoice"], "number": None}
    assert done["invoice"]["total"] == {"amount": "113.05", "currency": "EUR"}


def test_a_token_from_the_mutation_works_too_and_so_does_a_card(graphql, make_workspace):
    member = make_workspace("Card Co")
    billing(graphql, member)
    offer = quote(graphql, member, "email", document=QUOTE_MUTATION)

    done = by_token(graphql, member, offer, method="card")
    assert (done["__typename"], done["code"]) == ("PaymentRejected", "CARD_REQUIRED")  # as without a token
    variables = {
        "input": {
            "quoteToken": offer["token"],
            "paymentMethod": {"method": "card", "newCard": card()},
            "idempotencyKey": "card-1",
        }
    }
    done = graphql(CHECKOUT, variables, key=member.key)["checkout"]
    assert done["__typename"] == "CheckoutSuccess", done
    assert done["invoice"]["total"] == {"amount": "26.78", "currency": "EUR"} == offer["dueNow"]["total"]


# ------------------------------------------------------------------ refused tokens change nothing


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param(lambda t: altered(t, 2), "its signature does not match", id="payload-char"),
        pytest.param(lambda t: altered(t, 3), "its signature does not match", id="signature-char"),
        pytest.param(lambda t: altered(t, 3, -1), "its signature does not match", id="signature-last-char"),
        pytest.param(lambda t: t[:-1], "its signature does not match", id="signature-cut"),
        pytest.param(spare_bits, "its signature does not match", id="signature-spare-bits"),
        pytest.param(
            lambda t: altered(t, 1), "signed with a key this gateway no longer uses", id="key-id-char"
        ),
        pytest.param(lambda t: "q2" + t[2:], "not a quote token of this gateway", id="version"),
        pytest.param(lambda t: t + ".x", "not a quote token of this gateway", id="extra-part"),
        pytest.param(lambda t: "", "not a quote token of this gateway", id="empty"),
        pytest.param(lambda t: "x" * 5000, "too long", id="huge"),
        pytest.param(lambda t: minted(t, total="0.01"), "its signature does not match", id="cheaper-total"),
        pytest.param(
            lambda t: minted(t, expires=4102444800000000), "its signature does not match", id="later-expiry"
        ),
        pytest.param(lambda t: minted(t, email=5000), "its signature does not match", id="other-credits"),
    ],
)
def test_an_altered_token_is_refused_and_nothing_is_written(graphql, gateway, funded, change, message):
    offer = quote(graphql, funded)
    before = snapshot(gateway)

    refused = by_token(graphql, funded, {"token": change(offer["token"])})

    assert refused == {
        "__typename": "InvalidQuoteToken",
        "code": "INVALID_QUOTE_TOKEN",
        "field": ["quoteToken"],
        "message": f"the quote token is not valid ({message}); ask for a new quote",
    }
    assert snapshot(gateway) == before
    assert by_token(graphql, funded, offer)["__typename"] == "CheckoutSuccess"  # the key was not used up


def test_another_workspaces_token_is_refused(graphql, gateway, funded, make_workspace):
    stranger = make_workspace("Stranger Ltd")
    billing(graphql, stranger)
    theirs = quote(graphql, stranger)
    before = snapshot(gateway)

    refused = by_token(graphql, funded, theirs)

    assert (refused["__typename"], refused["code"], refused["field"]) == (
        "InvalidQuoteToken",
        "INVALID_QUOTE_TOKEN",
        ["quoteToken"],
    )
    assert "another workspace" in refused["message"]
    assert snapshot(gateway) == before


@pytest.mark.parametrize(
    ("fields", "code", "field"),
    [
        pytest.param({"planCode": "omnichannel"}, "QUOTE_TOKEN_CONFLICT", ["planCode"], id="token-and-plan"),
        pytest.param(
            {"expectedTotal": "113.05"}, "QUOTE_TOKEN_CONFLICT", ["expectedTotal"], id="token-and-total"
        ),
        pytest.param({"quoteToken": None}, "QUOTE_REQUIRED", ["quoteToken"], id="neither"),
        pytest.param(
            {"quoteToken": None, "planCode": "omnichannel", "expectedTotal": "113.05"},
            "QUOTE_REQUIRED",
            ["quoteToken"],
            id="fields-without-expiry",
        ),
    ],
)
def test_a_token_goes_alone_and_something_must_name_the_quote(graphql, gateway, funded, fields, code, field):
    offer = quote(graphql, funded)
    before = snapshot(gateway)

    refused = checkout(graphql, funded, **{"quoteToken": offer["token"], **fields})

    assert (refused["__typename"], refused["code"], refused["field"]) == ("InvalidQuoteToken", code, field)
    assert snapshot(gateway) == before


def test_an_expired_token_is_refused_with_a_new_quote_whose_token_works(graphql, gateway, clock, funded):
    offer = quote(graphql, funded)
    now = clock.advance(minutes=30, seconds=1)
    before = snapshot(gateway)

    refused = by_token(graphql, funded, offer)

    assert refused == {
        "__typename": "QuoteChanged",
        "code": "QUOTE_EXPIRED",
        "field": ["quoteToken"],
        "message": "the quote expired; confirm the new one",
        "expectedTotal": "113.05",
        "quote": {
            "computedAt": now.isoformat(),
            "expiresAt": (now + timedelta(minutes=30)).isoformat(),
            "token": refused["quote"]["token"],
            "dueNow": {"total": {"amount": "113.05"}},
        },
    }
    assert refused["quote"]["token"] != offer["token"]
    assert snapshot(gateway) == before
    done = by_token(graphql, funded, refused["quote"])
    assert done["__typename"] == "CheckoutSuccess" and done["payment"]["amount"] == {"amount": "113.05"}


def test_a_token_is_good_until_it_expires(graphql, clock, funded):
    offer = quote(graphql, funded)
    clock.advance(minutes=30)
    assert by_token(graphql, funded, offer)["__typename"] == "CheckoutSuccess"


def test_a_token_whose_total_is_no_longer_the_price_is_refused(graphql, gateway, funded):
    """The billing details changed after the quote: French VAT (20 %) instead of German (19 %)."""
    offer = quote(graphql, funded)
    billing(graphql, funded, country="FR", postalCode="75001", city="Paris")
    before = snapshot(gateway)

    refused = by_token(graphql, funded, offer)

    assert (refused["__typename"], refused["code"], refused["field"], refused["expectedTotal"]) == (
        "QuoteChanged",
        "QUOTE_CHANGED",
        ["quoteToken"],
        "113.05",
    )
    assert refused["message"] == "the total is now 114.00 EUR; confirm the new quote"
    assert refused["quote"]["dueNow"]["total"] == {"amount": "114.00"}
    assert snapshot(gateway) == before
    assert by_token(graphql, funded, refused["quote"])["__typename"] == "CheckoutSuccess"


def test_a_token_priced_before_another_checkout_changed_the_plan_is_refused(graphql, gateway, funded):
    omnichannel = quote(graphql, funded)  # from Free: a new period, 113.05
    email = quote(graphql, funded, "email")
    assert by_token(graphql, funded, email, key="first")["__typename"] == "CheckoutSuccess"
    before = snapshot(gateway)

    refused = by_token(graphql, funded, omnichannel, key="second")

    # From Email now: the upgrade is prorated against the Email plan just paid.
    assert (refused["__typename"], refused["code"], refused["expectedTotal"]) == (
        "QuoteChanged",
        "QUOTE_CHANGED",
        "113.05",
    )
    assert refused["quote"]["dueNow"]["total"] != {"amount": "113.05"}
    assert snapshot(gateway) == before


# ------------------------------------------------------------------ idempotency


def test_a_retry_with_the_same_token_replays_even_after_the_token_expired(graphql, gateway, clock, funded):
    offer = quote(graphql, funded)
    first = by_token(graphql, funded, offer, key="once")
    clock.advance(hours=1)

    again = by_token(graphql, funded, offer, key="once")

    assert first["__typename"] == again["__typename"] == "CheckoutSuccess"
    assert again["payment"]["id"] == first["payment"]["id"]
    assert len(rows(gateway, Invoice, funded)) == 1


def test_the_same_key_with_another_token_is_refused(graphql, gateway, clock, funded):
    first = quote(graphql, funded)
    clock.advance(minutes=1)
    second = quote(graphql, funded)  # the same order a minute later: another token
    assert second["token"] != first["token"]
    assert by_token(graphql, funded, first, key="k")["__typename"] == "CheckoutSuccess"

    refused = by_token(graphql, funded, second, key="k")

    assert (refused["__typename"], refused["code"]) == ("IdempotencyKeyRejected", "IDEMPOTENCY_KEY_REUSED")
    assert len(rows(gateway, Invoice, funded)) == 1


# ------------------------------------------------------------------ the key


def test_gateways_on_one_database_share_the_key_they_made(
    graphql, gateway, settings, clock, built_once, funded
):
    offer = quote(graphql, funded)  # signed by the test's gateway

    with another_gateway(settings, clock, built_once) as replica, client_of(replica) as client:
        assert replica.quote_keys.current.id == gateway.quote_keys.current.id
        assert len(stored_keys(replica)) == 1
        done = post(
            client,
            funded,
            CHECKOUT,
            checkout_input(quoteToken=offer["token"], key="r"),
        )["checkout"]
        assert done["__typename"] == "CheckoutSuccess", done
        theirs = post(client, funded, QUOTE_QUERY, {"input": {"planCode": "email"}})["quote"]
    # ... and what the replica signed, this gateway verifies (a downgrade: scheduled, nothing due).
    assert by_token(graphql, funded, theirs, key="back")["__typename"] == "CheckoutSuccess"


def test_the_setting_overrides_the_stored_key(graphql, gateway, settings, clock, built_once, funded):
    stored = quote(graphql, funded)

    configured = another_gateway(settings, clock, built_once, secret_key=KEY_A)
    with configured as replica, client_of(replica) as client:
        variables = checkout_input(quoteToken=stored["token"], key="x")
        refused = post(client, funded, CHECKOUT, variables)["checkout"]
        assert (refused["__typename"], refused["code"]) == ("InvalidQuoteToken", "INVALID_QUOTE_TOKEN")
        assert "no longer uses" in refused["message"]
        signed = post(client, funded, QUOTE_QUERY, {"input": {"planCode": "omnichannel"}})["quote"]
    # Another replica with the same setting verifies it; the stored key does not.
    with another_gateway(settings, clock, built_once, secret_key=KEY_A) as peer, client_of(peer) as client:
        variables = checkout_input(quoteToken=signed["token"], key="y")
        assert post(client, funded, CHECKOUT, variables)["checkout"]["__typename"] == "CheckoutSuccess"
    assert by_token(graphql, funded, signed, key="z")["code"] == "INVALID_QUOTE_TOKEN"


def test_a_configured_key_writes_nothing_at_start_up(gateway, settings, clock, built_once):
    with gateway.engine.begin() as connection:
        connection.execute(delete(GatewaySecret))
    before = snapshot(gateway)

    with another_gateway(settings, clock, built_once, secret_key=KEY_A):
        pass

    assert snapshot(gateway) == before  # and a start-up that finds the stored key writes nothing either
    with another_gateway(settings, clock, built_once):
        pass
    made = snapshot(gateway)
    with another_gateway(settings, clock, built_once):
        pass
    assert snapshot(gateway) == made and len(made["gateway_secrets"]) == 1


def test_the_previous_key_still_verifies_after_a_rotation(
    graphql, gateway, settings, clock, built_once, funded
):
    with another_gateway(settings, clock, built_once, secret_key=KEY_A) as old, client_of(old) as client:
        offer = post(client, funded, QUOTE_QUERY, {"input": {"planCode": "omnichannel"}})["quote"]

    rotated = {"secret_key": KEY_B, "secret_key_previous": KEY_A}
    with another_gateway(settings, clock, built_once, **rotated) as new, client_of(new) as client:
        fresh = post(client, funded, QUOTE_QUERY, {"input": {"planCode": "email"}})["quote"]
        assert fresh["token"].split(".")[1] != offer["token"].split(".")[1]  # signed with the new key
        variables = checkout_input(quoteToken=offer["token"], key="r")
        assert post(client, funded, CHECKOUT, variables)["checkout"]["__typename"] == "CheckoutSuccess"
    with another_gateway(settings, clock, built_once, secret_key=KEY_B) as later, client_of(later) as client:
        variables = checkout_input(quoteToken=offer["token"], key="s")
        assert post(client, funded, CHECKOUT, variables)["checkout"]["code"] == "INVALID_QUOTE_TOKEN"


def test_gateways_starting_together_make_one_key(gateway, settings, clock, built_once):
    with gateway.engine.begin() as connection:
        connection.execute(delete(GatewaySecret))
    starting = 4
    barrier = threading.Barrier(starting)
    key_ids: list[str] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            barrier.wait(timeout=10)
            with another_gateway(settings, clock, built_once) as started:
                key_ids.append(started.quote_keys.current.id)
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=start) for _ in range(starting)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not errors, errors
    assert len(key_ids) == starting and len(set(key_ids)) == 1
    with gateway.engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(GatewaySecret)) == 1


def test_the_stored_key_is_never_logged_even_with_sql_echo(gateway, settings, clock, built_once, caplog):
    with gateway.engine.begin() as connection:
        connection.execute(delete(GatewaySecret))
    caplog.set_level(logging.DEBUG)  # SQLAlchemy then logs every statement, its parameters and rows
    with contextlib.ExitStack() as restore:
        for logger in (logging.getLogger("sqlalchemy.engine"), logging.getLogger("sqlalchemy.pool")):
            restore.callback(logger.setLevel, logger.level)
            logger.setLevel(logging.DEBUG)
        with (
            another_gateway(settings, clock, built_once) as made,
            made.sessions() as session,
        ):  # makes the key
            session.scalar(select(func.count()).select_from(GatewaySecret))  # the log does work
        with another_gateway(settings, clock, built_once) as found:  # reads it
            pass

    stored = stored_keys(gateway)  # (the others are closed)
    assert len(stored) == 1 and made.quote_keys.current == found.quote_keys.current
    logged = "\n".join(f"{record.getMessage()} {record.args!r}" for record in caplog.records)
    assert "gateway_secrets" in logged  # the ORM's count above was logged
    assert stored[0] not in logged


def test_the_key_settings_are_read_checked_and_never_shown():
    env = {"BILLING_GATEWAY_SECRET_KEY": KEY_A, "BILLING_GATEWAY_SECRET_KEY_PREVIOUS": KEY_B}
    settings = Settings.from_env(env)
    assert (settings.secret_key, settings.secret_key_previous) == (KEY_A, KEY_B)
    assert KEY_A not in repr(settings) and KEY_B not in repr(settings)
    with pytest.raises(SettingsError, match=r"^BILLING_GATEWAY_SECRET_KEY must have at least 32 bytes"):
        Settings.from_env({"BILLING_GATEWAY_SECRET_KEY": "short"})
    with pytest.raises(SettingsError, match=r"^BILLING_GATEWAY_SECRET_KEY_PREVIOUS must have at least 32"):
        Settings.from_env({"BILLING_GATEWAY_SECRET_KEY_PREVIOUS": "x" * 31})
    assert KEY_A not in repr(QuoteKeys(SigningKey(KEY_A.encode())))


# ------------------------------------------------------------------ the token format


CLAIMS = QuoteClaims(
    "0123456789abcdef0123456789abcdef",
    "omnichannel",
    20000,
    5000,
    Money("113.05", "EUR"),
    START + timedelta(minutes=30, microseconds=7),
)
KEYS = QuoteKeys(SigningKey(KEY_A.encode()))


def test_a_token_round_trips_its_claims_exactly():
    token = KEYS.sign(CLAIMS)
    assert KEYS.sign(CLAIMS) == token  # canonical: the same claims, the same token
    assert KEYS.verify(token) == CLAIMS
    assert QuoteKeys(SigningKey(KEY_B.encode()), (SigningKey(KEY_A.encode()),)).verify(token) == CLAIMS
    with pytest.raises(InvalidQuoteToken):
        QuoteKeys(SigningKey(KEY_B.encode())).verify(token)
    with pytest.raises(ValueError, match="at least 32 bytes"):
        SigningKey(b"short")


@examples(deadline=None, max_examples=300)
@given(position=st.integers(min_value=0), replacement=st.characters(codec="ascii"))
def test_any_changed_character_makes_a_token_invalid(position, replacement):
    token = KEYS.sign(CLAIMS)
    index = position % len(token)
    if token[index] == replacement:
        return
    changed = token[:index] + replacement + token[index + 1 :]
    with pytest.raises(InvalidQuoteToken):
        KEYS.verify(changed)
