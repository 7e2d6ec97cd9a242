"""The published contract and the database schema stay equal to the code."""

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from gateway.api.schema import print_sdl
from gateway.storage.db import Base

SCHEMA = Path(__file__).parent.parent / "schema" / "schema.graphql"


def test_published_sdl_matches_the_code():
    assert SCHEMA.read_text(encoding="utf-8") == print_sdl(), (
        "schema/schema.graphql is stale: run `billing-gateway export-schema -o schema/schema.graphql`"
    )


def test_migrations_match_the_models(gateway):
    with gateway.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []


def test_migrations_go_down_and_up_again(tmp_path):
    from alembic import command
    from sqlalchemy import inspect

    from gateway.storage.db import alembic_config, create_db_engine, migrate

    engine = create_db_engine(f"sqlite:///{tmp_path / 'roundtrip.db'}")
    try:
        migrate(engine)
        tables = set(inspect(engine).get_table_names())
        command.downgrade(alembic_config(engine), "base")
        assert set(inspect(engine).get_table_names()) == {"alembic_version"}
        migrate(engine)
        assert set(inspect(engine).get_table_names()) == tables
    finally:
        engine.dispose()


def test_the_schema_is_built_once_per_process():
    from gateway.api.schema import build_schema

    assert build_schema() is build_schema()  # it holds no per-gateway state: the context does
