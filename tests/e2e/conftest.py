"""End-to-end fixtures: the real Litestar app over HTTP (ASGI), with tenants and API keys."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from api.app import create_app
from api.settings import Env
from payments.principal import Environment, Role
from regions import commands, tenants
from regions.ledger_store import insert_account
from regions.policy_gate import PolicyGate
from regions.router import DatabaseUrls, Router
from regions.topology import Topology
from tests.conftest import officer_scope, settings_for_tests, test_pepper


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def client(
    topo: Topology, db_urls: DatabaseUrls, router: Router
) -> AsyncIterator[AsyncTestClient[Any]]:
    settings = settings_for_tests(Env.TEST, topo, db_urls)
    async with AsyncTestClient(app=create_app(settings, router=router)) as c:
        yield c


@dataclass
class Partner:
    """A tenant with an API key and (optionally) funded accounts in its home region."""

    tenant_id: str
    region: str
    key: str
    accounts: list[str]
    client: AsyncTestClient[Any]

    async def gql(self, query: str, variables: dict[str, Any] | None = None,
                  key: str | None = None) -> dict[str, Any]:
        return await gql(self.client, key or self.key, query, variables)


async def gql(client: AsyncTestClient[Any], key: str | None, query: str,
              variables: dict[str, Any] | None = None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    resp = await client.post("/graphql", json={"query": query, "variables": variables or {}},
                             headers=headers)
    assert resp.status_code == 200, (resp.status_code, resp.text)
    body: dict[str, Any] = resp.json()
    return body


MakePartner = Callable[..., Awaitable[Partner]]


@pytest.fixture
def make_partner(router: Router, topo: Topology, client: AsyncTestClient[Any]) -> MakePartner:
    """``await make_partner("EU", funded={"EUR": 100_00}, extra={"EUR": 1}, role=...)``.

    ``funded`` opens one account per currency credited with that many minor units; ``extra``
    opens that many more unfunded accounts per currency. Accounts are listed funded first.
    """
    async def make(jurisdiction: str = "EU", funded: dict[str, int] | None = None,
                   extra: dict[str, int] | None = None, role: Role = Role.PARTNER_ADMIN,
                   region: str | None = None) -> Partner:
        async def control(conn: Any) -> tuple[str, str, str]:
            t = await tenants.create_tenant(conn, topo, "E2E Ltd", jurisdiction, region,
                                            Environment.TEST, gate=PolicyGate())
            k = await tenants.create_api_key(conn, test_pepper, t.id, role,
                                             officer_scope(role, jurisdiction))
            return t.id, t.home_region, k.key

        tenant_id, home, key = await router.run_control(control)

        async def open_accounts(conn: Any) -> list[str]:
            out = []
            for cur, minor in (funded or {}).items():
                acc = await insert_account(conn, home, tenant_id, cur, f"funded {cur}")
                await commands.fund_account_txn(conn, home, tenant_id, acc, minor, cur, "test")
                out.append(acc)
            for cur, count in (extra or {}).items():
                out += [await insert_account(conn, home, tenant_id, cur, f"spare {cur}")
                        for _ in range(count)]
            return out

        accounts = await router.run(home, open_accounts)
        return Partner(tenant_id, home, key, accounts, client)

    return make


@pytest_asyncio.fixture(loop_scope="session")
async def policy_defaults(router: Router, client: AsyncTestClient[Any]) -> AsyncIterator[None]:
    """For tests that approve policy changes: afterwards every jurisdiction is back at its
    defaults (version 0) in the store and in the app's cache, so later tests see the policies
    the code declares. Policy versions are global: without this, one test's approved limit
    would bind every later test's tenants."""
    yield
    async def body(conn: Any) -> None:
        await conn.execute(text("DELETE FROM policy_versions"))
        await conn.execute(text("DELETE FROM policy_changes"))

    await router.run_control(body)
    await client.app.state.policies.refresh(router, force=True)
