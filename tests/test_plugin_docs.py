"""docs/plugins.md documents every hook, protocol member and value a plugin uses, as the code has it.

Each documented name has a heading ``### `Name` `` (``### `Protocol.member` `` for a protocol's
member). The entry's first code block is the name's signature, rendered from the code by
:func:`rendered` below: ``charge(self, request: ChargeRequest, ledger: Ledger) -> PaymentResult``
for a method or hook, ``code: str`` for an attribute, a class body for values and enums. The
annotations are shown as written in the source (the modules use ``from __future__ import
annotations``, so ``inspect`` sees them as strings). Hooks and methods also say when they are
called, what they may raise and how they are used (``**Called:**``, ``**Raises:**``,
``**Example:**``); attributes say when the gateway reads them (``**Read:**``, ``**Example:**``).
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import json
import re
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ForwardRef, Protocol

import pytest

import gateway.plugin_api as plugin_api
from billing_gateway_payment_card.processor import CardProcessor
from gateway.plugin_api import (
    CardMethod,
    EventListener,
    Ledger,
    NotifiedPaymentMethod,
    PaymentMethod,
    PaymentResult,
    PaymentStatus,
    RateProvider,
    TaxCalculator,
    hookspecs,
)
from gateway.plugin_api.registry import load_plugins
from gateway.plugin_api.tax_ids import TaxIdVerifier

from helpers import make_distribution

ROOT = Path(__file__).parent.parent
DOC = ROOT / "docs" / "plugins.md"
TUTORIAL = ROOT / "docs" / "tutorial" / "acme-invoice"

PROTOCOLS: tuple[type, ...] = (
    PaymentMethod,
    CardMethod,
    NotifiedPaymentMethod,
    Ledger,
    TaxCalculator,
    TaxIdVerifier,
    RateProvider,
    EventListener,
    CardProcessor,
)
CALLED = ("**Called:**", "**Raises:**", "**Example:**")
READ = ("**Read:**", "**Example:**")


# ------------------------------------------------------------------ what the code says


@dataclass(frozen=True)
class Expected:
    name: str  # the heading: "PaymentMethod.charge", "register_payment_methods", "ChargeRequest"
    signature: str | None  # the entry's first code block; None: only the heading is required
    labels: tuple[str, ...] = ()


class _AsWritten(str):
    """An annotation shown as written in the source, without the quotes ``inspect`` adds to strings."""

    def __repr__(self) -> str:
        return str(self)


def as_written(annotation: Any) -> str:
    """An annotation's source text: a string (``from __future__ import annotations``), a
    ``ForwardRef`` (NamedTuple fields keep them) or, in a module without the import, an object."""
    if isinstance(annotation, str):
        return annotation
    if isinstance(annotation, ForwardRef):
        return annotation.__forward_arg__
    return inspect.formatannotation(annotation)


def _annotation(annotation: Any) -> Any:
    return annotation if annotation is inspect.Parameter.empty else _AsWritten(as_written(annotation))


def signature_of(name: str, function: Any) -> str:
    """``name(params) -> return`` as ``inspect.signature`` renders it, annotations as written."""
    signature = inspect.signature(function)
    signature = signature.replace(
        parameters=[p.replace(annotation=_annotation(p.annotation)) for p in signature.parameters.values()],
        return_annotation=_annotation(signature.return_annotation),
    )
    return f"{name}{signature}"


def _own_annotations(cls: type) -> dict[str, str]:
    return {name: as_written(a) for name, a in vars(cls).get("__annotations__", {}).items()}


def _default(value: Any) -> str:
    return json.dumps(value) if isinstance(value, str) else repr(value)


def _fields(cls: type) -> list[str]:
    """A dataclass's or NamedTuple's fields as a class body declares them."""
    annotations = _own_annotations(cls)
    if dataclasses.is_dataclass(cls):
        lines = []
        for field in dataclasses.fields(cls):
            line = f"    {field.name}: {annotations[field.name]}"
            if field.default is not dataclasses.MISSING:
                line += f" = {_default(field.default)}"
            elif field.default_factory is not dataclasses.MISSING:
                line += f" = field(default_factory={field.default_factory.__name__})"
            lines.append(line)
        return lines
    defaults: dict[str, Any] = cls._field_defaults  # type: ignore[attr-defined]
    return [
        f"    {name}: {annotations[name]}" + (f" = {_default(defaults[name])}" if name in defaults else "")
        for name in cls._fields  # type: ignore[attr-defined]
    ]


def rendered(cls: type) -> str:
    """A value class (enum, dataclass, NamedTuple, exception) as its entry shows it."""
    if issubclass(cls, enum.Enum):
        base = cls.__mro__[1].__name__
        members = [f"    {m.name} = {_default(m.value)}" for m in cls]
        return "\n".join([f"class {cls.__name__}({base}):", *members])
    if issubclass(cls, BaseException):
        lines = [f"class {cls.__name__}({cls.__bases__[0].__name__}):"]
        if "__init__" in vars(cls):
            lines.append("    def " + signature_of("__init__", vars(cls)["__init__"]))
        return "\n".join(lines)
    if dataclasses.is_dataclass(cls) or hasattr(cls, "_fields"):
        return "\n".join([f"class {cls.__name__}:", *_fields(cls)])
    raise TypeError(f"no rendering for {cls!r}")


def protocol_members(protocol: type) -> Iterator[Expected]:
    """The protocol itself and each member it declares (inherited ones are its base's entries)."""
    bases = ", ".join(base.__name__ for base in protocol.__bases__)
    yield Expected(protocol.__name__, f"class {protocol.__name__}({bases}):")
    for name, annotation in _own_annotations(protocol).items():
        if not name.startswith("_"):
            yield Expected(f"{protocol.__name__}.{name}", f"{name}: {annotation}", READ)
    for name, value in vars(protocol).items():
        if not name.startswith("_") and inspect.isfunction(value):
            yield Expected(f"{protocol.__name__}.{name}", signature_of(name, value), CALLED)


def hooks(module: Any) -> Iterator[Expected]:
    for name, function in inspect.getmembers(module, inspect.isfunction):
        if hasattr(function, "billing_gateway_spec"):
            yield Expected(name, signature_of(name, function), CALLED)


def exported_values() -> Iterator[Expected]:
    """Every other name plugins import from ``gateway.plugin_api``."""
    for name in plugin_api.__all__:
        value = getattr(plugin_api, name)
        if getattr(value, "_is_protocol", False):
            continue  # a protocol: see protocol_members
        if isinstance(value, type) and name != "Money":
            yield Expected(name, rendered(value))
        else:
            yield Expected(name, None)  # Money, hookimpl, ENTRY_POINT_GROUP: documented in prose


def expected() -> list[Expected]:
    found = [*hooks(hookspecs), *exported_values()]
    for protocol in PROTOCOLS:
        found.extend(protocol_members(protocol))
    return found


# ------------------------------------------------------------------ what the page says

_HEADING = re.compile(r"^#{2,4} `([A-Za-z_][\w.]*)`\s*$")
_FENCE = re.compile(r"^```(\w*)\s*$")


def entries(markdown: str) -> dict[str, str]:
    """Each ``### `Name` `` heading's text, up to the next heading (code blocks are not headings)."""
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    fenced = False
    for line in markdown.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced and line.startswith("#"):
            match = _HEADING.match(line)
            current = found.setdefault(match.group(1), []) if match else None
            continue
        if current is not None:
            current.append(line)
    return {name: "\n".join(lines) for name, lines in found.items()}


def first_code_block(entry: str) -> str | None:
    match = re.search(r"^```\w*\n(.*?)\n```$", entry, re.MULTILINE | re.DOTALL)
    return match.group(1) if match else None


def problems(markdown: str, wanted: list[Expected]) -> list[str]:
    """What ``markdown`` gets wrong about ``wanted``: one line per missing or stale entry."""
    documented = entries(markdown)
    found = []
    for item in wanted:
        entry = documented.get(item.name)
        if entry is None:
            found.append(f"{item.name}: no entry (a heading ### `{item.name}`)")
            continue
        if item.signature is not None:
            block = first_code_block(entry)
            if block != item.signature:
                found.append(f"{item.name}: documented\n{block}\nbut the code says\n{item.signature}")
        found.extend(f"{item.name}: no {label} line" for label in item.labels if label not in entry)
    names = {item.name for item in wanted}
    found.extend(
        f"{name}: documented, but the code has no such name" for name in documented if name not in names
    )
    return found


# ------------------------------------------------------------------ tests


def test_every_hook_protocol_member_and_value_is_documented_as_the_code_has_it():
    assert problems(DOC.read_text(encoding="utf-8"), expected()) == []


def test_the_checker_covers_every_hook_and_payment_member():
    names = {item.name for item in expected()}
    assert {
        "register_payment_methods",
        "register_tax_calculators",
        "register_rate_providers",
        "register_event_listeners",
    } <= names
    assert {
        f"PaymentMethod.{m}"
        for m in ("code", "label", "capabilities", "charge", "status", "confirm", "cancel", "refund")
    } <= names
    assert {"CardMethod.tokenize", "NotifiedPaymentMethod.parse_notification", "Ledger.debit"} <= names
    charge = next(item for item in expected() if item.name == "PaymentMethod.charge")
    assert charge.signature == "charge(self, request: ChargeRequest, ledger: Ledger) -> PaymentResult"


class _Refunds(Protocol):
    """A protocol as a partner-facing one might grow: ``void`` is new and undocumented."""

    code: str

    def refund(self, reference: str, amount: int) -> PaymentResult: ...

    def void(self, reference: str) -> PaymentResult: ...


_FAKE_DOC = """
## Reference

### `_Refunds`

```python
class _Refunds(Protocol):
```

### `_Refunds.code`

```python
code: str
```

**Read:** at start-up. **Example:** `code = "x"`

### `_Refunds.refund`

```python
refund(self, reference: str, amount: Money) -> PaymentResult
```

**Called:** never. **Example:** none.
"""


def test_an_undocumented_or_changed_member_is_reported():
    assert problems(_FAKE_DOC, list(protocol_members(_Refunds))) == [
        "_Refunds.refund: documented\nrefund(self, reference: str, amount: Money) -> PaymentResult\n"
        "but the code says\nrefund(self, reference: str, amount: int) -> PaymentResult",
        "_Refunds.refund: no **Raises:** line",
        "_Refunds.void: no entry (a heading ### `_Refunds.void`)",
    ]


def test_an_undocumented_hook_is_reported():
    @hookspecs.hookspec
    def register_invoice_numbers(register: Callable[[object], None]) -> None:
        """A hook someone added without documenting it."""

    specs = list(hooks(types.SimpleNamespace(register_invoice_numbers=register_invoice_numbers)))
    assert specs == [
        Expected(
            "register_invoice_numbers",
            "register_invoice_numbers(register: Callable[[object], None]) -> None",
            CALLED,
        )
    ]
    assert problems(_FAKE_DOC, specs) == [
        "register_invoice_numbers: no entry (a heading ### `register_invoice_numbers`)",
        "_Refunds: documented, but the code has no such name",
        "_Refunds.code: documented, but the code has no such name",
        "_Refunds.refund: documented, but the code has no such name",
    ]


def test_an_entry_for_a_name_the_code_no_longer_has_is_reported():
    stale = _FAKE_DOC + "\n### `_Refunds.capture`\n\n```python\ncapture(self) -> None\n```\n"
    assert "_Refunds.capture: documented, but the code has no such name" in problems(
        stale, list(protocol_members(_Refunds))
    )


def test_headings_inside_code_blocks_are_not_entries():
    markdown = "### `a`\n\n```python\n# b\n### `c`\n```\ntext\n### `d`\nmore\n"
    assert entries(markdown) == {"a": "\n```python\n# b\n### `c`\n```\ntext", "d": "more"}


def test_a_value_class_is_rendered_as_its_class_body():
    assert rendered(PaymentStatus).splitlines()[:2] == [
        "class PaymentStatus(StrEnum):",
        '    PENDING = "pending"',
    ]
    assert rendered(plugin_api.Event).splitlines()[-2:] == [
        "    payload: Mapping[str, Any] = field(default_factory=dict)",
        "    version: int = 1",
    ]
    assert rendered(plugin_api.CardError) == (
        "class CardError(ValueError):\n"
        "    def __init__(self, code: CardErrorCode, field: str, message: str) -> None"
    )


# ------------------------------------------------------------------ the tutorial


def _tutorial_files() -> list[Path]:
    return sorted(
        p
        for p in TUTORIAL.rglob("*")
        if p.is_file()
        and p.suffix in (".py", ".toml")
        and "egg-info" not in str(p)
        and ".venv" not in p.parts
    )


def test_the_tutorial_shows_its_package_files_verbatim():
    doc = DOC.read_text(encoding="utf-8")
    files = _tutorial_files()
    assert [p.relative_to(TUTORIAL).as_posix() for p in files] == [
        "acme_invoice/__init__.py",
        "pyproject.toml",
    ]
    for path in files:
        name = path.relative_to(TUTORIAL).as_posix()
        language = "python" if path.suffix == ".py" else "toml"
        shown = f"`{name}`:\n\n```{language}\n{path.read_text(encoding='utf-8')}```\n"
        assert shown in doc, f"docs/plugins.md does not show {name} as it is in {TUTORIAL.relative_to(ROOT)}"


@pytest.fixture
def tutorial_method(tmp_path, monkeypatch):
    """The tutorial's method, loaded at start-up as a partner's package would be."""
    source = (TUTORIAL / "acme_invoice" / "__init__.py").read_text(encoding="utf-8")
    make_distribution(tmp_path, "acme-invoice", "acme_invoice", source, version="0.1.0")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = load_plugins()
    assert "payment_method:invoice" in next(p for p in registry.plugins if p.name == "acme_invoice").provides
    return registry.payment_methods["invoice"]


def test_the_tutorial_method_passes_the_start_up_checks_and_waits_for_the_money(tutorial_method):
    from datetime import UTC, datetime

    from gateway.plugin_api import ChargeRequest, FailureCode, Money

    request = ChargeRequest(
        "0123456789abcdef",
        "ws",
        Money("325.47", "EUR"),
        "Omnichannel",
        "key-1",
        datetime(2026, 12, 7, tzinfo=UTC),
    )
    charged = tutorial_method.charge(request, ledger=None)
    assert charged.status is PaymentStatus.PENDING
    assert charged.reference == "INV-0123456789AB"
    assert dict(charged.instructions or {})["amount"] == "325.47 EUR"
    assert tutorial_method.status(request, charged.reference, None) == charged  # the same on every ask
    cancelled = tutorial_method.cancel(request, charged.reference, None)
    assert (cancelled.status, cancelled.failure) == (PaymentStatus.FAILED, FailureCode.CANCELED)
