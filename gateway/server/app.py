"""The gateway: everything loaded once at start-up, shared by every request."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from gateway.core.catalog import Catalog, load_catalog
from gateway.core.quote_tokens import QuoteKeys, SigningKey
from gateway.core.seller import Seller
from gateway.core.tax import TaxCalculator
from gateway.events.egress import EgressPolicy
from gateway.events.notify import Notifier
from gateway.events.routing import attach_event_listeners
from gateway.plugin_api.events import EventListener
from gateway.plugin_api.messaging import RateProvider
from gateway.plugin_api.payments import PaymentMethod
from gateway.plugin_api.registry import PluginInfo, Registry, load_plugins
from gateway.plugin_api.tax_ids import TaxIdVerifier
from gateway.server.settings import PREFIX, Settings
from gateway.server.taxes import choose_tax_calculator
from gateway.services.key_cache import KeyCache
from gateway.services.messages import MessageCatalog
from gateway.storage.db import (
    create_db_engine,
    migrate,
    session_factory,
    stored_key,
    write_session_factory,
)
from gateway.storage.encryption import keyring
from gateway.storage.rate_limits import RateLimiter, store_for
from gateway.storage.secrets import shared_secret
from gateway.storage.workspace_cache import WorkspaceCache

logger = logging.getLogger("gateway.encryption")

COUNTRIES = Path(__file__).parent.parent / "data" / "countries.tsv"


def utc_now() -> datetime:
    return datetime.now(UTC)


def _load_countries() -> frozenset[str]:
    lines = COUNTRIES.read_text(encoding="utf-8").splitlines()
    return frozenset(line.split("\t", 1)[0] for line in lines if line and not line.startswith("#"))


@dataclass
class Gateway:
    """The composition root: satisfies the use cases' :class:`~gateway.services.deps.Deps`
    and the event delivery's ``DeliveryDeps``."""

    settings: Settings
    catalog: Catalog
    registry: Registry
    tax: TaxCalculator
    rates: RateProvider
    engine: Engine
    sessions: sessionmaker[Session]  # reads
    write_sessions: sessionmaker[Session]  # money and subscription changes: take locks when they begin
    quote_keys: QuoteKeys  # signs and verifies quote tokens
    clock: Callable[[], datetime] = utc_now
    countries: frozenset[str] = field(default_factory=_load_countries)
    # Derived once from the rate provider: the calculator's lookups are dict hits.
    messages: MessageCatalog = field(init=False)
    # Wakes subscribers (and other outbox readers) when events commit; run by the server's lifespan.
    notifier: Notifier = field(init=False)
    # Where webhooks may go (the settings' allow-list); a test may give it another resolver.
    egress: EgressPolicy = field(init=False)
    # Requests per key and per address (the settings' rules, counted where the settings say).
    rate_limiter: RateLimiter = field(init=False)
    _card_fingerprint_key: bytes | None = field(default=None, init=False, repr=False)
    # Who each bearer token speaks for, without a read per request (revocations clear it).
    callers: KeyCache = field(init=False)
    # The rows a quote prices against, between writes (gateway.storage.workspace_cache).
    workspace_cache: WorkspaceCache = field(init=False)

    def __post_init__(self) -> None:
        self.notifier = Notifier(self.settings.database_url)
        self.egress = self.settings.egress
        self.rate_limiter = RateLimiter(
            self.settings.rate_limits,
            store_for(self.settings.rate_limit_store, self.engine),
            clock=lambda: self.clock().timestamp(),  # the gateway's one clock (a test's, frozen)
        )
        attach_event_listeners(self)  # emit queues a delivery per registered event listener
        self.messages = MessageCatalog.of(self.rates)
        self.callers = KeyCache(self.sessions)
        self.workspace_cache = WorkspaceCache(self.engine, listening=lambda: self.notifier.listening)

    @property
    def card_fingerprint_key(self) -> bytes:
        """Keys the card fingerprints stored and shown: made once, in the database, by the first
        gateway that saw a new card (read on first use, so start-up touches nothing for it)."""
        if self._card_fingerprint_key is None:
            self._card_fingerprint_key = shared_secret(self.engine, CARD_FINGERPRINT_KEY)
        return self._card_fingerprint_key

    @property
    def payment_methods(self) -> Mapping[str, PaymentMethod]:
        return self.registry.payment_methods

    @property
    def event_listeners(self) -> Mapping[str, EventListener]:
        return self.registry.event_listeners

    @property
    def tax_id_verifiers(self) -> Mapping[str, TaxIdVerifier]:
        return self.registry.tax_id_verifiers

    @property
    def plugins(self) -> Sequence[PluginInfo]:
        return self.registry.plugins

    @property
    def seller_country(self) -> str:
        return self.settings.seller_country

    @property
    def seller(self) -> Seller:
        return self.settings.seller

    @property
    def top_up_limits(self) -> tuple[Decimal, Decimal]:
        return self.settings.top_up_min, self.settings.top_up_max

    @property
    def webhook_timeout(self) -> float:
        return self.settings.webhook_timeout

    @property
    def webhook_secret_grace(self) -> timedelta:
        return timedelta(seconds=self.settings.webhook_secret_grace)

    @property
    def payment_action_timeout(self) -> timedelta:
        return timedelta(seconds=self.settings.payment_action_timeout)

    @property
    def dunning_schedule(self) -> tuple[timedelta, ...]:
        return tuple(timedelta(days=days) for days in self.settings.dunning_schedule)

    @property
    def dunning_grace(self) -> timedelta:
        return timedelta(days=self.settings.dunning_grace_days)

    @property
    def payment_settle_timeout(self) -> timedelta:
        return timedelta(seconds=self.settings.payment_settle_timeout)

    def close(self) -> None:
        self.workspace_cache.close()
        self.engine.dispose()


def configure_encryption(settings: Settings, engine: Engine, now: datetime) -> None:
    """The keys that encrypt secrets at rest: the configured ones (and the database's own key, if
    one was made before, to read what it encrypted until ``webhooks reencrypt`` has run), or the
    database's own key, made now if need be, with a warning."""
    keys = list(settings.encryption_keys)
    stored = stored_key(engine, now, create=not keys)
    if not keys:
        logger.warning(
            "%sENCRYPTION_KEYS is not set: webhook signing secrets are encrypted with a key kept in "
            "the database itself, which does not protect them from a copy of the database. Set it to "
            "a Fernet key (`billing-gateway webhooks new-key` prints one) and run "
            "`billing-gateway webhooks reencrypt`.",
            PREFIX,
        )
    keyring.configure(keys + ([stored] if stored is not None else []))


QUOTE_KEY = "quote_signing_key"
CARD_FINGERPRINT_KEY = "card_fingerprint_key"  # also named by migration 0016, which re-keyed older cards


def _quote_keys(settings: Settings, engine: Engine) -> QuoteKeys:
    """The setting's key, else the database's (made by the first gateway that needed it);
    the previous key, if set, still verifies the tokens it signed."""
    if settings.secret_key is not None:
        current = SigningKey(settings.secret_key.encode("utf-8"))
    else:
        current = SigningKey(shared_secret(engine, QUOTE_KEY))
    previous = settings.secret_key_previous
    return QuoteKeys(current, (SigningKey(previous.encode("utf-8")),) if previous is not None else ())


def build_gateway(
    settings: Settings | None = None,
    *,
    clock: Callable[[], datetime] = utc_now,
    run_migrations: bool = True,
    catalog: Catalog | None = None,
    registry: Registry | None = None,
    engine: Engine | None = None,
) -> Gateway:
    """Load the catalog and plugins and connect the database.

    Raises CatalogError, PluginError or SettingsError with a message meant for
    the operator when something is wrong; nothing is half-started.

    ``catalog``, ``registry`` and ``engine`` may be passed in already built
    (from these settings), to be used as they are: the tests build them once per run.
    """
    settings = settings or Settings.from_env()
    catalog = catalog if catalog is not None else load_catalog(settings.catalog_path)
    registry = registry if registry is not None else load_plugins(settings.disabled_plugins)
    countries = _load_countries()
    tax = choose_tax_calculator(settings, registry.tax_calculators, countries, catalog.currency, clock())
    rates = registry.select("rate_provider", settings.rate_provider, f"{PREFIX}RATE_PROVIDER")
    own_engine = engine is None
    engine = (
        engine
        if engine is not None
        else create_db_engine(
            settings.database_url, pool_size=settings.db_pool_size, max_overflow=settings.db_max_overflow
        )
    )
    try:
        if run_migrations:
            migrate(engine)
        configure_encryption(settings, engine, clock())
        quote_keys = _quote_keys(settings, engine)
    except BaseException:
        if own_engine:
            engine.dispose()
        raise
    return Gateway(
        settings=settings,
        catalog=catalog,
        registry=registry,
        tax=tax,
        rates=rates,
        engine=engine,
        sessions=session_factory(engine),
        write_sessions=write_session_factory(engine),
        quote_keys=quote_keys,
        clock=clock,
        countries=countries,
    )
