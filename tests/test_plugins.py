"""Plugin discovery: built-ins and partners load the same way, through entry points."""

from __future__ import annotations

import ast
import dataclasses
import importlib.metadata
import inspect
import tomllib
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from gateway.plugin_api import hookimpl, hookspecs
from gateway.plugin_api.registry import PluginError, load_plugins
from gateway.server.app import build_gateway
from gateway.server.http import create_app

from helpers import BUILT_IN_PLUGINS, PARTNER_PLUGIN, install_project, make_distribution, registry_of

ROOT = Path(__file__).parent.parent
BUILT_INS = {
    "messaging_rates": ("billing-gateway-messaging-rates", ["rate_provider:default"]),
    "payment_balance": ("billing-gateway-payment-balance", ["payment_method:balance"]),
    "payment_card": ("billing-gateway-payment-card", ["payment_method:card"]),
    "tax_vat": ("billing-gateway-tax-vat", ["tax_calculator:vat"]),
}


PARTNER_RATES = """
    from decimal import Decimal
    from gateway.plugin_api import hookimpl
    from gateway.plugin_api import Channel, Destination, MessageType

    class PartnerRates:
        code = "partner"

        def message_types(self):
            return [MessageType("SMS", "SMS", Channel.SMS, segmented=True)]

        def destinations(self):
            return [Destination("IS", "Iceland")]

        def credits_per_message(self, country, message_type):
            return Decimal("2.5") if (country, message_type) == ("IS", "SMS") else None

    @hookimpl
    def register_rate_providers(register):
        register(PartnerRates())
"""


def test_plugins_query_lists_the_built_ins_with_distribution_and_version(graphql):
    plugins = graphql("{ plugins { name distribution version module provides } }")["plugins"]
    assert {p["name"]: (p["distribution"], p["provides"]) for p in plugins} == BUILT_INS
    assert all(p["version"] == "0.1.0" for p in plugins)
    assert {p["module"] for p in plugins} == {f"billing_gateway_{name}" for name in BUILT_INS}


def test_a_partner_distribution_is_discovered_and_used(tmp_path, monkeypatch, settings, clock):
    make_distribution(tmp_path, "partner-rates", "partner_rates", PARTNER_RATES)
    monkeypatch.syspath_prepend(str(tmp_path))
    gateway = build_gateway(
        dataclasses.replace(settings, rate_provider="partner"), clock=clock, run_migrations=False
    )
    try:
        with TestClient(create_app(gateway)) as client:
            body = client.post(
                "/graphql",
                json={
                    "query": """
                { plugins { name distribution version provides } destinations { country } }
            """
                },
            ).json()
            assert {
                "name": "partner_rates",
                "distribution": "partner-rates",
                "version": "1.2.3",
                "provides": ["rate_provider:partner"],
            } in body["data"]["plugins"]
            assert body["data"]["destinations"] == [{"country": "IS"}]
            estimate = client.post(
                "/graphql",
                json={
                    "query": """mutation {
                estimate(input: {credits: 100, messageType: "SMS", country: "IS"}) {
                    ... on Estimate { creditsPerMessage messages } } }"""
                },
            ).json()
            assert estimate["data"]["estimate"] == {"creditsPerMessage": "2.5", "messages": 40}
    finally:
        gateway.close()


def test_two_rate_providers_need_a_setting_to_choose(tmp_path, monkeypatch, settings):
    make_distribution(tmp_path, "partner-rates", "partner_rates", PARTNER_RATES)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginError, match=r"2 rate providers are loaded \(\['default', 'partner'\]\)"):
        build_gateway(settings, run_migrations=False)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "import not_a_module_anywhere\n",
            r"plugin 'broken' \(broken-plugin 1.2.3\) failed to import: ModuleNotFoundError",
        ),
        (
            "raise RuntimeError('boom')\n",
            r"plugin 'broken' \(broken-plugin 1.2.3\) failed to import: RuntimeError: boom",
        ),
        (
            """
     from gateway.plugin_api import hookimpl

     @hookimpl
     def register_rate_providers(register, extra):
         pass
     """,
            r"plugin 'broken' \(broken-plugin 1.2.3\) breaks the hook contract",
        ),
        (
            """
     from gateway.plugin_api import hookimpl

     @hookimpl
     def register_refund_policies(register):
         pass
     """,
            r"plugin 'broken' implements an unknown hook",
        ),
        (
            """
     from gateway.plugin_api import hookimpl

     class Half:
         code = "half"

     @hookimpl
     def register_tax_calculators(register):
         register(Half())
     """,
            r"plugin 'broken' registered tax_calculator 'half' that does not satisfy TaxCalculator: missing calculate",
        ),
        (
            """
     from gateway.plugin_api import hookimpl

     class NoCode:
         label = "x"

     @hookimpl
     def register_payment_methods(register):
         register(NoCode())
     """,
            r"plugin 'broken' registered a payment_method without a string `code`",
        ),
        (
            """
     from gateway.plugin_api import Capability, hookimpl

     class Method:
         code = "balance"
         label = "Another method"
         capabilities = frozenset({Capability.PAY_NOW})

         def charge(self, request, ledger): ...
         def status(self, request, reference, ledger): ...
         def confirm(self, request, reference, response): ...
         def cancel(self, request, reference, ledger): ...
         def refund(self, request, reference, amount, key, ledger): ...

     @hookimpl
     def register_payment_methods(register):
         register(Method())
     """,
            r"payment_method 'balance', which is already taken",
        ),
        (
            """
     from gateway.plugin_api import Capability, hookimpl

     class Method:
         code = "wire"
         label = "Another method"
         capabilities = frozenset({Capability.REFUND})

         def charge(self, request, ledger): ...
         def status(self, request, reference, ledger): ...
         def confirm(self, request, reference, response): ...
         def cancel(self, request, reference, ledger): ...
         def refund(self, request, reference, amount, key, ledger): ...

     @hookimpl
     def register_payment_methods(register):
         register(Method())
     """,
            r"payment method 'wire' that can neither pay now, ask for a customer action nor settle later",
        ),
        (
            """
     from gateway.plugin_api import Capability, hookimpl

     class Method:
         code = "wire"
         label = "Another method"
         capabilities = {"pay_now"}

         def charge(self, request, ledger): ...
         def status(self, request, reference, ledger): ...
         def confirm(self, request, reference, response): ...
         def cancel(self, request, reference, ledger): ...
         def refund(self, request, reference, amount, key, ledger): ...

     @hookimpl
     def register_payment_methods(register):
         register(Method())
     """,
            r"payment method 'wire' whose `capabilities` is not a frozenset of Capability",
        ),
        (
            """
     from gateway.plugin_api import Capability, hookimpl

     class Method:
         code = "cards"
         label = "Another method"
         capabilities = frozenset({Capability.PAY_NOW, Capability.CARDS})

         def charge(self, request, ledger): ...
         def status(self, request, reference, ledger): ...
         def confirm(self, request, reference, response): ...
         def cancel(self, request, reference, ledger): ...
         def refund(self, request, reference, amount, key, ledger): ...

     @hookimpl
     def register_payment_methods(register):
         register(Method())
     """,
            r"payment method 'cards' with the CARDS capability but without `tokenize`",
        ),
        (
            """
     from gateway.plugin_api import hookimpl

     @hookimpl
     def register_event_listeners(register):
         raise KeyError("config")
     """,
            r"plugin 'broken' failed in register_event_listeners: KeyError",
        ),
    ],
)
def test_a_broken_plugin_stops_start_up_naming_it(tmp_path, monkeypatch, source, message):
    module = f"broken_{abs(hash(source))}"  # a fresh module name: imports are cached per name
    make_distribution(tmp_path, "broken-plugin", module, source, entry_point="broken")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginError, match=message):
        load_plugins()
    # ... unless the operator disabled it.
    registry = load_plugins(disabled={"broken"})
    assert "broken" not in {p.name for p in registry.plugins}


def test_a_disabled_built_in_is_not_loaded():
    registry = load_plugins(disabled={"payment_card"})
    assert set(registry.payment_methods) == {"balance"}
    assert "payment_card" not in {p.name for p in registry.plugins}


def test_the_suites_plugins_are_the_built_ins_as_their_projects_declare_them():
    declared = {}
    for project in (ROOT / "plugins").glob("*/pyproject.toml"):
        declared |= tomllib.loads(project.read_text())["project"]["entry-points"][hookspecs.ENTRY_POINT_GROUP]
    assert {name: module.__name__ for name, module in BUILT_IN_PLUGINS.items()} == declared
    assert {p.name for p in registry_of().plugins} == set(declared) == set(BUILT_INS)


def test_an_explicit_plugin_list_is_checked_as_discovered_plugins_are():
    class Half:
        code = "half"

    class Broken:
        @hookimpl
        def register_tax_calculators(self, register):
            register(Half())

    with pytest.raises(
        PluginError,
        match=r"plugin 'broken' registered tax_calculator 'half' that does not satisfy TaxCalculator",
    ):
        registry_of({**BUILT_IN_PLUGINS, "broken": Broken()})
    with pytest.raises(PluginError, match="two plugins are named 'tax_vat'"):
        load_plugins(plugins=[*BUILT_IN_PLUGINS.items(), ("tax_vat", Broken())])
    assert {p.name for p in registry_of(disabled={"payment_card"}).plugins} == set(BUILT_INS) - {
        "payment_card"
    }


def test_a_partner_installed_beside_the_gateway_is_discovered_but_not_loaded_by_the_suite(
    tmp_path, monkeypatch, built_once, settings, clock, gateway
):
    """The partner of tests/fixtures/partner_plugin (CI installs it for the PostgreSQL run) adds
    a second tax calculator and rate provider and a second payment method "card": the server
    sees it, and refuses to start until the operator disables one of the cards. The suite's
    registries hold the built-ins only."""
    install_project(tmp_path, PARTNER_PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))

    with pytest.raises(PluginError, match=r"payment_method 'card', which is already taken"):
        load_plugins()
    with pytest.raises(PluginError, match=r"payment_method 'card', which is already taken"):
        build_gateway(settings, clock=clock, run_migrations=False)
    discovered = load_plugins(disabled={"payment_card"})
    assert {p.name: p.distribution for p in discovered.plugins if p.name.startswith("acme")} == {
        "acme": "acme-billing",
        "acme_card": "acme-billing",
    }
    assert set(discovered.tax_calculators) == {"acme_sales_tax", "vat"}
    assert set(discovered.rate_providers) == {"acme", "default"}
    assert discovered.payment_methods["card"].label == "Acme card"

    fresh = build_gateway(settings, clock=clock, run_migrations=False, **built_once.parts(settings))
    for registry in (gateway.registry, fresh.registry, registry_of()):
        assert {p.name: p.provides for p in registry.plugins} == {
            name: tuple(provides) for name, (_, provides) in BUILT_INS.items()
        }
        assert registry.payment_methods["card"].label != "Acme card"


def test_discovery_in_the_tests_sees_the_built_ins_whatever_else_is_installed():
    """conftest's discovered_plugins hides every installed plugin but the built-ins, so that
    start-up tests (the CLI, build_gateway without a registry) load the same set anywhere."""
    installed = {ep.name for ep in importlib.metadata.entry_points(group=hookspecs.ENTRY_POINT_GROUP)}
    assert installed >= set(BUILT_INS)  # and, where CI installed the partner, acme and acme_card
    assert {p.name for p in load_plugins().plugins} == set(BUILT_INS)


def test_the_core_never_imports_a_plugin():
    """gateway/ reaches plugins only through entry points, like a partner's package."""
    plugin_modules = {f"billing_gateway_{p.name}" for p in (ROOT / "plugins").iterdir() if p.is_dir()}
    offenders = []
    for path in (ROOT / "gateway").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top in plugin_modules or top == "plugins":
                    offenders.append(f"{path.relative_to(ROOT)}: {name}")
    assert len(plugin_modules) == 4
    assert offenders == []


def test_every_hook_is_documented_and_tested():
    """Each hookspec has a docstring, a README entry and a test that names it."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    tests = "\n".join(
        p.read_text(encoding="utf-8")
        for p in (ROOT / "tests").rglob("test_*.py")
        if p.name != "test_plugins.py"
    )
    specs = [
        name
        for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(fn, "billing_gateway_spec")
    ]
    assert sorted(specs) == [
        "register_event_listeners",
        "register_payment_methods",
        "register_rate_providers",
        "register_tax_calculators",
        "register_tax_id_verifiers",
    ]
    for name in specs:
        assert (getattr(hookspecs, name).__doc__ or "").strip(), f"{name} has no docstring"
        assert f"`{name}" in readme, f"{name} is not documented in README.md"
        assert (
            name in tests
            or name
            in (ROOT / "tests" / "test_plugins.py")
            .read_text()
            .split("def test_every_hook_is_documented_and_tested")[0]
        ), f"no test uses {name}"


def test_an_event_listener_registers_through_register_event_listeners(tmp_path, monkeypatch):
    make_distribution(
        tmp_path,
        "audit-log",
        "audit_log",
        """
        from gateway.plugin_api import hookimpl

        class AuditLog:
            code = "audit"
            def __init__(self):
                self.seen = []
            def handle(self, event):
                self.seen.append(event)

        @hookimpl
        def register_event_listeners(register):
            register(AuditLog())
    """,
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = load_plugins()
    assert list(registry.event_listeners) == ["audit"]
    assert {"name": "audit_log", "provides": ("event_listener:audit",)}.items() <= dataclasses.asdict(
        next(p for p in registry.plugins if p.name == "audit_log")
    ).items()
