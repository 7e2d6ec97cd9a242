"""Rules that keep the published schema consistent for clients, checked on the built schema.

* Members of a union never declare one field name with two types: a document selecting the
  field on both members would fail validation (GraphQL's "fields can be merged" rule).
* Identifiers are `ID`: every field and argument named `id` or ending in `Id`/`Ids`.
* The same failure is the same error type in every operation: every mutation that takes an
  idempotency key can answer `IdempotencyKeyRejected`, and an error code is carried by one
  GraphQL error type only.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from graphql import (
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    get_named_type,
)

from gateway.api import errors as api_errors
from gateway.api.schema import build_schema
from gateway.core import errors as core_errors

GATEWAY = Path(__file__).parent.parent / "gateway"

# Fields whose name ends in "Id" but that hold no identifier the gateway gives out: a VAT ID is a
# tax registration number a person types and reads (format-checked, shown on invoices), not an
# opaque key; typing it `ID` would tell code generators to treat it as one.
NOT_IDENTIFIERS = {"vatId"}


@pytest.fixture(scope="module")
def schema() -> GraphQLSchema:
    return build_schema()._schema


def _user_types(schema: GraphQLSchema) -> Iterator[GraphQLNamedType]:
    for name, named in schema.type_map.items():
        if not name.startswith("__"):
            yield named


def test_union_members_agree_on_the_type_of_every_shared_field(schema):
    conflicts = []
    for union in _user_types(schema):
        if not isinstance(union, GraphQLUnionType):
            continue
        seen: dict[str, tuple[str, str]] = {}  # field name -> (type, member that declared it)
        for member in union.types:
            for name, field in member.fields.items():
                kind = str(field.type)
                first = seen.setdefault(name, (kind, member.name))
                if first[0] != kind:
                    conflicts.append(
                        f"{union.name}: {first[1]}.{name}: {first[0]} but {member.name}.{name}: {kind}"
                    )
    assert conflicts == []


def _is_identifier(name: str) -> bool:
    return (name == "id" or re.search(r"[a-z0-9](Id|Ids)$", name) is not None) and name not in NOT_IDENTIFIERS


def _is_id(type_: object) -> bool:
    while isinstance(type_, GraphQLNonNull | GraphQLList):
        type_ = type_.of_type
    return getattr(type_, "name", None) == "ID"


def _identifier_places(schema: GraphQLSchema) -> Iterator[tuple[str, object]]:
    """Every output field, argument and input field named like an identifier, with its type."""
    for named in _user_types(schema):
        if isinstance(named, GraphQLObjectType | GraphQLInterfaceType):
            for name, field in named.fields.items():
                if _is_identifier(name):
                    yield f"{named.name}.{name}", field.type
                for arg_name, arg in field.args.items():
                    if _is_identifier(arg_name):
                        yield f"{named.name}.{name}({arg_name})", arg.type
        elif isinstance(named, GraphQLInputObjectType):
            for name, input_field in named.fields.items():
                if _is_identifier(name):
                    yield f"{named.name}.{name}", input_field.type


def test_every_identifier_is_an_id(schema):
    places = dict(_identifier_places(schema))
    assert len(places) > 20  # the walk does find them
    assert [place for place, type_ in places.items() if not _is_id(type_)] == []


def test_the_identifier_rule_sees_what_it_must():
    assert _is_identifier("id") and _is_identifier("paymentId") and _is_identifier("endpointIds")
    assert not _is_identifier("paid") and not _is_identifier("vatId") and not _is_identifier("valid")


def _mutations_taking_an_idempotency_key(schema: GraphQLSchema) -> dict[str, GraphQLField]:
    found = {}
    for name, field in schema.mutation_type.fields.items():
        for arg in field.args.values():
            named = get_named_type(arg.type)
            if isinstance(named, GraphQLInputObjectType) and "idempotencyKey" in named.fields:
                found[name] = field
    return found


def test_every_mutation_taking_an_idempotency_key_answers_its_refusal_alike(schema):
    mutations = _mutations_taking_an_idempotency_key(schema)
    assert {"checkout", "topUpBalance", "addCard", "payInvoice", "recordUsage"} <= set(mutations)
    missing = [
        name
        for name, field in mutations.items()
        if "IdempotencyKeyRejected" not in {t.name for t in get_named_type(field.type).types}
    ]
    assert missing == []


def _refused_codes_in_source() -> dict[str, set[str]]:
    """The codes the gateway gives `PaymentRefused` (answered as PaymentRejected), per file."""
    codes: dict[str, set[str]] = defaultdict(set)
    for path in GATEWAY.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", getattr(node.func, "attr", None)) == "PaymentRefused"
                and node.args
                and isinstance(node.args[0], ast.Attribute)
                and getattr(node.args[0].value, "id", None) == "ErrorCode"
            ):
                codes[node.args[0].attr].add(str(path.relative_to(GATEWAY)))
    return codes


def _domain_errors() -> Iterator[type[core_errors.DomainError]]:
    pending = [core_errors.DomainError]
    while pending:
        kind = pending.pop()
        pending.extend(kind.__subclasses__())
        yield kind


def test_one_error_code_is_one_error_type():
    """Each error code belongs to one error class, translated to one GraphQL type in every operation;
    the codes `PaymentRefused` carries (answered as PaymentRejected) belong to no such class, so an
    unknown plan, incomplete billing details or a suspended workspace never reads as a payment refusal."""
    owners: dict[core_errors.ErrorCode, list[str]] = defaultdict(list)
    for kind in _domain_errors():
        code = kind.__dict__.get("code")
        if isinstance(code, core_errors.ErrorCode):
            assert api_errors.has_translation(kind), kind
            owners[code].append(kind.__name__)
    assert {"AllowanceExceeded", "IdempotencyKeyReused", "MessageTypeNotOffered"} <= {
        kind for kinds in owners.values() for kind in kinds
    }  # the schema's import loaded the errors beside their services
    assert {code: kinds for code, kinds in owners.items() if len(kinds) > 1} == {}
    refused = _refused_codes_in_source()
    assert {"UNKNOWN_CARD", "UNKNOWN_PAYMENT_METHOD"} <= set(refused)  # the walk finds them
    assert {code: files for code, files in refused.items() if core_errors.ErrorCode[code] in owners} == {}
