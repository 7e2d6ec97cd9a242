"""Rate limits at the door (``BILLING_GATEWAY_RATE_LIMITS``, see :mod:`gateway.core.rate_limits`).

Every request is counted against its client address before its document is parsed, and against
its API key once the key is known; a wrong or revoked key counts as a failed sign-in of the
address, and an address over that limit is refused before its next key is looked up. Mutations
that charge (``checkout``, ``topUpBalance``, ``payInvoice``) and ``addCard`` have stricter rules
of their own, counted per root field (aliases included) before anything runs.

A refused request changes nothing: HTTP 429 with ``Retry-After`` and a GraphQL error whose
``extensions`` say ``code: RATE_LIMITED``, the rule and ``retryAfter`` (seconds).
"""

from __future__ import annotations

import logging
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLFormattedError,
    InlineFragmentNode,
    SelectionSetNode,
)

from gateway.api import limits
from gateway.services.keys import Caller, OperatorCaller, WorkspaceCaller
from gateway.storage.rate_limits import RateLimiter, Refusal

logger = logging.getLogger("gateway.rate_limits")

RATE_LIMITED = "RATE_LIMITED"  # the extensions.code clients see; stable
# Root fields with rules of their own, by rule family (<family>_per_key, <family>_per_address).
GUARDED_FIELDS = {
    "checkout": "payments",
    "topUpBalance": "payments",
    "payInvoice": "payments",
    "addCard": "cards",
}


class RateLimited(Exception):
    """A request over a rate limit; nothing of it ran."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.rule.name)
        self.refusal = refusal

    @property
    def message(self) -> str:
        rule = self.refusal.rule
        return (
            f"Too many requests: {rule.what} are limited to {rule.limit} per {rule.period} seconds "
            f"({rule.name}); retry after {self.refusal.retry_after} seconds."
        )

    def error(self) -> GraphQLFormattedError:
        """The GraphQL error, as the response's ``errors`` lists it."""
        return {
            "message": self.message,
            "extensions": {
                "code": RATE_LIMITED,
                "rule": self.refusal.rule.name,
                "retryAfter": self.refusal.retry_after,
            },
        }

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.refusal.retry_after)}


def address_of(scope: Any) -> str:
    """The client's address as the server sees it (behind a proxy, the proxy's unless uvicorn's
    ``--forwarded-allow-ips`` trusts it: see the README)."""
    client = scope.get("client")
    return str(client[0])[:64] if client else "unknown"


def key_subject(caller: Caller) -> str | None:
    if isinstance(caller, WorkspaceCaller):
        return f"key:{caller.key_id}"
    if isinstance(caller, OperatorCaller):
        return f"operator:{caller.key_id}"
    return None


def _raise(refusal: Refusal | None, address: str) -> None:
    if refusal is not None:
        logger.warning(
            "rate limited: %s (retry after %d s), address %s",
            refusal.rule.name,
            refusal.retry_after,
            address,
        )
        raise RateLimited(refusal)


def admit_address(limiter: RateLimiter, address: str, signing_in: bool) -> None:
    """Count a request from ``address``; with a key to check, refuse it first if the address
    has failed too many sign-ins. Raises :class:`RateLimited`."""
    _raise(limiter.take("requests_per_address", address), address)
    if signing_in:
        _raise(limiter.check("failed_sign_ins_per_address", address), address)


def signed_in(limiter: RateLimiter, address: str, caller: Caller | None) -> None:
    """After the key was looked up: a failed sign-in is recorded for the address; a valid key's
    request is counted against the key. Raises :class:`RateLimited`."""
    if caller is None:
        limiter.record("failed_sign_ins_per_address", address)
        return
    subject = key_subject(caller)
    if subject is not None:
        admit_key(limiter, address, subject)


def admit_key(limiter: RateLimiter, address: str, subject: str) -> None:
    """Count a request (or subscribe message) of an API key. Raises :class:`RateLimited`."""
    _raise(limiter.take("requests_per_key", subject), address)


def admit_fields(limiter: RateLimiter, address: str, caller: Caller | None, fields: list[str]) -> None:
    """Count the guarded root fields an operation runs, per key and per address."""
    families: dict[str, int] = {}
    for name in fields:
        if (family := GUARDED_FIELDS.get(name)) is not None:
            families[family] = families.get(family, 0) + 1
    subject = key_subject(caller) if caller is not None else None
    for family, cost in families.items():
        if subject is not None:
            _raise(limiter.take(f"{family}_per_key", subject, cost), address)
        _raise(limiter.take(f"{family}_per_address", address, cost), address)


def root_fields(document: DocumentNode | None, operation_name: str | None) -> list[str]:
    """The root field names the selected operation runs, once per occurrence (aliases
    included), through inline fragments and fragment spreads; [] when none can be selected.
    Directives are not evaluated: a field under ``@skip`` counts (never fewer than run)."""
    if document is None:
        return []
    operation = limits.selected_operation(document, operation_name)
    if operation is None:
        return []
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    names: list[str] = []
    pending: list[SelectionSetNode] = [operation.selection_set]
    spread: set[str] = set()  # a fragment counts once per document, as the limits see it
    while pending:
        for selection in pending.pop().selections:
            if isinstance(selection, FieldNode):
                names.append(selection.name.value)
            elif isinstance(selection, InlineFragmentNode):
                pending.append(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = fragments.get(selection.name.value)
                if fragment is not None and selection.name.value not in spread:
                    spread.add(selection.name.value)
                    pending.append(fragment.selection_set)
    return names
