"""Row locks that keep money consistent across requests and replicas."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.storage.db import Workspace


def lock_workspace(session: Session, workspace_id: str) -> Workspace | None:
    """The workspace row, locked until the transaction ends.

    PostgreSQL: ``SELECT ... FOR UPDATE``. SQLite has no row locks: the session
    must come from ``write_session_factory``, whose BEGIN IMMEDIATE already holds
    the database's write lock.
    """
    statement = select(Workspace).where(Workspace.id == workspace_id).with_for_update()
    return session.execute(statement.execution_options(populate_existing=True)).scalar_one_or_none()
