"""What a use case needs from the running gateway, and nothing more.

Use cases take a :class:`Deps`: the catalog, the providers that plugins registered,
the session factories and the clock, and the few settings that change what they
decide. The server's ``Gateway`` satisfies it; tests may pass anything that does.
Nothing here imports the server, GraphQL or HTTP.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from gateway.core.catalog import Catalog
from gateway.core.quote_tokens import QuoteKeys
from gateway.core.seller import Seller
from gateway.core.tax import TaxCalculator
from gateway.events.egress import EgressPolicy
from gateway.plugin_api.events import EventListener
from gateway.plugin_api.messaging import RateProvider
from gateway.plugin_api.payments import PaymentMethod
from gateway.plugin_api.tax_ids import TaxIdVerifier
from gateway.services.key_cache import KeyCache
from gateway.services.messages import MessageCatalog
from gateway.storage.workspace_cache import WorkspaceCache

# The session type the API layer may hold (to pass to read functions) without importing SQLAlchemy.
ReadSession = Session


class Deps(Protocol):
    @property
    def catalog(self) -> Catalog: ...

    @property
    def tax(self) -> TaxCalculator: ...

    @property
    def tax_id_verifiers(self) -> Mapping[str, TaxIdVerifier]:
        """Registers of tax IDs by code (VIES, ...): network I/O, never inside a transaction."""
        ...

    @property
    def rates(self) -> RateProvider: ...

    @property
    def messages(self) -> MessageCatalog:
        """The message types and destinations the rate provider prices, indexed once."""
        ...

    @property
    def payment_methods(self) -> Mapping[str, PaymentMethod]: ...

    @property
    def event_listeners(self) -> Mapping[str, EventListener]: ...

    @property
    def sessions(self) -> sessionmaker[Session]:
        """Read sessions (and writes that need no lock)."""
        ...

    @property
    def write_sessions(self) -> sessionmaker[Session]:
        """Sessions for money and subscription changes: they take the write lock when they begin."""
        ...

    @property
    def clock(self) -> Callable[[], datetime]: ...

    @property
    def callers(self) -> KeyCache:
        """Who a bearer token speaks for (gateway.services.key_cache)."""
        ...

    @property
    def workspace_cache(self) -> WorkspaceCache:
        """A workspace's rows that quotes price against, between writes (gateway.storage.workspace_cache)."""
        ...

    @property
    def card_fingerprint_key(self) -> bytes:
        """This installation's key for card fingerprints (gateway.services.cards.keyed_fingerprint)."""
        ...

    @property
    def quote_keys(self) -> QuoteKeys:
        """Signs quote tokens and verifies them at checkout (the current key and older ones)."""
        ...

    @property
    def countries(self) -> frozenset[str]:
        """ISO 3166-1 alpha-2 codes billing details may name."""
        ...

    @property
    def seller_country(self) -> str:
        """Where the seller is established, for tax."""
        ...

    @property
    def seller(self) -> Seller:
        """Who issues the invoices (configured, or the demo placeholder) and in which number
        series; each invoice keeps a copy of the identity as it was on its date."""
        ...

    @property
    def top_up_limits(self) -> tuple[Decimal, Decimal]:
        """The smallest and largest top-up, in the catalog currency."""
        ...

    @property
    def webhook_timeout(self) -> float:
        """Seconds for one webhook request."""
        ...

    @property
    def webhook_secret_grace(self) -> timedelta:
        """How long a rotated-out webhook secret still signs, beside the new one."""
        ...

    @property
    def egress(self) -> EgressPolicy:
        """Which hosts and addresses webhooks may reach (checked at registration and each send)."""
        ...

    @property
    def payment_action_timeout(self) -> timedelta:
        """How long a payment waits for the customer's action (3-D Secure) before it expires."""
        ...

    @property
    def dunning_schedule(self) -> tuple[timedelta, ...]:
        """When a failed renewal is retried, counted from its first failure (e.g. 1, 3, 5, 7 days)."""
        ...

    @property
    def dunning_grace(self) -> timedelta:
        """How long a workspace may stay past due before it is suspended."""
        ...

    @property
    def payment_settle_timeout(self) -> timedelta:
        """The longest a payment may wait for its money (a bank transfer) before it expires."""
        ...
