"""The two baselines ``load.py`` measures the gateway against, each served by uvicorn on one
worker with the keyword arguments ``billing-gateway serve`` passes (gateway/server/cli.py):

* ``raw``: Starlette with one endpoint, ``POST /graphql``, that reads the body and answers a
  fixed small JSON without parsing anything: what the HTTP stack alone costs.
* ``strawberry``: a plain Strawberry app with one trivial resolver (``{ hello }``) and no
  parser or validation cache (Strawberry's default): what the GraphQL library alone costs.

    python tests/benchmarks/load_baselines.py raw --host 127.0.0.1 --port 8001
"""

from __future__ import annotations

import argparse
import sys

import strawberry
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from strawberry.asgi import GraphQL

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


APPS = {"raw": raw_app, "strawberry": strawberry_app}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("app", choices=sorted(APPS))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    # As `billing-gateway serve` runs the gateway: one process, no access log.
    uvicorn.run(
        APPS[args.app](),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
        log_config=None,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
