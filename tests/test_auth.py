"""Workspace API keys: bearer tokens, stored only as hashes, scoped to their workspace."""

from __future__ import annotations

import hashlib
import re
import time

import pytest
from sqlalchemy import select, update

from gateway.services.key_cache import CHECK_INTERVAL
from gateway.services.keys import issue_api_key, revoke_api_key
from gateway.storage.db import ApiKey

from helpers import snapshot

WORKSPACE = """{ workspace { __typename
  ... on Workspace { id plan { code } emailCredits messagingCredits }
  ... on UserError { code message field } } }"""
QUOTE = """mutation($input: QuoteInput!) { quote(input: $input) { __typename
  ... on Quote { kind emailCredits messagingCredits dueNow { total { amount } } }
  ... on UserError { code message field } } }"""
SELECT = """mutation { selectPlan(planCode: "email") { __typename
  ... on PlanSelection { change effectiveAt } } }"""

NO_KEY = {
    "__typename": "AuthenticationRequired",
    "code": "AUTHENTICATION_REQUIRED",
    "field": [],
    "message": "this needs a workspace API key: send Authorization: Bearer <key>",
}
BAD_KEY = {
    "__typename": "AuthenticationRequired",
    "code": "AUTHENTICATION_REQUIRED",
    "field": [],
    "message": "the API key is not valid",
}
OMNI_QUOTE = {"input": {"planCode": "omnichannel"}}


def call(client, query: str, variables: dict | None = None, authorization: str | bytes | None = None) -> dict:
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


@pytest.fixture
def member(make_workspace):
    return make_workspace("Acme")


def test_no_key(client):
    assert call(client, WORKSPACE)["workspace"] == NO_KEY
    assert call(client, QUOTE, OMNI_QUOTE)["quote"] == NO_KEY


def wrong_authorizations(key: str) -> list[str | bytes]:
    _, prefix, secret = key.split("_", 2)
    flipped = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    return [
        f"Bearer {key[:-1]}",  # truncated
        f"Bearer {key}x",  # extended
        f"Bearer bgw_{prefix}_{flipped}",  # right prefix, wrong secret
        f"Bearer bgw_{'0' * 12}_{secret}",  # unknown prefix
        f"Bearer xyz_{prefix}_{secret}",  # wrong key scheme
        f"Bearer {key.upper()}",
        "Bearer bgw__",
        "Bearer bgw",
        "Bearer ___",
        "Bearer " + "x" * 10_000,
        f"Bearer bgw_{prefix}",
        "Bearer",
        "Bearer ",
        "Bearer    ",
        "",  # no token at all
        f"Basic {key}",
        f"Token {key}",
        key,
        f"Bearer: {key}",
        f"Bearer{key}",  # malformed header
        b"Bearer bgw_" + "\u00e9".encode("latin-1") * 12 + b"_x",  # non-ASCII header bytes
        b"Bearer \xff\xfe",
    ]


@pytest.mark.parametrize("index", range(len(wrong_authorizations("bgw_0123456789ab_secret"))))
def test_wrong_or_malformed_key(client, member, index):
    authorization = wrong_authorizations(member.key)[index]
    assert call(client, WORKSPACE, authorization=authorization)["workspace"] == BAD_KEY
    assert call(client, QUOTE, OMNI_QUOTE, authorization=authorization)["quote"] == BAD_KEY


@pytest.mark.parametrize("template", ["Bearer {}", "bearer {}", "BEARER {}", "Bearer   {}  "])
def test_the_bearer_scheme_is_case_insensitive(client, member, template):
    assert call(client, WORKSPACE, authorization=template.format(member.key))["workspace"]["id"] == member.id


def test_revoked_key(client, gateway, member, clock):
    with gateway.sessions.begin() as session:
        other = issue_api_key(session, member.id, clock.now, name="second")
    assert call(client, WORKSPACE, authorization=f"Bearer {member.key}")["workspace"]["id"] == member.id
    with gateway.sessions.begin() as session:
        assert revoke_api_key(session, member.key, clock.now) is not None
    # At once in the process that revoked it (the key was just used, and known to the cache).
    assert call(client, WORKSPACE, authorization=f"Bearer {member.key}")["workspace"] == BAD_KEY
    assert call(client, QUOTE, OMNI_QUOTE, authorization=f"Bearer {member.key}")["quote"] == BAD_KEY
    # The workspace's other key is unaffected.
    assert call(client, WORKSPACE, authorization=f"Bearer {other.secret}")["workspace"]["id"] == member.id


def test_public_fields_ignore_a_wrong_key(client, member):
    data = call(client, "{ plans { code } messageTypes { code } }", authorization="Bearer bgw_nope")
    assert len(data["plans"]) == 4 and data["messageTypes"][0]["code"] == "EMAIL"


def test_a_key_only_ever_sees_its_own_workspace(client, make_workspace):
    a = make_workspace("Alpha", plan_code=None)  # Free
    b = make_workspace("Beta", plan_code="omnichannel", email_credits=50000, messaging_credits=10000)
    for _ in range(3):  # interleaved, so nothing leaks between requests
        for member, plan, limits in ((a, "free", (1000, 0)), (b, "omnichannel", (50000, 10000))):
            auth = f"Bearer {member.key}"
            workspace = call(client, WORKSPACE, authorization=auth)["workspace"]
            assert (workspace["id"], workspace["plan"]["code"]) == (member.id, plan)
            assert (workspace["emailCredits"], workspace["messagingCredits"]) == limits
    # Quotes price the caller's own subscription: A starts a new period, B has nothing to change.
    assert call(client, QUOTE, OMNI_QUOTE, authorization=f"Bearer {a.key}")["quote"] == {
        "__typename": "Quote",
        "kind": "NEW_PERIOD",
        "emailCredits": 20000,
        "messagingCredits": 5000,
        "dueNow": {"total": {"amount": "95.00"}},
    }
    assert call(client, QUOTE, OMNI_QUOTE, authorization=f"Bearer {b.key}")["quote"] == {
        "__typename": "Quote",
        "kind": "NONE",
        "emailCredits": 50000,
        "messagingCredits": 10000,
        "dueNow": {"total": {"amount": "0.00"}},
    }
    assert call(client, SELECT, authorization=f"Bearer {a.key}")["selectPlan"]["change"] == "NEW_PERIOD"
    assert call(client, SELECT, authorization=f"Bearer {b.key}")["selectPlan"]["change"] == "DOWNGRADE"


def test_api_keys_are_stored_only_as_sha256_hashes(gateway, make_workspace):
    members = [make_workspace("Alpha"), make_workspace("Beta", plan_code="email")]
    with gateway.engine.connect() as connection:
        rows = connection.execute(select(ApiKey.__table__)).mappings().all()
    assert len(rows) == 2
    dump = "\n".join(row for table in snapshot(gateway).values() for row in table)  # every stored value
    for member in members:
        secret_part = member.key.split("_", 2)[2]
        assert member.key not in dump and secret_part not in dump
        digest = hashlib.sha256(member.key.encode()).hexdigest()
        assert [row["key_hash"] for row in rows if row["workspace_id"] == member.id] == [digest]
    for row in rows:
        assert re.fullmatch(r"[0-9a-f]{64}", row["key_hash"])
        assert re.fullmatch(r"[0-9a-f]{12}", row["prefix"])


def test_a_key_revoked_elsewhere_signs_nobody_in_a_second_later(client, gateway, member, clock):
    """Revoked by another process (another replica's CLI, or by hand in SQL): each gateway
    checks at most once a second whether the keys changed."""
    assert call(client, WORKSPACE, authorization=f"Bearer {member.key}")["workspace"]["id"] == member.id
    with gateway.sessions.begin() as session:
        session.execute(
            update(ApiKey)
            .where(ApiKey.key_hash == hashlib.sha256(member.key.encode()).hexdigest())
            .values(revoked_at=clock.now)
        )
    time.sleep(CHECK_INTERVAL + 0.1)
    assert call(client, WORKSPACE, authorization=f"Bearer {member.key}")["workspace"] == BAD_KEY
