"""The pages the gateway serves (GraphiQL) and their assets, over HTTP: served from the package
with no URL outside the gateway, under a Content-Security-Policy of the gateway's own origin,
assets cached for a year. tests/browser/ runs the page in Chromium."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from gateway.server import pages
from gateway.server.settings import Settings

ASSET_CACHE = "public, max-age=31536000, immutable"


class _References(HTMLParser):
    """The URLs an HTML page loads: script src and link href."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is not None and (tag, name) in {("script", "src"), ("link", "href"), ("img", "src")}:
                self.urls.append(value)


def references(html: str) -> list[str]:
    parser = _References()
    parser.feed(html)
    return parser.urls


@pytest.fixture
def graphiql(client):
    response = client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    return response


def test_graphiql_is_the_bundled_page(graphiql):
    assert graphiql.text == (pages.STATIC / "graphiql.html").read_text(encoding="utf-8")
    assert "<title>GraphiQL · billing-gateway</title>" in graphiql.text
    assert "unpkg" not in graphiql.text and "cdn" not in graphiql.text.lower()


def test_the_page_loads_nothing_from_another_origin(graphiql):
    urls = references(graphiql.text)
    assert any(url.endswith(".js") for url in urls) and any(url.endswith(".css") for url in urls)
    # ./assets/ relative to /graphql; data: only for the empty favicon.
    assert [u for u in urls if not u.startswith("./assets/") and u != "data:,"] == []


def test_the_page_has_a_content_security_policy_of_its_own_origin(graphiql):
    policy = dict(
        directive.strip().split(" ", 1)
        for directive in graphiql.headers["content-security-policy"].split(";")
    )
    assert policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'"  # no inline script, no eval
    assert policy["connect-src"] == "'self'"  # HTTP and WebSocket to the gateway only
    assert policy["frame-ancestors"] == "'none'"
    assert policy["object-src"] == "'none'"
    # Nothing names another host: every source is 'self', 'none', data: or 'unsafe-inline' (styles).
    sources = {source for value in policy.values() for source in value.split()}
    assert sources <= {"'self'", "'none'", "data:", "'unsafe-inline'"}
    assert graphiql.headers["cache-control"] == "no-cache"
    assert graphiql.headers["x-content-type-options"] == "nosniff"


def test_every_asset_of_the_page_is_served_and_cached_for_a_year(client, graphiql):
    for url in references(graphiql.text):
        if url.startswith("./assets/"):
            response = client.get(url.removeprefix("."))
            assert response.status_code == 200, url
            assert response.headers["cache-control"] == ASSET_CACHE
            assert response.headers["x-content-type-options"] == "nosniff"
            expected = "text/javascript" if url.endswith(".js") else "text/css"
            assert response.headers["content-type"].startswith(expected)
            assert response.content == (pages.STATIC / url).read_bytes()


def test_asset_names_carry_their_content_hash():
    names = [path.name for path in pages.ASSETS.iterdir()]
    assert names
    assert [n for n in names if not re.fullmatch(r"[\w.-]+-[\w-]{8}\.(js|css|ttf|woff2?|svg|png)", n)] == []


def test_assets_are_compressed_for_clients_that_accept_gzip(client):
    script = next(p for p in pages.ASSETS.iterdir() if p.suffix == ".js" and p.stat().st_size > 100_000)
    response = client.get(f"/assets/{script.name}", headers={"Accept-Encoding": "gzip"})
    assert response.headers["content-encoding"] == "gzip"
    assert response.content == script.read_bytes()  # decoded by the client
    assert response.headers["cache-control"] == ASSET_CACHE


def test_an_unchanged_asset_is_not_modified_and_keeps_its_cache_headers(client):
    name = next(pages.ASSETS.iterdir()).name
    etag = client.get(f"/assets/{name}").headers["etag"]
    response = client.get(f"/assets/{name}", headers={"If-None-Match": etag})
    assert response.status_code == 304
    assert response.headers["cache-control"] == ASSET_CACHE


def test_unknown_assets_are_404_and_assets_are_read_only(client):
    assert client.get("/assets/nothing-12345678.js").status_code == 404
    assert client.get("/assets/%2e%2e/graphiql.html").status_code == 404  # not out of assets/
    name = next(pages.ASSETS.iterdir()).name
    refused = client.post(f"/assets/{name}", content=b"x")
    assert refused.status_code == 405


def test_a_page_that_was_not_built_is_503_with_what_to_run(client, monkeypatch, tmp_path):
    monkeypatch.setattr(pages, "STATIC", tmp_path)
    pages._html.cache_clear()
    try:
        response = client.get("/graphql", headers={"Accept": "text/html"})
    finally:
        pages._html.cache_clear()
    assert response.status_code == 503
    assert "npm ci && npm run build" in response.text


class TestGraphiQLDisabled:
    @pytest.fixture
    def settings(self, database_url):
        return Settings(database_url=database_url, graphiql=False)

    def test_the_assets_stay_served_for_other_pages(self, client):
        assert client.get("/graphql", headers={"Accept": "text/html"}).status_code == 404
        name = next(pages.ASSETS.iterdir()).name
        assert client.get(f"/assets/{name}").status_code == 200
