"""Pay by invoice: the customer transfers the money within 30 days, quoting the invoice number.

The method moves no money itself: ``charge`` answers PENDING with payment instructions, and
the payment settles when an operator sees the money arrive (``billing-gateway payments
mark-paid``) or expires, when the gateway cancels it. Everything it answers is computed
from the request, so it keeps no state and every call is idempotent.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from gateway.plugin_api import (
    Capability,
    ChargeRequest,
    FailureCode,
    Ledger,
    Money,
    PaymentMethod,
    PaymentResult,
    PaymentStatus,
    hookimpl,
)

PAY_TO = "Acme GmbH, IBAN DE89 3704 0044 0532 0130 00"
TERM = timedelta(days=30)


class InvoicePaymentMethod:
    code = "invoice"
    label = "Pay by invoice"
    capabilities = frozenset({Capability.SETTLE_LATER})

    def charge(self, request: ChargeRequest, ledger: Ledger) -> PaymentResult:
        return self._waiting(request)

    def status(self, request: ChargeRequest, reference: str | None, ledger: Ledger) -> PaymentResult:
        # Only an operator knows whether the money arrived: the payment waits until then.
        return self._waiting(request)

    def confirm(self, request: ChargeRequest, reference: str, response: str | None) -> PaymentResult:
        # Never called: the method does not declare CUSTOMER_ACTION.
        return PaymentResult(PaymentStatus.FAILED, failure=FailureCode.PROCESSING_ERROR)

    def cancel(self, request: ChargeRequest, reference: str | None, ledger: Ledger) -> PaymentResult:
        return PaymentResult(
            PaymentStatus.FAILED,
            reference=_invoice_number(request),
            failure=FailureCode.CANCELED,
            message="The invoice was not paid in time.",
        )

    def refund(
        self, request: ChargeRequest, reference: str, amount: Money, key: str, ledger: Ledger
    ) -> PaymentResult:
        # Never called: the method does not declare REFUND.
        return PaymentResult(PaymentStatus.FAILED, failure=FailureCode.PROCESSING_ERROR)

    def _waiting(self, request: ChargeRequest) -> PaymentResult:
        number = _invoice_number(request)
        due = request.requested_at + TERM
        return PaymentResult(
            PaymentStatus.PENDING,
            reference=number,
            instructions={
                "pay_to": PAY_TO,
                "amount": f"{request.amount.amount} {request.amount.currency}",
                "reference": number,
                "due": due.date().isoformat(),
            },
            expires_at=due,
        )


def _invoice_number(request: ChargeRequest) -> str:
    return f"INV-{request.payment_id[:12].upper()}"


@hookimpl
def register_payment_methods(register: Callable[[PaymentMethod], None]) -> None:
    register(InvoicePaymentMethod())
