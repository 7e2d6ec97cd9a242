"""Every input type of the schema is built by its own builder (gateway.api.inputs) exactly as
Strawberry's generic conversion builds it: for values with every field set, with only the
required ones, and with explicit nulls, each parsed by graphql-core first as in a request."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import strawberry
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
    coerce_input_value,
)
from strawberry.types.arguments import convert_argument

from gateway.api import inputs
from gateway.api.schema import build_schema

SCHEMA = build_schema()
INPUT_TYPES = sorted(
    name for name, t in SCHEMA._schema.type_map.items() if isinstance(t, GraphQLInputObjectType)
)
SCALARS = {
    "String": "text",
    "ID": "id-1",
    "Int": 7,
    "Float": 1.5,
    "Boolean": True,
    "Decimal": "12.50",
    "DateTime": "2026-12-07T10:00:00+00:00",
    "Date": "2026-12-07",
    "JSON": {"a": [1, "b"]},
}


def sample(type_: GraphQLInputType, shape: str, depth: int = 0) -> Any:
    """A raw input value of ``type_``: "all" fields, only the "required" ones, or "nulls" for
    every nullable field."""
    if isinstance(type_, GraphQLNonNull):
        return sample(type_.of_type, shape, depth)
    if isinstance(type_, GraphQLList):
        return [sample(type_.of_type, shape, depth + 1)]
    if isinstance(type_, GraphQLEnumType):
        return next(iter(type_.values))
    if isinstance(type_, GraphQLScalarType):
        return SCALARS[type_.name]
    assert isinstance(type_, GraphQLInputObjectType)
    value = {}
    for name, field in type_.fields.items():
        required = isinstance(field.type, GraphQLNonNull)
        if shape == "all" or required:
            value[name] = sample(field.type, shape, depth + 1) if depth < 4 or required else None
        elif shape == "nulls":
            value[name] = None
    return value


def generic(cls: type, parsed: Any) -> Any:
    """Strawberry's own conversion: the builders taken away for the call."""
    definitions = [SCHEMA._schema.type_map[name].extensions["strawberry-definition"] for name in INPUT_TYPES]
    saved = [d.from_input for d in definitions]
    try:
        for d in definitions:
            d.from_input = None
        return convert_argument(parsed, cls, SCHEMA.schema_converter.scalar_registry, SCHEMA.config)
    finally:
        for d, hook in zip(definitions, saved, strict=True):
            d.from_input = hook


def built(cls: type, parsed: Any) -> Any:
    return convert_argument(parsed, cls, SCHEMA.schema_converter.scalar_registry, SCHEMA.config)


def same(a: Any, b: Any) -> bool:
    """Equal and of the same classes all the way down (a str is not an enum member)."""
    if type(a) is not type(b):
        return False
    if dataclasses.is_dataclass(a):
        return all(same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


def test_every_input_type_has_a_builder():
    assert inputs.install(SCHEMA) == len(INPUT_TYPES) > 10
    for name in INPUT_TYPES:
        assert SCHEMA._schema.type_map[name].extensions["strawberry-definition"].from_input is not None


@pytest.mark.parametrize("shape", ["all", "required", "nulls"])
@pytest.mark.parametrize("name", INPUT_TYPES)
def test_an_input_is_built_as_strawberry_builds_it(name, shape):
    graphql_type = SCHEMA._schema.type_map[name]
    cls = graphql_type.extensions["strawberry-definition"].origin
    parsed = coerce_input_value(sample(graphql_type, shape), graphql_type)
    expected = generic(cls, parsed)
    answer = built(cls, parsed)
    assert same(answer, expected), (answer, expected)


def test_an_omitted_field_keeps_its_default_and_a_null_stays_null():
    quote_input = SCHEMA._schema.type_map["QuoteInput"]
    cls = quote_input.extensions["strawberry-definition"].origin
    omitted = built(cls, coerce_input_value({"planCode": "email"}, quote_input))
    nulled = built(cls, coerce_input_value({"planCode": "email", "emailCredits": None}, quote_input))
    assert omitted.plan_code == "email" and omitted.email_credits is None and omitted.billing_details is None
    assert nulled.email_credits is None
    with_details = built(
        cls,
        coerce_input_value(
            {"planCode": "email", "billingDetails": {"customerType": "COMPANY", "country": "DE"}}, quote_input
        ),
    )
    assert type(with_details.billing_details).__name__ == "BillingDetailsInput"
    assert with_details.billing_details.customer_type.name == "COMPANY"  # the enum member, not its name


@strawberry.input
class Bare:
    required: str
    nullable: str | None
    nested: list[int] | None


@strawberry.type
class BareQuery:
    @strawberry.field
    def echo(self, value: Bare) -> str:
        return f"{value.required}|{value.nullable}|{value.nested}"


def test_a_nullable_field_without_a_default_is_none_when_omitted():
    """Strawberry fills such fields with None before the fields sent; so does the builder."""
    schema = strawberry.Schema(query=BareQuery)
    assert inputs.install(schema) == 1
    answer = schema.execute_sync(
        '{ a: echo(value: {required: "r"}) b: echo(value: {required: "r", nested: [1]}) }'
    )
    assert answer.errors is None
    assert answer.data == {"a": "r|None|None", "b": "r|None|[1]"}


@strawberry.input
class WithMaybe:
    name: strawberry.Maybe[str]


@strawberry.type
class MaybeQuery:
    @strawberry.field
    def echo(self, value: WithMaybe) -> str:
        return "set" if value.name else "unset"


def test_an_input_with_a_maybe_field_keeps_strawberry_s_conversion_and_validation():
    """Strawberry refuses an explicit null for a Maybe[T] field in validation, but only for
    types without their own builder: such types get none."""
    schema = strawberry.Schema(query=MaybeQuery)
    assert inputs.install(schema) == 0
    refused = schema.execute_sync("{ echo(value: {name: null}) }")
    assert refused.errors and refused.data is None
    assert schema.execute_sync('{ echo(value: {name: "x"}) }').data == {"echo": "set"}
