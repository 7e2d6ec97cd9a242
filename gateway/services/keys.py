"""Bearer keys: workspace API keys and operator keys, stored only as hashes, and the one
lookup that tells which a token is.

A key reads ``<kind>_<prefix>_<secret>``: ``bgw_`` for a workspace's API key, ``bgo_`` for an
operator key. The prefix (12 hex characters) is stored in the clear to tell keys apart and
find the row; only the SHA-256 of the whole key is kept beside it. An operator key belongs to
no workspace: a request made with it reads and changes no workspace's data through the
workspace fields, and only it reaches the operators' fields.

A workspace key carries **scopes**, the kinds of operation it may run (:class:`Scope`); which
root field needs which is the API's business (``gateway.api.scopes``). A key is issued with all
of them unless told otherwise. Operator keys have no scopes: they reach the operators' fields only.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TypeVar

from sqlalchemy import event, or_, select
from sqlalchemy.orm import Session

from gateway.storage.db import ApiKey, OperatorKey

logger = logging.getLogger("gateway.auth")  # logger names are stable: operators filter on them

KEY_PREFIX = "bgw"  # a workspace's API key
OPERATOR_KEY_PREFIX = "bgo"  # an operator key
PREFIX_LENGTH = 12

_Key = TypeVar("_Key", ApiKey, OperatorKey)


class Scope(StrEnum):
    """What a workspace API key may do, as ``create-key --scope`` spells it."""

    READ = "read"  # queries of the workspace's data, and the previews (selectPlan, quote)
    LIVE = "live"  # subscriptions (events, planChanged) over the WebSocket
    BILLING = "billing"  # mutations that change money, cards, the plan or the billing details
    USAGE = "usage"  # recordUsage
    WEBHOOKS = "webhooks"  # webhook endpoints: list, create, update, rotate, delete, redeliver


ALL_SCOPES = frozenset(Scope)


def scopes_text(scopes: Iterable[Scope]) -> str:
    """Scopes as stored and shown: their names, space-separated, in a fixed order."""
    return " ".join(sorted(str(scope) for scope in set(scopes)))


def parse_scopes(text: str) -> frozenset[Scope]:
    """Scopes as stored; a name this version does not know is dropped (it grants nothing)."""
    known = {str(scope) for scope in Scope}
    return frozenset(Scope(name) for name in text.split() if name in known)


@dataclass(frozen=True)
class IssuedKey:
    id: str
    prefix: str
    secret: str  # the whole key; shown once, never stored


@dataclass(frozen=True)
class WorkspaceCaller:
    """A request made with a workspace's API key."""

    workspace_id: str
    key_id: str
    scopes: frozenset[Scope]


@dataclass(frozen=True)
class OperatorCaller:
    """A request made with an operator key: no workspace."""

    key_id: str
    prefix: str


Caller = WorkspaceCaller | OperatorCaller


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


token_digest = _hash  # what a key is stored (and cached) as: its SHA-256, never the key


_REVOKING = "gateway.services.keys.revoking"  # Session.info key: a revocation in this transaction
_revocations = 0  # revocations committed in this process (gateway.services.key_cache watches it)
_revocations_lock = threading.Lock()


def revocations() -> int:
    """How many transactions of this process committed a revocation."""
    return _revocations


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    global _revocations
    if session.info.pop(_REVOKING, False):
        with _revocations_lock:
            _revocations += 1


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_REVOKING, None)


def _new_secret(kind: str) -> tuple[str, str]:
    prefix = secrets.token_hex(PREFIX_LENGTH // 2)
    return prefix, f"{kind}_{prefix}_{secrets.token_urlsafe(32)}"


def _parts(token: str) -> tuple[str, str] | None:
    """The kind and prefix of a well-formed key, else None (a key is printable ASCII: a control
    character, NUL included, makes it malformed before any query)."""
    if not token.isprintable():
        return None
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] not in (KEY_PREFIX, OPERATOR_KEY_PREFIX) or len(parts[1]) != PREFIX_LENGTH:
        return None
    return parts[0], parts[1]


def public_part(key_or_prefix: str) -> str:
    """What may be shown of a key someone typed (a command's argument): a key-shaped value only
    as ``<kind>_<prefix>``, never its secret part; a prefix or an id as it is."""
    parts = key_or_prefix.split("_", 2)
    return f"{parts[0]}_{parts[1]}" if len(parts) == 3 else key_or_prefix


def issue_api_key(
    session: Session,
    workspace_id: str,
    now: datetime,
    name: str = "default",
    scopes: Collection[Scope] = ALL_SCOPES,
) -> IssuedKey:
    """A new key of the workspace, with ``scopes`` (all of them unless told otherwise)."""
    if not scopes:
        raise ValueError("an API key needs at least one scope")
    prefix, secret = _new_secret(KEY_PREFIX)
    key = ApiKey(
        id=secrets.token_hex(16),
        workspace_id=workspace_id,
        prefix=prefix,
        key_hash=_hash(secret),
        name=name,
        scopes=scopes_text(Scope(scope) for scope in scopes),
        created_at=now,
    )
    session.add(key)
    session.flush()
    return IssuedKey(key.id, prefix, secret)


def issue_operator_key(session: Session, now: datetime, name: str) -> IssuedKey:
    prefix, secret = _new_secret(OPERATOR_KEY_PREFIX)
    key = OperatorKey(
        id=secrets.token_hex(16), prefix=prefix, key_hash=_hash(secret), name=name[:200], created_at=now
    )
    session.add(key)
    session.flush()
    return IssuedKey(key.id, prefix, secret)


def identify(session: Session, token: str) -> Caller | None:
    """Who a bearer token speaks for, or None for a wrong or revoked key (of either kind).

    A refusal is logged at WARNING on ``gateway.auth`` with the key's public prefix only (the
    server's log records add the client's address and the request id)."""
    parts = _parts(token)
    if parts is None:
        logger.warning("sign-in refused: a malformed bearer token")  # none of it: it may be a secret
        return None
    kind, prefix = parts
    if kind == KEY_PREFIX:
        api_key = _active(session, ApiKey, kind, prefix, token)
        if api_key is None:
            return None
        return WorkspaceCaller(api_key.workspace_id, api_key.id, parse_scopes(api_key.scopes))
    operator_key = _active(session, OperatorKey, kind, prefix, token)
    return OperatorCaller(operator_key.id, operator_key.prefix) if operator_key is not None else None


def _active(session: Session, model: type[_Key], kind: str, prefix: str, token: str) -> _Key | None:
    """The unrevoked key of ``model`` with this prefix whose hash is the token's."""
    key = session.scalar(select(model).where(model.prefix == prefix))
    if key is None or not hmac.compare_digest(key.key_hash, _hash(token)):
        logger.warning("sign-in refused: key %s_%s is unknown", kind, prefix)
        return None
    if key.revoked_at is not None:
        logger.warning("sign-in refused: key %s_%s was revoked", kind, prefix)
        return None
    return key


def authenticate(session: Session, token: str) -> str | None:
    """The workspace whose data a bearer token may read (the invoice PDFs): None for a wrong or
    revoked key, a key without the ``read`` scope, and an operator key (which has no workspace)."""
    caller = identify(session, token)
    return (
        caller.workspace_id if isinstance(caller, WorkspaceCaller) and Scope.READ in caller.scopes else None
    )


def active_scopes(session: Session, key_id: str) -> frozenset[Scope] | None:
    """The scopes of an API key as stored now, or None once it is revoked or gone."""
    key = session.get(ApiKey, key_id)
    return parse_scopes(key.scopes) if key is not None and key.revoked_at is None else None


def revoked_among(session: Session, key_ids: Iterable[str]) -> set[str]:
    """Which of these API keys no longer sign anyone in: revoked, or gone with their workspace."""
    wanted = set(key_ids)
    if not wanted:
        return set()
    active = session.scalars(select(ApiKey.id).where(ApiKey.id.in_(wanted), ApiKey.revoked_at.is_(None)))
    return wanted - set(active)


def revoke_api_key(session: Session, key_or_prefix: str, now: datetime) -> str | None:
    """Revoke a key given whole or by its prefix; the prefix revoked, or None if none was active."""
    parts = _parts(key_or_prefix)
    prefix = parts[1] if parts is not None and parts[0] == KEY_PREFIX else key_or_prefix
    key = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix, ApiKey.revoked_at.is_(None)))
    if key is None:
        return None
    key.revoked_at = now
    session.info[_REVOKING] = True
    return key.prefix


def revoke_operator_key(session: Session, key_prefix_or_id: str, now: datetime) -> str | None:
    """Revoke an operator key given whole, by its prefix or by its id; the prefix revoked, or
    None if none was active."""
    parts = _parts(key_prefix_or_id)
    wanted = parts[1] if parts is not None and parts[0] == OPERATOR_KEY_PREFIX else key_prefix_or_id
    key = session.scalar(
        select(OperatorKey).where(
            or_(OperatorKey.prefix == wanted, OperatorKey.id == wanted), OperatorKey.revoked_at.is_(None)
        )
    )
    if key is None:
        return None
    key.revoked_at = now
    session.info[_REVOKING] = True
    return key.prefix
