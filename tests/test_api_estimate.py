"""The Message Calculator (`estimate`): how many messages the credits buy.

Rates from the bundled rate card, in messaging credits per message (per segment for
SMS): DE SMS 7.5, WhatsApp Marketing 13.6, Utility 5.5, Authentication 5.5;
CN SMS 3.5 and no WhatsApp; IN WhatsApp Utility 0.14.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from helpers import snapshot

ESTIMATE = """mutation($input: EstimateInput!) { estimate(input: $input) {
  __typename
  ... on Estimate { messageType { code } destination { country name } credits creditKind creditsPerMessage
                    segments encoding characters messages creditsLeft }
  ... on UserError { code message field }
  ... on UnknownCountry { country }
  ... on UnknownMessageType { requestedMessageType }
  ... on MessageTypeNotOffered { messageType { code } country offeredMessageTypes { code } }
  ... on InvalidVolume { value min max step }
  ... on TextTooLong { length maxLength }
} }"""

GERMANY = {"country": "DE", "name": "Germany"}


@pytest.fixture
def estimate(graphql):
    def run(**input: object) -> dict:
        return graphql(ESTIMATE, {"input": input})["estimate"]

    return run


def numbers(result: dict) -> tuple:
    """The exact figures, credits as Decimals (their string form is not the point)."""
    left = result["creditsLeft"]
    return (
        Decimal(result["creditsPerMessage"]),
        result["segments"],
        result["messages"],
        Decimal(left) if left is not None else None,
    )


# ------------------------------------------------------------------------- email


@pytest.mark.parametrize("credits", [0, 1, 999, 1000, 2_147_483_647])
def test_each_email_uses_one_credit(estimate, credits):
    result = estimate(credits=credits, messageType="EMAIL")
    assert result == {
        "__typename": "Estimate",
        "messageType": {"code": "EMAIL"},
        "destination": None,
        "credits": credits,
        "creditKind": "EMAIL",
        "creditsPerMessage": result["creditsPerMessage"],
        "segments": 1,
        "encoding": None,
        "characters": None,
        "messages": credits,
        "creditsLeft": result["creditsLeft"],
    }
    assert numbers(result) == (Decimal(1), 1, credits, Decimal(0))


def test_email_ignores_country_and_text(estimate):
    result = estimate(credits=50, messageType="EMAIL", country="DE", sampleText="x" * 500)
    assert numbers(result) == (Decimal(1), 1, 50, Decimal(0))
    assert result["destination"] is None


# --------------------------------------------------------------------------- SMS


@pytest.mark.parametrize(
    ("credits", "messages", "left"),
    [
        (0, 0, "0"),
        (14, 0, "14"),
        (15, 1, "0"),
        (1000, 66, "10"),
        (1001, 66, "11"),
        (2_147_483_647, 143_165_576, "7"),  # floor(2147483647 / 15)
    ],
)
def test_sms_of_161_gsm_characters_is_two_segments(estimate, credits, messages, left):
    result = estimate(credits=credits, messageType="SMS", country="DE", sampleText="a" * 161)
    assert result["destination"] == GERMANY
    assert (result["encoding"], result["characters"], result["creditKind"]) == ("GSM_7", 161, "MESSAGING")
    # Two segments at 7.5 credits: 15 credits a message; messages = floor(credits / 15).
    assert numbers(result) == (Decimal("15"), 2, messages, Decimal(left))
    assert messages == credits // 15


@pytest.mark.parametrize(
    ("text", "encoding", "characters", "segments"),
    [
        ("", "GSM_7", 0, 1),
        ("a" * 160, "GSM_7", 160, 1),
        ("a" * 306, "GSM_7", 306, 2),  # 2 x 153
        ("a" * 307, "GSM_7", 307, 3),
        ("€" * 80, "GSM_7", 160, 1),  # extension characters take two septets
        ("€" * 81, "GSM_7", 162, 2),
        ("Grüße aus Köln! Ça va? ÄÖÜ äöü ß £$¥ @", "GSM_7", 38, 1),
        ("ç" * 70, "UCS_2", 70, 1),  # lower-case ç is not GSM-7
        ("ç" * 71, "UCS_2", 71, 2),  # parts of 67
        ("Привет " * 19, "UCS_2", 133, 2),
        ("😀" * 35, "UCS_2", 70, 1),  # each emoji is two UTF-16 units
        ("😀" * 36, "UCS_2", 72, 2),
        ("x" * 1600, "GSM_7", 1600, 11),  # the longest sample text accepted
    ],
)
def test_sms_segments_by_encoding(estimate, text, encoding, characters, segments):
    result = estimate(credits=1000, messageType="SMS", country="DE", sampleText=text)
    assert (result["encoding"], result["characters"], result["segments"]) == (encoding, characters, segments)
    cost = Decimal("7.5") * segments
    assert numbers(result) == (cost, segments, int(Decimal(1000) // cost), Decimal(1000) % cost)


def test_sms_without_sample_text_is_priced_per_message(estimate):
    result = estimate(credits=1000, messageType="SMS", country="DE")
    assert (result["encoding"], result["characters"]) == (None, None)
    assert numbers(result) == (Decimal("7.5"), 1, 133, Decimal("2.5"))


def test_sms_to_china(estimate):
    result = estimate(credits=100, messageType="SMS", country="CN")
    assert result["destination"] == {"country": "CN", "name": "China"}
    assert numbers(result) == (Decimal("3.5"), 1, 28, Decimal("2"))


def test_codes_are_forgiven_case_and_blanks(estimate):
    result = estimate(credits=1000, messageType=" sms ", country="de\n", sampleText="a" * 161)
    assert result["messageType"] == {"code": "SMS"} and result["destination"] == GERMANY
    assert numbers(result) == (Decimal("15"), 2, 66, Decimal("10"))


# ---------------------------------------------------------------------- WhatsApp


@pytest.mark.parametrize(
    ("message_type", "rate", "messages", "left"),
    [
        ("WHATSAPP_MARKETING", "13.6", 73, "7.2"),  # 1000 / 13.6 = 73.5
        ("WHATSAPP_UTILITY", "5.5", 181, "4.5"),
        ("WHATSAPP_AUTHENTICATION", "5.5", 181, "4.5"),
    ],
)
def test_whatsapp_types_to_germany(estimate, message_type, rate, messages, left):
    result = estimate(credits=1000, messageType=message_type, country="DE", sampleText="ç" * 500)
    assert result["messageType"] == {"code": message_type}
    assert (result["encoding"], result["characters"]) == (None, None)  # not segmented
    assert numbers(result) == (Decimal(rate), 1, messages, Decimal(left))


def test_fractional_rates_stay_exact(estimate):
    result = estimate(credits=3, messageType="WHATSAPP_UTILITY", country="IN")
    assert numbers(result) == (Decimal("0.14"), 1, 21, Decimal("0.06"))  # 21 x 0.14 = 2.94


# ------------------------------------------------------------------ typed errors


def test_unknown_country(estimate):
    assert estimate(credits=1000, messageType="SMS", country="XX") == {
        "__typename": "UnknownCountry",
        "code": "UNKNOWN_COUNTRY",
        "field": ["country"],
        "message": "no messaging rates for destination 'XX'",
        "country": "XX",
    }


@pytest.mark.parametrize("country", [None, "", "   "])
def test_messaging_needs_a_country(estimate, country):
    input = {"credits": 1000, "messageType": "WHATSAPP_MARKETING"}
    if country is not None:
        input["country"] = country
    assert estimate(**input) == {
        "__typename": "UnknownCountry",
        "code": "UNKNOWN_COUNTRY",
        "field": ["country"],
        "message": "WhatsApp Marketing needs a destination country",
        "country": None,  # none was given
    }


@pytest.mark.parametrize("message_type", ["FAX", "", "WHATSAPP", "SMS_", "e-mail", "ſms"])
def test_unknown_message_type(estimate, message_type):
    assert estimate(credits=1000, messageType=message_type, country="DE") == {
        "__typename": "UnknownMessageType",
        "code": "UNKNOWN_MESSAGE_TYPE",
        "field": ["messageType"],
        "message": f"unknown message type {message_type!r}",
        "requestedMessageType": message_type,
    }


@pytest.mark.parametrize(
    "message_type", ["WHATSAPP_MARKETING", "WHATSAPP_UTILITY", "WHATSAPP_AUTHENTICATION"]
)
def test_type_not_offered_to_the_destination(estimate, message_type):
    """A type that exists but not for the country is its own error, not a misspelt type's."""
    name = {
        "WHATSAPP_MARKETING": "WhatsApp Marketing",
        "WHATSAPP_UTILITY": "WhatsApp Utility",
        "WHATSAPP_AUTHENTICATION": "WhatsApp Authentication",
    }[message_type]
    assert estimate(credits=1000, messageType=message_type.lower(), country=" cn") == {
        "__typename": "MessageTypeNotOffered",
        "code": "MESSAGE_TYPE_NOT_OFFERED",
        "field": ["messageType"],
        "message": f"{name} is not offered to China, which offers SMS",
        "messageType": {"code": message_type},
        "country": "CN",
        "offeredMessageTypes": [{"code": "SMS"}],
    }


@pytest.mark.parametrize("credits", [-1, -15, -2_147_483_648])
def test_negative_credits(estimate, credits):
    assert estimate(credits=credits, messageType="SMS", country="DE") == {
        "__typename": "InvalidVolume",
        "code": "INVALID_VOLUME",
        "field": ["credits"],
        "message": "credits must not be negative",
        "value": credits,
        "min": 0,
        "max": None,
        "step": None,
    }


@pytest.mark.parametrize("length", [1601, 10_000])
def test_sample_text_too_long(estimate, length):
    assert estimate(credits=1000, messageType="SMS", country="DE", sampleText="a" * length) == {
        "__typename": "TextTooLong",
        "code": "TEXT_TOO_LONG",
        "field": ["sampleText"],
        "message": "sample texts are limited to 1600 characters",
        "length": length,
        "maxLength": 1600,
    }


def test_estimate_needs_no_key_and_writes_nothing(estimate, gateway, make_workspace):
    make_workspace()
    before = snapshot(gateway)
    estimate(credits=1000, messageType="SMS", country="DE", sampleText="hi")
    estimate(credits=-1, messageType="SMS", country="DE")
    assert snapshot(gateway) == before  # not a row added, changed or removed
