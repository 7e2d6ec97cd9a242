"""``serve --workers N`` (issue 12, part 3): worker processes that share the port, with new
connections spread across them by the kernel (SO_REUSEPORT), TCP_NODELAY on every connection,
a worker that dies replaced, and every worker stopped with the server."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import time
from collections import Counter
from pathlib import Path

import httpx2 as httpx
from uvicorn.config import Config
from uvicorn.server import ServerState

from gateway.server.workers import NoDelayH11Protocol

from helpers import ServerProcess, installed_beside_the_built_ins

ROOT = Path(__file__).resolve().parent.parent


def start(tmp_path: Path, database_url: str, workers: int) -> ServerProcess:
    env = {
        **os.environ,
        "BILLING_GATEWAY_DATABASE_URL": database_url,
        "BILLING_GATEWAY_RENEWAL_INTERVAL": "0",
        "BILLING_GATEWAY_LOG_FORMAT": "json",
        "PYTHONUNBUFFERED": "1",
        "BILLING_GATEWAY_DISABLED_PLUGINS": ",".join(installed_beside_the_built_ins()),
    }
    command = [sys.executable, "-m", "gateway", "serve", "--host", "127.0.0.1", "--port", "0"]
    return ServerProcess(
        "workers", [*command, "--workers", str(workers)], env=env, cwd=ROOT, start_timeout=60
    )


def access_pids(server: ServerProcess) -> Counter[int]:
    """How many requests each process logged (the JSON access log's pid)."""
    pids: Counter[int] = Counter()
    for line in server.lines:
        if line.startswith("{") and '"gateway.access"' in line:
            pids[json.loads(line)["pid"]] += 1
    return pids


def wait_for(predicate, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_new_connections_spread_across_the_workers(tmp_path, database_url, gateway):
    server = start(tmp_path, database_url, workers=2)
    try:
        for _ in range(40):  # a new connection each: the kernel picks a worker per connection
            with httpx.Client(base_url=server.url, timeout=10) as client:
                assert client.get("/livez").status_code == 200
        wait_for(lambda: sum(access_pids(server).values()) >= 40)
        counts = access_pids(server)
        assert len(counts) == 2, counts
        assert min(counts.values()) >= 5, counts  # all 40 on one worker: 2 chances in 10^12
        assert server.process.pid not in counts  # the parent only supervises
    finally:
        server.stop()
    assert server.process.returncode == 0, server.log()


def test_a_dead_worker_is_replaced_and_the_port_keeps_answering(tmp_path, database_url, gateway):
    server = start(tmp_path, database_url, workers=2)
    try:
        wait_for(lambda: server.log().count("Application startup complete") >= 2)
        with httpx.Client(base_url=server.url, timeout=10) as client:
            assert client.get("/livez").status_code == 200
        wait_for(lambda: bool(access_pids(server)))
        victim = next(iter(access_pids(server)))
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: server.log().count("Application startup complete") >= 3)
        for _ in range(10):
            with httpx.Client(base_url=server.url, timeout=10) as client:
                assert client.get("/livez").status_code == 200
        assert f"worker {victim} exited" in server.log()
    finally:
        server.stop()


def test_every_connection_has_tcp_nodelay():
    """The HTTP protocol `serve` runs for each connection turns Nagle's algorithm off."""

    async def connect_one(accepted: socket.socket) -> None:
        config = Config(app=None, http=NoDelayH11Protocol)
        config.load()
        assert config.http_protocol_class is NoDelayH11Protocol
        protocol = NoDelayH11Protocol(config=config, server_state=ServerState(), app_state={})
        transport, _ = await asyncio.get_running_loop().connect_accepted_socket(
            lambda: protocol, sock=accepted
        )
        transport.close()

    listener = socket.create_server(("127.0.0.1", 0))
    with listener, socket.create_connection(listener.getsockname()):
        accepted, _ = listener.accept()
        accepted.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
        seen: list[int] = []
        original = NoDelayH11Protocol.connection_made

        def spy(self, transport) -> None:
            original(self, transport)
            seen.append(transport.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

        NoDelayH11Protocol.connection_made = spy  # type: ignore[method-assign]
        try:
            asyncio.run(connect_one(accepted))
        finally:
            NoDelayH11Protocol.connection_made = original  # type: ignore[method-assign]
        assert seen == [1]


def test_serving_freezes_what_start_up_made(monkeypatch):
    """A full collection would otherwise walk start-up's objects (modules, the schema, the
    plans) while requests wait on the event loop: the server freezes them before it serves."""
    import gc

    import uvicorn

    from gateway.server.workers import ServeOptions, serve_one

    frozen_when_served: list[int] = []
    monkeypatch.setattr(
        uvicorn.Server, "run", lambda self, sockets=None: frozen_when_served.append(gc.get_freeze_count())
    )
    try:
        serve_one(object(), ServeOptions("127.0.0.1", 0, "warning"))
    finally:
        gc.unfreeze()
    assert frozen_when_served and frozen_when_served[0] > 10_000
