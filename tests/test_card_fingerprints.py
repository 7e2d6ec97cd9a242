"""Card fingerprints (issue 11): what ``SavedCard.fingerprint`` shows, and the database keeps,
is the processor's fingerprint under this installation's own key. The sandbox's fingerprint is
an HMAC under a public constant, so a card number could be recovered from it and the last four
digits by trying every number; under the installation's key it cannot."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

from sqlalchemy import select
from stdnum import luhn

from billing_gateway_payment_card import sandbox
from gateway.core.catalog import load_catalog
from gateway.server.app import CARD_FINGERPRINT_KEY
from gateway.services.cards import keyed_fingerprint
from gateway.services.workspaces import create_workspace
from gateway.storage.db import Card, create_db_engine, migrate, session_factory
from gateway.storage.secrets import shared_secret

from helpers import card

ADD_CARD = """mutation($input: AddCardInput!) { addCard(input: $input) {
  __typename ... on CardAdded { card { fingerprint last4 } } } }"""
NUMBER = "4242424242424242"


def sandbox_fingerprint(number: str) -> str:
    """What the sandbox processor's fingerprint is: public, so anyone can compute it."""
    return hmac.new(sandbox._SANDBOX_KEY, b"fingerprint\x00" + number.encode(), hashlib.sha256).hexdigest()[
        :32
    ]


def test_the_shown_fingerprint_cannot_be_searched_for_the_card_number(graphql, make_workspace):
    member, other = make_workspace("Acme"), make_workspace("Other")
    added = graphql(ADD_CARD, {"input": {"card": card(NUMBER), "idempotencyKey": "c"}}, key=member.key)
    shown = added["addCard"]["card"]
    # The attack that worked: every number with the card's first six and last four digits that
    # passes Luhn (100,000 of them), under the public key. None matches now.
    first6, last4 = NUMBER[:6], shown["last4"]
    candidates = (f"{first6}{middle:06d}{last4}" for middle in range(1_000_000))
    matches = [n for n in candidates if luhn.is_valid(n) and sandbox_fingerprint(n) == shown["fingerprint"]]
    assert matches == []
    assert sandbox_fingerprint(NUMBER) != shown["fingerprint"]
    # Still the same for the same card, so duplicates are spotted, across workspaces too.
    again = graphql(ADD_CARD, {"input": {"card": card(NUMBER), "idempotencyKey": "d"}}, key=other.key)
    assert again["addCard"]["card"]["fingerprint"] == shown["fingerprint"]


def test_migration_0016_rekeys_the_cards_saved_before(tmp_path):
    engine = create_db_engine(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        migrate(engine, "0015")
        now = datetime(2026, 11, 1, tzinfo=UTC)
        with session_factory(engine).begin() as session:
            workspace = create_workspace(session, load_catalog(None), "Old", now)
            session.add(
                Card(
                    id="c1",
                    workspace_id=workspace.id,
                    token="tok",
                    brand="visa",
                    last4="4242",
                    exp_month=12,
                    exp_year=2030,
                    fingerprint=sandbox_fingerprint(NUMBER),
                    created_at=now,
                )
            )
        migrate(engine)
        key = shared_secret(engine, CARD_FINGERPRINT_KEY)  # the one the migration made
        with session_factory(engine)() as session:
            stored = session.scalar(select(Card.fingerprint))
        assert stored == keyed_fingerprint(key, sandbox_fingerprint(NUMBER))
    finally:
        engine.dispose()
