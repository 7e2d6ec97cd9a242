"""Input objects built from their GraphQL values without Strawberry's generic walk.

For every field of every input object, on every request, Strawberry's ``convert_argument``
works out the field's GraphQL name (camel-casing its Python name), resolves its annotation and
tries a dozen type checks before it finds that a string is a string: about 40 µs for the Order
Preview's four-field ``QuoteInput``, a tenth of a quote's whole time in process. Strawberry lets
a type build its own value (``StrawberryObjectDefinition.from_input``, since 0.329); here each
input type of the schema gets a builder that looks its fields up once:

* a field whose type is a scalar (``String``, ``Int``, ``Decimal``..., optional or not) or an
  enum takes the value graphql-core parsed as it is, which is what Strawberry's conversion does
  for those types (a null stays None; an omitted field keeps its default);
* any other field (a nested input, a list, a ``GlobalID``) is converted by Strawberry itself
  (:meth:`InputContext.convert`), exactly as before;
* a type with a ``Maybe`` field gets no builder: Strawberry checks an explicit null for one in
  validation only for types without their own ``from_input``.

``tests/test_inputs.py`` holds every input type of the schema to Strawberry's own conversion.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import strawberry
from graphql import GraphQLInputObjectType
from strawberry.relay.types import GlobalID
from strawberry.schema.name_converter import NameConverter
from strawberry.types.base import StrawberryMaybe, StrawberryObjectDefinition, StrawberryOptional
from strawberry.types.enum import StrawberryEnumDefinition

Builder = Callable[[type, Mapping[str, Any], Any], Any]


def install(schema: strawberry.Schema) -> int:
    """Give every input type of ``schema`` its builder (once per type; the definitions are the
    classes', shared by every schema built from them). Answers how many types have one; none
    on a Strawberry without the hook, which then converts the generic way."""
    if "from_input" not in {f.name for f in dataclasses.fields(StrawberryObjectDefinition)}:
        return 0
    registry = schema.schema_converter.scalar_registry
    count = 0
    for graphql_type in schema._schema.type_map.values():
        if not isinstance(graphql_type, GraphQLInputObjectType):
            continue
        definition = graphql_type.extensions.get("strawberry-definition")
        if not isinstance(definition, StrawberryObjectDefinition) or definition.type_var_map:
            continue  # a generic input: Strawberry resolves its fields per concrete type
        if any(
            isinstance(f.resolve_type(type_definition=definition), StrawberryMaybe) for f in definition.fields
        ):
            continue  # Strawberry checks a Maybe field's null in validation only for types without one
        if definition.from_input is None:
            definition.from_input = builder(definition, registry, schema.config.name_converter)
        count += 1
    return count


def _as_parsed(type_: Any, registry: Mapping[object, Any]) -> bool:
    """Whether Strawberry's conversion answers a value of ``type_`` with the value itself."""
    if type(type_) is StrawberryOptional:  # not Maybe, a subclass, which wraps values in Some
        type_ = type_.of_type
    if isinstance(type_, StrawberryEnumDefinition):
        return True
    try:
        return type_ is not GlobalID and type_ in registry
    except TypeError:  # unhashable: not a scalar
        return False


def builder(
    definition: StrawberryObjectDefinition, registry: Mapping[object, Any], names: NameConverter
) -> Builder:
    """The ``from_input`` of one input type (``names``: the schema's, for its fields' GraphQL names)."""
    nulls = {
        field.python_name: None
        for field in definition.fields
        if field.default_value is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
    }
    plain: list[tuple[str, str]] = []
    converted: list[tuple[str, str, Any]] = []
    for field in definition.fields:
        name = names.from_field(field)
        type_ = field.resolve_type(type_definition=definition)
        if isinstance(type_, StrawberryMaybe) or not _as_parsed(type_, registry):
            converted.append((name, field.python_name, type_))
        else:
            plain.append((name, field.python_name))

    def build(cls: type, value: Mapping[str, Any], context: Any) -> Any:
        kwargs = dict(nulls)
        for name, python_name in plain:
            if name in value:
                kwargs[python_name] = value[name]
        for name, python_name, type_ in converted:
            if name in value:
                kwargs[python_name] = context.convert(value[name], type_, name)
        return cls(**kwargs)

    return build
