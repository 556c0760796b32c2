"""Housekeeping jobs: purging expired idempotency keys and chaining the audit log, region by
region."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncConnection

from regions import audit_chain, idempotency
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


async def chain_region(router: Router, region: str, runs_max: int) -> int:
    """Chain the region's new audit rows, a bounded transaction at a time; returns how many."""
    chained = 0
    for _ in range(runs_max):
        n = await router.run_trail(region,
                                        lambda conn: audit_chain.chain_txn(conn, region))
        chained += n
        if n < audit_chain.chain_rows_per_run_max:
            break
    if chained:
        _log.info("chained %d audit rows in %s", chained, region)
    return chained
