"""The one retry wrapper every transaction runs through.

A transaction body is ``async def body(conn) -> T``; it may run more than once, so it has no side
effects outside the database. SQLSTATE 40001 (serialization failure; CockroachDB's "restart
transaction") and 40P01 (deadlock) are retried with bounded, jittered exponential backoff. Any
other error, and a domain error raised by the body, rolls back and propagates at once. When the
tries run out the caller gets ``RetriesExhausted`` and nothing of the body was committed.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from regions import telemetry

T = TypeVar("T")
Body = Callable[[AsyncConnection], Awaitable[T]]

retryable_sqlstates = frozenset({"40001", "40P01"})
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
        try:
            if autocommit:
                async with engine.connect() as conn:
                    return await body(conn)
            async with engine.begin() as conn:
                return await body(conn)
        except DBAPIError as exc:
            state = sqlstate(exc)
            if state not in retryable_sqlstates:
                raise
            if attempt == tries:
                raise RetriesExhausted(attempt, state) from exc
            _log.debug("retrying transaction after SQLSTATE %s (attempt %d)", state, attempt)
            telemetry.txn_retries.add(1, {"sqlstate": state})
            await asyncio.sleep(backoff_s(attempt))
    raise AssertionError("unreachable")
