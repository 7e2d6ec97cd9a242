"""A bounded load run of the `quote` mutation over HTTP on loopback.

Starts the gateway with uvicorn on 127.0.0.1 (a fresh SQLite file unless
--database-url is given), creates a workspace, then sends --requests quote
requests from --concurrency client threads, stopping early after --seconds.
Prints throughput, failures and latency percentiles as JSON.

    .venv/bin/python tests/benchmarks/load_quote.py --requests 2000 --concurrency 8
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx2 as httpx

QUOTE = """mutation Q($input: QuoteInput!) { quote(input: $input) { __typename
  ... on Quote { kind dueNow { total { amount } } dueAtRenewal { total { amount } } }
  ... on UserError { code } } }"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(requests: int, concurrency: int, seconds: float, database_url: str | None) -> dict[str, float]:
    workdir = Path(tempfile.mkdtemp(prefix="bg-load-"))
    env = dict(os.environ, BILLING_GATEWAY_DATABASE_URL=database_url or f"sqlite:///{workdir / 'load.db'}")
    cli = [sys.executable, "-m", "gateway"]
    created = subprocess.run(
        [*cli, "create-workspace", "Load", "--plan", "email", "--email-credits", "50000"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    key = next(line.split(": ", 1)[1] for line in created.splitlines() if line.startswith("api key: "))
    port = free_port()
    log = (workdir / "server.log").open("w")
    server = subprocess.Popen(
        [*cli, "serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/graphql"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError(f"the gateway did not start: see {workdir / 'server.log'}") from None
                time.sleep(0.1)
        latencies: list[float] = []
        failures = 0
        lock = threading.Lock()
        counter = iter(range(requests))
        stop_at = time.monotonic() + seconds

        def worker() -> None:
            nonlocal failures
            with httpx.Client(timeout=10, headers={"Authorization": f"Bearer {key}"}) as client:
                for i in counter:
                    if time.monotonic() > stop_at:
                        return
                    body = {
                        "query": QUOTE,
                        "variables": {
                            "input": {
                                "planCode": "omnichannel",
                                "emailCredits": 5000 + 5000 * (i % 100),
                                "messagingCredits": 1000 + 1000 * (i % 50),
                                "billingDetails": {"customerType": "PERSON", "country": "DE"},
                            }
                        },
                    }
                    started = time.perf_counter()
                    response = client.post(url, json=body)
                    elapsed = time.perf_counter() - started
                    ok = (
                        response.status_code == 200
                        and response.json()["data"]["quote"]["__typename"] == "Quote"
                    )
                    with lock:
                        latencies.append(elapsed)
                        failures += not ok

        started = time.perf_counter()
        threads = [threading.Thread(target=worker) for _ in range(concurrency)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()
    latencies.sort()
    quantile = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000  # noqa: E731
    return {
        "requests": len(latencies),
        "failures": failures,
        "seconds": wall,
        "per_second": len(latencies) / wall,
        "p50_ms": quantile(0.5),
        "p95_ms": quantile(0.95),
        "p99_ms": quantile(0.99),
        "mean_ms": statistics.fmean(latencies) * 1000,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60, help="stop sending after this long")
    parser.add_argument("--database-url")
    args = parser.parse_args()
    print(json.dumps(run(args.requests, args.concurrency, args.seconds, args.database_url), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
