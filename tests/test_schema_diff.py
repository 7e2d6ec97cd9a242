"""``billing-gateway schema-diff OLD NEW``: what a new SDL breaks for clients of the old one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from graphql import build_schema

from gateway.server.cli import main

ROOT = Path(__file__).resolve().parent.parent
RELEASED = ROOT / "schema" / "released"

OLD = """
type Query {
  plans: [Plan!]!
  plan(code: String!): Plan
}
type Plan {
  code: String!
  name: String!
}
"""


def diff(tmp_path: Path, capsys, old: str, new: str, *flags: str) -> tuple[int, list[str]]:
    (tmp_path / "old.graphql").write_text(old, encoding="utf-8")
    (tmp_path / "new.graphql").write_text(new, encoding="utf-8")
    status = main(["schema-diff", str(tmp_path / "old.graphql"), str(tmp_path / "new.graphql"), *flags])
    return status, capsys.readouterr().out.splitlines()


def test_identical_schemas_print_nothing(tmp_path, capsys):
    assert diff(tmp_path, capsys, OLD, OLD, "--fail-on-breaking") == (0, [])


def test_a_removed_field_is_breaking(tmp_path, capsys):
    status, out = diff(tmp_path, capsys, OLD, OLD.replace("  name: String!\n", ""))
    assert status == 0  # reported, not failed: CI prints the list
    assert out[0] == "breaking: FIELD_REMOVED: Field Plan.name was removed."
    assert out[-1].startswith("1 breaking and 0 dangerous changes from ")
    status, again = diff(tmp_path, capsys, OLD, OLD.replace("  name: String!\n", ""), "--fail-on-breaking")
    assert (status, again) == (1, out)


def test_an_added_optional_argument_is_not_breaking(tmp_path, capsys):
    new = OLD.replace("plans: [Plan!]!", "plans(currency: String): [Plan!]!")
    status, out = diff(tmp_path, capsys, OLD, new, "--fail-on-breaking")
    assert status == 0
    assert out[0] == "dangerous: OPTIONAL_ARG_ADDED: An optional argument Query.plans(currency:) was added."
    assert not any(line.startswith("breaking:") for line in out)


def test_a_required_argument_or_narrower_type_is_breaking(tmp_path, capsys):
    new = OLD.replace("plans: [Plan!]!", "plans(currency: String!): [Plan!]!").replace(
        "plan(code: String!)", "plan(code: Int!)"
    )
    status, out = diff(tmp_path, capsys, OLD, new, "--fail-on-breaking")
    assert status == 1
    assert sorted(line.split(":")[1].strip() for line in out[:-1]) == [
        "ARG_CHANGED_KIND",
        "REQUIRED_ARG_ADDED",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [("type Query { a: Nope }", "Unknown type 'Nope'"), ("type Query {", "Syntax Error")],
)
def test_an_invalid_or_missing_file_is_an_error(tmp_path, capsys, text, message):
    status, out = diff(tmp_path, capsys, OLD, text)
    assert (status, out) == (2, [])
    (tmp_path / "new.graphql").write_text(text, encoding="utf-8")
    assert main(["schema-diff", str(tmp_path / "old.graphql"), str(tmp_path / "new.graphql")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path / 'new.graphql'}: ") and message in err
    assert main(["schema-diff", str(tmp_path / "missing.graphql"), str(tmp_path / "old.graphql")]) == 2
    assert "missing.graphql" in capsys.readouterr().err


def test_every_released_schema_is_valid_sdl_named_by_its_version():
    released = sorted(RELEASED.glob("*.graphql"))
    assert "0.1.0.graphql" in [p.name for p in released]
    for path in released:
        assert re.fullmatch(r"\d+\.\d+\.\d+\.graphql", path.name), path.name
        assert build_schema(path.read_text(encoding="utf-8")).query_type is not None, path.name
