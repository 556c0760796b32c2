"""Expired idempotency keys are purged per region in bounded batches; fresh keys stay."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from regions import idempotency
from regions.router import Router
from tests.integration.helpers import scalar
from workers.maintenance import purge_region

REGION = "uk-south"


async def _keys(router: Router, tenant: str, hours_old: int, count: int) -> None:
    async def body(conn: AsyncConnection) -> None:
        await conn.execute(text("""
            INSERT INTO idempotency_keys (region, tenant_id, key, operation, request_hash,
                                          response, created_at)
            SELECT :r, :t, :prefix || g, 'createTransfer', '\\x00', '{}',
                   now() - make_interval(hours => :h)
            FROM generate_series(1, :n) AS g"""),
            {"r": REGION, "t": tenant, "prefix": f"k{hours_old}-", "h": hours_old, "n": count})

    await router.run(REGION, body)


async def _count(router: Router, tenant: str) -> int:
    return int(await scalar(router, REGION,
                            "SELECT count(*) FROM idempotency_keys WHERE tenant_id = :t",
                            t=tenant))


async def test_purge_deletes_only_expired_keys_of_the_region(router: Router,
                                                             monkeypatch) -> None:
    tenant = "ten_uk-south_purge"
    await _keys(router, tenant, idempotency.retention_h + 1, 25)
    await _keys(router, tenant, idempotency.retention_h - 1, 7)
    await _keys(router, tenant, 1, 3)
    monkeypatch.setattr(idempotency, "purge_batch_rows_max", 10)

    async def one_batch(conn: AsyncConnection) -> int:
        return await idempotency.purge_expired(conn, REGION, batch=10)

    assert await router.run(REGION, one_batch) == 10
    assert await _count(router, tenant) == 25
    deleted = await purge_region(router, REGION, batches_max=100)
    assert deleted >= 15  # the rest of this tenant's expired keys (and any others')
    assert await _count(router, tenant) == 10  # 7 + 3 younger than the retention
    assert await purge_region(router, REGION, batches_max=100) == 0


def test_retention_never_goes_below_a_day() -> None:
    assert idempotency.retention_h >= idempotency.retention_h_min == 24


async def test_purge_refuses_a_retention_under_a_day(router: Router) -> None:
    with pytest.raises(AssertionError):
        await router.run(REGION, lambda c: idempotency.purge_expired(c, REGION, hours=23))


def test_scheduler_has_a_purge_job_per_region(topo) -> None:
    from regions.router import DatabaseUrls
    from workers.broker import install
    from workers.config import WorkerConfig
    from workers.main import scheduled_jobs

    install(WorkerConfig(topology=topo, urls=DatabaseUrls("postgresql+psycopg://x/y", {}),
                         amqp_url=None))
    jobs = scheduled_jobs(WorkerConfig(
        topology=topo, urls=DatabaseUrls("postgresql+psycopg://x/y", {}), amqp_url=None))
    names = {j.name for j in jobs}
    codes = {r.code for r in topo.regions}
    # A job on one region's database waits while that region is down; the others never do.
    assert {j.name: j.region for j in jobs} == {
        j.name: (j.name.rsplit(".", 1)[1] if j.name.rsplit(".", 1)[1] in codes else None)
        for j in jobs}
    assert names == {"fx.refresh"} | {
        f"{job}.{r.code}" for r in topo.regions
        for job in ("idempotency.purge", "payouts.returns", "webhooks.deliver", "audit.chain",
                    "settlement.net")
    } | {"audit.chain.control", "settlement.reconcile"}  # the control plane's trail; all pairs
