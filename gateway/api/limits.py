"""Bounds on GraphQL documents, checked before any parse, in time linear in the document.

Every document is checked here, over HTTP and over WebSocket, before graphql-core's parser
and validation see it; both can take time far beyond the document's size (a recursive parser,
a depth rule that expands every fragment spread, an overlapping-fields rule quadratic in
repeated fields), and a request must never hold the others up.

1. Size: at most :data:`MAX_DOCUMENT_BYTES` of UTF-8 (``DOCUMENT_TOO_LARGE``).
2. Tokens and bracket nesting, by the lexer alone, iteratively (``DOCUMENT_TOO_LARGE`` /
   ``DOCUMENT_TOO_COMPLEX``): the recursive parser then never nests deeper than the bound.
3. Then parsed (with graphql-core's own ``max_tokens``), one pass over the tree computes, per
   fragment once (memoised, in dependency order, without recursion) and per operation: the
   depth with fragments expanded, the number of selections and of aliases with fragment
   fan-out multiplied through, the longest chain of fragment spreads, and fragment cycles; and
   per selection set, how often one response key (or one fragment) is repeated. Each bound
   exceeded is ``DOCUMENT_TOO_COMPLEX``.

Introspection fields (``__schema``, ``__typename``) do not count towards the depth, as before.
A document that does not parse is left to the parser's own error (its message and location).

Checked documents (and their validation results) are kept in one cache bounded by entries and
by the total size of the documents it holds (:class:`DocumentCache`), so the Order Preview's
document, sent on every slider move, is parsed and validated once.
"""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    Source,
    parse,
    specified_rules,
)
from graphql.language import Lexer, TokenKind
from graphql.validation import ASTValidationRule
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

TOO_LARGE = "DOCUMENT_TOO_LARGE"
TOO_COMPLEX = "DOCUMENT_TOO_COMPLEX"


@dataclass(frozen=True)
class Limits:
    """The bounds a document must keep. The defaults leave the Billing pages, GraphiQL's
    introspection query and ordinary clients far inside them."""

    max_bytes: int = 64 * 1024
    max_tokens: int = 5000
    max_nesting: int = 40  # brackets ({ [ () open at once: bounds the parser's recursion
    max_depth: int = 12  # nested fields, root fields at 0; introspection not counted
    max_selections: int = 2000  # fields, spreads and inline fragments, fragments expanded
    max_aliases: int = 100  # fragments expanded
    max_fragment_chain: int = 20  # fragments spreading fragments spreading ...
    max_repeats: int = 30  # one response key (or one fragment) in one selection set


DEFAULT_LIMITS = Limits()


class DocumentRefused(Exception):
    """The document exceeds a bound: nothing of it was validated or run."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message

    def error(self) -> GraphQLError:
        return GraphQLError(self.message, extensions={"code": self.code})


# ----------------------------------------------------------------- before parsing


def _check_text(query: str, limits: Limits) -> None:
    # A character is at least one byte: a huge string is refused without encoding it.
    if len(query) > limits.max_bytes or len(query.encode("utf-8", "surrogatepass")) > limits.max_bytes:
        raise DocumentRefused(TOO_LARGE, f"documents are limited to {limits.max_bytes} bytes")
    lexer = Lexer(Source(query))
    tokens = nesting = 0
    opening = {TokenKind.BRACE_L, TokenKind.BRACKET_L, TokenKind.PAREN_L}
    closing = {TokenKind.BRACE_R, TokenKind.BRACKET_R, TokenKind.PAREN_R}
    try:
        token = lexer.advance()
        while token.kind is not TokenKind.EOF:
            tokens += 1
            if tokens > limits.max_tokens:
                raise DocumentRefused(TOO_LARGE, f"documents are limited to {limits.max_tokens} tokens")
            if token.kind in opening:
                nesting += 1
                if nesting > limits.max_nesting:
                    raise DocumentRefused(
                        TOO_COMPLEX,
                        f"the document is nested too deeply: at most {limits.max_nesting} brackets "
                        "may be open at once",
                    )
            elif token.kind in closing:
                nesting -= 1
            token = lexer.advance()
    except GraphQLError:
        return  # a syntax error: the parser reports it, with its location


# ----------------------------------------------------------------- after parsing


@dataclass
class _Unit:
    """What one operation or fragment holds directly, spreads not followed."""

    name: str
    depth: int = 0
    selections: int = 0
    aliases: int = 0
    spreads: list[tuple[str, int]] = field(default_factory=list)  # (fragment, field level), -1: no depth


@dataclass(frozen=True)
class _Expanded:
    """A fragment's (or operation's) measures with every spread expanded."""

    depth: int
    selections: int
    aliases: int
    chain: int


def _scan(name: str, selection_set: SelectionSetNode, limits: Limits) -> _Unit:
    """One iterative walk of a selection set, refusing repeated keys on the way."""
    unit = _Unit(name)
    # (selection set, level of its fields or -1 inside introspection, the key counter it shares)
    pending: list[tuple[SelectionSetNode, int, Counter[str]]] = [(selection_set, 0, Counter())]
    while pending:
        current, level, keys = pending.pop()
        for selection in current.selections:
            unit.selections += 1
            if isinstance(selection, FieldNode):
                key = selection.alias.value if selection.alias else selection.name.value
                unit.aliases += selection.alias is not None
                introspection = selection.name.value.startswith("__")
                if level >= 0 and not introspection:
                    unit.depth = max(unit.depth, level)
                _count(keys, key, limits)
                if selection.selection_set is not None:
                    inner = -1 if level < 0 or introspection else level + 1
                    pending.append((selection.selection_set, inner, Counter()))
            elif isinstance(selection, FragmentSpreadNode):
                _count(keys, "..." + selection.name.value, limits)
                unit.spreads.append((selection.name.value, level))
            elif isinstance(selection, InlineFragmentNode):
                pending.append((selection.selection_set, level, keys))  # merged with its parent's
    return unit


def _merged(first: _Unit, second: _Unit) -> _Unit:
    return _Unit(
        first.name,
        max(first.depth, second.depth),
        first.selections + second.selections,
        first.aliases + second.aliases,
        first.spreads + second.spreads,
    )


def _count(keys: Counter[str], key: str, limits: Limits) -> None:
    keys[key] += 1
    if keys[key] > limits.max_repeats:
        shown = key if key.startswith("...") else f"field `{key}`"
        raise DocumentRefused(
            TOO_COMPLEX, f"{shown} is repeated more than {limits.max_repeats} times in one selection set"
        )


def _expand(unit: _Unit, done: dict[str, _Expanded], limits: Limits) -> _Expanded:
    depth, selections, aliases, chain = unit.depth, unit.selections, unit.aliases, 0
    for name, level in unit.spreads:
        child = done.get(name)
        if child is None:
            continue  # an unknown fragment: validation reports it
        if level >= 0:
            depth = max(depth, level + child.depth)
        # Capped just past the limits, so that fan-out never builds huge numbers.
        selections = min(selections + child.selections, limits.max_selections + 1)
        aliases = min(aliases + child.aliases, limits.max_aliases + 1)
        chain = max(chain, child.chain + 1)
    expanded = _Expanded(depth, selections, aliases, chain)
    _check_expanded(unit.name, expanded, limits)
    return expanded


def _check_expanded(name: str, measures: _Expanded, limits: Limits) -> None:
    if measures.depth > limits.max_depth:
        raise DocumentRefused(TOO_COMPLEX, f"'{name}' exceeds maximum operation depth of {limits.max_depth}")
    if measures.selections > limits.max_selections:
        raise DocumentRefused(
            TOO_COMPLEX,
            f"'{name}' selects more than {limits.max_selections} fields with its fragments expanded",
        )
    if measures.aliases > limits.max_aliases:
        raise DocumentRefused(
            TOO_COMPLEX, f"'{name}' uses more than {limits.max_aliases} aliases with its fragments expanded"
        )
    if measures.chain > limits.max_fragment_chain:
        raise DocumentRefused(
            TOO_COMPLEX, f"'{name}' chains more than {limits.max_fragment_chain} fragments into each other"
        )


def _fragments_in_order(units: dict[str, _Unit]) -> Iterator[_Unit]:
    """The fragments, each after every fragment it spreads; a cycle is refused. Iterative."""
    state: dict[str, bool] = {}  # False: on the current path, True: done
    for root in units:
        if root in state:
            continue
        state[root] = False
        path: list[tuple[str, Iterator[tuple[str, int]]]] = [(root, iter(units[root].spreads))]
        while path:
            name, spreads = path[-1]
            child = next((s for s, _ in spreads if s in units and state.get(s) is not True), None)
            if child is None:
                state[name] = True
                path.pop()
                yield units[name]
            elif state.get(child) is False:
                raise DocumentRefused(TOO_COMPLEX, f"fragment '{child}' spreads itself (a fragment cycle)")
            else:
                state[child] = False
                path.append((child, iter(units[child].spreads)))


def _check_tree(document: DocumentNode, limits: Limits) -> None:
    fragments: dict[str, _Unit] = {}
    operations: list[_Unit] = []
    for definition in document.definitions:
        if isinstance(definition, FragmentDefinitionNode):
            name = definition.name.value
            unit = _scan(name, definition.selection_set, limits)
            if name in fragments:  # a duplicate (validation reports it): measured as both at once
                unit = _merged(fragments[name], unit)
            fragments[name] = unit
        elif isinstance(definition, OperationDefinitionNode):
            name = definition.name.value if definition.name else "anonymous"
            operations.append(_scan(name, definition.selection_set, limits))
    done: dict[str, _Expanded] = {}
    for fragment in _fragments_in_order(fragments):
        done[fragment.name] = _expand(fragment, done, limits)
    for operation in operations:
        _expand(operation, done, limits)


def check(query: str, limits: Limits = DEFAULT_LIMITS) -> DocumentNode | None:
    """The parsed document, or None if it does not parse (the parser reports why).

    Raises :class:`DocumentRefused` when the document exceeds a bound; nothing heavier than
    the lexer runs on a document over the size or token bounds.
    """
    _check_text(query, limits)
    try:
        document = parse(query, max_tokens=limits.max_tokens)
    except GraphQLError:
        return None
    _check_tree(document, limits)
    return document


# ----------------------------------------------------------------- the cache


DEFAULT_RULES: tuple[type[ASTValidationRule], ...] = tuple(specified_rules)


@dataclass
class Checked:
    """One document's verdict: refused, unparsable (``document`` None) or parsed, and the
    validation errors found per schema and rule set."""

    document: DocumentNode | None
    refusal: DocumentRefused | None
    validations: dict[tuple[GraphQLSchema, tuple[type[ASTValidationRule], ...]], list[GraphQLError]] = field(
        default_factory=dict
    )
    # Compiled operations (gateway.api.lean), by schema and operation name; None: no plan.
    plans: dict[tuple[GraphQLSchema, str | None], Any] = field(default_factory=dict)

    def validation_errors(
        self, schema: GraphQLSchema, rules: Sequence[type[ASTValidationRule]] = DEFAULT_RULES
    ) -> list[GraphQLError]:
        """The parsed document's validation errors (computed once per schema and rule set); a
        copy, since extensions may replace the errors of a result."""
        assert self.document is not None, "an unparsable document has no validation"
        key = (schema, tuple(rules))
        errors = self.validations.get(key)
        if errors is None:
            errors = self.validations[key] = validate_document(schema, self.document, tuple(rules))
        return list(errors)


class DocumentCache:
    """A thread-safe LRU of checked documents, bounded by entries and by the characters of the
    documents it holds (each entry's memory is roughly proportional to its document's size)."""

    def __init__(self, max_entries: int = 256, max_chars: int = 1_000_000) -> None:
        self.max_entries, self.max_chars = max_entries, max_chars
        self._entries: OrderedDict[str, Checked] = OrderedDict()
        self._chars = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def chars(self) -> int:
        return self._chars

    def get(self, query: str) -> Checked | None:
        with self._lock:
            entry = self._entries.get(query)
            if entry is not None:
                self._entries.move_to_end(query)
            return entry

    def put(self, query: str, entry: Checked) -> None:
        if len(query) > self.max_chars:
            return
        with self._lock:
            if query in self._entries:
                return
            self._entries[query] = entry
            self._chars += len(query)
            while len(self._entries) > self.max_entries or self._chars > self.max_chars:
                evicted, _ = self._entries.popitem(last=False)
                self._chars -= len(evicted)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._chars = 0


CACHE = DocumentCache()
# Documents checked once and kept whatever else arrives: the trusted documents
# (gateway.api.trusted), a fixed set pinned at start-up. Read without a lock (a dict lookup).
PINNED: dict[str, Checked] = {}


def pin(query: str) -> Checked:
    """Check ``query`` (if not yet) and keep its verdict, validations and plans for good."""
    entry = PINNED.get(query)
    if entry is None:
        entry = PINNED[query] = checked(query)
    return entry


def checked(query: str) -> Checked:
    """The verdict on a document, from the pinned documents, the cache or computed (and cached)."""
    entry = PINNED.get(query) or CACHE.get(query)
    if entry is None:
        try:
            entry = Checked(check(query), None)
        except DocumentRefused as refusal:
            entry = Checked(None, refusal)
        CACHE.put(query, entry)
    return entry


def validated(
    query: str,
    schema: GraphQLSchema,
    document: DocumentNode,
    rules: Sequence[type[ASTValidationRule]] = DEFAULT_RULES,
) -> list[GraphQLError]:
    """The validation errors of a checked document (cached with it)."""
    entry = checked(query)
    if entry.document is not document:  # evicted and checked anew meanwhile: validate this one
        return validate_document(schema, document, tuple(rules))
    return entry.validation_errors(schema, rules)


def selected_operation(document: DocumentNode, operation_name: str | None) -> OperationDefinitionNode | None:
    """The operation a request selects: the one named ``operation_name``, or the only one when
    no name is given; None when there is no such single operation."""
    chosen = [
        d
        for d in document.definitions
        if isinstance(d, OperationDefinitionNode)
        and (operation_name is None or (d.name is not None and d.name.value == operation_name))
    ]
    return chosen[0] if len(chosen) == 1 else None


def prepare(query: str, schema: GraphQLSchema) -> GraphQLError | None:
    """Check and validate a document ahead of execution (in a worker thread), so that the
    event loop later finds both in the cache; the refusal, if any."""
    entry = checked(query)
    if entry.refusal is not None:
        return entry.refusal.error()
    if entry.document is not None:
        validated(query, schema, entry.document)
    return None


class DocumentLimits(SchemaExtension):
    """The checks and the cache inside every execution: parse and validation come from
    :func:`checked` and :func:`validated`. A refused document raises its error before the
    parser runs (the transports check first and answer it themselves)."""

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.graphql_document is None and context.query:
            entry = checked(context.query)
            if entry.refusal is not None:
                raise entry.refusal.error()
            context.graphql_document = entry.document  # None: the parser reports the syntax error
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if context.pre_execution_errors is None and context.query and context.graphql_document is not None:
            context.pre_execution_errors = validated(
                context.query, context.schema._schema, context.graphql_document, context.validation_rules
            )
        yield
