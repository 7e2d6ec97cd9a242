"""billing-gateway: a GraphQL billing gateway with exact money and plugins."""

__version__ = "0.1.0"
