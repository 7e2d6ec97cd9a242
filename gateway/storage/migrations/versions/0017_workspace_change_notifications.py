"""PostgreSQL: every write to a workspace or its billing details NOTIFYs the workspace's id on
channel billing_gateway_workspaces, delivered at commit, so that every replica's cache of those
rows (gateway.storage.workspace_cache) drops it, whoever wrote (another replica, a migration,
hand-written SQL). A TRUNCATE notifies an empty payload: every workspace. Nothing on SQLite,
where the cache asks PRAGMA data_version instead.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

CHANNEL = "billing_gateway_workspaces"  # gateway.storage.workspace_cache.CHANNEL
FUNCTION = "billing_gateway_workspace_changed"
TABLES = {"workspaces": "id", "billing_details": "workspace_id"}  # table: its workspace id column


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # TG_ARGV[0] names the table's workspace id column; NOTIFY folds the same payload within a
    # transaction, so a transaction that writes a workspace many times notifies it once.
    op.execute(
        f"""
        CREATE OR REPLACE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            column_name text := TG_ARGV[0];
        BEGIN
            IF TG_OP = 'TRUNCATE' THEN
                PERFORM pg_notify('{CHANNEL}', '');
                RETURN NULL;
            END IF;
            IF TG_OP IN ('UPDATE', 'DELETE') THEN
                PERFORM pg_notify('{CHANNEL}', to_jsonb(OLD) ->> column_name);
            END IF;
            IF TG_OP IN ('INSERT', 'UPDATE') THEN
                PERFORM pg_notify('{CHANNEL}', to_jsonb(NEW) ->> column_name);
            END IF;
            RETURN NULL;
        END
        $$
        """
    )
    for table, column in TABLES.items():
        op.execute(
            f"CREATE TRIGGER {table}_changed AFTER INSERT OR UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {FUNCTION}('{column}')"
        )
        op.execute(
            f"CREATE TRIGGER {table}_truncated AFTER TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTION}('{column}')"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_truncated ON {table}")
        op.execute(f"DROP TRIGGER IF EXISTS {table}_changed ON {table}")
    op.execute(f"DROP FUNCTION IF EXISTS {FUNCTION}()")
