"""docs/reliability.md names the tests that reproduce each probe: every node id it names must
exist. Read without importing or collecting anything (an AST walk of each test module), so the
check is fast; a parametrized id is checked up to its function, its ``[...]`` part is not."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCUMENT = ROOT / "docs" / "reliability.md"

# tests/<path>.py, then ::Class::function or ::function; a parameter part ([...]) may follow and
# is left out (it may hold "::", "[" and "]" of its own, as in [http://[fd00::1]/h]).
NODE_ID = re.compile(r"\btests/[\w/]+\.py(?:::\w+)*")


def named_node_ids(text: str) -> list[str]:
    return sorted(set(NODE_ID.findall(text)))


@cache
def definitions(path: Path) -> dict[str, ast.AST]:
    """The module's top-level functions and classes by name."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return {
        node.name: node
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    }


def missing(node_id: str) -> str | None:
    """Why ``node_id`` names nothing, or None if it names a test module, class or function."""
    file, *names = node_id.split("::")
    path = ROOT / file
    if not path.is_file():
        return f"{file} does not exist"
    scope = definitions(path)
    for depth, name in enumerate(names):
        node = scope.get(name)
        if node is None:
            return f"{file} defines no {'::'.join(names[: depth + 1])}"
        if depth < len(names) - 1:
            if not isinstance(node, ast.ClassDef):
                return f"{'::'.join(names[: depth + 1])} in {file} is not a class"
            scope = {
                child.name: child
                for child in node.body
                if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            }
    if names and not names[-1].startswith(("test_", "Test")):
        return f"{node_id} is not a test pytest collects"
    return None


def test_every_node_id_in_the_reliability_document_exists():
    ids = named_node_ids(DOCUMENT.read_text(encoding="utf-8"))
    assert len(ids) >= 30, f"too few node ids found: the pattern no longer matches the document? {ids}"
    problems = [problem for problem in map(missing, ids) if problem]
    assert not problems, problems


def test_the_check_finds_what_is_missing():
    assert named_node_ids("`pytest 'tests/test_a.py::test_b[x::y]' tests/test_c.py`") == [
        "tests/test_a.py::test_b",
        "tests/test_c.py",
    ]
    assert (
        missing("tests/test_reliability_doc.py::test_every_node_id_in_the_reliability_document_exists")
        is None
    )
    assert missing("tests/test_reliability_doc.py::test_no_such_test") == (
        "tests/test_reliability_doc.py defines no test_no_such_test"
    )
    assert missing("tests/test_no_such_module.py::test_x") == "tests/test_no_such_module.py does not exist"
    assert missing("tests/test_reliability_doc.py::named_node_ids") == (
        "tests/test_reliability_doc.py::named_node_ids is not a test pytest collects"
    )
    assert missing("tests/test_metrics.py::TestToken::test_metrics_need_the_token_when_one_is_set") is None
    assert (
        missing("tests/test_metrics.py::TestToken::test_x")
        == "tests/test_metrics.py defines no TestToken::test_x"
    )
