"""The event model: what integrators receive, read back from the outbox.

An event is an outbox row (see :mod:`gateway.events.outbox`) that has committed: the
outbox is the only source of events, so a change that was rolled back never
produced one. Each event has an id, a type, its workspace, the time of the change,
a sequence number per workspace (1, 2, 3, ... without gaps, committed in that
order because every writer holds the workspace's lock) and a JSON payload whose
shape is documented per type and versioned.

:data:`PAYLOADS` is that documentation: for each type, the payload version and its
fields. ``docs/events.md`` is generated from it (:func:`reference`) and a test keeps
the two equal; another checks that the events the gateway writes have exactly the
documented fields. A payload only ever gains fields within a version; removing or
changing one bumps the version of that type.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.events.types import EventType
from gateway.plugin_api.events import Event
from gateway.storage.db import OutboxEvent

PLAN_CHANGE_TYPES = frozenset(
    {
        EventType.PLAN_CHANGE_APPLIED.value,
        EventType.PLAN_CHANGE_SCHEDULED.value,
        EventType.PLAN_CHANGE_CANCELLED.value,
    }
)
EVENT_TYPES = frozenset(t.value for t in EventType)


@dataclass(frozen=True)
class Field:
    name: str
    type: str  # as JSON carries it (see JSON_TYPES), alternatives joined by " | ": "string | null"
    description: str


@dataclass(frozen=True)
class Example:
    """One event of a type as the gateway writes it, shown in ``docs/events.md``.

    Tests check that its payload has exactly the documented fields with the documented
    JSON types, and that the gateway writes the same fields in a real flow.
    """

    occurred_at: datetime
    sequence: int
    payload: Mapping[str, Any]


@dataclass(frozen=True)
class Payload:
    """The documented payload of one event type, at one version."""

    type: EventType
    version: int
    summary: str
    fields: tuple[Field, ...]
    example: Example

    @property
    def names(self) -> frozenset[str]:
        return frozenset(f.name for f in self.fields)


def _id(label: str) -> str:
    """An example id as the gateway makes them (32 hex digits), the same for the same label."""
    return hashlib.sha256(label.encode()).hexdigest()[:32]


def _at(month: int, day: int, hour: int, minute: int, *, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


EXAMPLE_WORKSPACE_ID = _id("workspace")

_CONFIGURATION = "`{plan, email_credits, messaging_credits}`"
_AMOUNT = 'decimal string in the currency\'s major unit, e.g. "39.00"'
_INSTANT = "ISO 8601 instant in UTC"


def _plan(name: str = "plan") -> Field:
    return Field(name, "string", "plan code, e.g. `omnichannel`")


def _configuration(subject: str) -> tuple[Field, ...]:
    return (
        _plan(),
        Field("email_credits", "integer", f"monthly Email credit limit {subject}"),
        Field("messaging_credits", "integer", f"monthly SMS/WhatsApp credit limit {subject}"),
    )


def _period() -> tuple[Field, ...]:
    return (
        Field("period_start", "string", f"start of the new period ({_INSTANT})"),
        Field("period_end", "string", f"end of the new period ({_INSTANT})"),
    )


_PAYMENT = (
    Field("payment_id", "string", "the payment"),
    Field("purpose", "string", "checkout, top_up or renewal"),
    Field("amount", "string", _AMOUNT),
    Field("currency", "string", "ISO 4217 code"),
    Field("method", "string", "payment method code: balance, card, ..."),
)

_RENEWAL = (
    *_period(),
    *_configuration("renewed"),
    Field("total", "string", f"amount charged for the period, tax included ({_AMOUNT})"),
    Field("currency", "string", "ISO 4217 code"),
    Field("tax_calculated", "boolean", "whether VAT could be computed from the billing details"),
    Field("invoice_id", "string", "the renewal invoice"),
    Field("invoice_number", "string", "its number"),
    Field(
        "payment_id", "string | null", "the payment attempted; null when none was (nothing due, no method)"
    ),
    Field("payment_method", "string | null", "its method code: balance, card, ..."),
)

PAYLOADS: dict[str, Payload] = {
    p.type.value: p
    for p in (
        Payload(
            EventType.PLAN_CHANGE_SCHEDULED,
            1,
            "A change was scheduled for the start of the next period "
            "(a downgrade, or the lower half of a split).",
            (
                *_configuration("from then on"),
                Field("effective_at", "string", f"when it applies: the next renewal ({_INSTANT})"),
            ),
            Example(
                _at(11, 20, 14, 5),
                7,
                {
                    "plan": "email",
                    "email_credits": 10000,
                    "messaging_credits": 0,
                    "effective_at": "2026-12-10T09:30:00+00:00",
                },
            ),
        ),
        Payload(
            EventType.PLAN_CHANGE_APPLIED,
            1,
            "The workspace's plan or limits changed: at checkout (an "
            "upgrade or a new paid period) or at renewal (a scheduled change).",
            (
                Field("from", "object", f"the configuration before, {_CONFIGURATION}"),
                Field("to", "object", f"the configuration after, {_CONFIGURATION}"),
                Field("effective_at", "string", _INSTANT),
                Field("reason", "string", "`checkout` or `renewal`"),
            ),
            Example(
                _at(11, 10, 9, 31),
                3,
                {
                    "from": {"plan": "free", "email_credits": 1000, "messaging_credits": 0},
                    "to": {"plan": "omnichannel", "email_credits": 20000, "messaging_credits": 5000},
                    "effective_at": "2026-11-10T09:31:00+00:00",
                    "reason": "checkout",
                },
            ),
        ),
        Payload(
            EventType.PLAN_CHANGE_CANCELLED,
            1,
            "A scheduled change will not happen: cancelled by the customer or superseded by a new order.",
            (
                *_configuration("that was scheduled"),
                Field("effective_at", "string", f"when it would have applied ({_INSTANT})"),
                Field("reason", "string", "`cancelled by the customer` or `superseded by a new order`"),
            ),
            Example(
                _at(11, 21, 8, 12),
                8,
                {
                    "plan": "email",
                    "email_credits": 10000,
                    "messaging_credits": 0,
                    "effective_at": "2026-12-10T09:30:00+00:00",
                    "reason": "cancelled by the customer",
                },
            ),
        ),
        Payload(
            EventType.CHECKOUT_COMPLETED,
            1,
            "A checkout went through (paid, or nothing was due).",
            (
                Field("kind", "string", "new_period, upgrade, downgrade or split"),
                Field("order", "string", "what was ordered, as shown to people"),
                Field("total", "string", f"amount charged now, tax included ({_AMOUNT})"),
                Field("currency", "string", "ISO 4217 code"),
                Field("invoice_id", "string | null", "null when nothing was due now"),
                Field("invoice_number", "string | null", "null when nothing was due now"),
                Field("payment_id", "string | null", "null when nothing was due now"),
                Field("payment_method", "string | null", "balance, card, ...; null when nothing was due now"),
            ),
            Example(
                _at(11, 10, 9, 31),
                5,
                {
                    "kind": "new_period",
                    "order": "Omnichannel (20,000 email, 5,000 messaging credits)",
                    "total": "113.05",
                    "currency": "EUR",
                    "invoice_id": _id("invoice 1"),
                    "invoice_number": "INV-2026-000001",
                    "payment_id": _id("checkout payment"),
                    "payment_method": "card",
                },
            ),
        ),
        Payload(
            EventType.PAYMENT_FAILED,
            1,
            "A payment was declined or failed; nothing else changed.",
            (
                *_PAYMENT,
                Field(
                    "failure_code",
                    "string | null",
                    "card_declined, insufficient_funds, expired_card, "
                    "incorrect_cvc, processing_error, authentication_failed, insufficient_balance, ...",
                ),
                Field("message", "string | null", "a sentence for people"),
            ),
            Example(
                _at(11, 25, 16, 40),
                11,
                {
                    "payment_id": _id("declined top-up"),
                    "purpose": "top_up",
                    "amount": "50.00",
                    "currency": "EUR",
                    "method": "card",
                    "failure_code": "card_declined",
                    "message": "The card was declined.",
                },
            ),
        ),
        Payload(
            EventType.PAYMENT_PENDING,
            1,
            "A payment waits for its money (a bank transfer): show the customer how to pay. What it pays "
            "for applies once it succeeds (`checkout.completed`, `balance.topped_up`, `renewal.completed`); "
            "`payment.expired` if the money does not arrive in time.",
            (
                *_PAYMENT,
                Field("reference", "string | null", "the payment method's reference, to quote when paying"),
                Field(
                    "instructions", "object", "how to pay, as name and value strings (IBAN, BIC, amount...)"
                ),
                Field("expires_at", "string | null", f"when the payment expires ({_INSTANT})"),
            ),
            Example(
                _at(11, 24, 10, 0),
                9,
                {
                    "payment_id": _id("transfer top-up"),
                    "purpose": "top_up",
                    "amount": "100.00",
                    "currency": "EUR",
                    "method": "transfer",
                    "reference": "TR-39CC5FC278",
                    "instructions": {
                        "iban": "DE89370400440532013000",
                        "bic": "COBADEFFXXX",
                        "amount": "100.00 EUR",
                        "reference": "TR-39CC5FC278",
                    },
                    "expires_at": "2026-12-08T10:00:00+00:00",
                },
            ),
        ),
        Payload(
            EventType.PAYMENT_EXPIRED,
            1,
            "Nobody completed a payment in time (3-D Secure not confirmed, money not arrived): it was "
            "cancelled at the payment method and what it was for is not applied.",
            (
                *_PAYMENT,
                Field("failure_code", "string | null", "`expired`"),
                Field("message", "string | null", "a sentence for people"),
            ),
            Example(
                _at(12, 8, 10, 0),
                16,
                {
                    "payment_id": _id("transfer top-up"),
                    "purpose": "top_up",
                    "amount": "100.00",
                    "currency": "EUR",
                    "method": "transfer",
                    "failure_code": "expired",
                    "message": "the customer did not complete the payment in time",
                },
            ),
        ),
        Payload(
            EventType.PAYMENT_REFUNDED,
            1,
            "A payment was given back, in full or in part: by an operator (with a credit note when it "
            "had an invoice), or because what it paid for no longer applied.",
            (
                *_PAYMENT,
                Field("refund_reference", "string | null", "the payment method's reference of the refund"),
                Field("refund_id", "string | null", "the operator's refund; null for an automatic one"),
                Field("refunded", "string", f"the amount given back now ({_AMOUNT})"),
                Field("destination", "string", "`method` (back through the payment method) or `balance`"),
                Field("full", "boolean", "true once the whole payment is given back"),
                Field("credit_note_id", "string | null", "the credit note; null when there was no invoice"),
                Field("credit_note_number", "string | null", "its number, e.g. CN-2026-000001"),
            ),
            Example(
                _at(11, 28, 11, 15),
                13,
                {
                    "payment_id": _id("checkout payment"),
                    "purpose": "checkout",
                    "amount": "113.05",
                    "currency": "EUR",
                    "method": "card",
                    "refund_reference": "re_sandbox_ba9bf24a64704c05d4ac12dd9c34a3c2",
                    "refund_id": _id("goodwill refund"),
                    "refunded": "20.00",
                    "destination": "method",
                    "full": False,
                    "credit_note_id": _id("credit note 1"),
                    "credit_note_number": "CN-2026-000001",
                },
            ),
        ),
        Payload(
            EventType.REFUND_FAILED,
            1,
            "An operator's refund was refused by the payment method; nothing was given back.",
            (
                Field("refund_id", "string", "the refund"),
                Field("payment_id", "string", "the payment it was for"),
                Field("amount", "string", _AMOUNT),
                Field("currency", "string", "ISO 4217 code"),
                Field("message", "string | null", "the method's reason"),
            ),
            Example(
                _at(11, 29, 9, 2),
                14,
                {
                    "refund_id": _id("second refund"),
                    "payment_id": _id("checkout payment"),
                    "amount": "10.00",
                    "currency": "EUR",
                    "message": "The payment is unknown to the sandbox processor.",
                },
            ),
        ),
        Payload(
            EventType.INVOICE_PAYMENT_FAILED,
            1,
            "An attempt to collect an open invoice failed (the renewal's own payment, or a dunning "
            "retry): from the first failure on, ask the customer for another payment method.",
            (
                Field("invoice_id", "string", "the open invoice"),
                Field("invoice_number", "string", "its number"),
                Field("amount_due", "string", _AMOUNT),
                Field("currency", "string", "ISO 4217 code"),
                Field("attempt", "integer", "attempts to collect it so far, this one included"),
                Field("reason", "string", "a failure code (card_declined, insufficient_balance, ...)"),
                Field("message", "string", "a sentence for people"),
                Field("payment_method", "string | null", "the renewal method that failed (`card:<id>`, ...)"),
                Field("hard_decline", "boolean", "true: not retried on the same method"),
                Field("next_retry_at", "string | null", f"the next retry ({_INSTANT}); null: none scheduled"),
            ),
            Example(
                _at(12, 10, 9, 30),
                21,
                {
                    "invoice_id": _id("invoice 2"),
                    "invoice_number": "INV-2026-000002",
                    "amount_due": "113.05",
                    "currency": "EUR",
                    "attempt": 1,
                    "reason": "card_declined",
                    "message": "The card was declined.",
                    "payment_method": f"card:{_id('card')}",
                    "hard_decline": False,
                    "next_retry_at": "2026-12-11T09:30:00+00:00",
                },
            ),
        ),
        Payload(
            EventType.INVOICE_PAID,
            1,
            "An open invoice was paid later (payInvoice, or a dunning retry).",
            (
                Field("invoice_id", "string", "the invoice"),
                Field("invoice_number", "string", "its number"),
                Field("amount", "string", _AMOUNT),
                Field("currency", "string", "ISO 4217 code"),
                Field("payment_id", "string", "the payment that paid it"),
                Field("payment_method", "string", "its method code"),
                Field("attempts", "integer", "attempts to collect it, this one included"),
            ),
            Example(
                _at(12, 26, 15, 45),
                23,
                {
                    "invoice_id": _id("invoice 2"),
                    "invoice_number": "INV-2026-000002",
                    "amount": "113.05",
                    "currency": "EUR",
                    "payment_id": _id("invoice 2 payment"),
                    "payment_method": "card",
                    "attempts": 5,
                },
            ),
        ),
        Payload(
            EventType.WORKSPACE_SUSPENDED,
            1,
            "The workspace stayed past due beyond the grace: usage and orders are refused until every "
            "open invoice is paid.",
            (
                Field("invoice_ids", "array of strings", "the open invoices past the grace"),
                Field("amount_due", "string", _AMOUNT),
                Field("currency", "string", "ISO 4217 code"),
                Field("past_due_since", "string", f"the first failure ({_INSTANT})"),
            ),
            Example(
                _at(12, 24, 9, 30),
                22,
                {
                    "invoice_ids": [_id("invoice 2")],
                    "amount_due": "113.05",
                    "currency": "EUR",
                    "past_due_since": "2026-12-10T09:30:00+00:00",
                },
            ),
        ),
        Payload(
            EventType.WORKSPACE_REACTIVATED,
            1,
            "Every open invoice is paid: the workspace is active again.",
            (Field("previous_status", "string", "`past_due` or `suspended`"),),
            Example(_at(12, 26, 15, 45), 24, {"previous_status": "suspended"}),
        ),
        Payload(
            EventType.BALANCE_TOPPED_UP,
            1,
            "The prepaid balance was topped up (paid by card).",
            (
                Field("payment_id", "string", "the card payment"),
                Field("amount", "string", f"amount added ({_AMOUNT})"),
                Field("currency", "string", "ISO 4217 code"),
                Field("balance", "string", f"the balance after the top-up ({_AMOUNT})"),
            ),
            Example(
                _at(11, 10, 9, 28),
                2,
                {
                    "payment_id": _id("top-up payment"),
                    "amount": "50.00",
                    "currency": "EUR",
                    "balance": "50.00",
                },
            ),
        ),
        Payload(
            EventType.CARD_ADDED,
            1,
            "A card was saved (never its number or CVC).",
            (
                Field("card_id", "string", "the saved card"),
                Field("brand", "string", "visa, mastercard, ..."),
                Field("last4", "string", "its last four digits"),
            ),
            Example(_at(11, 10, 9, 28), 1, {"card_id": _id("card"), "brand": "visa", "last4": "4242"}),
        ),
        Payload(
            EventType.PAYMENT_METHOD_DEFAULT_CHANGED,
            1,
            "The customer chose another method to pay renewals (setDefaultPaymentMethod).",
            (
                Field("method", "string", "the payment method code renewals now charge: balance, card, ..."),
                Field(
                    "card_id", "string | null", "the saved card it charges; null for a method without cards"
                ),
                Field(
                    "previous_method",
                    "string | null",
                    "the method chosen before; null when none was (renewals fell back to the balance)",
                ),
                Field("previous_card_id", "string | null", "the saved card chosen before, if any"),
            ),
            Example(
                _at(11, 12, 17, 3),
                6,
                {
                    "method": "card",
                    "card_id": _id("card"),
                    "previous_method": None,
                    "previous_card_id": None,
                },
            ),
        ),
        Payload(
            EventType.CREDITS_RESET,
            1,
            "A new period started: the allowances were reset to the limits "
            "(unused credits do not roll over).",
            (*_period(), *_configuration("for the new period")),
            Example(
                _at(12, 10, 9, 30),
                18,
                {
                    "period_start": "2026-12-10T09:30:00+00:00",
                    "period_end": "2027-01-10T09:30:00+00:00",
                    "plan": "omnichannel",
                    "email_credits": 20000,
                    "messaging_credits": 5000,
                },
            ),
        ),
        Payload(
            EventType.RENEWAL_COMPLETED,
            1,
            "A period was renewed and paid (or nothing was due).",
            _RENEWAL,
            Example(
                _at(1, 10, 9, 30, year=2027),
                27,
                {
                    "period_start": "2027-01-10T09:30:00+00:00",
                    "period_end": "2027-02-10T09:30:00+00:00",
                    "plan": "omnichannel",
                    "email_credits": 20000,
                    "messaging_credits": 5000,
                    "total": "119.00",
                    "currency": "EUR",
                    "tax_calculated": True,
                    "invoice_id": _id("invoice 3"),
                    "invoice_number": "INV-2027-000001",
                    "payment_id": _id("invoice 3 payment"),
                    "payment_method": "card",
                },
            ),
        ),
        Payload(
            EventType.RENEWAL_FAILED,
            1,
            "A renewal could not be paid: the workspace is past due, with an "
            "open invoice; service continues.",
            (
                *_RENEWAL,
                Field(
                    "reason",
                    "string",
                    "a payment failure code, or no_payment_method, "
                    "payment_method_unavailable, billing_details_incomplete, "
                    "authentication_required (before issue 9 also invalid_vat_id, no longer sent: see "
                    "tax.vat_id_rejected)",
                ),
                Field("message", "string", "a sentence for people"),
                Field("status", "string", "the workspace's status: `past_due`"),
            ),
            Example(
                _at(12, 10, 9, 30),
                20,
                {
                    "period_start": "2026-12-10T09:30:00+00:00",
                    "period_end": "2027-01-10T09:30:00+00:00",
                    "plan": "omnichannel",
                    "email_credits": 20000,
                    "messaging_credits": 5000,
                    "total": "113.05",
                    "currency": "EUR",
                    "tax_calculated": True,
                    "invoice_id": _id("invoice 2"),
                    "invoice_number": "INV-2026-000002",
                    "payment_id": _id("renewal payment"),
                    "payment_method": "card",
                    "reason": "card_declined",
                    "message": "The card was declined.",
                    "status": "past_due",
                },
            ),
        ),
        Payload(
            EventType.TAX_VAT_ID_REJECTED,
            1,
            "The tax calculator refused the saved VAT ID (a checksum or format it no longer "
            "accepts), so the charge was taxed as the customer is without it, never untaxed: "
            "under tax_vat a company then pays its country's VAT, as a consumer does. Sent "
            "with the renewal it taxed, before its renewal.completed or renewal.failed.",
            (
                Field("vat_id", "string", "the VAT ID as saved in the billing details"),
                Field("reason", "string", "why the tax calculator refused it, for people"),
                Field("customer_type", "string", "person or company, as saved"),
                Field("country", "string", "the customer's country (ISO 3166-1 alpha-2)"),
                Field("context", "string", "what was taxed without the ID: `renewal`"),
                Field("invoice_id", "string", "the invoice taxed without the ID"),
                Field("invoice_number", "string", "its number"),
                Field("tax", "string", f"the tax charged on it ({_AMOUNT})"),
                Field("currency", "string", "ISO 4217 code"),
            ),
            Example(
                _at(12, 10, 9, 30),
                19,
                {
                    "vat_id": "DE136695970",
                    "reason": "not a valid DE VAT number: The number's checksum or check digit is invalid.",
                    "customer_type": "company",
                    "country": "DE",
                    "context": "renewal",
                    "invoice_id": _id("invoice 2"),
                    "invoice_number": "INV-2026-000002",
                    "tax": "18.05",
                    "currency": "EUR",
                },
            ),
        ),
        Payload(
            EventType.PRICE_CHANGE_SCHEDULED,
            1,
            "Notice of a new price: the catalog has a newer price version of the workspace's plan "
            "whose rule moves existing subscribers after notice (`existing_subscribers = "
            '"notice"`). The workspace keeps its price until `effective_at`, its first renewal '
            "once the version is on sale and the notice period has run. Not sent for a version "
            "that grandfathers its subscribers.",
            (
                Field("plan", "string", "the plan code"),
                Field("from_version", "string", "the price version the workspace is on"),
                Field("to_version", "string", "the price version it moves to"),
                Field("effective_at", "string", f"the renewal from which it pays the new price ({_INSTANT})"),
                Field(
                    "monthly_subtotal_before",
                    "string",
                    f"the monthly price of its configuration now, before tax ({_AMOUNT})",
                ),
                Field(
                    "monthly_subtotal_after",
                    "string",
                    f"the same configuration at the new price version, before tax ({_AMOUNT})",
                ),
                Field("currency", "string", "ISO 4217 code"),
            ),
            Example(
                _at(12, 1, 0, 0),
                15,
                {
                    "plan": "omnichannel",
                    "from_version": "1",
                    "to_version": "2027-01",
                    "effective_at": "2027-01-10T09:30:00+00:00",
                    "monthly_subtotal_before": "95.00",
                    "monthly_subtotal_after": "100.00",
                    "currency": "EUR",
                },
            ),
        ),
        Payload(
            EventType.PRICE_CHANGE_APPLIED,
            1,
            "The renewal moved the workspace to the price version it was given notice of "
            "(price_change.scheduled); sent before that renewal's renewal.completed or renewal.failed.",
            (
                Field("plan", "string", "the plan code"),
                Field("from_version", "string", "the price version it was on"),
                Field("to_version", "string", "the price version it pays from now on"),
                Field("effective_at", "string", f"the start of the period it applies to ({_INSTANT})"),
                Field("noticed_at", "string", f"when the notice was given ({_INSTANT})"),
            ),
            Example(
                _at(1, 10, 9, 30, year=2027),
                25,
                {
                    "plan": "omnichannel",
                    "from_version": "1",
                    "to_version": "2027-01",
                    "effective_at": "2027-01-10T09:30:00+00:00",
                    "noticed_at": "2026-12-01T00:00:00+00:00",
                },
            ),
        ),
        Payload(
            EventType.CUSTOM_QUOTE_REQUESTED,
            1,
            "A request for a Custom plan quote was recorded.",
            (
                Field("request_id", "string", "the recorded request"),
                Field("contact_name", "string", "who asked"),
                Field("email", "string", "where sales should answer"),
                Field("company", "string", "their company"),
                Field("expected_email_credits", "integer | null", "monthly Email volume they expect"),
                Field(
                    "expected_messaging_credits", "integer | null", "monthly SMS/WhatsApp credits they expect"
                ),
                Field("message", "string", "their message"),
                Field("current_plan", "string", "plan code of the workspace when it asked"),
            ),
            Example(
                _at(11, 26, 13, 20),
                12,
                {
                    "request_id": _id("quote request"),
                    "contact_name": "Ada Lovelace",
                    "email": "ada@example.com",
                    "company": "Analytical Engines GmbH",
                    "expected_email_credits": 2000000,
                    "expected_messaging_credits": 750000,
                    "message": "We send 2M emails a month. Can we talk about SLAs?",
                    "current_plan": "omnichannel",
                },
            ),
        ),
    )
}


def event_of(row: OutboxEvent) -> Event:
    """The event an outbox row records, as integrators and plugins receive it."""
    return Event(
        id=row.id,
        type=row.type,
        workspace_id=row.workspace_id,
        sequence=row.sequence,
        occurred_at=row.occurred_at,
        payload=dict(row.payload),
        version=row.version,
    )


def read_events(
    session: Session, workspace_id: str, after: int, *, types: Iterable[str] | None = None, limit: int = 500
) -> list[Event]:
    """The workspace's committed events with a sequence above ``after``, in order, at most ``limit``."""
    statement = (
        select(OutboxEvent)
        .where(OutboxEvent.workspace_id == workspace_id, OutboxEvent.sequence > after)
        .order_by(OutboxEvent.sequence)
        .limit(limit)
    )
    if types is not None:
        statement = statement.where(OutboxEvent.type.in_(sorted(types)))
    return [event_of(row) for row in session.scalars(statement)]


def last_sequence(session: Session, workspace_id: str) -> int:
    """The sequence of the workspace's latest committed event; 0 before its first."""
    return (
        session.scalar(
            select(func.coalesce(func.max(OutboxEvent.sequence), 0)).where(
                OutboxEvent.workspace_id == workspace_id
            )
        )
        or 0
    )


def undocumented(type: str, payload: Mapping[str, Any]) -> tuple[set[str], set[str]]:
    """The fields of ``payload`` that :data:`PAYLOADS` does not list, and the listed ones it lacks."""
    names, present = PAYLOADS[type].names, set(payload)
    return present - names, set(names) - present


# The JSON types a Field may name; "a | b" accepts either.
JSON_TYPES: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array of strings": lambda v: isinstance(v, list) and all(isinstance(item, str) for item in v),
    "null": lambda v: v is None,
}


def fits(documented: str, value: Any) -> bool:
    """Whether ``value`` (as JSON decodes it) has the documented type, e.g. ``"string | null"``."""
    return any(JSON_TYPES[alternative](value) for alternative in documented.split(" | "))


def nonconforming(type: str, payload: Mapping[str, Any]) -> list[str]:
    """What in ``payload`` differs from the documentation of ``type``: fields and JSON types."""
    extra, missing = undocumented(type, payload)
    return (
        [f"undocumented field {name!r}" for name in sorted(extra)]
        + [f"missing field {name!r}" for name in sorted(missing)]
        + [
            f"{f.name}: {payload[f.name]!r} is not {f.type}"
            for f in PAYLOADS[type].fields
            if f.name in payload and not fits(f.type, payload[f.name])
        ]
    )


@dataclass(frozen=True)
class EnvelopeField:
    """A field of the envelope around every payload, as webhooks and GraphQL name it."""

    webhook: str
    graphql: str
    type: str
    meaning: str
    value: Callable[[Event], Any]


ENVELOPE = (
    EnvelopeField(
        "id", "id", "string", "unique id of the event; use it to drop a duplicate delivery", lambda e: e.id
    ),
    EnvelopeField("type", "type", "string", "one of the types below", lambda e: e.type),
    EnvelopeField(
        "workspace_id",
        "workspaceId",
        "string",
        "the workspace the event belongs to",
        lambda e: e.workspace_id,
    ),
    EnvelopeField(
        "sequence",
        "sequence",
        "integer",
        "1, 2, 3, ... per workspace, without gaps, in commit order",
        lambda e: e.sequence,
    ),
    EnvelopeField(
        "occurred_at",
        "occurredAt",
        "string",
        "when the change happened (ISO 8601 with its UTC offset)",
        lambda e: e.occurred_at.isoformat(),
    ),
    EnvelopeField("version", "version", "integer", "version of this type's payload", lambda e: e.version),
    EnvelopeField("data", "payload", "object", "the type's fields, below", lambda e: dict(e.payload)),
)


def webhook_envelope(event: Event) -> dict[str, Any]:
    """The JSON body a webhook endpoint receives for ``event``."""
    return {f.webhook: f.value(event) for f in ENVELOPE}


def graphql_envelope(event: Event) -> dict[str, Any]:
    """``event`` as the ``events`` and ``planChanged`` subscriptions send it, every field selected."""
    return {f.graphql: f.value(event) for f in ENVELOPE}


def example_event(payload: Payload) -> Event:
    """The documented example of a type, as a committed event of the example workspace."""
    example = payload.example
    return Event(
        id=_id(f"event {payload.type.value}"),
        type=payload.type.value,
        workspace_id=EXAMPLE_WORKSPACE_ID,
        sequence=example.sequence,
        occurred_at=example.occurred_at,
        payload=example.payload,
        version=payload.version,
    )


def _cell(text: str) -> str:
    """Text for one Markdown table cell: on one line, a ``|`` escaped so it does not end the cell."""
    return " ".join(text.split()).replace("|", "\\|")


def _row(*cells: str) -> str:
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def _json(value: Any) -> list[str]:
    return ["```json", *json.dumps(value, indent=2, ensure_ascii=False).splitlines(), "```"]


def anchor(heading: str) -> str:
    """The fragment GitHub gives a heading: lower case, punctuation other than ``-`` and ``_`` dropped."""
    return "".join(c for c in heading.lower() if c.isalnum() or c in "-_ ").replace(" ", "-")


def reference() -> str:
    """``docs/events.md``: the event envelope and every type's payload, with an example of each."""
    shown = PAYLOADS[EventType.PLAN_CHANGE_APPLIED.value]
    out = [
        "# Events",
        "",
        "<!-- Generated from gateway/events/catalog.py (PAYLOADS); a test keeps this file equal to it. -->",
        "",
        "Every change that matters to integrators writes an event to the outbox in the same database",
        "transaction as the change: an event exists only if the change committed. Events reach GraphQL",
        "subscribers (`events`, `planChanged`), webhooks and in-process plugin listeners.",
        "",
        "## Envelope",
        "",
        "Each payload comes in the same envelope. A webhook endpoint receives it as the JSON body of a",
        "POST signed per [Standard Webhooks](https://www.standardwebhooks.com/) (the `webhook-id` header",
        "is the event's `id`); a GraphQL subscriber selects the fields of the `Event` type, named in",
        "camel case, with the payload as `payload`.",
        "",
        "| Webhook body | GraphQL `Event` | Type | Meaning |",
        "|--------------|-----------------|------|---------|",
        *(_row(f"`{f.webhook}`", f"`{f.graphql}`", f.type, f.meaning) for f in ENVELOPE),
        "",
        f"The `{shown.type.value}` example below as a webhook body:",
        "",
        *_json(webhook_envelope(example_event(shown))),
        "",
        "and as the `events` subscription sends it (`next` message payload), every field selected:",
        "",
        *_json({"data": {"events": graphql_envelope(example_event(shown))}}),
        "",
        'Amounts are decimal strings in the currency\'s major unit (`"39.00"`), never floats; ids are',
        "opaque strings. Within a version a payload may gain fields, so ignore the ones you do not",
        "know; removing or changing a field bumps the type's version. A field's type is the JSON type",
        "it carries; `string | null` may also be `null`.",
        "",
        "| Type | Version | When |",
        "|------|---------|------|",
        *(
            _row(f"[`{p.type.value}`](#{anchor(p.type.value)})", str(p.version), p.summary)
            for p in PAYLOADS.values()
        ),
    ]
    for p in PAYLOADS.values():
        out += [
            "",
            f"## {p.type.value}",
            "",
            f"Version {p.version}. {p.summary}",
            "",
            "| Field | Type | Meaning |",
            "|-------|------|---------|",
            *(_row(f"`{f.name}`", f.type, f.description) for f in p.fields),
            "",
            "Example, as a webhook body:",
            "",
            *_json(webhook_envelope(example_event(p))),
        ]
    return "\n".join(out) + "\n"
