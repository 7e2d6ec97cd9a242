"""Finishing payments that asked the customer to act (3-D Secure): checkouts and top-ups."""

from __future__ import annotations

import dataclasses

from gateway.core.errors import ErrorCode, PaymentRefused
from gateway.core.statuses import PaymentPurpose, PaymentStatus
from gateway.plugin_api.payments import FailureCode
from gateway.services import payflow, settlement
from gateway.services.deps import Deps
from gateway.services.settlement import PaymentOutcome
from gateway.storage.db import Payment


def confirm_payment(
    deps: Deps, workspace_id: str, payment_id: str, challenge_response: str | None
) -> PaymentOutcome:
    """Finish a checkout or top-up whose payment asked for an action (3-D Secure).

    The method is asked outside any transaction; its answer is applied as any other (see
    :func:`gateway.services.settlement.settle`): a checkout's order is priced again exactly
    as it was at checkout and applied, or refunded if the subscription changed meanwhile.
    A payment past its expiry is cancelled instead. Confirming again answers the same.
    """
    with deps.sessions() as session:
        payment = session.get(Payment, payment_id)
        if (
            payment is None
            or payment.workspace_id != workspace_id
            or payment.purpose not in (PaymentPurpose.CHECKOUT, PaymentPurpose.TOP_UP, PaymentPurpose.INVOICE)
        ):
            raise PaymentRefused(
                ErrorCode.UNKNOWN_PAYMENT, f"no payment {payment_id!r} to confirm", ("payment_id",)
            )
        if payment.status != PaymentStatus.REQUIRES_ACTION:
            return settlement.outcome_of(session, payment)
        method = deps.payment_methods.get(payment.method)
        if method is None:
            raise PaymentRefused(
                ErrorCode.UNKNOWN_PAYMENT_METHOD,
                f"the payment method {payment.method!r} is not installed",
                ("payment_id",),
            )
        request, reference, expires_at = payflow.request_of(payment), payment.reference, payment.expires_at
    if expires_at is not None and expires_at <= deps.clock():
        return settlement.expire(deps, payment_id, method, request, reference, PaymentStatus.REQUIRES_ACTION)
    assert reference is not None, "a payment that asked for an action has the method's reference"
    result = payflow.ask(
        method, request, "confirm", lambda: method.confirm(request, reference, challenge_response)
    )
    if result is not None and result.status is PaymentStatus.FAILED and result.failure is None:
        result = dataclasses.replace(
            result,
            failure=FailureCode.AUTHENTICATION_FAILED,
            message=result.message or "the payment was not authenticated",
        )
    return settlement.settle(deps, payment_id, result)
