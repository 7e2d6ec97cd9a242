"""GraphiQL in Chromium: the bundled page works with no network beyond the gateway, sends the
API key from its Headers editor over HTTP and as the subscriptions' connection_init payload,
and breaks no rule of its Content-Security-Policy.

``BILLING_GATEWAY_SCREENSHOTS=1`` saves the screenshot the README shows
(docs/screenshots/graphiql.png); otherwise it goes to the test's tmp_path, so a test run never
changes the checkout.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from gateway.events.outbox import EventType, emit
from gateway.storage.locks import lock_workspace

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "docs" / "screenshots" / "graphiql.png"


def paste(page: Page, editor: Locator, text: str) -> None:
    """Replace an editor's text as a paste does: typed braces would be closed by the editor."""
    editor.click()
    page.keyboard.press("ControlOrMeta+A")
    page.evaluate(
        """text => {
            const data = new DataTransfer();
            data.setData("text/plain", text);
            document.activeElement.dispatchEvent(
                new ClipboardEvent("paste", {clipboardData: data, bubbles: true, cancelable: true}));
        }""",
        text,
    )


def shown(locator: Locator) -> str:
    """An editor's visible text, with the editor's non-breaking spaces made plain."""
    return locator.inner_text().replace("\xa0", " ")


def open_graphiql(page: Page, url: str, key: str) -> tuple[Locator, Locator]:
    """Open GraphiQL, set the key in its Headers editor; the query editor and the response pane."""
    response = page.goto(f"{url}/graphql")
    assert response is not None and response.ok
    query = page.locator(".graphiql-query-editor .monaco-editor")
    expect(query).to_be_visible()
    headers = page.locator(".graphiql-editor-tool .monaco-editor:visible")  # the Headers tab is open
    paste(page, headers, json.dumps({"Authorization": f"Bearer {key}"}, indent=2))
    return query, page.locator(".graphiql-response")


def test_graphiql_runs_a_query_offline_with_the_api_key(page, server, traffic, make_workspace, tmp_path):
    member = make_workspace("Browser Ltd")
    query, result = open_graphiql(page, server.url, member.key)
    paste(page, query, "{ plans { code } }")

    with page.expect_response(
        lambda r: r.request.method == "POST" and "plans" in (r.request.post_data or "")
    ) as sent:
        page.locator(".graphiql-execute-button").click()
    assert sent.value.request.headers["authorization"] == f"Bearer {member.key}"
    assert sent.value.json() == {
        "data": {"plans": [{"code": "free"}, {"code": "email"}, {"code": "omnichannel"}, {"code": "custom"}]}
    }
    expect(result).to_contain_text('"code": "omnichannel"', use_inner_text=True)
    assert '"plans": [' in shown(result)

    page.screenshot(
        path=SCREENSHOT if os.environ.get("BILLING_GATEWAY_SCREENSHOTS") else tmp_path / "graphiql.png"
    )
    traffic.assert_stayed_home()
    # The page and its assets came from the gateway: the page, its script and stylesheet; the
    # schema was introspected over HTTP. (Monaco's workers load when the editor wants them, so
    # whether they were asked for yet varies; wherever they come from, assert_stayed_home holds.)
    paths = {re.sub(r"-[\w-]{8}\.", ".", u.removeprefix(traffic.origin)) for u in traffic.urls()}
    assert {"/graphql", "/assets/graphiql.js", "/assets/graphiql.css"} <= paths


def test_graphiql_reads_the_workspace_with_the_key(page, server, traffic, make_workspace):
    member = make_workspace("Keyed GmbH")
    query, result = open_graphiql(page, server.url, member.key)
    paste(page, query, "{ workspace { ... on Workspace { name } } }")
    page.locator(".graphiql-execute-button").click()
    expect(result).to_contain_text('"name": "Keyed GmbH"', use_inner_text=True)
    traffic.assert_stayed_home()


def commit_event(gateway, member) -> int:
    with gateway.write_sessions() as session, session.begin():
        event = emit(session, lock_workspace(session, member.id), EventType.CARD_ADDED, {}, gateway.clock())
    return event.sequence


def test_graphiql_subscribes_over_websocket_with_the_key(page, server, traffic, gateway, make_workspace):
    """The stream replays the committed event, then shows one committed while it runs."""
    member = make_workspace("Live Ltd")
    first = commit_event(gateway, member)
    query, result = open_graphiql(page, server.url, member.key)
    paste(page, query, "subscription Live { events(afterSequence: 0) { type sequence } }")
    # The tab takes the operation's name once GraphiQL has parsed the document, which is what
    # tells it to run the operation over WebSocket rather than HTTP.
    expect(page.locator(".graphiql-tab-active")).to_contain_text("Live")
    page.locator(".graphiql-execute-button").click()
    expect(result).to_contain_text(f'"sequence": {first}', use_inner_text=True)

    second = commit_event(gateway, member)
    expect(result).to_contain_text(f'"sequence": {second}', use_inner_text=True)
    assert '"type": "card.added"' in shown(result)
    assert [ws.url for ws in traffic.websockets] == [server.url.replace("http://", "ws://") + "/graphql"]
    traffic.assert_stayed_home()
