"""Webhook signing secrets at rest: encrypted with keys from the environment, rotated to a new
key by ``billing-gateway webhooks reencrypt``, and encrypted by the migration that introduced it."""

from __future__ import annotations

import logging

import pytest
from alembic import command
from cryptography.fernet import Fernet
from sqlalchemy import select, text
from standardwebhooks import Webhook

from gateway.events import endpoints
from gateway.server.app import build_gateway
from gateway.server.cli import main
from gateway.server.settings import Settings, SettingsError
from gateway.storage.db import (
    EncryptionKey,
    GatewaySecret,
    WebhookEndpoint,
    alembic_config,
    create_db_engine,
    migrate,
    stored_key,
)
from gateway.storage.encryption import EncryptionError, Keyring, key_id

from helpers import registry_of

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, delivery_interval=0, encryption_keys=(OLD,))


CREATE = """mutation($url: String!) { createWebhookEndpoint(input: {url: $url}) {
    ... on WebhookEndpointCreated { secret endpoint { id } } } }"""


def stored(gateway, endpoint_id: str) -> str:
    with gateway.sessions() as session:
        return session.execute(
            text("SELECT secret FROM webhook_endpoints WHERE id = :id"), {"id": endpoint_id}
        ).scalar_one()


def secret_of(gateway, endpoint_id: str) -> str:
    with gateway.sessions() as session:
        return session.get_one(WebhookEndpoint, endpoint_id).secret


def test_secrets_are_stored_encrypted_with_the_first_key(graphql, gateway, make_workspace):
    member = make_workspace()
    created = graphql(CREATE, {"url": "https://93.184.215.14/h"}, key=member.key)["createWebhookEndpoint"]
    secret, endpoint_id = created["secret"], created["endpoint"]["id"]
    Webhook(secret)  # shown in the clear, once

    raw = stored(gateway, endpoint_id)
    assert raw.startswith(f"fernet:{key_id(OLD)}:") and secret not in raw and secret[6:] not in raw
    assert Fernet(OLD.encode()).decrypt(raw.split(":", 2)[2].encode()).decode() == secret
    assert secret_of(gateway, endpoint_id) == secret  # read back for signing


def test_secrets_read_back_are_concealed_from_repr(graphql, gateway, make_workspace, caplog):
    """SQLAlchemy logs every row at DEBUG once its columns' types have processed it: an encrypted
    column's row holds the decrypted secret. A secret read back is a str whose repr hides it, so
    the row log (and anything else showing objects by repr) does not show it; so are the keys the
    gateway keeps in the database."""
    stored_key(gateway.engine, gateway.clock(), create=True)  # kept by the database, as without a setting
    member = make_workspace()
    created = graphql(CREATE, {"url": "https://93.184.215.14/h"}, key=member.key)["createWebhookEndpoint"]
    with caplog.at_level(logging.DEBUG, logger="sqlalchemy.engine"), gateway.sessions() as session:
        secret = session.get_one(WebhookEndpoint, created["endpoint"]["id"]).secret
        [key] = session.scalars(select(EncryptionKey.key)).all()
        values = session.scalars(select(GatewaySecret.value)).all()
    assert secret == created["secret"] and Webhook(secret)  # the value, to sign with
    assert {repr(secret), repr(key), *map(repr, values)} == {"'<concealed>'"}
    rows = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Row")]
    assert len(rows) == 2 + len(values) and all("<concealed>" in row for row in rows)
    assert not any(value in caplog.text for value in [secret, key, *values])


def test_rotating_the_key_then_reencrypting(
    graphql, gateway, make_workspace, settings, clock, cli_env, monkeypatch, capsys
):
    member = make_workspace()
    created = graphql(CREATE, {"url": "https://93.184.215.14/h"}, key=member.key)["createWebhookEndpoint"]
    secret, endpoint_id = created["secret"], created["endpoint"]["id"]

    # The new key goes first; the old one stays behind it until every secret is re-encrypted.
    monkeypatch.setenv("BILLING_GATEWAY_ENCRYPTION_KEYS", f"{NEW},{OLD}")
    assert main(["webhooks", "reencrypt"]) == 0
    assert capsys.readouterr().out.startswith("1 webhook secret re-encrypted with the newest key, 0 already")
    raw = stored(gateway, endpoint_id)
    assert raw.startswith(f"fernet:{key_id(NEW)}:")
    assert main(["webhooks", "reencrypt"]) == 0
    assert capsys.readouterr().out.startswith("0 webhook secrets re-encrypted with the newest key, 1 already")

    ring = Keyring()
    ring.configure([NEW])  # the old key is no longer needed
    assert ring.decrypt(raw) == secret
    ring = Keyring()
    ring.configure([OLD])
    with pytest.raises(EncryptionError, match=key_id(NEW)):
        ring.decrypt(raw)


def test_a_secret_under_an_unknown_key_is_a_clear_error(gateway, make_workspace):
    member = make_workspace()
    with gateway.write_sessions.begin() as session:
        endpoint_id = endpoints.create_endpoint(
            session, member.id, "https://93.184.215.14/h", [], gateway.clock()
        ).id
    with gateway.write_sessions.begin() as session:
        session.execute(
            text("UPDATE webhook_endpoints SET secret = :s WHERE id = :id"),
            {"s": "fernet:00000000:gAAAA", "id": endpoint_id},
        )
    with pytest.raises(EncryptionError, match="00000000"):
        secret_of(gateway, endpoint_id)


def test_keys_come_from_the_environment():
    settings = Settings.from_env({"BILLING_GATEWAY_ENCRYPTION_KEYS": f" {NEW} , {OLD}"})
    assert settings.encryption_keys == (NEW, OLD)
    assert NEW not in repr(settings)
    with pytest.raises(SettingsError, match="ENCRYPTION_KEYS: key 2 is not a Fernet key"):
        Settings.from_env({"BILLING_GATEWAY_ENCRYPTION_KEYS": f"{NEW},secret"})


def test_without_keys_the_gateway_keeps_one_in_the_database_and_warns(settings, clock, gateway, caplog):
    with gateway.write_sessions.begin() as session:
        session.execute(EncryptionKey.__table__.delete())
    plain = Settings(database_url=settings.database_url, delivery_interval=0)
    first = build_gateway(plain, clock=clock, run_migrations=False, registry=registry_of())
    second = build_gateway(plain, clock=clock, run_migrations=False, registry=registry_of())
    try:
        with first.sessions() as session:
            [key] = session.scalars(select(EncryptionKey.key)).all()  # one, shared by both
        assert "BILLING_GATEWAY_ENCRYPTION_KEYS is not set" in caplog.text
        assert key_id(key) and key not in caplog.text
    finally:
        first.close()
        second.close()


def test_the_migration_encrypts_the_secrets_stored_before(tmp_path, monkeypatch):
    monkeypatch.setenv("BILLING_GATEWAY_ENCRYPTION_KEYS", NEW)
    engine = create_db_engine(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        migrate(engine, "0011")
        plain = "whsec_" + "A" * 43 + "="
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO workspaces (id, name, created_at, plan_code, email_credits, messaging_credits, "
                    "period_anchor, period_start, period_end, event_sequence, status) "
                    "VALUES ('w1', 'Acme', '2026-01-01 00:00:00', 'starter', 0, 0, "
                    "'2026-01-01 00:00:00', '2026-01-01 00:00:00', '2026-02-01 00:00:00', 0, 'active')"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO webhook_endpoints (id, workspace_id, url, event_types, secret, enabled, "
                    "created_at, updated_at) VALUES ('e1', 'w1', 'https://93.184.215.14/h', '[]', :s, 1, "
                    "'2026-01-01 00:00:00', '2026-01-01 00:00:00')"
                ),
                {"s": plain},
            )
        migrate(engine)
        with engine.connect() as conn:
            raw = conn.execute(text("SELECT secret FROM webhook_endpoints")).scalar_one()
        assert raw.startswith(f"fernet:{key_id(NEW)}:") and plain not in raw
        ring = Keyring()
        ring.configure([NEW])
        assert ring.decrypt(raw) == plain
        command.downgrade(alembic_config(engine), "0011")  # and back: in the clear again
        with engine.connect() as conn:
            assert conn.execute(text("SELECT secret FROM webhook_endpoints")).scalar_one() == plain
    finally:
        engine.dispose()
