"""``billing-gateway deliveries list | replay | run``: what operators use to see and replay
pending and failed deliveries."""

from __future__ import annotations

import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import select, update
from standardwebhooks import Webhook

from gateway.events import delivery as webhook_delivery
from gateway.events import endpoints
from gateway.events.outbox import EventType, emit
from gateway.server.cli import main
from gateway.server.settings import Settings
from gateway.storage.db import Delivery
from gateway.storage.locks import lock_workspace


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, delivery_interval=0, webhook_allow=("127.0.0.1",))


@pytest.fixture(autouse=True)
def receivers_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The receiver is on loopback, which the egress policy refuses unless the operator allows it."""
    monkeypatch.setenv("BILLING_GATEWAY_WEBHOOK_ALLOW", "127.0.0.1")


class Receiver:
    """Answers ``status`` to every POST and keeps the verified webhook-ids."""

    def __init__(self) -> None:
        self.status, self.secret, self.ids = 200, "", []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                Webhook(receiver.secret).verify(body, dict(self.headers))
                receiver.ids.append(self.headers["webhook-id"])
                self.send_response(receiver.status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05})
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def setup(gateway, clock, make_workspace, receiver):
    """One workspace, an endpoint, a failed delivery (event #1) and a pending one (event #2)."""
    member = make_workspace()
    with gateway.write_sessions.begin() as session:
        endpoint = endpoints.create_endpoint(session, member.id, receiver.url, [], clock())
        receiver.secret = endpoint.secret
        workspace = lock_workspace(session, member.id)
        events = [emit(session, workspace, EventType.BALANCE_TOPPED_UP, {"n": n}, clock()).id for n in (1, 2)]
    with gateway.write_sessions.begin() as session:
        session.execute(
            update(Delivery)
            .where(Delivery.event_id == events[0])
            .values(
                status="failed",
                attempts=webhook_delivery.MAX_ATTEMPTS,
                next_attempt_at=None,
                last_status_code=500,
                last_error="HTTP 500",
            )
        )
    return member, events


def delivery_of(gateway, event_id: str) -> Delivery:
    with gateway.sessions() as session:
        return session.scalars(select(Delivery).where(Delivery.event_id == event_id)).one()


def test_list_shows_pending_and_failed_deliveries(cli_env, capsys, gateway, setup, receiver):
    member, (failed, pending) = setup
    assert main(["deliveries", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(delivery_of(gateway, failed).id) and " failed " in lines[0]
    assert "attempts 12" in lines[0] and "last: 500 HTTP 500" in lines[0] and receiver.url in lines[0]
    assert f"balance.topped_up #1 of {member.id}" in lines[0]
    assert lines[1].startswith(delivery_of(gateway, pending).id) and " pending " in lines[1]
    assert "next 2026-11-10T09:30:00+00:00" in lines[1]

    assert main(["deliveries", "list", "--status", "failed"]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == [
        delivery_of(gateway, failed).id
    ]
    assert main(["deliveries", "list", "--status", "delivered"]) == 0
    assert capsys.readouterr().out == "no delivered deliveries\n"


def test_replay_failed_queues_them_again_and_run_sends_them(cli_env, capsys, gateway, setup, receiver):
    _member, (failed, pending) = setup
    assert main(["deliveries", "replay", "--failed"]) == 0
    assert capsys.readouterr().out.startswith("1 delivery queued again, due now")
    replayed = delivery_of(gateway, failed)
    assert (replayed.status, replayed.attempts, replayed.locked_until) == ("pending", 0, None)

    later = (
        max(
            replayed.next_attempt_at, delivery_of(gateway, pending).next_attempt_at
        )  # the CLI's clock is real
        + timedelta(seconds=1)
    ).isoformat()
    assert main(["deliveries", "run", "--now", later]) == 0
    assert capsys.readouterr().out == "2 due: 2 delivered, 0 to retry, 0 failed\n"
    assert sorted(receiver.ids) == sorted([failed, pending])
    assert delivery_of(gateway, failed).status == delivery_of(gateway, pending).status == "delivered"
    assert main(["deliveries", "run", "--now", later]) == 0
    assert capsys.readouterr().out == "0 due: 0 delivered, 0 to retry, 0 failed\n"


def test_run_reports_failures_and_replay_by_id_resends_a_delivered_one(
    cli_env, capsys, gateway, setup, receiver, clock
):
    _member, (failed, pending) = setup
    receiver.status = 503
    assert main(["deliveries", "run", "--now", clock().isoformat()]) == 0
    assert capsys.readouterr().out == "1 due: 0 delivered, 1 to retry, 0 failed\n"
    assert delivery_of(gateway, pending).last_error == "HTTP 503"

    receiver.status = 200
    ids = [delivery_of(gateway, failed).id, delivery_of(gateway, pending).id]
    assert main(["deliveries", "replay", "--id", ids[0], "--id", ids[1]]) == 0
    assert capsys.readouterr().out.startswith("2 deliveries queued again")
    due = max(delivery_of(gateway, e).next_attempt_at for e in (failed, pending))
    assert main(["deliveries", "run", "--now", due.isoformat()]) == 0
    assert capsys.readouterr().out == "2 due: 2 delivered, 0 to retry, 0 failed\n"

    assert main(["deliveries", "replay", "--id", ids[1]]) == 0  # delivered: sent again on request
    assert capsys.readouterr().out.startswith("1 delivery queued again")
    assert delivery_of(gateway, pending).status == "pending"


def test_replay_needs_to_be_told_what(cli_env, capsys, setup):
    assert main(["deliveries", "replay"]) == 2
    assert "--failed" in capsys.readouterr().err
    assert main(["deliveries", "replay", "--id", "no-such-delivery"]) == 0
    assert capsys.readouterr().out.startswith("0 deliveries queued again")
