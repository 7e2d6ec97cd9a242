"""The plugin author kit: a conformance suite a partner runs against their plugin package.

Run it with the pytest plugin this package ships (registered through the ``pytest11``
entry point, so it is there wherever the gateway is installed)::

    pytest --pyargs gateway.testing.conformance --conformance-plugin=MODULE_OR_ENTRY_POINT_NAME

``--conformance-plugin`` names a plugin module (``billing_gateway_payment_card``) or an
entry point of the ``billing_gateway`` group (``payment_card``) and may be given more than
once. The kit registers exactly those plugins through the gateway's own registry (the same
hook and contract checks as the server's start-up) and runs the suites of
:mod:`gateway.testing.conformance` against every payment method, tax calculator and rate
provider they register. Card methods are charged with ``--conformance-card`` (a card their
test mode charges successfully) and ``--conformance-action-card`` (one that asks for a
customer action such as 3-D Secure).

:mod:`gateway.testing.fakes` holds what the suites share (an in-memory :class:`Ledger
<gateway.plugin_api.payments.Ledger>`, card details, charge requests); a plugin's own tests
may use it too.
"""
