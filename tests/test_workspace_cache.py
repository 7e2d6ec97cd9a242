"""The Order Preview's reads between writes (gateway.storage.workspace_cache), on both databases.

Quotes of an unchanged workspace are priced from memory; whatever changes the workspace or its
billing details (the API, another process's commit, hand-written SQL, a second replica on
PostgreSQL) is priced by the next quote, or on another replica as soon as its notification
arrives (within a second here); quotes racing writes never keep a price that a write made old.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event, text
from starlette.testclient import TestClient

from gateway.events.notify import APPLICATION_NAME
from gateway.server.app import build_gateway
from gateway.server.http import create_app
from gateway.storage.db import create_db_engine

from helpers import GERMAN_PERSON, UPDATE_BILLING_DETAILS, billing, card

QUOTE = """query($input: QuoteInput!) { quote(input: $input) { __typename
  ... on Quote { dueNow { total { amount } taxLines { rate } } balance { now { amount } } } } }"""
TOP_UP = """mutation($input: TopUpInput!) { topUpBalance(input: $input) { __typename
  ... on UserError { code message } } }"""
ORDER = {"planCode": "omnichannel", "emailCredits": 50000, "messagingCredits": 20000}
NOTIFIED_WITHIN = 5.0  # seconds: a notification from another replica (or by hand) arrives sooner


def wait_until(condition: Callable[[], bool], timeout: float = NOTIFIED_WITHIN) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def postgres(gateway) -> bool:
    return gateway.engine.dialect.name == "postgresql"


@pytest.fixture
def listening(gateway, client) -> None:
    """On PostgreSQL the cache serves only while the notifier LISTENs (the app's lifespan runs it)."""
    if postgres(gateway):
        assert wait_until(lambda: gateway.notifier.listening)


def quote(graphql, member) -> dict[str, Any]:
    answer = graphql(QUOTE, {"input": ORDER}, key=member.key)["quote"]
    assert answer["__typename"] == "Quote", answer
    return answer


def vat(answer: dict[str, Any]) -> list[str]:
    return [line["rate"] for line in answer["dueNow"]["taxLines"]]


def balance(answer: dict[str, Any]) -> str:
    return answer["balance"]["now"]["amount"]


class Reads:
    """Counts the quote's reads of a workspace with its billing details (one statement)."""

    def __init__(self, engine) -> None:
        self.count = 0
        self.engine = engine
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn, _cursor, statement: str, *_args: Any) -> None:
        if "FROM workspaces LEFT OUTER JOIN billing_details" in statement:
            self.count += 1

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._seen)


@pytest.fixture
def reads(gateway) -> Iterator[Reads]:
    counter = Reads(gateway.engine)
    yield counter
    counter.close()


def test_quotes_of_an_unchanged_workspace_read_it_once(graphql, client, make_workspace, listening, reads):
    member = make_workspace()
    billing(graphql, member)
    answers = [quote(graphql, member) for _ in range(10)]
    assert reads.count == 1
    assert all(answer == answers[0] for answer in answers)
    assert vat(answers[0]) == ["0.19"]
    scraped = client.get("/metrics").text  # the first quote missed (once more if it left the event loop)
    assert 'billing_gateway_workspace_cache_lookups_total{result="hit"} 9.0' in scraped
    assert "billing_gateway_workspace_cache_entries 1.0" in scraped


def test_every_change_through_the_api_is_priced_by_the_next_quote(graphql, make_workspace, listening, reads):
    member = make_workspace()
    assert vat(quote(graphql, member)) == []  # no billing details yet: no tax
    billing(graphql, member)
    assert vat(quote(graphql, member)) == ["0.19"]
    billing(graphql, member, country="AT", postalCode="1010", city="Wien")
    assert vat(quote(graphql, member)) == ["0.20"]
    before = balance(quote(graphql, member))
    topped = graphql(
        TOP_UP,
        {
            "input": {
                "amount": "50.00",
                "paymentMethod": {"method": "card", "newCard": card()},
                "idempotencyKey": "t-1",
            }
        },
        key=member.key,
    )["topUpBalance"]
    assert topped["__typename"] == "TopUpSuccess", topped
    assert Decimal(balance(quote(graphql, member))) == Decimal(before) + 50
    assert reads.count == 4  # one after each change, none for a repeated quote


def _by_hand(database_url: str, sql: str, parameters: dict[str, Any]) -> None:
    """A commit that no session of the gateway made: another engine, as another process would."""
    engine = create_db_engine(database_url, pool_size=1, max_overflow=0)
    try:
        with engine.begin() as connection:
            connection.execute(text(sql), parameters)
    finally:
        engine.dispose()


def test_a_change_made_by_hand_is_priced(graphql, gateway, make_workspace, listening, database_url):
    member = make_workspace()
    billing(graphql, member)
    assert vat(quote(graphql, member)) == ["0.19"]
    assert balance(quote(graphql, member)) == "0.00"
    _by_hand(
        database_url,
        "UPDATE billing_details SET country = 'AT', postal_code = '1010' WHERE workspace_id = :id",
        {"id": member.id},
    )
    _by_hand(database_url, "UPDATE workspaces SET balance_minor = 1234 WHERE id = :id", {"id": member.id})
    if postgres(gateway):  # the triggers' notification arrives through the LISTEN connection
        assert wait_until(lambda: balance(quote(graphql, member)) == "12.34")
    answer = quote(graphql, member)  # on SQLite at once: data_version moved
    assert (vat(answer), balance(answer)) == (["0.20"], "12.34")


def test_quotes_racing_writes_never_keep_a_price_a_write_made_old(graphql, client, make_workspace, listening):
    """Readers keep filling the cache while a writer changes the country back and forth; after
    each write, the writer's own next quote must show it (a read that began before the write
    and finished after it must not have been kept)."""
    member = make_workspace()
    billing(graphql, member)
    stop = threading.Event()
    failures: list[BaseException] = []

    def read() -> None:
        try:
            while not stop.is_set():
                quote(graphql, member)
        except BaseException as error:  # reported by the main thread
            failures.append(error)
            raise

    readers = [threading.Thread(target=read) for _ in range(3)]
    for reader in readers:
        reader.start()
    try:
        for n in range(12):
            country, rate, city = ("AT", "0.20", "Wien") if n % 2 == 0 else ("DE", "0.19", "Köln")
            saved = graphql(
                UPDATE_BILLING_DETAILS,
                {"input": {**GERMAN_PERSON, "country": country, "city": city}},
                key=member.key,
            )["updateBillingDetails"]
            assert saved["__typename"] == "BillingDetails", saved
            assert vat(quote(graphql, member)) == [rate], f"write {n}"
    finally:
        stop.set()
        for reader in readers:
            reader.join(timeout=30)
    assert not failures, failures


def test_another_replica_prices_a_change_once_notified(
    graphql, gateway, settings, clock, built_once, make_workspace, listening
):
    """PostgreSQL: replica B keeps the rows; a change through replica A reaches B's cache by the
    triggers' notification, and B's next quotes price it."""
    if not postgres(gateway):
        pytest.skip("replicas share a PostgreSQL database")
    member = make_workspace()
    billing(graphql, member)
    replica = build_gateway(settings, clock=clock, run_migrations=False, **built_once.parts(settings))
    counter = Reads(replica.engine)
    try:
        with TestClient(create_app(replica)) as other:
            assert wait_until(lambda: replica.notifier.listening)

            def quote_on_b() -> dict[str, Any]:
                response = other.post(
                    "/graphql",
                    json={"query": QUOTE, "variables": {"input": ORDER}},
                    headers={"Authorization": f"Bearer {member.key}"},
                )
                return response.json()["data"]["quote"]

            assert vat(quote_on_b()) == ["0.19"]
            reads_before = counter.count
            assert vat(quote_on_b()) == ["0.19"]
            assert counter.count == reads_before  # kept
            billing(graphql, member, country="AT", postalCode="1010", city="Wien")  # through A
            assert wait_until(lambda: vat(quote_on_b()) == ["0.20"])
    finally:
        counter.close()
        replica.workspace_cache.close()  # not replica.close(): the engine is the run's


def test_nothing_is_served_while_the_listen_connection_is_down_and_all_is_forgotten_after(
    graphql, gateway, make_workspace, listening, reads, database_url
):
    """PostgreSQL: a change whose notification nobody received (the LISTEN connection was
    down) is priced all the same: nothing is served while it is down, and what was kept
    before is forgotten when it is back."""
    if not postgres(gateway):
        pytest.skip("SQLite needs no notifications")
    member = make_workspace()
    billing(graphql, member)
    assert vat(quote(graphql, member)) == ["0.19"]
    assert vat(quote(graphql, member)) == ["0.19"]
    assert reads.count == 1  # kept
    with gateway.engine.connect() as connection:
        connection.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = :name AND datname = current_database()"
            ),
            {"name": APPLICATION_NAME},
        )
    assert wait_until(lambda: not gateway.notifier.listening)
    _by_hand(
        database_url,
        "UPDATE billing_details SET country = 'AT', postal_code = '1010' WHERE workspace_id = :id",
        {"id": member.id},
    )
    assert vat(quote(graphql, member)) == ["0.20"]  # read from the database
    assert wait_until(lambda: gateway.notifier.listening, timeout=15)
    assert vat(quote(graphql, member)) == ["0.20"]  # what was kept before the outage is gone
    assert reads.count == 3
