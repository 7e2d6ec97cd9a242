"""Pay from the workspace's prepaid balance ("My balance" on the Checkout page).

The balance is an append-only ledger kept by the gateway; this method only asks it
to debit or credit an amount. Each :class:`~gateway.plugin_api.Ledger` call is a short
transaction of its own that holds the workspace's lock, so two payments can never both
spend the same money, and entries are idempotent by key, so a retried charge (after a
crash, by the reconciliation run) never takes the money twice.
"""

from __future__ import annotations

from gateway.plugin_api import (
    Capability,
    ChargeRequest,
    FailureCode,
    Ledger,
    Money,
    PaymentResult,
    PaymentStatus,
    hookimpl,
)


def _not_charged(message: str, failure: FailureCode = FailureCode.PROCESSING_ERROR) -> PaymentResult:
    return PaymentResult(PaymentStatus.FAILED, failure=failure, message=message)


class BalancePaymentMethod:
    code = "balance"
    label = "My balance"
    capabilities = frozenset(
        {Capability.PAY_NOW, Capability.OFF_SESSION, Capability.REFUND, Capability.PREPAID_BALANCE}
    )

    def charge(self, request: ChargeRequest, ledger: Ledger) -> PaymentResult:
        entry = ledger.debit(request.amount, request.idempotency_key, request.description)
        if entry is None:
            return _not_charged(
                f"the balance of {ledger.balance()} does not cover {request.amount}",
                FailureCode.INSUFFICIENT_BALANCE,
            )
        return PaymentResult(PaymentStatus.SUCCEEDED, reference=entry)

    def status(self, request: ChargeRequest, reference: str | None, ledger: Ledger) -> PaymentResult:
        entry = ledger.entry(request.idempotency_key)
        if entry is None:
            return _not_charged("the balance was not charged")
        return PaymentResult(PaymentStatus.SUCCEEDED, reference=entry)

    def confirm(self, request: ChargeRequest, reference: str, response: str | None) -> PaymentResult:
        # Never called: the method does not declare CUSTOMER_ACTION. Answer as it stands.
        return _not_charged("balance payments need no confirmation")

    def cancel(self, request: ChargeRequest, reference: str | None, ledger: Ledger) -> PaymentResult:
        # A debit is immediate: there is nothing in flight to stop, only the outcome to report.
        return self.status(request, reference, ledger)

    def refund(
        self, request: ChargeRequest, reference: str, amount: Money, key: str, ledger: Ledger
    ) -> PaymentResult:
        if ledger.entry(request.idempotency_key) is None:
            # Nothing was taken for this payment: giving "back" would create money.
            return _not_charged("the balance was not charged for this payment, so nothing can be refunded")
        entry = ledger.credit(amount, key, f"Refund: {request.description}")
        return PaymentResult(PaymentStatus.SUCCEEDED, reference=entry)

    def __repr__(self) -> str:
        return "BalancePaymentMethod()"


@hookimpl
def register_payment_methods(register):
    register(BalancePaymentMethod())
