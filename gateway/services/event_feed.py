"""What a subscriber reads: a workspace's committed events, in order, in batches, and whose
API key opened the stream. Each call is one short read session."""

from __future__ import annotations

from collections.abc import Iterable

from gateway.events import catalog
from gateway.plugin_api.events import Event
from gateway.services import keys
from gateway.services.deps import Deps
from gateway.services.keys import Scope, WorkspaceCaller, authenticate


def workspace_of_key(deps: Deps, key: str) -> str | None:
    """The workspace an API key belongs to, or None for a wrong or revoked key."""
    with deps.sessions() as session:
        return authenticate(session, key)


def caller_of_key(deps: Deps, key: str) -> WorkspaceCaller | None:
    """Whose workspace API key this is, with its scopes; None for a wrong, revoked or operator key."""
    caller = deps.callers.identify(key)
    return caller if isinstance(caller, WorkspaceCaller) else None


def scopes_now(deps: Deps, key_id: str) -> frozenset[Scope] | None:
    """An API key's scopes as stored now; None once it is revoked or gone."""
    with deps.sessions() as session:
        return keys.active_scopes(session, key_id)


def revoked_keys(deps: Deps, key_ids: Iterable[str]) -> set[str]:
    """Which of these API keys are revoked or gone."""
    with deps.sessions() as session:
        return keys.revoked_among(session, key_ids)


def last_sequence(deps: Deps, workspace_id: str) -> int:
    """The sequence number of the workspace's latest event (0 before the first)."""
    with deps.sessions() as session:
        return catalog.last_sequence(session, workspace_id)


def events_after(deps: Deps, workspace_id: str, after: int, limit: int) -> list[Event]:
    """Up to ``limit`` of the workspace's events (of every type: each stream filters its own)
    after sequence ``after``, oldest first."""
    with deps.sessions() as session:
        return catalog.read_events(session, workspace_id, after, limit=limit)
