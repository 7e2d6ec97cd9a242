"""recordUsage: draws down the period's allowances, refuses usage past them (writing
nothing), prices messages by destination, type and SMS segments, and is idempotent.

Rates (bundled rate card, messaging credits per message or SMS segment): Germany SMS
7.5, WhatsApp Marketing 13.6; United States SMS 0.9. Allowances: Free 1,000 email
credits; Email plan from 5,000 email credits, no messaging; Omnichannel email and
messaging credits as configured.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select, text

from gateway.core.money import Money
from gateway.plugin_api.payments import LedgerEntryKind
from gateway.services import usage
from gateway.storage.db import OutboxEvent, UsageCounter, UsageRecord, Workspace
from gateway.storage.ledger import SqlLedger
from gateway.storage.locks import lock_workspace

from helpers import snapshot

RECORD = """mutation($input: RecordUsageInput!) { recordUsage(input: $input) {
  __typename
  ... on UsageRecorded { messageType { code } country quantity segments creditKind creditsPerMessage credits
                         usage { periodStart periodEnd credits { kind used included remaining } } }
  ... on AllowanceExceeded { kind used included requested remaining }
  ... on ChannelNotInPlan { planCode messageType { code } }
  ... on UserError { code field message }
} }"""
USAGE = """{ workspace { ... on Workspace { usage { periodStart periodEnd
  credits { kind used included remaining } } } } }"""
START = "2026-11-10T09:30:00+00:00"
END = "2026-12-10T09:30:00+00:00"


def record(graphql, member, **input_) -> dict:
    return graphql(RECORD, {"input": input_}, key=member.key)["recordUsage"]


def credits(graphql, member) -> list[dict]:
    return graphql(USAGE, key=member.key)["workspace"]["usage"]["credits"]


@pytest.fixture
def omni(make_workspace):
    return make_workspace("Omni Ltd", plan_code="omnichannel", email_credits=50000, messaging_credits=10000)


# ------------------------------------------------------------------ within the allowance


def test_emails_and_messages_draw_down_their_allowances(graphql, omni):
    emails = record(graphql, omni, messageType="EMAIL", quantity=1200)
    assert emails == {
        "__typename": "UsageRecorded",
        "messageType": {"code": "EMAIL"},
        "country": None,
        "quantity": 1200,
        "segments": 1,
        "creditKind": "EMAIL",
        "creditsPerMessage": "1",
        "credits": "1200",
        "usage": {
            "periodStart": START,
            "periodEnd": END,
            "credits": [
                {"kind": "EMAIL", "used": "1200", "included": "50000", "remaining": "48800"},
                {"kind": "MESSAGING", "used": "0", "included": "10000", "remaining": "10000"},
            ],
        },
    }

    sms = record(graphql, omni, messageType="sms", country=" de ", quantity=10)
    assert (sms["messageType"], sms["country"], sms["creditsPerMessage"], sms["credits"]) == (
        {"code": "SMS"},
        "DE",
        "7.5",
        "75",
    )
    whatsapp = record(graphql, omni, messageType="WHATSAPP_MARKETING", country="DE", quantity=7)
    assert (whatsapp["creditKind"], whatsapp["credits"]) == ("MESSAGING", "95.2")
    us = record(graphql, omni, messageType="SMS", country="US", quantity=3)
    assert us["credits"] == "2.7"

    expected = [
        {"kind": "EMAIL", "used": "1200", "included": "50000", "remaining": "48800"},
        {"kind": "MESSAGING", "used": "172.9", "included": "10000", "remaining": "9827.1"},
    ]
    assert us["usage"]["credits"] == expected
    assert credits(graphql, omni) == expected  # the plan-and-usage widget agrees


def test_emails_ignore_the_country(graphql, make_workspace):
    member = make_workspace()
    result = record(graphql, member, messageType="EMAIL", quantity=5, country="DE", sampleText="x" * 400)
    assert (result["country"], result["segments"], result["credits"]) == (None, 1, "5")


def test_usage_is_recorded_per_request(graphql, gateway, omni):
    record(graphql, omni, messageType="EMAIL", quantity=3)
    record(graphql, omni, messageType="SMS", country="DE", quantity=2, sampleText="hello")
    with gateway.sessions() as session:
        rows = sorted(
            session.scalars(select(UsageRecord).where(UsageRecord.workspace_id == omni.id)),
            key=lambda r: r.kind,
        )
    assert [(r.kind, r.message_type, r.country, r.quantity, r.credits) for r in rows] == [
        ("email", "EMAIL", None, 3, Decimal(3)),
        ("messaging", "SMS", "DE", 2, Decimal(15)),
    ]


# ------------------------------------------------------------------ SMS segments


@pytest.mark.parametrize(
    ("text_", "segments"),
    [
        ("", 1),
        ("a" * 160, 1),
        ("a" * 161, 2),  # 153 septets per part once concatenated
        ("€" * 80, 1),  # an extension character costs two septets: 160
        ("€" * 81, 2),
        ("😀" * 35, 1),  # UCS-2: 70 code units
        ("😀" * 36, 2),
        ("a" * 1600, 11),
    ],
)
def test_sms_are_priced_per_segment(graphql, omni, text_, segments):
    result = record(graphql, omni, messageType="SMS", country="DE", quantity=3, sampleText=text_)
    per_message = Decimal("7.5") * segments
    assert (result["segments"], Decimal(result["creditsPerMessage"]), Decimal(result["credits"])) == (
        segments,
        per_message,
        per_message * 3,
    )


def test_whatsapp_is_not_segmented(graphql, omni):
    result = record(
        graphql, omni, messageType="WHATSAPP_MARKETING", country="DE", quantity=1, sampleText="a" * 500
    )
    assert (result["segments"], result["credits"]) == (1, "13.6")


# ------------------------------------------------------------------ the limit


def test_exactly_at_the_limit_then_refused(graphql, gateway, make_workspace):
    member = make_workspace("Mail Ltd", plan_code="email", email_credits=10000)
    record(graphql, member, messageType="EMAIL", quantity=9990)
    at_limit = record(graphql, member, messageType="EMAIL", quantity=10)
    assert at_limit["usage"]["credits"] == [
        {"kind": "EMAIL", "used": "10000", "included": "10000", "remaining": "0"}
    ]
    before = snapshot(gateway)

    refused = record(graphql, member, messageType="EMAIL", quantity=1)

    assert refused == {
        "__typename": "AllowanceExceeded",
        "kind": "EMAIL",
        "used": "10000",
        "included": "10000",
        "requested": "1",
        "remaining": "0",
        "code": "ALLOWANCE_EXCEEDED",
        "field": ["quantity"],
        "message": "1 email credits requested, 0 of 10,000 left this period; nothing was counted",
    }
    assert snapshot(gateway) == before


def test_a_request_past_the_allowance_is_refused_whole(graphql, gateway, omni):
    record(graphql, omni, messageType="SMS", country="DE", quantity=1000)  # 7,500 of 10,000
    before = snapshot(gateway)

    refused = record(graphql, omni, messageType="SMS", country="DE", quantity=334)  # 2,505 > 2,500 left

    assert (
        refused["__typename"],
        refused["kind"],
        refused["used"],
        refused["included"],
        refused["requested"],
        refused["remaining"],
    ) == ("AllowanceExceeded", "MESSAGING", "7500", "10000", "2505", "2500")
    assert snapshot(gateway) == before
    last = record(graphql, omni, messageType="SMS", country="DE", quantity=333)
    assert last["usage"]["credits"][1] == {
        "kind": "MESSAGING",
        "used": "9997.5",
        "included": "10000",
        "remaining": "2.5",
    }


def test_one_allowance_does_not_spend_the_other(graphql, omni):
    record(graphql, omni, messageType="EMAIL", quantity=50000)
    assert record(graphql, omni, messageType="EMAIL", quantity=1)["__typename"] == "AllowanceExceeded"
    sms = record(graphql, omni, messageType="SMS", country="US", quantity=100)
    assert sms["__typename"] == "UsageRecorded"


@pytest.mark.parametrize("plan", [{"plan_code": "email"}, {}])
@pytest.mark.parametrize("message_type", ["SMS", "WHATSAPP_UTILITY"])
def test_messaging_on_a_plan_without_messaging_credits_is_refused(
    graphql, gateway, make_workspace, plan, message_type
):
    member = make_workspace("Mail Ltd", **plan)
    before = snapshot(gateway)
    refused = record(graphql, member, messageType=message_type, country="DE", quantity=1)
    assert (
        refused["__typename"],
        refused["code"],
        refused["field"],
        refused["planCode"],
        refused["messageType"],
    ) == (
        "ChannelNotInPlan",
        "CHANNEL_NOT_IN_PLAN",
        ["messageType"],
        plan.get("plan_code", "free"),
        {"code": message_type},
    )
    assert snapshot(gateway) == before


def test_concurrent_requests_never_spend_past_the_allowance(gateway, make_workspace):
    member = make_workspace()  # Free: 1,000 email credits
    barrier = threading.Barrier(12)
    outcomes: list[str] = []

    def send() -> None:
        barrier.wait()
        try:
            usage.record_usage(gateway, member.id, usage.UsageRequest("EMAIL", 100), gateway.clock())
            outcomes.append("recorded")
        except usage.AllowanceExceeded:
            outcomes.append("refused")

    threads = [threading.Thread(target=send) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["recorded"] * 10 + ["refused"] * 2
    with gateway.sessions() as session:
        assert session.scalar(select(UsageCounter.used).where(UsageCounter.workspace_id == member.id)) == 1000


# ------------------------------------------------------------------ periods


def test_a_new_period_starts_from_zero(graphql, gateway, make_workspace, clock):
    member = make_workspace()
    record(graphql, member, messageType="EMAIL", quantity=900)
    clock.advance(days=31)  # into the next period: unused credits do not roll over

    result = record(graphql, member, messageType="EMAIL", quantity=1000)

    assert result["usage"] == {
        "periodStart": END,
        "periodEnd": "2027-01-10T09:30:00+00:00",
        "credits": [{"kind": "EMAIL", "used": "1000", "included": "1000", "remaining": "0"}],
    }
    with gateway.sessions() as session:
        types = list(session.scalars(select(OutboxEvent.type).where(OutboxEvent.workspace_id == member.id)))
    assert types == ["credits.reset"]  # the period was renewed on the way


def test_usage_after_an_upgrade_counts_against_the_new_limit(graphql, gateway, make_workspace, clock):
    member = make_workspace("Mail Ltd", plan_code="email", email_credits=10000)
    record(graphql, member, messageType="EMAIL", quantity=9000)
    clock.advance(days=10)
    # An upgrade between paid plans keeps the period (see checkout): only the limits change.
    with gateway.write_sessions.begin() as session:
        workspace = lock_workspace(session, member.id)
        workspace.email_credits = 20000

    assert record(graphql, member, messageType="EMAIL", quantity=11001)["__typename"] == "AllowanceExceeded"
    result = record(graphql, member, messageType="EMAIL", quantity=11000)
    assert result["usage"]["credits"] == [
        {"kind": "EMAIL", "used": "20000", "included": "20000", "remaining": "0"}
    ]


def test_usage_after_an_upgrade_through_checkout(graphql, gateway, make_workspace):
    member = make_workspace("Mail Ltd", plan_code="email", email_credits=10000)
    graphql(
        """mutation { updateBillingDetails(input: {customerType: PERSON, name: "Erika",
        addressLine1: "Weg 1", city: "Köln", postalCode: "50667", country: "DE", email: "e@example.de"}) {
        __typename } }""",
        key=member.key,
    )
    record(graphql, member, messageType="EMAIL", quantity=10000)
    quote = graphql(
        """mutation { quote(input: {planCode: "omnichannel"}) {
        ... on Quote { kind dueNow { total { amount } } expiresAt } } }""",
        key=member.key,
    )["quote"]
    assert quote["kind"] == "UPGRADE"
    with gateway.write_sessions.begin() as session:
        workspace = lock_workspace(session, member.id)
        ledger = SqlLedger(session, workspace, gateway.clock())
        ledger.append(LedgerEntryKind.TOP_UP, Money("100", "EUR"), None, "test top-up")
    checkout = {
        "planCode": "omnichannel",
        "expectedTotal": quote["dueNow"]["total"]["amount"],
        "quoteExpiresAt": quote["expiresAt"],
        "paymentMethod": {"method": "balance"},
        "idempotencyKey": "up-1",
    }
    done = graphql(
        "mutation($input: CheckoutInput!) { checkout(input: $input) { __typename } }",
        {"input": checkout},
        key=member.key,
    )["checkout"]
    assert done["__typename"] == "CheckoutSuccess"

    assert credits(graphql, member) == [
        {"kind": "EMAIL", "used": "10000", "included": "20000", "remaining": "10000"},
        {"kind": "MESSAGING", "used": "0", "included": "5000", "remaining": "5000"},
    ]
    assert record(graphql, member, messageType="SMS", country="DE", quantity=2)["credits"] == "15"


# ------------------------------------------------------------------ idempotency


def test_the_same_key_replays_the_first_answer_and_counts_once(graphql, gateway, omni):
    first = record(graphql, omni, messageType="SMS", country="DE", quantity=4, idempotencyKey="batch-7")
    record(graphql, omni, messageType="SMS", country="DE", quantity=1)  # another request in between

    again = record(graphql, omni, messageType="SMS", country="DE", quantity=4, idempotencyKey="batch-7")

    assert again == first  # the same answer, usage as it was then
    assert credits(graphql, omni)[1]["used"] == "37.5"  # 4 × 7.5 once, plus 7.5
    with gateway.sessions() as session:
        assert session.scalar(select(text("count(*)")).select_from(UsageRecord)) == 2


def test_the_same_key_for_another_request_is_refused(graphql, gateway, omni):
    record(graphql, omni, messageType="EMAIL", quantity=4, idempotencyKey="batch-8")
    before = snapshot(gateway)
    refused = record(graphql, omni, messageType="EMAIL", quantity=5, idempotencyKey="batch-8")
    assert (refused["__typename"], refused["code"], refused["field"]) == (
        "IdempotencyKeyRejected",
        "IDEMPOTENCY_KEY_REUSED",
        ["idempotencyKey"],
    )
    assert snapshot(gateway) == before


def test_keys_belong_to_their_workspace(graphql, make_workspace, omni):
    other = make_workspace("Other Ltd")
    record(graphql, omni, messageType="EMAIL", quantity=4, idempotencyKey="batch-9")
    assert record(graphql, other, messageType="EMAIL", quantity=4, idempotencyKey="batch-9")["credits"] == "4"


def test_a_refused_request_releases_its_key(graphql, gateway, make_workspace, clock):
    member = make_workspace()
    refused = record(graphql, member, messageType="EMAIL", quantity=1001, idempotencyKey="big")
    assert refused["__typename"] == "AllowanceExceeded"
    refused = record(graphql, member, messageType="EMAIL", quantity=1001, idempotencyKey="big")
    assert refused["__typename"] == "AllowanceExceeded"  # evaluated again, not replayed
    assert record(graphql, member, messageType="EMAIL", quantity=10, idempotencyKey="big")["credits"] == "10"


def test_concurrent_retries_with_one_key_count_once(gateway, make_workspace):
    member = make_workspace()
    barrier = threading.Barrier(6)
    answers: list = []

    def send() -> None:
        barrier.wait()
        request = usage.UsageRequest("EMAIL", 7, idempotency_key="k")
        answers.append(usage.record_usage(gateway, member.id, request, gateway.clock()))

    threads = [threading.Thread(target=send) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == 6 and len({a.record_id for a in answers}) == 1
    with gateway.sessions() as session:
        assert session.scalar(select(UsageCounter.used).where(UsageCounter.workspace_id == member.id)) == 7


# ------------------------------------------------------------------ bad input


def typed(code: str, *field: str) -> tuple[str, list[str]]:
    return code, list(field)


SMS_DE = {"messageType": "SMS", "country": "DE", "quantity": 1}


@pytest.mark.parametrize(
    ("input_", "expected"),
    [
        ({**SMS_DE, "quantity": 0}, typed("INVALID_VOLUME", "quantity")),
        ({**SMS_DE, "quantity": -1}, typed("INVALID_VOLUME", "quantity")),
        ({**SMS_DE, "quantity": 1_000_001}, typed("INVALID_VOLUME", "quantity")),
        ({**SMS_DE, "quantity": 2**31 - 1}, typed("INVALID_VOLUME", "quantity")),
        ({**SMS_DE, "messageType": "FAX"}, typed("UNKNOWN_MESSAGE_TYPE", "messageType")),
        ({**SMS_DE, "messageType": ""}, typed("UNKNOWN_MESSAGE_TYPE", "messageType")),
        ({**SMS_DE, "messageType": "SMS\u0000"}, typed("UNKNOWN_MESSAGE_TYPE", "messageType")),
        ({**SMS_DE, "messageType": "ſms"}, typed("UNKNOWN_MESSAGE_TYPE", "messageType")),
        ({**SMS_DE, "messageType": "x" * 10_000}, typed("UNKNOWN_MESSAGE_TYPE", "messageType")),
        (
            {"messageType": "WHATSAPP_MARKETING", "country": "CN", "quantity": 1},
            typed("MESSAGE_TYPE_NOT_OFFERED", "messageType"),
        ),
        ({"messageType": "SMS", "quantity": 1}, typed("UNKNOWN_COUNTRY", "country")),
        ({**SMS_DE, "country": None}, typed("UNKNOWN_COUNTRY", "country")),
        ({**SMS_DE, "country": "XX"}, typed("UNKNOWN_COUNTRY", "country")),
        ({**SMS_DE, "country": "D\u0000"}, typed("UNKNOWN_COUNTRY", "country")),
        ({**SMS_DE, "country": "ＤＥ"}, typed("UNKNOWN_COUNTRY", "country")),
        ({**SMS_DE, "sampleText": "a" * 1601}, typed("TEXT_TOO_LONG", "sampleText")),
        ({**SMS_DE, "idempotencyKey": ""}, typed("INVALID_IDEMPOTENCY_KEY", "idempotencyKey")),
        ({**SMS_DE, "idempotencyKey": "   "}, typed("INVALID_IDEMPOTENCY_KEY", "idempotencyKey")),
        ({**SMS_DE, "idempotencyKey": "k" * 256}, typed("INVALID_IDEMPOTENCY_KEY", "idempotencyKey")),
        ({**SMS_DE, "idempotencyKey": "k\u0000"}, typed("INVALID_IDEMPOTENCY_KEY", "idempotencyKey")),
    ],
)
def test_bad_input_is_a_typed_error_and_writes_nothing(client, gateway, caplog, omni, input_, expected):
    before = snapshot(gateway)
    response = client.post(
        "/graphql",
        json={"query": RECORD, "variables": {"input": input_}},
        headers={"Authorization": f"Bearer {omni.key}"},
    )
    body = response.json()
    assert response.status_code == 200 and "errors" not in body, body
    result = body["data"]["recordUsage"]
    assert (result["code"], result["field"]) == expected and result["message"]
    assert snapshot(gateway) == before
    assert [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")] == []


@pytest.mark.parametrize(
    "input_",
    [
        {**SMS_DE, "quantity": 2**31},
        {**SMS_DE, "quantity": 1.5},
        {**SMS_DE, "quantity": "1"},
        {"messageType": "SMS", "country": "DE"},
        {**SMS_DE, "messageType": None},
        {**SMS_DE, "extra": 1},
    ],
)
def test_malformed_input_is_a_request_error(client, gateway, omni, input_):
    before = snapshot(gateway)
    response = client.post(
        "/graphql",
        json={"query": RECORD, "variables": {"input": input_}},
        headers={"Authorization": f"Bearer {omni.key}", "Accept": "application/graphql-response+json"},
    )
    assert response.status_code == 400 and "data" not in response.json()
    assert snapshot(gateway) == before


@pytest.mark.parametrize("key", [None, "bgw_000000000000_wrong"])
def test_recording_usage_needs_a_key(client, gateway, omni, key):
    before = snapshot(gateway)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    response = client.post(
        "/graphql", json={"query": RECORD, "variables": {"input": SMS_DE}}, headers=headers
    )
    assert response.json()["data"]["recordUsage"]["code"] == "AUTHENTICATION_REQUIRED"
    assert snapshot(gateway) == before


def test_a_period_that_cannot_be_renewed_refuses_usage(graphql, gateway, make_workspace, clock, caplog):
    member = make_workspace("Mail Ltd", plan_code="email", email_credits=10000)
    with gateway.write_sessions.begin() as session:
        session.get(Workspace, member.id).plan_code = "discontinued"  # the renewal fails unexpectedly
    clock.now = datetime(2026, 12, 11, tzinfo=UTC)
    before = snapshot(gateway)
    refused = record(graphql, member, messageType="EMAIL", quantity=1)
    assert (refused["__typename"], refused["code"]) == ("RenewalPending", "RENEWAL_PENDING")
    assert snapshot(gateway) == before
