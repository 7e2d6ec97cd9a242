"""Events as in-process listeners receive them, and the listener protocol."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class Event:
    """A committed billing event, as integrators receive it."""

    id: str
    type: str  # "plan_change.applied", ...
    workspace_id: str
    sequence: int  # per workspace, gap-free, starting at 1
    occurred_at: datetime
    payload: Mapping[str, Any] = field(default_factory=dict)
    version: int = 1  # version of the payload schema of this type


@runtime_checkable
class EventListener(Protocol):
    """Receives each committed event once, in sequence order per workspace."""

    code: str

    def handle(self, event: Event) -> None: ...
