"""The domain, pure: money, the catalog, pricing, periods, SMS segments, tax values, errors and
statuses. No SQL, GraphQL, HTTP, plugins or clock here: ``now`` is passed in."""
