"""Billing details: saved field by field, checked for completeness at checkout."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from gateway.core.errors import FieldProblem, InvalidBillingDetails
from gateway.core.money import Money
from gateway.core.tax import CustomerKind, InvalidTaxId, TaxCalculator, TaxCustomer, TaxRequest
from gateway.core.text import has_control_characters
from gateway.services.deps import Deps
from gateway.storage.db import BillingDetails

EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
LIMITS = {
    "name": 200,
    "company_name": 200,
    "address_line1": 200,
    "address_line2": 200,
    "city": 100,
    "postal_code": 20,
    "region": 100,
    "email": 254,
    "vat_id": 32,
}
REQUIRED = ("customer_type", "name", "address_line1", "city", "postal_code", "country", "email")


def update(
    session: Session,
    workspace_id: str,
    changes: dict[str, Any],
    *,
    countries: frozenset[str],
    tax: TaxCalculator,
    seller_country: str,
    now: datetime,
    currency: str = "EUR",
) -> BillingDetails:
    """Apply ``changes`` (snake_case field -> value; None clears an optional field).

    Every value is checked before anything is written; one bad field refuses the
    whole update. The VAT ID is checked against the resulting country.
    """
    row = session.get(BillingDetails, workspace_id, with_for_update=True)
    current = (
        {c: getattr(row, c) for c in (*REQUIRED, "company_name", "address_line2", "region", "vat_id")}
        if row
        else {}
    )
    cleaned: dict[str, Any] = {}
    problems: list[FieldProblem] = []
    for field, value in changes.items():
        if isinstance(value, str):
            value = " ".join(value.split()) or None  # collapse whitespace; blank clears
        if value is not None and field in LIMITS and len(value) > LIMITS[field]:
            problems.append(FieldProblem(field, f"must be at most {LIMITS[field]} characters"))
            continue
        if field == "country" and value is not None:
            value = value.upper() if value.isascii() else value
            if value not in countries:
                problems.append(FieldProblem("country", f"unknown country {value!r}"))
                continue
        if field == "email" and value is not None and not EMAIL.match(value):
            problems.append(FieldProblem("email", "is not an email address"))
            continue
        if field in REQUIRED and value is None:
            problems.append(FieldProblem(field, "cannot be cleared"))
            continue
        cleaned[field] = value
    merged = {**current, **cleaned}
    if merged.get("vat_id") and merged.get("country") and "vat_id" not in {p.field for p in problems}:
        customer = TaxCustomer(
            CustomerKind(merged.get("customer_type") or "company"), merged["country"], merged["vat_id"]
        )
        try:
            tax.calculate(TaxRequest(seller_country, customer, Money.zero(currency), now.date()))
        except InvalidTaxId as error:
            problems.append(FieldProblem("vat_id", error.reason))
    if problems:
        raise InvalidBillingDetails(problems)
    if row is None:
        row = BillingDetails(workspace_id=workspace_id, updated_at=now)
        session.add(row)
    for field, value in cleaned.items():
        setattr(row, field, value.value if hasattr(value, "value") else value)
    row.updated_at = now
    return row


# Missing fields are named as clients know them: the API's field names, which checkout's answer
# and the renewal.failed event (a public payload) have always used.
_API_NAMES = {
    "customer_type": "customerType",
    "company_name": "companyName",
    "address_line1": "addressLine1",
    "address_line2": "addressLine2",
    "postal_code": "postalCode",
    "vat_id": "vatId",
}


def missing_fields(row: BillingDetails | None) -> list[str]:
    """The fields checkout needs and the details lack, as the API names them."""
    if row is None:
        missing = list(REQUIRED)
    else:
        missing = [f for f in REQUIRED if not getattr(row, f)]
        if row.customer_type == CustomerKind.COMPANY.value and not row.company_name:
            missing.append("company_name")
    return [_API_NAMES.get(f, f) for f in missing]


def tax_customer(row: BillingDetails | None) -> TaxCustomer | None:
    if row is None or not row.customer_type or not row.country:
        return None
    return TaxCustomer(CustomerKind(row.customer_type), row.country, row.vat_id or None)


def snapshot(row: BillingDetails) -> dict[str, Any]:
    """The details as printed on an invoice."""
    return {c: getattr(row, c) for c in (*REQUIRED, "company_name", "address_line2", "region", "vat_id")}


FIELD_ORDER = (
    "customer_type",
    "name",
    "company_name",
    "address_line1",
    "address_line2",
    "city",
    "postal_code",
    "region",
    "country",
    "vat_id",
    "email",
)


def update_billing_details(
    deps: Deps, workspace_id: str, changes: dict[str, Any], now: datetime
) -> BillingDetails:
    """Save a partial update of the billing details in one transaction: every field is checked
    first (control characters, lengths, the country, the VAT ID against it) and one bad field
    refuses the whole update with :class:`InvalidBillingDetails` listing every problem."""
    problems = [
        FieldProblem(name, "must not contain control characters")
        for name, value in changes.items()
        if isinstance(value, str) and has_control_characters(value)
    ]
    clean = {name: value for name, value in changes.items() if name not in {p.field for p in problems}}
    try:
        with deps.write_sessions.begin() as session:
            try:
                saved = update(
                    session,
                    workspace_id,
                    clean,
                    countries=deps.countries,
                    tax=deps.tax,
                    seller_country=deps.seller_country,
                    now=now,
                    currency=deps.catalog.currency,
                )
            except InvalidBillingDetails as error:
                problems += error.problems
            if problems:
                raise InvalidBillingDetails(problems)  # rolls the transaction back
            session.flush()
            return saved
    except InvalidBillingDetails as error:
        order = {name: i for i, name in enumerate(FIELD_ORDER)}
        raise InvalidBillingDetails(
            sorted(error.problems, key=lambda p: order.get(p.field, len(order)))
        ) from None
