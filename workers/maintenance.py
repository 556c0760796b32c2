"""Housekeeping jobs: purging expired idempotency keys region by region."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncConnection

from regions import idempotency
from regions.router import Router

_log = logging.getLogger(__name__)


async def purge_region(router: Router, region: str, batches_max: int) -> int:
    """Purge expired keys in up to ``batches_max`` short transactions; returns rows deleted."""
    deleted = 0
    for _ in range(batches_max):
        async def body(conn: AsyncConnection) -> int:
            return await idempotency.purge_expired(conn, region)

        n = await router.run(region, body)
        deleted += n
        if n < idempotency.purge_batch_rows_max:
            break
    _log.info("purged %d expired idempotency keys in %s", deleted, region)
    return deleted
