"""The conformance kit's pytest plugin, registered through the ``pytest11`` entry point.

It is inert in every other pytest run: it adds command-line options and parametrizes the
``payment_method``, ``tax_calculator`` and ``rate_provider`` arguments of the tests in
:mod:`gateway.testing.conformance` only. No fixtures, no autouse, no other collection change.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

import pytest

from gateway.plugin_api.hookspecs import ENTRY_POINT_GROUP
from gateway.plugin_api.registry import PluginError, Registry, load_plugins
from gateway.testing.fakes import DEFAULT_ACTION_CARD, DEFAULT_CARD

SUITES = "gateway.testing.conformance"
USAGE = (
    "the conformance kit checks the plugins named with --conformance-plugin=MODULE_OR_ENTRY_POINT_NAME "
    f"(repeatable): pytest --pyargs {SUITES} --conformance-plugin=my_plugin"
)
# The test argument the suites take -> the Registry field holding that kind of provider.
PROVIDER_ARGUMENTS = {
    "payment_method": "payment_methods",
    "tax_calculator": "tax_calculators",
    "rate_provider": "rate_providers",
}
_REGISTRY = pytest.StashKey[Registry]()
_SKIPPED_FOR_USAGE = pytest.StashKey[bool]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("billing-gateway conformance", f"plugin conformance kit ({SUITES})")
    group.addoption(
        "--conformance-plugin",
        action="append",
        default=[],
        dest="conformance_plugins",
        metavar="MODULE_OR_ENTRY_POINT_NAME",
        help=f"a plugin to check: a module path or the name of a {ENTRY_POINT_GROUP!r} entry point (repeatable)",
    )
    group.addoption(
        "--conformance-card",
        default=DEFAULT_CARD,
        metavar="NUMBER",
        help=f"a card the card methods' test mode charges successfully (default {DEFAULT_CARD})",
    )
    group.addoption(
        "--conformance-action-card",
        default=DEFAULT_ACTION_CARD,
        metavar="NUMBER",
        help=f"a card that asks for a customer action such as 3-D Secure (default {DEFAULT_ACTION_CARD})",
    )
    group.addoption(
        "--conformance-seller-country",
        default="DE",
        metavar="CODE",
        help="the seller's country (ISO 3166-1 alpha-2) in the tax calculators' requests (default DE)",
    )


def pytest_configure(config: pytest.Config) -> None:
    names: list[str] = config.getoption("conformance_plugins")
    if not names:
        return
    try:
        config.stash[_REGISTRY] = load_plugins(plugins=[_plugin(name) for name in names])
    except PluginError as exc:
        # The same refusal the server gives at start-up: nothing else can be checked.
        raise pytest.UsageError(f"conformance: {exc}") from exc


def _plugin(name: str) -> tuple[str, object]:
    """``name`` as an entry point of the gateway's group, else as a module path."""
    declared = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    if name in declared:
        try:
            return name, declared[name].load()
        except Exception as exc:  # any import error is the plugin's, reported as the server would
            raise PluginError(f"plugin {name!r} failed to import: {type(exc).__name__}: {exc}") from exc
    try:
        return name, importlib.import_module(name)
    except ImportError as exc:
        raise PluginError(
            f"{name!r} is neither an entry point of the {ENTRY_POINT_GROUP!r} group "
            f"(installed: {', '.join(sorted(declared)) or 'none'}) nor an importable module: {exc}"
        ) from exc


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if not metafunc.module.__name__.startswith(SUITES + "."):
        return
    registry = metafunc.config.stash.get(_REGISTRY, None)
    for argument, field in PROVIDER_ARGUMENTS.items():
        if argument not in metafunc.fixturenames:
            continue
        if registry is None:
            reason = USAGE
            metafunc.config.stash[_SKIPPED_FOR_USAGE] = True
        else:
            providers = getattr(registry, field)
            if providers:
                metafunc.parametrize(
                    argument, [pytest.param(p, id=code) for code, p in sorted(providers.items())]
                )
                continue
            named = ", ".join(metafunc.config.getoption("conformance_plugins"))
            reason = f"no {argument.replace('_', ' ')} is registered by the plugins checked ({named})"
        metafunc.parametrize(
            argument, [pytest.param(None, marks=pytest.mark.skip(reason=reason))], ids=["none"]
        )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    if config.stash.get(_SKIPPED_FOR_USAGE, False):
        terminalreporter.write_line(f"conformance kit: every test skipped; {USAGE}")
