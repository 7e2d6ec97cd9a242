"""Database faults: telling "the database cannot be reached right now" from a bug.

A connection refused, a server that went away mid-query, a pool with no free connection, a
SQLite file that cannot be opened: the request did not fail because of what it asked, and the
same request may succeed a moment later. Callers answer those with a stable code
(:data:`DATABASE_UNAVAILABLE`, HTTP 503) and log one line (:func:`describe`); anything else
(an integrity error, a programming error) stays an internal error with its traceback.
"""

from __future__ import annotations

import sqlite3

from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    DisconnectionError,
    InterfaceError,
    OperationalError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout

DATABASE_UNAVAILABLE = "DATABASE_UNAVAILABLE"  # the extensions.code clients see; stable
MESSAGE = "The database is unavailable; try again shortly."
RETRY_AFTER = 5  # seconds, in the Retry-After header of a 503

_UNAVAILABLE = (OperationalError, InterfaceError, DisconnectionError, PoolTimeout)


# SQLite reports a missing table or a syntax error as an OperationalError too: only these
# result codes (sqlite3's sqlite_errorname, primary code first) mean the file cannot be used now.
_SQLITE_UNAVAILABLE = (
    "SQLITE_CANTOPEN",
    "SQLITE_BUSY",
    "SQLITE_LOCKED",
    "SQLITE_IOERR",
    "SQLITE_FULL",
    "SQLITE_READONLY",
    "SQLITE_PROTOCOL",
    "SQLITE_NOTADB",
    "SQLITE_CORRUPT",
)


def unavailable(error: BaseException | None) -> bool:
    """Whether ``error`` (or an error it was raised from) means the database could not be
    reached, dropped the connection or cannot serve now: worth a retry, not a bug."""
    seen = 0
    while error is not None and seen < 5:  # a short chain: a service may wrap the driver's error
        if isinstance(error, DBAPIError) and error.connection_invalidated:
            return True
        if isinstance(error, _UNAVAILABLE):
            return _sqlite_unavailable(error.orig) if isinstance(error, DBAPIError) else True
        error, seen = error.__cause__, seen + 1
    return False


def _sqlite_unavailable(orig: BaseException | None) -> bool:
    if not isinstance(orig, sqlite3.Error):
        return True  # PostgreSQL: an OperationalError is the server or the network, not the query
    name = getattr(orig, "sqlite_errorname", None)
    return name is None or name.startswith(_SQLITE_UNAVAILABLE)


def describe(error: BaseException) -> str:
    """One line for the log: the driver's own first line (``connection refused``), no SQL, no
    parameters, no traceback."""
    cause = error.orig if isinstance(error, DBAPIError) and error.orig is not None else error
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    return (lines[0] if lines else type(cause).__name__)[:300]


def masked(url: str) -> str:
    """The database URL with its password hidden, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(an unreadable URL)"
