"""Usage: sending draws down the period's credit allowances, and never past them.

An email costs one Email credit. A message costs the rate provider's messaging
credits for its destination and type, per segment for SMS (counted on a sample of
the text, see :mod:`gateway.core.sms`). Usage is counted per workspace, period start and
credit kind (``UsageCounter``), under the workspace's lock, so concurrent requests
can never spend the same credit twice. A request that would go past the allowance
is refused whole: nothing is counted.

Counters are keyed by the period start, so

* a new period starts from zero: unused credits never roll over;
* an upgrade between paid plans keeps the period start, so what was already used
  stays counted against the new, higher limit.

A period that has ended is renewed first (see :mod:`gateway.services.renewal`), so usage at
a period boundary never waits for the periodic renewal task.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_CEILING, Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.core.catalog import CreditKind
from gateway.core.errors import DomainError, ErrorCode, InvalidVolume, RenewalPending, WorkspaceSuspended
from gateway.core.messaging import Channel
from gateway.core.money import Money
from gateway.core.statuses import WorkspaceStatus
from gateway.services.deps import Deps
from gateway.services.invoices import amount_due
from gateway.services.messages import MessageOffer, message_cost
from gateway.services.renewal import renew_workspace
from gateway.services.workspaces import subscription_of
from gateway.storage import idempotency
from gateway.storage.db import UsageCounter, UsageRecord, Workspace
from gateway.storage.locks import lock_workspace

MAX_QUANTITY = 1_000_000  # messages per request
CREDIT_QUANTUM = Decimal("0.0001")  # what the counters keep (Numeric(20, 4))
OPERATION = "record_usage"


# ------------------------------------------------------------------- errors


class ChannelNotInPlan(DomainError):
    """The plan grants no credits for the message type's channel (SMS on the Email plan)."""

    code = ErrorCode.CHANNEL_NOT_IN_PLAN

    def __init__(self, plan_code: str, plan_name: str, offer: MessageOffer) -> None:
        super().__init__(
            f"the {plan_name} plan does not include {offer.channel.value} messages: "
            "change to a plan with SMS/WhatsApp credits",
            ("message_type",),
        )
        self.plan_code, self.offer = plan_code, offer


class AllowanceExceeded(DomainError):
    code = ErrorCode.ALLOWANCE_EXCEEDED

    def __init__(self, kind: CreditKind, used: Decimal, included: int, requested: Decimal) -> None:
        remaining = max(Decimal(included) - used, Decimal(0))
        super().__init__(
            f"{_plain(requested)} {kind.value} credits requested, {_plain(remaining)} of "
            f"{included:,} left this period; nothing was counted",
            ("quantity",),
        )
        self.kind, self.used, self.included, self.requested = kind, used, included, requested
        self.remaining = remaining


# ------------------------------------------------------------------- values


@dataclass(frozen=True)
class UsageRequest:
    message_type: str
    quantity: int
    country: str | None = None
    sample_text: str | None = None
    idempotency_key: str | None = None

    def fingerprint(self) -> dict[str, Any]:
        return {
            "message_type": self.message_type,
            "country": self.country,
            "quantity": self.quantity,
            "sample_text": self.sample_text,
        }


@dataclass(frozen=True)
class PricedUsage:
    offer: MessageOffer  # the message type
    country: str | None
    quantity: int
    segments: int
    credits_per_message: Decimal  # all segments of one message
    credits: Decimal

    @property
    def message_type(self) -> str:
        return self.offer.code

    @property
    def kind(self) -> CreditKind:
        return self.offer.credit_kind

    @property
    def channel(self) -> Channel:
        return self.offer.channel


@dataclass(frozen=True)
class CreditUsage:
    kind: CreditKind
    used: Decimal
    included: int

    @property
    def remaining(self) -> Decimal:
        return max(Decimal(self.included) - self.used, Decimal(0))


@dataclass(frozen=True)
class PeriodUsage:
    period_start: datetime
    period_end: datetime
    credits: tuple[CreditUsage, ...]


@dataclass(frozen=True)
class Recorded:
    record_id: str
    usage: PricedUsage
    period: PeriodUsage

    def to_response(self) -> dict[str, Any]:
        u, p = self.usage, self.period
        return {
            "record_id": self.record_id,
            "usage": {
                "message_type": u.message_type,
                "name": u.offer.name,
                "segmented": u.offer.segmented,
                "kind": u.kind.value,
                "channel": u.channel.value,
                "country": u.country,
                "quantity": u.quantity,
                "segments": u.segments,
                "credits_per_message": str(u.credits_per_message),
                "credits": str(u.credits),
            },
            "period": {
                "start": p.period_start.isoformat(),
                "end": p.period_end.isoformat(),
                "credits": [
                    {"kind": c.kind.value, "used": str(c.used), "included": c.included} for c in p.credits
                ],
            },
        }

    @classmethod
    def from_response(cls, response: dict[str, Any]) -> Recorded:
        u, p = response["usage"], response["period"]
        return cls(
            record_id=response["record_id"],
            usage=PricedUsage(
                MessageOffer(
                    u["message_type"],
                    # answers stored before the name was: the code stands in for 24 hours at most
                    u.get("name", u["message_type"]),
                    Channel(u["channel"]),
                    CreditKind(u["kind"]),
                    u.get("segmented", Channel(u["channel"]) is Channel.SMS),
                ),
                u["country"],
                u["quantity"],
                u["segments"],
                Decimal(u["credits_per_message"]),
                Decimal(u["credits"]),
            ),
            period=PeriodUsage(
                datetime.fromisoformat(p["start"]),
                datetime.fromisoformat(p["end"]),
                tuple(
                    CreditUsage(CreditKind(c["kind"]), Decimal(c["used"]), c["included"])
                    for c in p["credits"]
                ),
            ),
        )


# ------------------------------------------------------------------ pricing


def _plain(value: Decimal) -> str:
    """A credit count without trailing zeros or an exponent: 12.5, 1000."""
    return f"{value.normalize():f}"


def price(deps: Deps, request: UsageRequest) -> PricedUsage:
    """What the request costs in credits, or a DomainError naming the field. Pure: reads nothing."""
    if not 1 <= request.quantity <= MAX_QUANTITY:
        raise InvalidVolume(
            f"quantity must be between 1 and {MAX_QUANTITY:,} messages, not {request.quantity}",
            ("quantity",),
            request.quantity,
            min=1,
            max=MAX_QUANTITY,
            step=1,
        )
    cost = message_cost(deps.messages, deps.rates, request.message_type, request.country, request.sample_text)
    offer = cost.offer
    country = cost.destination.country if cost.destination is not None else None
    # Counters keep four decimals; a finer rate is rounded up, never in the sender's favour.
    credits = (cost.per_message * request.quantity).quantize(CREDIT_QUANTUM, rounding=ROUND_CEILING)
    return PricedUsage(
        offer,
        country,
        request.quantity,
        cost.parts,
        cost.per_message,
        credits,
    )


# ------------------------------------------------------------------ recording


def record_usage(deps: Deps, workspace_id: str, request: UsageRequest, now: datetime) -> Recorded:
    """Count the request against the current period's allowance.

    Raises a :class:`DomainError` (nothing counted), or, with an idempotency key,
    :class:`idempotency.IdempotencyKeyReused` / :class:`idempotency.IdempotencyKeyInProgress`.
    The same key with the same request returns the first answer and counts once.
    """
    if request.idempotency_key is not None:
        idempotency.check_key(request.idempotency_key)
    priced = price(deps, request)
    with deps.sessions() as session:
        workspace = session.get(Workspace, workspace_id)
        due = workspace is not None and workspace.period_end <= now
    if due:
        renew_workspace(deps, workspace_id, now)  # errors are logged there; refused below if still due
    key = request.idempotency_key
    if key is None:
        return _record(deps, workspace_id, priced, now, None)
    # Refusals raise (nothing was counted), which releases the key for another try.
    return idempotency.run_once(
        deps.write_sessions,
        workspace_id,
        key,
        OPERATION,
        request.fingerprint(),
        now,
        lambda: _record(deps, workspace_id, priced, now, key),
        Recorded.to_response,
        Recorded.from_response,
        (Recorded,),
    )


def refuse_if_suspended(session: Session, workspace: Workspace) -> None:
    """Raise :class:`WorkspaceSuspended` for a workspace suspended for unpaid invoices."""
    if workspace.status == WorkspaceStatus.SUSPENDED:
        due = amount_due(session, workspace.id) or Money.zero(workspace.currency)
        raise WorkspaceSuspended(due)


def _record(deps: Deps, workspace_id: str, priced: PricedUsage, now: datetime, key: str | None) -> Recorded:
    with deps.write_sessions.begin() as session:
        workspace = lock_workspace(session, workspace_id)
        if workspace is None:
            raise LookupError(f"no workspace {workspace_id!r}")
        if workspace.period_end <= now:
            raise RenewalPending(workspace.period_end)
        refuse_if_suspended(session, workspace)
        subscription = subscription_of(workspace, deps.catalog, now)
        config = subscription.configuration
        plan = config.plan
        if plan.option(priced.kind) is None or priced.channel not in plan.channels:
            raise ChannelNotInPlan(plan.code, plan.name, priced.offer)
        counters = _counters(session, workspace_id, subscription.period_start, lock=True)
        counter = counters.get(priced.kind)
        used = counter.used if counter is not None else Decimal(0)
        included = config.limit(priced.kind)
        if used + priced.credits > included:
            raise AllowanceExceeded(priced.kind, normal(used), included, priced.credits)
        if counter is None:
            counter = UsageCounter(
                workspace_id=workspace_id,
                period_start=subscription.period_start,
                kind=priced.kind.value,
                used=priced.credits,
            )
            session.add(counter)
            counters[priced.kind] = counter
        else:
            counter.used = used + priced.credits
        record = UsageRecord(
            id=secrets.token_hex(16),
            workspace_id=workspace_id,
            period_start=subscription.period_start,
            kind=priced.kind.value,
            message_type=priced.message_type,
            country=priced.country,
            quantity=priced.quantity,
            credits=priced.credits,
            occurred_at=now,
        )
        session.add(record)
        period = PeriodUsage(
            subscription.period_start,
            subscription.period_end,
            tuple(
                CreditUsage(
                    kind, normal(counters[kind].used) if kind in counters else Decimal(0), config.limit(kind)
                )
                for kind in CreditKind
                if plan.option(kind) is not None
            ),
        )
        recorded = Recorded(record.id, priced, period)
        if key is not None:
            idempotency.complete(session, workspace_id, key, recorded.to_response())
        return recorded


def _counters(
    session: Session, workspace_id: str, period_start: datetime, *, lock: bool
) -> dict[CreditKind, UsageCounter]:
    statement = select(UsageCounter).where(
        UsageCounter.workspace_id == workspace_id, UsageCounter.period_start == period_start
    )
    if lock:
        statement = statement.with_for_update()
    return {CreditKind(row.kind): row for row in session.scalars(statement)}


def normal(value: Decimal) -> Decimal:
    """12.5 rather than 12.5000, 1000 rather than 1E+3."""
    return Decimal(value).normalize() + 0
