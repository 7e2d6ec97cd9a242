"""Serving: one uvicorn server in this process, or ``--workers N`` processes that share the port.

Workers each bind the port with ``SO_REUSEPORT``, so the kernel spreads new connections across
them by their addresses (uvicorn's own workers share one listening socket, and keep-alive
connections piled onto whichever worker accepted first). Every connection gets ``TCP_NODELAY``:
an answer leaves at once instead of waiting for the client's acknowledgement of the previous one.

Each worker is a whole gateway (:func:`gateway.server.app.build_gateway` from the environment):
its own pool, notifier and periodic tasks, which are safe to run on several replicas at once.
The parent only supervises: it restarts a worker that dies, and on SIGTERM or SIGINT stops them
all (each finishes its requests in flight, as uvicorn does).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import multiprocessing
import os
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from gateway.server.http import MAX_WEBSOCKET_MESSAGE

logger = logging.getLogger("gateway.server")

STOP_TIMEOUT = 30.0  # seconds a stopping worker may take to finish its requests before it is killed
RESTART_WINDOW = 10.0  # a worker that dies sooner than this after starting counts as crashing
MAX_CRASHES = 5  # crashes in a row before the supervisor gives up


def no_delay(transport: Any) -> None:
    """Turn Nagle's algorithm off for a connection's socket (TCP only)."""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):  # the client may be gone already
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class NoDelayH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, with ``TCP_NODELAY`` on every connection."""

    def connection_made(self, transport: Any) -> None:
        no_delay(transport)
        super().connection_made(transport)


@dataclass(frozen=True)
class ServeOptions:
    host: str
    port: int
    log_level: str
    workers: int = 1


def _config(app: Any, options: ServeOptions) -> uvicorn.Config:
    # uvicorn's access log prints query strings; gateway.server.http.AccessLog does not.
    # log_config=None: uvicorn's loggers keep the handler configure_logging set up.
    return uvicorn.Config(
        app,
        host=options.host,
        port=options.port,
        log_level=options.log_level,
        access_log=False,
        log_config=None,
        ws_max_size=MAX_WEBSOCKET_MESSAGE,
        http=NoDelayH11Protocol,
    )


def serve_one(app: Any, options: ServeOptions) -> None:
    """Serve ``app`` in this process until SIGTERM or SIGINT."""
    server = uvicorn.Server(_config(app, options))
    freeze_heap()
    server.run()


def freeze_heap() -> None:
    """Move what start-up made (modules, the schema, plans, the catalog) out of the cyclic
    garbage collector's sight. A full collection walks every tracked object: with start-up's
    150,000 of them, each took 80 to 120 ms under load, stopping the event loop and every
    request on it (the p99 of `quote`). Frozen objects are never collected, so this runs
    only in a serving process, once, after a collection."""
    gc.collect()
    gc.freeze()


def bound_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (host, port) with SO_REUSEPORT, not yet listening."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def _worker(build_app: Callable[[], Any], options: ServeOptions, port: int) -> None:
    """One worker process: its own gateway, on its own socket of the shared port."""
    app = build_app()
    sock = bound_socket(options.host, port)
    sock.listen(2048)
    server = uvicorn.Server(_config(app, ServeOptions(options.host, port, options.log_level)))
    freeze_heap()
    server.run(sockets=[sock])


def serve_workers(build_app: Callable[[], Any], options: ServeOptions) -> int:
    """Run ``options.workers`` worker processes on the port until SIGTERM or SIGINT; the exit
    status (1 when workers kept crashing). ``build_app`` runs in each worker: it must be a
    module-level function (the workers are spawned, not forked)."""
    reserved = bound_socket(options.host, options.port)  # holds the port (and learns it, for 0)
    port = reserved.getsockname()[1]
    context = multiprocessing.get_context("spawn")
    stopping = False

    def start() -> BaseProcess:
        process = context.Process(target=_worker, args=(build_app, options, port), daemon=False)
        process.start()
        return process

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    crashes = 0
    workers: dict[BaseProcess, float] = {}
    try:
        for _ in range(options.workers):
            workers[start()] = time.monotonic()
        if _listening(options.host, port, lambda: stopping or not any(p.is_alive() for p in workers)):
            # uvicorn's own words (it prints none for sockets it is handed), which tools wait for.
            logger.info(
                "Uvicorn running on http://%s:%d with %d worker processes (supervisor pid %d)",
                f"[{options.host}]" if ":" in options.host else options.host,
                port,
                options.workers,
                os.getpid(),
            )
        while not stopping:
            time.sleep(0.2)
            for process, started in list(workers.items()):
                if process.is_alive() or stopping:
                    continue
                del workers[process]
                crashes = crashes + 1 if time.monotonic() - started < RESTART_WINDOW else 1
                logger.error("worker %s exited with %s; starting another", process.pid, process.exitcode)
                if crashes >= MAX_CRASHES:
                    logger.error("workers keep exiting at start-up; giving up")
                    return 1
                workers[start()] = time.monotonic()
        return 0
    finally:
        _stop_all(list(workers))
        reserved.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _listening(host: str, port: int, give_up: Callable[[], bool]) -> bool:
    """Wait until a worker accepts connections on the port (False if ``give_up`` first)."""
    while not give_up():
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
            return True
        time.sleep(0.1)
    return False


def _stop_all(processes: list[BaseProcess]) -> None:
    for process in processes:
        if process.is_alive() and process.pid is not None:
            os.kill(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join(5)
