"""The published contract and the database schema stay equal to the code."""

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from gateway.api.schema import print_sdl
from gateway.db import Base

SCHEMA = Path(__file__).parent.parent / "schema" / "schema.graphql"


def test_published_sdl_matches_the_code():
    assert SCHEMA.read_text(encoding="utf-8") == print_sdl(), (
        "schema/schema.graphql is stale: run `billing-gateway export-schema -o schema/schema.graphql`")


def test_migrations_match_the_models(gateway):
    with gateway.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []
