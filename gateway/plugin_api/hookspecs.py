"""Hook specifications: the contract between the gateway and its plugins.

A plugin is a module (or object) exposed through the ``billing_gateway``
entry-point group; its hook implementations are marked with :data:`hookimpl`.
Every hook here runs **once, at start-up**, and hands provider objects to a
``register`` callback; requests then call those objects and never pluggy.
Provider objects must be safe to share between threads and keep no per-request
state; tax calculators and rate providers are on the quote path (every slider
move), so they do no I/O there. Payment methods talk to their processors outside
any database transaction. The reference for plugin authors, with a tutorial, is
``docs/plugins.md``.

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
    """Register the payment methods this plugin offers at checkout, top-up and renewal.

    Called once at start-up, never per request. Each object must satisfy
    :class:`~gateway.plugin_api.payments.PaymentMethod` (a method with the CARDS capability also
    :class:`~gateway.plugin_api.payments.CardMethod`; one that receives its processor's
    notifications :class:`~gateway.plugin_api.payments.NotifiedPaymentMethod`). One instance
    serves every request, from several threads: keep no per-payment state in memory.

    The core records each payment as ``pending`` and commits it *before* it calls ``charge``,
    calls the method outside any database transaction, and applies the answer in a second
    transaction; a method that raises leaves the payment ``pending`` for the reconciliation
    run, which asks ``status`` with the same idempotency key. A FAILED answer must not have
    moved any money.

    :param register: call it with each method object. It raises
        :class:`~gateway.plugin_api.registry.PluginError` (and start-up stops, naming the
        plugin) when the object has no string ``code`` or one another plugin took, a code
        longer than 32 characters, a missing member, an empty ``label``, ``capabilities``
        that are not a frozenset of :class:`~gateway.plugin_api.payments.Capability` or
        include none of PAY_NOW, CUSTOMER_ACTION and SETTLE_LATER, or CARDS without
        ``tokenize``.
    :returns: nothing; an exception raised by the hook stops start-up with a ``PluginError``.

    Every member, when it is called and what it may raise: ``docs/plugins.md``.
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

    :param register: call it with each calculator; it raises ``PluginError`` (start-up
        stops, naming the plugin) for a missing or taken ``code`` or a missing ``calculate``.
    :returns: nothing; an exception raised by the hook stops start-up with a ``PluginError``.
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

    :param register: call it with each verifier; it raises ``PluginError`` (start-up
        stops, naming the plugin) for a missing or taken ``code``, a missing ``verify`` or
        ``countries`` that are not a frozenset of country codes.
    :returns: nothing; an exception raised by the hook stops start-up with a ``PluginError``.
    """


@hookspec
def register_rate_providers(register: Callable[[RateProvider], None]) -> None:
    """Register messaging-rate providers for the Message Calculator and usage.

    Called once at start-up. Each object must satisfy
    :class:`gateway.plugin_api.RateProvider`. The gateway uses the one named by
    the ``rate_provider`` setting (``BILLING_GATEWAY_RATE_PROVIDER``), or the only one
    loaded, and reads its message types and destinations once, at start-up.

    :param register: call it with each provider; it raises ``PluginError`` (start-up
        stops, naming the plugin) for a missing or taken ``code`` or a missing member.
    :returns: nothing; an exception raised by the hook stops start-up with a ``PluginError``.
    """


@hookspec
def register_event_listeners(register: Callable[[EventListener], None]) -> None:
    """Register in-process listeners for committed billing events.

    Called once at start-up. Each object must satisfy
    :class:`gateway.plugin_api.EventListener`; its ``handle`` is called once for
    every event after the transaction that wrote it has committed, from the delivery
    worker, in sequence order per workspace. A ``handle`` that raises is retried on the
    webhook schedule, and that workspace's later events wait for it.

    :param register: call it with each listener; it raises ``PluginError`` (start-up
        stops, naming the plugin) for a missing or taken ``code`` or a missing ``handle``.
    :returns: nothing; an exception raised by the hook stops start-up with a ``PluginError``.
    """
