"""What the API answers when a database cannot be reached: ``UNAVAILABLE``, with a message
that says to send the request again with its key; a GraphQL error when the operation ran, a 503
when authentication could not reach the control plane. Never a bare 500, never the driver's
text. (The retry wrapper's side: tests/integration/test_connection_loss.py.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
from litestar.testing import AsyncTestClient

from api.app import create_app
from api.settings import Env
from regions.router import DatabaseUrls, Router
from regions.topology import Topology
from tests.conftest import settings_for_tests
from tests.e2e.conftest import Partner

unreachable = "postgresql+psycopg://postgres@127.0.0.1:1/nowhere"


@pytest_asyncio.fixture(loop_scope="session")
async def broken_cluster_router(topo: Topology, db_urls: DatabaseUrls
                                ) -> AsyncIterator[Router]:
    """The real control plane, every cluster unreachable."""
    router = Router(topo, DatabaseUrls(db_urls.control,
                                       {name: unreachable for name in db_urls.clusters}))
    yield router
    await router.dispose()


async def test_an_operation_whose_region_is_down_answers_unavailable(
    topo: Topology, db_urls: DatabaseUrls, broken_cluster_router: Router,
    make_partner: Any,
) -> None:
    partner: Partner = await make_partner("EU", {})
    app = create_app(settings_for_tests(Env.TEST, topo, db_urls), router=broken_cluster_router)
    async with AsyncTestClient(app=app) as client:
        answer = await client.post("/graphql", headers={"Authorization": f"Bearer {partner.key}"},
                                   json={"query": 'mutation { createAccount(input: {currency: '
                                                  '"EUR", idempotencyKey: "down-1"}) '
                                                  '{ __typename } }'})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["data"] is None
    (error,) = body["errors"]
    assert error["extensions"] == {"code": "UNAVAILABLE"}
    assert "could not be reached" in error["message"]
    assert "same idempotency key" in error["message"]
    assert "psycopg" not in answer.text
    assert "127.0.0.1" not in answer.text


async def test_authentication_without_the_control_plane_is_a_503_graphql_error(
    topo: Topology, db_urls: DatabaseUrls,
) -> None:
    router = Router(topo, DatabaseUrls(unreachable, dict(db_urls.clusters)))
    app = create_app(settings_for_tests(Env.TEST, topo, db_urls), router=router)
    try:
        async with AsyncTestClient(app=app) as client:
            answer = await client.post(
                "/graphql", headers={"Authorization": "Bearer cor_test_" + "x" * 40},
                json={"query": "{ viewer { tenant { id } } }"})
    finally:
        await router.dispose()
    assert answer.status_code == 503, answer.text
    assert answer.headers["retry-after"] == "1"
    assert answer.json() == {"errors": [{
        "message": "The region's database could not be reached; nothing was written. Send "
                   "the request again with the same idempotency key.",
        "extensions": {"code": "UNAVAILABLE"}}]}
