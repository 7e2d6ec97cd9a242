"""The plugin API: everything a payment, tax, rate or event-listener plugin needs, in one import.

A plugin is a module exposed through the ``billing_gateway`` entry-point group whose
``register_*`` hooks hand provider objects to the gateway once, at start-up::

    from gateway.plugin_api import hookimpl, TaxCalculator, TaxLine, TaxRequest

    @hookimpl
    def register_tax_calculators(register):
        register(MyCalculator())

Only frozen values, enums and protocols cross this boundary; nothing here touches the
database, GraphQL or the clock. The hook specifications are in :mod:`.hookspecs`.
"""

from gateway.core.messaging import Channel
from gateway.core.money import Money
from gateway.core.tax import (
    CustomerKind,
    InvalidTaxId,
    TaxCalculator,
    TaxCustomer,
    TaxLine,
    TaxRequest,
    TaxTreatment,
)
from gateway.core.tax_routing import EU_MEMBER_STATES, REGIONS
from gateway.plugin_api.events import Event, EventListener
from gateway.plugin_api.hookspecs import ENTRY_POINT_GROUP, hookimpl
from gateway.plugin_api.messaging import Destination, MessageType, RateProvider
from gateway.plugin_api.payments import (
    HARD_DECLINES,
    Capability,
    CardDetails,
    CardError,
    CardErrorCode,
    CardMethod,
    ChargeRequest,
    FailureCode,
    InvalidNotification,
    Ledger,
    LedgerEntryKind,
    NotifiedPaymentMethod,
    PaymentMethod,
    PaymentResult,
    PaymentStatus,
    StoredCard,
)
from gateway.plugin_api.tax_ids import TaxIdCheck, TaxIdStatus, TaxIdVerifier

__all__ = [
    "ENTRY_POINT_GROUP",
    "EU_MEMBER_STATES",
    "HARD_DECLINES",
    "REGIONS",
    "Capability",
    "CardDetails",
    "CardError",
    "CardErrorCode",
    "CardMethod",
    "Channel",
    "ChargeRequest",
    "CustomerKind",
    "Destination",
    "Event",
    "EventListener",
    "FailureCode",
    "InvalidNotification",
    "InvalidTaxId",
    "Ledger",
    "LedgerEntryKind",
    "MessageType",
    "Money",
    "NotifiedPaymentMethod",
    "PaymentMethod",
    "PaymentResult",
    "PaymentStatus",
    "RateProvider",
    "StoredCard",
    "TaxCalculator",
    "TaxCustomer",
    "TaxIdCheck",
    "TaxIdStatus",
    "TaxIdVerifier",
    "TaxLine",
    "TaxRequest",
    "TaxTreatment",
    "hookimpl",
]
