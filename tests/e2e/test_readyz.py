"""``/readyz`` with a region's database really stopped: the cluster of the sovereign region runs
on a PostgreSQL server of its own, which the test stops. Readiness turns false and the body names
the region (and only it) as down; liveness stays up."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from litestar.testing import AsyncTestClient

from api.app import create_app
from api.settings import Env
from regions.databases import sqlalchemy_url
from regions.embedded import embedded_server
from regions.router import DatabaseUrls, Router
from regions.topology import Topology
from tests.conftest import settings_for_tests


async def _ready(topo: Topology, db_urls: DatabaseUrls, cn_url: str) -> tuple[int, Any]:
    urls = DatabaseUrls(control=db_urls.control,
                        clusters={**db_urls.clusters, "cn": sqlalchemy_url(cn_url)})
    router = Router(topo, urls, pool_size=1)
    try:
        app = create_app(settings_for_tests(Env.TEST, topo, db_urls), router=router)
        async with AsyncTestClient(app=app) as c:
            resp = await c.get("/readyz")
            assert (await c.get("/healthz")).status_code == 200
            return resp.status_code, resp.json()
    finally:
        await router.dispose()


async def test_readyz_names_the_region_whose_database_is_stopped(
        topo: Topology, db_urls: DatabaseUrls) -> None:
    # A short path: the server's Unix socket lives in it (at most 107 bytes).
    # Opened to the unprivileged user the embedded server runs as when tests run as root.
    with tempfile.TemporaryDirectory(prefix="cnpg-", dir="/tmp") as short:
        os.chmod(short, 0o777)  # noqa: S103 - a throwaway directory of a test's own
        await _start_then_stop(topo, db_urls, Path(short))


async def _start_then_stop(topo: Topology, db_urls: DatabaseUrls, pgdata: Path) -> None:
    with embedded_server(pgdata) as cn_url:
        status, body = await _ready(topo, db_urls, cn_url)
        assert status == 200, body
        assert body["regions"]["cn-east"] == "ok"
        assert body["broker"] == "ok"
    # the server is stopped now
    status, body = await _ready(topo, db_urls, cn_url)
    assert status == 503, body
    assert body["ready"] is False
    down = {r for r, v in body["regions"].items() if v != "ok"}
    assert down == {"cn-east"}, body
    assert body["checks"]["cluster:cn"].startswith("error: ")
    assert body["checks"]["control"] == "ok"
