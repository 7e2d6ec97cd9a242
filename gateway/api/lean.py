"""A lean execution path for queries whose document was already checked and validated.

graphql-core executes a document by walking it anew on every request: for each of the
Order Preview's ~130 fields it collects the selection, builds a resolve-info object, calls
the resolver through Strawberry's wrappers and completes the value through a chain of
type checks. That machinery costs more than the quote itself (pricing and tax take a few
hundredths of it). Here a document's operation is compiled once into a plan, kept with the
document in the bounded document cache (:mod:`gateway.api.limits`): per selection, the
response key, the field, how its value is completed (leaf serialisation, list, object,
union). Running a plan then does only the work that depends on the request:

* a field Strawberry marks as *basic* (an attribute, no resolver, no extension) is read as
  Strawberry's default resolver reads it (``getattr`` of its Python name), without info;
* any other field (the root fields, resolvers on types) gets the same resolve-info and coerced
  arguments graphql-core would give it (from the executor class the schema runs with,
  Strawberry's, built once per request), so resolvers, Strawberry's field extensions (the scope check) and argument
  conversion run unchanged;
* abstract types resolve with their own type resolver (Strawberry's), given the same
  resolve-info;
* a subtree made only of attribute fields, leaves, lists and objects (most of an answer: the
  Order Preview's Quote is one) is written once as Python source, a function per object and
  list, with the common scalars' serialisation inlined (:class:`_Pure`):
  ``tests/test_lean_compiled.py`` holds it to graphql-core for values of any class.

Only what a plan can answer exactly as graphql-core would is run here: queries (so running
a document again is harmless), no directives on selections, no introspection fields other
than ``__typename``. Anything else has no plan, and anything unexpected while running one (a
resolver that raises, a null where the schema says non-null, an awaitable) abandons the plan:
:func:`run` answers None and the caller executes the document the ordinary way, which
reports errors with their paths, masking and logging. ``tests/test_lean_execution.py`` holds
the plans to graphql-core's answers for every operation of ``schema/operations``.
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
import keyword
import operator
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLAbstractType,
    GraphQLEnumType,
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_named_type,
    is_abstract_type,
    is_leaf_type,
    is_object_type,
)
from graphql.execution.values import get_argument_values
from graphql.pyutils import Path, is_iterable
from graphql.type.scalars import serialize_boolean, serialize_id, serialize_int, serialize_string

from gateway.api import limits


class Unsupported(Exception):
    """The operation uses something a plan does not do: it runs the ordinary way."""


class Abandoned(Exception):
    """Running a plan met something only graphql-core answers exactly: run the ordinary way
    (and, for this document, from now on)."""


Complete = Callable[[Any, Any, Path], Any]  # (executor, value, path) -> the answer's value


@dataclass(frozen=True, slots=True)
class _Selection:
    key: str  # the response key (alias or name)
    nodes: tuple[FieldNode, ...]
    definition: GraphQLField | None  # None for __typename
    basic: Callable[[Any], Any] | None  # Strawberry's attribute field: its value, without info
    has_arguments: bool
    complete: Complete | None  # None for __typename
    # A basic field whose subtree is pure (:class:`_Pure`): its answer from the source in one
    # call, with no path (nothing below it needs one).
    leaf: Callable[[Any], Any] | None = None


@dataclass(frozen=True, slots=True)
class _Site:
    """The field whose value is being completed (for an abstract type's resolver)."""

    parent: GraphQLObjectType
    definition: GraphQLField
    nodes: tuple[FieldNode, ...]


@dataclass(frozen=True)
class Plan:
    """One query operation of a validated document, compiled."""

    operation: OperationDefinitionNode
    root: GraphQLObjectType
    selections: tuple[_Selection, ...]


def compile_plan(schema: GraphQLSchema, document: DocumentNode, operation_name: str | None) -> Plan:
    """The plan of a validated document's operation; raises :class:`Unsupported`."""
    operation = limits.selected_operation(document, operation_name)
    if operation is None:
        raise Unsupported("no single operation to run")
    if operation.operation is not OperationType.QUERY or operation.directives:
        raise Unsupported("only queries without directives")
    if schema.query_type is None:
        raise Unsupported("no query type")
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    compiler = _Compiler(schema, fragments)
    root = schema.query_type
    return Plan(operation, root, compiler.object_selections(root, (operation.selection_set,)))


def run(
    plan: Plan,
    schema: GraphQLSchema,
    document: DocumentNode,
    context: Any,
    variables: dict[str, Any] | None,
    executor_class: Any,
) -> dict[str, Any] | None:
    """The operation's ``data``, or None when a resolver raised or the variables are wrong:
    then execute the document the ordinary way, which reports the errors. Raises
    :class:`Abandoned` when the plan met what only graphql-core answers exactly (a null where
    the schema says non-null, an awaitable, a value of no type of a union)."""
    name = plan.operation.name.value if plan.operation.name else None
    # The executor class the schema executes with (Strawberry's), for the same resolve-info.
    executor = executor_class.build(schema, document, None, context, variables, name)
    if isinstance(executor, list):  # variable errors: graphql-core reports them
        return None
    try:
        return _object(executor, None, plan.root, plan.selections, None)
    except Abandoned:
        raise
    except Exception:  # noqa: BLE001 - a resolver's error: the ordinary execution reports it, with its path
        return None


def _object(
    executor: Any,
    source: Any,
    parent: GraphQLObjectType,
    selections: tuple[_Selection, ...],
    path: Path | None,
) -> dict[str, Any]:
    answer: dict[str, Any] = {}
    for selection in selections:
        if selection.leaf is not None:
            answer[selection.key] = selection.leaf(source)
            continue
        if selection.complete is None:
            answer[selection.key] = parent.name
            continue
        definition = selection.definition
        assert definition is not None
        field_path = Path(path, selection.key, parent.name)
        if selection.basic is not None:
            value = selection.basic(source)
        else:
            info = executor.build_resolve_info(definition, list(selection.nodes), parent, field_path)
            arguments = (
                get_argument_values(definition, selection.nodes[0], executor.variable_values)
                if selection.has_arguments
                else {}
            )
            value = definition.resolve(source, info, **arguments)  # type: ignore[misc]
            if inspect.isawaitable(value):
                if inspect.iscoroutine(value):
                    value.close()
                raise Abandoned
        answer[selection.key] = selection.complete(executor, value, field_path)
    return answer


def _basic(definition: GraphQLField) -> bool:
    """Strawberry's attribute field: its default resolver, no arguments, no extension."""
    return bool(getattr(definition.resolve, "_is_default", False)) and not definition.args


def _python_name(definition: GraphQLField) -> str | None:
    """The attribute Strawberry's default resolver reads for a basic field, when that resolver
    is ``getattr`` (the schema's config may name another)."""
    field = definition.extensions.get("strawberry-definition")
    python_name = getattr(field, "python_name", None)
    if getattr(field, "default_resolver", None) is getattr and isinstance(python_name, str):
        return python_name
    return None


def _attribute(definition: GraphQLField) -> Callable[[Any], Any]:
    """How a basic field's value is read: Strawberry's default resolver with the field's Python
    name (``getattr`` unless the schema's config names another), else its own resolver."""
    python_name = _python_name(definition)
    if python_name is not None:
        return operator.attrgetter(python_name)
    resolve = definition.resolve
    assert resolve is not None
    return lambda source: resolve(source, None)


# ------------------------------------------------------------------ pure completions, compiled

# graphql-core's serialisers that answer a value of these classes with the value itself: the
# check is written into the compiled completion, and anything else goes to the serialiser.
_SAME_IF: dict[Any, str] = {
    serialize_string: "{x}.__class__ is str",
    serialize_id: "{x}.__class__ is str",
    serialize_boolean: "{x}.__class__ is bool",
    serialize_int: "{x}.__class__ is int and -2147483648 <= {x} <= 2147483647",
}


def _checked(serialize: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def checked(value: Any) -> Any:
        answer = serialize(value)
        if answer is None:
            raise Abandoned
        return answer

    return checked


def _enum_names(type_: GraphQLEnumType) -> tuple[dict[int, str], list[Any]]:
    """The answers of an enum's values, by the identity of the value: its GraphQL values and, for
    Strawberry's enums, the members of the Python class (the objects resolvers return), each
    serialised once here. The list keeps every value alive, so no other object takes its id."""
    values: list[Any] = [value.value for value in type_.values.values()]
    values += list(getattr(type_, "wrapped_cls", None) or ())
    names: dict[int, str] = {}
    for value in values:
        with contextlib.suppress(Exception):
            answer = type_.serialize(value)
            if isinstance(answer, str):
                names[id(value)] = answer
    return names, values


class _Source:
    """The Python source of a subtree's completion, written once when its plan is compiled and
    then run as one function per object or list: a subtree of attribute fields answers with a
    few bytecodes per field instead of a chain of closures. Completes exactly as the closures
    of :meth:`_Compiler._complete` do (``tests/test_lean_execution.py`` holds both to
    graphql-core): leaves serialised (the common classes inlined), a null where the schema says
    non-null and a value no serialiser answers abandon the plan."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.names: dict[str, Any] = {"Abandoned": Abandoned, "is_iterable": is_iterable}
        self.numbers = itertools.count()

    def name(self, prefix: str, value: Any = None) -> str:
        name = f"{prefix}{next(self.numbers)}"
        if value is not None:
            self.names[name] = value
        return name

    def compiled(self, function: str) -> Callable[[Any], Any]:
        exec(compile("\n".join(self.lines), "<lean plan>", "exec"), self.names)  # our own source
        return self.names[function]


def _read(var: str, python_name: str) -> str:
    if python_name.isidentifier() and not keyword.iskeyword(python_name) and not python_name.startswith("__"):
        return f"{var}.{python_name}"
    return f"getattr({var}, {python_name!r})"


class _Pure:
    """Writes the completion of a subtree made only of attribute fields, leaves, lists and
    objects (no resolver, no abstract type, nothing of the request); :meth:`function` answers
    None for any other subtree."""

    def __init__(self, compiler: _Compiler) -> None:
        self.compiler = compiler
        self.source = _Source()  # one per function: each is compiled on its own

    def function(
        self, type_: GraphQLOutputType, sets: tuple[SelectionSetNode, ...]
    ) -> Callable[[Any], Any] | None:
        """A function completing a value of ``type_`` (its answer, or None for None)."""
        try:
            name = self.source.name("c")
            lines = [f"def {name}(x):"]
            self._complete(lines, "x", type_, sets, "    ")
            lines.append("    return x")
        except Unsupported:
            return None
        self.source.lines += lines
        return self.source.compiled(name)

    def _complete(
        self,
        lines: list[str],
        x: str,
        type_: GraphQLOutputType,
        sets: tuple[SelectionSetNode, ...],
        indent: str,
    ) -> None:
        """Statements that replace ``x`` by its completed value."""
        if isinstance(type_, GraphQLNonNull):
            self._complete(lines, x, type_.of_type, sets, indent)
            lines.append(f"{indent}if {x} is None: raise Abandoned")
            return
        if isinstance(type_, GraphQLList):
            lines.append(f"{indent}{x} = {self._list(type_.of_type, sets)}({x})")
            return
        if is_leaf_type(type_):
            inline = self._leaf(x, type_)
            if inline is not None:
                lines.append(f"{indent}if {x} is not None: {x} = {inline}")
            else:  # the serialiser itself: a None from it abandons the plan
                serialize = self.source.name("s", type_.serialize)
                lines.append(f"{indent}if {x} is not None:")
                lines.append(f"{indent}    {x} = {serialize}({x})")
                lines.append(f"{indent}    if {x} is None: raise Abandoned")
            return
        if is_object_type(type_):
            lines.append(f"{indent}{x} = {self._object(type_, sets)}({x})")
            return
        raise Unsupported("not a pure subtree")

    def _leaf(self, x: str, type_: Any) -> str | None:
        """An expression answering a non-null leaf ``x`` with a fast path inlined, or None."""
        serialize = type_.serialize
        checked = self.source.name("s", _checked(serialize))
        if isinstance(type_, GraphQLEnumType):
            names, values = _enum_names(type_)
            known = self.source.name("e", names)
            self.source.name("v", values)  # keeps the values (and so their ids) alive
            return f"{known}.get(id({x})) or {checked}({x})"
        same = _SAME_IF.get(serialize)
        if same is not None:
            return f"{x} if {same.format(x=x)} else {checked}({x})"
        return None

    def _list(self, item: GraphQLOutputType, sets: tuple[SelectionSetNode, ...]) -> str:
        name = self.source.name("l")
        lines = [
            f"def {name}(v):",
            "    if v is None: return None",
            "    if not is_iterable(v): raise Abandoned",  # graphql-core's own test
            "    answer = []",
            "    for x in v:",
        ]
        self._complete(lines, "x", item, sets, "        ")
        lines += ["        answer.append(x)", "    return answer"]
        self.source.lines += lines
        return name

    def _object(self, type_: GraphQLObjectType, sets: tuple[SelectionSetNode, ...]) -> str:
        grouped: dict[str, list[FieldNode]] = {}
        for selection_set in sets:
            self.compiler._collect(type_, selection_set, grouped, set())
        name = self.source.name("o")
        lines = [f"def {name}(v):", "    if v is None: return None"]
        entries = []
        for number, (key, nodes) in enumerate(grouped.items()):
            field_name = nodes[0].name.value
            if field_name == "__typename":
                entries.append(f"{key!r}: {type_.name!r}")
                continue
            definition = type_.fields.get(field_name)
            if definition is None or not _basic(definition):
                raise Unsupported("a field with a resolver")
            python_name = _python_name(definition)
            if python_name is None:
                raise Unsupported("a field read another way")
            x = f"f{number}"
            lines.append(f"    {x} = {_read('v', python_name)}")
            sub_sets = tuple(n.selection_set for n in nodes if n.selection_set is not None)
            self._complete(lines, x, definition.type, sub_sets, "    ")
            entries.append(f"{key!r}: {x}")
        lines.append("    return {" + ", ".join(entries) + "}")
        self.source.lines += lines
        return name


def _classes_of(types: Any) -> dict[type, str]:
    """The GraphQL type of a value of exactly one of these Strawberry classes, by its class:
    what Strawberry's type resolver answers for it (the type whose definition the class
    carries), without building a resolve-info. Generic types are left to the resolver."""
    classes: dict[type, str] = {}
    for possible in types:
        definition = possible.extensions.get("strawberry-definition")
        origin = getattr(definition, "origin", None)
        if (
            isinstance(origin, type)
            and getattr(origin, "__strawberry_definition__", None) is definition
            and not getattr(definition, "is_graphql_generic", True)
            and not getattr(definition, "type_var_map", None)
        ):
            classes[origin] = possible.name
    return classes


class _Compiler:
    def __init__(self, schema: GraphQLSchema, fragments: dict[str, FragmentDefinitionNode]) -> None:
        self.schema = schema
        self.fragments = fragments
        # Whether every value compiled so far depends on its source alone (attribute fields,
        # leaves, lists, objects): no resolver, no type resolver, nothing of the request.
        self.source_only = True
        self._pure_functions: dict[tuple[str, tuple[int, ...]], Callable[[Any], Any] | None] = {}

    def pure(
        self, type_: GraphQLOutputType, sets: tuple[SelectionSetNode, ...]
    ) -> Callable[[Any], Any] | None:
        """The compiled completion of a pure subtree (:class:`_Pure`), or None."""
        key = (str(type_), tuple(id(s) for s in sets))
        if key not in self._pure_functions:
            self._pure_functions[key] = _Pure(self).function(type_, sets)
        return self._pure_functions[key]

    def object_selections(
        self, parent: GraphQLObjectType, sets: tuple[SelectionSetNode, ...]
    ) -> tuple[_Selection, ...]:
        grouped: dict[str, list[FieldNode]] = {}
        for selection_set in sets:
            self._collect(parent, selection_set, grouped, set())
        return tuple(self._selection(parent, key, tuple(nodes)) for key, nodes in grouped.items())

    def _collect(
        self,
        parent: GraphQLObjectType,
        selection_set: SelectionSetNode,
        grouped: dict[str, list[FieldNode]],
        visited: set[str],
    ) -> None:
        for node in selection_set.selections:
            if node.directives:
                raise Unsupported("directives on a selection")
            if isinstance(node, FieldNode):
                key = node.alias.value if node.alias else node.name.value
                grouped.setdefault(key, []).append(node)
            elif isinstance(node, InlineFragmentNode):
                condition = node.type_condition.name.value if node.type_condition else None
                if self._applies(condition, parent):
                    self._collect(parent, node.selection_set, grouped, visited)
            elif isinstance(node, FragmentSpreadNode):
                name = node.name.value
                fragment = self.fragments.get(name)
                if fragment is None:
                    raise Unsupported(f"unknown fragment {name}")
                if name in visited or not self._applies(fragment.type_condition.name.value, parent):
                    continue
                visited.add(name)
                self._collect(parent, fragment.selection_set, grouped, visited)

    def _applies(self, condition: str | None, parent: GraphQLObjectType) -> bool:
        if condition is None or condition == parent.name:
            return True
        condition_type = self.schema.get_type(condition)
        return is_abstract_type(condition_type) and self.schema.is_sub_type(condition_type, parent)

    def _selection(self, parent: GraphQLObjectType, key: str, nodes: tuple[FieldNode, ...]) -> _Selection:
        name = nodes[0].name.value
        if name == "__typename":
            return _Selection(key, nodes, None, None, False, None)
        if name.startswith("__"):
            raise Unsupported("introspection")
        definition = parent.fields.get(name)
        if definition is None or definition.resolve is None:
            raise Unsupported(f"{parent.name}.{name} has no resolver of its own")
        sub_sets = tuple(n.selection_set for n in nodes if n.selection_set is not None)
        basic = _basic(definition)
        self.source_only = self.source_only and basic
        read = _attribute(definition) if basic else None
        complete = self._complete(definition.type, sub_sets, _Site(parent, definition, nodes))
        leaf = None
        pure = self.pure(definition.type, sub_sets) if read is not None else None
        if read is not None and pure is not None:
            # A pure subtree's completion uses neither the executor nor a path: none is built.
            def leaf(
                source: Any, read: Callable[[Any], Any] = read, pure: Callable[[Any], Any] = pure
            ) -> Any:
                return pure(read(source))

        return _Selection(key, nodes, definition, read, bool(definition.args), complete, leaf)

    def _complete(
        self, type_: GraphQLOutputType, sets: tuple[SelectionSetNode, ...], site: _Site
    ) -> Complete:
        pure = self.pure(type_, sets)
        if pure is not None:

            def compiled(executor: Any, value: Any, path: Path) -> Any:
                return pure(value)

            return compiled
        if isinstance(type_, GraphQLNonNull):
            inner = self._complete(type_.of_type, sets, site)

            def non_null(executor: Any, value: Any, path: Path) -> Any:
                answer = inner(executor, value, path)
                if answer is None:
                    raise Abandoned  # graphql-core reports it and nulls the nearest nullable parent
                return answer

            return non_null
        if isinstance(type_, GraphQLList):
            item = self._complete(type_.of_type, sets, site)

            def listed(executor: Any, value: Any, path: Path) -> Any:
                if value is None:
                    return None
                if not is_iterable(value):  # graphql-core's own test (no str, bytes, mapping...)
                    raise Abandoned
                return [item(executor, v, path.add_key(i)) for i, v in enumerate(value)]

            return listed
        if is_leaf_type(type_):
            serialize = type_.serialize

            def leaf(executor: Any, value: Any, path: Path) -> Any:
                if value is None:
                    return None
                answer = serialize(value)
                if answer is None:
                    raise Abandoned
                return answer

            return leaf
        if is_object_type(type_):
            object_type: GraphQLObjectType = type_
            selections = self.object_selections(object_type, sets)

            def obj(executor: Any, value: Any, path: Path) -> Any:
                if value is None:
                    return None
                return _object(executor, value, object_type, selections, path)

            return obj
        if is_abstract_type(type_):
            abstract: GraphQLAbstractType = type_
            self.source_only = False
            resolve_type = abstract.resolve_type
            if resolve_type is None:
                raise Unsupported(f"{abstract.name} has no type resolver of its own")
            possible_types = self.schema.get_possible_types(abstract)
            # Each possible type's answer: compiled when pure, else by its selections.
            plans: dict[
                str, tuple[GraphQLObjectType, Callable[[Any], Any] | None, tuple[_Selection, ...]]
            ] = {}
            for possible in possible_types:
                answer = self.pure(possible, sets)
                selections = () if answer else self.object_selections(possible, sets)
                plans[possible.name] = (possible, answer, selections)
            by_class = _classes_of(possible_types)

            def union(executor: Any, value: Any, path: Path) -> Any:
                if value is None:
                    return None
                name: Any = by_class.get(value.__class__)
                if name is None:
                    # The type's own resolver (Strawberry's: casts, generic types), as graphql-core
                    # calls it, with the resolve-info of the field being completed.
                    info = executor.build_resolve_info(site.definition, list(site.nodes), site.parent, path)
                    name = resolve_type(value, info, abstract)
                concrete = plans.get(name) if isinstance(name, str) else None
                if concrete is None:
                    raise Abandoned  # an awaitable, or not a type of this union: graphql-core reports it
                possible_type, answer_of, possible_selections = concrete
                if answer_of is not None:
                    return answer_of(value)
                return _object(executor, value, possible_type, possible_selections, path)

            return union
        raise Unsupported(f"type {get_named_type(type_)}")


def answer(
    entry: limits.Checked,
    schema: GraphQLSchema,
    operation_name: str | None,
    context: Any,
    variables: dict[str, Any] | None,
    executor_class: Any,
) -> dict[str, Any] | None:
    """The ``data`` of a checked document's operation by its plan (compiled on first use and
    kept with the document), or None: no plan, validation errors, or the plan could not answer
    exactly. Then execute the document the ordinary way."""
    document = entry.document
    if document is None or entry.validation_errors(schema):
        return None
    key = (schema, operation_name)
    try:
        plan = entry.plans[key]
    except KeyError:
        try:
            plan = compile_plan(schema, document, operation_name)
        except Unsupported:
            plan = None
        entry.plans[key] = plan  # two threads may compile the same plan: either one serves
    if plan is None:
        return None
    try:
        return run(plan, schema, document, context, variables, executor_class)
    except Abandoned:
        entry.plans[key] = None  # work done twice once is enough: ordinary execution from now on
        return None


# ------------------------------------------------------------------ subscription events


@dataclass(frozen=True)
class EventPlan:
    """A subscription whose events' answers depend on the event alone: its one root field's
    value is the event itself (Strawberry resolves a subscription field to the value its
    generator yielded) and everything selected below is an attribute, a leaf, a list or an
    object. Every stream of the same document then sends the same answer for the same event,
    computed once (:func:`event_data`)."""

    operation: OperationDefinitionNode
    key: str
    root: str
    complete: Complete


_EVENT_PLANS: OrderedDict[int, tuple[OperationDefinitionNode, EventPlan | None]] = OrderedDict()
# By id of the plan and event id; each entry keeps its plan, so no other plan takes that id.
_EVENT_DATA: OrderedDict[tuple[int, str], tuple[EventPlan, dict[str, Any]]] = OrderedDict()
_EVENTS_LOCK = threading.Lock()
MAX_EVENT_PLANS = 256  # as many as the document cache holds documents
MAX_EVENT_DATA = 1024  # answers of recent events, for the streams that have not sent them yet


def event_plan(
    schema: GraphQLSchema, operation: OperationDefinitionNode, fragments: dict[str, FragmentDefinitionNode]
) -> EventPlan | None:
    """The event plan of a subscription operation (compiled once per operation), or None."""
    with _EVENTS_LOCK:
        known = _EVENT_PLANS.get(id(operation))
        if known is not None and known[0] is operation:
            _EVENT_PLANS.move_to_end(id(operation))
            return known[1]
    plan = None
    with contextlib.suppress(Unsupported):
        plan = _compile_event_plan(schema, operation, fragments)
    with _EVENTS_LOCK:
        _EVENT_PLANS[id(operation)] = (operation, plan)
        while len(_EVENT_PLANS) > MAX_EVENT_PLANS:
            _EVENT_PLANS.popitem(last=False)
    return plan


def _root_fields(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: dict[str, FragmentDefinitionNode],
    kind: OperationType,
) -> tuple[_Compiler, GraphQLObjectType, dict[str, list[FieldNode]]] | None:
    """A compiler for an operation of ``kind`` without directives, its root type and its root
    fields by response key; None for another operation."""
    root = schema.subscription_type if kind is OperationType.SUBSCRIPTION else schema.mutation_type
    if operation.operation is not kind or operation.directives or root is None:
        return None
    compiler = _Compiler(schema, fragments)
    grouped: dict[str, list[FieldNode]] = {}
    compiler._collect(root, operation.selection_set, grouped, set())
    return compiler, root, grouped


def _compile_event_plan(
    schema: GraphQLSchema, operation: OperationDefinitionNode, fragments: dict[str, FragmentDefinitionNode]
) -> EventPlan | None:
    collected = _root_fields(schema, operation, fragments, OperationType.SUBSCRIPTION)
    if collected is None:
        return None
    compiler, root, grouped = collected
    if len(grouped) != 1:
        return None
    [(key, nodes)] = grouped.items()
    definition = root.fields.get(nodes[0].name.value)
    if definition is None or definition.subscribe is None:
        return None
    sub_sets = tuple(n.selection_set for n in nodes if n.selection_set is not None)
    complete = compiler._complete(definition.type, sub_sets, _Site(root, definition, tuple(nodes)))
    return EventPlan(operation, key, root.name, complete) if compiler.source_only else None


def event_data(plan: EventPlan, event: Any) -> dict[str, Any] | None:
    """The ``data`` of one event for the plan's streams: computed by the first of them, then
    shared (by the event's ``id``); None when the plan cannot answer it exactly."""
    event_id = getattr(event, "id", None)
    memo_key = (id(plan), event_id) if isinstance(event_id, str) else None
    if memo_key is not None:
        with _EVENTS_LOCK:
            shared = _EVENT_DATA.get(memo_key)
        if shared is not None and shared[0] is plan:
            return shared[1]
    try:
        data = {plan.key: plan.complete(None, event, Path(None, plan.key, plan.root))}
    except Exception:  # noqa: BLE001 - graphql-core reports it, with its path
        return None
    if memo_key is not None:
        with _EVENTS_LOCK:
            _EVENT_DATA[memo_key] = (plan, data)
            while len(_EVENT_DATA) > MAX_EVENT_DATA:
                _EVENT_DATA.popitem(last=False)
    return data


# ------------------------------------------------------------------ mutation answers

_ROOT_COMPLETIONS: OrderedDict[int, tuple[OperationDefinitionNode, dict[str, Complete | None]]] = (
    OrderedDict()
)
MAX_ROOT_COMPLETIONS = 256  # as many as the document cache holds documents


def root_completion(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: dict[str, FragmentDefinitionNode],
    key: str,
) -> Complete | None:
    """How the value a mutation's root field (response key ``key``) returned is completed,
    compiled once per operation, or None where a plan does not do it.

    A mutation cannot run by a plan (if a plan abandoned it, running it again would do the
    work twice), but the answer it returns can be completed by one: the mutation runs in
    graphql-core, which then hands the root field's value here (see
    ``gateway.api.schema._Executor.complete_value``). Should the completion abandon, or a
    resolver below raise, graphql-core completes the same value itself and reports the
    errors; what runs twice then is only the resolvers below the root, which read."""
    with _EVENTS_LOCK:
        known = _ROOT_COMPLETIONS.get(id(operation))
        if known is not None and known[0] is operation:
            _ROOT_COMPLETIONS.move_to_end(id(operation))
            if key in known[1]:
                return known[1][key]
    complete = None
    with contextlib.suppress(Unsupported):
        complete = _compile_root_completion(schema, operation, fragments, key)
    with _EVENTS_LOCK:
        known = _ROOT_COMPLETIONS.get(id(operation))
        if known is None or known[0] is not operation:
            known = _ROOT_COMPLETIONS[id(operation)] = (operation, {})
        known[1][key] = complete
        while len(_ROOT_COMPLETIONS) > MAX_ROOT_COMPLETIONS:
            _ROOT_COMPLETIONS.popitem(last=False)
    return complete


def _compile_root_completion(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: dict[str, FragmentDefinitionNode],
    key: str,
) -> Complete | None:
    collected = _root_fields(schema, operation, fragments, OperationType.MUTATION)
    if collected is None:
        return None
    compiler, root, grouped = collected
    nodes = grouped.get(key)
    if not nodes:
        return None
    definition = root.fields.get(nodes[0].name.value)
    if definition is None:
        return None
    sub_sets = tuple(n.selection_set for n in nodes if n.selection_set is not None)
    return compiler._complete(definition.type, sub_sets, _Site(root, definition, tuple(nodes)))
