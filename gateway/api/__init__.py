"""The GraphQL API: Strawberry types and thin resolvers that call the use cases; one error
translator and one sign-in guard (errors.py). No SQL here."""
