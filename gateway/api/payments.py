"""Checkout, 3-D Secure confirmation, saved cards and balance top-ups."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

import strawberry

from gateway.api import errors as e
from gateway.api import types as t
from gateway.api.common import Info, current_workspace
from gateway.api.workspace import Workspace, invoice_of, renewal_payment_of, saved_card
from gateway.core.errors import DomainError
from gateway.plugin_api.payments import CardDetails
from gateway.services import billing_views as views
from gateway.services import checkout as co
from gateway.services import renewal_method, wallet
from gateway.services.confirmation import confirm_payment
from gateway.services.dunning import pay_invoice
from gateway.services.settlement import InvoicePaid as InvoicePaidOutcome

# ------------------------------------------------------------------ inputs


@strawberry.input(description="A card as typed by the customer. Sent once to the processor; never stored.")
class CardInput:
    number: str = strawberry.field(
        description="The card number as typed; spaces and dashes are ignored. Never stored or logged."
    )
    exp_month: int = strawberry.field(description="The expiry month, 1-12.")
    exp_year: int = strawberry.field(description="The expiry year: four digits, or two (28 means 2028).")
    cvc: str = strawberry.field(description="The security code on the card. Never stored or logged.")
    holder_name: str | None = strawberry.field(
        default=None, description="The name on the card, if the customer gave it."
    )

    def details(self) -> CardDetails:
        return CardDetails(self.number, self.exp_month, self.exp_year, self.cvc, self.holder_name)


@strawberry.input(
    description="How to pay: My balance, a saved card, a new card (saved if asked), or any other installed method."
)
class PaymentMethodInput:
    method: str = strawberry.field(
        description='A payment method code from `paymentMethods`: "balance", "card", or one a plugin adds.'
    )
    card_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="A saved card's `id`, for a method with the CARDS capability; give this or newCard.",
    )
    new_card: CardInput | None = strawberry.field(
        default=None,
        description="A card typed now, for a method with the CARDS capability; give this or cardId.",
    )
    save_card: bool = strawberry.field(
        default=False,
        description="With newCard: save the card for later payments (it then appears in `cards`).",
    )

    def choice(self) -> co.PaymentChoice:
        return co.PaymentChoice(
            self.method,
            str(self.card_id) if self.card_id is not None else None,
            self.new_card.details() if self.new_card is not None else None,
            self.save_card,
        )


_INSTEAD_OF_TOKEN = "Send `quoteToken` instead: it binds the quote's inputs, total and expiry."


@strawberry.input(
    description="The confirmed quote, as `quoteToken` (recommended), or as its inputs sent back "
    "(`planCode`, the credits, `expectedTotal`, `quoteExpiresAt`); not both."
)
class CheckoutInput:
    plan_code: str | None = strawberry.field(
        default=None, description="The quote's plan code.", deprecation_reason=_INSTEAD_OF_TOKEN
    )
    email_credits: int | None = strawberry.field(
        default=None, description="The quote's Email credit limit.", deprecation_reason=_INSTEAD_OF_TOKEN
    )
    messaging_credits: int | None = strawberry.field(
        default=None,
        description="The quote's SMS/WhatsApp credit limit.",
        deprecation_reason=_INSTEAD_OF_TOKEN,
    )
    expected_total: Decimal | None = strawberry.field(
        default=None,
        description="The quote's `dueNow.total.amount` the customer saw.",
        deprecation_reason=_INSTEAD_OF_TOKEN,
    )
    quote_expires_at: datetime | None = strawberry.field(
        default=None,
        description="The quote's `expiresAt`; refused if later than 30 minutes from now, the longest a "
        "quote holds (only a token proves when a quote was made).",
        deprecation_reason=_INSTEAD_OF_TOKEN,
    )
    payment_method: PaymentMethodInput = strawberry.field(description="How to pay what is due now.")
    idempotency_key: str = strawberry.field(description="Unique per checkout attempt; retries send the same.")
    quote_token: str | None = strawberry.field(
        default=None,
        description="The confirmed quote's `token`: checkout buys what it signs if it has not expired "
        "and its total is still the price (else QuoteChanged with the new quote).",
    )


@strawberry.input(description="Money to add to My balance, and how to pay it.")
class TopUpInput:
    amount: Decimal = strawberry.field(
        description="In major units of the catalog's currency, e.g. \"50.00\"; within the operator's top-up "
        "limits and with no more decimals than the currency has (else INVALID_AMOUNT)."
    )
    payment_method: PaymentMethodInput = strawberry.field(description="How to pay; not My balance itself.")
    idempotency_key: str = strawberry.field(
        description="Unique per top-up attempt; retries send the same and never charge twice."
    )


@strawberry.input(description="The method that pays renewals, with the customer away.")
class SetDefaultPaymentMethodInput:
    method: str = strawberry.field(
        description="A payment method code from `paymentMethods` with the OFF_SESSION capability."
    )
    card_id: strawberry.ID | None = strawberry.field(
        default=None, description="One of `cards`: required for a method with CARDS, refused for others."
    )


@strawberry.input(description="A card to save for checkout and renewals.")
class AddCardInput:
    card: CardInput = strawberry.field(description="The card as typed.")
    use_for_renewal: bool = strawberry.field(
        default=False, description="Also make it the card that pays renewals."
    )
    idempotency_key: str = strawberry.field(
        description="Unique per attempt; retries send the same and save the card once."
    )


# ------------------------------------------------------------------ results


@strawberry.type(description="A payment as an operation's answer shows it.")
class PaymentInfo:
    id: strawberry.ID = strawberry.field(description="Identifies the payment, as in `workspace.payments`.")
    method: str = strawberry.field(description='The payment method code: "balance", "card", or a plugin\'s.')
    status: str = strawberry.field(
        description="Where the payment stands, lower case: pending, requires_action, succeeded, failed, expired, "
        "refunded or refund_failed."
    )
    amount: t.Money = strawberry.field(description="What it charged, tax included.")
    card: t.SavedCard | None = strawberry.field(
        description="The saved card charged; null for other methods and unsaved cards."
    )


# Members of one result union (confirmPayment's) declare a shared field with one type: CheckoutSuccess's
# invoice and payment are null for a downgrade, so the others' are nullable too, though always set.
ALWAYS_SET = "Always set; nullable only as CheckoutSuccess's is (null there when nothing was paid)."


@strawberry.type(description="The plan change was paid for (or scheduled) and applied.")
class CheckoutSuccess:
    kind: t.ChangeKind = strawberry.field(description="How the plan change applied.")
    workspace: Workspace = strawberry.field(description="The workspace after the change.")
    invoice: t.Invoice | None = strawberry.field(description="Null when nothing was due now (a downgrade).")
    payment: PaymentInfo | None = strawberry.field(
        description="The payment of what was due now; null when nothing was due (a downgrade)."
    )

    @strawberry.field(
        description="How the next renewal will be paid, and whether it can be: the same as "
        "`workspace.renewalPayment`. A card used without saving it cannot pay renewals."
    )
    def renewal_payment(self, info: Info) -> t.RenewalPayment:
        # Worked out only when asked for: the Billing page asks for the workspace's instead.
        return renewal_payment_of(info, self.workspace.view)


@strawberry.type(description="The card's balance top-up went through.")
class TopUpSuccess:
    amount: t.Money = strawberry.field(description="The amount added.")
    balance: t.Money = strawberry.field(description="My balance after the top-up.")
    payment: PaymentInfo | None = strawberry.field(description=ALWAYS_SET)


@strawberry.type(
    description="The open invoice is paid; the workspace is active again once none is left open."
)
class InvoicePaid:
    invoice: t.Invoice | None = strawberry.field(description=ALWAYS_SET)
    workspace: Workspace = strawberry.field(description="The workspace after the payment.")
    payment: PaymentInfo | None = strawberry.field(description=ALWAYS_SET)


@strawberry.input(description="An open invoice to pay, and how.")
class PayInvoiceInput:
    invoice_id: strawberry.ID = strawberry.field(
        description="The open invoice's `id` (UNKNOWN_INVOICE or INVOICE_NOT_OPEN otherwise)."
    )
    payment_method: PaymentMethodInput = strawberry.field(
        description="How to pay it: any method, My balance included."
    )
    idempotency_key: str = strawberry.field(
        description="Unique per payment attempt; retries send the same and never charge twice."
    )


@strawberry.type(description="The card is saved.")
class CardAdded:
    card: t.SavedCard = strawberry.field(description="The saved card.")


CheckoutResult = Annotated[
    CheckoutSuccess
    | e.PaymentActionRequired
    | e.PaymentPending
    | e.PaymentDeclined
    | e.InsufficientBalance
    | e.QuoteChanged
    | e.InvalidQuoteToken
    | e.BillingDetailsIncomplete
    | e.PaymentRejected
    | e.UnknownPlan
    | e.PlanNotPurchasable
    | e.PlanNotAdjustable
    | e.InvalidVolume
    | e.InvalidVatId
    | e.RenewalPending
    | e.WorkspaceSuspended
    | e.IdempotencyKeyRejected
    | e.AuthenticationRequired
    | e.ScopeRequired,
    strawberry.union(
        "CheckoutResult",
        description="What checkout answers: CheckoutSuccess, a payment that waits (PaymentActionRequired, PaymentPending), or why nothing was bought.",
    ),
]
ConfirmPaymentResult = Annotated[
    CheckoutSuccess
    | TopUpSuccess
    | InvoicePaid
    | e.PaymentActionRequired
    | e.PaymentPending
    | e.PaymentDeclined
    | e.PaymentRejected
    | e.AuthenticationRequired
    | e.ScopeRequired,
    strawberry.union(
        "ConfirmPaymentResult",
        description="The outcome of the confirmed payment: the success of what it paid for (checkout, top-up or invoice), a payment still waiting, or why it failed.",
    ),
]
TopUpResult = Annotated[
    TopUpSuccess
    | e.PaymentActionRequired
    | e.PaymentPending
    | e.PaymentDeclined
    | e.PaymentRejected
    | e.IdempotencyKeyRejected
    | e.AuthenticationRequired
    | e.ScopeRequired,
    strawberry.union(
        "TopUpResult",
        description="TopUpSuccess, a payment that waits (PaymentActionRequired, PaymentPending), or why nothing was added.",
    ),
]
PayInvoiceResult = Annotated[
    InvoicePaid
    | e.PaymentActionRequired
    | e.PaymentPending
    | e.PaymentDeclined
    | e.InsufficientBalance
    | e.PaymentRejected
    | e.IdempotencyKeyRejected
    | e.AuthenticationRequired
    | e.ScopeRequired,
    strawberry.union(
        "PayInvoiceResult",
        description="InvoicePaid, a payment that waits (PaymentActionRequired, PaymentPending), or why the invoice is still open.",
    ),
]
AddCardResult = Annotated[
    CardAdded | e.PaymentRejected | e.IdempotencyKeyRejected | e.AuthenticationRequired | e.ScopeRequired,
    strawberry.union(
        "AddCardResult",
        description="CardAdded, or why the card was not saved (PaymentRejected with a CARD_ code).",
    ),
]
RemoveCardResult = Annotated[
    Workspace | e.PaymentRejected | e.AuthenticationRequired | e.ScopeRequired,
    strawberry.union(
        "RemoveCardResult",
        description="The workspace without the card, or PaymentRejected (UNKNOWN_CARD).",
    ),
]
SetDefaultPaymentMethodResult = Annotated[
    Workspace | e.PaymentRejected | e.AuthenticationRequired | e.ScopeRequired,
    strawberry.union(
        "SetDefaultPaymentMethodResult",
        description="The workspace with its new renewal method, or PaymentRejected saying why the choice was refused.",
    ),
]


def _payment_info(payment: views.PaymentView, workspace: views.WorkspaceView) -> PaymentInfo:
    return PaymentInfo(
        id=strawberry.ID(payment.id),
        method=payment.method,
        status=payment.status,
        amount=t.Money.of(payment.amount),
        card=saved_card(payment.card, workspace) if payment.card is not None else None,
    )


def _success(info: Info, outcome: co.Completed) -> CheckoutSuccess:
    session = info.context.session  # opened after the work committed (see errors.attempt)
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


def _topped_up(info: Info, outcome: wallet.ToppedUp) -> TopUpSuccess:
    session = info.context.session
    row = current_workspace(info)
    assert row is not None
    payment = views.payment(session, outcome.payment_id)
    assert payment is not None
    return TopUpSuccess(
        amount=t.Money.of(outcome.amount),
        balance=t.Money.of(row.balance),
        payment=_payment_info(payment, row),
    )


def _invoice_paid(info: Info, outcome: InvoicePaidOutcome) -> InvoicePaid:
    session = info.context.session
    row = current_workspace(info)
    assert row is not None
    payment = views.payment(session, outcome.payment_id)
    invoice = views.invoice(session, outcome.invoice_id)
    assert payment is not None and invoice is not None
    return InvoicePaid(
        invoice=invoice_of(invoice), workspace=Workspace.of(info, row), payment=_payment_info(payment, row)
    )


def _card_added(info: Info, added: wallet.CardAdded) -> CardAdded:
    workspace = current_workspace(info)
    card = views.card(info.context.session, added.card_id)
    assert workspace is not None and card is not None
    return CardAdded(card=saved_card(card, workspace))


@strawberry.type
class PaymentsMutation:
    @strawberry.mutation(
        description=(
            "Checkout Now: re-prices the confirmed quote and, if its total still holds, records the payment, "
            "asks the payment method, and once it succeeds applies or schedules the change with its invoice "
            "and events. A payment that waits answers PaymentActionRequired or PaymentPending. Idempotent per "
            "key: a retry answers where the payment stands now and never charges again."
        )
    )
    def checkout(
        self,
        info: Info,
        input: Annotated[
            CheckoutInput, strawberry.argument(description="The confirmed quote, how to pay, and the key.")
        ],
    ) -> CheckoutResult:
        request = co.CheckoutRequest(
            input.plan_code,
            input.email_credits,
            input.messaging_credits,
            input.expected_total,
            input.quote_expires_at,
            input.payment_method.choice(),
            input.idempotency_key,
            input.quote_token,
        )

        def work(workspace_id: str) -> CheckoutSuccess | DomainError:
            outcome = co.checkout(info.context.gateway, workspace_id, request)
            return _success(info, outcome) if isinstance(outcome, co.Completed) else outcome

        return e.signed_in(info, work)

    @strawberry.mutation(description="Finish a payment that answered PaymentActionRequired (3-D Secure).")
    def confirm_payment(
        self,
        info: Info,
        payment_id: Annotated[
            strawberry.ID,
            strawberry.argument(description="The `paymentId` of the PaymentActionRequired answer."),
        ],
        challenge_response: Annotated[
            str | None,
            strawberry.argument(
                description="What the customer's action returned, if the payment method needs it (e.g. a "
                "challenge result); null when the method checks with its processor itself."
            ),
        ] = None,
    ) -> ConfirmPaymentResult:
        def work(workspace_id: str) -> CheckoutSuccess | TopUpSuccess | InvoicePaid | DomainError:
            outcome = confirm_payment(info.context.gateway, workspace_id, str(payment_id), challenge_response)
            if isinstance(outcome, co.Completed):
                return _success(info, outcome)
            if isinstance(outcome, wallet.ToppedUp):
                return _topped_up(info, outcome)
            if isinstance(outcome, InvoicePaidOutcome):
                return _invoice_paid(info, outcome)
            assert isinstance(outcome, DomainError), "only checkouts, top-ups and invoices are confirmed"
            return outcome

        return e.signed_in(info, work)

    @strawberry.mutation(
        description="Pay an open invoice (a failed renewal) with any payment method; the workspace is "
        "active again once no invoice is left open. Idempotent per key."
    )
    def pay_invoice(
        self,
        info: Info,
        input: Annotated[
            PayInvoiceInput, strawberry.argument(description="The invoice, how to pay, and the key.")
        ],
    ) -> PayInvoiceResult:
        def work(workspace_id: str) -> InvoicePaid | DomainError:
            outcome = pay_invoice(
                info.context.gateway,
                workspace_id,
                str(input.invoice_id),
                input.payment_method.choice(),
                input.idempotency_key,
            )
            return _invoice_paid(info, outcome) if isinstance(outcome, InvoicePaidOutcome) else outcome

        return e.signed_in(info, work)

    @strawberry.mutation(
        description="Add money to My balance, paid by any method but the balance itself. Idempotent per key."
    )
    def top_up_balance(
        self,
        info: Info,
        input: Annotated[TopUpInput, strawberry.argument(description="The amount, how to pay, and the key.")],
    ) -> TopUpResult:
        def work(workspace_id: str) -> TopUpSuccess | DomainError:
            outcome = wallet.top_up(
                info.context.gateway,
                workspace_id,
                input.amount,
                input.payment_method.choice(),
                input.idempotency_key,
            )
            return _topped_up(info, outcome) if isinstance(outcome, wallet.ToppedUp) else outcome

        return e.signed_in(info, work)

    @strawberry.mutation(
        description="Save a card for checkout and renewals. Only a token and what identifies "
        "the card to a person are stored. Idempotent per key."
    )
    def add_card(
        self,
        info: Info,
        input: Annotated[AddCardInput, strawberry.argument(description="The card, and the key.")],
    ) -> AddCardResult:
        def work(workspace_id: str) -> CardAdded:
            added = wallet.add_card(
                info.context.gateway,
                workspace_id,
                input.card.details(),
                input.idempotency_key,
                input.use_for_renewal,
            )
            return _card_added(info, added)

        return e.signed_in(info, work)

    @strawberry.mutation(description="Remove a saved card.")
    def remove_card(
        self,
        info: Info,
        card_id: Annotated[strawberry.ID, strawberry.argument(description="The saved card's `id`.")],
    ) -> RemoveCardResult:
        def work(workspace_id: str) -> Workspace:
            wallet.remove_card(info.context.gateway, workspace_id, str(card_id))
            row = current_workspace(info)
            assert row is not None
            return Workspace.of(info, row)

        return e.signed_in(info, work)

    @strawberry.mutation(
        description="Choose the method that pays renewals: My balance, a saved card, or another method that "
        "can charge with the customer away. Answers the workspace, whose renewalPayment says whether the next "
        "renewal can be paid. Choosing the method already chosen changes nothing."
    )
    def set_default_payment_method(
        self,
        info: Info,
        input: Annotated[
            SetDefaultPaymentMethodInput,
            strawberry.argument(description="The method, and the card for a card method."),
        ],
    ) -> SetDefaultPaymentMethodResult:
        def work(workspace_id: str) -> Workspace:
            card_id = str(input.card_id) if input.card_id is not None else None
            renewal_method.set_default_payment_method(
                info.context.gateway, workspace_id, input.method, card_id
            )
            row = current_workspace(info)
            assert row is not None
            return Workspace.of(info, row)

        return e.signed_in(info, work)
