"""Price versions and existing subscribers: who keeps which price, and when it changes.

A subscription keeps the price version it bought (``Workspace.price_version``): a renewal is
priced at that version, and customizing the limits of the same plan keeps it too. A new
version in the catalog changes an existing subscriber's price only under the version's rule
(``existing_subscribers`` in the catalog, :class:`~gateway.core.catalog.PriceChangeRule`):

* ``grandfather`` (the default): never. The subscriber keeps its version until it buys
  another plan; a new plan is always bought at the version on sale.
* ``notice``: :func:`give_notice` (the server's periodic run, or ``billing-gateway prices
  notify``) records a :class:`~gateway.storage.db.PriceChange` for each subscriber on an
  earlier version and emits ``price_change.scheduled``. The new price applies at the first
  renewal on or after both the version's ``effective_from`` and the notice plus the catalog's
  ``notice_days``; that renewal emits ``price_change.applied`` and is priced at the new version.
  Nothing moves a subscriber who was not given notice, and a notice lapses if the workspace
  moves to another plan before it applies.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from gateway.core import pricing
from gateway.core.catalog import Catalog, Plan, PriceChangeRule
from gateway.core.money import Money
from gateway.core.periods import period_containing
from gateway.events.outbox import EventType, emit
from gateway.services.deps import Deps
from gateway.services.workspaces import SubscriptionState
from gateway.storage.db import PriceChange, ScheduledChange, Workspace
from gateway.storage.locks import lock_workspace

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Notice:
    """One notice given: ``workspace_id`` moves from one version to another at ``effective_at``."""

    workspace_id: str
    plan_code: str
    from_version: str
    to_version: str
    effective_at: datetime

    def describe(self) -> str:
        return (
            f"workspace {self.workspace_id}: plan {self.plan_code!r} moves from price version "
            f"{self.from_version!r} to {self.to_version!r} at its renewal on {self.effective_at.isoformat()}"
        )


def version_of(catalog: Catalog, plan_code: str, version: str | None) -> str | None:
    """The name of a recorded version: None (recorded before versions) is the plan's first."""
    plan = catalog.plan_version(plan_code, version)
    return plan.price_version if plan is not None else version


def notice_target(catalog: Catalog, plan_code: str) -> Plan | None:
    """The version subscribers of ``plan_code`` are moved to after notice: the newest one whose
    rule is NOTICE. None when every later version grandfathers its subscribers."""
    for version in reversed(catalog.price_versions(plan_code)[1:]):
        if version.existing_subscribers is PriceChangeRule.NOTICE:
            return version
    return None


def first_renewal_from(workspace: Workspace, when: datetime) -> datetime:
    """The first period boundary of the workspace at or after ``when``."""
    if when <= workspace.period_end:
        return workspace.period_end
    start, end = period_containing(workspace.period_anchor, when)
    return start if start == when else end


def give_notice(deps: Deps, now: datetime, limit: int = 500) -> list[Notice]:
    """Give notice of the newest NOTICE version to each subscriber on an earlier version of its
    plan. Each workspace is noticed in its own short transaction under its lock, so a run that
    fails half-way, or two at once, never notices anyone twice."""
    notices: list[Notice] = []
    catalog = deps.catalog
    for plan in catalog.plans:
        target = notice_target(catalog, plan.code)
        if target is None:
            continue
        versions = catalog.price_versions(plan.code)
        older = [v.price_version for v in versions[: versions.index(target)]]
        on_older: ColumnElement[bool] = Workspace.price_version.in_(older)
        if versions[0].price_version in older:
            on_older = or_(on_older, Workspace.price_version.is_(None))
        with deps.sessions() as session:
            candidates = list(
                session.scalars(
                    select(Workspace.id)
                    .outerjoin(PriceChange, PriceChange.workspace_id == Workspace.id)
                    .where(
                        Workspace.plan_code == plan.code,
                        on_older,
                        or_(
                            PriceChange.workspace_id.is_(None), PriceChange.to_version != target.price_version
                        ),
                    )
                    .order_by(Workspace.id)
                    .limit(limit)
                )
            )
        for workspace_id in candidates:
            try:
                notice = _notice(deps, workspace_id, target, now)
            except Exception:  # logged with its traceback; tried again on the next run
                logger.exception("price change notice for workspace %s failed", workspace_id)
                continue
            if notice is not None:
                notices.append(notice)
    return notices


def _notice(deps: Deps, workspace_id: str, target: Plan, now: datetime) -> Notice | None:
    catalog = deps.catalog
    with deps.write_sessions.begin() as session:
        workspace = lock_workspace(session, workspace_id)
        if workspace is None or workspace.plan_code != target.code:
            return None
        current = catalog.plan_version(workspace.plan_code, workspace.price_version)
        versions = catalog.price_versions(target.code)
        if current is None or versions.index(current) >= versions.index(target):
            return None  # moved meanwhile
        existing = session.get(PriceChange, workspace_id)
        if existing is not None:
            if existing.to_version == target.price_version:
                return None  # another run noticed it
            session.delete(existing)  # a newer version supersedes the notice given before
            session.flush()
        assert target.effective_from is not None  # only a later version is a target
        effective_at = first_renewal_from(
            workspace, max(target.effective_from, now + timedelta(days=catalog.notice_days))
        )
        session.add(
            PriceChange(
                workspace_id=workspace_id,
                plan_code=target.code,
                from_version=current.price_version,
                to_version=target.price_version,
                noticed_at=now,
                effective_at=effective_at,
            )
        )
        before = pricing.price_configuration(
            pricing.Configuration(current, workspace.email_credits, workspace.messaging_credits)
        )[1]
        after = pricing.price_configuration(
            pricing.Configuration(target, workspace.email_credits, workspace.messaging_credits)
        )[1]
        emit(
            session,
            workspace,
            EventType.PRICE_CHANGE_SCHEDULED,
            {
                "plan": target.code,
                "from_version": current.price_version,
                "to_version": target.price_version,
                "effective_at": effective_at.isoformat(),
                "monthly_subtotal_before": str(before.amount),
                "monthly_subtotal_after": str(after.amount),
                "currency": after.currency,
            },
            now,
        )
        return Notice(workspace_id, target.code, current.price_version, target.price_version, effective_at)


def pending_change(catalog: Catalog, session: Session, workspace: SubscriptionState) -> PriceChange | None:
    """The notice still in force for the workspace: for the plan and version it is on."""
    change = session.get(PriceChange, workspace.id)
    if change is None or change.plan_code != workspace.plan_code:
        return None
    if change.from_version != version_of(catalog, workspace.plan_code, workspace.price_version):
        return None
    return change


@dataclass(frozen=True)
class NoticeView:
    """A notice in force, priced for the workspace's configuration (``Workspace.priceChange``)."""

    plan: Plan  # at the new version
    from_version: str
    noticed_at: datetime
    effective_at: datetime
    monthly_subtotal_before: Money
    monthly_subtotal_after: Money


def notice(catalog: Catalog, session: Session, workspace: SubscriptionState) -> NoticeView | None:
    change = pending_change(catalog, session, workspace)
    if change is None:
        return None
    before = catalog.plan_version(change.plan_code, change.from_version)
    after = catalog.plan_version(change.plan_code, change.to_version)
    if before is None or after is None:
        return None

    def monthly(plan: Plan) -> Money:
        config = pricing.Configuration(plan, workspace.email_credits, workspace.messaging_credits)
        return pricing.price_configuration(config)[1]

    return NoticeView(
        after, before.price_version, change.noticed_at, change.effective_at, monthly(before), monthly(after)
    )


def apply_at_renewal(
    deps: Deps, session: Session, workspace: Workspace, boundary: datetime, now: datetime
) -> bool:
    """At the renewal starting ``boundary`` (the workspace locked, its scheduled change applied):
    move the workspace to the version it was given notice of, if that is due. A notice that no
    longer fits the workspace (it moved to another plan or version) lapses."""
    change = session.get(PriceChange, workspace.id)
    if change is None:
        return False
    if pending_change(deps.catalog, session, workspace) is None:
        session.delete(change)
        return False
    if change.effective_at > boundary:
        return False
    if deps.catalog.plan_version(change.plan_code, change.to_version) is None:
        logger.error(
            "workspace %s: price version %r of plan %r is no longer in the catalog; the notice is kept "
            "for an operator and the renewal keeps version %r",
            workspace.id,
            change.to_version,
            change.plan_code,
            change.from_version,
        )
        return False
    workspace.price_version = change.to_version
    session.delete(change)
    emit(
        session,
        workspace,
        EventType.PRICE_CHANGE_APPLIED,
        {
            "plan": change.plan_code,
            "from_version": change.from_version,
            "to_version": change.to_version,
            "effective_at": boundary.isoformat(),
            "noticed_at": change.noticed_at.isoformat(),
        },
        now,
    )
    return True


def scheduled_plan(catalog: Catalog, change: ScheduledChange) -> Plan | None:
    """The plan, at the version it was priced at, of a change scheduled for renewal."""
    return catalog.plan_version(change.plan_code, change.price_version)


def configuration_at_renewal(
    catalog: Catalog,
    session: Session,
    workspace: SubscriptionState,
    current: pricing.Configuration,
    renews_at: datetime,
) -> pricing.Configuration:
    """What the renewal at ``renews_at`` will charge for, as renewal decides it: the scheduled
    change if it applies by then, then the price version the workspace was given notice of if
    that applies by then, else the configuration in force."""
    config = current
    change = session.get(ScheduledChange, workspace.id)
    if change is not None and change.effective_at <= renews_at:
        plan = scheduled_plan(catalog, change)
        if plan is not None:  # else renewal keeps the change for an operator
            config = pricing.Configuration(plan, change.email_credits, change.messaging_credits)
    notice = pending_change(catalog, session, workspace)
    if (
        notice is not None
        and notice.effective_at <= renews_at
        and config.plan.code == notice.plan_code
        and config.plan.price_version == notice.from_version
        and (moved := catalog.plan_version(notice.plan_code, notice.to_version)) is not None
    ):
        config = pricing.Configuration(moved, config.email_credits, config.messaging_credits)
    return config
