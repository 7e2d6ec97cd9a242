"""Trusted documents: the operations of ``schema/operations``, registered by their SHA-256.

Each operation there, with the fragments it spreads (from its own file or ``fragments.graphql``,
transitively) and no others, is one document: the text the Billing page sends
(``frontend/src/billing/operations.ts`` builds it the same way). At start-up every document is
checked, parsed and validated once and pinned in the document cache (:func:`limits.pin`), so a
request for it never parses or validates, and no flood of other documents can evict it; its
queries run by a compiled plan (:mod:`gateway.api.lean`).

A client may send a trusted document by its id instead of its text, as the GraphQL-over-HTTP
persisted documents proposal has it (``"documentId": "sha256:<hex>"``) or as Apollo's
automatic persisted queries do (``extensions.persistedQuery.sha256Hash``): the request is then a
few dozen bytes. ``billing-gateway trusted-documents`` prints the manifest (id → text). Other
documents stay allowed, limited like any other (:mod:`gateway.api.limits`).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from graphql import GraphQLSchema

from gateway.api import limits

PREFIX = "sha256:"
NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"  # Apollo's code: its clients then send the text
# One definition of an operations file: from its keyword at the start of a line to the first
# closing brace at the start of a line (the files' style, checked by tests/test_operations.py).
_DEFINITION = re.compile(r"^(query|mutation|subscription|fragment) (\w+)[^\n]*\{.*?^\}", re.M | re.S)
_SPREAD = re.compile(r"\.\.\.(\w+)")


class DocumentIdError(Exception):
    """A request's document id cannot be used; ``code`` goes in the error's extensions."""

    code = ""


class UnknownDocument(DocumentIdError):
    """A document id that names no trusted document."""

    code = NOT_FOUND

    def __init__(self, document_id: str) -> None:
        super().__init__(f"no trusted document has the id {document_id!r}: send the document's text")
        self.document_id = document_id


class MismatchedDocument(DocumentIdError):
    """A request with both a document's text and an id that is not the text's."""

    code = "DOCUMENT_ID_MISMATCH"

    def __init__(self) -> None:
        super().__init__("the document's id is not the SHA-256 of its text")


@dataclass(frozen=True)
class TrustedDocument:
    id: str  # "sha256:<hex>"
    operation: str
    file: str
    text: str


def document_id(text: str) -> str:
    return PREFIX + hashlib.sha256(text.encode("utf-8")).hexdigest()


def operations_folder() -> Path:
    """Where the operations are: inside the installed package (a wheel carries them as
    ``gateway/operations``), else in the source tree (an editable install, a checkout)."""
    packaged = Path(__file__).resolve().parent.parent / "operations"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[2] / "schema" / "operations"


def _definitions(text: str) -> dict[str, str]:
    return {match[2]: match[0] for match in _DEFINITION.finditer(text)}


def documents_of(folder: Path) -> tuple[TrustedDocument, ...]:
    """Every operation of the folder's files as the page sends it: the operation, then the
    fragments it needs in the order first spread, separated by a blank line."""
    shared_file = folder / "fragments.graphql"
    shared = _definitions(shared_file.read_text(encoding="utf-8")) if shared_file.is_file() else {}
    found = []
    for path in sorted(folder.glob("*.graphql")):
        if path == shared_file:
            continue
        own = _definitions(path.read_text(encoding="utf-8"))
        for name, text in own.items():
            if text.startswith("fragment "):
                continue
            needed: dict[str, str] = {}

            def visit(source: str, own: dict[str, str] = own, needed: dict[str, str] = needed) -> None:
                for spread in _SPREAD.findall(source):
                    fragment = own.get(spread, shared.get(spread))
                    if fragment is not None and spread not in needed:
                        needed[spread] = fragment
                        visit(fragment)

            visit(text)
            document = "\n\n".join((text, *needed.values()))
            found.append(TrustedDocument(document_id(document), name, path.name, document))
    return tuple(found)


@cache
def registry() -> dict[str, TrustedDocument]:
    """The trusted documents by id (read once per process)."""
    folder = operations_folder()
    return {d.id: d for d in documents_of(folder)} if folder.is_dir() else {}


def pin_all(schema: GraphQLSchema) -> int:
    """Check, parse and validate every trusted document once and pin it in the document cache;
    the number pinned. A document the schema refuses is a bug of this release: it raises."""
    for trusted in registry().values():
        entry = limits.pin(trusted.text)
        errors = limits.validated(trusted.text, schema, entry.document) if entry.document else None
        if entry.document is None or entry.refusal is not None or errors:
            raise RuntimeError(f"trusted document {trusted.operation} ({trusted.file}) is invalid: {errors}")
    return len(registry())


def requested_id(params: dict[str, Any]) -> str | None:
    """The document id a GraphQL-over-HTTP request names, if any: ``documentId``, or Apollo's
    ``extensions.persistedQuery.sha256Hash`` (a bare hex digest)."""
    given = params.get("documentId")
    if isinstance(given, str):
        return given
    extensions = params.get("extensions")
    persisted = extensions.get("persistedQuery") if isinstance(extensions, dict) else None
    digest = persisted.get("sha256Hash") if isinstance(persisted, dict) else None
    return PREFIX + digest.lower() if isinstance(digest, str) else None


def resolve(params: dict[str, Any]) -> dict[str, Any]:
    """The request's parameters with the text of the trusted document it names (when it names
    one); raises :class:`UnknownDocument` or :class:`MismatchedDocument`."""
    wanted = requested_id(params)
    if wanted is None:
        return params
    query = params.get("query")
    if isinstance(query, str) and query:
        if document_id(query) != wanted:
            raise MismatchedDocument
        return params
    trusted = registry().get(wanted)
    if trusted is None:
        raise UnknownDocument(wanted)
    return {**params, "query": trusted.text}
