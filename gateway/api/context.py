"""The typed per-request context every resolver receives."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from gateway.events.notify import Notifier
from gateway.plugin_api.registry import PluginInfo
from gateway.services.billing_views import answer_session
from gateway.services.deps import Deps, ReadSession
from gateway.services.keys import Caller, OperatorCaller, Scope, WorkspaceCaller
from gateway.storage.rate_limits import RateLimiter


class ApiDeps(Deps, Protocol):
    """What the API needs beyond the use cases' dependencies."""

    @property
    def notifier(self) -> Notifier:
        """Wakes subscriptions when events commit."""
        ...

    @property
    def plugins(self) -> Sequence[PluginInfo]:
        """The plugins loaded at start-up."""
        ...

    @property
    def rate_limiter(self) -> RateLimiter:
        """Counts requests per key and per address (gateway.api.throttle)."""
        ...


@dataclass(frozen=True)
class RootAnswer:
    """What one root field of an operation answered."""

    field: str  # the schema's field name (not the alias)
    type_name: str | None  # the GraphQL type of the answer (CheckoutSuccess, PaymentDeclined, ...)
    user_error: bool  # an expected failure: a UserError member of the field's result union
    raised: bool = False  # the resolver raised (an error in `errors`)


@dataclass
class Context:
    gateway: ApiDeps
    now: datetime  # one clock reading per request: every resolver prices at the same instant
    workspace_id: str | None = None  # set when the bearer token is a valid workspace API key
    scopes: frozenset[Scope] = frozenset()  # what that key may do (gateway.api.scopes checks it)
    # Set when it is a valid operator key instead: such a request has no workspace, so every
    # workspace field refuses it, and only it passes the operators' guard (errors.as_operator).
    operator: OperatorCaller | None = None
    credentials_given: bool = False  # a token was sent (distinguishes "wrong key" from "no key")
    # What each root field answered, by response key (for the server's metrics): see RootAnswer.
    answers: dict[str, RootAnswer] = field(default_factory=dict)
    _session: ReadSession | None = field(default=None, repr=False)

    def sign_in(self, caller: Caller | None) -> None:
        """Take who the bearer token speaks for (None: a wrong or revoked key)."""
        self.workspace_id = caller.workspace_id if isinstance(caller, WorkspaceCaller) else None
        self.scopes = caller.scopes if isinstance(caller, WorkspaceCaller) else frozenset()
        self.operator = caller if isinstance(caller, OperatorCaller) else None

    @property
    def session(self) -> ReadSession:
        """The request's read session, opened on first use: the one connection a query holds.
        Resolvers only hand it to the services' read functions."""
        if self._session is None:
            self._session = answer_session(self.gateway)
        return self._session

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None
