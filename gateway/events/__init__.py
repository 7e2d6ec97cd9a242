"""Events: the outbox written with each change, the event catalog, notifications that wake
readers, and delivery to webhooks and in-process listeners."""
