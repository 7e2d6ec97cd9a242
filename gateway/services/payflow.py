"""The processor boundary: how every payment is recorded, asked for and answered.

One path for every payment method and purpose (checkout, top-up, renewal):

1. :func:`begin`, inside the caller's transaction: the payment is recorded as PENDING,
   with its idempotency key (one payment per key and workspace) and what to do once it
   succeeds. The caller commits.
2. :func:`call`, outside any transaction: the method is asked, with the same key. An
   exception means the outcome is unknown, and the payment simply stays PENDING.
3. :func:`record`, in a second transaction (see :mod:`gateway.services.settlement`):
   the answer moves the payment along the state machine
   (:data:`~gateway.core.statuses.PAYMENT_TRANSITIONS`), and the purpose's follow-up
   runs with it.

A crash between 1 and 3 leaves a PENDING payment that :func:`gateway.services.settlement.reconcile`
settles by asking the method's ``status`` with the same key: never a charge without a
record, never two charges for one key.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.core.money import Money
from gateway.core.statuses import PAYMENT_TRANSITIONS, PaymentPurpose, PaymentStatus
from gateway.events.outbox import EventType, emit
from gateway.plugin_api.payments import (
    Capability,
    ChargeRequest,
    FailureCode,
    PaymentMethod,
    PaymentResult,
    StoredCard,
)
from gateway.services.deps import Deps
from gateway.storage import idempotency
from gateway.storage.db import Payment, Workspace
from gateway.storage.ledger import WorkspaceLedger

logger = logging.getLogger("gateway.payments")  # logger names are stable: operators filter on them

MAX_PAYMENT_KEY = 64  # processors' key limits, and the ledger keeps the key as an entry's reference
ANSWER_GRACE = timedelta(minutes=2)  # a payment the method never answered is asked again after this
_MESSAGE = 200  # the stored message's length
_MAX_INSTRUCTIONS = 20  # lines of payment instructions kept


def payment_key(purpose: str, idempotency_key: str) -> str:
    """The key a payment method deduplicates on, at most :data:`MAX_PAYMENT_KEY` characters.

    Callers build keys from the workspace id and the client's idempotency key (up to 255
    characters). A long key is replaced by a digest of itself: still one per request, and
    the same on every retry, so the method's deduplication keeps working.
    """
    if len(idempotency_key) <= MAX_PAYMENT_KEY:
        return idempotency_key
    return f"{purpose[:16]}:{hashlib.sha256(idempotency_key.encode()).hexdigest()[:40]}"


def request_key(session: Session, purpose: str, workspace_id: str, client_key: str) -> str:
    """The payment key for a client's request: one per idempotency key *and* claim, so a key
    reused after it expired (24 hours) makes a new payment, while every retry within its life
    finds the same one."""
    claimed = idempotency.claimed_at(session, workspace_id, client_key)
    return f"{purpose}:{workspace_id}:{client_key}:{claimed.astimezone(UTC):%Y%m%dT%H%M%S%fZ}"


def card_snapshot(card: StoredCard | None) -> dict[str, Any] | None:
    """A tokenized card as a payment keeps it: the token and what identifies the card to a
    person, never its number or CVC."""
    if card is None:
        return None
    return {
        "token": card.token,
        "brand": card.brand,
        "last4": card.last4,
        "exp_month": card.exp_month,
        "exp_year": card.exp_year,
        "fingerprint": card.fingerprint,
    }


def find(session: Session, workspace_id: str, key: str) -> Payment | None:
    """The payment made for ``key`` (as :func:`payment_key` spells it), if any."""
    return session.scalar(
        select(Payment).where(Payment.workspace_id == workspace_id, Payment.idempotency_key == key)
    )


def begin(
    session: Session,
    workspace: Workspace,
    method: PaymentMethod,
    amount: Money,
    *,
    purpose: PaymentPurpose,
    description: str,
    idempotency_key: str,
    now: datetime,
    card: StoredCard | None = None,
    card_id: str | None = None,
    follow_up: dict[str, Any] | None = None,
) -> Payment:
    """Record a PENDING payment in the caller's transaction (which holds the workspace's
    lock), or return the one already made with this key. ``follow_up`` is what the purpose
    applies once the payment succeeds."""
    key = payment_key(purpose, idempotency_key)
    existing = find(session, workspace.id, key)
    if existing is not None:
        return existing
    payment = Payment(
        id=secrets.token_hex(16),
        workspace_id=workspace.id,
        purpose=purpose,
        method=method.code,
        card_id=card_id,
        amount_minor=amount.minor_units,
        currency=amount.currency,
        status=PaymentStatus.PENDING,
        failure_code=None,
        failure_message=None,
        reference=None,
        pending={"description": description[:_MESSAGE], "card": card_snapshot(card), **(follow_up or {})},
        idempotency_key=key,
        answered_at=None,
        expires_at=None,
        refund_due=False,
        created_at=now,
        updated_at=now,
    )
    session.add(payment)
    session.flush()  # the unique key: a concurrent twin fails here, before anything is charged
    return payment


def request_of(payment: Payment) -> ChargeRequest:
    """The request every call about ``payment`` carries, rebuilt from its record."""
    kept = payment.pending or {}
    card = kept.get("card")
    assert payment.idempotency_key is not None, "payments made through begin() have a key"
    return ChargeRequest(
        payment_id=payment.id,
        workspace_id=payment.workspace_id,
        amount=Money.from_minor_units(payment.amount_minor, payment.currency),
        description=kept.get("description", ""),
        idempotency_key=payment.idempotency_key,
        requested_at=payment.created_at,
        off_session=payment.purpose == PaymentPurpose.RENEWAL or bool(kept.get("off_session")),
        card=StoredCard(**card) if card else None,
    )


def ledger_for(deps: Deps, request: ChargeRequest) -> WorkspaceLedger:
    return WorkspaceLedger(deps.write_sessions, request.workspace_id, request.amount.currency, deps.clock())


def ask(
    method: PaymentMethod,
    request: ChargeRequest,
    what: str,
    call: Callable[[], PaymentResult],
) -> PaymentResult | None:
    """Call the method outside any transaction; None when the outcome is unknown (it raised,
    or answered what its contract does not allow), so the payment stays as it is."""
    try:
        result = call()
    except Exception:
        logger.exception(
            "payment %s: %s.%s raised; the outcome is unknown, reconciliation will ask again",
            request.payment_id,
            method.code,
            what,
        )
        return None
    problem = _breach(method, request, result)
    if problem is not None:
        logger.error(
            "payment %s: %s.%s broke the payment contract (%s); left for reconciliation",
            request.payment_id,
            method.code,
            what,
            problem,
        )
        return None
    return result


def _breach(method: PaymentMethod, request: ChargeRequest, result: object) -> str | None:
    if not isinstance(result, PaymentResult) or not isinstance(result.status, PaymentStatus):
        return "its answer is not a PaymentResult"
    status, capabilities = result.status, method.capabilities
    if status is PaymentStatus.REQUIRES_ACTION and Capability.CUSTOMER_ACTION not in capabilities:
        return "REQUIRES_ACTION without the CUSTOMER_ACTION capability"
    if status in (PaymentStatus.REQUIRES_ACTION, PaymentStatus.PENDING) and not result.reference:
        return f"{status.value} without a reference to confirm, poll or cancel it by"
    if status is PaymentStatus.PENDING and Capability.SETTLE_LATER not in capabilities:
        return "PENDING without the SETTLE_LATER capability"
    if status in (PaymentStatus.EXPIRED, PaymentStatus.REFUNDED, PaymentStatus.REFUND_FAILED):
        return f"{status.value} is for the gateway to set"
    if (
        status is PaymentStatus.FAILED
        and result.failure is not None
        and not isinstance(result.failure, FailureCode)
    ):
        return "its failure is not a FailureCode"
    return None


def charge(deps: Deps, method: PaymentMethod, payment: ChargeRequest) -> PaymentResult | None:
    """Ask ``method`` to take the payment (see :func:`ask`)."""
    result = ask(method, payment, "charge", lambda: method.charge(payment, ledger_for(deps, payment)))
    if result is not None and payment.off_session and result.status is PaymentStatus.REQUIRES_ACTION:
        # Nobody is there to act: give it up at the method and record why.
        ask(
            method,
            payment,
            "cancel",
            lambda: method.cancel(payment, result.reference, ledger_for(deps, payment)),
        )
        return PaymentResult(
            PaymentStatus.FAILED,
            reference=result.reference,
            failure=FailureCode.AUTHENTICATION_REQUIRED,
            message="the payment asks for the customer's action, which a renewal cannot do",
        )
    return result


# ------------------------------------------------------------------ recording answers


def record(
    session: Session,
    workspace: Workspace,
    payment: Payment,
    result: PaymentResult,
    now: datetime,
    *,
    action_timeout: timedelta,
    settle_timeout: timedelta,
) -> PaymentStatus | None:
    """Move ``payment`` to where ``result`` says it stands; the new status, or None when the
    answer changes nothing (the same status again, or a transition the state machine forbids,
    e.g. an answer that arrives after the payment expired)."""
    current = PaymentStatus(payment.status)
    new = result.status
    paid = Money.from_minor_units(payment.amount_minor, payment.currency)
    if result.amount is not None and result.amount != paid:
        logger.error(
            "payment %s: %s reports %s paid, but the payment is for %s; not settled, an operator must look",
            payment.id,
            payment.method,
            result.amount,
            paid,
        )
        return None
    if result.reference:
        payment.reference = payment.reference or result.reference[:128]
    first_answer = payment.answered_at is None
    if first_answer:
        payment.answered_at = now
    if new is current:
        _waiting(payment, result, now, action_timeout, settle_timeout)
        payment.updated_at = now
        if first_answer and new is PaymentStatus.PENDING:  # recorded pending, now waiting for the money
            emit_payment_pending(session, workspace, payment, now)
        return None
    if new not in PAYMENT_TRANSITIONS[current]:
        logger.warning(
            "payment %s: %s answered %s, but it is %s; ignored", payment.id, payment.method, new, current
        )
        return None
    payment.status = new
    payment.updated_at = now
    if new is PaymentStatus.FAILED or new is PaymentStatus.EXPIRED:
        default = FailureCode.EXPIRED if new is PaymentStatus.EXPIRED else FailureCode.PROCESSING_ERROR
        payment.failure_code = (result.failure or default).value
        payment.failure_message = (result.message or _DEFAULT_MESSAGES[new])[:_MESSAGE]
        payment.expires_at = None
        emit_payment_failed(
            session, workspace, payment, payment.failure_code, now, expired=new is PaymentStatus.EXPIRED
        )
    elif new is PaymentStatus.SUCCEEDED:
        payment.expires_at = payment.next_action = None
    else:
        _waiting(payment, result, now, action_timeout, settle_timeout)
        if new is PaymentStatus.PENDING:
            emit_payment_pending(session, workspace, payment, now)
    return new


_DEFAULT_MESSAGES = {
    PaymentStatus.FAILED: "the payment failed",
    PaymentStatus.EXPIRED: "nobody completed the payment in time",
}


def _waiting(
    payment: Payment,
    result: PaymentResult,
    now: datetime,
    action_timeout: timedelta,
    settle_timeout: timedelta,
) -> None:
    """What a payment that waits keeps: the action or instructions, and when it expires (the
    method's own deadline, never later than the gateway's)."""
    if result.status is PaymentStatus.REQUIRES_ACTION:
        payment.next_action = (result.next_action or "")[:2048] or None
        limit = now + action_timeout
    elif result.status is PaymentStatus.PENDING:
        if result.instructions is not None:  # bounded: a plugin's answer is stored and shown as it is
            items = list(result.instructions.items())[:_MAX_INSTRUCTIONS]
            payment.instructions = {str(k)[:64]: str(v)[:500] for k, v in items}
        limit = now + settle_timeout
    else:
        return
    deadline = min(result.expires_at, limit) if result.expires_at is not None else limit
    if payment.expires_at is None:
        payment.expires_at = deadline


def emit_payment_failed(
    session: Session,
    workspace: Workspace,
    payment: Payment,
    failure_code: str | None,
    now: datetime,
    *,
    expired: bool = False,
) -> None:
    """``payment.failed`` (or ``payment.expired``) for a payment that did not go through, or
    whose refund failed."""
    emit(
        session,
        workspace,
        EventType.PAYMENT_EXPIRED if expired else EventType.PAYMENT_FAILED,
        {
            **payment_payload(payment),
            "failure_code": failure_code,
            "message": payment.failure_message,
        },
        now,
    )


def emit_payment_pending(session: Session, workspace: Workspace, payment: Payment, now: datetime) -> None:
    """``payment.pending``: the method waits for the money (a bank transfer): how to pay, and until when."""
    emit(
        session,
        workspace,
        EventType.PAYMENT_PENDING,
        {
            **payment_payload(payment),
            "reference": payment.reference,
            "instructions": payment.instructions or {},
            "expires_at": payment.expires_at.isoformat() if payment.expires_at else None,
        },
        now,
    )


def payment_payload(payment: Payment) -> dict[str, Any]:
    return {
        "payment_id": payment.id,
        "purpose": payment.purpose,
        "amount": str(Money.from_minor_units(payment.amount_minor, payment.currency).amount),
        "currency": payment.currency,
        "method": payment.method,
    }
