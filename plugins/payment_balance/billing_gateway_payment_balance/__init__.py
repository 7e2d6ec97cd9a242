"""Pay from the workspace's prepaid balance ("My balance" on the Checkout page).

The balance is an append-only ledger kept by the gateway; this method decides
whether a charge fits and appends the entry. The gateway holds the workspace's
lock while it runs, so two checkouts can never both spend the same money.
"""

from __future__ import annotations

from gateway.plugin_api import (
    ChargeRequest,
    FailureCode,
    Ledger,
    LedgerEntryKind,
    Money,
    PaymentKind,
    PaymentResult,
    PaymentStatus,
    hookimpl,
)


class BalancePaymentMethod:
    code = "balance"
    label = "My balance"
    kind = PaymentKind.BALANCE

    def charge(self, request: ChargeRequest, ledger: Ledger) -> PaymentResult:
        balance = ledger.balance()
        if balance < request.amount:
            return PaymentResult(
                PaymentStatus.FAILED,
                failure=FailureCode.INSUFFICIENT_BALANCE,
                message=f"the balance of {balance} does not cover {request.amount}",
            )
        entry = ledger.append(
            LedgerEntryKind.CHARGE, -request.amount, request.idempotency_key, request.description
        )
        return PaymentResult(PaymentStatus.SUCCEEDED, reference=entry)

    def confirm(self, reference: str, challenge_response: str | None) -> PaymentResult:
        # Balance payments never ask for an action, so there is nothing to confirm.
        return PaymentResult(
            PaymentStatus.FAILED,
            reference=reference,
            failure=FailureCode.PROCESSING_ERROR,
            message="balance payments need no confirmation",
        )

    def refund(self, reference: str, amount: Money, ledger: Ledger) -> PaymentResult:
        entry = ledger.append(LedgerEntryKind.REFUND, amount, reference, f"Refund of {reference}")
        return PaymentResult(PaymentStatus.SUCCEEDED, reference=entry)


@hookimpl
def register_payment_methods(register):
    register(BalancePaymentMethod())
