"""Checkout, 3-D Secure confirmation, saved cards and balance top-ups."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

import strawberry

from gateway.api import errors as e
from gateway.api import types as t
from gateway.api.common import Info, current_workspace, quote_of
from gateway.api.workspace import Workspace, invoice_of, saved_card
from gateway.plugin_api.payments import CardDetails
from gateway.services import billing_views as views
from gateway.services import checkout as co
from gateway.services import wallet
from gateway.services.confirmation import confirm_payment
from gateway.storage import idempotency

# ------------------------------------------------------------------ inputs


@strawberry.input(description="A card as typed by the customer. Sent once to the processor; never stored.")
class CardInput:
    number: str
    exp_month: int
    exp_year: int
    cvc: str
    holder_name: str | None = None

    def details(self) -> CardDetails:
        return CardDetails(self.number, self.exp_month, self.exp_year, self.cvc, self.holder_name)


@strawberry.input(description="How to pay: My balance, a saved card, or a new card (saved if asked).")
class PaymentMethodInput:
    method: str = strawberry.field(description='A payment method code: "balance" or "card".')
    card_id: strawberry.ID | None = None
    new_card: CardInput | None = None
    save_card: bool = False

    def choice(self) -> co.PaymentChoice:
        return co.PaymentChoice(
            self.method,
            str(self.card_id) if self.card_id is not None else None,
            self.new_card.details() if self.new_card is not None else None,
            self.save_card,
        )


@strawberry.input
class CheckoutInput:
    plan_code: str
    email_credits: int | None = None
    messaging_credits: int | None = None
    expected_total: Decimal = strawberry.field(
        description="The quote's `dueNow.total.amount` the customer saw."
    )
    quote_expires_at: datetime = strawberry.field(description="The quote's `expiresAt`.")
    payment_method: PaymentMethodInput
    idempotency_key: str = strawberry.field(description="Unique per checkout attempt; retries send the same.")


@strawberry.input
class TopUpInput:
    amount: Decimal
    payment_method: PaymentMethodInput
    idempotency_key: str


@strawberry.input
class AddCardInput:
    card: CardInput
    use_for_renewal: bool = False
    idempotency_key: str


# ------------------------------------------------------------------ results


@strawberry.type
class PaymentInfo:
    id: str
    method: str
    status: str
    amount: t.Money
    card: t.SavedCard | None


@strawberry.type(description="The plan change was paid for (or scheduled) and applied.")
class CheckoutSuccess:
    kind: t.ChangeKind
    workspace: Workspace
    invoice: t.Invoice | None = strawberry.field(description="Null when nothing was due now (a downgrade).")
    payment: PaymentInfo | None


@strawberry.type(description="The card needs 3-D Secure: let the customer authenticate, then confirmPayment.")
class PaymentActionRequired(e.UserError):
    payment_id: str
    next_action: str


@strawberry.type(description="The payment failed; nothing changed but the failed payment's record.")
class PaymentDeclined(e.UserError):
    payment_id: str
    decline_code: str


@strawberry.type(description="My balance does not cover what is due now; nothing changed.")
class InsufficientBalance(e.UserError):
    balance: t.Money
    required: t.Money
    shortfall: t.Money


@strawberry.type(description="The confirmed quote expired or its total changed: here is the new quote.")
class QuoteChanged(e.UserError):
    quote: t.Quote
    expected_total: Decimal


@strawberry.type(description="Checkout needs complete billing details (updateBillingDetails).")
class BillingDetailsIncomplete(e.UserError):
    missing_fields: list[str]


@strawberry.type(description="A request refused before anything was attempted.")
class PaymentRejected(e.UserError):
    pass


@strawberry.type(description="The card's balance top-up went through.")
class TopUpSuccess:
    amount: t.Money
    balance: t.Money
    payment: PaymentInfo


@strawberry.type
class CardAdded:
    card: t.SavedCard


CheckoutResult = Annotated[
    CheckoutSuccess
    | PaymentActionRequired
    | PaymentDeclined
    | InsufficientBalance
    | QuoteChanged
    | BillingDetailsIncomplete
    | PaymentRejected
    | e.UnknownPlan
    | e.PlanNotPurchasable
    | e.PlanNotAdjustable
    | e.InvalidVolume
    | e.InvalidVatId
    | e.AuthenticationRequired,
    strawberry.union("CheckoutResult"),
]
ConfirmPaymentResult = Annotated[
    CheckoutSuccess | TopUpSuccess | PaymentDeclined | PaymentRejected | e.AuthenticationRequired,
    strawberry.union("ConfirmPaymentResult"),
]
TopUpResult = Annotated[
    TopUpSuccess | PaymentActionRequired | PaymentDeclined | PaymentRejected | e.AuthenticationRequired,
    strawberry.union("TopUpResult"),
]
AddCardResult = Annotated[
    CardAdded | PaymentRejected | e.AuthenticationRequired, strawberry.union("AddCardResult")
]
RemoveCardResult = Annotated[
    Workspace | PaymentRejected | e.AuthenticationRequired, strawberry.union("RemoveCardResult")
]


def _keyed(info: Info, key: str, call: Callable[[str], Any]) -> tuple[Any, e.UserError | None]:
    """Authenticate and check the idempotency key, then run ``call(workspace_id)``, which
    works in transactions of its own. Returns (outcome, None) or (None, the typed error)."""
    row = current_workspace(info)
    if row is None:
        return None, e.authentication_required(info.context.credentials_given)
    if (problem := idempotency.key_problem(key)) is not None:
        return None, PaymentRejected(
            code=e.ErrorCode.INVALID_IDEMPOTENCY_KEY, field=["idempotencyKey"], message=problem
        )
    info.context.close()  # don't hold a read transaction open while the work runs
    try:
        return call(row.id), None
    except (idempotency.IdempotencyKeyReused, idempotency.IdempotencyKeyInProgress) as error:
        return None, _idempotency_error(error, ["idempotencyKey"])


def _payment_failure(outcome: Any) -> e.UserError:
    """The typed error of a payment that did not go through, or of a refused request."""
    if isinstance(outcome, co.PaymentFailed):
        return _declined(outcome)
    if isinstance(outcome, co.ActionRequired):
        return _action(outcome)
    assert isinstance(outcome, co.Rejected), outcome
    return _rejected(outcome)


def _payment_info(payment: views.PaymentView, workspace: views.WorkspaceView) -> PaymentInfo:
    return PaymentInfo(
        id=payment.id,
        method=payment.method,
        status=payment.status,
        amount=t.Money.of(payment.amount),
        card=saved_card(payment.card, workspace) if payment.card is not None else None,
    )


def _rejected(outcome: co.Rejected, plan_code: str = "") -> e.UserError:
    error = outcome.error
    from gateway.core import pricing
    from gateway.core.tax import InvalidTaxId

    if isinstance(error, pricing.PricingError):
        return e.from_pricing_error(error)
    if isinstance(error, InvalidTaxId):
        return e.InvalidVatId(
            code=e.ErrorCode.INVALID_VAT_ID,
            message=str(error),
            field=list(outcome.field),
            vat_id=error.tax_id,
        )
    if outcome.code == "UNKNOWN_PLAN":
        return e.UnknownPlan(
            code=e.ErrorCode.UNKNOWN_PLAN,
            message=outcome.message,
            field=list(outcome.field),
            plan_code=plan_code,
        )
    if outcome.code == "BILLING_DETAILS_INCOMPLETE":
        return BillingDetailsIncomplete(
            code=e.ErrorCode.BILLING_DETAILS_INCOMPLETE,
            message=outcome.message,
            field=list(outcome.field),
            missing_fields=list(outcome.missing),
        )
    return PaymentRejected(code=e.ErrorCode[outcome.code], message=outcome.message, field=list(outcome.field))


def _idempotency_error(error: Exception, path: list[str]) -> PaymentRejected:
    code = (
        e.ErrorCode.IDEMPOTENCY_KEY_REUSED
        if isinstance(error, idempotency.IdempotencyKeyReused)
        else e.ErrorCode.IDEMPOTENCY_KEY_IN_PROGRESS
    )
    return PaymentRejected(code=code, message=str(error), field=path)


def _success(info: Info, outcome: co.Completed) -> CheckoutSuccess:
    session = info.context.session
    session.expire_all()  # the work ran in its own transaction: read what it committed
    row = current_workspace(info)
    assert row is not None
    payment = views.payment(session, outcome.payment_id) if outcome.payment_id else None
    invoice = views.invoice(session, outcome.invoice_id) if outcome.invoice_id else None
    return CheckoutSuccess(
        kind=outcome.kind,
        workspace=Workspace.of(info, row),
        invoice=invoice_of(invoice) if invoice else None,
        payment=_payment_info(payment, row) if payment else None,
    )


def _declined(outcome: co.PaymentFailed) -> PaymentDeclined:
    return PaymentDeclined(
        code=e.ErrorCode.PAYMENT_DECLINED,
        message=outcome.message,
        field=["paymentMethod"],
        payment_id=outcome.payment_id,
        decline_code=outcome.failure.value,
    )


def _action(outcome: co.ActionRequired) -> PaymentActionRequired:
    return PaymentActionRequired(
        code=e.ErrorCode.PAYMENT_ACTION_REQUIRED,
        field=["paymentMethod"],
        message="the card issuer asks the customer to authenticate the payment",
        payment_id=outcome.payment_id,
        next_action=outcome.next_action,
    )


def _topped_up(info: Info, outcome: wallet.ToppedUp) -> TopUpSuccess:
    session = info.context.session
    session.expire_all()
    row = current_workspace(info)
    assert row is not None
    payment = views.payment(session, outcome.payment_id)
    assert payment is not None
    return TopUpSuccess(
        amount=t.Money.of(outcome.amount),
        balance=t.Money.of(row.balance),
        payment=_payment_info(payment, row),
    )


@strawberry.type
class PaymentsMutation:
    @strawberry.mutation(
        description=(
            "Checkout Now: re-prices the confirmed quote and, if its total still holds, charges it, applies or "
            "schedules the change, records the invoice and the events, in one transaction. Idempotent per key."
        )
    )
    def checkout(self, info: Info, input: CheckoutInput) -> CheckoutResult:
        request = co.CheckoutRequest(
            input.plan_code,
            input.email_credits,
            input.messaging_credits,
            input.expected_total,
            input.quote_expires_at,
            input.payment_method.choice(),
            input.idempotency_key,
        )
        outcome, error = _keyed(
            info,
            input.idempotency_key,
            lambda workspace_id: co.checkout(info.context.gateway, workspace_id, request),
        )
        if error is not None:
            return error
        if isinstance(outcome, co.Completed):
            return _success(info, outcome)
        if isinstance(outcome, co.InsufficientBalance):
            return InsufficientBalance(
                code=e.ErrorCode.INSUFFICIENT_BALANCE,
                field=["paymentMethod"],
                message=f"the balance of {outcome.balance} does not cover {outcome.required}",
                balance=t.Money.of(outcome.balance),
                required=t.Money.of(outcome.required),
                shortfall=t.Money.of(outcome.shortfall),
            )
        if isinstance(outcome, co.QuoteMismatch):
            code = e.ErrorCode.QUOTE_EXPIRED if outcome.expired else e.ErrorCode.QUOTE_CHANGED
            message = (
                "the quote expired; confirm the new one"
                if outcome.expired
                else f"the total is now {outcome.order.due_now.total}; confirm the new quote"
            )
            fresh = current_workspace(info)
            assert fresh is not None
            return QuoteChanged(
                code=code,
                message=message,
                field=["quoteExpiresAt"] if outcome.expired else ["expectedTotal"],
                quote=quote_of(info, outcome.order, fresh),
                expected_total=input.expected_total,
            )
        if isinstance(outcome, co.Rejected):
            return _rejected(outcome, input.plan_code)
        return _payment_failure(outcome)

    @strawberry.mutation(description="Finish a payment that answered PaymentActionRequired (3-D Secure).")
    def confirm_payment(
        self, info: Info, payment_id: strawberry.ID, challenge_response: str | None = None
    ) -> ConfirmPaymentResult:
        row = current_workspace(info)
        if row is None:
            return e.authentication_required(info.context.credentials_given)
        info.context.close()
        outcome = confirm_payment(info.context.gateway, row.id, str(payment_id), challenge_response)
        if isinstance(outcome, co.Completed):
            return _success(info, outcome)
        if isinstance(outcome, wallet.ToppedUp):
            return _topped_up(info, outcome)
        if isinstance(outcome, co.PaymentFailed):
            return _declined(outcome)
        assert isinstance(outcome, co.Rejected)
        return _rejected(outcome)

    @strawberry.mutation(description="Add money to My balance, paid by card. Idempotent per key.")
    def top_up_balance(self, info: Info, input: TopUpInput) -> TopUpResult:
        outcome, error = _keyed(
            info,
            input.idempotency_key,
            lambda workspace_id: wallet.top_up(
                info.context.gateway,
                workspace_id,
                input.amount,
                input.payment_method.choice(),
                input.idempotency_key,
            ),
        )
        if error is not None:
            return error
        if isinstance(outcome, wallet.ToppedUp):
            return _topped_up(info, outcome)
        return _payment_failure(outcome)

    @strawberry.mutation(
        description="Save a card for checkout and renewals. Only a token and what identifies "
        "the card to a person are stored. Idempotent per key."
    )
    def add_card(self, info: Info, input: AddCardInput) -> AddCardResult:
        outcome, error = _keyed(
            info,
            input.idempotency_key,
            lambda workspace_id: wallet.add_card(
                info.context.gateway,
                workspace_id,
                input.card.details(),
                input.idempotency_key,
                input.use_for_renewal,
            ),
        )
        if error is not None:
            return error
        if isinstance(outcome, co.Rejected):
            return _rejected(outcome)
        workspace = current_workspace(info)
        assert workspace is not None
        return CardAdded(card=saved_card(views.card(info.context.session, outcome.card_id), workspace))

    @strawberry.mutation(description="Remove a saved card.")
    def remove_card(self, info: Info, card_id: strawberry.ID) -> RemoveCardResult:
        row = current_workspace(info)
        if row is None:
            return e.authentication_required(info.context.credentials_given)
        info.context.close()
        if not wallet.remove_card(info.context.gateway, row.id, str(card_id)):
            return PaymentRejected(
                code=e.ErrorCode.UNKNOWN_CARD, message=f"no saved card {str(card_id)!r}", field=["cardId"]
            )
        return Workspace.of(info, views.workspace(info.context.session, row.id))
