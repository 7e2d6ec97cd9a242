"""Invoices an EU accountant accepts, through GraphQL and HTTP: the seller and the buyer as they
were on the invoice date, gap-free numbers per series, tax lines named by the tax that applies,
and each invoice as a PDF.

The seller here is configured (``SELLER``); the demo identity has its own test. Buying the
Email plan from Free (its default 10,000 email credits) costs 22.50 a month: 26.78 with German
VAT (4.275 rounded half up), 22.50 outside the EU or reverse charged. The clock starts at 2026-11-10 09:30 UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from gateway.server import http
from gateway.server.app import build_gateway
from gateway.server.http import create_app
from gateway.server.settings import Settings
from gateway.services.invoices import next_number
from gateway.storage.db import Counter, Invoice, create_db_engine, migrate

from helpers import GERMAN_PERSON, INVOICED_DETAILS, UPDATE_BILLING_DETAILS, billing, card, post, race
from pdf_text import pdf_text

SELLER = {
    "seller_name": "Example Messaging GmbH",
    "seller_address": ("Domstraße 1", "50668 Köln"),
    "seller_vat_id": "DE 136 695 976",
    "seller_email": "billing@example.com",
}
SELLER_SHOWN = {
    "name": "Example Messaging GmbH",
    "address": ["Domstraße 1", "50668 Köln"],
    "country": "DE",
    "vatId": "DE136695976",  # as python-stdnum normalises it
    "email": "billing@example.com",
    "demo": False,
}
US_PERSON = {**GERMAN_PERSON, "addressLine1": "1 Market St", "city": "San Francisco", "postalCode": "94105",
             "region": "CA", "country": "US"}  # fmt: skip
NL_COMPANY = {**GERMAN_PERSON, "customerType": "COMPANY", "companyName": "Łódź Trading B.V.",
              "addressLine1": "Keizersgracht 1", "city": "Amsterdam", "postalCode": "1015 CJ",
              "country": "NL", "vatId": "NL004495445B01"}  # fmt: skip

QUOTE = """mutation($input: QuoteInput!) { quote(input: $input) { __typename
  ... on Quote { emailCredits messagingCredits expiresAt dueNow { total { amount } } } } }"""
CHECKOUT = """mutation($input: CheckoutInput!) { checkout(input: $input) { __typename
  ... on UserError { code message } ... on CheckoutSuccess { invoice { id number } } } }"""
INVOICE = """query($id: ID!) { workspace { ... on Workspace { invoice(id: $id) {
  id number status issuedAt periodStart periodEnd paymentMethod pdfUrl billingDetails
  seller { name address country vatId email demo }
  lines { description priceVersion quantity unitPrice { amount } amount { amount } }
  taxLines { name jurisdiction rate base { amount } amount { amount } treatment note }
  subtotal { amount } tax { amount } total { amount currency } } } } }"""


def settings_with_seller(database_url: str, **changes: object) -> Settings:
    return Settings(database_url=database_url, **{**SELLER, **changes})  # type: ignore[arg-type]


@pytest.fixture
def settings(database_url: str) -> Settings:
    return settings_with_seller(database_url)


def buy_email_plan(client_or_graphql, member, key: str = "buy-email") -> dict:
    """Free → Email, paid with a new card; the invoice's id and number."""
    run = _runner(client_or_graphql, member)
    offer = run(QUOTE, {"input": {"planCode": "email"}})["quote"]
    assert offer["__typename"] == "Quote", offer
    done = run(
        CHECKOUT,
        {
            "input": {
                "planCode": "email",
                "emailCredits": offer["emailCredits"],
                "messagingCredits": offer["messagingCredits"],
                "expectedTotal": offer["dueNow"]["total"]["amount"],
                "quoteExpiresAt": offer["expiresAt"],
                "paymentMethod": {"method": "card", "newCard": card()},
                "idempotencyKey": key,
            }
        },
    )["checkout"]
    assert done["__typename"] == "CheckoutSuccess", done
    return done["invoice"]


def _runner(client_or_graphql, member):
    if callable(client_or_graphql):  # the graphql fixture
        return lambda query, variables: client_or_graphql(query, variables, key=member.key)
    return lambda query, variables: post(client_or_graphql, member, query, variables)


def invoice(graphql, member, invoice_id: str) -> dict | None:
    return graphql(INVOICE, {"id": invoice_id}, key=member.key)["workspace"]["invoice"]


def download(client, member, path: str):
    return client.get(path, headers={"Authorization": f"Bearer {member.key}"})


# ------------------------------------------------------------------ the invoice in GraphQL


def test_an_invoice_names_the_seller_and_the_buyer(graphql, make_workspace):
    member = make_workspace("Mail Co")
    billing(graphql, member)
    bought = buy_email_plan(graphql, member)
    shown = invoice(graphql, member, bought["id"])
    assert shown["number"] == bought["number"] == "INV-2026-000001"
    assert shown["seller"] == SELLER_SHOWN
    assert shown["billingDetails"] == INVOICED_DETAILS
    assert shown["pdfUrl"] == f"/invoices/{bought['id']}.pdf"
    assert shown["paymentMethod"] == "card"  # a new card, not saved: no last four digits kept
    assert shown["taxLines"] == [
        {
            "name": "VAT 19% (DE)",
            "jurisdiction": "DE",
            "rate": "0.19",
            "base": {"amount": "22.50"},
            "amount": {"amount": "4.28"},
            "treatment": "STANDARD",
            "note": None,
        }
    ]
    assert (shown["subtotal"], shown["tax"], shown["total"]) == (
        {"amount": "22.50"},
        {"amount": "4.28"},
        {"amount": "26.78", "currency": "EUR"},
    )


def test_an_invoice_keeps_the_buyer_and_seller_of_its_date(
    graphql, make_workspace, database_url, clock, built_once
):
    member = make_workspace("Mail Co")
    billing(graphql, member)
    bought = buy_email_plan(graphql, member)
    # The buyer moves, and the seller changes its name and address (a new configuration).
    billing(graphql, member, addressLine1="ul. Piotrkowska 1", city="Łódź", postalCode="90-001", country="PL")
    changed = settings_with_seller(
        database_url, seller_name="Example Messaging SE", seller_address=("Neue Straße 2", "10115 Berlin")
    )
    renamed = build_gateway(changed, clock=clock, run_migrations=False, **built_once.parts(changed))
    other = make_workspace("Other Co")
    with TestClient(create_app(renamed)) as client:
        shown = post(client, member, INVOICE, {"id": bought["id"]})["workspace"]["invoice"]
        post(client, other, UPDATE_BILLING_DETAILS, {"input": GERMAN_PERSON})
        later = buy_email_plan(client, other, key="later")
        issued_later = post(client, other, INVOICE, {"id": later["id"]})["workspace"]["invoice"]
    assert shown["billingDetails"] == INVOICED_DETAILS  # Köln, as on the invoice date
    assert shown["seller"] == SELLER_SHOWN
    assert (issued_later["seller"]["name"], issued_later["seller"]["address"]) == (
        "Example Messaging SE",
        ["Neue Straße 2", "10115 Berlin"],
    )
    assert issued_later["number"] == "INV-2026-000002"  # the same series goes on


def test_another_workspaces_invoice_or_an_unknown_id_is_null(graphql, make_workspace):
    owner, other = make_workspace("Mail Co"), make_workspace("Other Co")
    billing(graphql, owner)
    bought = buy_email_plan(graphql, owner)
    assert invoice(graphql, other, bought["id"]) is None
    assert invoice(graphql, owner, "0" * 32) is None
    assert invoice(graphql, owner, bought["id"])["number"] == bought["number"]


def test_the_demo_seller_is_marked_on_the_invoice_and_its_pdf(
    make_workspace, database_url, clock, built_once
):
    demo = Settings(database_url=database_url)
    gateway = build_gateway(demo, clock=clock, run_migrations=False, **built_once.parts(demo))
    member = make_workspace("Mail Co")
    with TestClient(create_app(gateway)) as demo_client:
        post(demo_client, member, UPDATE_BILLING_DETAILS, {"input": GERMAN_PERSON})
        bought = buy_email_plan(demo_client, member)
        shown = post(demo_client, member, INVOICE, {"id": bought["id"]})["workspace"]["invoice"]
        document = download(demo_client, member, shown["pdfUrl"])
    assert shown["seller"]["demo"] is True
    assert "BILLING_GATEWAY_SELLER_NAME" in shown["seller"]["name"]
    assert "DEMO" in pdf_text(document.content) and "Not a valid invoice" in pdf_text(document.content)


# ------------------------------------------------------------------ tax lines


def test_a_us_customers_invoice_says_no_eu_vat_applies(graphql, client, make_workspace):
    member = make_workspace("US Co")
    billing(graphql, member, **US_PERSON)
    bought = buy_email_plan(graphql, member)
    shown = invoice(graphql, member, bought["id"])
    assert shown["taxLines"] == [
        {
            "name": "Not subject to EU VAT",
            "jurisdiction": "US",
            "rate": "0",
            "base": {"amount": "22.50"},
            "amount": {"amount": "0.00"},
            "treatment": "OUT_OF_SCOPE",
            "note": "Not subject to EU VAT (place of supply outside the EU)",
        }
    ]
    assert shown["total"] == {"amount": "22.50", "currency": "EUR"}
    document = pdf_text(download(client, member, shown["pdfUrl"]).content)
    assert "VAT 0%" not in document
    assert "Not subject to EU VAT (place of supply outside the EU)" in document


def test_an_eu_companys_invoice_is_reverse_charged_with_the_note(graphql, client, make_workspace):
    member = make_workspace("NL Co")
    billing(graphql, member, **NL_COMPANY)
    bought = buy_email_plan(graphql, member)
    shown = invoice(graphql, member, bought["id"])
    [line] = shown["taxLines"]
    assert (line["name"], line["treatment"], line["amount"]) == (
        "VAT 0% (NL)",
        "REVERSE_CHARGE",
        {"amount": "0.00"},
    )
    assert line["note"].startswith("Reverse charge: VAT to be accounted for by the recipient")
    assert line["note"].endswith("Customer VAT ID: NL004495445B01")
    document = pdf_text(download(client, member, shown["pdfUrl"]).content)
    assert "Reverse charge: VAT to be accounted for by the recipient" in document
    assert "Łódź Trading B.V." in document and "VAT ID: NL004495445B01" in document


# ------------------------------------------------------------------ the PDF over HTTP


def test_the_pdf_shows_what_the_invoice_says(graphql, client, make_workspace):
    member = make_workspace("Mail Co")
    billing(graphql, member)
    bought = buy_email_plan(graphql, member)
    shown = invoice(graphql, member, bought["id"])
    response = download(client, member, shown["pdfUrl"])
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert 'filename="INV-2026-000001.pdf"' in response.headers["content-disposition"]
    assert response.content.startswith(b"%PDF-")
    lines = pdf_text(response.content).splitlines()
    for expected in (
        "INV-2026-000001",
        "Example Messaging GmbH",
        "Domstraße 1",
        "50668 Köln",
        "VAT ID: DE136695976",
        "Erika Mustermann",
        "Heidestraße 17",
        "51147 Köln",
        "2026-11-10",  # the invoice date
        "2026-11-10 – 2026-12-10",  # the period
        "Paid",
        "card",  # paid with (a new card, not saved)
        "22.50 EUR",  # the subtotal
        "VAT 19% (DE) on 22.50",
        "4.28 EUR",
        "26.78 EUR",  # the total
    ):
        assert expected in lines, (expected, lines)
    description = shown["lines"][0]["description"]
    assert description in lines
    assert f"price version {shown['lines'][0]['priceVersion']}" in lines  # the version it is priced at


def test_the_pdf_needs_the_workspaces_key(graphql, client, make_workspace):
    owner, other = make_workspace("Mail Co"), make_workspace("Other Co")
    billing(graphql, owner)
    path = f"/invoices/{buy_email_plan(graphql, owner)['id']}.pdf"
    missing = client.get(path)
    assert (missing.status_code, missing.headers["www-authenticate"]) == (401, "Bearer")
    assert client.get(path, headers={"Authorization": "Bearer bg_wrong_key"}).status_code == 401
    assert client.get(path, headers={"Authorization": "Basic abc"}).status_code == 401
    # Another workspace's invoice and an unknown one answer alike: ids cannot be probed.
    assert download(client, other, path).status_code == 404
    assert download(client, owner, f"/invoices/{'0' * 32}.pdf").status_code == 404
    assert download(client, owner, path).status_code == 200


def test_rendering_holds_no_database_connection(graphql, client, gateway, make_workspace, monkeypatch):
    member = make_workspace("Mail Co")
    billing(graphql, member)
    path = f"/invoices/{buy_email_plan(graphql, member)['id']}.pdf"
    held: list[int] = []
    render = http.render_invoice

    def watched(invoice):
        held.append(gateway.engine.pool.checkedout())
        return render(invoice)

    monkeypatch.setattr(http, "render_invoice", watched)
    assert download(client, member, path).status_code == 200
    assert held == [0]


# ------------------------------------------------------------------ numbering


def test_concurrent_invoices_never_skip_or_repeat_a_number(graphql, gateway, make_workspace):
    """Workspaces buying at once (each its own workspace lock) share one series: the numbers
    are 1..N, each once, on SQLite's write lock and PostgreSQL's row lock alike."""
    buyers = [make_workspace(f"Buyer {i}") for i in range(6)]
    for member in buyers:
        billing(graphql, member)
    numbers = race(gateway, len(buyers), lambda i, client: buy_email_plan(client, buyers[i])["number"])
    assert sorted(numbers) == [f"INV-2026-{n:06d}" for n in range(1, len(buyers) + 1)]
    with gateway.sessions() as session:
        assert session.get(Counter, "document:INV:2026").value == len(buyers)


def test_a_series_is_per_seller(graphql, make_workspace, database_url, clock, built_once):
    member = make_workspace("Mail Co")
    billing(graphql, member)
    assert buy_email_plan(graphql, member)["number"] == "INV-2026-000001"
    acme = settings_with_seller(database_url, seller_name="Acme Ltd", invoice_series="ACME-INV")
    gateway = build_gateway(acme, clock=clock, run_migrations=False, **built_once.parts(acme))
    other = make_workspace("Other Co")
    with TestClient(create_app(gateway)) as client:
        post(client, other, UPDATE_BILLING_DETAILS, {"input": GERMAN_PERSON})
        assert buy_email_plan(client, other)["number"] == "ACME-INV-2026-000001"


def test_a_rolled_back_invoice_gives_its_number_back(gateway, clock):
    now = clock.now
    with gateway.write_sessions() as session:
        assert next_number(session, "INV", now) == "INV-2026-000001"
        session.rollback()
    with gateway.write_sessions.begin() as session:
        assert next_number(session, "INV", now) == "INV-2026-000001"
        assert next_number(session, "CN", now) == "CN-2026-000001"  # its own series


def test_numbers_issued_before_series_continue(tmp_path):
    """Migration 0007 renames the old counters (invoice:YYYY) after the INV series."""
    engine = create_db_engine(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        migrate(engine, "0005")
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO counters (name, value) VALUES ('invoice:2026', 41)"))
        migrate(engine)
        with Session(engine) as session, session.begin():
            names = session.scalars(select(Counter.name)).all()
            assert names == ["document:INV:2026"]
            assert next_number(session, "INV", datetime(2026, 12, 1, tzinfo=UTC)) == "INV-2026-000042"
            assert session.scalars(select(Invoice)).all() == []
    finally:
        engine.dispose()
