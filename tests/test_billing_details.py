"""updateBillingDetails: partial updates, every field checked (the VAT ID against the
country), each problem reported with its field, nothing saved when any is wrong."""

from __future__ import annotations

import pytest

from helpers import GERMAN_PERSON, snapshot

UPDATE = """mutation($input: UpdateBillingDetailsInput!) { updateBillingDetails(input: $input) {
  __typename
  ... on BillingDetails { customerType name companyName addressLine1 addressLine2 city postalCode region
                          country vatId email missingFields }
  ... on InvalidBillingDetails { problems { field message } }
  ... on UserError { code field message }
} }"""
READ = """{ workspace { ... on Workspace { billingDetails { customerType name companyName addressLine1
  addressLine2 city postalCode region country vatId email missingFields } } } }"""

ALL_MISSING = ["customerType", "name", "addressLine1", "city", "postalCode", "country", "email"]


def update(graphql, member, **input_) -> dict:
    return graphql(UPDATE, {"input": input_}, key=member.key)["updateBillingDetails"]


def saved(graphql, member) -> dict | None:
    return graphql(READ, key=member.key)["workspace"]["billingDetails"]


@pytest.fixture
def member(make_workspace):
    return make_workspace()


def test_no_details_yet(graphql, member):
    assert saved(graphql, member) is None


def test_partial_updates_keep_what_is_left_out(graphql, member):
    first = update(graphql, member, customerType="PERSON", name="  Erika   Mustermann ", country="de")
    assert first == {
        "__typename": "BillingDetails",
        "customerType": "PERSON",
        "name": "Erika Mustermann",
        "companyName": None,
        "addressLine1": None,
        "addressLine2": None,
        "city": None,
        "postalCode": None,
        "region": None,
        "country": "DE",
        "vatId": None,
        "email": None,
        "missingFields": ["addressLine1", "city", "postalCode", "email"],
    }

    second = update(
        graphql,
        member,
        addressLine1="Heidestraße 17",
        addressLine2="Hinterhaus",
        city="Köln",
        postalCode="51147",
        email="erika@example.de",
    )
    assert second["missingFields"] == [] and second["name"] == "Erika Mustermann"
    assert saved(graphql, member) == {k: v for k, v in second.items() if k != "__typename"}

    cleared = update(graphql, member, addressLine2=None, region="  ")  # null and blank clear optional fields
    assert (cleared["addressLine2"], cleared["region"], cleared["city"]) == (None, None, "Köln")


def test_a_company_needs_its_name(graphql, member):
    result = update(graphql, member, **{**GERMAN_PERSON, "customerType": "COMPANY"})
    assert result["missingFields"] == ["companyName"]
    result = update(graphql, member, companyName="Mustermann GmbH", vatId="DE136695976")
    assert (result["missingFields"], result["vatId"]) == ([], "DE136695976")


@pytest.mark.parametrize(
    ("vat_id", "country"), [("DE136695976", "DE"), ("NL004495445B01", "NL"), ("ATU13585627", "AT")]
)
def test_valid_vat_ids(graphql, member, vat_id, country):
    result = update(
        graphql,
        member,
        **{
            **GERMAN_PERSON,
            "customerType": "COMPANY",
            "companyName": "Acme",
            "country": country,
            "vatId": vat_id,
        },
    )
    assert (result["__typename"], result["vatId"], result["country"]) == ("BillingDetails", vat_id, country)


@pytest.mark.parametrize(
    ("input_", "field", "message"),
    [
        ({"country": "XX"}, "country", "unknown country 'XX'"),
        ({"country": "Germany"}, "country", "unknown country"),
        ({"country": "D\u0000"}, "country", "control characters"),
        ({"email": "erika"}, "email", "is not an email address"),
        ({"email": "erika@localhost"}, "email", "is not an email address"),
        ({"email": "a b@example.de"}, "email", "is not an email address"),
        ({"name": "x" * 201}, "name", "at most 200 characters"),
        ({"companyName": "x" * 201}, "companyName", "at most 200 characters"),
        ({"addressLine1": "x" * 201}, "addressLine1", "at most 200 characters"),
        ({"addressLine2": "x" * 201}, "addressLine2", "at most 200 characters"),
        ({"city": "x" * 101}, "city", "at most 100 characters"),
        ({"postalCode": "1" * 21}, "postalCode", "at most 20 characters"),
        ({"region": "x" * 101}, "region", "at most 100 characters"),
        ({"vatId": "DE" + "1" * 31}, "vatId", "at most 32 characters"),
        ({"vatId": "DE136695978"}, "vatId", ""),  # bad checksum
        ({"vatId": "nonsense"}, "vatId", ""),
        ({"vatId": "NL004495445B01"}, "vatId", ""),  # a Dutch VAT ID with a German address
        ({"country": "NL", "vatId": "DE136695976"}, "vatId", ""),
        ({"name": None}, "name", "cannot be cleared"),
        ({"country": None}, "country", "cannot be cleared"),
        ({"customerType": None}, "customerType", "cannot be cleared"),
        ({"email": ""}, "email", "cannot be cleared"),
        ({"city": "Köln\u0000"}, "city", "control characters"),
        ({"name": "Erika\u001b[31m"}, "name", "control characters"),
    ],
)
def test_each_invalid_field_is_refused_and_nothing_is_saved(graphql, gateway, member, input_, field, message):
    base = update(graphql, member, **GERMAN_PERSON)
    assert base["missingFields"] == []
    before = snapshot(gateway)

    result = update(graphql, member, **{"addressLine2": "changed too", **input_})

    assert result["__typename"] == "InvalidBillingDetails", result
    assert (result["code"], result["field"]) == ("INVALID_BILLING_DETAILS", [field])
    assert [p["field"] for p in result["problems"]] == [[field]]
    assert message in result["problems"][0]["message"] and result["message"]
    assert snapshot(gateway) == before
    assert saved(graphql, member)["addressLine2"] is None


def test_every_problem_is_listed_in_field_order(graphql, gateway, member):
    before = snapshot(gateway)
    result = update(graphql, member, email="nope", country="XX", name="x" * 300, city="a\u0007")
    assert [p["field"] for p in result["problems"]] == [["name"], ["city"], ["country"], ["email"]]
    assert result["field"] == ["name"]
    assert snapshot(gateway) == before
    assert saved(graphql, member) is None


def test_the_vat_id_is_checked_against_the_resulting_country(graphql, member):
    company = {**GERMAN_PERSON, "customerType": "COMPANY", "companyName": "Acme", "vatId": "DE136695976"}
    update(graphql, member, **company)
    moved = update(graphql, member, country="NL")
    assert (moved["__typename"], moved["field"]) == ("InvalidBillingDetails", ["vatId"])
    both = update(graphql, member, country="NL", vatId="NL004495445B01")
    assert (both["country"], both["vatId"]) == ("NL", "NL004495445B01")
    removed = update(graphql, member, country="DE", vatId=None)
    assert (removed["country"], removed["vatId"]) == ("DE", None)


def test_an_empty_update_changes_nothing(graphql, member):
    update(graphql, member, **GERMAN_PERSON)
    assert update(graphql, member)["name"] == "Erika Mustermann"


def test_details_belong_to_the_workspace(graphql, member, make_workspace):
    other = make_workspace("Other Ltd")
    update(graphql, member, **GERMAN_PERSON)
    assert saved(graphql, other) is None


@pytest.mark.parametrize("key", [None, "bgw_000000000000_wrong"])
def test_updating_needs_a_key(client, gateway, key):
    before = snapshot(gateway)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    response = client.post(
        "/graphql", json={"query": UPDATE, "variables": {"input": GERMAN_PERSON}}, headers=headers
    )
    assert response.json()["data"]["updateBillingDetails"]["code"] == "AUTHENTICATION_REQUIRED"
    assert snapshot(gateway) == before


@pytest.mark.parametrize(
    "input_",
    [
        {"customerType": "ALIEN"},
        {"customerType": "person"},
        {"name": 5},
        {"vatId": ["DE136695976"]},
        {"surprise": True},
    ],
)
def test_malformed_input_is_a_request_error(client, gateway, member, input_):
    before = snapshot(gateway)
    response = client.post(
        "/graphql",
        json={"query": UPDATE, "variables": {"input": input_}},
        headers={"Authorization": f"Bearer {member.key}", "Accept": "application/graphql-response+json"},
    )
    assert response.status_code == 400 and "data" not in response.json()
    assert snapshot(gateway) == before
