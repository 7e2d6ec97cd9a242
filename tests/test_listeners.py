"""In-process event listeners (the ``register_event_listeners`` hook): each committed event once,
in sequence order per workspace, retried when the listener raises; nothing for a rollback; once
across two workers (replicas)."""

from __future__ import annotations

import random
import threading
import time

import pytest
from sqlalchemy import select

from gateway.events import delivery as webhook_delivery
from gateway.events.outbox import EventType, emit
from gateway.plugin_api.events import Event
from gateway.server.app import build_gateway
from gateway.server.settings import Settings
from gateway.storage.db import Delivery, DeliveryAttempt
from gateway.storage.locks import lock_workspace

from helpers import make_distribution, registry_of


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, delivery_interval=0)


class Recorder:
    """A listener as a partner writes one; it may fail on chosen (workspace, sequence) pairs."""

    def __init__(
        self, code: str = "audit", log: list[Event] | None = None, lock: threading.Lock | None = None
    ) -> None:
        self.code = code
        self.events: list[Event] = [] if log is None else log
        self.lock = lock or threading.Lock()
        self.failures: dict[tuple[str, int], int] = {}  # how many more times to raise
        self.calls = 0

    def handle(self, event: Event) -> None:
        with self.lock:
            self.calls += 1
            key = (event.workspace_id, event.sequence)
            if self.failures.get(key, 0) > 0:
                self.failures[key] -= 1
                raise RuntimeError(f"audit store unavailable for #{event.sequence}")
            self.events.append(event)


def emit_events(gateway, workspace_id: str, count: int = 1) -> list[str]:
    with gateway.write_sessions.begin() as session:
        workspace = lock_workspace(session, workspace_id)
        return [
            emit(session, workspace, EventType.CREDITS_RESET, {"n": n}, gateway.clock()).id
            for n in range(count)
        ]


def listener_deliveries(gateway) -> list[Delivery]:
    with gateway.sessions() as session:
        return list(session.scalars(select(Delivery).where(Delivery.listener.is_not(None))))


def sequences(events: list[Event], workspace_id: str) -> list[int]:
    return [e.sequence for e in events if e.workspace_id == workspace_id]


PARTNER_LISTENER = """
    from gateway.plugin_api import hookimpl

    class AuditLog:
        code = "audit"

        def __init__(self):
            self.events = []

        def handle(self, event):
            self.events.append(event)

    @hookimpl
    def register_event_listeners(register):
        register(AuditLog())
"""


def test_a_partners_listener_gets_each_committed_event_once_in_order(
    tmp_path, monkeypatch, settings, clock, gateway, make_workspace
):
    make_distribution(tmp_path, "partner-audit", "partner_audit", PARTNER_LISTENER)
    monkeypatch.syspath_prepend(str(tmp_path))
    partner = build_gateway(settings, clock=clock, run_migrations=False)
    try:
        audit = partner.registry.event_listeners["audit"]
        acme, globex = make_workspace("Acme"), make_workspace("Globex")
        ids = []
        for _ in range(3):  # interleaved between workspaces
            ids += emit_events(partner, acme.id, 2) + emit_events(partner, globex.id, 1)

        counts = webhook_delivery.deliver_due(partner, clock())

        assert counts.delivered == len(ids) == 9
        assert sorted(e.id for e in audit.events) == sorted(ids)
        assert sequences(audit.events, acme.id) == [1, 2, 3, 4, 5, 6]
        assert sequences(audit.events, globex.id) == [1, 2, 3]
        first = next(e for e in audit.events if e.workspace_id == acme.id)
        assert (first.type, first.payload, first.version, first.occurred_at) == (
            "credits.reset",
            {"n": 0},
            1,
            clock(),
        )
        assert webhook_delivery.deliver_due(partner, clock.advance(days=5)).claimed == 0  # once
        assert len(audit.events) == 9
    finally:
        partner.close()


def test_a_listener_registered_with_the_registry_of_a_fresh_gateway_is_routed(gateway, clock, make_workspace):
    member = make_workspace()
    emit_events(gateway, member.id)  # before any listener: not for it
    recorder = Recorder()
    gateway.registry.event_listeners["audit"] = recorder
    [event_id] = emit_events(gateway, member.id)

    webhook_delivery.deliver_due(gateway, clock())

    assert [e.id for e in recorder.events] == [event_id]


def test_a_rolled_back_change_reaches_no_listener(gateway, clock, make_workspace):
    recorder = Recorder()
    gateway.registry.event_listeners["audit"] = recorder
    member = make_workspace()
    with pytest.raises(LookupError), gateway.write_sessions.begin() as session:
        emit(session, lock_workspace(session, member.id), EventType.CHECKOUT_COMPLETED, {}, clock())
        raise LookupError("rolled back")
    assert listener_deliveries(gateway) == []
    assert webhook_delivery.deliver_due(gateway, clock()).claimed == 0 and recorder.calls == 0


def test_a_raising_listener_is_retried_and_later_events_wait_for_it(gateway, clock, make_workspace):
    recorder = Recorder()
    gateway.registry.event_listeners["audit"] = recorder
    member = make_workspace()
    emit_events(gateway, member.id, 4)
    recorder.failures[(member.id, 2)] = 2  # event #2 fails twice

    counts = webhook_delivery.deliver_due(gateway, clock(), rng=random.Random(5))

    assert (counts.delivered, counts.retrying, counts.released) == (1, 1, 2)
    assert sequences(recorder.events, member.id) == [1]
    assert webhook_delivery.deliver_due(gateway, clock()).claimed == 0  # #3 and #4 wait behind #2's retry
    emit_events(gateway, member.id)  # #5 arrives meanwhile: it waits too, without being tried
    assert webhook_delivery.deliver_due(gateway, clock()).claimed == 0
    waiting = {d.next_attempt_at for d in listener_deliveries(gateway) if d.status == "pending"}
    assert len(waiting) == 1 and waiting.pop() > clock()  # all parked until #2's retry
    for _ in range(5):
        due = min(d.next_attempt_at for d in listener_deliveries(gateway) if d.status == "pending")
        clock.now = max(clock.now, due)
        webhook_delivery.deliver_due(gateway, clock(), rng=random.Random(5))
        if all(d.status == "delivered" for d in listener_deliveries(gateway)):
            break
    assert sequences(recorder.events, member.id) == [1, 2, 3, 4, 5]  # each once, in order
    failing = [d for d in listener_deliveries(gateway) if d.attempts == 3]
    assert len(failing) == 1
    with gateway.sessions() as session:
        log = list(
            session.scalars(
                select(DeliveryAttempt)
                .where(DeliveryAttempt.delivery_id == failing[0].id)
                .order_by(DeliveryAttempt.attempted_at)
            )
        )
    assert [a.error for a in log] == ["RuntimeError: audit store unavailable for #2"] * 2 + [None]
    assert all(a.status_code is None for a in log)


def test_another_workspaces_failure_does_not_hold_up_this_one(gateway, clock, make_workspace):
    recorder = Recorder()
    gateway.registry.event_listeners["audit"] = recorder
    acme, globex = make_workspace("Acme"), make_workspace("Globex")
    emit_events(gateway, acme.id, 2)
    emit_events(gateway, globex.id, 2)
    recorder.failures[(acme.id, 1)] = 1

    webhook_delivery.deliver_due(gateway, clock())

    assert sequences(recorder.events, globex.id) == [1, 2] and sequences(recorder.events, acme.id) == []


def test_two_workers_hand_each_event_to_the_listener_once_and_in_order(
    gateway, settings, clock, make_workspace
):
    """Two replicas with the same listener code: each event is handled by one of them, once."""
    log: list[Event] = []
    lock = threading.Lock()
    gateway.registry.event_listeners["audit"] = Recorder(log=log, lock=lock)
    replica = build_gateway(settings, clock=clock, run_migrations=False, registry=registry_of())
    replica.registry.event_listeners["audit"] = Recorder(log=log, lock=lock)
    workspaces = [make_workspace(f"W{n}") for n in range(4)]
    ids = []
    for _ in range(5):
        for member in workspaces:
            ids += emit_events(gateway, member.id, 3)
    start, errors = threading.Barrier(2), []

    def work(gw) -> None:
        try:
            start.wait(5)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if webhook_delivery.deliver_due(gw, clock(), limit=7, concurrency=3).claimed == 0:
                    if not any(d.status == "pending" for d in listener_deliveries(gw)):
                        return
                    time.sleep(0.005)
        except BaseException as error:
            errors.append(error)

    try:
        threads = [threading.Thread(target=work, args=(gw,)) for gw in (gateway, replica)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    finally:
        replica.close()

    assert errors == []
    assert sorted(e.id for e in log) == sorted(ids)  # each once
    for member in workspaces:
        assert sequences(log, member.id) == list(range(1, 16))  # in order per workspace
