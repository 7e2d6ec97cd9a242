"""The Order Preview (`quote`): exact, hand-computed figures; timing of changes; purity.

Prices (bundled catalog, EUR): Omnichannel 39.00/month with 5,000 email and 1,000
messaging credits included; email credits 0.0012 up to 50,000 then 0.0009 up to
250,000; messaging credits 0.0095 up to 20,000 then 0.0090 up to 100,000. The
clock starts at 2026-11-10 09:30 UTC, so a period started then ends 2026-12-10
09:30 (30 days).
"""

from __future__ import annotations

import pytest

from helpers import eur_json, snapshot

NOW = "2026-11-10T09:30:00+00:00"
PERIOD_END = "2026-12-10T09:30:00+00:00"

QUOTE = """mutation($input: QuoteInput!) { quote(input: $input) {
  __typename
  ... on UserError { code message field }
  ... on Quote {
    kind plan { code } emailCredits messagingCredits
    monthlyLines { ...line } monthlySubtotal { amount currency }
    changes { timing effectiveAt plan { code } emailCredits messagingCredits }
    dueNow { ...charge } dueAtRenewal { ...charge }
    renewalAt periodStart periodEnd proration { daysLeft daysInPeriod } computedAt expiresAt
  }
} }
fragment line on OrderLine { kind description quantity unitPrice { amount currency } amount { amount currency }
                             creditKind }
fragment charge on Charge {
  lines { ...line } subtotal { amount currency } tax { amount currency } total { amount currency } taxCalculated
  taxLines { name jurisdiction rate base { amount currency } amount { amount currency } treatment note }
}"""

REVERSE_CHARGE_NOTE = (
    "Reverse charge: VAT to be accounted for by the recipient (Article 196, Council "
    "Directive 2006/112/EC). Customer VAT ID: {}"
)


def base(plan: str, amount: str) -> dict:
    return {
        "kind": "BASE",
        "description": f"{plan} plan, monthly base price",
        "quantity": 1,
        "unitPrice": None,
        "amount": eur_json(amount),
        "creditKind": None,
    }


def credits(kind: str, first: str, last: str, quantity: int, unit: str, amount: str) -> dict:
    return {
        "kind": "CREDITS",
        "description": f"{kind.capitalize()} credits {first}–{last}",
        "quantity": quantity,
        "unitPrice": eur_json(unit),
        "amount": eur_json(amount),
        "creditKind": kind.upper(),
    }


def prorated(kind: str, what: str, span: str, amount: str) -> dict:
    label = "Remaining time on" if kind == "REMAINING_TIME" else "Unused time on"
    return {
        "kind": kind,
        "description": f"{label} {what}, {span}",
        "quantity": 1,
        "unitPrice": None,
        "amount": eur_json(amount),
        "creditKind": None,
    }


def not_subject_to_eu_vat(country: str, base_amount: str) -> dict:
    """Outside the EU: a line that says no EU VAT applies, never "VAT 0% (US)"."""
    return {
        **vat(country, "0", "0", base_amount, "0.00", "OUT_OF_SCOPE"),
        "name": "Not subject to EU VAT",
        "note": "Not subject to EU VAT (place of supply outside the EU)",
    }


def vat(
    country: str,
    percent: str,
    rate: str,
    base_amount: str,
    amount: str,
    treatment: str = "STANDARD",
    note: str | None = None,
) -> dict:
    return {
        "name": f"VAT {percent}% ({country})",
        "jurisdiction": country,
        "rate": rate,
        "base": eur_json(base_amount),
        "amount": eur_json(amount),
        "treatment": treatment,
        "note": note,
    }


def charge(lines: list, subtotal: str, tax_lines: list | None, tax: str, total: str) -> dict:
    return {
        "lines": lines,
        "subtotal": eur_json(subtotal),
        "taxLines": tax_lines or [],
        "tax": eur_json(tax),
        "total": eur_json(total),
        "taxCalculated": tax_lines is not None,
    }


DE_PERSON = {"customerType": "PERSON", "country": "DE"}

# Free -> Omnichannel at 30,000 email / 25,000 messaging credits: the messaging
# slider crosses the 20,000 tier boundary.
OMNI_30K_25K_LINES = [
    base("Omnichannel", "39.00"),
    credits("email", "5,001", "30,000", 25000, "0.0012", "30.00"),  # 25,000 x 0.0012
    credits("messaging", "1,001", "20,000", 19000, "0.0095", "180.50"),  # 19,000 x 0.0095
    credits("messaging", "20,001", "25,000", 5000, "0.0090", "45.00"),  # 5,000 x 0.0090
]  # 294.50


@pytest.fixture
def free(make_workspace):
    return make_workspace("Free Ltd")


@pytest.fixture
def omni(make_workspace):
    """Paid Omnichannel at 50,000 email / 10,000 messaging: 39 + 54.00 + 85.50 = 178.50 a month."""
    return make_workspace("Omni Ltd", plan_code="omnichannel", email_credits=50000, messaging_credits=10000)


@pytest.fixture
def quote(graphql):
    def run(key: str, **input: object) -> dict:
        return graphql(QUOTE, {"input": input}, key=key)["quote"]

    return run


# ------------------------------------------------------------------- from Free


def test_free_to_omnichannel_de_consumer(quote, free):
    result = quote(
        free.key, planCode="omnichannel", emailCredits=30000, messagingCredits=25000, billingDetails=DE_PERSON
    )
    # 294.50 x 19 % = 55.955, rounded half up once on the whole base: 55.96.
    due = charge(
        OMNI_30K_25K_LINES, "294.50", [vat("DE", "19", "0.19", "294.50", "55.96")], "55.96", "350.46"
    )
    assert result == {
        "__typename": "Quote",
        "kind": "NEW_PERIOD",
        "plan": {"code": "omnichannel"},
        "emailCredits": 30000,
        "messagingCredits": 25000,
        "monthlyLines": OMNI_30K_25K_LINES,
        "monthlySubtotal": eur_json("294.50"),
        "changes": [
            {
                "timing": "IMMEDIATE",
                "effectiveAt": NOW,
                "plan": {"code": "omnichannel"},
                "emailCredits": 30000,
                "messagingCredits": 25000,
            }
        ],
        "dueNow": due,
        "dueAtRenewal": due,
        "renewalAt": PERIOD_END,
        "periodStart": NOW,
        "periodEnd": PERIOD_END,
        "proration": None,
        "computedAt": NOW,
        "expiresAt": "2026-11-10T10:00:00+00:00",
    }


@pytest.mark.parametrize(
    ("details", "tax_line", "total"),
    [
        pytest.param(
            {"customerType": "COMPANY", "country": "NL", "vatId": "NL004495445B01"},
            vat(
                "NL",
                "0",
                "0",
                "294.50",
                "0.00",
                "REVERSE_CHARGE",
                REVERSE_CHARGE_NOTE.format("NL004495445B01"),
            ),
            "294.50",
            id="nl-business-reverse-charge",
        ),
        pytest.param(
            {"customerType": "COMPANY", "country": "NL", "vatId": "nl 0044.95445.b01"},
            vat(
                "NL",
                "0",
                "0",
                "294.50",
                "0.00",
                "REVERSE_CHARGE",
                REVERSE_CHARGE_NOTE.format("NL004495445B01"),
            ),
            "294.50",
            id="nl-business-vat-id-normalised",
        ),
        pytest.param(
            {"customerType": "COMPANY", "country": "AT", "vatId": "ATU13585627"},
            vat(
                "AT", "0", "0", "294.50", "0.00", "REVERSE_CHARGE", REVERSE_CHARGE_NOTE.format("ATU13585627")
            ),
            "294.50",
            id="at-business-reverse-charge",
        ),
        # Without a VAT ID a company cannot show it is taxable: taxed like a consumer (21 %: 61.845 -> 61.85).
        pytest.param(
            {"customerType": "COMPANY", "country": "NL"},
            vat("NL", "21", "0.21", "294.50", "61.85"),
            "356.35",
            id="nl-business-without-vat-id",
        ),
        pytest.param(
            {"customerType": "COMPANY", "country": "NL", "vatId": "  "},
            vat("NL", "21", "0.21", "294.50", "61.85"),
            "356.35",
            id="nl-business-blank-vat-id",
        ),
        pytest.param(
            {"customerType": "PERSON", "country": "FR"},
            vat("FR", "20", "0.20", "294.50", "58.90"),
            "353.40",
            id="fr-consumer",
        ),
        # Same country as the seller: domestic VAT even with a VAT ID.
        pytest.param(
            {"customerType": "COMPANY", "country": "DE", "vatId": "DE136695976"},
            vat("DE", "19", "0.19", "294.50", "55.96"),
            "350.46",
            id="de-business-domestic",
        ),
        pytest.param(
            {"customerType": "PERSON", "country": "US"},
            not_subject_to_eu_vat("US", "294.50"),
            "294.50",
            id="us-out-of-scope",
        ),
        pytest.param(
            {"customerType": "COMPANY", "country": "CH", "vatId": "CHE-123.456.788"},
            not_subject_to_eu_vat("CH", "294.50"),
            "294.50",
            id="ch-out-of-scope",
        ),
        # Country codes are forgiven their case and surrounding blanks.
        pytest.param(
            {"customerType": "PERSON", "country": " fr\t"},
            vat("FR", "20", "0.20", "294.50", "58.90"),
            "353.40",
            id="country-lower-case-blanks",
        ),
    ],
)
def test_free_to_omnichannel_tax_treatments(quote, free, details, tax_line, total):
    result = quote(
        free.key, planCode="omnichannel", emailCredits=30000, messagingCredits=25000, billingDetails=details
    )
    tax = tax_line["amount"]["amount"]
    expected = charge(OMNI_30K_25K_LINES, "294.50", [tax_line], tax, total)
    assert result["dueNow"] == expected
    assert result["dueAtRenewal"] == expected


def test_without_billing_details_tax_is_not_calculated(quote, free):
    result = quote(free.key, planCode="omnichannel", emailCredits=30000, messagingCredits=25000)
    expected = charge(OMNI_30K_25K_LINES, "294.50", None, "0.00", "294.50")
    assert expected["taxCalculated"] is False
    assert result["dueNow"] == expected
    assert result["dueAtRenewal"] == expected


def test_sliders_left_out_start_at_the_plan_defaults(quote, free):
    result = quote(free.key, planCode="omnichannel")
    assert (result["emailCredits"], result["messagingCredits"]) == (20000, 5000)
    assert result["dueNow"] == charge(
        [
            base("Omnichannel", "39.00"),
            credits("email", "5,001", "20,000", 15000, "0.0012", "18.00"),
            credits("messaging", "1,001", "5,000", 4000, "0.0095", "38.00"),
        ],
        "95.00",
        None,
        "0.00",
        "95.00",
    )


def test_free_to_email_at_the_top_of_the_slider(quote, free):
    result = quote(free.key, planCode="email", emailCredits=500000, billingDetails=DE_PERSON)
    lines = [
        base("Email", "15.00"),
        credits("email", "5,001", "50,000", 45000, "0.0015", "67.50"),
        credits("email", "50,001", "200,000", 150000, "0.0010", "150.00"),
        credits("email", "200,001", "500,000", 300000, "0.0007", "210.00"),
    ]  # 442.50; x 19 % = 84.075 -> 84.08
    assert result["kind"] == "NEW_PERIOD"
    assert result["dueNow"] == charge(
        lines, "442.50", [vat("DE", "19", "0.19", "442.50", "84.08")], "84.08", "526.58"
    )


def test_free_staying_free_is_no_change(quote, free):
    result = quote(free.key, planCode="free", billingDetails=DE_PERSON)
    assert result["kind"] == "NONE"
    assert result["changes"] == []
    assert result["dueNow"]["lines"] == [] and result["dueNow"]["total"] == eur_json("0.00")
    assert result["dueAtRenewal"]["lines"] == [] and result["dueAtRenewal"]["total"] == eur_json("0.00")


def test_a_free_period_rolls_forward_and_the_paid_period_starts_at_checkout(quote, free, clock):
    clock.advance(days=45)  # 2026-12-25 09:30, in the free period 12-10 .. 01-10
    result = quote(free.key, planCode="email")
    assert result["kind"] == "NEW_PERIOD"
    assert (result["periodStart"], result["periodEnd"]) == (
        "2026-12-25T09:30:00+00:00",
        "2027-01-25T09:30:00+00:00",
    )
    assert result["changes"][0]["effectiveAt"] == "2026-12-25T09:30:00+00:00"


# ------------------------------------------------------------- same paid plan


def test_raising_limits_is_a_prorated_upgrade(quote, make_workspace, clock):
    member = make_workspace(plan_code="omnichannel")  # 20,000 / 5,000: 95.00 a month
    clock.advance(days=7)  # 2026-11-17 09:30: 23 of 30 days left
    result = quote(member.key, planCode="omnichannel", emailCredits=50000, billingDetails=DE_PERSON)
    # New month 131.00 (39 + 54.00 + 38.00) x 23/30 = 100.4333 -> 100.43;
    # old month 95.00 x 23/30 = 72.8333 -> 72.83 back. 27.60 net, 19 % VAT 5.244 -> 5.24.
    span = "23 of 30 days"
    assert result["kind"] == "UPGRADE"
    assert result["proration"] == {"daysLeft": 23, "daysInPeriod": 30}
    assert result["dueNow"] == charge(
        [
            prorated("REMAINING_TIME", "Omnichannel (50,000 email, 5,000 messaging credits)", span, "100.43"),
            prorated("UNUSED_TIME", "Omnichannel (20,000 email, 5,000 messaging credits)", span, "-72.83"),
        ],
        "27.60",
        [vat("DE", "19", "0.19", "27.60", "5.24")],
        "5.24",
        "32.84",
    )
    assert result["changes"] == [
        {
            "timing": "IMMEDIATE",
            "effectiveAt": "2026-11-17T09:30:00+00:00",
            "plan": {"code": "omnichannel"},
            "emailCredits": 50000,
            "messagingCredits": 5000,
        }
    ]
    # The period anchor stays; the renewal charges the new month in full.
    assert (result["periodStart"], result["periodEnd"], result["renewalAt"]) == (NOW, PERIOD_END, PERIOD_END)
    assert result["monthlySubtotal"] == eur_json("131.00")
    assert result["dueAtRenewal"] == charge(
        [
            base("Omnichannel", "39.00"),
            credits("email", "5,001", "50,000", 45000, "0.0012", "54.00"),
            credits("messaging", "1,001", "5,000", 4000, "0.0095", "38.00"),
        ],
        "131.00",
        [vat("DE", "19", "0.19", "131.00", "24.89")],
        "24.89",
        "155.89",
    )


@pytest.mark.parametrize(
    ("days", "left", "remaining", "unused", "net"),
    [
        (0, 30, "187.50", "-178.50", "9.00"),
        (1, 29, "181.25", "-172.55", "8.70"),  # 187.50 x 29/30 = 181.25; 178.50 x 29/30 = 172.55
        (10, 20, "125.00", "-119.00", "6.00"),
        (29, 1, "6.25", "-5.95", "0.30"),
    ],
)
def test_proration_follows_the_days_left(quote, omni, clock, days, left, remaining, unused, net):
    clock.advance(days=days)
    result = quote(omni.key, planCode="omnichannel", emailCredits=60000)  # 187.50 a month
    assert result["kind"] == "UPGRADE"
    assert result["proration"] == {"daysLeft": left, "daysInPeriod": 30}
    amounts = [line["amount"]["amount"] for line in result["dueNow"]["lines"]]
    assert amounts == [remaining, unused]
    assert result["dueNow"]["total"] == eur_json(net)


def test_last_hours_of_a_period_prorate_to_zero_without_negative_zero(quote, omni, clock):
    clock.advance(days=29, hours=23)  # 2026-12-10 08:30, an hour before the period ends
    result = quote(omni.key, planCode="omnichannel", emailCredits=60000, billingDetails=DE_PERSON)
    assert result["proration"] == {"daysLeft": 0, "daysInPeriod": 30}
    assert [line["amount"] for line in result["dueNow"]["lines"]] == [eur_json("0.00"), eur_json("0.00")]
    assert result["dueNow"]["total"] == eur_json("0.00")


def test_lowering_limits_is_a_downgrade_at_renewal(quote, omni, clock):
    clock.advance(days=5)
    result = quote(omni.key, planCode="omnichannel", emailCredits=20000, billingDetails=DE_PERSON)
    assert result["kind"] == "DOWNGRADE"
    assert result["proration"] is None
    # Nothing is charged now, so there is nothing to tax: no tax line, but tax is known.
    assert result["dueNow"] == charge([], "0.00", [], "0.00", "0.00")
    assert result["changes"] == [
        {
            "timing": "AT_RENEWAL",
            "effectiveAt": PERIOD_END,
            "plan": {"code": "omnichannel"},
            "emailCredits": 20000,
            "messagingCredits": 10000,
        }
    ]
    # 39 + 18.00 + 85.50 = 142.50; 19 % = 27.075 -> 27.08.
    assert result["dueAtRenewal"] == charge(
        [
            base("Omnichannel", "39.00"),
            credits("email", "5,001", "20,000", 15000, "0.0012", "18.00"),
            credits("messaging", "1,001", "10,000", 9000, "0.0095", "85.50"),
        ],
        "142.50",
        [vat("DE", "19", "0.19", "142.50", "27.08")],
        "27.08",
        "169.58",
    )
    assert (result["periodStart"], result["periodEnd"]) == (NOW, PERIOD_END)


def test_raising_one_limit_and_lowering_another_is_split(quote, omni, clock):
    clock.advance(days=15)  # 2026-11-25 09:30: 15 of 30 days left
    result = quote(
        omni.key, planCode="omnichannel", emailCredits=60000, messagingCredits=5000, billingDetails=DE_PERSON
    )
    assert result["kind"] == "SPLIT"
    # Now: the raised email limit with the current messaging limit, 60,000 / 10,000:
    # 39 + 54.00 + 9.00 + 85.50 = 187.50 x 15/30 = 93.75, less 178.50 x 15/30 = 89.25.
    # 4.50 net; 19 % = 0.855 -> 0.86 (half up).
    span = "15 of 30 days"
    assert result["dueNow"] == charge(
        [
            prorated("REMAINING_TIME", "Omnichannel (60,000 email, 10,000 messaging credits)", span, "93.75"),
            prorated("UNUSED_TIME", "Omnichannel (50,000 email, 10,000 messaging credits)", span, "-89.25"),
        ],
        "4.50",
        [vat("DE", "19", "0.19", "4.50", "0.86")],
        "0.86",
        "5.36",
    )
    assert result["changes"] == [
        {
            "timing": "IMMEDIATE",
            "effectiveAt": "2026-11-25T09:30:00+00:00",
            "plan": {"code": "omnichannel"},
            "emailCredits": 60000,
            "messagingCredits": 10000,
        },
        {
            "timing": "AT_RENEWAL",
            "effectiveAt": PERIOD_END,
            "plan": {"code": "omnichannel"},
            "emailCredits": 60000,
            "messagingCredits": 5000,
        },
    ]
    assert result["proration"] == {"daysLeft": 15, "daysInPeriod": 30}
    # From renewal, the target: 39 + 54.00 + 9.00 + 38.00 = 140.00; 19 % = 26.60.
    assert result["monthlySubtotal"] == eur_json("140.00")
    assert result["dueAtRenewal"]["total"] == eur_json("166.60")
    assert result["dueAtRenewal"]["taxLines"] == [vat("DE", "19", "0.19", "140.00", "26.60")]


def test_same_limits_on_the_same_plan_is_no_change(quote, omni):
    result = quote(omni.key, planCode="omnichannel")  # sliders left out: the current limits
    assert result["kind"] == "NONE"
    assert (result["emailCredits"], result["messagingCredits"]) == (50000, 10000)
    assert result["changes"] == []
    assert result["dueNow"]["total"] == eur_json("0.00")
    assert result["dueAtRenewal"]["total"] == eur_json("178.50")


# ---------------------------------------------------------- between plans


def test_paid_to_a_lower_plan_is_scheduled(quote, omni):
    result = quote(omni.key, planCode="email")
    assert result["kind"] == "DOWNGRADE"
    assert result["dueNow"] == charge([], "0.00", None, "0.00", "0.00")
    assert result["changes"] == [
        {
            "timing": "AT_RENEWAL",
            "effectiveAt": PERIOD_END,
            "plan": {"code": "email"},
            "emailCredits": 10000,
            "messagingCredits": None,  # the Email plan has no messaging credits
        }
    ]
    assert result["dueAtRenewal"] == charge(
        [
            base("Email", "15.00"),
            credits("email", "5,001", "10,000", 5000, "0.0015", "7.50"),
        ],
        "22.50",
        None,
        "0.00",
        "22.50",
    )


def test_paid_to_free_charges_nothing_at_renewal(quote, omni):
    result = quote(omni.key, planCode="free", billingDetails=DE_PERSON)
    assert result["kind"] == "DOWNGRADE"
    assert result["changes"][0]["timing"] == "AT_RENEWAL"
    assert result["dueAtRenewal"]["lines"] == []
    assert result["dueAtRenewal"]["total"] == eur_json("0.00")


def test_email_to_omnichannel_is_a_prorated_upgrade(quote, make_workspace, clock):
    member = make_workspace(plan_code="email", email_credits=10000)  # 22.50 a month
    clock.advance(days=20)  # 10 of 30 days left
    result = quote(member.key, planCode="omnichannel")
    assert result["kind"] == "UPGRADE"
    span = "10 of 30 days"
    # 95.00 x 10/30 = 31.6667 -> 31.67; 22.50 x 10/30 = 7.50.
    assert result["dueNow"]["lines"] == [
        prorated("REMAINING_TIME", "Omnichannel (20,000 email, 5,000 messaging credits)", span, "31.67"),
        prorated("UNUSED_TIME", "Email (10,000 email credits)", span, "-7.50"),
    ]
    assert result["dueNow"]["total"] == eur_json("24.17")


def test_custom_cannot_be_quoted(quote, free):
    assert quote(free.key, planCode="custom") == {
        "__typename": "PlanNotPurchasable",
        "code": "PLAN_NOT_PURCHASABLE",
        "field": ["planCode"],
        "message": "the Custom plan is sold by quote: request one or contact sales@contact.center",
    }


# -------------------------------------------------------------- time and purity


def test_expires_after_it_was_computed(quote, free, clock):
    clock.advance(minutes=7, seconds=30)
    result = quote(free.key, planCode="email")
    assert result["computedAt"] == "2026-11-10T09:37:30+00:00"
    assert result["expiresAt"] == "2026-11-10T10:07:30+00:00"


def test_a_paid_period_that_ended_waits_for_renewal(quote, omni, clock):
    clock.advance(days=30)
    assert quote(omni.key, planCode="omnichannel", emailCredits=60000) == {
        "__typename": "RenewalPending",
        "code": "RENEWAL_PENDING",
        "field": [],
        "message": "the current period has ended; its renewal runs first",
    }


def test_quoting_writes_nothing(quote, free, omni, gateway, clock):
    before = snapshot(gateway)
    assert sum(map(len, before.values())) >= 4  # two workspaces and their keys at least
    clock.advance(days=3)
    for key in (free.key, omni.key):
        quote(
            key, planCode="omnichannel", emailCredits=60000, messagingCredits=5000, billingDetails=DE_PERSON
        )
        quote(
            key,
            planCode="email",
            billingDetails={"customerType": "COMPANY", "country": "NL", "vatId": "NL004495445B01"},
        )
        quote(key, planCode="free")
        quote(key, planCode="custom")
        quote(key, planCode="omnichannel", emailCredits=-1)
    assert snapshot(gateway) == before
