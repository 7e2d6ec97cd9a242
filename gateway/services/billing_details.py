"""Billing details: saved field by field, checked for completeness at checkout.

A VAT ID is checked offline by the tax calculator (format and check digits) and, when a
plugin registered a :class:`~gateway.plugin_api.tax_ids.TaxIdVerifier` for the billing
country (VIES, with ``BILLING_GATEWAY_VIES=on``), against the register: only when the
customer submits the VAT ID or the country, before the write transaction begins (a
register may take seconds; no lock or connection is held meanwhile). The answer is kept on
the row (``vat_id_status``): a verified ID submitted again is not sent again; an
unverified one (the register could not answer) is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from gateway.core.errors import FieldProblem, InvalidBillingDetails
from gateway.core.money import Money
from gateway.core.tax import CustomerKind, InvalidTaxId, TaxCalculator, TaxCustomer, TaxRequest
from gateway.core.text import has_control_characters
from gateway.plugin_api.tax_ids import TaxIdCheck, TaxIdStatus
from gateway.services.deps import Deps
from gateway.storage.db import BillingDetails
from gateway.storage.locks import lock_workspace

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


@dataclass(frozen=True, slots=True)
class Verified:
    """A register's answer for one VAT ID in one country, obtained before the transaction."""

    vat_id: str
    country: str
    check: TaxIdCheck


def _tidy(field: str, value: Any) -> Any:
    """A submitted value as it is checked and stored: whitespace collapsed, blank is None,
    the country upper case."""
    if isinstance(value, str):
        value = " ".join(value.split()) or None  # collapse whitespace; blank clears
    if field == "country" and isinstance(value, str) and value.isascii():
        value = value.upper()
    return value


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
    verified: Verified | None = None,
) -> BillingDetails:
    """Apply ``changes`` (snake_case field -> value; None clears an optional field).

    Every value is checked before anything is written; one bad field refuses the
    whole update. The VAT ID is checked against the resulting country. ``verified`` is a
    register's answer, stored when it is about the VAT ID and country the row ends with.

    The workspace row is locked first (as checkout does): concurrent first saves then take
    turns, the later updating the row the earlier inserted, instead of both inserting it.
    """
    lock_workspace(session, workspace_id)
    row = session.get(BillingDetails, workspace_id, with_for_update=True, populate_existing=True)
    current = (
        {c: getattr(row, c) for c in (*REQUIRED, "company_name", "address_line2", "region", "vat_id")}
        if row
        else {}
    )
    cleaned: dict[str, Any] = {}
    problems: list[FieldProblem] = []
    for field, value in changes.items():
        value = _tidy(field, value)
        if value is not None and field in LIMITS and len(value) > LIMITS[field]:
            problems.append(FieldProblem(field, f"must be at most {LIMITS[field]} characters"))
            continue
        if field == "country" and value is not None and value not in countries:
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
    if verified is not None and (verified.vat_id, verified.country) == (row.vat_id, row.country):
        row.vat_id_status, row.vat_id_checked_at = verified.check.status.value, now
    elif (current.get("vat_id"), current.get("country")) != (row.vat_id, row.country):
        row.vat_id_status, row.vat_id_checked_at = None, None  # a new ID (or country) nobody checked
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
    verified = _ask_register(deps, workspace_id, clean, now)  # before the transaction: may take seconds
    if verified is not None and verified.check.status is TaxIdStatus.REJECTED:
        problems.append(FieldProblem("vat_id", verified.check.reason or "is not a registered VAT ID"))
        verified = None
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
                    verified=verified,
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


def _ask_register(deps: Deps, workspace_id: str, changes: dict[str, Any], now: datetime) -> Verified | None:
    """What the register of the billing country says of the VAT ID being submitted, or None
    when there is nothing to ask: no verifier for the country, no VAT ID or country among
    the changes, a malformed ID (``update`` reports it), or an ID already verified.

    Runs with no transaction open: the saved row is read in a short session closed before
    the register is asked. A concurrent save may change the row meanwhile; ``update`` only
    stores an answer about the VAT ID and country the row ends with.
    """
    verifiers = deps.tax_id_verifiers
    if not verifiers or not {"vat_id", "country"} & changes.keys():
        return None
    with deps.sessions() as session:
        row = session.get(BillingDetails, workspace_id)
        saved = (row.vat_id, row.country, row.vat_id_status, row.customer_type) if row else (None,) * 4
    saved_id, saved_country, saved_status, saved_kind = saved
    vat_id = _tidy("vat_id", changes["vat_id"]) if "vat_id" in changes else saved_id
    country = _tidy("country", changes["country"]) if "country" in changes else saved_country
    kind = _tidy("customer_type", changes.get("customer_type")) or saved_kind or CustomerKind.COMPANY.value
    if not vat_id or not country or not isinstance(vat_id, str) or not isinstance(country, str):
        return None
    if (vat_id, country, saved_status) == (saved_id, saved_country, TaxIdStatus.VERIFIED.value):
        return None  # the register confirmed this very ID: not asked again
    verifier = next((v for _, v in sorted(verifiers.items()) if country in v.countries), None)
    if verifier is None:
        return None
    customer = TaxCustomer(CustomerKind(getattr(kind, "value", kind)), country, vat_id)
    try:  # only well-formed IDs go to the register
        deps.tax.calculate(
            TaxRequest(deps.seller_country, customer, Money.zero(deps.catalog.currency), now.date())
        )
    except InvalidTaxId:
        return None
    return Verified(vat_id, country, verifier.verify(vat_id, country))
