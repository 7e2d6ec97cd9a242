"""Signed webhooks: endpoints through GraphQL, delivery to a real receiver on 127.0.0.1 that
verifies every request with the standardwebhooks library, retries, 410, time limits, redelivery,
secret rotation, isolation between workspaces, rollbacks and two workers at once.

The worker is driven with an explicit ``now`` (the ``clock`` fixture): no test sleeps for a
backoff, it moves the clock to the next attempt.
"""

from __future__ import annotations

import base64
import dataclasses
import itertools
import random
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from standardwebhooks import Webhook
from starlette.testclient import TestClient

from gateway.events import delivery as webhook_delivery
from gateway.events import endpoints
from gateway.events.outbox import EventType, emit
from gateway.server.app import build_gateway
from gateway.server.http import create_app
from gateway.server.settings import Settings, SettingsError
from gateway.storage.db import Delivery, DeliveryAttempt, OutboxEvent, WebhookEndpoint
from gateway.storage.locks import lock_workspace

from helpers import registry_of
from receivers import Received, Receiver, receivers


@pytest.fixture
def settings(database_url: str) -> Settings:
    # The tests run the worker themselves, with the test clock; no background worker. Their
    # receivers listen on 127.0.0.1, which the egress policy refuses unless the operator allows it.
    return Settings(
        database_url=database_url, delivery_interval=0, webhook_timeout=2, webhook_allow=("127.0.0.1",)
    )


@pytest.fixture
def receiver() -> Iterator[Callable[..., Receiver]]:
    yield from receivers()


# ------------------------------------------------------------------ helpers


def add_endpoint(gateway, workspace_id: str, receiver: Receiver | str, event_types=()) -> str:
    url = receiver if isinstance(receiver, str) else receiver.url
    with gateway.write_sessions.begin() as session:
        row = endpoints.create_endpoint(session, workspace_id, url, event_types, gateway.clock())
        endpoint_id, secret = row.id, row.secret
    if isinstance(receiver, Receiver):
        receiver.secret = secret
    return endpoint_id


def emit_events(
    gateway, workspace_id: str, count: int = 1, type: EventType = EventType.BALANCE_TOPPED_UP
) -> list[str]:
    with gateway.write_sessions.begin() as session:
        workspace = lock_workspace(session, workspace_id)
        return [emit(session, workspace, type, {"n": n}, gateway.clock()).id for n in range(count)]


def deliveries(gateway) -> list[Delivery]:
    with gateway.sessions() as session:
        return list(session.scalars(select(Delivery).order_by(Delivery.created_at, Delivery.id)))


def attempts(gateway, delivery_id: str) -> list[DeliveryAttempt]:
    with gateway.sessions() as session:
        return list(
            session.scalars(
                select(DeliveryAttempt)
                .where(DeliveryAttempt.delivery_id == delivery_id)
                .order_by(DeliveryAttempt.attempted_at)
            )
        )


def next_due(gateway):
    with gateway.sessions() as session:
        return session.scalar(select(func.min(Delivery.next_attempt_at)).where(Delivery.status == "pending"))


def run_until_idle(gateway, clock, rounds: int = 40, **options: Any) -> int:
    """Deliver, then move the clock to the next retry, until nothing is pending; the rounds used."""
    for round in range(1, rounds + 1):
        webhook_delivery.deliver_due(gateway, clock(), **options)
        due = next_due(gateway)
        if due is None:
            return round
        clock.now = max(clock.now, due)
    raise AssertionError(f"still pending after {rounds} rounds")


# ------------------------------------------------------------------ delivery


def test_an_event_is_posted_signed_per_standard_webhooks(gateway, clock, make_workspace, receiver):
    member = make_workspace()
    hook = receiver()
    add_endpoint(gateway, member.id, hook)
    [event_id] = emit_events(gateway, member.id)

    counts = webhook_delivery.deliver_due(gateway, clock())

    assert (counts.claimed, counts.delivered) == (1, 1)
    [request] = hook.requests
    assert request.verified and request.path == "/hooks"
    assert request.webhook_id == event_id
    assert request.headers["content-type"] == "application/json"
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 60  # the real time of sending
    body = Webhook(hook.secret).verify(request.body, request.headers)
    assert body == {
        "id": event_id,
        "type": "balance.topped_up",
        "workspace_id": member.id,
        "sequence": 1,
        "occurred_at": clock().isoformat(),
        "version": 1,
        "data": {"n": 0},
    }
    [delivery] = deliveries(gateway)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 200)
    assert timedelta(0) <= delivery.delivered_at - clock() < timedelta(seconds=5)  # now + time spent
    [attempt] = attempts(gateway, delivery.id)
    assert (attempt.status_code, attempt.response_excerpt, attempt.error) == (200, "ok", None)
    assert webhook_delivery.deliver_due(gateway, clock()).claimed == 0  # once


def test_the_secret_is_a_standard_webhooks_secret(gateway, make_workspace):
    member = make_workspace()
    with gateway.write_sessions.begin() as session:
        secret = endpoints.create_endpoint(
            session, member.id, "https://example.com/h", [], gateway.clock()
        ).secret
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
    Webhook(secret)  # the library accepts it


def test_a_flaky_receiver_still_gets_every_event(gateway, clock, make_workspace, receiver):
    """30 % of requests fail with 500 at random; retries deliver every event once, none is lost."""
    chance, lock = random.Random(20261110), threading.Lock()

    def flaky(request: Received) -> tuple[int, bytes]:
        with lock:
            fail = chance.random() < 0.3
        return (500, b"try again") if fail or not request.verified else (200, b"ok")

    member = make_workspace()
    hook = receiver(flaky)
    add_endpoint(gateway, member.id, hook)
    events = emit_events(gateway, member.id, 50)

    rounds = run_until_idle(gateway, clock, rng=random.Random(7))

    accepted = hook.accepted()
    delivered = set(accepted)
    duplicates, lost = len(accepted) - len(delivered), set(events) - delivered
    failed = len(hook.requests) - len(accepted)
    print(
        f"\nflaky receiver: {len(events)} events, {len(delivered)} delivered, {duplicates} duplicates, "
        f"{len(lost)} lost; {len(hook.requests)} requests of which {failed} answered 500; {rounds} rounds"
    )
    assert all(r.verified for r in hook.requests)
    assert lost == set() and duplicates == 0 and failed > 0
    assert {d.status for d in deliveries(gateway)} == {"delivered"}
    with gateway.sessions() as session:
        assert session.scalar(select(func.count()).select_from(DeliveryAttempt)) == len(hook.requests)


def test_retries_back_off_exponentially_with_jitter_for_about_three_days_then_give_up(
    gateway, clock, make_workspace, receiver
):
    hook = receiver(lambda request: (500, b"x" * 2000))
    member = make_workspace()
    add_endpoint(gateway, member.id, hook)
    emit_events(gateway, member.id)
    start = clock()

    run_until_idle(gateway, clock, rng=random.Random(3))

    [delivery] = deliveries(gateway)
    assert (delivery.status, delivery.attempts, delivery.last_status_code, delivery.last_error) == (
        "failed",
        webhook_delivery.MAX_ATTEMPTS,
        500,
        "HTTP 500",
    )
    log = attempts(gateway, delivery.id)
    assert len(log) == len(hook.requests) == webhook_delivery.MAX_ATTEMPTS == 12
    assert {a.status_code for a in log} == {500} and all(a.response_excerpt == "x" * 500 for a in log)
    gaps = [(b.attempted_at - a.attempted_at).total_seconds() for a, b in itertools.pairwise(log)]
    for gap, planned in zip(gaps, webhook_delivery.RETRY_SCHEDULE, strict=False):
        assert 0.8 * planned.total_seconds() <= gap <= 1.2 * planned.total_seconds() + 5
    assert (
        len(
            {
                round(g / p.total_seconds(), 3)
                for g, p in zip(gaps, webhook_delivery.RETRY_SCHEDULE, strict=False)
            }
        )
        > 1
    )  # jitter
    span = log[-1].attempted_at - start
    assert timedelta(days=2.3) < span < timedelta(days=3.6)
    assert {r.webhook_id for r in hook.requests} == {delivery.event_id}  # one id across retries
    assert all(r.verified for r in hook.requests)


def test_a_410_disables_the_endpoint_and_stops(gateway, clock, make_workspace, receiver, graphql):
    hook = receiver(lambda request: (410, b"gone"))
    member = make_workspace()
    endpoint_id = add_endpoint(gateway, member.id, hook)
    emit_events(gateway, member.id)

    counts = webhook_delivery.deliver_due(gateway, clock())

    assert (counts.claimed, counts.failed) == (1, 1)
    [delivery] = deliveries(gateway)
    assert (delivery.status, delivery.last_status_code, delivery.next_attempt_at) == ("failed", 410, None)
    with gateway.sessions() as session:
        endpoint = session.get(WebhookEndpoint, endpoint_id)
    assert not endpoint.enabled and "410" in endpoint.disabled_reason
    emit_events(gateway, member.id)  # a disabled endpoint gets nothing queued
    assert len(deliveries(gateway)) == 1
    clock.advance(days=4)
    assert webhook_delivery.deliver_due(gateway, clock()).claimed == 0
    assert len(hook.requests) == 1
    data = graphql(
        "{ webhookEndpoints { ... on WebhookEndpoints { endpoints { enabled disabledReason "
        "deliveries { status attempts { statusCode responseExcerpt } } } } } }",
        key=member.key,
    )
    [shown] = data["webhookEndpoints"]["endpoints"]
    assert shown["enabled"] is False and "410 Gone" in shown["disabledReason"]
    assert shown["deliveries"] == [
        {"status": "FAILED", "attempts": [{"statusCode": 410, "responseExcerpt": "gone"}]}
    ]


def test_a_receiver_slower_than_the_time_limit_is_a_failed_attempt(gateway, clock, make_workspace, receiver):
    hook = receiver()
    hook.respond = lambda request: (hook.release.wait(10), (200, b"too late"))[1]
    member = make_workspace()
    add_endpoint(gateway, member.id, hook)
    emit_events(gateway, member.id)

    started = time.monotonic()
    counts = webhook_delivery.deliver_due(gateway, clock(), timeout=0.5, rng=random.Random(1))
    elapsed = time.monotonic() - started

    assert elapsed < 3 and counts.retrying == 1
    [delivery] = deliveries(gateway)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, None)
    assert delivery.last_error == webhook_delivery.NO_RESPONSE
    assert timedelta(seconds=4) <= delivery.next_attempt_at - clock() <= timedelta(seconds=7)
    [attempt] = attempts(gateway, delivery.id)
    assert (
        attempt.status_code is None
        and attempt.error == webhook_delivery.NO_RESPONSE
        and attempt.response_excerpt is None
        and attempt.duration_ms >= 450
    )


def test_redirects_are_not_followed_and_unreachable_hosts_are_retried(
    gateway, clock, make_workspace, receiver
):
    target = receiver()
    redirect = receiver(lambda request: (307, b""))
    redirect.location = target.url
    member = make_workspace()
    add_endpoint(gateway, member.id, redirect)
    with gateway.write_sessions.begin() as session:  # a port nobody listens on
        closed = receiver()
        url = closed.url
        closed.close()
        endpoints.create_endpoint(session, member.id, url, [], clock())
    emit_events(gateway, member.id)

    counts = webhook_delivery.deliver_due(gateway, clock())

    assert (counts.claimed, counts.retrying) == (2, 2)
    assert len(redirect.requests) == 1 and target.requests == []
    errors = sorted(d.last_error for d in deliveries(gateway))
    assert errors == ["HTTP 307", webhook_delivery.NO_RESPONSE]


def test_an_endpoint_gets_only_the_event_types_it_subscribes_to(gateway, clock, make_workspace, receiver):
    hook = receiver()
    member = make_workspace()
    add_endpoint(gateway, member.id, hook, ["payment.failed", "checkout.completed"])
    emit_events(gateway, member.id, type=EventType.BALANCE_TOPPED_UP)
    [wanted] = emit_events(gateway, member.id, type=EventType.PAYMENT_FAILED)

    webhook_delivery.deliver_due(gateway, clock())

    assert [r.webhook_id for r in hook.requests] == [wanted]
    assert (
        Webhook(hook.secret).verify(hook.requests[0].body, hook.requests[0].headers)["type"]
        == "payment.failed"
    )


def test_another_workspaces_endpoint_never_gets_the_event(gateway, clock, make_workspace, receiver):
    ours, theirs = receiver(), receiver()
    acme, globex = make_workspace("Acme"), make_workspace("Globex")
    add_endpoint(gateway, acme.id, ours)
    add_endpoint(gateway, globex.id, theirs)
    acme_events = emit_events(gateway, acme.id, 3)

    webhook_delivery.deliver_due(gateway, clock())

    assert sorted(r.webhook_id for r in ours.requests) == sorted(acme_events)
    assert theirs.requests == []


def test_a_rolled_back_change_delivers_nothing(gateway, clock, make_workspace, receiver):
    hook = receiver()
    member = make_workspace()
    add_endpoint(gateway, member.id, hook)

    with pytest.raises(RuntimeError), gateway.write_sessions.begin() as session:
        workspace = lock_workspace(session, member.id)
        emit(session, workspace, EventType.CHECKOUT_COMPLETED, {"order": 1}, clock())
        session.flush()  # the rows reached the database, and are rolled back with the change
        assert len(session.scalars(select(Delivery)).all()) == 1
        raise RuntimeError("payment step failed")

    with gateway.sessions() as session:
        assert session.scalar(select(func.count()).select_from(OutboxEvent)) == 0
    assert deliveries(gateway) == []
    assert webhook_delivery.deliver_due(gateway, clock()).claimed == 0
    assert hook.requests == []


def test_a_rotated_secret_signs_beside_the_new_one_for_the_grace_period_then_stops(
    gateway, clock, make_workspace, receiver, graphql
):
    """Standard Webhooks allows several signatures: during the grace period (24 hours by default)
    a receiver that still has the old secret accepts, as does one that has the new; after it,
    only the new secret signs, retries included."""
    hook = receiver(lambda request: (200, b"ok") if request.verified else (401, b"bad signature"))
    member = make_workspace()
    created = graphql(
        """mutation($url: String!) { createWebhookEndpoint(input: {url: $url}) {
        ... on WebhookEndpointCreated { secret endpoint { id previousSecretExpiresAt } } } }""",
        {"url": hook.url},
        key=member.key,
    )["createWebhookEndpoint"]
    old_secret, endpoint_id = created["secret"], created["endpoint"]["id"]
    assert created["endpoint"]["previousSecretExpiresAt"] is None
    hook.secret = old_secret
    emit_events(gateway, member.id)
    webhook_delivery.deliver_due(gateway, clock())

    rotated = graphql(
        """mutation($id: ID!) { rotateWebhookSecret(id: $id) {
        ... on WebhookSecretRotated { secret endpoint { id previousSecretExpiresAt } } } }""",
        {"id": endpoint_id},
        key=member.key,
    )["rotateWebhookSecret"]
    new_secret = rotated["secret"]
    assert new_secret != old_secret and new_secret.startswith("whsec_")
    assert rotated["endpoint"]["previousSecretExpiresAt"] == (clock() + timedelta(days=1)).isoformat()
    emit_events(gateway, member.id)
    webhook_delivery.deliver_due(gateway, clock())  # the receiver still has the old secret

    first, second = hook.requests
    assert first.verifies_with(old_secret) and not first.verifies_with(new_secret)
    assert len(second.headers["webhook-signature"].split(" ")) == 2
    assert second.verifies_with(new_secret) and second.verifies_with(old_secret)
    assert second.status == 200  # accepted with the old secret

    clock.advance(hours=23, minutes=59)
    hook.secret = new_secret  # the receiver switched over within the grace period
    emit_events(gateway, member.id)
    webhook_delivery.deliver_due(gateway, clock())
    assert hook.requests[-1].verifies_with(old_secret) and hook.requests[-1].status == 200

    clock.advance(minutes=1)  # the grace period is over
    hook.secret = old_secret  # a receiver that never switched over ...
    emit_events(gateway, member.id)
    webhook_delivery.deliver_due(gateway, clock(), rng=random.Random(1))
    last = hook.requests[-1]
    assert last.headers["webhook-signature"].count("v1,") == 1
    assert last.verifies_with(new_secret) and not last.verifies_with(old_secret)
    assert last.status == 401  # ... rejects, and the delivery is retried
    hook.secret = new_secret
    run_until_idle(gateway, clock)
    assert hook.requests[-1].verifies_with(new_secret) and hook.requests[-1].status == 200
    assert not hook.requests[-1].verifies_with(old_secret)


def test_without_a_grace_period_the_old_secret_stops_at_once(
    settings, gateway, make_workspace, receiver, graphql
):
    gateway.settings = dataclasses.replace(settings, webhook_secret_grace=0)
    hook = receiver()
    member = make_workspace()
    endpoint_id = add_endpoint(gateway, member.id, hook)
    old_secret = hook.secret
    rotated = graphql(
        """mutation($id: ID!) { rotateWebhookSecret(id: $id) {
        ... on WebhookSecretRotated { secret endpoint { previousSecretExpiresAt } } } }""",
        {"id": endpoint_id},
        key=member.key,
    )["rotateWebhookSecret"]
    assert rotated["endpoint"]["previousSecretExpiresAt"] is None
    emit_events(gateway, member.id)
    webhook_delivery.deliver_due(gateway, gateway.clock())
    [request] = hook.requests
    assert request.verifies_with(rotated["secret"]) and not request.verifies_with(old_secret)


def test_redeliver_sends_the_event_again_with_the_same_webhook_id(
    gateway, clock, make_workspace, receiver, graphql
):
    hook, other = receiver(), receiver()
    member = make_workspace()
    endpoint_id = add_endpoint(gateway, member.id, hook)
    other_id = add_endpoint(gateway, member.id, other, ["payment.failed"])
    [event_id] = emit_events(gateway, member.id)
    webhook_delivery.deliver_due(gateway, clock())
    assert len(hook.requests) == 1 and other.requests == []

    redelivered = graphql(
        """mutation($event: ID!) { redeliverEvent(eventId: $event) {
        ... on EventRedelivered { deliveries { eventId status eventType sequence } } } }""",
        {"event": event_id},
        key=member.key,
    )["redeliverEvent"]
    assert redelivered == {
        "deliveries": [
            {"eventId": event_id, "status": "PENDING", "eventType": "balance.topped_up", "sequence": 1}
        ]
    }
    explicit = graphql(
        """mutation($event: ID!, $endpoint: ID) { redeliverEvent(eventId: $event, endpointId: $endpoint) {
        ... on EventRedelivered { deliveries { status } } } }""",
        {"event": event_id, "endpoint": other_id},
        key=member.key,
    )["redeliverEvent"]
    assert explicit == {"deliveries": [{"status": "PENDING"}]}  # named: sent whatever it subscribes to

    assert webhook_delivery.deliver_due(gateway, clock()).delivered == 2
    assert [r.webhook_id for r in hook.requests] == [event_id, event_id]
    assert [r.webhook_id for r in other.requests] == [event_id]
    assert all(r.verified for r in hook.requests + other.requests)
    listed = graphql(
        "{ webhookEndpoints { ... on WebhookEndpoints { endpoints { id deliveries { status } } } } }",
        key=member.key,
    )["webhookEndpoints"]["endpoints"]
    assert {e["id"]: len(e["deliveries"]) for e in listed} == {endpoint_id: 2, other_id: 1}


def test_each_endpoint_lists_its_own_newest_deliveries_whatever_the_limit_asked(
    gateway, make_workspace, graphql
):
    # The endpoints' deliveries are read together for the whole list: the limit still applies
    # per endpoint, and two limits in one document each get their own answer.
    member, other = make_workspace(), make_workspace("Other")
    first = add_endpoint(gateway, member.id, "https://hooks.example.com/first")
    second = add_endpoint(gateway, member.id, "https://hooks.example.com/second")
    emit_events(gateway, member.id, 3)
    quiet = add_endpoint(gateway, member.id, "https://hooks.example.com/quiet")  # after the events
    add_endpoint(gateway, other.id, "https://hooks.example.com/other")
    emit_events(gateway, other.id, 2)
    listed = graphql(
        """{ webhookEndpoints { ... on WebhookEndpoints { endpoints { id
        newest: deliveries(limit: 2) { sequence } all: deliveries { sequence attempts { statusCode } } } } } }""",
        key=member.key,
    )["webhookEndpoints"]["endpoints"]
    every = [{"sequence": n, "attempts": []} for n in (3, 2, 1)]
    assert {e.pop("id"): e for e in listed} == {
        first: {"newest": [{"sequence": 3}, {"sequence": 2}], "all": every},
        second: {"newest": [{"sequence": 3}, {"sequence": 2}], "all": every},
        quiet: {"newest": [], "all": []},
    }


# ------------------------------------------------------------------ two workers


def test_two_workers_never_send_one_delivery_twice(gateway, settings, clock, make_workspace, receiver):
    """Two gateways (two connection pools, as two replicas) run the worker at the same time."""

    def slow_ok(request: Received) -> tuple[int, bytes]:
        time.sleep(0.005)
        return 200, b"ok"

    hook = receiver(slow_ok)
    acme, globex = make_workspace("Acme"), make_workspace("Globex")
    add_endpoint(gateway, acme.id, hook)
    second = add_endpoint(gateway, globex.id, hook.url)
    with gateway.sessions() as session:
        globex_secret = session.get(WebhookEndpoint, second).secret
    events = emit_events(gateway, acme.id, 40) + emit_events(gateway, globex.id, 40)
    replica = build_gateway(settings, clock=clock, run_migrations=False, registry=registry_of())
    claimed = {"one": 0, "two": 0}
    start, errors = threading.Barrier(2), []

    def work(name: str, gw) -> None:
        try:
            start.wait(5)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                counts = webhook_delivery.deliver_due(gw, clock(), limit=5, concurrency=4)
                claimed[name] += counts.claimed
                if counts.claimed == 0:
                    if not any(d.status == "pending" for d in deliveries(gw)):
                        return
                    time.sleep(0.01)  # the other worker holds the rest
        except BaseException as error:  # reported below
            errors.append(error)

    try:
        threads = [
            threading.Thread(target=work, args=("one", gateway)),
            threading.Thread(target=work, args=("two", replica)),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    finally:
        replica.close()

    assert errors == []
    sent = [r.webhook_id for r in hook.requests]
    assert sorted(sent) == sorted(events)  # each exactly once
    assert claimed["one"] > 0 and claimed["two"] > 0 and claimed["one"] + claimed["two"] == len(events)
    assert all(r.verifies_with(hook.secret) or r.verifies_with(globex_secret) for r in hook.requests)
    assert {d.status for d in deliveries(gateway)} == {"delivered"}


def test_a_worker_that_died_mid_send_is_retried_after_its_lease(gateway, clock, make_workspace, receiver):
    hook = receiver()
    member = make_workspace()
    add_endpoint(gateway, member.id, hook)
    emit_events(gateway, member.id)
    [claim] = webhook_delivery._claim(
        gateway, clock(), 10, timedelta(minutes=2), []
    )  # ... and then the worker died

    assert webhook_delivery.deliver_due(gateway, clock.advance(seconds=90)).claimed == 0  # still leased
    assert webhook_delivery.deliver_due(gateway, clock.advance(seconds=31)).delivered == 1
    # The dead worker's late result is logged but cannot undo the newer claim's outcome.
    late = webhook_delivery._finish(
        gateway,
        claim,
        webhook_delivery._Result(ok=False, status_code=500, error="HTTP 500"),
        clock(),
        random.Random(1),
    )
    assert late.superseded == 1
    [delivery] = deliveries(gateway)
    assert (delivery.status, delivery.attempts) == ("delivered", 1)
    assert len(attempts(gateway, delivery.id)) == 2 and len(hook.requests) == 1


# ------------------------------------------------------------------ GraphQL management

ENDPOINT_FIELDS = "id url eventTypes enabled disabledReason"
CREATE = f"""mutation($input: CreateWebhookEndpointInput!) {{ createWebhookEndpoint(input: $input) {{
    __typename
    ... on WebhookEndpointCreated {{ secret endpoint {{ {ENDPOINT_FIELDS} }} }}
    ... on UserError {{ code message field }}
    ... on UnknownEventType {{ eventType validEventTypes }}
    ... on InvalidWebhookUrl {{ url }}
}} }}"""
UPDATE = f"""mutation($id: ID!, $input: UpdateWebhookEndpointInput!) {{ updateWebhookEndpoint(id: $id, input: $input) {{
    __typename ... on WebhookEndpoint {{ {ENDPOINT_FIELDS} }} ... on UserError {{ code message field }} }} }}"""


def test_endpoints_are_managed_through_graphql(graphql, make_workspace):
    member = make_workspace()
    created = graphql(
        CREATE,
        {
            "input": {
                "url": " https://hooks.example.com/billing?x=1 ",
                "eventTypes": ["plan_change.applied", "plan_change.applied", "renewal.failed"],
            }
        },
        key=member.key,
    )
    endpoint = created["createWebhookEndpoint"]["endpoint"]
    assert endpoint["url"] == "https://hooks.example.com/billing?x=1"
    assert endpoint["eventTypes"] == ["plan_change.applied", "renewal.failed"] and endpoint["enabled"]

    updated = graphql(
        UPDATE, {"id": endpoint["id"], "input": {"eventTypes": [], "enabled": False}}, key=member.key
    )["updateWebhookEndpoint"]
    assert (updated["eventTypes"], updated["enabled"], updated["disabledReason"]) == (
        [],
        False,
        "disabled through the API",
    )
    updated = graphql(
        UPDATE,
        {"id": endpoint["id"], "input": {"url": "http://hooks.example.com:8080/h", "enabled": True}},
        key=member.key,
    )["updateWebhookEndpoint"]
    assert (updated["url"], updated["enabled"], updated["disabledReason"]) == (
        "http://hooks.example.com:8080/h",
        True,
        None,
    )

    listed = graphql(
        "{ webhookEndpoints { ... on WebhookEndpoints { endpoints { id url } } } }", key=member.key
    )
    assert listed["webhookEndpoints"]["endpoints"] == [
        {"id": endpoint["id"], "url": "http://hooks.example.com:8080/h"}
    ]
    assert (
        "secret" not in graphql('{ __type(name: "WebhookEndpoint") { fields { name } } }')["__type"]["fields"]
    )  # the secret is shown once, at creation or rotation

    deleted = graphql(
        """mutation($id: ID!) { deleteWebhookEndpoint(id: $id) {
        ... on WebhookEndpointDeleted { id } } }""",
        {"id": endpoint["id"]},
        key=member.key,
    )
    assert deleted["deleteWebhookEndpoint"] == {"id": endpoint["id"]}
    assert (
        graphql("{ webhookEndpoints { ... on WebhookEndpoints { endpoints { id } } } }", key=member.key)[
            "webhookEndpoints"
        ]["endpoints"]
        == []
    )
    assert graphql("{ webhookEventTypes }")["webhookEventTypes"] == [t.value for t in EventType]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/h", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("javascript:alert(1)", "only http and https"),
        ("https://", "no host"),
        ("example.com/h", "only http and https"),
        ("", "1 to 2000 characters"),
        ("https://example.com/" + "a" * 2000, "1 to 2000 characters"),
        ("https://user:pw@example.com/h", "credentials"),
        ("https://exa mple.com/h", "without spaces"),
        ("https://bücher.example/h", "punycode"),
        ("https://example.com:99999/h", "out of range"),
        # numbers that resolvers read as IPv4 addresses (127.0.0.1 each): not guessed at
        ("http://2130706433/h", "four decimal numbers"),
        ("http://0x7f000001/h", "four decimal numbers"),
        ("http://127.1/h", "four decimal numbers"),
        ("http://0177.0.0.1/h", "four decimal numbers"),
        ("http://127.000.000.001/h", "four decimal numbers"),
        ("https://hooks_x.example.com/h", "letters, digits and hyphens"),
        ("http://[fe80::1%25eth0]/h", "zone"),
    ],
)
def test_bad_urls_are_refused_with_a_typed_error(graphql, make_workspace, url, reason):
    member = make_workspace()
    result = graphql(CREATE, {"input": {"url": url}}, key=member.key)["createWebhookEndpoint"]
    assert result["__typename"] == "InvalidWebhookUrl" and result["code"] == "INVALID_WEBHOOK_URL"
    assert reason in result["message"] and result["field"] == ["url"] and result["url"] == url
    assert (
        graphql("{ webhookEndpoints { ... on WebhookEndpoints { endpoints { id } } } }", key=member.key)[
            "webhookEndpoints"
        ]["endpoints"]
        == []
    )


def test_unknown_event_types_are_refused_listing_the_valid_ones(graphql, make_workspace):
    member = make_workspace()
    result = graphql(
        CREATE,
        {"input": {"url": "https://example.com/h", "eventTypes": ["checkout.completed", "plan.changed"]}},
        key=member.key,
    )["createWebhookEndpoint"]
    assert (result["__typename"], result["code"], result["eventType"], result["field"]) == (
        "UnknownEventType",
        "UNKNOWN_EVENT_TYPE",
        "plan.changed",
        ["eventTypes", "1"],
    )
    assert result["validEventTypes"] == [t.value for t in EventType]
    assert "plan_change.applied" in result["message"]


def test_unknown_ids_and_other_workspaces_ids_answer_as_unknown(graphql, make_workspace, gateway):
    acme, globex = make_workspace("Acme"), make_workspace("Globex")
    theirs = add_endpoint(gateway, globex.id, "https://globex.example/h")
    [their_event] = emit_events(gateway, globex.id)
    for id_ in ("nope", theirs):
        result = graphql(UPDATE, {"id": id_, "input": {"enabled": False}}, key=acme.key)[
            "updateWebhookEndpoint"
        ]
        assert (result["__typename"], result["code"], result["field"]) == (
            "UnknownWebhookEndpoint",
            "UNKNOWN_WEBHOOK_ENDPOINT",
            ["id"],
        )
        for mutation in ("rotateWebhookSecret", "deleteWebhookEndpoint"):
            answer = graphql(
                f"mutation($id: ID!) {{ {mutation}(id: $id) {{ __typename }} }}", {"id": id_}, key=acme.key
            )
            assert answer[mutation]["__typename"] == "UnknownWebhookEndpoint"
    redeliver = """mutation($event: ID!, $endpoint: ID) { redeliverEvent(eventId: $event, endpointId: $endpoint) {
        __typename ... on UserError { code field } } }"""
    assert graphql(redeliver, {"event": their_event}, key=acme.key)["redeliverEvent"] == {
        "__typename": "UnknownEvent",
        "code": "UNKNOWN_EVENT",
        "field": ["eventId"],
    }
    [our_event] = emit_events(gateway, acme.id)
    assert graphql(redeliver, {"event": our_event, "endpoint": theirs}, key=acme.key)["redeliverEvent"] == {
        "__typename": "UnknownWebhookEndpoint",
        "code": "UNKNOWN_WEBHOOK_ENDPOINT",
        "field": ["endpointId"],
    }
    with gateway.sessions() as session:
        endpoint = session.get(WebhookEndpoint, theirs)
        assert endpoint.enabled  # untouched
    assert (
        graphql("{ webhookEndpoints { ... on WebhookEndpoints { endpoints { id } } } }", key=acme.key)[
            "webhookEndpoints"
        ]["endpoints"]
        == []
    )


def test_a_disabled_endpoint_cannot_be_redelivered_to_until_enabled(graphql, make_workspace, gateway):
    member = make_workspace()
    endpoint_id = add_endpoint(gateway, member.id, "https://example.com/h")
    [event_id] = emit_events(gateway, member.id)
    graphql(UPDATE, {"id": endpoint_id, "input": {"enabled": False}}, key=member.key)
    result = graphql(
        """mutation($e: ID!, $p: ID) { redeliverEvent(eventId: $e, endpointId: $p) {
        __typename ... on UserError { code } } }""",
        {"e": event_id, "p": endpoint_id},
        key=member.key,
    )
    assert result["redeliverEvent"] == {
        "__typename": "WebhookEndpointDisabled",
        "code": "WEBHOOK_ENDPOINT_DISABLED",
    }


def test_webhook_fields_need_an_api_key(graphql, client):
    assert graphql("{ webhookEndpoints { __typename ... on UserError { code } } }")["webhookEndpoints"] == {
        "__typename": "AuthenticationRequired",
        "code": "AUTHENTICATION_REQUIRED",
    }
    for mutation in (CREATE,):
        assert (
            graphql(mutation, {"input": {"url": "https://example.com/h"}})["createWebhookEndpoint"][
                "__typename"
            ]
            == "AuthenticationRequired"
        )
    answer = graphql('mutation { redeliverEvent(eventId: "x") { __typename } }', key="bg_wrong")
    assert answer["redeliverEvent"]["__typename"] == "AuthenticationRequired"


def test_a_workspace_has_a_bounded_number_of_endpoints(graphql, make_workspace, gateway):
    member = make_workspace()
    for n in range(endpoints.MAX_ENDPOINTS):
        add_endpoint(gateway, member.id, f"https://example.com/{n}")
    result = graphql(CREATE, {"input": {"url": "https://example.com/one-more"}}, key=member.key)
    assert result["createWebhookEndpoint"]["code"] == "WEBHOOK_ENDPOINT_LIMIT_REACHED"


def test_deleting_an_endpoint_drops_its_queue_and_log(gateway, clock, make_workspace, receiver):
    hook = receiver(lambda request: (500, b"no"))
    member = make_workspace()
    endpoint_id = add_endpoint(gateway, member.id, hook)
    emit_events(gateway, member.id, 2)
    webhook_delivery.deliver_due(gateway, clock())
    with gateway.write_sessions.begin() as session:
        endpoints.delete_endpoint(session, member.id, endpoint_id)
    assert deliveries(gateway) == []
    with gateway.sessions() as session:
        assert session.scalar(select(func.count()).select_from(DeliveryAttempt)) == 0
        assert session.scalar(select(func.count()).select_from(OutboxEvent)) == 2  # the events stay


# ------------------------------------------------------------------ in the server


def test_the_server_worker_delivers_as_soon_as_an_event_commits(
    settings, clock, gateway, make_workspace, receiver
):
    """The interval is long; the commit wakes the worker (through the notifier), and so does wake()."""
    hook = receiver()
    member = make_workspace()
    add_endpoint(gateway, member.id, hook)
    server = build_gateway(
        dataclasses.replace(settings, delivery_interval=60),
        clock=clock,
        run_migrations=False,
        registry=registry_of(),
    )
    try:
        with TestClient(create_app(server)) as client:
            [event_id] = emit_events(server, member.id)
            _wait_for(lambda: len(hook.accepted()) == 1)
            assert hook.accepted() == [event_id]

            with server.write_sessions.begin() as session:  # no event commits: nothing wakes it ...
                endpoints.redeliver(session, member.id, event_id, None, clock())
            client.app.state.delivery_worker.wake()  # ... but this does
            _wait_for(lambda: len(hook.accepted()) == 2)
    finally:
        server.close()


def _wait_for(condition: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_delivery_settings_come_from_the_environment():
    settings = Settings.from_env(
        {"BILLING_GATEWAY_DELIVERY_INTERVAL": "0", "BILLING_GATEWAY_WEBHOOK_TIMEOUT": "2.5"}
    )
    assert (settings.delivery_interval, settings.webhook_timeout) == (0, 2.5)
    assert (Settings().delivery_interval, Settings().webhook_timeout) == (1.0, 10.0)
    for name, value in (
        ("DELIVERY_INTERVAL", "-1"),
        ("DELIVERY_INTERVAL", "soon"),
        ("WEBHOOK_TIMEOUT", "0"),
        ("WEBHOOK_TIMEOUT", "nan"),
        ("WEBHOOK_TIMEOUT", "3600"),
    ):
        with pytest.raises(SettingsError, match=name):
            Settings.from_env({f"BILLING_GATEWAY_{name}": value})


def test_an_endpoint_deleted_while_a_transaction_writes_events_waits_for_it(gateway, make_workspace) -> None:
    """A transaction writing several events reads the workspace's endpoints once; deleting an
    endpoint meanwhile waits for the workspace's lock, so every event of that transaction is
    routed to the endpoints as they were, and the delete then takes their deliveries along."""
    from gateway.services import webhooks

    member = make_workspace("Acme")
    now = gateway.clock()
    with gateway.write_sessions.begin() as session:  # the row alone: no DNS lookup of its host
        created = endpoints.create_endpoint(
            session, member.id, "https://hooks.example/in", ["checkout.completed"], now
        )
    started, deleted = threading.Event(), threading.Event()
    problems: list[BaseException] = []

    def delete() -> None:
        started.wait(10)
        try:
            webhooks.delete_endpoint(gateway, member.id, created.id)
        except BaseException as error:  # reported below
            problems.append(error)
        deleted.set()

    deleter = threading.Thread(target=delete)
    deleter.start()
    with gateway.write_sessions.begin() as session:
        workspace = lock_workspace(session, member.id)
        assert workspace is not None
        emit(session, workspace, EventType.PLAN_CHANGE_APPLIED, {}, now)  # reads the endpoints
        session.flush()
        started.set()
        assert not deleted.wait(1), "the delete did not wait for the workspace's lock"
        emit(session, workspace, EventType.CHECKOUT_COMPLETED, {}, now)  # routed to the endpoint
    deleter.join(10)
    assert not deleter.is_alive() and not problems, problems
    with gateway.sessions() as session:
        assert session.get(WebhookEndpoint, created.id) is None
        assert session.scalar(select(func.count()).select_from(Delivery)) == 0  # gone with it
        assert session.scalar(select(func.count()).select_from(OutboxEvent)) == 2
