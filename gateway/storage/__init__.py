"""Persistence: SQLAlchemy models and migrations, row locks, idempotency keys and the balance ledger."""
