"""Use cases: one function per operation, taking a ``Deps`` (deps.py) and owning its transaction;
read models for what the API shows (billing_views.py, webhook_views.py)."""
