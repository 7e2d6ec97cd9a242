"""The two baselines ``load.py`` measures the gateway against, each served by uvicorn in one
process with the configuration ``billing-gateway serve`` gives one gateway process
(``_config`` in gateway/server/workers.py: no access log, h11 with TCP_NODELAY on every
connection), copied here rather than imported: importing it imports the gateway, whose
memory would then count in the baseline's.

* ``raw``: Starlette with one endpoint, ``POST /graphql``, that reads the body and answers a
  fixed small JSON without parsing anything: what the HTTP stack alone costs.
* ``strawberry``: a plain Strawberry app with one trivial resolver (``{ hello }``) and no
  parser or validation cache (Strawberry's default): what the GraphQL library alone costs.

    python tests/benchmarks/load_baselines.py raw --host 127.0.0.1 --port 8001
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import sys
from typing import Any

import strawberry
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from strawberry.asgi import GraphQL
from uvicorn.protocols.http.h11_impl import H11Protocol

RAW_ANSWER = {"data": {"ok": True}}
STRAWBERRY_QUERY = "{ hello }"
STRAWBERRY_ANSWER = {"data": {"hello": "world"}}


async def fixed_answer(request: Request) -> Response:
    await request.body()  # the request is read, as any endpoint would, but not parsed
    return JSONResponse(RAW_ANSWER)


def raw_app() -> Starlette:
    return Starlette(routes=[Route("/graphql", fixed_answer, methods=["POST"])])


@strawberry.type
class Query:
    @strawberry.field
    def hello(self) -> str:
        return "world"


def strawberry_app() -> GraphQL:
    return GraphQL(strawberry.Schema(query=Query))


class NoDelayH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with TCP_NODELAY, as the gateway's (gateway/server/workers.py)."""

    def connection_made(self, transport: Any) -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)


APPS = {"raw": raw_app, "strawberry": strawberry_app}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("app", choices=sorted(APPS))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    config = uvicorn.Config(
        APPS[args.app](),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
        log_config=None,
        http=NoDelayH11Protocol,
    )
    uvicorn.Server(config).run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
