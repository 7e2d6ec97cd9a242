"""The plan catalog: loaded from a TOML data file and validated once, at start-up.

A broken catalog stops start-up with a :class:`CatalogError` naming the file,
the plan and the field, so an operator can fix it without reading code.

Prices have versions. A plan's own ``base_price`` and credit ``tiers`` are its first price
version (named by ``price_version``, "1" unless set), in force since always; each
``[[plans.prices]]`` entry adds a later one from its ``effective_from`` date, changing the
base price and any credit tiers it names. A :class:`Plan` value is one plan at one price
version: pricing reads the price from the value it is given, so a subscriber priced with the
version it bought keeps that price whatever the catalog sells today. Whether and when existing
subscribers move to a newer version is the version's ``existing_subscribers`` rule
(:class:`PriceChangeRule`), applied by ``gateway.services.price_changes``.
"""

from __future__ import annotations

import enum
import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from dataclasses import field as dataclass_field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TypeVar, overload

from gateway.core.messaging import Channel
from gateway.core.money import CURRENCY_EXPONENTS, Money

DEFAULT_CATALOG = Path(__file__).parent.parent / "data" / "catalog.toml"
_CODE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")
MAX_FEATURES = 12  # bullets per plan: a Select a Plan card, not a brochure
MAX_FEATURE_LENGTH = 120  # characters: one line on that card
FIRST_PRICE_VERSION = "1"  # the name of a plan's first price version unless the catalog names it
DEFAULT_NOTICE_DAYS = 30
_T = TypeVar("_T")


class CreditKind(enum.Enum):
    EMAIL = "email"
    MESSAGING = "messaging"


class PriceChangeRule(enum.Enum):
    """What a new price version does to the plan's existing subscribers."""

    GRANDFATHER = "grandfather"  # nothing: they keep the version they bought until they change plan
    NOTICE = "notice"  # noticed now, moved at their first renewal once the notice period has run


class CatalogError(ValueError):
    """The catalog file is unreadable or breaks a rule."""


@dataclass(frozen=True, slots=True)
class PriceTier:
    up_to: int | None  # absolute credit count this tier ends at (inclusive); None: no end
    unit_price: Decimal  # per credit, in the catalog currency


@dataclass(frozen=True, slots=True)
class CreditOption:
    """How many credits of one kind a plan grants and how the limit may be set."""

    kind: CreditKind
    included: int  # covered by the plan's base price
    min: int
    max: int
    step: int
    default: int
    tiers: tuple[PriceTier, ...]

    @property
    def adjustable(self) -> bool:
        return self.max > self.min

    def accepts(self, value: int) -> bool:
        return self.min <= value <= self.max and (value - self.min) % self.step == 0


class CreditOptions(Mapping[CreditKind, CreditOption]):
    """A plan's credit options by kind: a read-only, hashable mapping in catalog order.

    Plans are shared by every request and used as cache keys, so they must be
    truly immutable (a dict inside a frozen dataclass is not).
    """

    __slots__ = ("_index", "_items")

    def __init__(
        self,
        items: Mapping[CreditKind, CreditOption] | Iterable[tuple[CreditKind, CreditOption]] = (),
    ) -> None:
        pairs = tuple(items.items()) if isinstance(items, Mapping) else tuple(items)
        self._items: tuple[tuple[CreditKind, CreditOption], ...] = pairs
        self._index: dict[CreditKind, CreditOption] = dict(pairs)

    def __getitem__(self, kind: CreditKind) -> CreditOption:
        return self._index[kind]

    # The dict's own lookups, not Mapping's (which call __getitem__ and catch KeyError):
    # pricing asks a plan for its options on every quote.
    def __contains__(self, kind: object) -> bool:
        return kind in self._index

    @overload
    def get(self, kind: CreditKind, /) -> CreditOption | None: ...
    @overload
    def get(self, kind: CreditKind, /, default: CreditOption | _T) -> CreditOption | _T: ...
    def get(self, kind: CreditKind, /, default: object = None) -> object:
        return self._index.get(kind, default)

    def __iter__(self) -> Iterator[CreditKind]:
        return (kind for kind, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, CreditOptions):
            return self._items == other._items
        return super().__eq__(other)

    def __hash__(self) -> int:
        return hash(self._items)

    def __repr__(self) -> str:
        return f"CreditOptions({self._index!r})"


@dataclass(frozen=True, slots=True)
class Plan:
    code: str
    name: str
    description: str
    tier: int
    channels: tuple[Channel, ...]
    base_price: Money | None  # None: cannot be bought, only quoted by sales
    purchasable: bool
    adjustable: bool
    credits: Mapping[CreditKind, CreditOption]
    features: tuple[str, ...] = ()  # the Select a Plan bullets, in order
    price_version: str = FIRST_PRICE_VERSION  # which of the plan's price versions this value prices
    effective_from: datetime | None = None  # when this version went on sale; None: the first, always
    existing_subscribers: PriceChangeRule = PriceChangeRule.GRANDFATHER  # for a later version

    is_free: bool = dataclass_field(init=False, repr=False, compare=False)  # nothing in it costs anything

    def __post_init__(self) -> None:
        if not isinstance(self.credits, CreditOptions):
            object.__setattr__(self, "credits", CreditOptions(self.credits))
        free = (
            self.base_price is not None
            and not self.base_price.amount
            and not any(tier.unit_price for option in self.credits.values() for tier in option.tiers)
        )
        object.__setattr__(self, "is_free", free)

    def __hash__(self) -> int:
        # Consistent with the generated __eq__ (equal plans share these fields) and
        # cheap, since plans key the pricing caches.
        return hash((self.code, self.tier, self.price_version))

    def option(self, kind: CreditKind) -> CreditOption | None:
        return self.credits.get(kind)

    def default_limit(self, kind: CreditKind) -> int:
        option = self.credits.get(kind)
        return option.default if option else 0


@dataclass(frozen=True, slots=True)
class Catalog:
    currency: str
    plans: tuple[Plan, ...]  # ordered by tier, each at its first price version
    default_plan: Plan
    sales_contact: str
    source: str
    versions: tuple[tuple[Plan, ...], ...] = ()  # per plan of ``plans``: its price versions, oldest first
    notice_days: int = DEFAULT_NOTICE_DAYS  # a NOTICE version moves subscribers no sooner than this

    def __post_init__(self) -> None:
        if not self.versions:
            object.__setattr__(self, "versions", tuple((plan,) for plan in self.plans))

    def plan(self, code: str) -> Plan | None:
        """The plan ``code`` at its first price version: for what does not depend on the price
        (names, channels, limits). Prices come from :meth:`plan_on` or :meth:`plan_version`."""
        for plan in self.plans:
            if plan.code == code:
                return plan
        return None

    def price_versions(self, code: str) -> tuple[Plan, ...]:
        """Every price version of plan ``code``, oldest first (empty for an unknown plan)."""
        for plan, versions in zip(self.plans, self.versions, strict=True):
            if plan.code == code:
                return versions
        return ()

    def plan_on(self, code: str, when: datetime) -> Plan | None:
        """The plan ``code`` at the price version on sale at ``when``: what a new order buys."""
        found = None
        for version in self.price_versions(code):
            if version.effective_from is None or version.effective_from <= when:
                found = version
        return found

    def plan_version(self, code: str, version: str | None) -> Plan | None:
        """The plan ``code`` at price version ``version`` (None: the first, for subscriptions
        recorded before prices had versions); None if the catalog has no such plan or version."""
        versions = self.price_versions(code)
        if version is None:
            return versions[0] if versions else None
        return next((v for v in versions if v.price_version == version), None)

    def plans_on(self, when: datetime) -> tuple[Plan, ...]:
        """Every plan at the price on sale at ``when``, in tier order."""
        return tuple(v for plan in self.plans if (v := self.plan_on(plan.code, when)) is not None)


# ------------------------------------------------------------------ loading


class _Reader:
    """Reads typed fields and raises errors that name the file, plan and field."""

    def __init__(self, source: str, where: str, table: Mapping[str, Any]) -> None:
        self.source, self.where, self.table = source, where, table

    def fail(self, field: str, message: str) -> CatalogError:
        return CatalogError(f"{self.source}: {self.where}, field {field!r}: {message}")

    def get(self, field: str, kind: type, default: Any = ..., *, optional: bool = False) -> Any:
        if field not in self.table:
            if default is not ...:
                return default
            if optional:
                return None
            raise self.fail(field, "is required")
        value = self.table[field]
        if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise self.fail(field, f"must be an integer, not {value!r}")
        if kind is not int and not isinstance(value, kind):
            raise self.fail(field, f"must be a {kind.__name__}, not {value!r}")
        return value

    def decimal(self, field: str, *, optional: bool = False) -> Decimal | None:
        if isinstance(self.table.get(field), float):
            raise self.fail(field, 'write amounts as strings ("15.00"), floats are not exact')
        raw = self.get(field, str, optional=optional)
        if raw is None:
            return None
        try:
            value = Decimal(raw)
        except InvalidOperation:
            raise self.fail(field, f"{raw!r} is not a decimal number") from None
        if not value.is_finite() or value < 0:
            raise self.fail(field, f"must be a non-negative amount, not {raw!r}")
        return value

    def unknown_fields(self, allowed: set[str]) -> None:
        extra = sorted(set(self.table) - allowed)
        if extra:
            raise self.fail(extra[0], "is not a known field")


def load_catalog(path: Path | str | None = None) -> Catalog:
    """Load and validate the catalog at ``path`` (the bundled one by default)."""
    path = Path(path) if path is not None else DEFAULT_CATALOG
    source = str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CatalogError(f"{source}: cannot read the catalog: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{source}: not valid TOML: {exc}") from None
    return parse_catalog(data, source)


def parse_catalog(data: Mapping[str, Any], source: str = "<catalog>") -> Catalog:
    top = _Reader(source, "catalog", data)
    top.unknown_fields({"currency", "default_plan", "sales_contact", "plans", "price_changes"})
    rule, notice_days = _parse_price_changes(top)
    currency = top.get("currency", str)
    if currency not in CURRENCY_EXPONENTS:
        raise top.fail("currency", f"unknown currency {currency!r}")
    sales_contact = top.get("sales_contact", str)
    raw_plans = top.get("plans", list)
    if not raw_plans:
        raise top.fail("plans", "lists no plans")
    plans: list[tuple[Plan, ...]] = []
    for index, raw in enumerate(raw_plans):
        if not isinstance(raw, dict):
            raise top.fail("plans", f"entry {index + 1} is not a table")
        plans.append(_parse_plan(source, index, raw, currency, rule))
    codes = [p[0].code for p in plans]
    tiers = [p[0].tier for p in plans]
    for plan, *_ in plans:
        where = _Reader(source, f"plan {plan.code!r}", {})
        if codes.count(plan.code) > 1:
            raise where.fail("code", "is used by more than one plan")
        if tiers.count(plan.tier) > 1:
            raise where.fail("tier", f"{plan.tier} is used by more than one plan")
    plans.sort(key=lambda p: p[0].tier)
    default_code = top.get("default_plan", str)
    default = next((p[0] for p in plans if p[0].code == default_code), None)
    if default is None:
        raise top.fail("default_plan", f"names no plan in the catalog: {default_code!r}")
    if any(not version.is_free for p in plans if p[0].code == default_code for version in p):
        raise top.fail("default_plan", f"plan {default_code!r} must be free: new workspaces start on it")
    return Catalog(
        currency,
        tuple(p[0] for p in plans),
        default,
        sales_contact,
        source,
        tuple(plans),
        notice_days,
    )


def _parse_price_changes(top: _Reader) -> tuple[PriceChangeRule, int]:
    """The catalog-wide ``[price_changes]`` table: the default rule for new price versions
    and the notice period of the NOTICE rule."""
    table = top.get("price_changes", dict, {})
    r = _Reader(top.source, "catalog", {f"price_changes.{k}": v for k, v in table.items()})
    r.unknown_fields({"price_changes.existing_subscribers", "price_changes.notice_days"})
    rule = _rule(r, "price_changes.existing_subscribers", PriceChangeRule.GRANDFATHER)
    notice_days = r.get("price_changes.notice_days", int, DEFAULT_NOTICE_DAYS)
    if not 0 <= notice_days <= 366:
        raise r.fail("price_changes.notice_days", f"{notice_days} must be between 0 and 366 days")
    return rule, notice_days


def _rule(r: _Reader, field: str, default: PriceChangeRule) -> PriceChangeRule:
    raw = r.get(field, str, default.value)
    try:
        return PriceChangeRule(raw)
    except ValueError:
        raise r.fail(field, f"{raw!r}: use one of {[rule.value for rule in PriceChangeRule]}") from None


def _parse_plan(
    source: str, index: int, raw: Mapping[str, Any], currency: str, rule: PriceChangeRule
) -> tuple[Plan, ...]:
    """The plan, once per price version, oldest first."""
    code = raw.get("code")
    where = f"plan {code!r}" if isinstance(code, str) else f"plan #{index + 1}"
    r = _Reader(source, where, raw)
    r.unknown_fields(
        {
            "code",
            "name",
            "tier",
            "description",
            "channels",
            "base_price",
            "purchasable",
            "adjustable",
            "credits",
            "features",
            "price_version",
            "prices",
        }
    )
    code = r.get("code", str)
    if not _CODE.match(code):
        raise r.fail("code", f"{code!r} must be a short lower-case identifier")
    name = r.get("name", str)
    tier = r.get("tier", int)
    description = r.get("description", str, "")
    features = _parse_features(r)
    channel_names = r.get("channels", list)
    try:
        channels = tuple(Channel(c) for c in channel_names)
    except ValueError:
        raise r.fail(
            "channels", f"{channel_names!r}: each must be one of {[c.value for c in Channel]}"
        ) from None
    purchasable = r.get("purchasable", bool, True)
    adjustable = r.get("adjustable", bool)
    base_price = _base_price(r, "base_price", currency, optional=not purchasable)
    first_version = r.get("price_version", str, FIRST_PRICE_VERSION)
    if not _VERSION.match(first_version):
        raise r.fail("price_version", f"{first_version!r} must be a short name (letters, digits, . _ -)")
    raw_credits = r.get("credits", dict, {})
    credits: dict[CreditKind, CreditOption] = {}
    for key, table in raw_credits.items():
        try:
            kind = CreditKind(key)
        except ValueError:
            raise r.fail(
                f"credits.{key}", f"unknown credit kind; use one of {[k.value for k in CreditKind]}"
            ) from None
        if not isinstance(table, dict):
            raise r.fail(f"credits.{key}", "must be a table")
        credits[kind] = _parse_credits(source, where, kind, table, adjustable)
    if CreditKind.EMAIL in credits and Channel.EMAIL not in channels:
        raise r.fail("credits.email", "the plan has no email channel")
    if CreditKind.MESSAGING in credits and not {Channel.SMS, Channel.WHATSAPP} & set(channels):
        raise r.fail("credits.messaging", "the plan has no SMS or WhatsApp channel")
    if adjustable and not any(o.adjustable for o in credits.values()):
        raise r.fail("adjustable", "is true but no credit limit has a range (min < max)")
    plan = Plan(
        code,
        name,
        description,
        tier,
        channels,
        base_price,
        purchasable,
        adjustable,
        CreditOptions(credits),
        features,
        first_version,
    )
    return (plan, *_parse_price_versions(r, plan, currency, rule))


def _base_price(r: _Reader, field: str, currency: str, *, optional: bool = False) -> Money | None:
    price = r.decimal(field, optional=optional)
    if price is None:
        return None
    base_price = Money(price, currency)
    if not base_price.is_rounded:
        raise r.fail(field, f"{price} has more decimals than {currency} allows")
    # "15" and "15.00" are the same price; store it with the currency's decimals so it reads alike.
    return base_price.rounded()


def _parse_price_versions(r: _Reader, first: Plan, currency: str, rule: PriceChangeRule) -> list[Plan]:
    """The plan's later price versions (``[[plans.prices]]``), each a copy of the version
    before it with the base price and the credit tiers it names."""
    raw_versions = r.get("prices", list, [])
    if raw_versions and not first.purchasable:
        raise r.fail("prices", "the plan is sold by quote and has no prices to version")
    versions = [first]
    for position, raw in enumerate(raw_versions, start=1):
        field = f"prices[{position}]"
        if not isinstance(raw, dict):
            raise r.fail(field, "must be a table")
        v = _Reader(r.source, r.where, {f"{field}.{k}": v for k, v in raw.items()})
        v.unknown_fields(
            {
                f"{field}.{k}"
                for k in ("version", "effective_from", "base_price", "tiers", "existing_subscribers")
            }
        )
        name = v.get(f"{field}.version", str)
        if not _VERSION.match(name):
            raise v.fail(f"{field}.version", f"{name!r} must be a short name (letters, digits, . _ -)")
        if any(p.price_version == name for p in versions):
            raise v.fail(f"{field}.version", f"{name!r} names an earlier price version of the plan")
        effective_from = _effective_from(v, f"{field}.effective_from")
        previous = versions[-1]
        if previous.effective_from is not None and effective_from <= previous.effective_from:
            raise v.fail(
                f"{field}.effective_from",
                f"{effective_from.date()} must be after the previous version's "
                f"{previous.effective_from.date()}: list versions oldest first",
            )
        base_price = _base_price(v, f"{field}.base_price", currency, optional=True) or previous.base_price
        tiers = v.get(f"{field}.tiers", dict, {})
        credits = dict(previous.credits)
        for key, raw_tiers in tiers.items():
            try:
                kind = CreditKind(key)
            except ValueError:
                raise v.fail(f"{field}.tiers.{key}", "unknown credit kind") from None
            option = previous.credits.get(kind)
            if option is None:
                raise v.fail(f"{field}.tiers.{key}", "the plan has no such credits")
            if not isinstance(raw_tiers, list):
                raise v.fail(f"{field}.tiers.{key}", "must be a list of tiers")
            credits[kind] = replace(
                option, tiers=_parse_tiers(v, f"{field}.tiers.{key}", raw_tiers, option.included, option.max)
            )
        if base_price == previous.base_price and credits == dict(previous.credits):
            raise v.fail(field, "changes no price: give a base_price or tiers that differ")
        versions.append(
            replace(
                previous,
                base_price=base_price,
                credits=CreditOptions(credits),
                price_version=name,
                effective_from=effective_from,
                existing_subscribers=_rule(v, f"{field}.existing_subscribers", rule),
            )
        )
    return versions[1:]


def _effective_from(r: _Reader, field: str) -> datetime:
    """A TOML date (midnight UTC) or a date-time with its offset."""
    raw = r.table.get(field)
    if isinstance(raw, datetime):
        if raw.tzinfo is None:
            raise r.fail(field, "give a date (2027-01-01) or a date-time with its offset")
        return raw.astimezone(UTC)
    if isinstance(raw, date):
        return datetime(raw.year, raw.month, raw.day, tzinfo=UTC)
    if raw is None:
        raise r.fail(field, "is required")
    raise r.fail(field, f"must be a TOML date such as 2027-01-01, not {raw!r}")


def _parse_features(r: _Reader) -> tuple[str, ...]:
    """The plan's bullets: distinct one-line texts, a few of them, each short (optional)."""
    raw = r.get("features", list, [])
    if len(raw) > MAX_FEATURES:
        raise r.fail("features", f"lists {len(raw)} features; at most {MAX_FEATURES}")
    features: list[str] = []
    for position, value in enumerate(raw, start=1):
        field = f"features[{position}]"
        if not isinstance(value, str):
            raise r.fail(field, f"must be a str, not {value!r}")
        text = value.strip()
        if not text:
            raise r.fail(field, "is empty")
        if text != value or any(not ch.isprintable() for ch in text):
            raise r.fail(field, "must be one line without leading or trailing spaces or control characters")
        if len(text) > MAX_FEATURE_LENGTH:
            raise r.fail(field, f"has {len(text)} characters; at most {MAX_FEATURE_LENGTH}")
        if text in features:
            raise r.fail(field, f"repeats feature {features.index(text) + 1}")
        features.append(text)
    return tuple(features)


def _parse_credits(
    source: str, plan_where: str, kind: CreditKind, table: Mapping[str, Any], adjustable: bool
) -> CreditOption:
    prefix = f"credits.{kind.value}"
    r = _Reader(source, plan_where, {f"{prefix}.{k}": v for k, v in table.items()})
    r.unknown_fields({f"{prefix}.{k}" for k in ("included", "min", "max", "step", "default", "tiers")})
    included = r.get(f"{prefix}.included", int)
    low = r.get(f"{prefix}.min", int, included)
    high = r.get(f"{prefix}.max", int, low)
    step = r.get(f"{prefix}.step", int, 1)
    default = r.get(f"{prefix}.default", int, low)
    if included < 0:
        raise r.fail(f"{prefix}.included", "must not be negative")
    if low < included:
        raise r.fail(f"{prefix}.min", f"{low} is below the {included} included credits")
    if high < low:
        raise r.fail(f"{prefix}.max", f"{high} is below min {low}")
    if step < 1:
        raise r.fail(f"{prefix}.step", "must be at least 1")
    if (high - low) % step:
        raise r.fail(f"{prefix}.step", f"{step} does not divide max - min ({high - low})")
    if not (low <= default <= high) or (default - low) % step:
        raise r.fail(f"{prefix}.default", f"{default} is not a slider position between {low} and {high}")
    if not adjustable and high != low:
        raise r.fail(f"{prefix}.max", "the plan is not adjustable, so min and max must be equal")
    tiers = _parse_tiers(r, f"{prefix}.tiers", r.get(f"{prefix}.tiers", list, []), included, high)
    return CreditOption(kind, included, low, high, step, default, tiers)


def _parse_tiers(
    r: _Reader, prefix: str, raw_tiers: list[Any], included: int, high: int
) -> tuple[PriceTier, ...]:
    """Graduated tiers above ``included`` that price every credit up to ``high``."""
    tiers: list[PriceTier] = []
    previous = included
    for position, raw in enumerate(raw_tiers, start=1):
        field = f"{prefix}[{position}]"
        if not isinstance(raw, dict):
            raise r.fail(field, "must be a table")
        t = _Reader(r.source, r.where, {f"{field}.{k}": v for k, v in raw.items()})
        t.unknown_fields({f"{field}.up_to", f"{field}.unit_price"})
        up_to = t.get(f"{field}.up_to", int, optional=True)
        unit_price = t.decimal(f"{field}.unit_price")
        assert unit_price is not None
        if up_to is not None and up_to <= previous:
            raise t.fail(f"{field}.up_to", f"{up_to} must be above {previous}")
        if tiers and tiers[-1].up_to is None:
            raise t.fail(field, "follows a tier without an end")
        tiers.append(PriceTier(up_to, unit_price))
        previous = up_to if up_to is not None else previous
    if high > included:
        if not tiers:
            raise r.fail(prefix, f"credits above the {included} included need a price tier")
        last = tiers[-1].up_to
        if last is not None and last < high:
            raise r.fail(prefix, f"the last tier ends at {last}, below max {high}")
    return tuple(tiers)
