"""Workspaces, their subscription state and their API keys."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.core.catalog import Catalog
from gateway.core.periods import add_months, period_containing
from gateway.core.pricing import Configuration, Subscription, configure
from gateway.core.statuses import WorkspaceStatus
from gateway.events.outbox import EventType, emit
from gateway.storage.db import ApiKey, Workspace

KEY_PREFIX = "bgw"


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedKey:
    id: str
    prefix: str
    secret: str  # the whole key; shown once, never stored


def create_workspace(
    session: Session,
    catalog: Catalog,
    name: str,
    now: datetime,
    *,
    plan_code: str | None = None,
    email_credits: int | None = None,
    messaging_credits: int | None = None,
) -> Workspace:
    """A new workspace on the catalog's default plan, or on ``plan_code`` (operators
    moving an existing customer), with a period starting ``now``."""
    plan = catalog.plan_on(catalog.default_plan.code if plan_code is None else plan_code, now)
    if plan is None:
        raise ValueError(f"unknown plan {plan_code!r}")
    config = configure(plan, catalog, None, email_credits, messaging_credits)
    workspace = Workspace(
        id=secrets.token_hex(16),
        name=name,
        created_at=now,
        plan_code=plan.code,
        price_version=plan.price_version,
        email_credits=config.email_credits,
        messaging_credits=config.messaging_credits,
        period_anchor=now,
        period_start=now,
        period_end=add_months(now, 1),
        status=WorkspaceStatus.ACTIVE,
        currency=catalog.currency,
        balance_minor=0,
        event_sequence=0,
    )
    session.add(workspace)
    session.flush()
    return workspace


def issue_api_key(session: Session, workspace_id: str, now: datetime, name: str = "default") -> IssuedKey:
    prefix = secrets.token_hex(6)
    secret = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey(
        id=secrets.token_hex(16),
        workspace_id=workspace_id,
        prefix=prefix,
        key_hash=_hash(secret),
        name=name,
        created_at=now,
    )
    session.add(key)
    session.flush()
    return IssuedKey(key.id, prefix, secret)


def authenticate(session: Session, token: str) -> str | None:
    """The workspace id a bearer token belongs to, or None for a wrong or revoked key."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or len(parts[1]) != 12:
        return None
    key = session.scalar(select(ApiKey).where(ApiKey.prefix == parts[1]))
    if key is None or key.revoked_at is not None:
        return None
    if not hmac.compare_digest(key.key_hash, _hash(token)):
        return None
    return key.workspace_id


def revoke_api_key(session: Session, key_or_prefix: str, now: datetime) -> str | None:
    """Revoke a key given whole or by its prefix; the prefix revoked, or None if none was active."""
    parts = key_or_prefix.split("_", 2)
    prefix = parts[1] if len(parts) == 3 and parts[0] == KEY_PREFIX else key_or_prefix
    key = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix, ApiKey.revoked_at.is_(None)))
    if key is None:
        return None
    key.revoked_at = now
    return key.prefix


class SubscriptionState(Protocol):
    """What a subscription is read from: a workspace row, or its read model."""

    @property
    def id(self) -> str: ...
    @property
    def plan_code(self) -> str: ...
    @property
    def price_version(self) -> str | None: ...
    @property
    def email_credits(self) -> int: ...
    @property
    def messaging_credits(self) -> int: ...
    @property
    def period_anchor(self) -> datetime: ...
    @property
    def period_start(self) -> datetime: ...
    @property
    def period_end(self) -> datetime: ...


def subscription_of(workspace: SubscriptionState, catalog: Catalog, now: datetime) -> Subscription:
    """The workspace's subscription as the pricing core sees it at ``now``.

    Free plans have nothing to charge at renewal, so their period simply rolls
    forward with the anchor.
    """
    plan = catalog.plan_version(workspace.plan_code, workspace.price_version)
    if plan is None:
        raise LookupError(
            f"workspace {workspace.id} is on plan {workspace.plan_code!r} at price version "
            f"{workspace.price_version!r}, which the catalog no longer has"
        )
    config = Configuration(plan, workspace.email_credits, workspace.messaging_credits)
    start, end = workspace.period_start, workspace.period_end
    if plan.is_free and not start <= now < end:
        start, end = period_containing(workspace.period_anchor, now)
    return Subscription(config, start, end)


def emit_credits_reset(session: Session, workspace: Workspace, now: datetime) -> None:
    """Announce that a new period started with fresh allowances (a renewal, or a checkout
    that starts a paid period): ``credits.reset`` with the period and the limits in force."""
    emit(
        session,
        workspace,
        EventType.CREDITS_RESET,
        {
            "period_start": workspace.period_start.isoformat(),
            "period_end": workspace.period_end.isoformat(),
            "plan": workspace.plan_code,
            "email_credits": workspace.email_credits,
            "messaging_credits": workspace.messaging_credits,
        },
        now,
    )
