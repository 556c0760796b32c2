"""The one retry wrapper every transaction runs through.

A transaction body is ``async def body(conn) -> T``; it may run more than once, so it has no side
effects outside the database. SQLSTATE 40001 (serialization failure; CockroachDB's "restart
transaction") and 40P01 (deadlock) are retried with bounded, jittered exponential backoff. Any
other error, and a domain error raised by the body, rolls back and propagates at once. When the
tries run out the caller gets ``RetriesExhausted`` and nothing of the body was committed.

A lost connection (a backend terminated, a database restarted, a pooled connection found dead)
before COMMIT was sent rolled the transaction back, so it is retried the same way, on a fresh
connection (SQLAlchemy drops the pool's connections of that age). Lost while committing, the
outcome is unknown: that is never retried here, and the caller gets ``CommitOutcomeUnknown``,
as for CockroachDB's ambiguous result (SQLSTATE 40003). A database that stays unreachable
ends in ``DatabaseUnavailable`` once the tries run out. Both are public as ``UNAVAILABLE``: a
request sent again with its idempotency key replays what committed or runs once.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import psycopg
from sqlalchemy.exc import DBAPIError, ResourceClosedError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from regions import telemetry

T = TypeVar("T")
Body = Callable[[AsyncConnection], Awaitable[T]]

retryable_sqlstates = frozenset({"40001", "40P01"})
ambiguous_sqlstates = frozenset({"40003"})  # CockroachDB: statement completion unknown
connection_sqlstates = frozenset({"57P01", "57P02", "57P03"})  # shutdown, crash, starting up
attempts_max = 8
backoff_ms_base = 2
backoff_ms_max = 250

_log = logging.getLogger(__name__)


class RetriesExhausted(Exception):
    """The transaction kept conflicting; nothing was written. Safe to retry later."""

    code = "TRANSACTION_CONFLICT"

    def __init__(self, attempts: int, sqlstate: str) -> None:
        super().__init__(f"transaction conflicted {attempts} times (SQLSTATE {sqlstate})")
        self.attempts = attempts
        self.sqlstate = sqlstate


class Unavailable(Exception):
    """The database failed the transaction, not the transaction itself: a request sent again
    with its idempotency key is safe."""

    code = "UNAVAILABLE"


class DatabaseUnavailable(Unavailable):
    """The database could not be reached; nothing of the body was committed."""


class CommitOutcomeUnknown(Unavailable):
    """The connection was lost while committing: the transaction may or may not have
    committed."""


def connection_lost(exc: BaseException) -> bool:
    """Whether ``exc`` says the connection is gone (or never came), not that a statement
    failed: SQLAlchemy's disconnect detection, or psycopg's ``OperationalError`` (connection
    refused, terminated by an administrator, server closed the connection)."""
    if isinstance(exc, SQLAlchemyTimeoutError):  # no pooled connection came in time
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    # psycopg files conflicts (40001, 40P01) under OperationalError too: only connection
    # exceptions (class 08), an administrator's shutdown (57P0x) or no SQLSTATE at all (the
    # socket closed, the connection refused) mean the connection is gone.
    state = sqlstate(exc)
    return isinstance(exc.orig, psycopg.OperationalError) and (
        state is None or state.startswith("08") or state in connection_sqlstates)


def sqlstate(exc: BaseException) -> str | None:
    orig = getattr(exc, "orig", None)
    state = getattr(orig, "sqlstate", None)
    return state if isinstance(state, str) else None


def backoff_s(attempt: int) -> float:
    """Full jitter: uniform in [0, min(max, base * 2^attempt)] milliseconds."""
    ceiling_ms = min(backoff_ms_max, backoff_ms_base * 2**attempt)
    return random.uniform(0, ceiling_ms) / 1000  # noqa: S311 - jitter, not a secret


async def run_txn(engine: AsyncEngine, body: Body[T], *, tries: int = attempts_max,
                  autocommit: bool = False) -> T:
    """Run ``body`` in a transaction, retrying conflicts.

    ``autocommit`` is for bodies that read with a single statement, on an engine created with
    ``isolation_level="AUTOCOMMIT"`` (the router's read engines): no BEGIN/COMMIT round trips,
    and the statement is still atomic on its own.
    """
    assert 1 <= tries <= attempts_max, tries
    for attempt in range(1, tries + 1):
        opened = committing = False
        try:
            if autocommit:
                async with engine.connect() as conn:
                    opened = True
                    return await body(conn)
            async with engine.connect() as conn:
                opened = True
                txn = await conn.begin()
                result = await body(conn)
                committing = True
                await txn.commit()
                return result
        except (DBAPIError, SQLAlchemyTimeoutError, ResourceClosedError) as exc:
            if isinstance(exc, ResourceClosedError) and opened:
                raise  # the body used a closed result: a bug, not the connection
            state = sqlstate(exc)
            # A connection terminated while SQLAlchemy was still setting it up surfaces as
            # ResourceClosedError ("This Connection is closed"), before the body ran.
            lost = connection_lost(exc) or isinstance(exc, ResourceClosedError)
            if (lost and committing) or state in ambiguous_sqlstates:
                raise CommitOutcomeUnknown(
                    "the connection to the database was lost while committing") from exc
            if lost:
                reason = "connection"
                if attempt == tries:
                    raise DatabaseUnavailable("the database could not be reached") from exc
            elif state in retryable_sqlstates:
                reason = state
                if attempt == tries:
                    raise RetriesExhausted(attempt, state) from exc
            else:
                raise
            _log.debug("retrying transaction after %s (attempt %d)", reason, attempt)
            telemetry.txn_retries.add(1, {"sqlstate": reason})
            await asyncio.sleep(backoff_s(attempt))
    raise AssertionError("unreachable")
