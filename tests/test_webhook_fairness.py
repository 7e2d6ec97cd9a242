"""One workspace's slow webhook endpoints do not hold back another workspace's deliveries:
in the server's worker (slots per workspace, refilled as each request ends) and in a batch
(``deliver_due``: round-robin over the workspaces, lanes per workspace)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import select

from gateway.events import delivery as webhook_delivery
from gateway.events import endpoints
from gateway.events.outbox import EventType, emit
from gateway.server.settings import Settings, SettingsError
from gateway.storage.db import Delivery
from gateway.storage.locks import lock_workspace

from receivers import Receiver, receivers


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url, delivery_interval=0, webhook_timeout=10, webhook_allow=("127.0.0.1",)
    )


@pytest.fixture
def receiver() -> Iterator[Callable[..., Receiver]]:
    yield from receivers()


def add_endpoints(gateway, workspace_id: str, hook: Receiver, count: int = 1) -> None:
    with gateway.write_sessions.begin() as session:
        for n in range(count):
            row = endpoints.create_endpoint(session, workspace_id, f"{hook.url}/{n}", [], gateway.clock())
            hook.secret = row.secret  # the receiver checks the last one; these tests count requests


def emit_event(gateway, workspace_id: str) -> str:
    with gateway.write_sessions.begin() as session:
        workspace = lock_workspace(session, workspace_id)
        return emit(session, workspace, EventType.BALANCE_TOPPED_UP, {}, gateway.clock()).id


def statuses(gateway, event_id: str) -> list[str]:
    with gateway.sessions() as session:
        return list(session.scalars(select(Delivery.status).where(Delivery.event_id == event_id)))


def wait_for(condition: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_slow_tenant_holds_its_own_slots_only(gateway, make_workspace, receiver):
    """Tenant A's 20 endpoints hang (until the test releases them); tenant B's event, committed
    meanwhile, is delivered while all of A's requests in flight are still blocked."""
    stuck = receiver()
    stuck.respond = lambda request: (stuck.release.wait(10), (200, b"late"))[1]
    quick = receiver()
    acme, globex = make_workspace("Acme"), make_workspace("Globex")
    add_endpoints(gateway, acme.id, stuck, 20)
    add_endpoints(gateway, globex.id, quick)
    worker = webhook_delivery.DeliveryWorker(gateway, 60, concurrency=8, per_workspace=4)
    try:
        slow_event = emit_event(gateway, acme.id)
        assert worker.pump() == 4  # A's share, though 8 slots are free and 20 deliveries due
        wait_for(lambda: len(stuck.requests) == 4)
        assert worker.pump() == 0  # A has its 4 in flight: nothing more of A's

        quick_event = emit_event(gateway, globex.id)
        assert worker.pump() == 1
        wait_for(lambda: statuses(gateway, quick_event) == ["delivered"])

        assert not stuck.release.is_set() and len(stuck.requests) == 4  # A's are all still blocked
        assert [r.webhook_id for r in quick.requests] == [quick_event]
        assert statuses(gateway, slow_event) == ["pending"] * 20
        stuck.release.set()  # as each of A's requests ends, its slot goes to the next of A's
        # (the server's loop pumps when woken by each end; here the test pumps)
        wait_for(lambda: worker.pump() >= 0 and statuses(gateway, slow_event) == ["delivered"] * 20)
        assert len(stuck.requests) == 20
    finally:
        stuck.release.set()
        worker.close()


def test_a_batch_takes_every_workspace_in_turn(gateway, clock, make_workspace, receiver):
    """A batch of 5 when A has 20 deliveries due before B's one: B's is in it."""
    hook = receiver()
    acme, globex = make_workspace("Acme"), make_workspace("Globex")
    add_endpoints(gateway, acme.id, hook, 20)
    add_endpoints(gateway, globex.id, hook)
    emit_event(gateway, acme.id)
    clock.advance(seconds=1)
    later = emit_event(gateway, globex.id)

    counts = webhook_delivery.deliver_due(gateway, clock(), limit=5)

    assert counts.delivered == 5 and later in [r.webhook_id for r in hook.requests]
    assert statuses(gateway, later) == ["delivered"]


def test_a_batch_keeps_one_workspace_to_its_lanes(gateway, clock, make_workspace, receiver):
    """In a batch, one workspace's requests are in flight ``per_workspace`` at a time at most."""
    lock, in_flight, peak = threading.Lock(), [0], [0]
    release = threading.Event()

    def counting(request) -> tuple[int, bytes]:
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
            if in_flight[0] == 2:
                release.set()  # both lanes are busy: let them go on
        release.wait(5)
        with lock:
            in_flight[0] -= 1
        return 200, b"ok"

    hook = receiver(counting)
    member = make_workspace()
    add_endpoints(gateway, member.id, hook, 12)
    emit_event(gateway, member.id)

    counts = webhook_delivery.deliver_due(gateway, clock(), concurrency=8, per_workspace=2)

    assert counts.delivered == 12 and peak[0] == 2


def test_concurrency_settings_come_from_the_environment():
    settings = Settings.from_env(
        {"BILLING_GATEWAY_WEBHOOK_CONCURRENCY": "32", "BILLING_GATEWAY_WEBHOOK_WORKSPACE_CONCURRENCY": "2"}
    )
    assert (settings.webhook_concurrency, settings.webhook_workspace_concurrency) == (32, 2)
    for env in (
        {"BILLING_GATEWAY_WEBHOOK_CONCURRENCY": "many"},
        {"BILLING_GATEWAY_WEBHOOK_CONCURRENCY": "0"},
        {"BILLING_GATEWAY_WEBHOOK_CONCURRENCY": "4", "BILLING_GATEWAY_WEBHOOK_WORKSPACE_CONCURRENCY": "8"},
    ):
        with pytest.raises(SettingsError, match="CONCURRENCY"):
            Settings.from_env(env)
