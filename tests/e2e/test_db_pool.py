"""The API's connection pools follow ``CORRIDOR_DB_POOL_SIZE`` and ``CORRIDOR_DB_POOL_OVERFLOW``:
the app the settings build opens its router with them, and a request is served through it."""

from __future__ import annotations

import dataclasses

from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncEngine

from api.app import create_app
from api.settings import Env
from regions.router import DatabaseUrls
from regions.topology import Topology
from tests.conftest import settings_for_tests


def _pool(engine: AsyncEngine) -> tuple[int, int]:
    pool = engine.sync_engine.pool
    return pool.size(), pool._max_overflow  # type: ignore[attr-defined]


async def test_the_app_opens_its_pools_at_the_configured_sizes(
        topo: Topology, db_urls: DatabaseUrls) -> None:
    settings = dataclasses.replace(settings_for_tests(Env.TEST, topo, db_urls),
                                   db_pool_size=3, db_pool_overflow=1)
    app = create_app(settings)
    async with AsyncTestClient(app=app) as c:
        router = app.state.router
        assert _pool(router.control) == (3, 1)
        assert {_pool(router.engine_for(r.code)) for r in topo.regions} == {(3, 1)}
        resp = await c.get("/readyz")
        assert resp.status_code == 200, resp.text
        # readiness reached every cluster and the control plane through these pools
        assert router.control.sync_engine.pool.checkedin() >= 1
