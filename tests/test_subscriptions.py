"""GraphQL subscriptions over graphql-transport-ws, against the real server.

The app runs under uvicorn on 127.0.0.1 (a free port) in a thread, on the test
database; changes are made over HTTP and subscribers speak graphql-transport-ws
with the ``websockets`` client. The notifier's safety poll is set to a minute, so an
event that arrives within a few seconds was delivered by a wake-up, not by polling.
Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import httpx2 as httpx
import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import insert, update
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from gateway.events import catalog as ev
from gateway.events.outbox import PAYLOAD_VERSION, EventType, emit
from gateway.storage.db import OutboxEvent, Workspace
from gateway.storage.locks import lock_workspace

from helpers import GERMAN_PERSON, ServerThread, card, post

PROTOCOL = "graphql-transport-ws"
WAIT = 5.0  # seconds: the longest any expected message may take
QUIET = 0.5  # seconds: how long "nothing arrives" is watched
ROOT = Path(__file__).resolve().parent.parent


UPDATE_DETAILS = """mutation($input: UpdateBillingDetailsInput!) { updateBillingDetails(input: $input) {
  __typename ... on BillingDetails { missingFields } } }"""
TOP_UP = """mutation($input: TopUpInput!) { topUpBalance(input: $input) { __typename
  ... on TopUpSuccess { balance { amount } payment { id } } ... on UserError { code message } } }"""
QUOTE = """mutation($input: QuoteInput!) { quote(input: $input) { __typename
  ... on Quote { emailCredits messagingCredits expiresAt dueNow { total { amount } } }
  ... on UserError { code message } } }"""
CHECKOUT = """mutation($input: CheckoutInput!) { checkout(input: $input) { __typename
  ... on CheckoutSuccess { kind } ... on UserError { code message } } }"""
CANCEL = "mutation { cancelScheduledChange { __typename } }"

EVENTS = """subscription($types: [String!], $after: Int) { events(types: $types, afterSequence: $after) {
  id type workspaceId sequence occurredAt version payload } }"""
PLAN_CHANGED = """subscription($after: Int) {
  planChanged(afterSequence: $after) { id type workspaceId sequence occurredAt version payload } }"""


# ------------------------------------------------------------------ the server


@pytest.fixture
def server(gateway) -> Iterator[ServerThread]:
    gateway.notifier.poll_interval = 60.0  # delivery in these tests comes from wake-ups
    with ServerThread(gateway) as running:
        yield running


@pytest.fixture
def http(server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=WAIT * 2) as client:
        yield client


# ------------------------------------------------------------------ subscribers


class Subscriber:
    """A graphql-transport-ws client of one workspace."""

    def __init__(self, ws: ClientConnection, params: dict[str, Any] | None) -> None:
        self.ws = ws
        assert self.ws.subprotocol == PROTOCOL
        self.send({"type": "connection_init", "payload": params or {}})

    def send(self, message: dict[str, Any]) -> None:
        self.ws.send(json.dumps(message))

    def receive(self, timeout: float = WAIT) -> dict[str, Any]:
        return json.loads(self.ws.recv(timeout=timeout))

    def ack(self) -> dict[str, Any]:
        message = self.receive()
        assert message["type"] == "connection_ack", message
        return message.get("payload") or {}

    def subscribe(self, query: str, variables: dict[str, Any] | None = None, id: str = "1") -> None:
        self.send({"id": id, "type": "subscribe", "payload": {"query": query, "variables": variables or {}}})

    def next(self, id: str = "1", timeout: float = WAIT) -> dict[str, Any]:
        """The next event of subscription ``id``."""
        message = self.receive(timeout)
        assert message.get("id") == id and message["type"] == "next", message
        assert "errors" not in message["payload"], message
        data = message["payload"]["data"]
        return next(iter(data.values()))

    def events(self, count: int, id: str = "1") -> list[dict[str, Any]]:
        return [self.next(id) for _ in range(count)]

    def quiet(self, seconds: float = QUIET) -> None:
        """Nothing arrives for ``seconds``."""
        with pytest.raises(TimeoutError):
            message = self.receive(timeout=seconds)
            pytest.fail(f"unexpected message: {message}")

    def close(self) -> None:
        self.ws.close()


def open_socket(server: ServerThread) -> ClientConnection:
    return connect(
        f"ws://127.0.0.1:{server.port}/graphql",
        subprotocols=[PROTOCOL],
        open_timeout=WAIT,
        close_timeout=WAIT,
    )


@pytest.fixture
def connect_as(server) -> Iterator[Any]:
    """Open a subscriber, as a workspace (its key in connection_init) or with given ``params``."""
    with contextlib.ExitStack() as sockets:

        def open_(member=None, params: dict[str, Any] | None = None) -> Subscriber:
            ws = sockets.enter_context(open_socket(server))
            return Subscriber(ws, params if params is not None else {"authorization": f"Bearer {member.key}"})

        yield open_


def subscribed(
    connect_as, member, query: str = EVENTS, variables: dict[str, Any] | None = None
) -> Subscriber:
    """A subscriber of ``member``'s workspace, acknowledged and subscribed.

    Subscribing is asynchronous (graphql-transport-ws has no "subscribed" message): a
    stream without ``after`` starts after whatever is latest when the server gets to it.
    Tests that need every event pass ``after``; see :func:`wait_until_live` otherwise.
    """
    subscriber = connect_as(member)
    assert subscriber.ack() == {"workspaceId": member.id}
    subscriber.subscribe(query, variables)
    return subscriber


def wait_until_live(gateway, subscriber: Subscriber, member, attempts: int = 20) -> list[int]:
    """Commit marker events until the live stream delivers one; the sequences it delivered.

    A marker committed before the stream read the latest sequence is rightly not sent.
    """
    committed: list[int] = []
    for _ in range(attempts):
        committed.append(commit_event(gateway, member, {"marker": True}))
        try:
            first = subscriber.next(timeout=QUIET)
        except TimeoutError:
            continue
        received = [first["sequence"]] + [
            subscriber.next()["sequence"] for _ in range(committed[-1] - first["sequence"])
        ]
        assert received == list(range(first["sequence"], committed[-1] + 1))  # contiguous from the first
        return received
    pytest.fail("the live stream never started")


def commit_event(
    gateway, member, payload: dict[str, Any] | None = None, *, type: EventType = EventType.CARD_ADDED
) -> int:
    """Write one event the way the gateway does: locked workspace, same transaction."""
    with gateway.write_sessions() as session, session.begin():
        workspace = lock_workspace(session, member.id)
        event = emit(session, workspace, type, payload or {}, gateway.clock())
    return event.sequence


# ------------------------------------------------------------------ the flows


def top_up(http, member, amount: str, key: str) -> dict[str, Any]:
    result = post(
        http,
        member,
        TOP_UP,
        {
            "input": {
                "amount": amount,
                "idempotencyKey": key,
                "paymentMethod": {"method": "card", "newCard": card()},
            }
        },
    )
    assert result["topUpBalance"]["__typename"] == "TopUpSuccess", result
    return result["topUpBalance"]


def checkout(http, member, plan: str, key: str, **sliders: int) -> None:
    quote = post(http, member, QUOTE, {"input": {"planCode": plan, **sliders}})["quote"]
    assert quote["__typename"] == "Quote", quote
    done = post(
        http,
        member,
        CHECKOUT,
        {
            "input": {
                "planCode": plan,
                "emailCredits": quote["emailCredits"],
                "messagingCredits": quote["messagingCredits"],
                "expectedTotal": quote["dueNow"]["total"]["amount"],
                "quoteExpiresAt": quote["expiresAt"],
                "paymentMethod": {"method": "balance"},
                "idempotencyKey": key,
            }
        },
    )["checkout"]
    assert done["__typename"] == "CheckoutSuccess", done


def upgrade(http, member) -> None:
    """Free → Omnichannel paid from the balance: a top-up, then the checkout."""
    details = post(http, member, UPDATE_DETAILS, {"input": GERMAN_PERSON})["updateBillingDetails"]
    assert details == {"__typename": "BillingDetails", "missingFields": []}
    top_up(http, member, "300.00", "top-up-1")
    checkout(http, member, "omnichannel", "checkout-1")


def assert_documented(event: dict[str, Any]) -> None:
    extra, missing = ev.undocumented(event["type"], event["payload"])
    assert not extra and not missing, (event["type"], extra, missing)
    assert event["version"] == ev.PAYLOADS[event["type"]].version


# ------------------------------------------------------------------ tests


def test_a_subscriber_sees_the_events_of_a_checkout_in_order(server, http, connect_as, make_workspace):
    member = make_workspace("Acme")
    details = post(http, member, UPDATE_DETAILS, {"input": GERMAN_PERSON})["updateBillingDetails"]
    assert details == {"__typename": "BillingDetails", "missingFields": []}  # writes no event
    subscriber = subscribed(connect_as, member, variables={"after": 0})  # no event yet: 0 is the latest
    top_up(http, member, "300.00", "top-up-1")
    first = subscriber.next()
    assert (first["type"], first["sequence"]) == ("balance.topped_up", 1)

    checkout(http, member, "omnichannel", "checkout-1")
    received = subscriber.events(3)
    print("\nsubscriber output during a checkout:")
    for event in [first, *received]:
        print(json.dumps({"type": "next", "id": "1", "payload": {"data": {"events": event}}}))
    assert [(e["sequence"], e["type"]) for e in received] == [
        (2, "plan_change.applied"),
        (3, "credits.reset"),
        (4, "checkout.completed"),
    ]
    for event in [first, *received]:
        assert event["workspaceId"] == member.id and event["occurredAt"].startswith("2026-11-10T09:30:00")
        assert_documented(event)
    assert received[0]["payload"]["to"] == {
        "plan": "omnichannel",
        "email_credits": 20000,
        "messaging_credits": 5000,
    }
    assert received[1]["payload"]["email_credits"] == 20000  # the reset to the new limits
    completed = received[2]["payload"]
    assert completed["kind"] == "new_period" and completed["payment_method"] == "balance"
    assert len({e["id"] for e in [first, *received]}) == 4
    subscriber.quiet()


@pytest.mark.parametrize("params", [{"apiKey": "{key}"}, {"Authorization": "bearer {key}"}])
def test_the_key_may_be_sent_as_api_key_or_authorization(server, connect_as, make_workspace, params):
    member = make_workspace()
    subscriber = connect_as(params={name: value.format(key=member.key) for name, value in params.items()})
    assert subscriber.ack() == {"workspaceId": member.id}


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({}, id="no key"),
        pytest.param({"authorization": "Bearer bg_000000000000_wrong"}, id="wrong key"),
        pytest.param({"authorization": "Basic dXNlcjpwdw=="}, id="not a bearer token"),
        pytest.param({"apiKey": 42}, id="not a string"),
        pytest.param({"apiKey": "bgw_00000000000\x00_wrong"}, id="a NUL in the key's prefix"),
        pytest.param({"authorization": "Bearer bgw_000000000000_\x00\x1b"}, id="control characters"),
    ],
)
def test_a_missing_or_wrong_key_is_refused_with_4403(server, connect_as, make_workspace, params):
    make_workspace()
    subscriber = connect_as(params=params)
    with pytest.raises(ConnectionClosed) as closed:
        subscriber.receive()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403


def test_subscribing_before_connection_init_is_refused(server, make_workspace):
    with open_socket(server) as ws:
        ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": EVENTS}}))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=WAIT)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


def test_the_types_filter(server, http, gateway, connect_as, make_workspace):
    member = make_workspace()
    subscriber = subscribed(
        connect_as, member, variables={"types": ["checkout.completed", "card.added"], "after": 0}
    )
    upgrade(http, member)
    event = subscriber.next()
    assert (event["type"], event["sequence"]) == ("checkout.completed", 4)  # 1 top-up, 2 plan change, 3 reset
    subscriber.quiet()
    assert commit_event(gateway, member) == 5
    assert subscriber.next()["sequence"] == 5


def test_unknown_types_are_an_error(server, connect_as, make_workspace):
    member = make_workspace()
    subscriber = subscribed(connect_as, member, variables={"types": ["checkout.completed", "checkout.done"]})
    message = subscriber.receive()
    assert message["type"] == "next" and message["payload"]["data"] is None, message
    assert "unknown event types: 'checkout.done'" in message["payload"]["errors"][0]["message"]


def test_plan_changed_streams_only_plan_changes(server, http, gateway, connect_as, make_workspace):
    member = make_workspace()
    subscriber = subscribed(connect_as, member, PLAN_CHANGED, {"after": 0})  # from the start: no race
    upgrade(http, member)  # 1 top-up, 2 applied, 3 credits reset, 4 checkout completed
    checkout(http, member, "email", "downgrade", emailCredits=10000)  # 5 scheduled, 6 checkout completed
    assert post(http, member, CANCEL)["cancelScheduledChange"]["__typename"] == "Workspace"  # 7 cancelled
    received = subscriber.events(3)
    assert [(e["sequence"], e["type"]) for e in received] == [
        (2, "plan_change.applied"),
        (5, "plan_change.scheduled"),
        (7, "plan_change.cancelled"),
    ]
    for event in received:
        assert_documented(event)
    assert received[1]["payload"] == {
        "plan": "email",
        "email_credits": 10000,
        "messaging_credits": 0,
        "effective_at": "2026-12-10T09:30:00+00:00",
    }
    subscriber.quiet()


def test_resuming_replays_what_was_missed_then_continues_live(
    server, http, gateway, connect_as, make_workspace
):
    member = make_workspace()
    first = subscribed(connect_as, member, variables={"after": 0})
    commit_event(gateway, member, {"n": 1})
    assert first.next()["sequence"] == 1
    first.close()
    upgrade(http, member)  # 2, 3, 4, 5 while nobody listens
    commit_event(gateway, member, {"n": 6})

    resumed = subscribed(connect_as, member, variables={"after": 1})
    replayed = resumed.events(5)
    assert [e["sequence"] for e in replayed] == [2, 3, 4, 5, 6]
    assert [e["type"] for e in replayed] == [
        "balance.topped_up",
        "plan_change.applied",
        "credits.reset",
        "checkout.completed",
        "card.added",
    ]
    for n in range(7, 10):  # then live, one at a time, each exactly once
        assert commit_event(gateway, member, {"n": n}) == n
        assert resumed.next()["sequence"] == n
    resumed.quiet()

    everything = subscribed(connect_as, member, variables={"after": 0})
    assert [e["sequence"] for e in everything.events(9)] == list(range(1, 10))
    everything.quiet()


def test_resuming_while_events_keep_coming_has_no_gap_and_no_duplicate(
    server, gateway, connect_as, make_workspace
):
    member = make_workspace()
    for n in range(1, 4):
        commit_event(gateway, member, {"n": n})
    done = threading.Event()

    def write() -> None:  # events committed while the subscription replays and goes live
        for n in range(4, 41):
            commit_event(gateway, member, {"n": n})
        done.set()

    writer = threading.Thread(target=write)
    subscriber = subscribed(connect_as, member, variables={"after": 2})
    writer.start()
    try:
        sequences = [e["sequence"] for e in subscriber.events(38)]
    finally:
        writer.join(timeout=30)
    assert done.is_set()
    assert sequences == list(range(3, 41))
    subscriber.quiet()


def test_without_after_sequence_the_stream_starts_after_the_latest_event(
    server, gateway, connect_as, make_workspace
):
    member = make_workspace()
    for n in range(1, 4):
        commit_event(gateway, member, {"n": n})
    subscriber = subscribed(connect_as, member)
    live = wait_until_live(gateway, subscriber, member)
    assert live[0] >= 4  # 1-3 are not replayed
    assert commit_event(gateway, member) == live[-1] + 1
    assert subscriber.next()["sequence"] == live[-1] + 1
    subscriber.quiet()


def test_after_sequence_ahead_of_the_latest_event_is_an_error(server, gateway, connect_as, make_workspace):
    member = make_workspace()
    commit_event(gateway, member)
    subscriber = subscribed(connect_as, member, variables={"after": 2})
    message = subscriber.receive()
    assert (
        message["type"] == "next"
        and "ahead of the workspace's latest event, 1" in message["payload"]["errors"][0]["message"]
    ), message


def test_many_subscribers_of_a_workspace_get_every_event_in_order_from_shared_reads(
    server, gateway, connect_as, make_workspace
):
    """30 streams of one workspace (10 with a types filter, some replaying from far back), then
    commits one after the other and in a burst: every stream gets exactly its events, in
    order, and the outbox is read a few times per commit, not once per stream."""
    member = make_workspace()
    history = [commit_event(gateway, member, {"n": n}) for n in range(5)]
    streams = []
    for n in range(30):
        types = [EventType.BALANCE_TOPPED_UP.value] if n % 3 == 2 else None
        streams.append(
            (subscribed(connect_as, member, EVENTS, {"after": n % 4, "types": types}), n % 4, types)
        )
    for subscriber, after, types in streams:  # each replays the history it asked for
        if types is None:
            assert [e["sequence"] for e in subscriber.events(len(history) - after)] == history[after:]
    reads: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany) -> None:
        if "FROM outbox_events" in statement and "ORDER BY outbox_events.sequence" in statement:
            reads.append(statement)

    sa_event.listen(gateway.engine, "before_cursor_execute", count)
    try:
        one_by_one = []
        for n in range(5):
            one_by_one.append(commit_event(gateway, member, {"live": n}))
            for subscriber, _, types in streams:
                if types is None:
                    assert subscriber.next()["sequence"] == one_by_one[-1]
        burst = [
            commit_event(
                gateway,
                member,
                {"burst": n},
                type=EventType.BALANCE_TOPPED_UP if n % 2 else EventType.CARD_ADDED,
            )
            for n in range(10)
        ]
        for subscriber, _, types in streams:
            wanted = burst if types is None else burst[1::2]
            assert [e["sequence"] for e in subscriber.events(len(wanted))] == wanted
            subscriber.quiet(0.05)
    finally:
        sa_event.remove(gateway.engine, "before_cursor_execute", count)
    commits = len(one_by_one) + len(burst)
    print(f"{len(reads)} outbox reads for {commits} commits and {len(streams)} streams")
    assert len(reads) <= 3 * commits  # one read per stream and commit would be 450


def test_events_answered_by_a_shared_plan_equal_graphql_core_s_answers(
    server, gateway, connect_as, make_workspace
):
    """The same selection twice: plain (answered once per event by its compiled plan, shared by
    the streams) and with ``@include(if: true)`` on a field (no plan: graphql-core executes it
    for each stream). Every event must read the same, keys in the same order."""
    member = make_workspace()
    history = [commit_event(gateway, member, {"n": n, "nested": {"list": [n, str(n)]}}) for n in range(3)]
    planned = subscribed(connect_as, member, EVENTS, {"after": 0})
    ordinary = subscribed(
        connect_as,
        member,
        EVENTS.replace("version payload", "version payload @include(if: true) __typename"),
        {"after": 0},
    )
    also_planned = subscribed(
        connect_as, member, EVENTS.replace("payload", "payload __typename"), {"after": 0}
    )
    history.append(commit_event(gateway, member, {"live": True}))
    received = [s.events(len(history)) for s in (planned, ordinary, also_planned)]
    assert [e["sequence"] for e in received[0]] == history
    assert json.dumps(received[1]) == json.dumps(received[2])  # graphql-core's and the plan's
    assert [{k: v for k, v in e.items() if k != "__typename"} for e in received[1]] == received[0]


def test_a_trusted_subscription_is_sent_by_its_id(server, gateway, connect_as, make_workspace):
    """The Billing page's PlanChanges by its document id alone; an unknown id is an error."""
    from gateway.api import trusted

    member = make_workspace()
    plan_changes = next(d for d in trusted.registry().values() if d.operation == "PlanChanges")
    subscriber = connect_as(member)
    subscriber.ack()
    subscriber.send({"id": "1", "type": "subscribe", "payload": {"documentId": plan_changes.id}})
    subscriber.send({"id": "2", "type": "subscribe", "payload": {"documentId": "sha256:" + "0" * 64}})
    refused = subscriber.receive()
    assert refused["id"] == "2" and refused["type"] == "error", refused
    assert refused["payload"][0]["extensions"] == {"code": "PERSISTED_QUERY_NOT_FOUND"}
    applied = wait_until_plan_change(gateway, member, subscriber)
    assert applied["type"] == "plan_change.applied"


def wait_until_plan_change(gateway, member, subscriber, attempts: int = 20) -> dict[str, Any]:
    """Commit plan changes until the live stream (started asynchronously) delivers one."""
    for _ in range(attempts):
        commit_event(gateway, member, {"marker": True}, type=EventType.PLAN_CHANGE_APPLIED)
        with contextlib.suppress(TimeoutError):
            return subscriber.next(timeout=QUIET)
    pytest.fail("the live stream never started")


def test_a_subscriber_never_sees_another_workspace_s_events(
    server, http, gateway, connect_as, make_workspace
):
    ours, theirs = make_workspace("Ours"), make_workspace("Theirs")
    subscriber = subscribed(connect_as, ours, variables={"after": 0})
    spy = subscribed(connect_as, theirs, variables={"after": 0})
    upgrade(http, theirs)
    assert [e["workspaceId"] for e in spy.events(4)] == [theirs.id] * 4
    subscriber.quiet()
    commit_event(gateway, ours)
    event = subscriber.next()
    assert (event["workspaceId"], event["sequence"]) == (ours.id, 1)
    subscriber.quiet()
    spy.quiet()


def test_a_rolled_back_change_sends_nothing(server, gateway, connect_as, make_workspace):
    member = make_workspace()
    subscriber = subscribed(connect_as, member, variables={"after": 0})
    with gateway.write_sessions() as session:
        session.begin()
        workspace = lock_workspace(session, member.id)
        emit(session, workspace, EventType.CARD_ADDED, {"rolled": "back"}, gateway.clock())
        session.flush()
        session.rollback()
    subscriber.quiet()
    assert commit_event(gateway, member, {"committed": True}) == 1  # the rolled-back one took no number
    event = subscriber.next()
    assert (event["sequence"], event["payload"]) == (1, {"committed": True})
    subscriber.quiet()


def test_a_lost_notification_only_delays_delivery(server, gateway, connect_as, make_workspace):
    """An outbox row written without any wake-up (no session hook, no NOTIFY) is found by the poll."""
    member = make_workspace()
    gateway.notifier.poll_interval = 0.2
    subscriber = subscribed(connect_as, member, variables={"after": 0})
    assert commit_event(gateway, member) == 1
    assert subscriber.next()["sequence"] == 1
    with gateway.engine.begin() as connection:
        connection.execute(update(Workspace).where(Workspace.id == member.id).values(event_sequence=2))
        connection.execute(
            insert(OutboxEvent).values(
                id="f" * 32,
                workspace_id=member.id,
                sequence=2,
                type="card.added",
                version=PAYLOAD_VERSION,
                payload={"silent": True},
                occurred_at=gateway.clock(),
            )
        )
    event = subscriber.next()
    assert (event["id"], event["sequence"]) == ("f" * 32, 2)


def test_queries_and_mutations_are_not_run_over_the_socket(server, gateway, connect_as, make_workspace):
    member = make_workspace()
    subscriber = connect_as(member)
    subscriber.ack()
    subscriber.subscribe("{ plans { code } }")
    message = subscriber.receive()
    assert message["type"] == "error" and message["id"] == "1", message
    assert message["payload"][0]["message"] == "queries are not allowed"  # the client's mistake, named
    subscriber.subscribe(EVENTS, {"after": 0}, id="2")  # the connection is still usable
    sequence = commit_event(gateway, member)
    assert subscriber.next("2")["sequence"] == sequence


def test_an_unknown_operation_name_closes_the_socket_with_4400(server, connect_as, make_workspace):
    """graphql-transport-ws: a subscribe the server cannot make sense of closes the socket."""
    member = make_workspace()
    subscriber = connect_as(member)
    subscriber.ack()
    subscriber.send(
        {
            "id": "1",
            "type": "subscribe",
            "payload": {"query": EVENTS, "operationName": "Nope", "variables": {}},
        }
    )
    with pytest.raises(ConnectionClosed) as closed:
        subscriber.receive()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4400, closed.value
    assert "Nope" in closed.value.rcvd.reason


# ------------------------------------------------------------------ the notifier and the documentation


def test_the_notifier_calls_back_on_commit_and_never_on_rollback(gateway, make_workspace):
    """The hook a worker (webhook delivery) uses: ``notifier.on_event(callback)``."""
    rolled_back, first, last = make_workspace("Rolled back"), make_workspace("First"), make_workspace("Last")
    calls: list[str | None] = []

    def roll_back() -> None:
        with gateway.write_sessions() as session:
            session.begin()
            emit(session, lock_workspace(session, rolled_back.id), EventType.CARD_ADDED, {}, gateway.clock())
            session.flush()
            session.rollback()

    async def main() -> None:
        async with anyio.create_task_group() as tasks:
            await tasks.start(gateway.notifier.run)
            woken = anyio.Event()

            def callback(workspace_id: str | None) -> None:
                calls.append(workspace_id)
                if workspace_id == last.id:
                    woken.set()

            remove = gateway.notifier.on_event(callback)
            await anyio.to_thread.run_sync(roll_back)
            await anyio.to_thread.run_sync(commit_event, gateway, first)
            await anyio.to_thread.run_sync(commit_event, gateway, last)
            with anyio.fail_after(WAIT):
                await woken.wait()
            remove()
            tasks.cancel_scope.cancel()

    anyio.run(main)
    # On PostgreSQL the NOTIFY wakes a second time after the commit's own wake-up: harmless.
    assert calls[0] == first.id and set(calls) == {first.id, last.id}, calls


def test_every_event_type_is_documented_at_the_version_written():
    assert set(ev.PAYLOADS) == {t.value for t in EventType}
    assert {p.version for p in ev.PAYLOADS.values()} == {PAYLOAD_VERSION}


def test_docs_events_md_is_generated_from_the_payload_table():
    assert (ROOT / "docs" / "events.md").read_text(encoding="utf-8") == ev.reference(), (
        "regenerate: python -c 'from gateway.events.catalog import reference; print(reference(), end=\"\")' "
        "> docs/events.md"
    )


def test_an_unexpected_error_in_a_stream_is_masked_and_a_database_fault_named(
    server, gateway, connect_as, make_workspace, monkeypatch
):
    """Each streamed result's errors are masked as a request's are: a bug's message never
    reaches the socket ("Internal error."), an outage reads as one (DATABASE_UNAVAILABLE)."""
    from sqlalchemy.exc import OperationalError

    from gateway.services import event_feed
    from gateway.storage import faults

    member = make_workspace()
    commit_event(gateway, member)

    def bug(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret detail of a bug: card 4242424242424242")

    def outage(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("SELECT", {}, ConnectionRefusedError("connection refused"))

    for fault, expected in ((bug, "Internal error."), (outage, faults.MESSAGE)):
        monkeypatch.setattr(event_feed, "events_after", fault)
        subscriber = subscribed(connect_as, member, variables={"after": 0})
        message = subscriber.receive()
        assert message["type"] == "next", message
        [error] = message["payload"]["errors"]
        assert error["message"] == expected, message
        assert "4242" not in json.dumps(message)
        subscriber.close()
