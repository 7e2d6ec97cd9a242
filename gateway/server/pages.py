"""The browser pages the gateway serves (GraphiQL), built from ``frontend/`` into ``gateway/static``.

The build output is committed and shipped in the package, so a fresh clone or a wheel serves
the pages with no npm step and no request leaving the gateway's origin: each page is
``gateway/static/<name>.html``, its assets ``gateway/static/assets/<name>-<hash>.<ext>``,
served at ``/assets/``. A page answers with a Content-Security-Policy that allows the
gateway's own origin only; the assets, named by their content's hash, are cached for a year.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from starlette.middleware.gzip import GZipMiddleware
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import PathLike, StaticFiles
from starlette.types import ASGIApp, Scope

STATIC = Path(__file__).parent.parent / "static"
ASSETS = STATIC / "assets"
ASSETS_PATH = "/assets"  # pages refer to ./assets/... and are served at top-level paths

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "worker-src 'self'",  # the editor's workers (Monaco's, the GraphQL and JSON languages)
        # Monaco writes style elements and attributes at run time (themes, decorations, layout).
        "style-src 'self' 'unsafe-inline'",
        "font-src 'self' data:",  # GraphiQL's fonts are inlined in its stylesheet
        "img-src 'self' data:",
        "connect-src 'self'",  # HTTP and WebSocket (CSP level 3: 'self' covers ws: and wss:)
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)

PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Cache-Control": "no-cache",  # revalidate: a new release refers to new asset names
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

ASSET_HEADERS = {
    "Cache-Control": "public, max-age=31536000, immutable",  # the name changes with the content
    "X-Content-Type-Options": "nosniff",
}


class PageMissing(LookupError):
    """A page's build output is not in the package (``frontend/``: ``npm ci && npm run build``)."""


@lru_cache(maxsize=8)
def _html(name: str) -> str:
    try:
        return (STATIC / f"{name}.html").read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PageMissing(name) from None


def page(name: str) -> Response:
    """The built page ``name`` with its security headers; 503 if it was not built."""
    try:
        html = _html(name)
    except PageMissing:
        return Response(
            f"the {name} page is not built: run `npm ci && npm run build` in frontend/",
            status_code=503,
            media_type="text/plain",
        )
    return HTMLResponse(html, headers=PAGE_HEADERS)


class _HashedAssets(StaticFiles):
    def file_response(
        self, full_path: PathLike, stat_result: os.stat_result, scope: Scope, status_code: int = 200
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers.update(ASSET_HEADERS)  # on 304 Not Modified too
        return response


def assets() -> ASGIApp:
    """The ASGI app to mount at :data:`ASSETS_PATH`: the hashed assets, compressed for clients
    that accept gzip (Monaco is megabytes). Methods other than GET and HEAD are 405.

    ``check_dir=False``: a missing build makes the pages 503, it does not stop the gateway.
    """
    return GZipMiddleware(_HashedAssets(directory=ASSETS, check_dir=False))
