"""The conformance suites: what every payment method, tax calculator and rate provider must do.

Run them against a plugin with the command in :mod:`gateway.testing`; each test takes the
provider it checks as ``payment_method``, ``tax_calculator`` or ``rate_provider``, one run per
provider the named plugins register (the test id is the provider's code). A suite whose kind
no named plugin provides is skipped, saying so.
"""
