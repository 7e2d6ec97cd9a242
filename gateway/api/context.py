"""The typed per-request context every resolver receives."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

# The session is only handed on to the services' read functions: the API runs no queries itself.
from gateway.storage.db import Session

if TYPE_CHECKING:
    from gateway.server.app import Gateway


@dataclass
class Context:
    gateway: Gateway
    now: datetime  # one clock reading per request: every resolver prices at the same instant
    workspace_id: str | None = None  # set when the bearer token is a valid API key
    credentials_given: bool = False  # a token was sent (distinguishes "wrong key" from "no key")
    _session: Session | None = field(default=None, repr=False)

    @property
    def session(self) -> Session:
        if self._session is None:
            self._session = self.gateway.sessions()
        return self._session

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None
