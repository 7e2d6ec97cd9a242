"""Price versions: a subscriber keeps the price it bought; the catalog's rule decides whether
and when a newer price reaches it (never, or at a renewal after notice).

The catalog here is the bundled one with a second price version of the Email plan, on sale
from 2026-11-20 (the test clock starts on 2026-11-10): base 19.00 instead of 15.00 and dearer
email credits. Email with 10,000 credits costs 22.50 a month at version "1" and 29.00 at
version "2026-12"; with German VAT (19 %) 26.78 and 34.51.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from test_checkout import checkout, quote
from test_renewal import BOUNDARY, top_up

from gateway.core.catalog import DEFAULT_CATALOG, CatalogError, PriceChangeRule, load_catalog, parse_catalog
from gateway.server.settings import Settings
from gateway.services.price_changes import give_notice
from gateway.services.renewal import RenewalStatus, renew_due
from gateway.storage.db import Invoice, PriceChange, Workspace
from gateway.storage.locks import lock_workspace

from helpers import assert_events_as_documented, billing, events, race, rows

ON_SALE = datetime(2026, 11, 20, tzinfo=UTC)
NEXT_RENEWAL = datetime(2027, 1, 10, 9, 30, tzinfo=UTC)  # the renewal after BOUNDARY
PRICE_VERSION = """
[[plans.prices]]
version = "2026-12"
effective_from = 2026-11-20
base_price = "19.00"
{rule}
[plans.prices.tiers]
email = [
    {{ up_to = 50000, unit_price = "0.0020" }},
    {{ up_to = 200000, unit_price = "0.0012" }},
    {{ unit_price = "0.0008" }},
]

[[plans]]
code = "omnichannel"
"""


def versioned_catalog(rule: str | None = None, notice_days: int | None = None) -> str:
    text = DEFAULT_CATALOG.read_text(encoding="utf-8")
    new = PRICE_VERSION.format(rule=f'existing_subscribers = "{rule}"' if rule else "")
    text = text.replace('\n[[plans]]\ncode = "omnichannel"\n', new, 1)
    if notice_days is not None:
        text = text.replace(
            'sales_contact = "sales@contact.center"\n',
            f'sales_contact = "sales@contact.center"\n\n[price_changes]\nnotice_days = {notice_days}\n',
            1,
        )
    return text


@pytest.fixture
def rule() -> str | None:
    return None  # the default: grandfather


@pytest.fixture
def settings(database_url: str, tmp_path: Path, rule: str | None) -> Settings:
    path = tmp_path / "catalog.toml"
    path.write_text(versioned_catalog(rule), encoding="utf-8")
    return Settings(database_url=database_url, catalog_path=path)


WORKSPACE = """{ workspace { ... on Workspace {
  plan { code priceVersion basePrice { amount } }
  priceChange { plan { priceVersion basePrice { amount } } fromVersion toVersion effectiveAt
                monthlySubtotalBefore { amount } monthlySubtotalAfter { amount } }
  renewalPayment { nextRenewalAmount { amount } }
  invoices(first: 10) { kind total { amount } lines { kind priceVersion } } } } }"""
PLANS = "{ plans { code priceVersion priceEffectiveFrom basePrice { amount } } }"
QUOTE_LINES = """mutation($input: QuoteInput!) { quote(input: $input) { ... on Quote {
  plan { priceVersion } monthlyLines { kind priceVersion amount { amount } } monthlySubtotal { amount }
  dueNow { lines { kind priceVersion } total { amount } } } } }"""


def subscribe(gateway, graphql, member, **sliders) -> None:
    """Email with 10,000 credits from Free, paid from the balance (which also pays renewals)."""
    billing(graphql, member)
    top_up(gateway, member, "200.00")
    offer = quote(graphql, member, "email", emailCredits=10000, **sliders)
    done = checkout(graphql, member, "email", offer, key=f"buy-{gateway.clock().isoformat()}")
    assert done["__typename"] == "CheckoutSuccess", done


def workspace(graphql, member) -> dict:
    return graphql(WORKSPACE, key=member.key)["workspace"]


def renewal_totals(gateway, member) -> list[str]:
    renewals = sorted(
        (i for i in rows(gateway, Invoice, member) if i.kind == "renewal"), key=lambda i: i.issued_at
    )
    return [str(Decimal(i.total_minor).scaleb(-2)) for i in renewals]


def types(gateway, member, prefix: str) -> list[tuple[str, dict]]:
    return [(kind, payload) for _, kind, payload in events(gateway, member) if kind.startswith(prefix)]


# ------------------------------------------------------------------ the catalog


def test_the_catalog_lists_versions_and_answers_by_date_and_by_name() -> None:
    catalog = parse_catalog_text(versioned_catalog("notice", notice_days=45))
    first, second = catalog.price_versions("email")
    assert (first.price_version, first.effective_from, str(first.base_price.amount)) == ("1", None, "15.00")
    assert (second.price_version, second.effective_from, str(second.base_price.amount)) == (
        "2026-12",
        ON_SALE,
        "19.00",
    )
    assert second.existing_subscribers is PriceChangeRule.NOTICE and catalog.notice_days == 45
    # Limits are the plan's, prices the version's; an unnamed kind keeps its tiers.
    assert second.credits[next(iter(second.credits))].max == first.credits[next(iter(first.credits))].max
    assert catalog.plan_on("email", ON_SALE - timedelta(seconds=1)) == first
    assert catalog.plan_on("email", ON_SALE) == second
    assert catalog.plan_version("email", None) == first  # recorded before versions: the first
    assert catalog.plan_version("email", "2026-12") == second
    assert catalog.plan_version("email", "nope") is None
    assert [p.price_version for p in catalog.plans_on(ON_SALE)] == ["1", "2026-12", "1", "1"]
    assert catalog.plan("email") == first and hash(first) != hash(second)


def parse_catalog_text(text: str):
    import tomllib

    return parse_catalog(tomllib.loads(text), "catalog.toml")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("effective_from = 2026-11-20", 'effective_from = "soon"'), "must be a TOML date"),
        (("effective_from = 2026-11-20", "effective_from = 2026-11-20T10:00:00"), "with its offset"),
        (('version = "2026-12"', 'version = "1"'), "names an earlier price version"),
        (('version = "2026-12"', 'version = "no spaces"'), "must be a short name"),
        (('base_price = "19.00"', 'base_price = "19.001"'), "more decimals"),
        (("email = [", "messaging = ["), "the plan has no such credits"),
        (("email = [", "sms = ["), "unknown credit kind"),
        (('{ unit_price = "0.0008" },', ""), "below max"),
        (('existing_subscribers = "notice"', 'existing_subscribers = "sometimes"'), "use one of"),
        (('version = "2026-12"', 'version = "2026-12"\nsurprise = 1'), "is not a known field"),
    ],
)
def test_a_broken_price_version_names_the_plan_and_field(change, message) -> None:
    text = versioned_catalog("notice").replace(*change, 1)
    with pytest.raises(CatalogError, match="plan 'email', field 'prices\\[1\\]") as error:
        parse_catalog_text(text)
    assert message in str(error.value)


def test_versions_must_change_a_price_come_in_order_and_only_on_sold_plans() -> None:
    text = versioned_catalog()
    unchanged = (
        text.replace('base_price = "19.00"', 'base_price = "15.00"', 1)
        .replace('unit_price = "0.0020"', 'unit_price = "0.0015"')
        .replace('unit_price = "0.0012"', 'unit_price = "0.0010"')
        .replace('unit_price = "0.0008"', 'unit_price = "0.0007"')
    )
    with pytest.raises(CatalogError, match="changes no price"):
        parse_catalog_text(unchanged)
    later = text.replace(
        '[[plans]]\ncode = "omnichannel"',
        '[[plans.prices]]\nversion = "2026-10"\neffective_from = 2026-10-01\nbase_price = "17.00"\n\n'
        '[[plans]]\ncode = "omnichannel"',
        1,
    )
    with pytest.raises(CatalogError, match=r"prices\[2\].effective_from': 2026-10-01 must be after"):
        parse_catalog_text(later)
    quoted = text + '\n[[plans.prices]]\nversion = "2"\neffective_from = 2027-01-01\nbase_price = "1.00"\n'
    with pytest.raises(CatalogError, match="plan 'custom', field 'prices': the plan is sold by quote"):
        parse_catalog_text(quoted)
    with pytest.raises(CatalogError, match="notice_days"):
        parse_catalog_text(versioned_catalog(notice_days=400))


def test_the_bundled_catalog_has_one_version_per_plan() -> None:
    catalog = load_catalog()
    assert all(len(catalog.price_versions(p.code)) == 1 for p in catalog.plans)
    assert {p.price_version for p in catalog.plans} == {"1"}


# ------------------------------------------------------------------ grandfathering (the default)


def test_a_subscriber_keeps_the_price_it_bought(gateway, graphql, make_workspace, clock):
    member = make_workspace()
    subscribe(gateway, graphql, member)
    first = workspace(graphql, member)
    assert first["plan"] == {"code": "email", "priceVersion": "1", "basePrice": {"amount": "15.00"}}
    [bought] = first["invoices"]
    assert {line["priceVersion"] for line in bought["lines"]} == {"1"}

    clock.now = ON_SALE + timedelta(days=1)
    plans = {p["code"]: p for p in graphql(PLANS)["plans"]}
    assert plans["email"] == {
        "code": "email",
        "priceVersion": "2026-12",
        "priceEffectiveFrom": "2026-11-20T00:00:00+00:00",
        "basePrice": {"amount": "19.00"},
    }
    now = workspace(graphql, member)
    assert now["plan"]["priceVersion"] == "1" and now["priceChange"] is None
    assert now["renewalPayment"]["nextRenewalAmount"] == {"amount": "26.78"}  # still the price it bought

    # Customizing the same plan keeps the version: 20,000 credits at version 1 cost 37.50.
    more = graphql(QUOTE_LINES, {"input": {"planCode": "email", "emailCredits": 20000}}, key=member.key)
    assert more["quote"]["plan"]["priceVersion"] == "1"
    assert more["quote"]["monthlySubtotal"] == {"amount": "37.50"}
    assert {line["priceVersion"] for line in more["quote"]["dueNow"]["lines"]} == {"1"}

    assert give_notice(gateway, clock.now) == []  # grandfathered: nobody is given notice

    for renewal_at in (BOUNDARY, NEXT_RENEWAL):
        clock.now = renewal_at
        [renewed] = renew_due(gateway, renewal_at)
        assert renewed.status is RenewalStatus.RENEWED
    assert renewal_totals(gateway, member) == ["26.78", "26.78"]
    assert types(gateway, member, "price_change") == []


def test_a_new_buyer_pays_the_price_on_sale_and_the_quote_names_it(gateway, graphql, make_workspace, clock):
    early = make_workspace("Early")
    billing(graphql, early)
    before = graphql(QUOTE_LINES, {"input": {"planCode": "email", "emailCredits": 10000}}, key=early.key)
    assert before["quote"]["monthlySubtotal"] == {"amount": "22.50"}
    assert {line["priceVersion"] for line in before["quote"]["monthlyLines"]} == {"1"}

    clock.now = ON_SALE
    late = make_workspace("Late")
    subscribe(gateway, graphql, late)
    seen = workspace(graphql, late)
    assert seen["plan"] == {"code": "email", "priceVersion": "2026-12", "basePrice": {"amount": "19.00"}}
    [bought] = seen["invoices"]
    assert bought["total"] == {"amount": "34.51"}
    assert {line["priceVersion"] for line in bought["lines"]} == {"2026-12"}


def test_moving_to_another_plan_buys_it_at_the_price_on_sale(gateway, graphql, make_workspace, clock):
    member = make_workspace()
    subscribe(gateway, graphql, member)
    clock.now = ON_SALE + timedelta(days=2)
    offer = quote(graphql, member, "omnichannel", emailCredits=10000, messagingCredits=5000)
    done = checkout(graphql, member, "omnichannel", offer, key="omni")
    assert done["__typename"] == "CheckoutSuccess"
    # Back down to Email at renewal: scheduled at the Email price on sale now.
    offer = quote(graphql, member, "email", emailCredits=10000)
    assert checkout(graphql, member, "email", offer, key="down")["kind"] == "DOWNGRADE"
    clock.now = BOUNDARY
    [renewed] = renew_due(gateway, BOUNDARY)
    assert renewed.status is RenewalStatus.RENEWED
    assert workspace(graphql, member)["plan"]["priceVersion"] == "2026-12"
    assert renewal_totals(gateway, member) == ["34.51"]


# ------------------------------------------------------------------ moving after notice


@pytest.mark.parametrize("rule", ["notice"])
def test_notice_moves_a_subscriber_at_the_first_renewal_after_the_notice_period(
    gateway, graphql, make_workspace, clock
):
    member = make_workspace()
    subscribe(gateway, graphql, member)
    clock.now = ON_SALE - timedelta(days=5)
    assert give_notice(gateway, clock.now) != []  # a version may be announced before it is on sale

    # Given on 2026-11-15: 30 days run to 2026-12-15, after the renewal of 2026-12-10, so the
    # new price applies from the renewal of 2027-01-10.
    [(kind, payload)] = types(gateway, member, "price_change")
    assert kind == "price_change.scheduled"
    assert payload == {
        "plan": "email",
        "from_version": "1",
        "to_version": "2026-12",
        "effective_at": NEXT_RENEWAL.isoformat(),
        "monthly_subtotal_before": "22.50",
        "monthly_subtotal_after": "29.00",
        "currency": "EUR",
    }
    shown = workspace(graphql, member)["priceChange"]
    assert shown == {
        "plan": {"priceVersion": "2026-12", "basePrice": {"amount": "19.00"}},
        "fromVersion": "1",
        "toVersion": "2026-12",
        "effectiveAt": NEXT_RENEWAL.isoformat(),
        "monthlySubtotalBefore": {"amount": "22.50"},
        "monthlySubtotalAfter": {"amount": "29.00"},
    }
    assert give_notice(gateway, clock.now + timedelta(days=1)) == []  # given once

    clock.now = BOUNDARY
    [renewed] = renew_due(gateway, BOUNDARY)
    assert renewed.status is RenewalStatus.RENEWED
    assert workspace(graphql, member)["renewalPayment"]["nextRenewalAmount"] == {
        "amount": "34.51"
    }  # next one
    clock.now = NEXT_RENEWAL
    [renewed] = renew_due(gateway, NEXT_RENEWAL)
    assert renewed.status is RenewalStatus.RENEWED
    assert renewal_totals(gateway, member) == ["26.78", "34.51"]
    assert [kind for kind, _ in types(gateway, member, "price_change")] == [
        "price_change.scheduled",
        "price_change.applied",
    ]
    after = workspace(graphql, member)
    assert after["plan"]["priceVersion"] == "2026-12" and after["priceChange"] is None
    renewal = next(i for i in after["invoices"] if i["total"] == {"amount": "34.51"})
    assert {line["priceVersion"] for line in renewal["lines"]} == {"2026-12"}
    assert {"price_change.scheduled", "price_change.applied", "renewal.completed"} <= (
        assert_events_as_documented(gateway, member)
    )


@pytest.mark.parametrize("rule", ["notice"])
def test_a_notice_lapses_when_the_workspace_moves_to_another_plan(gateway, graphql, make_workspace, clock):
    member = make_workspace()
    subscribe(gateway, graphql, member)
    clock.now = ON_SALE
    [_] = give_notice(gateway, clock.now)
    offer = quote(graphql, member, "omnichannel", emailCredits=10000, messagingCredits=5000)
    assert checkout(graphql, member, "omnichannel", offer, key="omni")["__typename"] == "CheckoutSuccess"
    assert workspace(graphql, member)["priceChange"] is None
    for renewal_at in (BOUNDARY, NEXT_RENEWAL):
        clock.now = renewal_at
        renew_due(gateway, renewal_at)
    assert [kind for kind, _ in types(gateway, member, "price_change")] == ["price_change.scheduled"]
    assert rows(gateway, PriceChange, member) == []


@pytest.mark.parametrize("rule", ["notice"])
def test_a_subscription_recorded_before_versions_is_on_the_first(gateway, graphql, make_workspace, clock):
    member = make_workspace()
    subscribe(gateway, graphql, member)
    with gateway.write_sessions.begin() as session:
        lock_workspace(session, member.id).price_version = None  # as migration 0010 leaves it
    assert workspace(graphql, member)["plan"]["priceVersion"] == "1"
    clock.now = ON_SALE
    [notice] = give_notice(gateway, clock.now)
    assert (notice.from_version, notice.to_version) == ("1", "2026-12")


@pytest.mark.parametrize("rule", ["notice"])
def test_concurrent_notice_runs_give_each_notice_once(gateway, graphql, make_workspace, clock):
    members = [make_workspace(f"W{i}") for i in range(3)]
    for member in members:
        subscribe(gateway, graphql, member)
    clock.now = ON_SALE
    given = race(gateway, 4, lambda index, client: give_notice(gateway, clock.now))
    assert sorted(n.workspace_id for run in given for n in run) == sorted(m.id for m in members)
    for member in members:
        assert [kind for kind, _ in types(gateway, member, "price_change")] == ["price_change.scheduled"]


@pytest.mark.parametrize("rule", ["grandfather", "notice"])
def test_a_catalog_change_without_its_rule_changes_no_next_charge(
    gateway, graphql, make_workspace, clock, rule
):
    """The next charge of an existing subscriber, read right after the version goes on sale and
    before any notice: the same under either rule."""
    member = make_workspace()
    subscribe(gateway, graphql, member)
    before = workspace(graphql, member)["renewalPayment"]["nextRenewalAmount"]
    clock.now = ON_SALE
    assert workspace(graphql, member)["renewalPayment"]["nextRenewalAmount"] == before == {"amount": "26.78"}
    with gateway.sessions() as session:
        assert session.get(Workspace, member.id).price_version == "1"


@pytest.mark.parametrize("rule", ["notice"])
def test_the_notify_command(cli_env, monkeypatch, capsys, settings, gateway, graphql, make_workspace):
    from gateway.server.cli import main

    monkeypatch.setenv("BILLING_GATEWAY_CATALOG", str(settings.catalog_path))
    member = make_workspace()
    subscribe(gateway, graphql, member)
    assert main(["prices", "notify", "--now", "2026-11-15T00:00:00Z"]) == 0
    out = capsys.readouterr().out
    assert f"workspace {member.id}: plan 'email' moves from price version '1' to '2026-12'" in out
    assert out.endswith("1 notice given\n")
    assert main(["prices", "notify", "--now", "2026-11-16T00:00:00Z"]) == 0
    assert capsys.readouterr().out == "0 notices given\n"
