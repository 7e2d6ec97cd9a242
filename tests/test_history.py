"""The workspace's history as cursor connections, through GraphQL: invoiceHistory, payments,
balanceTransactions, usageHistory and events page through every row once, in order, while new
rows arrive between pages; bounds, bad cursors and another workspace's cursors."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta

import pytest

from gateway.plugin_api.payments import LedgerEntryKind
from gateway.services.history import MAX_PAGE_SIZE
from gateway.services.renewal import renew_workspace
from gateway.storage.db import LedgerEntry, OutboxEvent, Payment
from gateway.storage.ledger import SqlLedger
from gateway.storage.locks import lock_workspace

from helpers import VISA, billing, card, checkout_by_quote, eur, rows

# Each connection: its GraphQL type and what a test reads of a node (an id first).
CONNECTIONS = {
    "invoiceHistory": ("InvoiceConnection", "id number issuedAt total { amount } paymentMethod"),
    "payments": (
        "PaymentConnection",
        "id purpose method status amount { amount } card { last4 } failureCode invoiceId createdAt",
    ),
    "balanceTransactions": (
        "BalanceTransactionConnection",
        "id kind amount { amount } balanceAfter { amount } description createdAt",
    ),
    "usageHistory": ("UsagePeriodConnection", "periodStart current credits { kind used }"),
    "events": ("EventConnection", "id sequence type"),
}
ADD_CARD = """mutation($input: AddCardInput!) { addCard(input: $input) {
  __typename ... on CardAdded { card { id } } } }"""
TOP_UP = """mutation($input: TopUpInput!) { topUpBalance(input: $input) { __typename } }"""
RECORD_USAGE = (
    """mutation($n: Int!) { recordUsage(input: {messageType: "EMAIL", quantity: $n}) { __typename } }"""
)


def page(graphql, member, field: str, first: int | None = 20, after: str | None = None, **arguments) -> dict:
    """One page of a connection of the workspace (or its typed error)."""
    connection, node = CONNECTIONS[field]
    variables = {"first": first, "after": after, **arguments}
    declared = "$first: Int!, $after: String" + (", $types: [String!]" if "types" in arguments else "")
    passed = "first: $first, after: $after" + (", types: $types" if "types" in arguments else "")
    if first is None:  # the default page size
        declared, passed = declared.replace("$first: Int!, ", ""), passed.replace("first: $first, ", "")
        del variables["first"]
    query = f"""query({declared}) {{ workspace {{ ... on Workspace {{ {field}({passed}) {{ __typename
      ... on {connection} {{ edges {{ cursor node {{ {node} }} }}
                             pageInfo {{ hasNextPage endCursor hasPreviousPage startCursor }} }}
      ... on UserError {{ code field message }} }} }} }} }}"""
    return graphql(query, variables, key=member.key)["workspace"][field]


def nodes(shown: dict) -> list[dict]:
    return [edge["node"] for edge in shown["edges"]]


def read_all(graphql, member, field: str, first: int = 20, between=lambda: None, **arguments):
    """Every node of a connection, page after page (``between()`` runs after each page), and
    the sizes of the pages."""
    seen, sizes, after = [], [], None
    while True:
        shown = page(graphql, member, field, first, after, **arguments)
        assert shown["__typename"] == CONNECTIONS[field][0], shown
        seen += nodes(shown)
        sizes.append(len(shown["edges"]))
        info = shown["pageInfo"]
        if shown["edges"]:
            assert info["endCursor"] == shown["edges"][-1]["cursor"]
            assert info["startCursor"] == shown["edges"][0]["cursor"]
        if not info["hasNextPage"]:
            return seen, sizes
        after = info["endCursor"]
        between()


def top_up(graphql, member, n: int) -> None:
    payment = {"method": "card", "newCard": card(VISA)}
    variables = {
        "input": {"amount": f"{n + 10}.00", "paymentMethod": payment, "idempotencyKey": f"top-up-{n}"}
    }
    assert graphql(TOP_UP, variables, key=member.key)["topUpBalance"]["__typename"] == "TopUpSuccess"


def topped_up(graphql, make_workspace, clock, times: int, name: str = "Acme"):
    """A workspace with ``times`` card top-ups, a minute apart."""
    member = make_workspace(name)
    for n in range(times):
        clock.advance(minutes=1)
        top_up(graphql, member, n)
    return member


def ids_newest_first(gateway, model, member) -> list[str]:
    return [row.id for row in reversed(rows(gateway, model, member))]


# ------------------------------------------------------------------ stable paging


@pytest.mark.without_rate_limits  # pages of payments need more top-ups than payments_per_key allows a minute
def test_payments_and_balance_transactions_page_newest_first_and_new_ones_shift_nothing(
    graphql, gateway, make_workspace, clock
):
    member = topped_up(graphql, make_workspace, clock, 45)
    extra = iter(range(45, 100))

    def another_top_up() -> None:  # a newer payment and ledger entry between two pages
        clock.advance(minutes=1)
        top_up(graphql, member, next(extra))

    for field, model in (("payments", Payment), ("balanceTransactions", LedgerEntry)):
        before = ids_newest_first(gateway, model, member)
        assert len(before) >= 45
        seen, sizes = read_all(graphql, member, field, 20, between=another_top_up)
        assert [node["id"] for node in seen] == before  # each once, in order, none of the new ones
        assert sizes == [20, 20, len(before) - 40]
        assert len(ids_newest_first(gateway, model, member)) == len(before) + 2  # they did arrive
        # The newest come first when read again from the start.
        assert [n["id"] for n in nodes(page(graphql, member, field, 2))] == ids_newest_first(
            gateway, model, member
        )[:2]

    payments = nodes(page(graphql, member, "payments", 1))
    assert payments[0] | {"id": None, "createdAt": None} == {
        "id": None,
        "purpose": "TOP_UP",
        "method": "card",
        "status": "SUCCEEDED",
        "amount": {"amount": "58.00"},  # the last of the top-ups, 10.00 to 58.00
        "card": None,  # an unsaved card
        "failureCode": None,
        "invoiceId": None,
        "createdAt": None,
    }
    [entry] = nodes(page(graphql, member, "balanceTransactions", 1))
    total = sum(range(10, 59))
    assert (entry["kind"], entry["amount"], entry["balanceAfter"]) == (
        "TOP_UP",
        {"amount": "58.00"},
        {"amount": f"{total}.00"},
    )


@pytest.mark.without_rate_limits  # pages of events need more payments than payments_per_key allows a minute
def test_events_page_oldest_first_and_new_ones_follow_at_the_end(graphql, gateway, make_workspace, clock):
    member = topped_up(graphql, make_workspace, clock, 45)
    extra = iter(range(45, 100))
    before = len(rows(gateway, OutboxEvent, member))
    assert before >= 45

    seen, _ = read_all(graphql, member, "events", 20, between=lambda: top_up(graphql, member, next(extra)))
    after = rows(gateway, OutboxEvent, member)
    assert len(after) > before  # events arrived while paging ...
    assert [n["sequence"] for n in seen] == list(range(1, len(after) + 1))  # ... each read once, in order
    assert [n["id"] for n in seen] == [row.id for row in after]

    # The last page's cursor is where to poll from: nothing new, then exactly what is new.
    last = page(graphql, member, "events", 100)
    end = last["pageInfo"]["endCursor"]
    while last["pageInfo"]["hasNextPage"]:
        last = page(graphql, member, "events", 100, end)
        end = last["pageInfo"]["endCursor"]
    polled = page(graphql, member, "events", 20, end)
    assert (polled["edges"], polled["pageInfo"]["hasNextPage"], polled["pageInfo"]["endCursor"]) == (
        [],
        False,
        None,
    )
    top_up(graphql, member, next(extra))
    new = nodes(page(graphql, member, "events", 20, end))
    assert [n["sequence"] for n in new] == list(range(len(after) + 1, len(after) + 1 + len(new))) and new

    # Only some types.
    topped = read_all(graphql, member, "events", 20, types=["balance.topped_up"])[0]
    assert {n["type"] for n in topped} == {"balance.topped_up"}
    assert [n["id"] for n in topped] == [
        row.id for row in rows(gateway, OutboxEvent, member) if row.type == "balance.topped_up"
    ]


def test_invoices_and_usage_per_period_page_newest_first_while_periods_renew(
    graphql, gateway, make_workspace, clock
):
    member = make_workspace("Monthly")
    billing(graphql, member)
    added = graphql(
        ADD_CARD,
        {"input": {"card": card(VISA, year=2040), "useForRenewal": True, "idempotencyKey": "c"}},
        key=member.key,
    )["addCard"]
    paid = {"method": "card", "cardId": added["card"]["id"]}
    assert checkout_by_quote(graphql, member.key, "email", paid, "upgrade") == "NEW_PERIOD"
    months = iter(range(1, 100))

    def next_month() -> None:
        n = next(months)
        clock.advance(days=31)
        assert [r.status.value for r in renew_workspace(gateway, member.id, clock())] == ["renewed"]
        assert graphql(RECORD_USAGE, {"n": n}, key=member.key)["recordUsage"]["__typename"] == "UsageRecorded"

    assert graphql(RECORD_USAGE, {"n": 100}, key=member.key)["recordUsage"]["__typename"] == "UsageRecorded"
    for _ in range(44):
        next_month()

    everything = page(graphql, member, "invoiceHistory", 100)
    assert not everything["pageInfo"]["hasNextPage"]
    invoices = nodes(everything)
    assert len(invoices) == 45
    assert [i["issuedAt"] for i in invoices] == sorted((i["issuedAt"] for i in invoices), reverse=True)
    assert {i["paymentMethod"] for i in invoices} == {"card visa •••• 4242"}
    seen, sizes = read_all(graphql, member, "invoiceHistory", 20, between=next_month)
    assert (seen, sizes) == (invoices, [20, 20, 5])

    periods = nodes(page(graphql, member, "usageHistory", 100))
    assert len(periods) == 47  # the two new months' periods too
    seen, sizes = read_all(graphql, member, "usageHistory", 20, between=next_month)
    assert (seen, sizes) == (periods, [20, 20, 7])
    # Newest first: the current period, then each earlier one with what it used.
    assert [p["current"] for p in periods] == [True] + [False] * 46
    assert [p["credits"] for p in periods[:2]] == [
        [{"kind": "EMAIL", "used": "46"}],
        [{"kind": "EMAIL", "used": "45"}],
    ]
    assert periods[-1]["credits"] == [{"kind": "EMAIL", "used": "100"}]

    # The renewals' payments point at their invoices; every invoice is paid by one.
    payments = read_all(graphql, member, "payments", 100)[0]
    assert {p["invoiceId"] for p in payments} == {
        i["id"] for i in nodes(page(graphql, member, "invoiceHistory", 100))
    }
    assert {p["card"]["last4"] for p in payments} == {"4242"}


def test_rows_of_the_same_instant_are_each_read_once(graphql, gateway, make_workspace):
    member = make_workspace()
    for n in range(7):  # the clock does not move: the id orders rows of the same instant
        top_up(graphql, member, n)
    for field, model in (("payments", Payment), ("balanceTransactions", LedgerEntry)):
        seen, sizes = read_all(graphql, member, field, 3)
        assert sorted(n["id"] for n in seen) == sorted(row.id for row in rows(gateway, model, member))
        assert len({n["id"] for n in seen}) == 7 and sizes == [3, 3, 1]


# ------------------------------------------------------------------ bounds and bad cursors


def adjustments(gateway, member, count: int, now: datetime) -> None:
    """``count`` ledger entries of 1.00 each, a second apart, written as the ledger writes them
    (quicker than as many top-ups)."""
    with gateway.write_sessions.begin() as session:
        workspace = lock_workspace(session, member.id)
        for n in range(count):
            ledger = SqlLedger(session, workspace, now + timedelta(seconds=n))
            ledger.append(LedgerEntryKind.ADJUSTMENT, eur("1.00"), None, f"adjustment {n}")


def test_page_sizes_default_to_20_are_served_at_most_100_and_zero_shows_whether_any_exist(
    graphql, gateway, make_workspace, clock
):
    member = make_workspace()
    empty = page(graphql, member, "balanceTransactions", None)
    assert (empty["edges"], empty["pageInfo"]) == (
        [],
        {"hasNextPage": False, "endCursor": None, "hasPreviousPage": False, "startCursor": None},
    )
    adjustments(gateway, member, MAX_PAGE_SIZE + 5, clock())
    assert len(page(graphql, member, "balanceTransactions", None)["edges"]) == 20
    huge = page(graphql, member, "balanceTransactions", 2**31 - 1)
    assert (len(huge["edges"]), huge["pageInfo"]["hasNextPage"]) == (MAX_PAGE_SIZE, True)
    assert nodes(huge)[0]["description"] == f"adjustment {MAX_PAGE_SIZE + 4}"
    rest = page(graphql, member, "balanceTransactions", 1000, huge["pageInfo"]["endCursor"])
    assert (len(rest["edges"]), rest["pageInfo"]["hasNextPage"]) == (5, False)
    assert nodes(rest)[-1]["balanceAfter"] == {"amount": "1.00"}
    none = page(graphql, member, "balanceTransactions", 0)
    assert (none["edges"], none["pageInfo"]["hasNextPage"], none["pageInfo"]["endCursor"]) == ([], True, None)


@pytest.mark.parametrize("field", list(CONNECTIONS))
def test_a_negative_page_size_is_a_typed_error(graphql, make_workspace, field):
    refused = page(graphql, make_workspace(), field, -1)
    assert (refused["__typename"], refused["code"], refused["field"]) == (
        "InvalidPageRequest",
        "INVALID_PAGE_SIZE",
        ["first"],
    )


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


BAD_CURSORS = [
    "",
    "not a cursor",
    "%%%",
    "x" * 5000,
    _b64("nonsense"),
    _b64("invoices|2026-11-10T09:30:00+00:00"),  # a part missing
    _b64("invoices|2026-11-10T09:30:00|00ff"),  # no time zone
    _b64("invoices|yesterday|00ff"),
    _b64("invoices|2026-11-10T09:30:00+00:00|' OR 1=1 --"),
    _b64("events|-1"),
    _b64("events|1e3"),
    _b64("events|99999999999999999999999"),
    _b64("usage|never"),
    base64.urlsafe_b64encode(b"\xff\xfe|x").decode(),  # not UTF-8
]


@pytest.mark.parametrize("field", list(CONNECTIONS))
@pytest.mark.parametrize("cursor", BAD_CURSORS)
def test_a_cursor_it_did_not_give_out_is_a_typed_error(graphql, make_workspace, field, cursor):
    refused = page(graphql, make_workspace(), field, 20, cursor)
    assert (refused["__typename"], refused["code"], refused["field"]) == (
        "InvalidPageRequest",
        "INVALID_CURSOR",
        ["after"],
    )


def test_a_cursor_of_one_list_is_refused_by_another(graphql, make_workspace, clock):
    member = topped_up(graphql, make_workspace, clock, 2)
    cursor = page(graphql, member, "payments", 1)["pageInfo"]["endCursor"]
    assert page(graphql, member, "payments", 1, cursor)["__typename"] == "PaymentConnection"
    for field in ("invoiceHistory", "balanceTransactions", "usageHistory", "events"):
        assert page(graphql, member, field, 1, cursor)["code"] == "INVALID_CURSOR"


def test_an_unknown_event_type_is_a_typed_error(graphql, make_workspace):
    refused = page(graphql, make_workspace(), "events", 20, types=["balance.topped_up", "nope"])
    assert (refused["__typename"], refused["code"], refused["field"]) == (
        "UnknownEventType",
        "UNKNOWN_EVENT_TYPE",
        ["types", "1"],
    )


# ------------------------------------------------------------------ tenants


def test_another_workspaces_cursor_shows_nothing_of_that_workspace(graphql, gateway, make_workspace, clock):
    alice = topped_up(graphql, make_workspace, clock, 5, "Alice")
    mallory = make_workspace("Mallory")
    alices = {
        field: page(graphql, alice, field, 1)["pageInfo"]["endCursor"]
        for field in ("payments", "balanceTransactions", "events")
    }
    for field, cursor in alices.items():
        assert cursor is not None
        shown = page(graphql, mallory, field, 100, cursor)
        assert (shown["__typename"], shown["edges"], shown["pageInfo"]["hasNextPage"]) == (
            CONNECTIONS[field][0],
            [],
            False,
        )
        assert nodes(page(graphql, mallory, field, 100)) == []
    # Mallory's own rows follow Alice's cursor as they would any position: only hers are shown.
    top_up(graphql, mallory, 0)
    mine = {row.id for row in rows(gateway, Payment, mallory)}
    shown = nodes(page(graphql, mallory, "payments", 100, alices["payments"]))
    assert {n["id"] for n in shown} <= mine
    events = nodes(page(graphql, mallory, "events", 100, alices["events"]))
    assert {n["id"] for n in events} <= {row.id for row in rows(gateway, OutboxEvent, mallory)}
