"""The running gateway: the composition root (app.py), GraphQL over HTTP, the CLI and settings."""
