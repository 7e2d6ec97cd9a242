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

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
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
    type: str  # as JSON carries it: string, integer, boolean, object; "| null" when it may be null
    description: str


@dataclass(frozen=True)
class Payload:
    """The documented payload of one event type, at one version."""

    type: EventType
    version: int
    summary: str
    fields: tuple[Field, ...]

    @property
    def names(self) -> frozenset[str]:
        return frozenset(f.name for f in self.fields)


_CONFIGURATION = "`{plan, email_credits, messaging_credits}`"
_AMOUNT = 'decimal string in the currency\'s major unit, e.g. "39.00"'
_INSTANT = "ISO 8601 instant in UTC"


def _plan(name: str = "plan") -> Field:
    return Field(name, "string", "plan code, e.g. OMNICHANNEL")


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
        ),
        Payload(
            EventType.WORKSPACE_REACTIVATED,
            1,
            "Every open invoice is paid: the workspace is active again.",
            (Field("previous_status", "string", "`past_due` or `suspended`"),),
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
        ),
        Payload(
            EventType.CREDITS_RESET,
            1,
            "A new period started: the allowances were reset to the limits "
            "(unused credits do not roll over).",
            (*_period(), *_configuration("for the new period")),
        ),
        Payload(
            EventType.RENEWAL_COMPLETED, 1, "A period was renewed and paid (or nothing was due).", _RENEWAL
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


def reference() -> str:
    """``docs/events.md``: the event envelope and every type's payload."""
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
        "As GraphQL subscriptions name the fields; a webhook body has the same ones in snake case, with",
        'the payload as `data`: `{"id", "type", "workspace_id", "sequence", "occurred_at", "version",',
        '"data"}`.',
        "",
        "| Field | Type | Meaning |",
        "|-------|------|---------|",
        "| `id` | string | unique id of the event; use it to drop a duplicate delivery |",
        "| `type` | string | one of the types below |",
        "| `workspaceId` | string | the workspace the event belongs to |",
        "| `sequence` | integer | 1, 2, 3, ... per workspace, without gaps, in commit order |",
        "| `occurredAt` | string | when the change happened (ISO 8601, UTC) |",
        "| `version` | integer | version of this type's payload |",
        "| `payload` | object | the type's fields, below |",
        "",
        'Amounts are decimal strings in the currency\'s major unit (`"39.00"`), never floats. Within a',
        "version a payload may gain fields, so ignore the ones you do not know; removing or changing a",
        "field bumps the type's version.",
        "",
        "| Type | Version | When |",
        "|------|---------|------|",
    ]
    out += [
        f"| [`{p.type.value}`](#{p.type.value.replace('.', '')}) | {p.version} | {p.summary} |"
        for p in PAYLOADS.values()
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
        ]
        out += [f"| `{f.name}` | {f.type} | {f.description} |" for f in p.fields]
    return "\n".join(out) + "\n"
