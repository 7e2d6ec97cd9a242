"""The GraphQL API: Strawberry types at the edge, translating to the pure core."""
