"""A webhook receiver for the tests: an HTTP server on 127.0.0.1 that verifies every request's
Standard Webhooks signature (tests/test_webhooks.py, tests/test_webhook_egress.py)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    verified: bool  # with the receiver's secret at the time
    status: int = 0  # what the receiver answered

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]

    def verifies_with(self, secret: str) -> bool:
        try:
            Webhook(secret).verify(self.body, self.headers)
        except WebhookVerificationError:
            return False
        return True


class Receiver:
    """An HTTP server on 127.0.0.1 that checks every request's Standard Webhooks signature.

    ``respond(request) -> (status, body)`` decides the answer; it may block on ``release``.
    """

    def __init__(self, respond: Callable[[Received], tuple[int, bytes]] | None = None) -> None:
        self.secret: str | None = None
        self.location: str | None = None  # sent with every answer when set (redirects)
        self.respond = respond or (lambda request: (200, b"ok"))
        self.requests: list[Received] = []
        self.lock = threading.Lock()
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                request = Received(self.path, headers, body, False)
                request.verified = receiver.secret is not None and request.verifies_with(receiver.secret)
                with receiver.lock:
                    receiver.requests.append(request)
                status, reply = receiver.respond(request)
                request.status = status
                try:
                    self.send_response(status)
                    self.send_header("content-length", str(len(reply)))
                    if receiver.location:
                        self.send_header("location", receiver.location)
                    self.end_headers()
                    self.wfile.write(reply)
                except OSError:  # the gateway gave up waiting
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def accepted(self) -> list[str]:
        """The webhook-ids answered with 2xx, in order: what the integrator processed."""
        with self.lock:
            return [r.webhook_id for r in self.requests if 200 <= r.status < 300]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def receivers() -> Iterator[Callable[..., Receiver]]:
    """For a test module's ``receiver`` fixture: starts receivers, and closes them afterwards."""
    started: list[Receiver] = []

    def start(respond: Callable[[Received], tuple[int, bytes]] | None = None) -> Receiver:
        started.append(Receiver(respond))
        return started[-1]

    yield start
    for r in started:
        r.close()
