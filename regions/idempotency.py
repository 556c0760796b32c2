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

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from payments.errors import IdempotencyConflict
from payments.text import check_text
from regions.tables import idempotency_keys

key_length_max = 255
retention_h_min = 24

Response = dict[str, Any]


def check_key(key: object) -> str:
    return check_text(key, "idempotencyKey", key_length_max, length_min=1)


def request_hash(operation: str, request: dict[str, Any]) -> bytes:
    canonical = json.dumps([operation, request], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).digest()


async def once(
    conn: AsyncConnection, region: str, tenant_id: str, key: str, operation: str,
    request: dict[str, Any], effect: Callable[[], Awaitable[Response]],
) -> Response:
    """Run ``effect`` once per (tenant, key); a replay returns the first response."""
    digest = request_hash(operation, request)
    inserted = await conn.execute(
        insert(idempotency_keys)
        .values(region=region, tenant_id=tenant_id, key=key, operation=operation,
                request_hash=digest, response={})
        .on_conflict_do_nothing()
        .returning(idempotency_keys.c.key))
    if inserted.first() is None:
        row = (await conn.execute(select(idempotency_keys).where(
            idempotency_keys.c.region == region, idempotency_keys.c.tenant_id == tenant_id,
            idempotency_keys.c.key == key))).one()
        if row.operation != operation or bytes(row.request_hash) != digest:
            raise IdempotencyConflict(key)
        return dict(row.response)
    response = await effect()
    await conn.execute(update(idempotency_keys).where(
        idempotency_keys.c.region == region, idempotency_keys.c.tenant_id == tenant_id,
        idempotency_keys.c.key == key).values(response=response))
    return response
