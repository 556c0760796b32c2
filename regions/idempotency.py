"""Idempotency keys, recorded in the same transaction as the effect.

The key row is inserted first, so concurrent requests with one key queue on it: the first
commits its effect and response; the others (after a serialization retry) find the row, compare
the request hash and replay the stored response, or answer ``IdempotencyConflict``. A request
that fails with a domain error rolls back with its key, so it left no effect and may be retried.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import bindparam, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from payments.errors import IdempotencyConflict
from payments.principal import Principal
from payments.text import check_text
from regions import events
from regions.events import Event
from regions.tables import idempotency_keys

key_length_max = 255
retention_h_min = 24
retention_h = 7 * 24
"""Keys are kept a week (API.md promises at least a day), then purged in batches."""
purge_batch_rows_max = 10_000

Response = dict[str, Any]

# Built once (a statement rebuilt per call costs more CPU in SQLAlchemy than in the database).
_claim = (
    insert(idempotency_keys)
    .values({c: bindparam(c) for c in ("region", "tenant_id", "key", "operation",
                                       "request_hash", "response")})
    .on_conflict_do_nothing()
    .returning(idempotency_keys.c.key)
)


def check_key(key: object) -> str:
    return check_text(key, "idempotencyKey", key_length_max, length_min=1)


def request_hash(operation: str, request: dict[str, Any]) -> bytes:
    canonical = json.dumps([operation, request], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).digest()


Effect = Callable[[], Awaitable[tuple[Response, list[Event]]]]


async def peek(conn: AsyncConnection, who: Principal, key: str, operation: str,
               request: dict[str, Any]) -> Response | None:
    """The stored response of a committed request with this key (conflict if it differs), or
    None: for operations that must know before they act outside this transaction."""
    row = (await conn.execute(select(idempotency_keys).where(
        idempotency_keys.c.region == who.region, idempotency_keys.c.tenant_id == who.tenant.id,
        idempotency_keys.c.key == key))).first()
    if row is None:
        return None
    return replay(row, key, operation, request_hash(operation, request))


def replay(row: Any, key: str, operation: str, digest: bytes) -> Response:
    """The stored response of ``row`` for a request with ``digest``, or ``IdempotencyConflict``
    when the key was used for another request."""
    if row.operation != operation or bytes(row.request_hash) != digest:
        raise IdempotencyConflict(key)
    return dict(row.response)


async def once(
    conn: AsyncConnection, who: Principal, key: str, operation: str,
    request: dict[str, Any], effect: Effect, *, region: str | None = None,
) -> Response:
    """Run ``effect`` once per (tenant, key); a replay returns the first response.

    The effect returns its response and the events it caused; they and the response are
    recorded in one statement. ``region``: where the effect happens, when not in the caller's
    home region (an officer resolving another region's case); the key is kept there.
    """
    region, tenant_id = region or who.region, who.tenant.id
    digest = request_hash(operation, request)
    claim = {"region": region, "tenant_id": tenant_id, "key": key, "operation": operation,
             "request_hash": digest, "response": {}}
    while (await conn.execute(_claim, claim)).first() is None:
        row = (await conn.execute(select(idempotency_keys).where(
            idempotency_keys.c.region == region, idempotency_keys.c.tenant_id == tenant_id,
            idempotency_keys.c.key == key))).first()
        if row is None:
            continue  # purged between our claim and this read: claim it afresh
        return replay(row, key, operation, digest)
    response, caused = await effect()
    await events.record(conn, region, tenant_id, who.actor, caused, key=key, response=response)
    return response


_purge = text("""
    DELETE FROM idempotency_keys
    WHERE region = :region AND (tenant_id, key) IN (
        SELECT tenant_id, key FROM idempotency_keys
        WHERE region = :region AND created_at < now() - make_interval(hours => :hours)
        LIMIT :batch)
""")


async def purge_expired(conn: AsyncConnection, region: str,
                        hours: int = retention_h, batch: int = purge_batch_rows_max) -> int:
    """Delete up to ``batch`` keys older than ``hours`` in one region; returns how many."""
    assert hours >= retention_h_min, hours
    result = await conn.execute(_purge, {"region": region, "hours": hours, "batch": batch})
    return int(result.rowcount)
