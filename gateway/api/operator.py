"""The operators' fields: reached only with an operator key, never with a workspace's API key."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Annotated, TypeAlias

import strawberry

from gateway.api import errors as e
from gateway.api import types as t
from gateway.api.common import Info
from gateway.core import statuses
from gateway.services import refunds
from gateway.services.keys import OperatorCaller

logger = logging.getLogger("gateway.operator")  # who refunded what: one line per refund asked

RefundDestination: TypeAlias = statuses.RefundDestination
t.graphql_enum(
    statuses.RefundDestination,
    {
        statuses.RefundDestination.METHOD: "Back through the payment method that took the money (to the card), "
        "when it can refund.",
        statuses.RefundDestination.BALANCE: "Onto the workspace's prepaid balance, as a ledger entry.",
    },
    description="Where a refund goes.",
)
RefundStatus: TypeAlias = statuses.RefundStatus
t.graphql_enum(
    statuses.RefundStatus,
    {
        statuses.RefundStatus.PENDING: "The payment method has not answered; the same request again (same "
        "idempotency key) finishes it.",
        statuses.RefundStatus.SUCCEEDED: "The money is given back.",
        statuses.RefundStatus.FAILED: "The payment method refused it.",
    },
    description="Where a refund stands.",
)


@strawberry.input(description="A refund of a succeeded payment, in full or in part.")
class RefundPaymentInput:
    payment_id: strawberry.ID = strawberry.field(description="The payment to refund.")
    amount: Decimal | None = strawberry.field(
        default=None,
        description='How much, in the payment\'s currency (e.g. "10.00"); left out: all that is left.',
    )
    destination: RefundDestination = strawberry.field(description="Where the money goes.")
    reason: str = strawberry.field(
        description=f"Why; printed on the credit note. At most {refunds.MAX_REASON} characters."
    )
    idempotency_key: str = strawberry.field(
        description=f"Unique per refund, at most {refunds.MAX_KEY} characters: the same key again answers "
        "the same refund and never refunds twice; with another amount or destination it is refused."
    )


@strawberry.type(description="A refund, as it stands after the request.")
class Refund:
    id: strawberry.ID = strawberry.field(description="The refund's id.")
    payment_id: strawberry.ID = strawberry.field(description="The payment it gives back (part of).")
    amount: t.Money = strawberry.field(description="How much this refund gives back.")
    destination: RefundDestination = strawberry.field(description="Where the money goes.")
    status: RefundStatus = strawberry.field(description="Where the refund stands.")
    failure_message: str | None = strawberry.field(description="Why the payment method refused it (FAILED).")
    credit_note_id: strawberry.ID | None = strawberry.field(
        description="The credit note (an invoice of kind CREDIT_NOTE) once it succeeded; null when the "
        "payment had no invoice (a top-up)."
    )
    credit_note_number: str | None = strawberry.field(description="Its number, e.g. CN-2026-000001.")

    @classmethod
    def of(cls, outcome: refunds.RefundOutcome) -> Refund:
        return cls(
            id=strawberry.ID(outcome.refund_id),
            payment_id=strawberry.ID(outcome.payment_id),
            amount=t.Money.of(outcome.amount),
            destination=statuses.RefundDestination(outcome.destination),
            status=statuses.RefundStatus(outcome.status),
            failure_message=outcome.message,
            credit_note_id=strawberry.ID(outcome.credit_note_id) if outcome.credit_note_id else None,
            credit_note_number=outcome.credit_note_number,
        )


RefundPaymentResult = Annotated[
    Refund
    | e.RefundExceedsPayment
    | e.PaymentRejected
    | e.TextTooLong
    | e.IdempotencyKeyRejected
    | e.OperatorKeyRequired,
    strawberry.union(
        "RefundPaymentResult",
        description="The refund, or why none was made (OperatorKeyRequired without an operator key).",
    ),
]


@strawberry.type
class OperatorMutation:
    @strawberry.mutation(
        description="Operators only (an operator key): refund a succeeded payment in full or in part, to its "
        "payment method or to the workspace's balance, with a credit note and a `payment.refunded` event. "
        "The refunds of a payment never add up to more than it paid, also when several run at once. "
        "PaymentRejected codes: UNKNOWN_PAYMENT, PAYMENT_NOT_REFUNDABLE (not succeeded, already refunded, "
        "or a method that cannot refund), INVALID_AMOUNT."
    )
    def refund_payment(
        self,
        info: Info,
        input: Annotated[
            RefundPaymentInput, strawberry.argument(description="The payment, amount and destination.")
        ],
    ) -> RefundPaymentResult:
        def work(operator: OperatorCaller) -> Refund:
            logger.info(
                "operator key %s refunds payment %s (%s, key %r)",
                operator.prefix,
                input.payment_id,
                input.amount if input.amount is not None else "all that is left",
                input.idempotency_key,
            )
            outcome = refunds.refund_payment(
                info.context.gateway,
                str(input.payment_id),
                input.amount,
                input.destination,
                input.reason,
                input.idempotency_key,
            )
            return Refund.of(outcome)

        return e.as_operator(info, work)
