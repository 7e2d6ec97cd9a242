"""The workspace's history as cursor connections: `invoiceHistory`, `payments`,
`balanceTransactions`, `usageHistory` and `events` (the fields themselves are on Workspace).

Relay-style connections written by hand (`edges { cursor node }`, `pageInfo`), not
strawberry.relay: that one would make every node a `Node` with a global id, and the ids
the API already gives out must not change. Paging is forwards only (`first`, `after`);
what a cursor holds and why pages stay stable: ``gateway.services.history``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Generic, TypeAlias, TypeVar

import strawberry

from gateway.api import types as t
from gateway.core import statuses
from gateway.plugin_api import payments as plugin_payments
from gateway.services import history
from gateway.services.billing_views import CardView

PAGE_ARGUMENTS = (
    f"`first` (default {history.DEFAULT_PAGE_SIZE}, at most {history.MAX_PAGE_SIZE} are returned; "
    "negative: INVALID_PAGE_SIZE) after the cursor `after` (an `endCursor` or edge `cursor` this "
    "list returned; anything else: INVALID_CURSOR)."
)

# The arguments of every paged list.
PageSize = Annotated[
    int,
    strawberry.argument(
        description=f"How many items to return: at most {history.MAX_PAGE_SIZE} are; 0 returns only "
        "`pageInfo`, a negative number is INVALID_PAGE_SIZE."
    ),
]
Cursor = Annotated[
    str | None,
    strawberry.argument(
        description="Start after this item: an `endCursor` or edge `cursor` this list returned (anything "
        "else is INVALID_CURSOR); null: from the first item."
    ),
]

T = TypeVar("T")
S = TypeVar("S")


@strawberry.type(description="Where a page ends, and whether another follows (Relay's PageInfo).")
class PageInfo:
    has_next_page: bool = strawberry.field(
        description="More items follow: ask again with `after: endCursor`. On lists that grow at the "
        "end (events), false means none yet."
    )
    end_cursor: str | None = strawberry.field(
        description="The cursor of the page's last item; null if empty."
    )
    has_previous_page: bool = strawberry.field(
        description="Always false: pages are read forwards only (first/after)."
    )
    start_cursor: str | None = strawberry.field(
        description="The cursor of the page's first item; null if empty."
    )


@strawberry.type(description="One item of a page, with its cursor.")
class Edge(Generic[T]):
    cursor: str = strawberry.field(description="Opaque; pass it as `after` to read the items that follow.")
    node: T = strawberry.field(description="The item.")


@strawberry.type(description="A page of a list, in the list's order: its items and where it ends.")
class Connection(Generic[T]):
    edges: list[Edge[T]] = strawberry.field(
        description="The page's items, each with its cursor; empty past the end."
    )
    page_info: PageInfo = strawberry.field(description="Where the page ends and whether more items follow.")


def connection_of(page: history.Page[S], node: Callable[[S], T]) -> Connection[T]:
    return Connection(
        edges=[Edge(cursor=cursor, node=node(item)) for cursor, item in page.edges],
        page_info=PageInfo(
            has_next_page=page.has_next_page,
            end_cursor=page.end_cursor,
            has_previous_page=False,
            start_cursor=page.start_cursor,
        ),
    )


# ------------------------------------------------------------------ payments

PaymentStatus: TypeAlias = statuses.PaymentStatus
t.graphql_enum(
    statuses.PaymentStatus,
    {
        statuses.PaymentStatus.PENDING: "Recorded; the payment method has not answered yet, or the money is on "
        "its way (a bank transfer).",
        statuses.PaymentStatus.REQUIRES_ACTION: "Waits for the customer to act (3-D Secure), then confirmPayment.",
        statuses.PaymentStatus.SUCCEEDED: "Paid.",
        statuses.PaymentStatus.FAILED: "Declined or failed; no money moved.",
        statuses.PaymentStatus.EXPIRED: "Nobody acted or paid in time; cancelled, no money moved.",
        statuses.PaymentStatus.REFUNDED: "Paid, then the money was given back.",
        statuses.PaymentStatus.REFUND_FAILED: "Paid, and giving the money back failed: an operator must act.",
    },
    description="Where a payment stands.",
)
PaymentPurpose: TypeAlias = statuses.PaymentPurpose
t.graphql_enum(
    statuses.PaymentPurpose,
    {
        statuses.PaymentPurpose.CHECKOUT: "A plan change bought at checkout.",
        statuses.PaymentPurpose.TOP_UP: "Money added to My balance.",
        statuses.PaymentPurpose.RENEWAL: "A period's renewal, charged with the customer away.",
        statuses.PaymentPurpose.INVOICE: "An open invoice paid later, by payInvoice or a retry of a failed renewal.",
    },
    description="What a payment pays for.",
)


@strawberry.type(description="A payment of the workspace, whatever came of it. Never a card number.")
class Payment:
    id: strawberry.ID = strawberry.field(
        description="Identifies the payment, as PaymentActionRequired, PaymentPending and refunds refer to it."
    )
    purpose: PaymentPurpose = strawberry.field(description="What it pays for.")
    method: str = strawberry.field(description='The payment method code: "balance", "card", or a plugin\'s.')
    status: PaymentStatus = strawberry.field(description="Where it stands now.")
    amount: t.Money = strawberry.field(description="What it charged (or asked for), tax included.")
    card: t.SavedCard | None = strawberry.field(
        description="The saved card charged (also one since removed); null for other methods and unsaved cards."
    )
    failure_code: str | None = strawberry.field(description="Why it failed or expired, e.g. card_declined.")
    failure_message: str | None = strawberry.field(
        description="The failure in plain English, as the payment method gave it; null unless FAILED or EXPIRED."
    )
    invoice_id: strawberry.ID | None = strawberry.field(
        description="The invoice this payment is for, if one refers to it (never for top-ups)."
    )
    created_at: datetime = strawberry.field(description="When it was recorded (UTC).")
    updated_at: datetime = strawberry.field(description="When its status last changed (UTC).")


def payment_of(payment: history.PaymentRecord, card_of: Callable[[CardView], t.SavedCard]) -> Payment:
    return Payment(
        id=strawberry.ID(payment.id),
        purpose=PaymentPurpose(payment.purpose),
        method=payment.method,
        status=PaymentStatus(payment.status),
        amount=t.Money.of(payment.amount),
        card=card_of(payment.card) if payment.card is not None else None,
        failure_code=payment.failure_code,
        failure_message=payment.failure_message,
        invoice_id=strawberry.ID(payment.invoice_id) if payment.invoice_id is not None else None,
        created_at=payment.created_at,
        updated_at=payment.updated_at,
    )


# ------------------------------------------------------------------ balance transactions

LedgerEntryKind: TypeAlias = plugin_payments.LedgerEntryKind
t.graphql_enum(
    plugin_payments.LedgerEntryKind,
    {
        plugin_payments.LedgerEntryKind.TOP_UP: "Money added by a top-up (positive).",
        plugin_payments.LedgerEntryKind.CHARGE: "A purchase or renewal paid from the balance (negative).",
        plugin_payments.LedgerEntryKind.REFUND: "Money given back onto the balance (positive).",
        plugin_payments.LedgerEntryKind.ADJUSTMENT: "A correction made by an operator; either sign.",
    },
    name="BalanceTransactionKind",
    description="What moved the balance.",
)


@strawberry.type(description="An entry of the prepaid balance's ledger.")
class BalanceTransaction:
    id: strawberry.ID = strawberry.field(description="Identifies the ledger entry.")
    kind: LedgerEntryKind = strawberry.field(description="What moved the balance.")
    amount: t.Money = strawberry.field(
        description="Signed: top-ups and refunds are positive, charges negative."
    )
    balance_after: t.Money = strawberry.field(description="My balance right after this entry.")
    description: str = strawberry.field(
        description='What it was for, as shown in the history, e.g. "Top-up by card".'
    )
    created_at: datetime = strawberry.field(description="When it was booked (UTC).")


def balance_transaction_of(entry: history.BalanceTransaction) -> BalanceTransaction:
    return BalanceTransaction(
        id=strawberry.ID(entry.id),
        kind=entry.kind,
        amount=t.Money.of(entry.amount),
        balance_after=t.Money.of(entry.balance_after),
        description=entry.description,
        created_at=entry.created_at,
    )


# ------------------------------------------------------------------ usage per period


@strawberry.type(
    description="One credit kind's usage in a past or current period; `used` is a Decimal, as in CreditUsage."
)
class PeriodCreditUsage:
    kind: t.CreditKind = strawberry.field(description="The credit kind used.")
    used: Decimal = strawberry.field(description="Credits used in the period.")


@strawberry.type(
    description="The credits one billing period used. Only usage is kept per period: the limits then in "
    "force are not (the period's invoice shows what was bought)."
)
class UsagePeriod:
    period_start: datetime = strawberry.field(
        description="When the period began (UTC); it identifies the period."
    )
    current: bool = strawberry.field(description="The workspace's current period (see also `usage`).")
    credits: list[PeriodCreditUsage] = strawberry.field(description="Each credit kind the period used.")


def usage_period_of(period: history.UsagePeriod, current_start: datetime) -> UsagePeriod:
    return UsagePeriod(
        period_start=period.period_start,
        current=period.period_start == current_start,
        credits=[PeriodCreditUsage(kind=c.kind, used=c.used) for c in period.credits],
    )
