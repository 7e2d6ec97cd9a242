"""The gateway: everything loaded once at start-up, shared by every request."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import strawberry
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker

from gateway.api import types as t
from gateway.api.schema import EMAIL_TYPE, build_schema
from gateway.core.catalog import Catalog, CreditKind, load_catalog
from gateway.core.messaging import Channel
from gateway.core.money import Money
from gateway.core.tax import CustomerKind, TaxCalculator, TaxCustomer, TaxRequest
from gateway.events.notify import Notifier
from gateway.events.webhooks import attach_event_listeners
from gateway.plugin_api.messaging import RateProvider
from gateway.plugin_api.registry import Registry, load_plugins
from gateway.server.settings import Settings, SettingsError
from gateway.storage.db import create_db_engine, migrate, session_factory, write_session_factory

COUNTRIES = Path(__file__).parent.parent / "data" / "countries.tsv"


def utc_now() -> datetime:
    return datetime.now(UTC)


def _load_countries() -> frozenset[str]:
    lines = COUNTRIES.read_text(encoding="utf-8").splitlines()
    return frozenset(line.split("\t", 1)[0] for line in lines if line and not line.startswith("#"))


@dataclass
class Gateway:
    settings: Settings
    catalog: Catalog
    registry: Registry
    tax: TaxCalculator
    rates: RateProvider
    engine: Engine
    sessions: sessionmaker  # reads
    write_sessions: sessionmaker  # money and subscription changes: take locks when they begin
    schema: strawberry.Schema
    clock: Callable[[], datetime] = utc_now
    countries: frozenset[str] = field(default_factory=_load_countries)
    # Derived once from the rate provider: the calculator's lookups are dict hits.
    message_types: list[t.MessageType] = field(default_factory=list)
    message_types_by_code: dict[str, t.MessageType] = field(default_factory=dict)
    destinations_by_country: dict[str, t.Destination] = field(default_factory=dict)
    # Wakes subscribers (and other outbox readers) when events commit; run by the server's lifespan.
    notifier: Notifier = field(init=False)

    def __post_init__(self) -> None:
        self.notifier = Notifier(self.settings.database_url)
        attach_event_listeners(self)  # emit queues a delivery per registered event listener
        self.message_types = [EMAIL_TYPE] + [
            t.MessageType(
                code=m.code,
                name=m.name,
                channel=m.channel,
                credit_kind=CreditKind.EMAIL if m.channel is Channel.EMAIL else CreditKind.MESSAGING,
                segmented=m.segmented,
            )
            for m in self.rates.message_types()
        ]
        self.message_types_by_code = {m.code: m for m in self.message_types}
        self.destinations_by_country = {
            d.country: t.Destination(country=d.country, name=d.name) for d in self.rates.destinations()
        }

    def close(self) -> None:
        self.engine.dispose()


def _check_seller_country(tax: TaxCalculator, seller_country: str, currency: str, now: datetime) -> None:
    """Ask the tax calculator once, at start-up, whether it can tax for this seller, so a
    wrong setting stops the gateway instead of failing every quote."""
    customer = TaxCustomer(CustomerKind.PERSON, seller_country)
    try:
        tax.calculate(TaxRequest(seller_country, customer, Money.zero(currency).rounded(), now.date()))
    except Exception as error:  # a plugin's own error type: report it with the setting to change
        raise SettingsError(
            f"the tax calculator {tax.code!r} cannot tax for seller country "
            f"{seller_country!r} (BILLING_GATEWAY_SELLER_COUNTRY): {error}"
        ) from error


def build_gateway(
    settings: Settings | None = None,
    *,
    clock: Callable[[], datetime] = utc_now,
    run_migrations: bool = True,
    catalog: Catalog | None = None,
    registry: Registry | None = None,
    schema: strawberry.Schema | None = None,
    engine: Engine | None = None,
) -> Gateway:
    """Load the catalog and plugins, connect the database and build the schema.

    Raises CatalogError, PluginError or SettingsError with a message meant for
    the operator when something is wrong; nothing is half-started.

    ``catalog``, ``registry``, ``schema`` and ``engine`` may be passed in already built
    (from these settings), to be used as they are: the tests build them once per run.
    """
    settings = settings or Settings.from_env()
    catalog = catalog if catalog is not None else load_catalog(settings.catalog_path)
    registry = registry if registry is not None else load_plugins(settings.disabled_plugins)
    tax = registry.select("tax_calculator", settings.tax_calculator)
    _check_seller_country(tax, settings.seller_country, catalog.currency, clock())
    rates = registry.select("rate_provider", settings.rate_provider)
    own_engine = engine is None
    engine = engine if engine is not None else create_db_engine(settings.database_url)
    if run_migrations:
        try:
            migrate(engine)
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
        schema=schema if schema is not None else build_schema(),
        clock=clock,
    )
