"""Hook specifications: the contract between the gateway and its plugins.

A plugin is a module (or object) exposed through the ``billing_gateway``
entry-point group; its hook implementations are marked with :data:`hookimpl`.
Every hook here runs **once, at start-up**, and hands provider objects to a
``register`` callback; requests then call those objects and never pluggy.
Provider objects must be safe to share between threads and should keep per-call
work pure (no I/O on the quote path).

Example::

    from gateway.plugin_api import hookimpl

    @hookimpl
    def register_rate_providers(register):
        register(MyRates())
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

from gateway.core.tax import TaxCalculator
from gateway.plugin_api.events import EventListener
from gateway.plugin_api.messaging import RateProvider
from gateway.plugin_api.payments import PaymentMethod
from gateway.plugin_api.tax_ids import TaxIdVerifier

PROJECT_NAME = "billing_gateway"
ENTRY_POINT_GROUP = "billing_gateway"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_payment_methods(register: Callable[[PaymentMethod], None]) -> None:
    """Register the payment methods this plugin offers at checkout.

    Called once at start-up. Call ``register`` with one object per method; each
    must satisfy :class:`gateway.plugin_api.payments.PaymentMethod` (card methods also
    :class:`gateway.plugin_api.payments.CardPaymentMethod`) and have a ``code`` no other
    plugin uses. ``charge`` runs inside the checkout's database transaction with
    the workspace locked; a FAILED result must not have moved any money.
    """


@hookspec
def register_tax_calculators(register: Callable[[TaxCalculator], None]) -> None:
    """Register tax calculators.

    Called once at start-up. Each object must satisfy
    :class:`gateway.plugin_api.TaxCalculator` (``calculate`` is pure: it runs on every quote)
    and have a ``code`` no other plugin uses. The gateway uses the one named by
    ``BILLING_GATEWAY_TAX_CALCULATOR``, the ones ``BILLING_GATEWAY_TAX_CALCULATORS`` routes
    customers to by country, or the only one loaded. Each chosen calculator is asked once at
    start-up to tax a customer in the seller's country and in each country routed to it; an
    exception there stops start-up with the message.
    """


@hookspec
def register_tax_id_verifiers(register: Callable[[TaxIdVerifier], None]) -> None:
    """Register verifiers that ask a register (such as VIES) whether customers' tax IDs are issued.

    Called once at start-up. Each object must satisfy
    :class:`gateway.plugin_api.TaxIdVerifier` and have a ``code`` no other plugin uses.
    When billing details with a tax ID are saved, the first verifier (by code) whose
    ``countries`` hold the billing country is asked, outside any database transaction; a
    REJECTED answer refuses the save with its reason on the ``vat_id`` field. Register none
    to keep the offline format check only.
    """


@hookspec
def register_rate_providers(register: Callable[[RateProvider], None]) -> None:
    """Register messaging-rate providers for the Message Calculator and usage.

    Called once at start-up. Each object must satisfy
    :class:`gateway.plugin_api.RateProvider`. The gateway uses the one named by
    the ``rate_provider`` setting, or the only one loaded.
    """


@hookspec
def register_event_listeners(register: Callable[[EventListener], None]) -> None:
    """Register in-process listeners for committed billing events.

    Called once at start-up. Each object must satisfy
    :class:`gateway.plugin_api.EventListener`; its ``handle`` is called once for
    every event after the transaction that wrote it has committed.
    """
