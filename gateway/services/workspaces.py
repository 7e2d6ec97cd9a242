"""Workspaces and their subscription state (their API keys: ``gateway.services.keys``)."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Protocol

from sqlalchemy.orm import Session

from gateway.core.catalog import Catalog
from gateway.core.periods import add_months, period_containing
from gateway.core.pricing import Configuration, Subscription, configure
from gateway.core.statuses import WorkspaceStatus
from gateway.events.outbox import EventType, emit
from gateway.storage.db import Workspace


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
