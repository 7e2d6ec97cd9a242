"""The gateway's packages are layers, and imports only point down.

::

    server       app composition root, HTTP, CLI, settings (and gateway/__main__.py)
      |
    api          Strawberry types and resolvers (run no SQL)
      |
    services     use cases
      |
    events       outbox, event catalog, notify, webhooks
      |
    storage      SQLAlchemy models and db, idempotency, locks, ledger, migrations
      |
    plugin_api   hookspecs, protocols and values crossing the plugin boundary, registry
      |
    core         pure domain: money, catalog, pricing, periods, sms, tax values, errors

    testing      (beside the stack) the plugin conformance kit: sees only plugin_api and core

A module may import modules of its own layer or of a lower one; a layer beside the stack
imports the layers it names and is imported by none. ``gateway/__init__.py`` is
neutral: anyone may import it, and it imports no layer (it runs before every gateway module,
so whatever it imported every layer would depend on). Some layers also ban third-party
packages (``BANNED``), and no gateway modules may import each other in a cycle.

Every import counts: at module level, inside functions and under ``if TYPE_CHECKING:``; a
type-only import is still a dependency that a reader and mypy follow, and it is how a
runtime import creeps back in. ``from gateway.x import y`` is an import of the submodule
``gateway.x.y`` when that is a module, else of ``gateway.x``, that is of
``gateway/x/__init__.py``. Importing ``gateway.x.y`` also runs ``gateway/x/__init__.py``
first; that implicit edge is not counted, because the package is already in
``sys.modules`` while its ``__init__`` runs, so it cannot close a cycle that fails.

Only the standard library's ``ast`` is used: nothing is imported, so the check also runs
on code that would fail to import.
"""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

# Bottom to top. A module may import its own layer and the layers before it.
LAYERS = ("core", "plugin_api", "storage", "events", "services", "api", "server")
# Beside the stack: each imports only itself and the layers named, and no layer imports it.
SIDE_LAYERS: dict[str, tuple[str, ...]] = {
    # the conformance kit (a pytest plugin): it checks plugins as partners see them
    "testing": ("core", "plugin_api"),
}

# Third-party top-level packages each layer must not import, and why.
_WEB = frozenset({"strawberry", "graphql", "starlette"})  # GraphQL and HTTP live in api and server
_TEST_TOOLS = frozenset({"pytest", "hypothesis"})  # only the conformance kit runs under pytest
BANNED: dict[str, frozenset[str]] = {
    # the domain is pure: no database, no GraphQL or HTTP, no plugin machinery
    "core": _WEB | _TEST_TOOLS | {"sqlalchemy", "alembic", "uvicorn", "pluggy"},
    # plugins see values and protocols, never the database or the web layer
    "plugin_api": _WEB | _TEST_TOOLS | {"sqlalchemy", "alembic"},
    "storage": _WEB | _TEST_TOOLS,
    "events": _WEB | _TEST_TOOLS,
    "services": _WEB | _TEST_TOOLS,
    # resolvers call services; they run no SQL themselves
    "api": _TEST_TOOLS | {"sqlalchemy"},
    "server": _TEST_TOOLS,
    # the kit checks plugins through plugin_api, as the server loads them: no database, no web
    "testing": _WEB | {"sqlalchemy", "alembic", "uvicorn"},
}
# The gateway finds its plugins through entry points and never imports them (README, Plugins).
PLUGIN_PACKAGE_PREFIX = "billing_gateway_"

PACKAGE = "gateway"
# Alembic revisions are generated, frozen history; they are loaded by Alembic, not imported.
SKIPPED = ("gateway/storage/migrations/versions",)
REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Import:
    source: str  # the importing module, e.g. "gateway.services.checkout"
    target: str  # the imported module: a gateway module resolved as above, else the dotted name
    path: str  # the importing file, relative to the root
    line: int
    where: str  # "" at module level, else " (in f())" or " (under TYPE_CHECKING)"

    @property
    def is_gateway(self) -> bool:
        return self.target == PACKAGE or self.target.startswith(PACKAGE + ".")

    def at(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(frozen=True)
class Project:
    modules: dict[str, str]  # module name -> file path relative to the root
    imports: tuple[Import, ...]


def module_name(relative: Path) -> str:
    parts = list(relative.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> str | None:
    """The layer of a gateway module; None for the neutral package itself.

    Raises KeyError for a module outside every layer, so a new top-level package must be
    placed in the diagram before it can be imported.
    """
    if module == PACKAGE:
        return None
    if module == f"{PACKAGE}.__main__":
        return "server"
    top = module.split(".")[1]
    if top not in LAYERS and top not in SIDE_LAYERS:
        raise KeyError(module)
    return top


def may_import(layer: str) -> tuple[str, ...]:
    """The layers a module of ``layer`` may import: its own and those below it (or named)."""
    if layer in SIDE_LAYERS:
        return (*SIDE_LAYERS[layer], layer)
    return LAYERS[: LAYERS.index(layer) + 1]


def scan(root: Path) -> Project:
    """Every module under root/gateway and every import each one makes."""
    files = sorted(
        path
        for path in (root / PACKAGE).rglob("*.py")
        if not any(path.relative_to(root).as_posix().startswith(skip + "/") for skip in SKIPPED)
    )
    modules = {module_name(path.relative_to(root)): path.relative_to(root).as_posix() for path in files}
    imports: list[Import] = []
    for path in files:
        relative = path.relative_to(root)
        collector = _ImportCollector(
            source=module_name(relative),
            path=relative.as_posix(),
            is_package=path.name == "__init__.py",
            modules=modules,
        )
        collector.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        imports.extend(collector.imports)
    return Project(modules=modules, imports=tuple(imports))


class _ImportCollector(ast.NodeVisitor):
    def __init__(self, *, source: str, path: str, is_package: bool, modules: dict[str, str]) -> None:
        self.source = source
        self.path = path
        self.package = source if is_package else source.rpartition(".")[0]
        self.modules = modules
        self.imports: list[Import] = []
        self._where: list[str] = []

    def _add(self, target: str, node: ast.stmt | ast.expr) -> None:
        where = f" ({self._where[-1]})" if self._where else ""
        self.imports.append(Import(self.source, target, self.path, node.lineno, where))

    def _nested(self, label: str, nodes: Iterable[ast.AST]) -> None:
        self._where.append(label)
        for node in nodes:
            self.visit(node)
        self._where.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for decorator in node.decorator_list:
            self.visit(decorator)
        self._nested(f"in {node.name}()", node.body)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        name = test.id if isinstance(test, ast.Name) else test.attr if isinstance(test, ast.Attribute) else ""
        if name != "TYPE_CHECKING":
            self.generic_visit(node)
            return
        self._nested("under TYPE_CHECKING", node.body)
        for other in node.orelse:
            self.visit(other)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node)

    def visit_Call(self, node: ast.Call) -> None:
        # importlib.import_module("gateway.x") and __import__("gateway.x") are imports too
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        if (
            name in {"import_module", "__import__"}
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and not node.args[0].value.startswith(".")
        ):
            self._add(node.args[0].value, node)
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:  # relative: climb from this module's package
            base_parts = self.package.split(".")
            base_parts = base_parts[: len(base_parts) - (node.level - 1)]
            base = ".".join([*base_parts, node.module] if node.module else base_parts)
        else:
            base = node.module or ""
        if base == "__future__":
            return
        if base != PACKAGE and not base.startswith(PACKAGE + "."):
            self._add(base, node)
            return
        # `from gateway.x import y` imports the submodule gateway.x.y when there is one,
        # else the name y from gateway/x/__init__.py; one statement may do both.
        for target in dict.fromkeys(
            f"{base}.{alias.name}" if f"{base}.{alias.name}" in self.modules else base for alias in node.names
        ):
            self._add(target, node)


def _allowed(source: str | None, target: str | None) -> bool:
    """Whether a module of layer ``source`` may import one of layer ``target`` (None: neutral)."""
    return target is None or (source is not None and target in may_import(source))


def unlayered_modules(project: Project) -> list[str]:
    problems = []
    for module, path in sorted(project.modules.items()):
        try:
            layer_of(module)
        except KeyError:
            problems.append(f"{path}: {module} is in no layer; add its package to LAYERS or move it")
    return problems


def direction_violations(project: Project) -> list[str]:
    """Imports of a higher layer, of a module that does not exist, and by the neutral package."""
    problems = []
    for imp in project.imports:
        if not imp.is_gateway:
            continue
        if imp.target not in project.modules:
            problems.append(f"{imp.at()}: {imp.source} imports {imp.target}{imp.where}, which is no module")
            continue
        try:
            source_layer, target_layer = layer_of(imp.source), layer_of(imp.target)
        except KeyError:
            continue  # reported by unlayered_modules
        if source_layer is None and imp.target != PACKAGE:
            problems.append(
                f"{imp.at()}: {PACKAGE} (neutral) imports {imp.target} ({target_layer}){imp.where}; "
                f"{PACKAGE}/__init__.py runs before every module and must import no layer"
            )
        elif source_layer is not None and not _allowed(source_layer, target_layer):
            allowed = ", ".join(may_import(source_layer))
            problems.append(
                f"{imp.at()}: {imp.source} ({source_layer}) imports {imp.target} ({target_layer})"
                f"{imp.where}; {source_layer} may import only {allowed}"
            )
    return problems


def banned_imports(project: Project) -> list[str]:
    problems = []
    for imp in project.imports:
        if imp.is_gateway:
            continue
        top = imp.target.split(".")[0]
        try:
            layer = layer_of(imp.source)
        except KeyError:
            continue  # reported by unlayered_modules
        if top.startswith(PLUGIN_PACKAGE_PREFIX):
            problems.append(
                f"{imp.at()}: {imp.source} imports the plugin {imp.target}{imp.where}; "
                "plugins are loaded through entry points only"
            )
        elif layer is not None and top in BANNED[layer]:
            problems.append(
                f"{imp.at()}: {imp.source} ({layer}) imports {imp.target}{imp.where}; "
                f"{layer} must not import {', '.join(sorted(BANNED[layer]))}"
            )
    return problems


def _strongly_connected(graph: dict[str, set[str]]) -> Iterator[list[str]]:
    """Tarjan's algorithm: yields each strongly connected component of graph."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()

    def visit(node: str) -> Iterator[list[str]]:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                yield from visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            yield sorted(component)

    for node in sorted(graph):
        if node not in index:
            yield from visit(node)


def _shortest_cycle(start: str, graph: dict[str, set[str]], members: set[str]) -> list[str]:
    """The shortest path start -> ... -> start inside one component (breadth first)."""
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for successor in sorted(graph[node] & members):
            if successor == start:
                path = [node]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [start, *reversed(path[:-1]), start] if node != start else [start, start]
            if successor not in came_from:
                came_from[successor] = node
                queue.append(successor)
    raise AssertionError(f"{start} is on no cycle in {sorted(members)}")


def _points_up(imp: Import) -> bool:
    try:
        return not _allowed(layer_of(imp.source), layer_of(imp.target))
    except KeyError:
        return False  # reported by unlayered_modules


@dataclass(frozen=True)
class Cycle:
    modules: list[str]  # the strongly connected component, sorted
    example: list[str]  # one concrete cycle through its first module
    edges: list[Import]  # every import between its modules
    # The cycles left inside it once its imports against the layers are gone: these run
    # within one layer, so fixing the layer violations alone does not break them.
    within_layers: list[list[str]]

    def describe(self) -> str:
        lines = [
            f"{len(self.modules)} modules: {', '.join(self.modules)}",
            f"    e.g. {' -> '.join(self.example)}",
            "    imports inside it:",
        ]
        lines += [
            f"      {imp.at()}: {imp.source} -> {imp.target}{imp.where}"
            + ("  [against the layers]" if _points_up(imp) else "")
            for imp in self.edges
        ]
        lines += [f"    still a cycle without those: {', '.join(modules)}" for modules in self.within_layers]
        return "\n".join(lines)


def _graph(modules: Iterable[str], imports: Iterable[Import]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {module: set() for module in modules}
    for imp in imports:
        # importing oneself is a no-op at run time (the module is already in sys.modules)
        if imp.target in graph and imp.source in graph and imp.target != imp.source:
            graph[imp.source].add(imp.target)
    return graph


def import_cycles(project: Project) -> list[Cycle]:
    """Groups of gateway modules that import each other, directly or through others.

    Each group is a strongly connected component: every module in it reaches every other
    one through imports, so it holds at least one cycle and often several overlapping ones.
    """
    graph = _graph(project.modules, project.imports)
    cycles = []
    for component in _strongly_connected(graph):
        if len(component) < 2:
            continue
        members = set(component)
        edges = sorted(
            (imp for imp in project.imports if imp.source in members and imp.target in members),
            key=lambda imp: (imp.path, imp.line, imp.target),
        )
        level = _graph(members, (imp for imp in edges if not _points_up(imp)))
        within = [group for group in _strongly_connected(level) if len(group) > 1]
        cycles.append(Cycle(component, _shortest_cycle(component[0], graph, members), edges, within))
    return cycles


def _report(title: str, problems: list[str]) -> str:
    return f"{len(problems)} {title}:\n" + "\n".join(problems)


# -- the gateway itself ------------------------------------------------------------------


@pytest.fixture(scope="module")
def project() -> Project:
    return scan(REPO_ROOT)


def test_the_scan_sees_the_whole_gateway(project):
    """Guards the checks below against passing because they looked at nothing."""
    assert {layer_of(module) for module in project.modules} == {None, *LAYERS, *SIDE_LAYERS}
    assert "gateway.storage.migrations.env" in project.modules
    assert not any(".versions." in module for module in project.modules)
    found = {(imp.source, imp.target, imp.where) for imp in project.imports}
    assert ("gateway.server.app", "gateway.storage.db", "") in found  # a module-level import
    assert ("gateway.core.pricing", "gateway.core.catalog", "") in found  # a from-import of names
    assert ("gateway.plugin_api.registry", "gateway.plugin_api.hookspecs", "") in found  # a submodule
    assert ("gateway.server.cli", "gateway.server.workers", " (in cmd_serve())") in found  # inside a function


def test_every_module_is_in_a_layer(project):
    problems = unlayered_modules(project)
    assert not problems, _report("modules outside the layers", problems)


def test_imports_point_down_the_layers(project):
    problems = direction_violations(project)
    assert not problems, _report("imports against the layers", problems)


def test_layers_do_not_import_banned_packages(project):
    problems = banned_imports(project)
    assert not problems, _report("banned imports", problems)


def test_no_import_cycles(project):
    cycles = import_cycles(project)
    assert not cycles, f"{len(cycles)} import cycles (strongly connected components):\n" + "\n".join(
        f"  cycle {number}: {cycle.describe()}" for number, cycle in enumerate(cycles, 1)
    )


# -- the checker catches what it is meant to ---------------------------------------------


def _tree(root: Path, files: dict[str, str]) -> Project:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return scan(root)


CLEAN = {
    "gateway/__init__.py": "",
    "gateway/core/__init__.py": "",
    "gateway/core/money.py": "import decimal\n",
    "gateway/services/__init__.py": "",
    "gateway/services/use_case.py": "from sqlalchemy import select\nfrom gateway.core import money\n",
    "gateway/api/__init__.py": "",
    "gateway/api/types.py": "import strawberry\nfrom gateway import __version__\n",
    "gateway/storage/migrations/versions/0001.py": "from gateway.api import types\n",  # skipped
}


def test_checker_passes_a_clean_tree(tmp_path):
    project = _tree(tmp_path, CLEAN)
    assert "gateway.storage.migrations.versions.0001" not in project.modules
    assert unlayered_modules(project) == []
    assert direction_violations(project) == []
    assert banned_imports(project) == []
    assert import_cycles(project) == []


def test_checker_catches_an_upward_import_in_a_function(tmp_path):
    project = _tree(
        tmp_path,
        CLEAN
        | {
            "gateway/core/money.py": "def f():\n    from gateway.services import use_case\n",
            "gateway/core/late.py": "import importlib\nimportlib.import_module('gateway.api.types')\n",
        },
    )
    assert direction_violations(project) == [
        "gateway/core/late.py:2: gateway.core.late (core) imports gateway.api.types (api); core may import only core",
        "gateway/core/money.py:2: gateway.core.money (core) imports gateway.services.use_case (services)"
        " (in f()); core may import only core",
    ]


def test_checker_resolves_relative_imports_and_reports_missing_modules(tmp_path):
    project = _tree(
        tmp_path,
        # `gone` is no module, so `from . import gone` imports gateway/core/__init__.py: legal
        CLEAN
        | {"gateway/core/money.py": "from ..api import types\nfrom . import gone\nimport gateway.nowhere\n"},
    )
    assert direction_violations(project) == [
        "gateway/core/money.py:1: gateway.core.money (core) imports gateway.api.types (api); core may import only core",
        "gateway/core/money.py:3: gateway.core.money imports gateway.nowhere, which is no module",
    ]


def test_checker_catches_a_banned_package_under_type_checking(tmp_path):
    project = _tree(
        tmp_path,
        CLEAN
        | {
            "gateway/core/money.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import sqlalchemy.orm\n",
            "gateway/api/types.py": "from sqlalchemy import select\n",
        },
    )
    problems = banned_imports(project)
    assert len(problems) == 2
    assert problems[0].startswith(
        "gateway/api/types.py:1: gateway.api.types (api) imports sqlalchemy; api must not import hypothesis, pytest, sqlalchemy"
    )
    assert "gateway.core.money (core) imports sqlalchemy.orm (under TYPE_CHECKING)" in problems[1]


def test_checker_finds_a_two_module_cycle_and_a_cycle_through_a_package(tmp_path):
    project = _tree(
        tmp_path,
        CLEAN
        | {
            "gateway/core/a.py": "import gateway.core.b\n",
            "gateway/core/b.py": "from gateway.core import a\n",
            # importing a name from gateway.services is importing gateway/services/__init__.py
            "gateway/services/__init__.py": "from gateway.services.use_case import run\n",
            "gateway/services/use_case.py": "from gateway.services import helper\ndef run(): ...\n",
        },
    )
    cycles = import_cycles(project)
    assert [cycle.modules for cycle in cycles] == [
        ["gateway.core.a", "gateway.core.b"],
        ["gateway.services", "gateway.services.use_case"],
    ]
    assert cycles[0].example == ["gateway.core.a", "gateway.core.b", "gateway.core.a"]
    assert [(imp.at(), imp.target) for imp in cycles[0].edges] == [
        ("gateway/core/a.py:1", "gateway.core.b"),
        ("gateway/core/b.py:1", "gateway.core.a"),
    ]
    assert cycles[0].within_layers == [["gateway.core.a", "gateway.core.b"]]


def test_checker_tells_cycles_through_an_upward_import_from_cycles_within_a_layer(tmp_path):
    project = _tree(
        tmp_path,
        CLEAN
        | {
            "gateway/core/money.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from gateway.services.use_case import X\n",
        },
    )
    (cycle,) = import_cycles(project)
    assert cycle.modules == ["gateway.core.money", "gateway.services.use_case"]
    assert cycle.within_layers == []
    assert (
        "gateway/core/money.py:3: gateway.core.money -> gateway.services.use_case (under TYPE_CHECKING)  [against the layers]"
        in cycle.describe()
    )


def test_checker_reports_an_unlayered_package(tmp_path):
    project = _tree(
        tmp_path, CLEAN | {"gateway/utils.py": "", "gateway/core/money.py": "import gateway.utils\n"}
    )
    assert unlayered_modules(project) == [
        "gateway/utils.py: gateway.utils is in no layer; add its package to LAYERS or move it"
    ]


def test_checker_keeps_the_package_init_neutral(tmp_path):
    project = _tree(tmp_path, CLEAN | {"gateway/__init__.py": "from gateway.core.money import Money\n"})
    assert direction_violations(project) == [
        "gateway/__init__.py:1: gateway (neutral) imports gateway.core.money (core); "
        "gateway/__init__.py runs before every module and must import no layer"
    ]


def test_checker_keeps_a_side_layer_beside_the_stack(tmp_path):
    project = _tree(
        tmp_path,
        CLEAN
        | {
            "gateway/testing/__init__.py": "",
            "gateway/testing/kit.py": "import pytest\nfrom gateway.core import money\nfrom gateway.services import use_case\n",
            "gateway/services/use_case.py": "import pytest\nfrom gateway.testing import kit\n",
        },
    )
    assert direction_violations(project) == [
        "gateway/services/use_case.py:2: gateway.services.use_case (services) imports gateway.testing.kit (testing);"
        " services may import only core, plugin_api, storage, events, services",
        "gateway/testing/kit.py:3: gateway.testing.kit (testing) imports gateway.services.use_case (services);"
        " testing may import only core, plugin_api, testing",
    ]
    assert banned_imports(project) == [
        "gateway/services/use_case.py:1: gateway.services.use_case (services) imports pytest; services must not"
        " import graphql, hypothesis, pytest, starlette, strawberry"
    ]
