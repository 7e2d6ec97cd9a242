"""The renewal method: choosing how renewals are paid, and whether the next one can be.

``Workspace.renewal_payment`` names the method renewals charge with the customer away
(``"balance"``, ``"card:<saved card id>"``, a partner's method code; see
:func:`gateway.services.cards.renewal_choice`). Checkout sets it when an off-session method
with a saved card (or no card) paid, ``addCard`` when asked or for the first card; without one,
renewal falls back to the prepaid balance. :func:`set_default_payment_method` lets the customer
choose; :func:`renewal_payment` tells the Billing page, before the renewal date, which method
renewal will ask and whether it can pay, so that a workspace that paid with an unsaved card
learns that its balance has to cover the renewal instead of finding itself past due.

The outlook asks renewal's own choice of payer (``renewal.renewal_payer``) and prices the renewal
with :func:`gateway.services.renewal.price_renewal`, as the renewal and the scheduled change's
preview do, so it cannot disagree with what renewal will do on the day.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from gateway.core import pricing
from gateway.core.errors import ErrorCode, PaymentRefused
from gateway.core.money import Money
from gateway.events.outbox import EventType, emit
from gateway.plugin_api.payments import Capability, PaymentMethod
from gateway.services import billing_details
from gateway.services.billing_views import CardView, WorkspaceView, card
from gateway.services.cards import parse_renewal_choice, renewal_choice, saved_card
from gateway.services.deps import Deps
from gateway.services.price_changes import configuration_at_renewal
from gateway.services.renewal import FailureReason, RenewalPayer, price_renewal, renewal_payer
from gateway.storage.db import BillingDetails, Workspace
from gateway.storage.locks import lock_workspace

__all__ = [
    "RenewalPaymentView",
    "RenewalProblem",
    "card_valid_on",
    "renewal_payment",
    "set_default_payment_method",
]


def card_valid_on(exp_month: int, exp_year: int, moment: datetime) -> bool:
    """Whether a card that expires ``exp_month``/``exp_year`` can still be charged at ``moment``:
    cards are valid through the last day of their expiry month (taken in UTC)."""
    first_invalid = datetime(exp_year + exp_month // 12, exp_month % 12 + 1, 1, tzinfo=UTC)
    return moment < first_invalid


# ------------------------------------------------------------------ choosing


def set_default_payment_method(deps: Deps, workspace_id: str, method_code: str, card_id: str | None) -> None:
    """Make ``method_code`` (with the saved card ``card_id`` for a card method) pay the
    workspace's renewals, with a ``payment_method.default_changed`` event; choosing the method
    already chosen changes nothing and emits nothing.

    Refused with :class:`PaymentRefused`, writing nothing: an unknown method
    (UNKNOWN_PAYMENT_METHOD), one that cannot charge with the customer away or a card given to
    a method that takes none (PAYMENT_METHOD_NOT_ALLOWED), a card method without a card
    (CARD_REQUIRED), a card that is not this workspace's or was removed (UNKNOWN_CARD), or one
    that has expired (CARD_EXPIRED_CARD).
    """
    method = deps.payment_methods.get(method_code)
    if method is None:
        raise PaymentRefused(
            ErrorCode.UNKNOWN_PAYMENT_METHOD, f"no payment method {method_code!r}", ("method",)
        )
    if Capability.OFF_SESSION not in method.capabilities:
        raise PaymentRefused(
            ErrorCode.PAYMENT_METHOD_NOT_ALLOWED,
            f"{method.label} cannot charge with the customer away, so it cannot pay renewals",
            ("method",),
        )
    takes_cards = Capability.CARDS in method.capabilities
    if not takes_cards and card_id is not None:
        raise PaymentRefused(
            ErrorCode.PAYMENT_METHOD_NOT_ALLOWED, f"{method.label} does not charge cards", ("card_id",)
        )
    if takes_cards and card_id is None:
        raise PaymentRefused(
            ErrorCode.CARD_REQUIRED, f"choose one of the saved cards for {method.label}", ("card_id",)
        )
    now = deps.clock()
    with deps.write_sessions.begin() as session:
        workspace = lock_workspace(session, workspace_id)
        assert workspace is not None, "authenticated workspaces exist"
        if card_id is not None:
            row = saved_card(session, workspace_id, card_id, ("card_id",))
            if not card_valid_on(row.exp_month, row.exp_year, now):
                raise PaymentRefused(
                    ErrorCode.CARD_EXPIRED_CARD,
                    f"the card ending {row.last4} expired in {row.exp_month:02d}/{row.exp_year}",
                    ("card_id",),
                )
        choice = renewal_choice(method.code, card_id)
        if choice == workspace.renewal_payment:
            return
        previous_method, previous_card = (
            parse_renewal_choice(workspace.renewal_payment) if workspace.renewal_payment else (None, None)
        )
        workspace.renewal_payment = choice
        emit(
            session,
            workspace,
            EventType.PAYMENT_METHOD_DEFAULT_CHANGED,
            {
                "method": method.code,
                "card_id": card_id,
                "previous_method": previous_method,
                "previous_card_id": previous_card,
            },
            now,
        )


# ------------------------------------------------------------------ the outlook


class RenewalProblem(enum.StrEnum):
    """Why the next renewal, as things stand, would not be paid."""

    NO_PAYMENT_METHOD = "no_payment_method"  # none chosen, and no prepaid balance to fall back on
    INSUFFICIENT_BALANCE = "insufficient_balance"  # the balance does not cover the renewal (now)
    CARD_REMOVED = "card_removed"  # the chosen card is gone
    CARD_EXPIRES = "card_expires"  # the chosen card expires before the renewal date
    PAYMENT_METHOD_UNAVAILABLE = "payment_method_unavailable"  # its plugin is not loaded
    OFF_SESSION_NOT_SUPPORTED = "off_session_not_supported"  # the method cannot charge with the customer away
    BILLING_DETAILS_INCOMPLETE = "billing_details_incomplete"  # renewal cannot invoice without them


@dataclass(frozen=True)
class RenewalPaymentView:
    """How the next renewal will be paid, as things stand now."""

    next_renewal_at: datetime
    amount: Money  # what the renewal will charge, tax included; zero when nothing is due
    method: PaymentMethod | None  # the method renewal will ask; None when it cannot ask any
    chosen: bool  # the workspace chose it; False: nothing chosen, renewal falls back to the balance
    card: CardView | None  # the saved card charged, for a card method
    problem: RenewalProblem | None  # None: it can pay (or there is nothing to pay)
    message: str  # one sentence for the Billing page

    @property
    def nothing_to_pay(self) -> bool:
        return not self.amount.amount

    @property
    def can_pay(self) -> bool:
        return self.problem is None


def renewal_payment(
    deps: Deps, session: Session, workspace: WorkspaceView, current: pricing.Configuration
) -> RenewalPaymentView:
    """The next renewal of ``workspace`` (on ``current`` until a scheduled change applies at
    the period's end), priced as renewal will price it, and whether its method can pay it.
    Reads with the request's session: a fixed handful of statements, nothing written."""
    renews_at = workspace.period_end
    config = configuration_at_renewal(deps.catalog, session, workspace, current, renews_at)
    details = session.get(BillingDetails, workspace.id)
    complete = not billing_details.missing_fields(details)
    customer = billing_details.tax_customer(details) if complete else None
    amount = price_renewal(deps, config, customer, renews_at)[0].total
    row = session.get(Workspace, workspace.id)  # already in the session: views.workspace read it
    assert row is not None
    chosen = workspace.renewal_payment is not None
    payer = renewal_payer(deps, session, row)
    method = payer.method if isinstance(payer, RenewalPayer) else None
    card_view = card(session, payer.card_id) if isinstance(payer, RenewalPayer) and payer.card_id else None
    view = RenewalPaymentView(renews_at, amount, method, chosen, card_view, None, "")
    on = f"{renews_at:%Y-%m-%d}"
    if view.nothing_to_pay:
        return _with(view, None, f"Nothing to pay: {config.plan.name} renews on {on} free of charge.")
    if not complete:
        return _with(
            view,
            RenewalProblem.BILLING_DETAILS_INCOMPLETE,
            f"The renewal of {amount} on {on} cannot be invoiced: complete the billing details.",
        )
    if not isinstance(payer, RenewalPayer):
        return _with(
            view,
            _problem(deps, workspace.renewal_payment, payer.reason),
            f"The renewal of {amount} on {on} cannot be paid: {payer.message}.",
        )
    by = method.label if method is not None else ""
    if card_view is not None:
        by = f"{by} ({card_view.brand} •••• {card_view.last4})"
        if not card_valid_on(card_view.exp_month, card_view.exp_year, renews_at):
            return _with(
                view,
                RenewalProblem.CARD_EXPIRES,
                f"The card ending {card_view.last4} expires in {card_view.exp_month:02d}/"
                f"{card_view.exp_year}, before the renewal of {amount} on {on}: choose another method.",
            )
    if method is not None and Capability.PREPAID_BALANCE in method.capabilities:
        balance = workspace.balance
        if balance < amount:
            fallback = "" if chosen else ", as no other method is chosen"
            return _with(
                view,
                RenewalProblem.INSUFFICIENT_BALANCE,
                f"The renewal of {amount} on {on} will be charged to {by}{fallback}, which holds "
                f"{balance}: top up the balance or choose a saved card.",
            )
    return _with(view, None, f"The renewal of {amount} on {on} will be charged to {by}.")


def _problem(deps: Deps, choice: str | None, reason: str) -> RenewalProblem:
    """The problem behind one of renewal's own failure reasons (see ``renewal.renewal_payer``)."""
    if reason == FailureReason.PAYMENT_METHOD_UNAVAILABLE.value:
        return RenewalProblem.PAYMENT_METHOD_UNAVAILABLE
    if choice is None:
        return RenewalProblem.NO_PAYMENT_METHOD
    method = deps.payment_methods.get(parse_renewal_choice(choice)[0])
    if method is not None and Capability.OFF_SESSION not in method.capabilities:
        return RenewalProblem.OFF_SESSION_NOT_SUPPORTED
    return RenewalProblem.CARD_REMOVED  # an off-session card method whose card is gone


def _with(view: RenewalPaymentView, problem: RenewalProblem | None, message: str) -> RenewalPaymentView:
    return replace(view, problem=problem, message=message)
