"""Finishing payments that asked for an action (3-D Secure): checkouts and top-ups."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.core import pricing
from gateway.core.errors import DomainError, ErrorCode, PaymentDeclined, PaymentRefused
from gateway.core.money import Money
from gateway.core.statuses import PaymentPurpose, PaymentStatus
from gateway.plugin_api.payments import FailureCode
from gateway.services import billing_details
from gateway.services.cards import save_pending_card
from gateway.services.charging import credit_top_up, emit_payment_failed
from gateway.services.checkout import Completed
from gateway.services.deps import Deps
from gateway.services.orders import OrderRequest, apply_order, base_snapshot, plan_to_buy, price_for_workspace
from gateway.services.wallet import ToppedUp
from gateway.storage.db import BillingDetails, Card, Invoice, Payment, Workspace
from gateway.storage.ledger import SqlLedger
from gateway.storage.locks import lock_workspace


def confirm_payment(
    deps: Deps, workspace_id: str, payment_id: str, challenge_response: str | None
) -> Completed | ToppedUp | PaymentDeclined | PaymentRefused:
    """Finish a checkout or top-up whose payment asked for an action (3-D Secure).

    A checkout's order is priced again exactly as it was at checkout (the core is
    pure: same inputs and the same ``now`` give the same order), then applied as
    if the payment had succeeded straight away. If the subscription changed in
    the meantime, the payment is refunded and the order is not applied.
    Confirming again answers the same.
    """
    with deps.write_sessions.begin() as session:
        workspace = lock_workspace(session, workspace_id)
        assert workspace is not None, "authenticated workspaces exist"
        payment = session.get(Payment, payment_id)
        if (
            payment is None
            or payment.workspace_id != workspace_id
            or payment.purpose not in (PaymentPurpose.CHECKOUT, PaymentPurpose.TOP_UP)
        ):
            raise PaymentRefused(
                ErrorCode.UNKNOWN_PAYMENT, f"no payment {payment_id!r} to confirm", ("payment_id",)
            )
        amount = Money.from_minor_units(payment.amount_minor, payment.currency)
        if payment.status == PaymentStatus.SUCCEEDED:  # confirmed before: answer the same
            if payment.purpose == PaymentPurpose.TOP_UP:
                return ToppedUp(payment.id, amount)
            invoice_id = session.scalar(select(Invoice.id).where(Invoice.payment_id == payment.id))
            kind = pricing.ChangeKind((payment.pending or {})["order"]["kind"])
            return Completed(kind, invoice_id, payment.id)
        if payment.status in (PaymentStatus.REFUNDED, PaymentStatus.REFUND_FAILED):
            return _superseded(payment.failure_message or "refunded")
        if payment.status != PaymentStatus.REQUIRES_ACTION:
            return PaymentDeclined(
                payment.id,
                payment.failure_code or FailureCode.PROCESSING_ERROR.value,
                payment.failure_message or "the payment failed",
            )
        now = deps.clock()
        method = deps.payment_methods.get(payment.method)
        if method is None:
            raise PaymentRefused(
                ErrorCode.UNKNOWN_PAYMENT_METHOD,
                f"the payment method {payment.method!r} is not installed",
                ("payment_id",),
            )
        reference = payment.reference
        assert reference is not None, "a payment that asked for an action has the method's reference"
        result = method.confirm(reference, challenge_response)
        payment.updated_at = now
        if result.status is not PaymentStatus.SUCCEEDED:
            payment.status = PaymentStatus.FAILED
            payment.failure_code = (result.failure or FailureCode.AUTHENTICATION_FAILED).value
            payment.failure_message = (result.message or "the payment was not authenticated")[:200]
            emit_payment_failed(session, workspace, payment, payment.failure_code, now)
            return PaymentDeclined(payment.id, payment.failure_code, payment.failure_message)
        payment.status = PaymentStatus.SUCCEEDED
        if payment.purpose == PaymentPurpose.TOP_UP:
            save_pending_card(session, workspace, payment, now)
            credit_top_up(session, workspace, payment, now)
            return ToppedUp(payment.id, amount)
        order = _reprice_pending(deps, session, workspace, payment)
        if order is None:
            refund = method.refund(reference, amount, SqlLedger(session, workspace, now))
            refunded = refund.status is PaymentStatus.SUCCEEDED
            # Never left "succeeded": that would read as a completed checkout on the next confirm.
            payment.status = PaymentStatus.REFUNDED if refunded else PaymentStatus.REFUND_FAILED
            payment.failure_message = "the subscription changed before the payment was confirmed; " + (
                "refunded" if refunded else "the refund failed and needs an operator"
            )
            if not refunded:
                emit_payment_failed(session, workspace, payment, PaymentStatus.REFUND_FAILED.value, now)
            return _superseded(payment.failure_message)
        details = session.get(BillingDetails, workspace.id)
        card_row = session.get(Card, payment.card_id) if payment.card_id else None
        if card_row is None:
            card_row = save_pending_card(session, workspace, payment, now)
        invoice_id = apply_order(
            session,
            workspace,
            order,
            payment,
            card_row,
            details,
            now,
            target_description=pricing.describe(order.target),
        )
        return Completed(order.kind, invoice_id, payment.id)


def _superseded(message: str) -> PaymentRefused:
    """The order paid for no longer applies: the payment was refunded (a recorded outcome,
    so returned rather than raised: the refund's record must commit)."""
    return PaymentRefused(ErrorCode.ORDER_SUPERSEDED, message, ("payment_id",))


def _reprice_pending(
    deps: Deps, session: Session, workspace: Workspace, payment: Payment
) -> pricing.PricedOrder | None:
    """The paid order, priced again as at checkout; None if it no longer applies."""
    pending = payment.pending or {}
    base, target = pending.get("base", {}), pending.get("order", {}).get("target", {})
    if base != base_snapshot(workspace):
        return None
    details = session.get(BillingDetails, workspace.id)
    request = OrderRequest(
        target.get("plan", ""), target.get("email_credits"), target.get("messaging_credits")
    )
    try:
        plan = plan_to_buy(deps, request.plan_code)
        order = price_for_workspace(
            deps, workspace, plan, request, billing_details.tax_customer(details), payment.created_at
        )
    except DomainError:  # the plan or its limits are gone, or the VAT ID no longer checks out
        return None
    if order.due_now.total.minor_units != payment.amount_minor:
        return None
    return order
