"""The reference Billing page (/billing) in headless Chromium, against the gateway on
127.0.0.1: the seed's upgrade flow screen by screen, on the public GraphQL API only (the
operations under schema/operations). Every request stays on the gateway's origin.

``BILLING_GATEWAY_SCREENSHOTS=1`` saves a screenshot of each seed step into docs/screenshots,
which the README shows; otherwise they go to the test's tmp_path, so a run never changes the
checkout.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[2]

GOOD_CARD = "4242424242424242"
THREE_D_SECURE_CARD = "4000002760003184"


@pytest.fixture
def shots(tmp_path):
    """Save a full-page screenshot of a seed step."""
    folder = ROOT / "docs" / "screenshots" if os.environ.get("BILLING_GATEWAY_SCREENSHOTS") else tmp_path

    def take(page, name: str) -> None:
        page.screenshot(path=str(folder / f"{name}.png"), full_page=True, animations="disabled")

    return take


@pytest.fixture(autouse=True)
def stays_home(traffic):
    """After each test: the page asked nothing of any origin but the gateway's, broke no rule of
    its Content-Security-Policy and threw nothing."""
    yield
    traffic.assert_stayed_home()


@pytest.fixture
def workspace(make_workspace):
    """A new workspace (on Free, or on ``plan``) and its API key."""

    def make(name: str, plan: str | None = None) -> str:
        return make_workspace(name, **({"plan_code": plan} if plan else {})).key

    return make


def open_billing(page, server, key: str) -> None:
    page.goto(f"{server.url}/billing#key={key}")
    page.wait_for_selector("[data-testid=your-plan]")


def save_billing_details(page) -> None:
    form = page.locator("[data-testid=billing-form]")
    form.get_by_label("Name", exact=True).fill("Erika Mustermann")
    form.get_by_label("Address", exact=True).fill("Heidestraße 17")
    form.get_by_label("City").fill("Köln")
    form.get_by_label("Postal code").fill("51147")
    form.get_by_label("Country (ISO code)").fill("DE")
    form.get_by_label("Billing email").fill("erika@example.de")
    form.get_by_role("button", name="Save billing details").click()
    page.wait_for_selector("[data-testid=billing-information]")


def customize(page, plan: str) -> None:
    page.get_by_role("button", name=re.compile("Upgrade Plan|Customize Current Plan")).first.click()
    page.locator(f"[data-testid=plan-{plan}] button").click()
    page.wait_for_selector("[data-testid=due-now]")


def set_slider(page, kind: str, value: int) -> str:
    """Move a slider and wait for the Order Preview to answer; its new due-now total."""
    total = page.get_by_test_id("due-now")
    before = total.inner_text()
    page.fill(f"[data-testid=slider-{kind}]", str(value))
    expect(total).not_to_have_text(before)  # (the page's CSP allows no eval: no wait_for_function)
    return total.inner_text()


def pay_with_new_card(page, number: str) -> None:
    page.get_by_test_id("new-card").check()
    fields = page.locator("[data-testid=card-fields]")
    fields.get_by_label("Card number").fill(number)
    fields.get_by_label("Expiry month").fill("12")
    fields.get_by_label("Expiry year").fill("2030")
    fields.get_by_label("CVC").fill("123")


def test_moving_a_slider_reprices_the_order_preview(page, server, workspace, shots):
    key = workspace("Sliders")
    open_billing(page, server, key)
    customize(page, "email")
    start = page.inner_text("[data-testid=due-now]")
    after = set_slider(page, "EMAIL", 100000)
    assert start != after
    assert page.inner_text("[data-testid=value-EMAIL]") == "100,000"
    assert set_slider(page, "EMAIL", 10000) == start  # back where it started: the same price


def test_an_insufficient_balance_shows_the_shortfall_and_blocks_checkout(page, server, workspace):
    key = workspace("Short")
    open_billing(page, server, key)
    customize(page, "email")
    page.get_by_role("button", name="Proceed to checkout").click()
    save_billing_details(page)
    assert page.get_by_test_id("balance-now").inner_text() == "Balance 0.00 EUR"
    assert "insufficient" in page.get_by_test_id("shortfall").inner_text()
    assert page.get_by_test_id("checkout-now").is_disabled()
    pay_with_new_card(page, GOOD_CARD)  # another valid method unblocks it
    assert page.get_by_test_id("checkout-now").is_enabled()


def test_an_upgrade_shows_in_the_widget_and_live(page, server, workspace, shots):
    key = workspace("Upgrade")
    open_billing(page, server, key)
    assert page.get_by_test_id("widget-plan").inner_text() == "Free"
    customize(page, "omnichannel")
    set_slider(page, "MESSAGING", 20000)
    page.get_by_role("button", name="Proceed to checkout").click()
    save_billing_details(page)
    pay_with_new_card(page, GOOD_CARD)
    page.get_by_test_id("checkout-now").click()
    assert "Done: your workspace is on Omnichannel" in page.get_by_test_id("checkout-result").inner_text()
    expect(page.get_by_test_id("widget-plan")).to_have_text("Omnichannel")
    # The subscription told the page too (planChanged over graphql-transport-ws).
    page.get_by_test_id("live-notice").wait_for()
    assert "Omnichannel" in page.get_by_test_id("live-notice").inner_text()


def test_a_new_card_with_3d_secure(page, server, workspace, shots):
    key = workspace("Secure")
    open_billing(page, server, key)
    customize(page, "email")
    page.get_by_role("button", name="Proceed to checkout").click()
    save_billing_details(page)
    pay_with_new_card(page, THREE_D_SECURE_CARD)
    page.get_by_test_id("checkout-now").click()
    dialog = page.get_by_test_id("three-d-secure")
    dialog.wait_for()
    shots(page, "05-checkout-3d-secure")
    dialog.get_by_role("button", name="Complete authentication").click()
    assert "Done: your workspace is on Email" in page.get_by_test_id("checkout-result").inner_text()


def test_a_downgrade_shows_when_it_applies(page, server, workspace, shots):
    key = workspace("Down", plan="omnichannel")
    open_billing(page, server, key)
    page.get_by_role("button", name="Plan actions").click()
    shots(page, "02-overview-change-plan-menu")
    page.get_by_role("menuitem", name="Change Plan").click()
    page.locator("[data-testid=plan-email] button").click()
    notice = page.get_by_test_id("at-renewal-notice")
    notice.wait_for()
    assert "remain active until renewal" in notice.inner_text()
    assert page.inner_text("[data-testid=due-now]") == "0.00 EUR"
    page.get_by_role("button", name="Proceed to checkout").click()
    save_billing_details(page)
    pay_with_new_card(page, GOOD_CARD)
    page.get_by_test_id("checkout-now").click()
    page.get_by_test_id("back-to-overview").click()
    scheduled = page.get_by_test_id("scheduled-change")
    scheduled.wait_for()
    assert "moves to Email" in scheduled.inner_text()
    assert page.get_by_test_id("current-plan").inner_text().startswith("Omnichannel")
    shots(page, "02-overview-downgrade-notice")


def test_the_custom_plan_asks_for_a_quote(page, server, workspace):
    key = workspace("Big")
    open_billing(page, server, key)
    page.get_by_role("button", name="Upgrade Plan").click()
    page.locator("[data-testid=plan-custom] button").click()
    form = page.get_by_test_id("custom-quote-form")
    form.get_by_label("Your name").fill("Ada Lovelace")
    form.get_by_label("Email", exact=True).fill("ada@example.com")
    form.get_by_label("Company").fill("Analytical Engines Ltd")
    form.get_by_role("button", name="Request a quote").click()
    assert "sales@contact.center" in page.get_by_test_id("quote-request-result").inner_text()


def test_the_seed_steps(page, server, workspace, shots):
    """Each step of the seed's help page, as a screenshot: widget, overview, plans, customize,
    checkout, done."""
    key = workspace("Seed")
    open_billing(page, server, key)
    page.get_by_test_id("usage-widget").click()
    shots(page, "01-usage-widget")
    page.get_by_role("button", name="Upgrade now").click()
    shots(page, "02-overview-upgrade-plan")
    page.get_by_role("button", name="Upgrade Plan").click()
    page.wait_for_selector("[data-testid=plan-custom]")
    shots(page, "03-select-a-plan")
    page.locator("[data-testid=plan-omnichannel] button").click()
    page.wait_for_selector("[data-testid=due-now]")
    set_slider(page, "EMAIL", 50000)
    set_slider(page, "MESSAGING", 20000)
    page.get_by_test_id("estimate").wait_for()
    shots(page, "04-customize-plan")
    page.get_by_role("button", name="Proceed to checkout").click()
    save_billing_details(page)
    pay_with_new_card(page, GOOD_CARD)
    shots(page, "05-checkout")
    page.get_by_test_id("checkout-now").click()
    page.get_by_test_id("checkout-result").wait_for()
    shots(page, "05-checkout-done")
    page.get_by_test_id("back-to-overview").click()
    page.get_by_role("button", name="Customize Current Plan").wait_for()
    shots(page, "02-overview-customize-current-plan")
