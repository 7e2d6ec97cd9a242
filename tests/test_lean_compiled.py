"""The compiled completions of gateway.api.lean (subtrees of attribute fields written as Python
source once per plan) answer exactly as graphql-core does, for any value a resolver could hand
them: the right classes, their subclasses, wrong classes, numbers out of range, an enum's raw
value instead of its member, nulls where the schema says non-null, tuples and iterators for
lists. Where graphql-core reports an error the plan must not answer (the ordinary execution
then reports it); where graphql-core answers, the plan must answer the same.

The schema is built here, so the test holds whatever the gateway's own types are.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
import strawberry
from graphql import parse
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.api import lean


@strawberry.enum
class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


@strawberry.type
class Leaf:
    text: str
    number: int
    flag: bool
    ratio: float
    ident: strawberry.ID
    color: Color
    price: Decimal
    maybe_text: str | None
    maybe_color: Color | None


@strawberry.type
class Node:
    name: str
    leaves: list[Leaf]
    maybe_leaves: list[Leaf | None] | None
    child: Leaf | None
    tags: list[str]
    numbers: list[int] | None


@dataclass
class Holder:
    node: Any


@strawberry.type
class Query:
    @strawberry.field
    def node(self, info: strawberry.Info) -> Node:
        return info.context.node  # type: ignore[no-any-return]


SCHEMA = strawberry.Schema(query=Query)
LEAF_FIELDS = "text number flag ratio ident color price maybeText maybeColor"
TEXT = f"""query Q {{ node {{ __typename name tags numbers
      leaves {{ __typename {LEAF_FIELDS} }}
      maybeLeaves {{ ... on Leaf {{ text color }} ...F }}
      child {{ {LEAF_FIELDS} again: text }}
    }} }}
    fragment F on Leaf {{ number flag }}"""
DOCUMENT = parse(TEXT)


class Text(str):
    pass


class Number(int):
    pass


class Items:
    """Iterable again and again, neither a list nor a tuple (a generator would be consumed by
    the first of the two executions)."""

    def __init__(self, items: list[Any]) -> None:
        self.items = items

    def __iter__(self) -> Any:
        return iter(self.items)


ODD = st.sampled_from(
    [
        None,
        "",
        "x",
        Text("sub"),
        0,
        1,
        -(2**31),
        2**31,
        2**40,
        True,
        False,
        1.5,
        3.0,
        float("nan"),
        Decimal("2.50"),
        Color.RED,
        "red",
        "RED",
        Number(7),
        b"bytes",
        bytearray(b"\x01\x02"),  # iterable, yet no list to graphql-core
        memoryview(b"\x02"),
        {1: "a", 2: "b"},  # a mapping: no list either
        object(),
    ]
)


def texts() -> st.SearchStrategy[Any]:
    return st.one_of(st.text(max_size=5), ODD)


def ints() -> st.SearchStrategy[Any]:
    return st.one_of(st.integers(min_value=-(2**33), max_value=2**33), ODD)


def bools() -> st.SearchStrategy[Any]:
    return st.one_of(st.booleans(), ODD)


def colors() -> st.SearchStrategy[Any]:
    return st.one_of(st.sampled_from(list(Color)), ODD)


def lists(items: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(items, max_size=3),
        st.lists(items, max_size=3).map(tuple),
        st.lists(items, max_size=3).map(Items),
        ODD,
    )


leaves = st.builds(
    Leaf,
    text=texts(),
    number=ints(),
    flag=bools(),
    ratio=st.one_of(st.floats(allow_nan=False, allow_infinity=False), ODD),
    ident=texts(),
    color=colors(),
    price=st.one_of(st.decimals(allow_nan=False, allow_infinity=False, places=2), ODD),
    maybe_text=texts(),
    maybe_color=colors(),
)
nodes = st.builds(
    Node,
    name=texts(),
    leaves=lists(st.one_of(leaves, st.none())),
    maybe_leaves=lists(st.one_of(leaves, st.none())),
    child=st.one_of(leaves, st.none()),
    tags=lists(texts()),
    numbers=lists(ints()),
)


def by_plan(node: Any) -> dict[str, Any] | None:
    schema = SCHEMA._schema
    plan = lean.compile_plan(schema, DOCUMENT, "Q")
    try:
        return lean.run(plan, schema, DOCUMENT, Holder(node), None, SCHEMA.execution_context_class)
    except lean.Abandoned:
        return None


def by_graphql_core(node: Any) -> tuple[dict[str, Any] | None, bool]:
    result = SCHEMA.execute_sync(TEXT, context_value=Holder(node), operation_name="Q")
    return result.data, bool(result.errors)


@settings(max_examples=400, deadline=None)
@given(nodes)
def test_a_compiled_subtree_answers_as_graphql_core_or_not_at_all(node):
    expected, errors = by_graphql_core(node)
    answer = by_plan(node)
    if errors:
        assert answer is None, (answer, expected)
    else:  # as JSON: 1 == True and 1.0 == 1 in Python, not in an answer; key order too
        assert json.dumps(answer) == json.dumps(expected)


@pytest.mark.parametrize(
    "numbers",
    [{1: "a", 2: "b"}, bytearray(b"\x01\x02"), memoryview(b"\x01"), "12", b"12"],
    ids=["mapping", "bytearray", "memoryview", "str", "bytes"],
)
def test_an_iterable_that_graphql_core_takes_for_no_list_abandons_the_plan(numbers):
    node = Node(name="n", leaves=[], maybe_leaves=None, child=None, tags=[], numbers=numbers)
    _, errors = by_graphql_core(node)
    assert errors  # "Expected Iterable, but did not find one"
    assert by_plan(node) is None


def test_the_subtree_below_the_root_is_compiled():
    """Else the property above would compare graphql-core with the closures, not the source."""
    schema = SCHEMA._schema
    fragments = {d.name.value: d for d in DOCUMENT.definitions[1:]}
    compiler = lean._Compiler(schema, fragments)
    node_field = schema.query_type.fields["node"]
    selection_set = DOCUMENT.definitions[0].selection_set.selections[0].selection_set
    assert compiler.pure(node_field.type, (selection_set,)) is not None


def test_a_well_formed_node_answers_by_plan():
    leaf = Leaf(
        text="a",
        number=3,
        flag=True,
        ratio=0.5,
        ident="id-1",
        color=Color.GREEN,
        price=Decimal("1.50"),
        maybe_text=None,
        maybe_color=None,
    )
    node = Node(name="n", leaves=[leaf], maybe_leaves=None, child=leaf, tags=["t"], numbers=[1, 2])
    answer = by_plan(node)
    assert answer is not None
    assert answer == by_graphql_core(node)[0]
    assert answer["node"]["leaves"][0]["color"] == "GREEN"
    assert answer["node"]["child"]["again"] == "a"
