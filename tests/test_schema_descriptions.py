"""Every element of the published schema has a description (issue 10, part 7).

The walk covers each named type but the built-in scalars and the introspection types: the type
itself, each field and each of its arguments (the root types' fields included), each input field,
each enum value. Unions, interfaces and custom scalars are counted as types. The coverage is
printed; the test fails below 100 % and lists what is missing, so a new field without a
description is caught where it is added.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    build_schema,
    is_introspection_type,
    is_specified_scalar_type,
)

from gateway.api.schema import build_schema as build_gateway_schema


@dataclass(frozen=True)
class Element:
    path: str  # Type, Type.field, Type.field(argument), Enum.VALUE
    description: str | None

    @property
    def described(self) -> bool:
        return bool(self.description and self.description.strip())


def elements(schema: GraphQLSchema) -> Iterator[Element]:
    """Every documentable element of the schema's own types, in a stable order."""
    for name in sorted(schema.type_map):
        named = schema.type_map[name]
        if is_introspection_type(named) or is_specified_scalar_type(named):
            continue
        yield Element(name, named.description)
        if isinstance(named, GraphQLObjectType | GraphQLInterfaceType):
            for field_name, field in named.fields.items():
                yield Element(f"{name}.{field_name}", field.description)
                for arg_name, arg in field.args.items():
                    yield Element(f"{name}.{field_name}({arg_name})", arg.description)
        elif isinstance(named, GraphQLInputObjectType):
            for field_name, input_field in named.fields.items():
                yield Element(f"{name}.{field_name}", input_field.description)
        elif isinstance(named, GraphQLEnumType):
            for value_name, value in named.values.items():
                yield Element(f"{name}.{value_name}", value.description)


def coverage(schema: GraphQLSchema) -> tuple[int, int, list[str]]:
    """(described, total, paths of the undescribed elements)."""
    found = list(elements(schema))
    missing = [element.path for element in found if not element.described]
    return len(found) - len(missing), len(found), missing


PUBLISHED = Path(__file__).parent.parent / "schema" / "schema.graphql"


@pytest.fixture(scope="module", params=["code", "published SDL"])
def schema(request) -> GraphQLSchema:
    """The schema the server runs, and the contract clients read (tests/test_schema.py keeps them
    equal; both are walked so a description lost in printing would show too)."""
    if request.param == "code":
        return build_gateway_schema()._schema
    return build_schema(PUBLISHED.read_text(encoding="utf-8"))


def test_every_element_of_the_schema_is_described(schema):
    described, total, missing = coverage(schema)
    print(f"schema descriptions: {described}/{total} elements, {100 * described / total:.1f} %")
    assert missing == [], (
        f"{len(missing)} of {total} schema elements have no description "
        f"({100 * described / total:.1f} % described):\n" + "\n".join(missing)
    )


def test_the_walk_reaches_every_kind_of_element(schema):
    paths = {element.path for element in elements(schema)}
    assert {
        "Query.workspace",  # a root field
        "Mutation.checkout(input)",  # an argument of a root field
        "Subscription.events(afterSequence)",
        "Workspace.invoices(first)",  # an argument of a nested field
        "CheckoutInput.quoteToken",  # an input field
        "ErrorCode.UNKNOWN_PLAN",  # an enum value
        "CheckoutResult",  # a union
        "UserError",  # an interface
        "UserError.code",
        "Decimal",  # a custom scalar
    } <= paths
    assert not {"String", "Boolean", "__Schema", "__Type.fields"} & paths  # built-in, not ours


def test_an_element_without_a_description_is_reported():
    tiny = build_schema(
        '''
        """Described."""
        type Query {
          """Described."""
          plan(code: String!): Plan
          other: Int
        }
        type Plan { code: String! }
        enum Kind { A """Described.""" B }
        union Either = Plan
        input Filter { """ """ kind: Kind }
        scalar Instant
        '''
    )
    described, total, missing = coverage(tiny)
    assert missing == [
        "Either",
        "Filter",
        "Filter.kind",  # blank does not count
        "Instant",
        "Kind",
        "Kind.A",
        "Plan",
        "Plan.code",
        "Query.plan(code)",
        "Query.other",
    ]
    assert (described, total) == (3, 13)
