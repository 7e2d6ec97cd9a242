"""docs/events.md as readers see it: Markdown that renders, and examples that match the gateway.

The file is generated from :mod:`gateway.events.catalog` (``test_subscriptions`` keeps it equal
to ``reference()``); these tests parse it with markdown-it-py, a CommonMark parser with the GFM
table rule GitHub uses, and check what a reader gets: tables whose rows have the header's cells
(a ``|`` inside a cell must be escaped or it starts a new cell), a section per event type with
its fields, and a JSON example per type that has exactly the documented fields and types.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from graphql import build_schema
from markdown_it import MarkdownIt
from markdown_it.rules_block.table import escapedSplit
from markdown_it.token import Token

from gateway.events import catalog as ev
from gateway.events.delivery import webhook_body
from gateway.events.types import EventType

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "events.md"


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]] = field(default_factory=list)  # each cell's inline source, as rendered


@dataclass
class Section:
    heading: str
    tables: list[Table] = field(default_factory=list)
    json_examples: list[str] = field(default_factory=list)


def parse(text: str) -> list[Token]:
    return MarkdownIt("commonmark").enable("table").parse(text)


def sections(tokens: list[Token]) -> list[Section]:
    """The document split at its headings, with the tables and ```json blocks of each part."""
    found = [Section("")]
    table: Table | None = None
    cells: list[str] = []
    for i, token in enumerate(tokens):
        if token.type == "heading_open":
            found.append(Section(tokens[i + 1].content))
        elif token.type == "table_open":
            table = Table([])
            found[-1].tables.append(table)
        elif token.type == "tr_open":
            cells = []
        elif token.type == "inline" and table is not None and tokens[i - 1].type in ("th_open", "td_open"):
            cells.append(token.content)
        elif token.type == "tr_close" and table is not None:
            if not table.header:
                table.header = cells
            else:
                table.rows.append(cells)
        elif token.type == "table_close":
            table = None
        elif token.type == "fence" and token.info.strip() == "json":
            found[-1].json_examples.append(token.content)
    return found


def misshapen_rows(text: str) -> list[str]:
    """Table rows whose source splits into another number of cells than the header has.

    The parser itself pads a short row and drops a long row's extra cells, so its tokens
    always look right: the source line is split with the parser's own rule instead. A line
    starting with ``|`` outside every table (a row cut by a raw newline) is reported too.
    """
    lines = text.splitlines()
    problems: list[str] = []
    in_table: set[int] = set()
    for token in parse(text):
        if token.type != "table_open" or token.map is None:
            continue
        start, end = token.map
        in_table.update(range(start, end))
        header = len(_cells(lines[start]))
        for number in range(start + 2, end):
            if (count := len(_cells(lines[number]))) != header:
                problems.append(f"line {number + 1}: {count} cells, header has {header}: {lines[number]}")
    problems += [
        f"line {n + 1}: a table row outside any table: {line}"
        for n, line in enumerate(lines)
        if line.startswith("|") and n not in in_table
    ]
    return problems


def _cells(line: str) -> list[str]:
    cells = escapedSplit(line.strip())
    if cells and cells[0] == "":
        cells.pop(0)
    if cells and cells[-1] == "":
        cells.pop()
    return cells


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text(encoding="utf-8")


def test_every_table_row_has_as_many_cells_as_its_header(doc):
    assert misshapen_rows(doc) == []


def test_a_raw_pipe_or_newline_in_a_cell_is_found():
    broken = "\n".join(
        [
            "| Field | Type | Meaning |",
            "|-------|------|---------|",
            "| `a` | string | fine |",
            "| `b` | string | null | a raw pipe |",
            "| `c` | string \\| null | escaped |",
            "| `d` | string | cut",
            "| here |",
        ]
    )
    assert [p.split(":")[0] for p in misshapen_rows(broken)] == [
        "line 4",
        "line 7",
    ]  # line 6 lacks only its closing pipe, which GFM allows


def test_every_event_type_has_its_section_with_its_fields_and_types(doc):
    by_heading = {s.heading: s for s in sections(parse(doc))}
    for payload in ev.PAYLOADS.values():
        section = by_heading.get(payload.type.value)
        assert section is not None, f"no section for {payload.type.value}"
        [table] = section.tables
        assert table.header == ["Field", "Type", "Meaning"]
        assert [(name.strip("`"), kind) for name, kind, _ in table.rows] == [
            (f.name, f.type) for f in payload.fields
        ], payload.type.value
    assert {t.value for t in EventType} <= set(by_heading)


def test_the_index_links_to_every_section(doc):
    found = sections(parse(doc))
    anchors = {ev.anchor(s.heading) for s in found}
    [index] = [t for s in found for t in s.tables if t.header == ["Type", "Version", "When"]]
    links = [row[0] for row in index.rows]
    assert len(links) == len(EventType)
    for link in links:
        target = link.rsplit("(#", 1)[1].rstrip(")")
        assert target in anchors, link


def test_each_section_shows_its_example_as_the_webhook_body(doc):
    by_heading = {s.heading: s for s in sections(parse(doc))}
    for payload in ev.PAYLOADS.values():
        [example] = by_heading[payload.type.value].json_examples
        event = ev.example_event(payload)
        assert json.loads(example) == json.loads(webhook_body(event)), payload.type.value


def test_each_example_has_exactly_the_documented_fields_and_json_types():
    for type, payload in ev.PAYLOADS.items():
        assert ev.nonconforming(type, payload.example.payload) == [], type
        # a JSON round trip changes nothing: no Decimal, datetime or tuple hides in an example
        assert json.loads(json.dumps(payload.example.payload)) == payload.example.payload


def test_nonconforming_names_extra_missing_and_mistyped_fields():
    assert ev.nonconforming("card.added", {"card_id": "c1", "brand": 4, "pan": "4242"}) == [
        "undocumented field 'pan'",
        "missing field 'last4'",
        "brand: 4 is not string",
    ]
    assert ev.nonconforming("checkout.completed", {**ev.PAYLOADS["checkout.completed"].example.payload}) == []
    nulls = {**ev.PAYLOADS["checkout.completed"].example.payload, "invoice_id": None, "total": None}
    assert ev.nonconforming("checkout.completed", nulls) == ["total: None is not string"]
    assert not ev.fits("integer", True) and ev.fits("integer | null", None)


def test_every_documented_type_is_a_json_type():
    for payload in ev.PAYLOADS.values():
        for f in payload.fields:
            unknown = set(f.type.split(" | ")) - set(ev.JSON_TYPES)
            assert not unknown, (payload.type.value, f.name, f.type)


def test_the_examples_tell_one_workspace_story_in_sequence_order():
    examples = sorted((p.example for p in ev.PAYLOADS.values()), key=lambda e: e.sequence)
    assert len({e.sequence for e in examples}) == len(examples)
    assert [e.occurred_at for e in examples] == sorted(e.occurred_at for e in examples)


def test_the_graphql_envelope_names_the_fields_of_the_event_type():
    schema = build_schema((ROOT / "schema" / "schema.graphql").read_text(encoding="utf-8"))
    event_type = schema.get_type("Event")
    assert event_type is not None
    assert [f.graphql for f in ev.ENVELOPE] == list(event_type.fields)  # type: ignore[attr-defined]
