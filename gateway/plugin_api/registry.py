"""Plugin discovery and the registry of provider objects they register.

Built-in and partner plugins load the same way: through the ``billing_gateway``
entry-point group. Loading happens once, at start-up; a plugin that fails to
import or breaks its contract stops start-up with a :class:`PluginError` naming
it, unless the operator disabled it. ``load_plugins(plugins=...)`` registers an
explicit list instead, checked the same way: what else is installed then changes
nothing (the tests build their registries so).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pluggy

from gateway.core.tax import TaxCalculator
from gateway.plugin_api import hookspecs
from gateway.plugin_api.events import EventListener
from gateway.plugin_api.messaging import RateProvider
from gateway.plugin_api.payments import Capability, CardMethod, PaymentMethod
from gateway.plugin_api.tax_ids import TaxIdVerifier


class PluginError(RuntimeError):
    """A plugin could not be loaded or broke its contract."""


@dataclass(frozen=True, slots=True)
class PluginInfo:
    name: str  # the entry-point name
    distribution: str | None
    version: str | None
    module: str
    provides: tuple[str, ...]  # "tax_calculator:vat", ...


# hook name -> (provider kind, protocol, attributes beyond `code` that it must have)
_HOOKS: dict[str, tuple[str, type, tuple[str, ...]]] = {
    "register_payment_methods": (
        "payment_method",
        PaymentMethod,
        ("label", "capabilities", "charge", "status", "confirm", "cancel", "refund"),
    ),
    "register_tax_calculators": ("tax_calculator", TaxCalculator, ("calculate",)),
    "register_tax_id_verifiers": ("tax_id_verifier", TaxIdVerifier, ("countries", "verify")),
    "register_rate_providers": (
        "rate_provider",
        RateProvider,
        ("message_types", "destinations", "credits_per_message"),
    ),
    "register_event_listeners": ("event_listener", EventListener, ("handle",)),
}


@dataclass
class Registry:
    """Provider objects by kind and code, and the plugins they came from."""

    plugins: list[PluginInfo] = field(default_factory=list)
    payment_methods: dict[str, PaymentMethod] = field(default_factory=dict)
    tax_calculators: dict[str, TaxCalculator] = field(default_factory=dict)
    tax_id_verifiers: dict[str, TaxIdVerifier] = field(default_factory=dict)
    rate_providers: dict[str, RateProvider] = field(default_factory=dict)
    event_listeners: dict[str, EventListener] = field(default_factory=dict)

    def _by_kind(self, kind: str) -> dict[str, Any]:
        # Any: each kind's dict holds its own protocol; callers pick the kind by name.
        by_kind: dict[str, dict[str, Any]] = {
            "payment_method": self.payment_methods,
            "tax_calculator": self.tax_calculators,
            "tax_id_verifier": self.tax_id_verifiers,
            "rate_provider": self.rate_providers,
            "event_listener": self.event_listeners,
        }
        return by_kind[kind]

    def select(self, kind: str, code: str | None, setting: str = "the settings") -> Any:
        """The provider of ``kind`` named ``code``, or the only one loaded; ``setting`` names
        where the operator chooses one, for the error."""
        providers = self._by_kind(kind)
        if code is not None:
            if code not in providers:
                raise PluginError(
                    f"no {kind.replace('_', ' ')} named {code!r} is loaded "
                    f"(loaded: {sorted(providers) or 'none'}); change {setting}"
                )
            return providers[code]
        if len(providers) != 1:
            raise PluginError(
                f"{len(providers)} {kind.replace('_', ' ')}s are loaded "
                f"({sorted(providers) or 'none'}); name one in {setting}"
            )
        return next(iter(providers.values()))


def _describe(ep: EntryPoint) -> tuple[str | None, str | None]:
    dist = ep.dist
    return (dist.name, dist.version) if dist is not None else (None, None)


# A plugin to register: its name, how to import it, and its distribution and version if known.
_Candidate = tuple[str, Callable[[], object], str | None, str | None]


def _discovered(group: str) -> list[_Candidate]:
    return [(ep.name, ep.load, *_describe(ep)) for ep in entry_points(group=group)]


def _given(plugins: Iterable[tuple[str, object]], group: str) -> list[_Candidate]:
    # The distribution is only what the `plugins` query reports: take it from the
    # entry point that names the same module, where one is installed.
    declared = {ep.value: ep for ep in entry_points(group=group)}
    given: list[_Candidate] = []
    for name, plugin in plugins:
        if name in {g[0] for g in given}:
            raise PluginError(f"two plugins are named {name!r}")
        ep = declared.get(getattr(plugin, "__name__", ""))
        dist, version = _describe(ep) if ep is not None else (None, None)
        given.append((name, _loaded(plugin), dist, version))
    return given


def _loaded(plugin: object) -> Callable[[], object]:
    return lambda: plugin


def load_plugins(
    disabled: Iterable[str] = (),
    group: str = hookspecs.ENTRY_POINT_GROUP,
    *,
    plugins: Iterable[tuple[str, object]] | None = None,
) -> Registry:
    """Discover, import and register every enabled plugin of the entry-point group.

    :param disabled: plugin (entry-point) names to leave out.
    :param group: the entry-point group to discover.
    :param plugins: ``(name, module or object)`` pairs to register instead of discovering
        any: exactly these, in name order, with the same hook and contract checks, so that
        the result does not depend on what else is installed (the tests use it).
    """
    disabled = set(disabled)
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    infos: dict[str, tuple[str | None, str | None, str]] = {}
    seen: set[str] = set()
    candidates = _discovered(group) if plugins is None else _given(plugins, group)
    for name, load, dist, version in sorted(candidates, key=lambda c: c[0]):
        if name in disabled or name in seen:
            continue
        seen.add(name)
        label = f"plugin {name!r} ({dist or 'unknown distribution'} {version or ''})".replace(" )", ")")
        try:
            plugin = load()
        except Exception as exc:
            raise PluginError(f"{label} failed to import: {type(exc).__name__}: {exc}") from exc
        try:
            pm.register(plugin, name=name)
        except (pluggy.PluginValidationError, ValueError) as exc:
            raise PluginError(f"{label} breaks the hook contract: {exc}") from exc
        infos[name] = (dist, version, getattr(plugin, "__name__", type(plugin).__name__))
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin {pm.get_name(exc.plugin)!r} implements an unknown hook: {exc}") from exc

    registry = Registry()
    provides: dict[str, list[str]] = {name: [] for name in infos}
    for hook_name, (kind, protocol, methods) in _HOOKS.items():
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            register = _registrar(registry, impl.plugin_name, kind, protocol, methods, provides)
            try:
                impl.function(register=register)
            except PluginError:
                raise
            except Exception as exc:
                raise PluginError(
                    f"plugin {impl.plugin_name!r} failed in {hook_name}: {type(exc).__name__}: {exc}"
                ) from exc
    for name, (dist, version, module) in infos.items():
        registry.plugins.append(PluginInfo(name, dist, version, module, tuple(provides[name])))
    return registry


def _registrar(
    registry: Registry,
    plugin: str,
    kind: str,
    protocol: type,
    methods: tuple[str, ...],
    provides: dict[str, list[str]],
) -> Callable[[Any], None]:
    def register(provider: Any) -> None:
        code = getattr(provider, "code", None)
        if not isinstance(code, str) or not code:
            raise PluginError(f"plugin {plugin!r} registered a {kind} without a string `code`")
        providers = registry._by_kind(kind)
        if code in providers:
            raise PluginError(f"plugin {plugin!r} registered {kind} {code!r}, which is already taken")
        missing = [m for m in methods if not hasattr(provider, m)]
        if missing or not isinstance(provider, protocol):
            raise PluginError(
                f"plugin {plugin!r} registered {kind} {code!r} that does not satisfy "
                f"{protocol.__name__}: missing {', '.join(missing) or 'a required attribute'}"
            )
        # protocol is PaymentMethod for this kind, so the isinstance only tells mypy so
        if kind == "payment_method" and isinstance(provider, PaymentMethod):
            _check_payment_method(plugin, code, provider)
        if kind == "tax_id_verifier" and not (
            isinstance(provider.countries, frozenset) and all(isinstance(c, str) for c in provider.countries)
        ):
            raise PluginError(
                f"plugin {plugin!r} registered {kind} {code!r} whose `countries` is not a frozenset of "
                "country codes"
            )
        providers[code] = provider
        provides[plugin].append(f"{kind}:{code}")

    return register


def _check_payment_method(plugin: str, code: str, method: PaymentMethod) -> None:
    """What the protocol cannot check: the values of ``label`` and ``capabilities``, and the
    members a declared capability needs."""
    where = f"plugin {plugin!r} registered payment method {code!r}"
    if not isinstance(method.label, str) or not method.label.strip():
        raise PluginError(f"{where} whose `label` is not a non-empty string")
    capabilities = method.capabilities
    if not isinstance(capabilities, frozenset) or not all(isinstance(c, Capability) for c in capabilities):
        raise PluginError(f"{where} whose `capabilities` is not a frozenset of Capability")
    ways_to_pay = {Capability.PAY_NOW, Capability.CUSTOMER_ACTION, Capability.SETTLE_LATER}
    if not capabilities & ways_to_pay:
        raise PluginError(
            f"{where} that can neither pay now, ask for a customer action nor settle later "
            "(declare at least one of PAY_NOW, CUSTOMER_ACTION, SETTLE_LATER)"
        )
    if Capability.CARDS in capabilities and not isinstance(method, CardMethod):
        raise PluginError(f"{where} with the CARDS capability but without `tokenize`")
    if len(code) > 32:
        raise PluginError(f"{where}: codes are at most 32 characters")
