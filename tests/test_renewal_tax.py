"""Tax at renewal when the saved VAT ID no longer validates: the renewal is taxed as the
customer is without it (never untaxed), charged as usual, and ``tax.vat_id_rejected`` says
why; the Billing page's preview of the scheduled change shows the same price.

The ID is made invalid by writing it into the saved billing details directly, as a VAT ID
saved under a laxer rule (or by a laxer tax plugin) would stand there: the API itself
refuses to save it. Prices: Email 15.00/month with 5,000 credits included, 0.0015 per
credit up to 50,000. The first period ends 2026-12-10 09:30 UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from gateway.core.money import Money
from gateway.plugin_api.payments import LedgerEntryKind
from gateway.services.renewal import RenewalStatus, renew_due
from gateway.storage.db import BillingDetails, ScheduledChange
from gateway.storage.ledger import SqlLedger
from gateway.storage.locks import lock_workspace

from helpers import assert_events_as_documented, billing, eur, events

BOUNDARY = datetime(2026, 12, 10, 9, 30, tzinfo=UTC)
DUTCH_COMPANY = {
    "customerType": "COMPANY",
    "companyName": "Voorbeeld B.V.",
    "country": "NL",
    "city": "Amsterdam",
    "postalCode": "1011 AB",
    "vatId": "NL004495445B01",
}
REFUSED_ID = "NL004495446B01"  # the check digit is wrong
PREVIEW = """{ workspace { ... on Workspace { scheduledChange {
  dueAtRenewal { subtotal { amount } tax { amount } total { amount } taxLines { name treatment } } } } } }"""


@pytest.fixture
def member(gateway, graphql, make_workspace):
    """A Dutch company on Email (10,000 credits), with 100.00 on its balance; its renewal
    changes to 20,000 credits: 15.00 + 15,000 × 0.0015 = 37.50 a month."""
    member = make_workspace("Voorbeeld", plan_code="email", email_credits=10000)
    billing(graphql, member, **DUTCH_COMPANY)
    with gateway.write_sessions.begin() as session:
        workspace = lock_workspace(session, member.id)
        SqlLedger(session, workspace, gateway.clock()).append(
            LedgerEntryKind.TOP_UP, Money("100.00", "EUR"), None, "test top-up"
        )
        session.add(
            ScheduledChange(
                workspace_id=member.id,
                plan_code="email",
                email_credits=20000,
                messaging_credits=0,
                effective_at=BOUNDARY,
                created_at=gateway.clock(),
            )
        )
    return member


def refuse_the_saved_vat_id(gateway, member) -> None:
    with gateway.write_sessions.begin() as session:
        session.get(BillingDetails, member.id).vat_id = REFUSED_ID


def preview(graphql, member) -> dict:
    return graphql(PREVIEW, key=member.key)["workspace"]["scheduledChange"]["dueAtRenewal"]


def test_a_valid_vat_id_renews_under_reverse_charge(gateway, graphql, member):
    assert preview(graphql, member) == {
        "subtotal": {"amount": "37.50"},
        "tax": {"amount": "0.00"},
        "total": {"amount": "37.50"},
        "taxLines": [{"name": "VAT 0% (NL)", "treatment": "REVERSE_CHARGE"}],
    }
    [result] = renew_due(gateway, BOUNDARY)
    assert result.status is RenewalStatus.RENEWED and result.amount == eur("37.50")
    assert "tax.vat_id_rejected" not in [t for _, t, _ in events(gateway, member)]


def test_a_refused_vat_id_renews_taxed_as_the_customer_now_is(gateway, graphql, member):
    refuse_the_saved_vat_id(gateway, member)
    # Without a valid VAT ID a Dutch company pays Dutch VAT: 37.50 × 21 % = 7.875 → 7.88.
    expected = {
        "subtotal": {"amount": "37.50"},
        "tax": {"amount": "7.88"},
        "total": {"amount": "45.38"},
        "taxLines": [{"name": "VAT 21% (NL)", "treatment": "STANDARD"}],
    }
    assert preview(graphql, member) == expected  # the Billing page shows what renewal charges

    [result] = renew_due(gateway, BOUNDARY)

    assert result.status is RenewalStatus.RENEWED  # charged normally, not past due
    assert result.amount == eur("45.38")
    log = events(gateway, member)
    types = [t for _, t, _ in log]
    assert types[-4:] == ["plan_change.applied", "credits.reset", "tax.vat_id_rejected", "renewal.completed"]
    rejected = next(payload for _, t, payload in log if t == "tax.vat_id_rejected")
    completed = log[-1][2]
    assert rejected == {
        "vat_id": REFUSED_ID,
        "reason": rejected["reason"],
        "customer_type": "company",
        "country": "NL",
        "context": "renewal",
        "invoice_id": completed["invoice_id"],
        "invoice_number": completed["invoice_number"],
        "tax": "7.88",
        "currency": "EUR",
    }
    assert "NL" in rejected["reason"]
    assert "tax.vat_id_rejected" in assert_events_as_documented(gateway, member)  # as docs/events.md says
    assert (completed["total"], completed["tax_calculated"]) == ("45.38", True)
    assert Decimal(completed["total"]) == Decimal("37.50") + Decimal(rejected["tax"])
