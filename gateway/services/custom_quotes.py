"""Requests for a Custom plan quote: recorded for sales, announced by an event.

The Custom plan cannot be bought: Select a Plan leads to a request form whose
answer is the sales contact address. Every field is checked before anything is
written; all problems are reported at once, each with its field.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from gateway.core.errors import FieldProblem, InvalidQuoteRequest
from gateway.core.text import has_control_characters
from gateway.events.outbox import EventType, emit
from gateway.services.billing_details import EMAIL
from gateway.services.deps import Deps
from gateway.storage.db import CustomQuoteRequest
from gateway.storage.locks import lock_workspace

MAX_NAME = 200
MAX_EMAIL = 254
MAX_MESSAGE = 4000
MAX_VOLUME = 10**12  # credits per month; far beyond any plan, still a number sales can read


@dataclass(frozen=True)
class QuoteRequest:
    contact_name: str
    email: str
    company: str
    expected_email_credits: int | None = None
    expected_messaging_credits: int | None = None
    message: str | None = None


@dataclass(frozen=True)
class Requested:
    request_id: str
    sales_contact: str


def _line(value: str, field: str, limit: int, problems: list[FieldProblem]) -> str:
    """A one-line field: blanks collapsed; required, at most ``limit`` characters."""
    if has_control_characters(value):
        problems.append(FieldProblem(field, "must not contain control characters"))
        return value
    cleaned = " ".join(value.split())
    if not cleaned:
        problems.append(FieldProblem(field, "is required"))
    elif len(cleaned) > limit:
        problems.append(FieldProblem(field, f"must be at most {limit} characters"))
    return cleaned


def validate(request: QuoteRequest) -> QuoteRequest:
    """The request cleaned up, or :class:`InvalidQuoteRequest` listing every problem."""
    problems: list[FieldProblem] = []
    name = _line(request.contact_name, "contact_name", MAX_NAME, problems)
    email = _line(request.email, "email", MAX_EMAIL, problems)
    if email and not any(p.field == "email" for p in problems) and not EMAIL.match(email):
        problems.append(FieldProblem("email", "is not an email address"))
    company = _line(request.company, "company", MAX_NAME, problems)
    for field, volume in (
        ("expected_email_credits", request.expected_email_credits),
        ("expected_messaging_credits", request.expected_messaging_credits),
    ):
        if volume is not None and not 0 <= volume <= MAX_VOLUME:
            problems.append(FieldProblem(field, f"must be between 0 and {MAX_VOLUME:,}"))
    message = request.message.strip() if request.message is not None else None
    if message is not None:
        if has_control_characters(message, allowed="\n\r\t"):
            problems.append(
                FieldProblem("message", "must not contain control characters other than line breaks")
            )
        elif len(message) > MAX_MESSAGE:
            problems.append(FieldProblem("message", f"must be at most {MAX_MESSAGE} characters"))
    if problems:
        raise InvalidQuoteRequest(problems)
    return QuoteRequest(
        name,
        email,
        company,
        request.expected_email_credits,
        request.expected_messaging_credits,
        message or None,
    )


def request_custom_quote(deps: Deps, workspace_id: str, request: QuoteRequest, now: datetime) -> Requested:
    """Record the request and emit ``custom_quote.requested`` in one transaction."""
    request = validate(request)
    with deps.write_sessions.begin() as session:
        workspace = lock_workspace(session, workspace_id)
        if workspace is None:
            raise LookupError(f"no workspace {workspace_id!r}")
        row = CustomQuoteRequest(
            id=secrets.token_hex(16),
            workspace_id=workspace_id,
            contact_name=request.contact_name,
            email=request.email,
            company=request.company,
            expected_email_credits=request.expected_email_credits,
            expected_messaging_credits=request.expected_messaging_credits,
            message=request.message or "",
            created_at=now,
        )
        session.add(row)
        emit(
            session,
            workspace,
            EventType.CUSTOM_QUOTE_REQUESTED,
            {
                "request_id": row.id,
                "contact_name": row.contact_name,
                "email": row.email,
                "company": row.company,
                "expected_email_credits": row.expected_email_credits,
                "expected_messaging_credits": row.expected_messaging_credits,
                "message": row.message,
                "current_plan": workspace.plan_code,
            },
            now,
        )
    return Requested(row.id, deps.catalog.sales_contact)
